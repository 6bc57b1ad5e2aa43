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
//!
//! Every answer to a request whose token was accepted (passed, or refused
//! for its scope or its rate) carries who made it, the token's `sub` and
//! `client_id` ([`Caller`]), among its extensions, for the request's log
//! line: a change is traced to the person or program that made it. A
//! request with no valid token carries none.

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
use kit_observability::request::Caller;

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
    let caller = Caller {
        sub: principal.subject.clone(),
        client_id: principal.client_id.clone(),
    };
    let mut response = if let Err(limited) = guard.limit.check(&principal) {
        limited.into_response()
    } else {
        let needed = guard.scopes.for_method(request.method());
        if principal.has_scope(needed) {
            request.headers_mut().remove(header::AUTHORIZATION);
            request.extensions_mut().insert::<Arc<Principal>>(principal);
            next.run(request).await
        } else {
            forbidden(&guard, needed, &principal)
        }
    };
    response.extensions_mut().insert(caller);
    response
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

#[cfg(test)]
mod tests {
    use std::{
        collections::HashMap,
        fmt::Debug,
        sync::{Arc, Mutex},
    };

    use axum::{
        Router,
        routing::{get, post},
    };
    use kit_config::RateLimitConfig;
    use kit_observability::request::ObserveLayer;
    use serde_json::json;
    use tracing::{
        Event, Metadata,
        field::{Field, Visit},
        span,
    };

    use super::*;
    use crate::testing::{TestIssuer, claims};

    /// The fields of every event, as text: a subscriber of its own, as this
    /// crate has no tracing-subscriber.
    #[derive(Clone, Default)]
    struct Events(Arc<Mutex<Vec<HashMap<String, String>>>>);

    struct Fields(HashMap<String, String>);

    impl Visit for Fields {
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }

        fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
    }

    impl tracing::Subscriber for Events {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }

        fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
            span::Id::from_u64(1)
        }

        fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

        fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields(HashMap::new());
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0);
        }

        fn enter(&self, _: &span::Id) {}

        fn exit(&self, _: &span::Id) {}
    }

    /// A change is traced to whoever made it: the request line of a write
    /// (and of a read, and of a refused scope) names the `sub` and
    /// `client_id` of the token that made it; a request without a valid
    /// token names no one; the token itself is in no line.
    #[tokio::test(flavor = "current_thread")]
    async fn the_request_line_names_the_tokens_sub_and_client() {
        let events = Events::default();
        let _default = tracing::subscriber::set_default(events.clone());

        let issuer = TestIssuer::start().await;
        let verifier = Verifier::new(&issuer.config(), "client_service").unwrap();
        let limit = CallerLimit::new(&RateLimitConfig {
            per_second: 1_000,
            burst: 1_000,
            exempt_clients: Vec::new(),
        });
        let scopes = Scopes {
            read: "clients:read",
            write: "clients:write",
        };
        let routes = Router::new()
            .route("/client/", post(|| async { StatusCode::CREATED }))
            .route("/client/{id}", get(|| async { "{}" }));
        let app = protect(routes, verifier, scopes, limit, "client_service").layer(ObserveLayer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let person = |sub: &str, scope: &str| {
            let mut claims = claims("client_service", scope, 300);
            claims["sub"] = json!(sub);
            claims["client_id"] = json!("console");
            issuer.key.sign(&claims)
        };
        let admin = person("user-42", "clients:read clients:write");
        let viewer = person("user-7", "clients:read");
        let program = issuer.token("client_service", "clients:write");
        let http = reqwest::Client::new();
        let cases: [(&str, reqwest::Method, &str, Option<&str>, u16); 6] = [
            (
                "write",
                reqwest::Method::POST,
                "/client/",
                Some(&admin),
                201,
            ),
            ("read", reqwest::Method::GET, "/client/1", Some(&admin), 200),
            (
                "refused",
                reqwest::Method::POST,
                "/client/",
                Some(&viewer),
                403,
            ),
            (
                "program",
                reqwest::Method::POST,
                "/client/",
                Some(&program),
                201,
            ),
            ("no-token", reqwest::Method::POST, "/client/", None, 401),
            (
                "bad-token",
                reqwest::Method::POST,
                "/client/",
                Some("not.a.token"),
                401,
            ),
        ];
        for (id, method, path, token, status) in &cases {
            let mut request = http
                .request(method.clone(), format!("{base}{path}"))
                .header("x-request-id", *id);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), *status, "{id}");
        }

        let events = events.0.lock().unwrap().clone();
        let line = |id: &str| {
            events
                .iter()
                .find(|e| {
                    e.get("message").map(String::as_str) == Some("request finished")
                        && e.get("request_id").map(String::as_str) == Some(id)
                })
                .unwrap_or_else(|| panic!("no request line for {id}: {events:?}"))
        };
        let who = |id: &str| {
            let line = line(id);
            (
                line.get("sub").map(String::as_str),
                line.get("client_id").map(String::as_str),
            )
        };
        assert_eq!(line("write")["method"], "POST");
        assert_eq!(who("write"), (Some("user-42"), Some("console")));
        assert_eq!(who("read"), (Some("user-42"), Some("console")));
        assert_eq!(who("refused"), (Some("user-7"), Some("console")));
        assert_eq!(who("program"), (Some("test-client"), Some("test-client")));
        assert_eq!(who("no-token"), (None, None));
        assert_eq!(who("bad-token"), (None, None));
        for event in &events {
            for value in event.values() {
                assert!(
                    !value.contains(&admin) && !value.contains(&viewer),
                    "a token in a log line: {event:?}"
                );
            }
        }
    }
}
