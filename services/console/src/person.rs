//! The person signed in, as a handler meets them: [`Person`], an axum
//! extractor over the session cookie. It calls the API with the person's
//! access token, refreshing it first when it is about to expire (or when
//! the API refused it), one refresh at a time per session: the provider
//! rotates refresh tokens, and a spent one sent twice would end the
//! session's whole family of tokens. A form's change goes through
//! [`Person::submit`], which refuses it before any call unless it passes
//! the CSRF check (the console's own origin, the session's token).

use std::time::Duration;

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::{
    api::{Answer, Call},
    cookie,
    pages::{Chrome, Notice, PageError, User},
    session::Session,
    state::AppState,
};

const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// Whether a form post comes from the console's own pages: `Origin`, when
/// sent, is the console's; `Sec-Fetch-Site`, when sent, is same-origin.
/// (A browser sends at least one of them with every POST.)
pub fn same_origin(headers: &HeaderMap, origin: &str) -> bool {
    let is = |name: &str, expected: &str| {
        headers
            .get(name)
            .is_none_or(|value: &HeaderValue| value.as_bytes() == expected.as_bytes())
    };
    let sent = headers.contains_key(header::ORIGIN) || headers.contains_key(SEC_FETCH_SITE);
    sent && is("origin", origin) && is(SEC_FETCH_SITE, "same-origin")
}

/// An access token this close to its expiry is refreshed before use.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// What the console reads of an access token: its `sub` and `scope`, not
/// checking the signature (the token came straight from the token
/// endpoint, over the console's own connection, not from the browser).
pub struct Claims {
    pub sub: String,
    pub can_write: bool,
}

impl Claims {
    pub fn of(access_token: &str) -> Option<Self> {
        let payload = access_token.split('.').nth(1)?;
        let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let sub = claims.get("sub")?.as_str()?.to_owned();
        let scope = claims.get("scope").and_then(|s| s.as_str()).unwrap_or("");
        let can_write = scope.split(' ').any(|s| s.ends_with(":write"));
        Some(Self { sub, can_write })
    }
}

/// The person signed in, for a page that needs one: without a session, the
/// page answers with a redirect to the sign-in.
#[derive(Clone)]
pub struct Person {
    pub id: String,
    pub session: Session,
    state: AppState,
}

impl FromRequestParts<AppState> for Person {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let id = state
            .cookies
            .read(&parts.headers, cookie::SESSION)
            .ok_or(PageError::SignIn)?;
        let session = state.sessions.get(&id).ok_or(PageError::SignIn)?;
        Ok(Self {
            id,
            session,
            state: state.clone(),
        })
    }
}

/// A person whose token carries a write scope, for the pages that are
/// forms: a viewer gets the 403 page instead (the API would refuse the
/// write anyway; the form is not offered).
pub struct Writer(pub Person);

impl FromRequestParts<AppState> for Writer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let person = Person::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if !person.session.can_write {
            return Err(person.fail(PageError::Forbidden { request_id: None }));
        }
        Ok(Self(person))
    }
}

impl std::ops::Deref for Writer {
    type Target = Person;

    fn deref(&self) -> &Person {
        &self.0
    }
}

impl Person {
    /// The person as the navigation bar shows them.
    pub fn user(&self) -> User {
        self.session.user()
    }

    /// What the person's next page has around its content: the navigation
    /// bar, and the outcome of the last action (shown once).
    pub fn chrome(&self) -> Chrome {
        Chrome {
            user: Some(self.user()),
            notice: self.take_notice(),
            problem: None,
        }
    }

    /// The message for the next page.
    pub fn tell(&self, notice: Notice) {
        *self
            .session
            .notice
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(notice);
    }

