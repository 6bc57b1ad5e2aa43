//! The sign-in's three steps: `/console/sign-in` sends the browser to the
//! provider (PKCE, a random state), `/console/callback` takes its answer
//! and opens a session under a fresh id, `/console/sign-out` ends it (at
//! the provider too).

use axum::{
    Form,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::{
    cookie,
    pages::PageError,
    person::{Claims, same_origin},
    session::{Session, random_id},
    state::{AppState, LOGIN_TTL, PendingLogin},
};

/// Starts a sign-in: keeps the PKCE verifier and the state under a new
/// random id (the `console_login` cookie) and sends the browser to the
/// provider.
pub async fn sign_in(State(state): State<AppState>) -> Response {
    let authorization = match state.provider.authorize().await {
        Ok(authorization) => authorization,
        Err(err) => {
            tracing::error!(error = %kit_http::problem::cause_chain(&err), "cannot start a sign-in");
            return PageError::Unavailable {
                what: "The authorization server".into(),
                retry_after: None,
                request_id: None,
            }
            .into_response();
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
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

/// The provider's answer: the sign-in under way taken (single use), its
/// state and the issuer checked, the code exchanged, and a new session
/// under a fresh id (the old one, if any, ended: no fixation).
pub async fn callback(
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
        PageError::Api {
            status: StatusCode::BAD_REQUEST,
            detail: format!("{detail} Sign in again."),
            request_id: None,
        }
        .into_response()
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
    let Some(claims) = Claims::of(&tokens.access_token) else {
        tracing::warn!("the access token names no subject");
        return refuse("The authorization server's token names no one.");
    };
    if let Some((old, _)) = state.session(headers) {
        state.sessions.take(&old);
    }
    let session = Session::new(claims.sub, claims.can_write, random_id(), tokens);
    let id = state.sessions.insert(session);
    let mut response = Redirect::to("/").into_response();
    let cookie = state
        .cookies
        .set(cookie::SESSION, &id, state.session_ttl.as_secs());
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

#[derive(Deserialize)]
pub struct SignOutForm {
    csrf: String,
}

/// Ends the session: checked against CSRF (same origin, the session's
/// token), its refresh token revoked at the provider, its cookie cleared,
/// then the browser sent to end its session at the provider too.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignOutForm>,
) -> Response {
    if !same_origin(&headers, &state.origin) {
        return PageError::CrossSite.page(state.user(&headers));
    }
    let Some((id, session)) = state.session(&headers) else {
        return Redirect::to("/").into_response();
    };
    if form.csrf != session.csrf {
        return PageError::CrossSite.page(Some(session.user()));
    }
    state.sessions.take(&id);
    let refresh = session.tokens.lock().await.refresh_token.clone();
    if let Some(refresh) = &refresh
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
