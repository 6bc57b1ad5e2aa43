//! `POST /auth/token` and `POST /auth/revoke`. The token endpoint takes
//! three grants: client credentials (RFC 6749 §4.4), the authorization
//! code with PKCE (§4.1.3, RFC 7636 §4.6) and the refresh token (§6,
//! rotated: RFC 9700 §4.14). A confidential client authenticates with HTTP
//! Basic or with `client_id` and `client_secret` in the form body
//! (§2.3.1), never both; a public client sends its `client_id` alone. A
//! refusal is the JSON of §5.2, and `invalid_client` never says whether
//! the id or the secret was wrong.

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{
    AppState,
    clients::{Grant, audience_of, split_scope},
    grants::{Code, Redeemed, Rotated},
};

/// A refusal, as RFC 6749 §5.2 writes it.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    InvalidRequest(&'static str),
    InvalidClient,
    /// The client may not use this grant.
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    /// The code or refresh token is not (or no longer) good.
    InvalidGrant(&'static str),
    /// Signing or the database failed: a fault of the service, logged.
    ServerError,
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let (status, error, description) = match self {
            Self::InvalidRequest(why) => (StatusCode::BAD_REQUEST, "invalid_request", why),
            Self::InvalidClient => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication failed.",
            ),
            Self::UnauthorizedClient => (
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "This client may not use this grant type.",
            ),
            Self::UnsupportedGrantType => (
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "The grant types are client_credentials, authorization_code and refresh_token.",
            ),
            Self::InvalidScope => (
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "The requested scope is unknown or not allowed for this client.",
            ),
            Self::InvalidGrant(why) => (StatusCode::BAD_REQUEST, "invalid_grant", why),
            Self::ServerError => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "The token could not be issued; it has been logged.",
            ),
        };
        let mut response = (
            status,
            Json(json!({"error": error, "error_description": description})),
        )
            .into_response();
        let headers = response.headers_mut();
        no_store(headers);
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"auth_service\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

fn store_failed(err: kit_data::StoreError) -> TokenError {
    tracing::error!(error = %err, "the database failed");
    TokenError::ServerError
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: serde_json::Value,
    client_id: &'a str,
    scope: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
}

