//! The pages: askama templates (`templates/`), and the headers every page
//! is sent with.
//!
//! askama rather than minijinja: the templates are checked when the
//! console is compiled (a misspelt field or a missing template is a build
//! error, not a 500 in front of a person), each page's data is a Rust
//! struct, and every `{{ value }}` is HTML-escaped unless marked safe.
//! minijinja's strength, templates reloaded at run time, matters less than
//! those here.

use askama::Template;
use axum::{
    extract::{Request, State},
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{Html, IntoResponse, Redirect, Response},
};

use crate::api::Answer;

/// The person signed in, as a page shows them.
#[derive(Clone, Debug)]
pub struct User {
    /// Who they are: the `sub` of their access token.
    pub name: String,
    /// The session's CSRF token, for the forms that change something.
    pub csrf: String,
    /// Whether the page shows write controls (a viewer's does not).
    pub can_write: bool,
}

/// A message on a page: the outcome of the last action, or what went
/// wrong, with the `X-Request-ID` of the API call that did it.
#[derive(Clone, Debug)]
pub struct Notice {
    pub text: String,
    pub request_id: Option<String>,
}

impl Notice {
    pub fn new(text: impl Into<String>, request_id: Option<String>) -> Self {
        Self {
            text: text.into(),
            request_id,
        }
    }
}

/// What every page has around its content: the navigation bar (who is
/// signed in), the outcome of the last action, and the problem of this one.
#[derive(Clone, Debug, Default)]
pub struct Chrome {
    pub user: Option<User>,
    pub notice: Option<Notice>,
    pub problem: Option<Notice>,
}

impl Chrome {
    /// The session's CSRF token, for a page's forms.
    pub fn csrf(&self) -> &str {
        self.user.as_ref().map_or("", |user| user.csrf.as_str())
    }
}

/// `/`: the navigation bar and a welcome.
#[derive(Template)]
#[template(path = "home.html")]
pub struct Home {
    pub chrome: Chrome,
}

/// An error, in words, with the navigation bar.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub title: String,
}

/// What a page could not do, as the person is told it.
#[derive(Debug)]
pub enum PageError {
    /// No session (or it ended): to the sign-in.
    SignIn,
    /// A dependency did not answer: 503, with `Retry-After` when known.
    Unavailable {
        what: String,
        retry_after: Option<u64>,
        request_id: Option<String>,
    },
    /// The API refused the person (403): a viewer's write.
    Forbidden { request_id: Option<String> },
    /// A form that did not come from the console's own page (CSRF).
    CrossSite,
    NotFound {
        what: String,
        request_id: Option<String>,
    },
    /// Any other answer of the API: its status and its words.
    Api {
        status: StatusCode,
        detail: String,
        request_id: Option<String>,
    },
}

impl PageError {
    /// An answer no page handles itself, as an error page: a 403 (a viewer's
    /// write), a 404, a 503 (a dependency not answering, with its
    /// `Retry-After`), or the API's own words.
    pub fn of_answer(answer: Answer, service: &str, what: &str) -> Self {
        let request_id = answer.request_id.clone();
        match answer.status {
            StatusCode::FORBIDDEN => PageError::Forbidden { request_id },
            StatusCode::NOT_FOUND => PageError::NotFound {
                what: what.to_owned(),
                request_id,
            },
            StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::BAD_GATEWAY
            | StatusCode::GATEWAY_TIMEOUT => {
                // The service that did not answer: the one the problem names
                // (order_service's 503 when client_service is down), else the
                // one called.
                let detail = answer.detail();
                let named = ["client_service", "order_service", "auth_service"]
                    .into_iter()
                    .find(|name| detail.contains(name));
                PageError::Unavailable {
                    what: named.unwrap_or(service).to_owned(),
                    retry_after: answer.retry_after,
                    request_id,
                }
            }
            status => PageError::Api {
                status,
                detail: answer.detail(),
                request_id,
            },
        }
    }

    /// An answer the console cannot read: the API is not the one it expects.
    pub fn unreadable(request_id: Option<String>) -> Self {
        PageError::Api {
            status: StatusCode::BAD_GATEWAY,
            detail: "The API's answer could not be read.".into(),
            request_id,
        }
    }

