//! `POST /auth/token`: the client-credentials grant (RFC 6749 §4.4). The
//! client authenticates with HTTP Basic or with `client_id` and
//! `client_secret` in the form body (§2.3.1), never both; a refusal is the
//! JSON of §5.2, and `invalid_client` never says whether the id or the
//! secret was wrong.

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use serde::Serialize;
use serde_json::json;

use crate::{AppState, clients::audience_of};

/// A refusal, as RFC 6749 §5.2 writes it.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    InvalidRequest(&'static str),
    InvalidClient,
    UnsupportedGrantType,
    InvalidScope,
    /// Signing failed: a fault of the service, logged.
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
            Self::UnsupportedGrantType => (
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Only the client_credentials grant is supported.",
            ),
            Self::InvalidScope => (
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "The requested scope is unknown or not allowed for this client.",
            ),
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

/// The request, read: who asks, for which scopes.
#[derive(Debug, PartialEq, Eq)]
struct Asked {
    client_id: String,
    secret: String,
    scope: Option<String>,
}

pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match issue(&state, &headers, &body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn issue(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, TokenError> {
    let asked = read_request(headers, body)?;
    let clients = state.clients.clone();
    let Asked {
        client_id,
        secret,
        scope,
    } = asked;
    let granted = {
        // argon2 is slow and takes memory on purpose: a few at a time, off
        // the async threads.
        let _turn = state
            .hashing
            .acquire()
            .await
            .map_err(|_| TokenError::ServerError)?;
        tokio::task::spawn_blocking(move || {
            clients
                .authenticate(&client_id, &secret)
                .map(|client| (client.id.clone(), client.scopes.clone()))
        })
        .await
        .map_err(|_| TokenError::ServerError)?
    };
    let Some((client_id, allowed)) = granted else {
        tracing::info!("client authentication failed");
        return Err(TokenError::InvalidClient);
    };
    let scopes: Vec<String> = match scope {
        None => allowed,
        Some(asked) => {
            let asked: Vec<String> = asked
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if asked.is_empty() || asked.iter().any(|s| !allowed.contains(s)) {
                tracing::info!(client_id, "scope refused");
                return Err(TokenError::InvalidScope);
            }
            asked
        }
    };
    let mut audiences: Vec<&str> = scopes.iter().filter_map(|s| audience_of(s)).collect();
    audiences.dedup();
    audiences.sort_unstable();
    audiences.dedup();
    let scope = scopes.join(" ");
    let now = jsonwebtoken::get_current_timestamp();
    let ttl = state.token_ttl.as_secs();
    let claims = Claims {
        iss: &state.issuer,
        sub: &client_id,
        aud: match audiences.as_slice() {
            [one] => json!(one),
            many => json!(many),
        },
        client_id: &client_id,
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
    tracing::info!(client_id, scope, "token issued");
    let mut response = Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": scope,
    }))
    .into_response();
    no_store(response.headers_mut());
    Ok(response)
}

/// Reads the form and the client's credentials, in the order of RFC 6749:
/// a malformed request, then the grant type, then who the client is.
fn read_request(headers: &HeaderMap, body: &[u8]) -> Result<Asked, TokenError> {
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
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    match get("grant_type").as_deref() {
        None | Some("") => return Err(TokenError::InvalidRequest("`grant_type` is missing.")),
        Some("client_credentials") => {}
        Some(_) => return Err(TokenError::UnsupportedGrantType),
    }
    let basic = headers.get(header::AUTHORIZATION);
    let in_body = (get("client_id"), get("client_secret"));
    let (client_id, secret) = match (basic, in_body) {
        (Some(_), (Some(_), _) | (_, Some(_))) => {
            return Err(TokenError::InvalidRequest(
                "Authenticate with HTTP Basic or with the body, not both.",
            ));
        }
        (Some(value), _) => basic_credentials(value).ok_or(TokenError::InvalidClient)?,
        (None, (Some(id), Some(secret))) => (id, secret),
        (None, _) => return Err(TokenError::InvalidClient),
    };
    Ok(Asked {
        client_id,
        secret,
        scope: get("scope"),
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
    let unform = |s: &str| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
            .ok()
            .and_then(|mut v| v.pop())
            .map(|(_, v)| v)
    };
    Some((unform(id)?, unform(secret)?))
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
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks.json"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": crate::clients::SCOPES.map(|(s, _)| s),
        "response_types_supported": [],
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

    #[test]
    fn credentials_come_from_basic_or_the_body_never_both() {
        let asked = form(
            "grant_type=client_credentials&scope=a+b",
            Some("my%20id:p%3Aw"),
        )
        .unwrap();
        assert_eq!(
            (asked.client_id.as_str(), asked.secret.as_str()),
            ("my id", "p:w")
        );
        assert_eq!(asked.scope.as_deref(), Some("a b"));
        let asked = form(
            "grant_type=client_credentials&client_id=x&client_secret=y",
            None,
        )
        .unwrap();
        assert_eq!(
            (asked.client_id.as_str(), asked.secret.as_str()),
            ("x", "y")
        );
        assert!(matches!(
            form("grant_type=client_credentials&client_id=x", Some("x:y")),
            Err(TokenError::InvalidRequest(_))
        ));
        assert_eq!(
            form("grant_type=client_credentials", None),
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
}