/// A form of the token or revocation endpoint, each name at most once.
#[derive(Debug, PartialEq, Eq)]
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The request, read: which grant, who asks (a public client: no
/// secret), and the rest of the form.
#[derive(Debug, PartialEq, Eq)]
struct Asked {
    grant: Grant,
    client_id: String,
    secret: Option<String>,
    form: Form,
}

pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match issue(&state, &headers, &body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

/// The client, authenticated (argon2 off the async threads, a few at a
/// time): its id, scopes and grants.
async fn authenticate(
    state: &AppState,
    client_id: String,
    secret: Option<String>,
) -> Result<(String, Vec<String>, Vec<Grant>), TokenError> {
    let clients = state.clients.clone();
    // argon2 is slow and takes memory on purpose: a few at a time, off
    // the async threads.
    let _turn = state
        .hashing
        .acquire()
        .await
        .map_err(|_| TokenError::ServerError)?;
    let found = tokio::task::spawn_blocking(move || {
        clients
            .authenticate(&client_id, secret.as_deref())
            .map(|c| (c.id.clone(), c.scopes.clone(), c.grants.clone()))
    })
    .await
    .map_err(|_| TokenError::ServerError)?;
    found.ok_or_else(|| {
        tracing::info!("client authentication failed");
        TokenError::InvalidClient
    })
}

async fn issue(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, TokenError> {
    let Asked {
        grant,
        client_id,
        secret,
        form,
    } = read_request(headers, body)?;
    let (client_id, allowed, grants) = authenticate(state, client_id, secret).await?;
    if !grants.contains(&grant) {
        tracing::info!(
            client_id,
            grant = grant.as_str(),
            "grant refused to the client"
        );
        return Err(TokenError::UnauthorizedClient);
    }
    match grant {
        Grant::ClientCredentials => {
            let scopes = match form.get("scope") {
                None => allowed,
                Some(asked) => {
                    let asked = split_scope(asked);
                    if asked.is_empty() || asked.iter().any(|s| !allowed.contains(s)) {
                        tracing::info!(client_id, "scope refused");
                        return Err(TokenError::InvalidScope);
                    }
                    asked
                }
            };
            let (token, ttl) = sign(state, &client_id, &client_id, &scopes)?;
            tracing::info!(client_id, scope = scopes.join(" "), "token issued");
            Ok(answer(json!({
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": ttl,
                "scope": scopes.join(" "),
            })))
        }
        Grant::AuthorizationCode => redeem(state, &client_id, &grants, &form).await,
        Grant::RefreshToken => refresh(state, &client_id, &form).await,
    }
}

fn answer(body: serde_json::Value) -> Response {
    let mut response = Json(body).into_response();
    no_store(response.headers_mut());
    response
}

/// Whether `verifier` is the one of `challenge` (S256, RFC 7636 §4.6).
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'));
    well_formed && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

/// Why a person's code or refresh token gives no token although it is good.
const NOT_ALLOWED: &str = "The user may not sign in, or no longer has this scope.";

/// `grant_type=authorization_code`.
async fn redeem(
    state: &AppState,
    client_id: &str,
    grants: &[Grant],
    form: &Form,
) -> Result<Response, TokenError> {
    let (Some(code), Some(redirect_uri), Some(verifier)) = (
        form.get("code"),
        form.get("redirect_uri"),
        form.get("code_verifier"),
    ) else {
        return Err(TokenError::InvalidRequest(
            "code, redirect_uri and code_verifier are required.",
        ));
    };
    let bound = |code: &Code| {
        code.client_id == client_id
            && code.redirect_uri == redirect_uri
            && pkce_matches(verifier, &code.code_challenge)
    };
    let with_refresh = grants.contains(&Grant::RefreshToken);
    let redeemed = state
        .grants
        .redeem_code(code, bound, with_refresh)
        .await
        .map_err(store_failed)?;
    let (code, scopes, refresh_token) = match redeemed {
        Redeemed::Fresh {
            code,
            scopes,
            refresh_token,
        } => (code, scopes, refresh_token),
        Redeemed::Invalid => {
            tracing::info!(client_id, "unknown or expired code");
            return Err(TokenError::InvalidGrant("The code is invalid or expired."));
        }
        Redeemed::Refused => {
            tracing::info!(
                client_id,
                "code refused: client, redirect_uri or code_verifier"
            );
            return Err(TokenError::InvalidGrant(
                "The code was not issued to this client, this redirect_uri and this code_verifier.",
            ));
        }
        Redeemed::Reused => {
            tracing::warn!(
                client_id,
                "a code was redeemed twice: its tokens are revoked"
            );
            return Err(TokenError::InvalidGrant("The code was already used."));
        }
        Redeemed::NotAllowed => {
            tracing::info!(
                client_id,
                "code refused: its user is disabled or lost its scopes"
            );
            return Err(TokenError::InvalidGrant(NOT_ALLOWED));
        }
    };
    // The refresh family keeps the code's scope; every access token is
    // narrowed to what the person's role has now (by the store, in the
    // transaction that issues it), here and at each refresh.
    let scope = scopes.join(" ");
    let (token, ttl) = sign(state, &code.user_id.to_string(), client_id, &scopes)?;
    let mut body = json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": scope,
    });
    if let Some(refresh) = refresh_token {
        body["refresh_token"] = json!(refresh);
    }
    tracing::info!(
        client_id,
        user = code.user_id,
        scope,
        "token issued for a code"
    );
    Ok(answer(body))
}

/// `grant_type=refresh_token`: rotated on every use.
async fn refresh(state: &AppState, client_id: &str, form: &Form) -> Result<Response, TokenError> {
    let Some(token) = form.get("refresh_token") else {
        return Err(TokenError::InvalidRequest("refresh_token is required."));
    };
    let asked = form.get("scope").map(split_scope);
    let rotated = state
        .grants
        .rotate(token, client_id, asked.as_deref())
        .await
        .map_err(store_failed)?;
    let (refresh_token, user_id, scopes) = match rotated {
        Rotated::New {
            refresh_token,
            user_id,
            scopes,
        } => (refresh_token, user_id, scopes),
        Rotated::Invalid => {
            tracing::info!(client_id, "refresh token refused");
            return Err(TokenError::InvalidGrant(
                "The refresh token is invalid, expired or revoked.",
            ));
        }
        Rotated::BadScope => return Err(TokenError::InvalidScope),
        Rotated::Reused => {
            tracing::warn!(
                client_id,
                "a refresh token was used twice: its family is revoked"
            );
            return Err(TokenError::InvalidGrant(
                "The refresh token was already used.",
            ));
        }
    };
    let (token, ttl) = sign(state, &user_id.to_string(), client_id, &scopes)?;
    tracing::info!(client_id, user = user_id, "token refreshed");
    Ok(answer(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": scopes.join(" "),
        "refresh_token": refresh_token,
    })))
}

