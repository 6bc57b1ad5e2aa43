//! The console's routes, every answer with the security headers of
//! [`pages::security_headers`]: `/` and the console's own paths under
//! `/console/` (the gateway sends both here): the sign-in ([`sign_in`]),
//! the clients' and orders' pages ([`clients`], [`orders`]) and the
//! stylesheet.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};

use crate::{
    api::Api,
    clients, cookie,
    cookie::Cookies,
    orders,
    pages::{self, Chrome, Home, PageError, SecurityHeaders, User},
    person::Session,
    provider::Provider,
    session::Store,
    sign_in,
};

/// How long a sign-in may take, from "Sign in" to the callback.
pub const LOGIN_TTL: Duration = Duration::from_secs(600);

/// A sign-in under way: what the callback checks and sends.
#[derive(Clone, Debug)]
pub struct PendingLogin {
    pub state: String,
    pub verifier: String,
}

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub provider: Arc<Provider>,
    pub api: Api,
    pub sessions: Arc<Store<Session>>,
    pub logins: Arc<Store<PendingLogin>>,
    pub cookies: Cookies,
    /// The origin people open the console at (`CONSOLE_PUBLIC_URL`).
    pub origin: String,
    pub session_ttl: Duration,
}

pub fn router(state: AppState) -> Router {
    let headers = SecurityHeaders::new(state.provider.issuer());
    Router::new()
        .route("/", get(home))
        .route("/console/", get(|| async { Redirect::to("/") }))
        .route("/console/sign-in", get(sign_in::sign_in))
        .route("/console/callback", get(sign_in::callback))
        .route("/console/sign-out", post(sign_in::sign_out))
        .route("/console/static/console.css", get(stylesheet))
        .merge(clients::routes())
        .merge(orders::routes())
        .fallback(not_found)
        .with_state(state)
        .layer(middleware::from_fn_with_state(
            headers,
            pages::security_headers,
        ))
}

impl AppState {
    /// The session of the request's cookie, with its id.
    pub fn session(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = self.cookies.read(headers, cookie::SESSION)?;
        let session = self.sessions.get(&id)?;
        Some((id, session))
    }

    fn user(&self, headers: &HeaderMap) -> Option<User> {
        self.session(headers).map(|(_, s)| User::of(&s))
    }
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let chrome = Chrome {
        user: state.user(&headers),
        ..Chrome::default()
    };
    pages::render(StatusCode::OK, &Home { chrome })
}

/// A path the console does not have: a page, not the kit's problem+json
/// (a person is at a browser).
async fn not_found(State(state): State<AppState>, headers: HeaderMap) -> Response {
    PageError::NotFound {
        what: "This page".into(),
        request_id: None,
    }
    .page(state.user(&headers))
}

/// The one stylesheet, compiled in: the console is one file to deploy.
async fn stylesheet() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        include_str!("../static/console.css"),
    )
}

/// A query string of `pairs`, each value escaped.
pub fn query(pairs: &[(&str, String)]) -> String {
    oauth2::url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}
