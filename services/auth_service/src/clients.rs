//! The clients that may ask for tokens, from the clients file: one per
//! line, `CLIENT_ID ARGON2_HASH SCOPE...` (blank lines and `#` comments
//! left out). Only the argon2 hash of a secret is ever stored.

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

/// The audience of `scope`, when it is one auth_service issues.
pub fn audience_of(scope: &str) -> Option<&'static str> {
    SCOPES.iter().find(|(s, _)| *s == scope).map(|(_, a)| *a)
}

#[derive(Debug)]
pub struct Client {
    pub id: String,
    hash: String,
    /// The scopes it may have, in the order of the file.
    pub scopes: Vec<String>,
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
            let at = |why: String| format!("line {}: {why}", n + 1);
            let mut fields = line.split_whitespace();
            let (Some(id), Some(hash)) = (fields.next(), fields.next()) else {
                return Err(at("expected `CLIENT_ID ARGON2_HASH SCOPE...`".into()));
            };
            kit_config::parse_client_id(id).map_err(at)?;
            PasswordHash::new(hash)
                .ok()
                .filter(|h| h.algorithm.as_str().starts_with("argon2"))
                .ok_or_else(|| at(format!("the secret of `{id}` is not an argon2 hash (make one with `auth_service hash-secret`)")))?;
            let scopes: Vec<String> = fields.map(str::to_owned).collect();
            if scopes.is_empty() {
                return Err(at(format!("`{id}` has no scope")));
            }
            if let Some(unknown) = scopes.iter().find(|s| audience_of(s).is_none()) {
                return Err(at(format!(
                    "`{unknown}` is not a scope auth_service issues (it issues {})",
                    SCOPES.map(|(s, _)| s).join(", ")
                )));
            }
            let client = Client {
                id: id.to_owned(),
                hash: hash.to_owned(),
                scopes,
            };
            if by_id.insert(id.to_owned(), client).is_some() {
                return Err(at(format!("`{id}` is listed twice")));
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

    /// The client `id` if `secret` is its secret. Slow on purpose (argon2):
    /// call it off the async threads.
    pub fn authenticate(&self, id: &str, secret: &str) -> Option<&Client> {
        let client = self.by_id.get(id);
        let hash = client.map_or(self.decoy.as_str(), |c| c.hash.as_str());
        let matches = PasswordHash::new(hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(secret.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        client.filter(|_| matches)
    }
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
            .authenticate("reader", "s3cret-s3cret-s3cret")
            .unwrap();
        assert_eq!(client.scopes, ["clients:read", "orders:read"]);
        assert!(clients.authenticate("reader", "wrong").is_none());
        assert!(
            clients
                .authenticate("nobody", "s3cret-s3cret-s3cret")
                .is_none()
        );
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
    }
}