    /// The error page, with the navigation bar of `user`.
    pub fn page(self, user: Option<User>) -> Response {
        let (status, title, text, request_id, retry_after) = match self {
            Self::SignIn => return Redirect::to("/console/sign-in").into_response(),
            Self::Unavailable {
                what,
                retry_after,
                request_id,
            } => {
                let when = retry_after.map_or("in a few seconds".into(), |s| format!("in {s} s"));
                let text = format!("{what} is not answering; try again {when}.");
                let status = StatusCode::SERVICE_UNAVAILABLE;
                (
                    status,
                    "Not answering",
                    text,
                    request_id,
                    Some(retry_after.unwrap_or(5)),
                )
            }
            Self::Forbidden { request_id } => (
                StatusCode::FORBIDDEN,
                "Not allowed",
                "Your role may not change data, only read it: the API refused the change (403)."
                    .into(),
                request_id,
                None,
            ),
            Self::CrossSite => (
                StatusCode::FORBIDDEN,
                "Refused",
                "This form was sent from another site, or from a page that is out of date: \
                 nothing was done. Reload the page and try again."
                    .into(),
                None,
                None,
            ),
            Self::NotFound { what, request_id } => (
                StatusCode::NOT_FOUND,
                "Not found",
                format!("{what} does not exist (or no longer does)."),
                request_id,
                None,
            ),
            Self::Api {
                status,
                detail,
                request_id,
            } => (status, "Refused", detail, request_id, None),
        };
        let chrome = Chrome {
            user,
            notice: None,
            problem: Some(Notice::new(text, request_id)),
        };
        let page = ErrorPage {
            chrome,
            title: title.into(),
        };
        let mut response = render(status, &page);
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// `template` rendered with `status`; a template that fails to render is a
/// plain 500 (logged).
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "a page failed to render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.page(None)
    }
}

/// The Content-Security-Policy of every page: nothing but the console's
/// own files (no inline script or style, no eval), no plugins, no
/// `<base>`, no framing; forms sent to the console, and to the provider's
/// origin (sign-out's POST is redirected to its end-session endpoint, and
/// browsers hold a form's redirects to `form-action` too).
#[derive(Clone, Debug)]
pub struct SecurityHeaders {
    policy: HeaderValue,
}

impl SecurityHeaders {
    /// The headers for a provider whose issuer is `issuer` (an `http://`
    /// or `https://` URL, checked at start).
    pub fn new(issuer: &str) -> Self {
        let (scheme, rest) = issuer.split_once("://").unwrap_or(("https", issuer));
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let provider = format!("{scheme}://{host}");
        let policy = format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
             object-src 'none'; base-uri 'none'; form-action 'self' {provider}; \
             frame-ancestors 'none'"
        );
        let strict = "default-src 'self'; object-src 'none'; base-uri 'none'; \
                      form-action 'self'; frame-ancestors 'none'";
        Self {
            policy: HeaderValue::try_from(policy)
                .unwrap_or_else(|_| HeaderValue::from_static(strict)),
        }
    }

    pub fn policy(&self) -> &HeaderValue {
        &self.policy
    }
}

/// Adds the security headers to every answer: the policy above, no
/// referrer sent to other origins, no content sniffing, nothing cached (a
/// page shows a person's data: the back button after a sign-out must not
/// show it again) unless the answer says otherwise (the console's own
/// scripts).
pub async fn security_headers(
    State(headers): State<SecurityHeaders>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let answer = response.headers_mut();
    answer.insert(header::CONTENT_SECURITY_POLICY, headers.policy.clone());
    let set = [
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in set {
        answer.insert(name, HeaderValue::from_static(value));
    }
    if !answer.contains_key(header::CACHE_CONTROL) {
        answer.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_with_markup_is_shown_as_text() {
        let user = User {
            name: "<script>alert(1)</script>\" onmouseover=\"x".into(),
            csrf: "t".into(),
            can_write: false,
        };
        let chrome = Chrome {
            user: Some(user),
            ..Chrome::default()
        };
        let html = Home { chrome }.render().unwrap();
        assert!(!html.contains("<script>"), "{html}");
        // askama escapes with numeric character references.
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;&#34; onmouseover=&#34;x"),
            "{html}"
        );
        assert!(!html.contains("\" onmouseover"), "{html}");
    }

    #[test]
    fn the_policy_allows_forms_to_the_provider_and_nothing_inline() {
        let headers = SecurityHeaders::new("https://id.example:8443/auth");
        let policy = headers.policy().to_str().unwrap();
        assert!(
            policy.contains("form-action 'self' https://id.example:8443;"),
            "{policy}"
        );
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        assert!(!policy.contains("unsafe"), "{policy}");
    }

    #[test]
    fn signed_out_the_bar_offers_a_sign_in() {
        let html = Home {
            chrome: Chrome::default(),
        }
        .render()
        .unwrap();
        assert!(html.contains("href=\"/console/sign-in\""), "{html}");
        assert!(!html.contains("Sign out"), "{html}");
    }
}