/// An access token (RFC 9068) for `sub`, issued to `client_id`, with
/// `scopes`; and its lifetime in seconds.
fn sign(
    state: &AppState,
    sub: &str,
    client_id: &str,
    scopes: &[String],
) -> Result<(String, u64), TokenError> {
    let mut audiences: Vec<&str> = scopes.iter().filter_map(|s| audience_of(s)).collect();
    audiences.sort_unstable();
    audiences.dedup();
    let scope = scopes.join(" ");
    let now = jsonwebtoken::get_current_timestamp();
    let ttl = state.token_ttl.as_secs();
    let claims = Claims {
        iss: &state.issuer,
        sub,
        aud: match audiences.as_slice() {
            [one] => json!(one),
            many => json!(many),
        },
        client_id,
        scope: &scope,
        iat: now,
        exp: now + ttl,
        jti: uuid::Uuid::new_v4().simple().to_string(),
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some(state.keys.kid.clone());
    let token = jsonwebtoken::encode(&header, &claims, &state.keys.signing).map_err(|e| {
        tracing::error!(error = %e, "cannot sign a token");
        TokenError::ServerError
    })?;
    Ok((token, ttl))
}

/// `POST /auth/revoke` (RFC 7009): revokes a refresh token (and its
/// family) of the authenticated client. An unknown token, or another
/// client's, is answered 200 all the same and left alone; an access token
/// cannot be revoked (it expires within minutes).
pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let revoked = async {
        let form = read_form(&headers, &body)?;
        let (client_id, secret) = client_of(&headers, &form)?;
        let token = form
            .get("token")
            .ok_or(TokenError::InvalidRequest("token is required."))?
            .to_owned();
        let (client_id, _, _) = authenticate(&state, client_id, secret).await?;
        state
            .grants
            .revoke(&token, &client_id)
            .await
            .map_err(store_failed)?;
        tracing::info!(client_id, "revocation asked");
        Ok::<_, TokenError>(())
    }
    .await;
    match revoked {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            no_store(response.headers_mut());
            response
        }
        Err(err) => err.into_response(),
    }
}

/// The form of a token or revocation request: its type, readable, each
/// parameter once.
fn read_form(headers: &HeaderMap, body: &[u8]) -> Result<Form, TokenError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(TokenError::InvalidRequest(
            "The body must be application/x-www-form-urlencoded.",
        ));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| TokenError::InvalidRequest("The body is not a readable form."))?;
    let mut seen = std::collections::HashSet::new();
    if pairs.iter().any(|(name, _)| !seen.insert(name.as_str())) {
        return Err(TokenError::InvalidRequest(
            "A parameter is given more than once.",
        ));
    }
    Ok(Form(pairs))
}

/// Who the client says it is: HTTP Basic, or the body (`client_secret`
/// absent: a public client), never both.
fn client_of(headers: &HeaderMap, form: &Form) -> Result<(String, Option<String>), TokenError> {
    let basic = headers.get(header::AUTHORIZATION);
    let in_body = (form.get("client_id"), form.get("client_secret"));
    match (basic, in_body) {
        (Some(_), (_, Some(_))) => Err(TokenError::InvalidRequest(
            "Authenticate with HTTP Basic or with the body, not both.",
        )),
        // With Basic, a `client_id` in the body (RFC 6749 §4.1.3 lets a
        // client send it) must name the same client.
        (Some(value), (body_id, None)) => {
            let (id, secret) = basic_credentials(value).ok_or(TokenError::InvalidClient)?;
            if body_id.is_some_and(|b| b != id) {
                return Err(TokenError::InvalidRequest(
                    "client_id in the body is not the client of HTTP Basic.",
                ));
            }
            Ok((id, Some(secret)))
        }
        (None, (Some(id), secret)) => Ok((id.to_owned(), secret.map(str::to_owned))),
        (None, (None, _)) => Err(TokenError::InvalidClient),
    }
}

/// Reads the form and the client's credentials, in the order of RFC 6749:
/// a malformed request, then the grant type, then who the client is.
fn read_request(headers: &HeaderMap, body: &[u8]) -> Result<Asked, TokenError> {
    let form = read_form(headers, body)?;
    let grant = match form.get("grant_type") {
        None | Some("") => return Err(TokenError::InvalidRequest("`grant_type` is missing.")),
        Some(name) => Grant::parse(name).ok_or(TokenError::UnsupportedGrantType)?,
    };
    let (client_id, secret) = client_of(headers, &form)?;
    Ok(Asked {
        grant,
        client_id,
        secret,
        form,
    })
}

