//! The clients that may ask for tokens, from the clients file: one per
//! line (blank lines and `#` comments left out):
//!
//! ```text
//! CLIENT_ID SECRET SCOPE... [grant_types=GRANT,...] [redirect_uri=URI]... [post_logout_redirect_uri=URI]...
//! ```
//!
//! - `SECRET` is the argon2 hash of the client's secret (a confidential
//!   client), or `-` for a public client, which has no secret and may use
//!   the authorization code grant only, with PKCE (as every client must).
//!   Only the hash of a secret is ever stored.
//! - `SCOPE...`: the scopes it may have (for a person's token: at most
//!   these, and at most the person's role's).
//! - The words with `=` are options, in any order after `SECRET`:
//!   `grant_types=` the grants it may use, comma-separated, among
//!   `client_credentials` (the default, alone), `authorization_code` and
//!   `refresh_token`; `redirect_uri=` an exact URI it may be sent back to
//!   with a code (one word each, as many as it needs; required with
//!   `authorization_code`); `post_logout_redirect_uri=` an exact URI it
//!   may be sent to after a sign-out. A URI is `http://` or `https://`,
//!   with no fragment, and is compared as a string, exactly.
//!
//! A line of the old form (`CLIENT_ID ARGON2_HASH SCOPE...`) is a
//! confidential client of the client-credentials grant, as it always was.

use std::{collections::HashMap, path::Path, sync::Arc};

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};

/// Every scope auth_service issues, and the audience (the service) a token
/// with it is for.
pub const SCOPES: [(&str, &str); 4] = [
    ("clients:read", "client_service"),
    ("clients:write", "client_service"),
    ("orders:read", "order_service"),
    ("orders:write", "order_service"),
];

/// The scopes of a `scope` parameter (space-separated, RFC 6749 §3.3).
pub fn split_scope(scope: &str) -> Vec<String> {
    scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The audience of `scope`, when it is one auth_service issues.
pub fn audience_of(scope: &str) -> Option<&'static str> {
    SCOPES.iter().find(|(s, _)| *s == scope).map(|(_, a)| *a)
}

/// A grant type a client may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    ClientCredentials,
    AuthorizationCode,
    RefreshToken,
}

impl Grant {
    pub const ALL: [Grant; 3] = [
        Grant::ClientCredentials,
        Grant::AuthorizationCode,
        Grant::RefreshToken,
    ];

    /// Its name, as the clients file and RFC 6749 write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::AuthorizationCode => "authorization_code",
            Grant::RefreshToken => "refresh_token",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == name)
    }
}

#[derive(Debug)]
pub struct Client {
    pub id: String,
    /// The argon2 hash of its secret; `None`: a public client.
    hash: Option<String>,
    /// The scopes it may have, in the order of the file.
    pub scopes: Vec<String>,
    pub grants: Vec<Grant>,
    /// Where a code may be sent: exact strings.
    pub redirect_uris: Vec<String>,
    /// Where a sign-out may send the browser: exact strings.
    pub post_logout_redirect_uris: Vec<String>,
}

/// The origin (`scheme://host[:port]`) of a registered URI.
pub fn origin_of(uri: &str) -> &str {
    let after_scheme = uri.find("://").map_or(0, |i| i + 3);
    let end = uri[after_scheme..]
        .find(['/', '?'])
        .map_or(uri.len(), |i| after_scheme + i);
    &uri[..end]
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.hash.is_none()
    }

    pub fn may_use(&self, grant: Grant) -> bool {
        self.grants.contains(&grant)
    }
}

/// The clients, by id.
#[derive(Clone, Debug)]
pub struct Clients {
    by_id: Arc<HashMap<String, Client>>,
    /// Verified when the client id is unknown, so that an unknown client
    /// takes as long to refuse as a wrong secret.
    decoy: Arc<String>,
}

