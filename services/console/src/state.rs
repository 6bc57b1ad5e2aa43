//! What the console's handlers share ([`AppState`]), and the sign-in under
//! way that its store keeps.

use std::{sync::Arc, time::Duration};

use axum::http::HeaderMap;

use crate::{
    api::Api,
    cookie::{self, Cookies},
    pages::User,
    provider::Provider,
    session::{Session, Store},
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

impl AppState {
    /// The session of the request's cookie, with its id.
    pub fn session(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = self.cookies.read(headers, cookie::SESSION)?;
        let session = self.sessions.get(&id)?;
        Some((id, session))
    }

    pub fn user(&self, headers: &HeaderMap) -> Option<User> {
        self.session(headers).map(|(_, s)| s.user())
    }
}