/// `Basic base64(form-encoded id ":" form-encoded secret)` (RFC 6749 §2.3.1).
fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let (scheme, encoded) = value.to_str().ok()?.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decoded(id)?, form_decoded(secret)?))
}

/// `text` form-decoded (`+` a space, `%XX` a byte), as UTF-8.
fn form_decoded(text: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&text.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

/// `GET /auth/jwks.json`: the public keys.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(state.keys.jwks.clone()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}

/// The authorization server's metadata (RFC 8414).
pub async fn metadata(State(state): State<AppState>) -> Response {
    let issuer: &str = &state.issuer;
    Json(Arc::new(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "end_session_endpoint": format!("{issuer}/logout"),
        "jwks_uri": format!("{issuer}/jwks.json"),
        "grant_types_supported": Grant::ALL.map(Grant::as_str),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": crate::clients::SCOPES.map(|(s, _)| s),
        "authorization_response_iss_parameter_supported": true,
    })))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str, basic: Option<&str>) -> Result<Asked, TokenError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        if let Some(basic) = basic {
            let value = format!("Basic {}", STANDARD.encode(basic));
            headers.insert(header::AUTHORIZATION, HeaderValue::try_from(value).unwrap());
        }
        read_request(&headers, body.as_bytes())
    }

    fn who(asked: &Asked) -> (&str, Option<&str>) {
        (asked.client_id.as_str(), asked.secret.as_deref())
    }

    #[test]
    fn credentials_come_from_basic_or_the_body_never_both() {
        let asked = form(
            "grant_type=client_credentials&scope=a+b",
            Some("my%20id:p%3Aw"),
        )
        .unwrap();
        assert_eq!(who(&asked), ("my id", Some("p:w")));
        assert_eq!(asked.grant, Grant::ClientCredentials);
        assert_eq!(asked.form.get("scope"), Some("a b"));
        // `&` and `=` are characters of the id like any other, `+` a space.
        let asked = form("grant_type=client_credentials", Some("x&v=reader:a+b%2B")).unwrap();
        assert_eq!(who(&asked), ("x&v=reader", Some("a b+")));
        let asked = form(
            "grant_type=client_credentials&client_id=x&client_secret=y",
            None,
        )
        .unwrap();
        assert_eq!(who(&asked), ("x", Some("y")));
        // A public client: its id alone.
        let asked = form("grant_type=authorization_code&client_id=x&code=c", None).unwrap();
        assert_eq!(who(&asked), ("x", None));
        assert_eq!(asked.grant, Grant::AuthorizationCode);
        assert_eq!(
            form("grant_type=refresh_token", Some("x:y")).unwrap().grant,
            Grant::RefreshToken
        );
        assert!(matches!(
            form("grant_type=client_credentials&client_secret=y", Some("x:y")),
            Err(TokenError::InvalidRequest(_))
        ));
        assert!(matches!(
            form("grant_type=client_credentials&client_id=z", Some("x:y")),
            Err(TokenError::InvalidRequest(_))
        ));
        // The same id in the body and in Basic: Basic's credentials.
        let asked = form("grant_type=client_credentials&client_id=x", Some("x:y")).unwrap();
        assert_eq!(who(&asked), ("x", Some("y")));
        assert_eq!(
            form("grant_type=client_credentials", None),
            Err(TokenError::InvalidClient)
        );
        assert_eq!(
            form("grant_type=client_credentials&client_secret=y", None),
            Err(TokenError::InvalidClient)
        );
        assert_eq!(
            form("grant_type=password", Some("x:y")),
            Err(TokenError::UnsupportedGrantType)
        );
        assert!(matches!(
            form("scope=a", Some("x:y")),
            Err(TokenError::InvalidRequest(_))
        ));
        assert!(matches!(
            form(
                "grant_type=client_credentials&grant_type=client_credentials",
                Some("x:y")
            ),
            Err(TokenError::InvalidRequest(_))
        ));
    }

    #[test]
    fn the_verifier_must_hash_to_the_challenge() {
        // RFC 7636, appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(challenge, challenge));
        assert!(!pkce_matches(&verifier[1..], challenge));
        // The challenge itself is no verifier, nor is a verifier too short.
        assert!(!pkce_matches("short", challenge));
    }
}
