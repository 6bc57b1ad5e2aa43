//! The console's routes, every answer with the security headers of
//! [`pages::security_headers`]: `/` and the console's own paths under
//! `/console/` (the gateway sends both here): the sign-in ([`sign_in`]),
//! the clients' and orders' pages ([`clients`], [`orders`]) and the
//! stylesheet.

use axum::{
    Router,
    extract::{Path, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};

use crate::{
    clients, cookie, orders,
    pages::{self, Chrome, Home, PageError, SecurityHeaders},
    sign_in,
    state::AppState,
    system,
};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/console/", get(|| async { Redirect::to("/") }))
        .route("/console/sign-in", get(sign_in::sign_in))
        .route("/console/callback", get(sign_in::callback))
        .route("/console/sign-out", post(sign_in::sign_out))
        .route("/console/static/{file}", get(asset))
        .merge(clients::routes())
        .merge(orders::routes())
        .merge(system::routes())
        .with_state(state)
}

/// The layers around the whole console, the kit's own answers included
/// (`kit_server::Server::wrap`): its problem+json errors as pages, and the
/// security headers on every answer.
pub fn outer(app: Router, state: AppState) -> Router {
    let headers = SecurityHeaders::new(state.provider.issuer());
    app.layer(middleware::from_fn_with_state(state, error_pages))
        .layer(middleware::from_fn_with_state(
            headers,
            pages::security_headers,
        ))
}

/// The service's own paths, whose answers stay as the kit makes them.
const OPERATIONS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The largest problem+json body read to make a page of it.
const MAX_PROBLEM_BYTES: usize = 16 * 1024;

/// A problem+json answer of the kit (a path the console does not have, a
/// request target it refuses, a method not allowed) as a page: a person is
/// at a browser.
async fn error_pages(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if OPERATIONS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    // The session's id only: the session itself is looked up for an error
    // page, not on every answer.
    let session_id = state.cookies.read(request.headers(), cookie::SESSION);
    let response = next.run(request).await;
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !is_problem {
        return response;
    }
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), MAX_PROBLEM_BYTES)
        .await
        .unwrap_or_default();
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let request_id = problem
        .get("request_id")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let error = if status == StatusCode::NOT_FOUND {
        PageError::NotFound {
            what: "This page".into(),
            request_id,
        }
    } else {
        let detail = problem.get("detail").and_then(|v| v.as_str());
        PageError::Api {
            status,
            detail: detail.unwrap_or("The request was refused.").to_owned(),
            request_id,
        }
    };
    let user = session_id
        .and_then(|id| state.sessions.get(&id))
        .map(|session| session.user());
    error.page(user)
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let chrome = Chrome {
        user: state.user(&headers),
        ..Chrome::default()
    };
    pages::render(StatusCode::OK, &Home { chrome })
}

/// The console's files (its stylesheet, the System page's script),
/// compiled in: the console is one file to deploy. Cached for 5 minutes
/// (the pages themselves are `no-store`).
async fn asset(Path(file): Path<String>) -> Response {
    let (content_type, text) = match file.as_str() {
        "console.css" => (
            "text/css; charset=utf-8",
            include_str!("../static/console.css"),
        ),
        "system.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../static/system.js"),
        ),
        _ => {
            return PageError::NotFound {
                what: "This file".into(),
                request_id: None,
            }
            .into_response();
        }
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        ),
    ];
    (headers, text).into_response()
}
