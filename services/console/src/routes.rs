//! The console's routes: the page at `/` and the sign-in's three steps
//! (`/console/sign-in`, `/console/callback`, `/console/sign-out`), every
//! answer with the security headers of [`pages::security_headers`].

use std::{sync::Arc, time::Duration};

use axum::{
    Form, Router,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;

use crate::{
    cookie::{self, Cookies},
    pages::{self, ErrorPage, Home, SecurityHeaders, User},
    provider::{Provider, Tokens},
    session::{Store, random_id},
    system::{self, SignedIn},
};

/// How long a sign-in may take, from "Sign in" to the callback.
pub const LOGIN_TTL: Duration = Duration::from_secs(600);

/// A person's session: who, the tokens (never sent to the browser), and
/// the CSRF token of its forms.
#[derive(Clone, Debug)]
pub struct Session {
    pub sub: String,
    pub csrf: String,
    pub tokens: Tokens,
}

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
        .route("/console/sign-in", get(sign_in))
        .route("/console/callback", get(callback))
        .route("/console/sign-out", post(sign_out))
        .merge(system::routes())
        .with_state(state)
        .layer(middleware::from_fn_with_state(
            headers,
            pages::security_headers,
        ))
}

impl AppState {
    /// The session of the request's cookie, with its id.
    fn session(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = self.cookies.read(headers, cookie::SESSION)?;
        let session = self.sessions.get(&id)?;
        Some((id, session))
    }

    fn user(&self, headers: &HeaderMap) -> Option<User> {
        self.session(headers).map(|(_, s)| User {
            name: s.sub,
            csrf: s.csrf,
        })
    }

    fn error(
        &self,
        status: StatusCode,
        user: Option<User>,
        title: &str,
        detail: String,
    ) -> Response {
        let page = ErrorPage {
            user,
            title: title.into(),
            detail,
        };
        pages::render(status, &page)
    }
}

impl SignedIn for AppState {
    fn signed_in(&self, headers: &HeaderMap) -> Option<User> {
        self.user(headers)
    }
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let user = state.user(&headers);
    pages::render(StatusCode::OK, &Home { user })
}

/// Starts a sign-in: keeps the PKCE verifier and the state under a new
/// random id (the `console_login` cookie) and sends the browser to the
/// provider.
async fn sign_in(State(state): State<AppState>) -> Response {
    let authorization = match state.provider.authorize().await {
        Ok(authorization) => authorization,
        Err(err) => {
            tracing::error!(error = %kit_http::problem::cause_chain(&err), "cannot start a sign-in");
            return state.error(
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "Sign-in unavailable",
                "The authorization server is not answering; try again in a few seconds.".into(),
            );
        }
    };
    let id = state.logins.insert(PendingLogin {
        state: authorization.state,
        verifier: authorization.verifier,
    });
    let mut response = Redirect::to(&authorization.url).into_response();
    let cookie = state.cookies.set(cookie::LOGIN, &id, LOGIN_TTL.as_secs());
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

/// The provider's answer: the sign-in under way taken (single use), its
/// state and the issuer checked, the code exchanged, and a new session
/// under a fresh id (the old one, if any, ended: no fixation).
async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let pending = state
        .cookies
        .read(&headers, cookie::LOGIN)
        .and_then(|id| state.logins.take(&id));
    let mut response = finish_sign_in(&state, &headers, query, pending).await;
    let clear = state.cookies.clear(cookie::LOGIN);
    response.headers_mut().append(header::SET_COOKIE, clear);
    response
}