impl Clients {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut by_id = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let client = parse_line(line).map_err(|why| format!("line {}: {why}", n + 1))?;
            let id = client.id.clone();
            if by_id.insert(id.clone(), client).is_some() {
                return Err(format!("line {}: `{id}` is listed twice", n + 1));
            }
        }
        if by_id.is_empty() {
            return Err("no client is listed".into());
        }
        Ok(Self {
            by_id: Arc::new(by_id),
            decoy: Arc::new(hash_secret("decoy secret, never matched")?),
        })
    }

    /// The client `id`, whatever its secret (the authorization endpoint
    /// checks a client by its id and its redirect URI only).
    pub fn get(&self, id: &str) -> Option<&Client> {
        self.by_id.get(id)
    }

    /// The client `id` if `secret` is its secret, or if it is a public
    /// client and there is no secret. Slow on purpose when there is a
    /// secret (argon2): call it off the async threads.
    pub fn authenticate(&self, id: &str, secret: Option<&str>) -> Option<&Client> {
        let client = self.by_id.get(id);
        let Some(secret) = secret else {
            return client.filter(|c| c.is_public());
        };
        let hash = client
            .and_then(|c| c.hash.as_deref())
            .unwrap_or(self.decoy.as_str());
        let matches = PasswordHash::new(hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(secret.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        client.filter(|c| matches && !c.is_public())
    }
}

const SYNTAX: &str = "expected `CLIENT_ID ARGON2_HASH|- SCOPE... [grant_types=GRANT,...] [redirect_uri=URI]... [post_logout_redirect_uri=URI]...`";

/// One line of the clients file.
fn parse_line(line: &str) -> Result<Client, String> {
    let mut fields = line.split_whitespace();
    let (Some(id), Some(hash)) = (fields.next(), fields.next()) else {
        return Err(SYNTAX.into());
    };
    kit_config::parse_client_id(id)?;
    let hash = if hash == "-" {
        None
    } else {
        PasswordHash::new(hash)
            .ok()
            .filter(|h| h.algorithm.as_str().starts_with("argon2"))
            .ok_or_else(|| format!("the secret of `{id}` is neither an argon2 hash (make one with `auth_service hash-secret`) nor `-` (a public client)"))?;
        Some(hash.to_owned())
    };
    let mut scopes = Vec::new();
    let mut grants: Option<Vec<Grant>> = None;
    let mut redirect_uris = Vec::new();
    let mut post_logout_redirect_uris = Vec::new();
    for field in fields {
        let Some((name, value)) = field.split_once('=') else {
            if audience_of(field).is_none() {
                return Err(format!(
                    "`{field}` is not a scope auth_service issues (it issues {})",
                    SCOPES.map(|(s, _)| s).join(", ")
                ));
            }
            scopes.push(field.to_owned());
            continue;
        };
        match name {
            "grant_types" => {
                if grants.is_some() {
                    return Err(format!("`{id}` has `grant_types=` twice"));
                }
                let mut list = Vec::new();
                for g in value.split(',') {
                    let grant = Grant::parse(g).ok_or_else(|| {
                        format!(
                            "`{g}` is not a grant type (they are {})",
                            Grant::ALL.map(Grant::as_str).join(", ")
                        )
                    })?;
                    if !list.contains(&grant) {
                        list.push(grant);
                    }
                }
                grants = Some(list);
            }
            "redirect_uri" => redirect_uris.push(parse_uri(value)?),
            "post_logout_redirect_uri" => post_logout_redirect_uris.push(parse_uri(value)?),
            _ => {
                return Err(format!(
                    "`{name}=` is not an option (they are grant_types=, redirect_uri=, post_logout_redirect_uri=)"
                ));
            }
        }
    }
    if scopes.is_empty() {
        return Err(format!("`{id}` has no scope"));
    }
    let grants = grants.unwrap_or_else(|| vec![Grant::ClientCredentials]);
    let code = grants.contains(&Grant::AuthorizationCode);
    if hash.is_none() && grants.contains(&Grant::ClientCredentials) {
        return Err(format!(
            "`{id}` is a public client (`-`): it may not use client_credentials"
        ));
    }
    if grants.contains(&Grant::RefreshToken) && !code {
        return Err(format!(
            "`{id}`: refresh_token comes with authorization_code only"
        ));
    }
    if code && redirect_uris.is_empty() {
        return Err(format!(
            "`{id}` uses authorization_code: it needs at least one redirect_uri="
        ));
    }
    if !code && (!redirect_uris.is_empty() || !post_logout_redirect_uris.is_empty()) {
        return Err(format!(
            "`{id}` has redirect URIs but does not use authorization_code"
        ));
    }
    Ok(Client {
        id: id.to_owned(),
        hash,
        scopes,
        grants,
        redirect_uris,
        post_logout_redirect_uris,
    })
}

/// A registered URI: absolute, `http` or `https`, a plain host (its
/// origin goes into the sign-in page's `form-action`), no fragment (RFC
/// 6749 §3.1.2).
fn parse_uri(uri: &str) -> Result<String, String> {
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .ok_or_else(|| format!("`{uri}` is not an http:// or https:// URI"))?;
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    if host.is_empty() || !host.chars().all(host_char) {
        return Err(format!(
            "`{uri}` has no host, or a host with other characters than letters, digits, `.`, `-`, `:` and `[]` (user information is refused too)"
        ));
    }
    if uri.contains('#') {
        return Err(format!("`{uri}` has a fragment"));
    }
    Ok(uri.to_owned())
}

/// The argon2id hash of `secret` (PHC string), with a new random salt.
pub fn hash_secret(secret: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the secret: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_authenticated_by_its_secret_only() {
        let hash = hash_secret("s3cret-s3cret-s3cret").unwrap();
        let clients = Clients::parse(&format!(
            "# comment\n\nreader {hash} clients:read orders:read\n"
        ))
        .unwrap();
        let client = clients
            .authenticate("reader", Some("s3cret-s3cret-s3cret"))
            .unwrap();
        assert_eq!(client.scopes, ["clients:read", "orders:read"]);
        assert_eq!(client.grants, [Grant::ClientCredentials]);
        assert!(!client.is_public());
        assert!(clients.authenticate("reader", Some("wrong")).is_none());
        assert!(clients.authenticate("reader", None).is_none());
        assert!(
            clients
                .authenticate("nobody", Some("s3cret-s3cret-s3cret"))
                .is_none()
        );
        assert!(clients.authenticate("nobody", None).is_none());
    }

    #[test]
    fn clients_of_the_authorization_code_grant_register_their_uris() {
        let hash = hash_secret("s3cret-s3cret-s3cret").unwrap();
        let clients = Clients::parse(&format!(
            "web {hash} clients:read clients:write grant_types=authorization_code,refresh_token \
             redirect_uri=https://app.example/cb redirect_uri=http://127.0.0.1:8080/console/cb?x=1 \
             post_logout_redirect_uri=https://app.example/\n\
             spa - orders:read redirect_uri=https://spa.example/cb grant_types=authorization_code\n"
        ))
        .unwrap();
        let web = clients.get("web").unwrap();
        assert_eq!(web.grants, [Grant::AuthorizationCode, Grant::RefreshToken]);
        assert_eq!(
            web.redirect_uris,
            [
                "https://app.example/cb",
                "http://127.0.0.1:8080/console/cb?x=1"
            ]
        );
        assert_eq!(web.post_logout_redirect_uris, ["https://app.example/"]);
        assert_eq!(web.scopes, ["clients:read", "clients:write"]);
        assert!(web.may_use(Grant::RefreshToken));
        assert!(!web.may_use(Grant::ClientCredentials));
        let spa = clients.get("spa").unwrap();
        assert!(spa.is_public());
        assert!(clients.authenticate("spa", None).is_some());
        assert!(clients.authenticate("spa", Some("anything")).is_none());
        assert!(clients.authenticate("web", None).is_none());
    }

    #[test]
    fn the_origin_of_a_uri_is_its_scheme_host_and_port() {
        assert_eq!(origin_of("https://a.example/cb?x=1"), "https://a.example");
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(origin_of("http://[::1]:80?x"), "http://[::1]:80");
    }

    #[test]
    fn a_bad_clients_file_names_its_line() {
        let hash = hash_secret("s3cret-s3cret-s3cret").unwrap();
        let bad = |text: String| Clients::parse(&text).unwrap_err();
        assert!(bad(format!("a {hash}\n")).contains("line 1"));
        assert!(bad("a plain clients:read\n".to_owned()).contains("argon2"));
        assert!(bad(format!("a {hash} admin\n")).contains("`admin`"));
        assert!(bad(format!("a {hash} clients:read\na {hash} clients:read\n")).contains("twice"));
        assert!(bad(String::new()).contains("no client"));
        let code = "grant_types=authorization_code";
        for (line, why) in [
            ("a - clients:read".to_owned(), "public client"),
            (format!("a {hash} clients:read {code}"), "redirect_uri"),
            (
                format!(
                    "a {hash} clients:read grant_types=refresh_token redirect_uri=https://a/cb"
                ),
                "refresh_token comes with",
            ),
            (
                format!("a {hash} clients:read redirect_uri=https://a/cb"),
                "does not use authorization_code",
            ),
            (
                format!("a {hash} clients:read grant_types=password"),
                "`password`",
            ),
            (
                format!("a {hash} clients:read {code} redirect_uri=https://a/cb#x"),
                "fragment",
            ),
            (
                format!("a {hash} clients:read {code} redirect_uri=javascript:alert(1)"),
                "not an http",
            ),
            (
                format!("a {hash} clients:read {code} redirect_uri=https:///cb"),
                "no host",
            ),
            (
                format!("a {hash} clients:read {code} redirect_uri=https://u@a/cb"),
                "user information",
            ),
            (format!("a {hash} clients:read colour=blue"), "`colour=`"),
            (
                format!("a {hash} {code} redirect_uri=https://a/cb"),
                "no scope",
            ),
        ] {
            let refused = bad(format!("# first\n{line}\n"));
            assert!(refused.contains("line 2"), "{line}: {refused}");
            assert!(refused.contains(why), "{line}: {refused}");
        }
    }
}
