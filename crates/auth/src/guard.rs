//! The check in front of a service's API: every request carries
//! `Authorization: Bearer <token>` with the scope its operation needs (a
//! read scope for GET and HEAD, the write scope for the rest), or it is
//! answered, in problem+json, with
//! - 401 and `WWW-Authenticate: Bearer realm="…"` when there is no token,
//! - 401 and `error="invalid_token"` when the token is not valid here,
//! - 403 and `error="insufficient_scope", scope="…"` naming the scope needed,
//! - 503 with `Retry-After` when the token's key cannot be looked up,
//! - 429 with `Retry-After` when the caller is over its rate limit
//!   ([`CallerLimit`]).
//!
//! A request that passes reaches its handler with its [`Principal`] among
//! its extensions and without its `Authorization` header: nothing after the
//! check can pass the caller's token on.

use std::sync::Arc;

use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};

use super::{
    limit::CallerLimit,
    verify::{Principal, Rejection, Verifier},
};
use kit_http::problem::{ApiError, Problem};

/// The scopes of a service's API: one to read, one to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scopes {
    pub read: &'static str,
    pub write: &'static str,
}

impl Scopes {
    /// The scope an operation with `method` needs.
    pub fn for_method(&self, method: &Method) -> &'static str {
        if method == Method::GET || method == Method::HEAD {
            self.read
        } else {
            self.write
        }
    }
}

#[derive(Clone)]
struct Guard {
    verifier: Verifier,
    scopes: Scopes,
    limit: CallerLimit,
    realm: HeaderValue,
}

/// `routes` with every route behind the token check and the caller's rate
/// limit (paths that match no route are not: they stay a 404).
pub fn protect(
    routes: Router,
    verifier: Verifier,
    scopes: Scopes,
    limit: CallerLimit,
    realm: &str,
) -> Router {
    let guard = Guard {
        verifier,
        scopes,
        limit,
        realm: HeaderValue::try_from(format!("Bearer realm=\"{realm}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer")),
    };
    routes.route_layer(middleware::from_fn_with_state(guard, check))
}

async fn check(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return unauthorized(
            &guard,
            None,
            "This API needs an access token: `Authorization: Bearer <token>` (see the README).",
        );
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return unauthorized(
            &guard,
            Some("invalid_token"),
            "The Authorization header is not `Bearer <token>`.",
        );
    };
    let principal = match guard.verifier.check(token).await {
        Ok(principal) => principal,
        Err(Rejection::Invalid(why)) => {
            tracing::info!(reason = %why, "access token refused");
            return unauthorized(
                &guard,
                Some("invalid_token"),
                "The access token is not valid here: malformed, expired, or not issued for this service.",
            );
        }
        Err(Rejection::KeysUnavailable(why)) => {
            tracing::warn!(reason = %why, "access token not checked: its key cannot be fetched");
            return ApiError::Unavailable {
                detail: "The access token cannot be checked now (the token issuer's keys cannot be fetched); nothing was changed, please retry.".into(),
                retry_after_secs: 2,
            }
            .into_response();
        }
    };
    if let Err(limited) = guard.limit.check(&principal) {
        return limited.into_response();
    }
    let needed = guard.scopes.for_method(request.method());
    if !principal.has_scope(needed) {
        return forbidden(&guard, needed, &principal);
    }
    request.headers_mut().remove(header::AUTHORIZATION);
    request.extensions_mut().insert::<Arc<Principal>>(principal);
    next.run(request).await
}

fn unauthorized(guard: &Guard, error: Option<&str>, detail: &str) -> Response {
    let challenge = match error {
        None => guard.realm.clone(),
        Some(error) => challenge(guard, &format!("error=\"{error}\"")),
    };
    with_challenge(
        Problem::new(StatusCode::UNAUTHORIZED, detail).into_response(),
        challenge,
    )
}

fn forbidden(guard: &Guard, needed: &str, principal: &Principal) -> Response {
    tracing::info!(client_id = %principal.client_id, scope = needed, "insufficient scope");
    let problem = Problem::new(
        StatusCode::FORBIDDEN,
        format!(
            "insufficient_scope: this operation needs the scope `{needed}`, which the access token does not have."
        ),
    );
    with_challenge(
        problem.into_response(),
        challenge(
            guard,
            &format!("error=\"insufficient_scope\", scope=\"{needed}\""),
        ),
    )
}

fn challenge(guard: &Guard, params: &str) -> HeaderValue {
    let realm = guard.realm.to_str().unwrap_or("Bearer");
    HeaderValue::try_from(format!("{realm}, {params}")).unwrap_or_else(|_| guard.realm.clone())
}

fn with_challenge(mut response: Response, challenge: HeaderValue) -> Response {
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    response
}