async fn finish_sign_in(
    state: &AppState,
    headers: &HeaderMap,
    query: CallbackQuery,
    pending: Option<PendingLogin>,
) -> Response {
    let refuse = |detail: &str| {
        state.error(
            StatusCode::BAD_REQUEST,
            None,
            "Sign-in failed",
            format!("{detail} Sign in again."),
        )
    };
    let Some(pending) = pending else {
        return refuse("This sign-in has expired, or was started in another browser.");
    };
    if query.state.as_deref() != Some(pending.state.as_str()) {
        return refuse("This answer is not for the sign-in this browser started.");
    }
    // RFC 9207: an answer naming another issuer is not from ours (mix-up).
    if query
        .iss
        .as_deref()
        .is_some_and(|iss| iss != state.provider.issuer())
    {
        return refuse("This answer comes from another authorization server.");
    }
    if let Some(error) = query.error {
        let detail = match error.as_str() {
            "access_denied" => "The sign-in was refused.".to_owned(),
            other => format!("The authorization server answered `{other}`."),
        };
        return refuse(&detail);
    }
    let Some(code) = query.code else {
        return refuse("The answer holds no code.");
    };
    let tokens = match state.provider.exchange(code, pending.verifier).await {
        Ok(tokens) => tokens,
        Err(err) => {
            tracing::warn!(error = %kit_http::problem::cause_chain(&err), "code exchange failed");
            return refuse("The authorization server did not accept the sign-in.");
        }
    };
    let Some(sub) = subject(&tokens.access_token) else {
        tracing::warn!("the access token names no subject");
        return refuse("The authorization server's token names no one.");
    };
    if let Some((old, _)) = state.session(headers) {
        state.sessions.take(&old);
    }
    let id = state.sessions.insert(Session {
        sub,
        csrf: random_id(),
        tokens,
    });
    let mut response = Redirect::to("/").into_response();
    let cookie = state
        .cookies
        .set(cookie::SESSION, &id, state.session_ttl.as_secs());
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

#[derive(Deserialize)]
struct SignOutForm {
    csrf: String,
}

/// Ends the session: checked against CSRF (same origin, the session's
/// token), its refresh token revoked at the provider, its cookie cleared,
/// then the browser sent to end its session at the provider too.
async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignOutForm>,
) -> Response {
    if !same_origin(&headers, &state.origin) {
        return state.error(
            StatusCode::FORBIDDEN,
            None,
            "Refused",
            "This form was sent from another site.".into(),
        );
    }
    let Some((id, session)) = state.session(&headers) else {
        return Redirect::to("/").into_response();
    };
    if form.csrf != session.csrf {
        return state.error(
            StatusCode::FORBIDDEN,
            None,
            "Refused",
            "This form is out of date; reload the page and try again.".into(),
        );
    }
    state.sessions.take(&id);
    if let Some(refresh) = &session.tokens.refresh_token
        && let Err(err) = state.provider.revoke(refresh).await
    {
        tracing::warn!(error = %kit_http::problem::cause_chain(&err), "cannot revoke a refresh token");
    }
    let back = format!("{}/console/", state.origin);
    let target = state.provider.logout_url(&back).await.unwrap_or("/".into());
    let mut response = Redirect::to(&target).into_response();
    let clear = state.cookies.clear(cookie::SESSION);
    response.headers_mut().append(header::SET_COOKIE, clear);
    response
}

const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// Whether a form post comes from the console's own pages: `Origin`, when
/// sent, is the console's; `Sec-Fetch-Site`, when sent, is same-origin.
/// (A browser sends at least one of them with every POST.)
fn same_origin(headers: &HeaderMap, origin: &str) -> bool {
    let is = |name: &str, expected: &str| {
        headers
            .get(name)
            .is_none_or(|value: &HeaderValue| value.as_bytes() == expected.as_bytes())
    };
    let sent = headers.contains_key(header::ORIGIN) || headers.contains_key(SEC_FETCH_SITE);
    sent && is("origin", origin) && is(SEC_FETCH_SITE, "same-origin")
}

/// The `sub` of an access token, read without checking its signature: the
/// token came straight from the token endpoint, over the console's own
/// connection, not from the browser.
fn subject(access_token: &str) -> Option<String> {
    let payload = access_token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sub")?.as_str().map(str::to_owned)
}