    /// The message of the last action, once.
    pub fn take_notice(&self) -> Option<Notice> {
        self.session
            .notice
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// The error page for `err`, with this person's navigation bar.
    pub fn fail(&self, err: PageError) -> Response {
        err.page(Some(self.user()))
    }

    /// `GET path`, successful; otherwise the page that says why (`service`
    /// is the one called, `what` what was asked for).
    pub async fn read(&self, path: &str, service: &str, what: &str) -> Result<Answer, Response> {
        let answer = self
            .call(Method::GET, path, Call::default())
            .await
            .map_err(|err| self.fail(err))?;
        if answer.is_success() {
            Ok(answer)
        } else {
            Err(self.fail(PageError::of_answer(answer, service, what)))
        }
    }

    /// A form's change, sent to the API as `method path` once the form has
    /// passed the CSRF check: sent from the console's own origin, with the
    /// session's synchroniser token. Its answer, whatever it is; the page
    /// to show when it could not be sent.
    pub async fn submit(
        &self,
        headers: &HeaderMap,
        csrf: &str,
        method: Method,
        path: &str,
        call: Call<'_>,
    ) -> Result<Answer, Response> {
        if !same_origin(headers, &self.state.origin) || csrf != self.session.csrf {
            return Err(self.fail(PageError::CrossSite));
        }
        self.call(method, path, call)
            .await
            .map_err(|err| self.fail(err))
    }

    /// A change done: `text` and its request id told on the next page, the
    /// browser sent there (`to`: post, redirect, get).
    pub fn done(&self, answer: Answer, text: &str, to: &str) -> Response {
        self.tell(Notice::new(text, answer.request_id));
        Redirect::to(to).into_response()
    }

    /// `method path` on the API as this person. A 401 (the token refused:
    /// expired early, a key rotated) is retried once with refreshed tokens.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        call: Call<'_>,
    ) -> Result<Answer, PageError> {
        let token = self.access_token(false).await?;
        let answer = self.send(&token, method.clone(), path, call).await?;
        if answer.status != StatusCode::UNAUTHORIZED {
            return Ok(answer);
        }
        let token = self.access_token(true).await?;
        self.send(&token, method, path, call).await
    }

    async fn send(
        &self,
        token: &str,
        method: Method,
        path: &str,
        call: Call<'_>,
    ) -> Result<Answer, PageError> {
        self.state
            .api
            .send(token, method, path, call)
            .await
            .map_err(|err| {
                tracing::warn!(error = %kit_http::problem::cause_chain(&err), "the API did not answer");
                PageError::Unavailable {
                    what: "The API".into(),
                    retry_after: None,
                    request_id: None,
                }
            })
    }

    /// A current access token: refreshed when it expires within
    /// [`REFRESH_MARGIN`] (or `force`d), under the session's lock. A refresh
    /// refused ends the session: the person signs in again.
    async fn access_token(&self, force: bool) -> Result<String, PageError> {
        let mut tokens = self.session.tokens.lock().await;
        if !force && !tokens.expires_within(REFRESH_MARGIN) {
            return Ok(tokens.access_token.clone());
        }
        let Some(refresh) = tokens.refresh_token.clone() else {
            self.end();
            return Err(PageError::SignIn);
        };
        match self.state.provider.refresh(&refresh).await {
            Ok(fresh) => {
                *tokens = fresh;
                Ok(tokens.access_token.clone())
            }
            Err(crate::provider::ProviderError::Refresh(why)) => {
                tracing::info!(why, "a refresh was refused; the session ends");
                self.end();
                Err(PageError::SignIn)
            }
            Err(err) => {
                tracing::warn!(error = %kit_http::problem::cause_chain(&err), "cannot refresh a token");
                Err(PageError::Unavailable {
                    what: "The authorization server".into(),
                    retry_after: None,
                    request_id: None,
                })
            }
        }
    }

    fn end(&self) {
        self.state.sessions.take(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_post_from_another_site_is_not_same_origin() {
        let mut headers = HeaderMap::new();
        assert!(!same_origin(&headers, "http://c.test"), "nothing sent");
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://evil.test"));
        assert!(!same_origin(&headers, "http://c.test"));
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://c.test"));
        assert!(same_origin(&headers, "http://c.test"));
        headers.insert(SEC_FETCH_SITE, HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&headers, "http://c.test"));
    }

    fn token(claims: serde_json::Value) -> String {
        format!("e30.{}.c2ln", URL_SAFE_NO_PAD.encode(claims.to_string()))
    }

    #[test]
    fn a_write_scope_lets_the_person_write() {
        let admin = Claims::of(&token(
            serde_json::json!({"sub": "a", "scope": "clients:read clients:write"}),
        ))
        .unwrap();
        assert!(admin.can_write);
        let viewer = Claims::of(&token(
            serde_json::json!({"sub": "v", "scope": "clients:read orders:read"}),
        ))
        .unwrap();
        assert!(!viewer.can_write);
        assert_eq!(viewer.sub, "v");
        assert!(Claims::of("not-a-token").is_none());
    }
}
