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
    response::{Html, IntoResponse, Response},
};

/// The person signed in, as a page shows them.
#[derive(Clone, Debug)]
pub struct User {
    /// Who they are: the `sub` of their access token.
    pub name: String,
    /// The session's CSRF token, for the forms that change something.
    pub csrf: String,
}

/// `/`: the navigation bar and a welcome.
#[derive(Template)]
#[template(path = "home.html")]
pub struct Home {
    pub user: Option<User>,
}

/// An error, in words, with the navigation bar.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub user: Option<User>,
    pub title: String,
    pub detail: String,
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
        };
        let html = Home { user: Some(user) }.render().unwrap();
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
        let html = Home { user: None }.render().unwrap();
        assert!(html.contains("href=\"/console/sign-in\""), "{html}");
        assert!(!html.contains("Sign out"), "{html}");
    }
}
