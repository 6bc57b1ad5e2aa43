//! The HTML pages auth_service renders (the sign-in form, an error, the
//! signed-out page): small, without JavaScript, written with format
//! strings in which every value that is not a constant goes through
//! [`escape`] (three pages do not need a template engine's dependency
//! tree; the tests check the escaping). Every page carries the same
//! headers ([`html`]): a Content-Security-Policy that allows no script
//! and no inline style but the page's one stylesheet (by its hash), no
//! framing, no caching, no sniffing, no referrer.

use std::sync::LazyLock;

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use sha2::{Digest, Sha256};

/// The one stylesheet, inline, allowed by its hash.
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:24rem;margin:3rem auto;padding:0 1rem;color:#222}\
label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.4rem;box-sizing:border-box}\
button{margin-top:1rem;padding:.5rem 1rem}.error{color:#a00;border:1px solid #a00;padding:.5rem}";

/// The policy a page gets if its own cannot be a header value: nothing
/// allowed (the page shows, unstyled).
const STRICT_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The Content-Security-Policy of every page but the sign-in form (which
/// may also post to the client's origin: see [`sign_in`]).
static CSP: LazyLock<String> = LazyLock::new(|| csp(None));

fn csp(form_to: Option<&str>) -> String {
    let style = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    // form-action also governs the redirects that follow a form's POST
    // (CSP 3): the sign-in form's redirect to the client's origin must be
    // allowed, or browsers stop there.
    let form_action = match form_to {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    format!(
        "default-src 'none'; style-src 'sha256-{style}'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// `text` safe in HTML text and in a double- or single-quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page: `body` is HTML already escaped where it needs to be, all of it
/// in the page's one `<main>` landmark (a reader's "skip to content"; axe-core
/// asks for it).
fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head>\n<body>\n<main>\n{body}\n</main>\n</body></html>\n",
        title = escape(title),
    )
}

/// A response with a page and the headers every page has.
fn html(status: StatusCode, text: String, csp: &str) -> Response {
    let mut response = (status, text).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let csp = HeaderValue::try_from(csp).unwrap_or_else(|_| {
        tracing::error!("a page's Content-Security-Policy is no header value: the strict one sent");
        HeaderValue::from_static(STRICT_CSP)
    });
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    set_page_headers(headers);
    response
}

/// The headers of every page, but its type and CSP.
fn set_page_headers(headers: &mut axum::http::HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// An error page: what went wrong, said plainly, and never a redirect.
pub fn error(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<h1>Sign-in is not possible</h1>\n<p class=\"error\">{}</p>\n\
         <p>Go back to the application you came from and start again.</p>",
        escape(message)
    );
    html(status, page("Sign-in error", &body), &CSP)
}

/// The page of a failure on our side.
pub fn server_error() -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something failed on our side; it has been logged. Try again in a moment.",
    )
}

/// The page after a sign-out that has nowhere registered to go.
pub fn signed_out() -> Response {
    html(
        StatusCode::OK,
        page(
            "Signed out",
            "<h1>Signed out</h1>\n<p>You are signed out. You may close this page.</p>",
        ),
        &CSP,
    )
}

/// The sign-in form: the authorization request travels in hidden fields
/// (`hidden`: name and value, checked again when the form comes back),
/// with the CSRF token; `error` says why the last try failed.
pub struct SignIn<'a> {
    pub client_id: &'a str,
    pub hidden: &'a [(&'a str, &'a str)],
    pub csrf: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
    /// The origin of the redirect URI: where the form's answer redirects.
    pub redirect_origin: &'a str,
}

pub fn sign_in(form: &SignIn<'_>, status: StatusCode) -> Response {
    let mut body = format!(
        "<h1>Sign in</h1>\n<p>to continue to <strong>{}</strong></p>\n",
        escape(form.client_id)
    );
    if let Some(error) = form.error {
        body.push_str(&format!(
            "<p class=\"error\" role=\"alert\">{}</p>\n",
            escape(error)
        ));
    }
    body.push_str("<form method=\"post\" action=\"/auth/sign-in\">\n");
    for (name, value) in form.hidden {
        body.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
            escape(name),
            escape(value)
        ));
    }
    body.push_str(&format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n\
         <label for=\"username\">User name</label>\
         <input id=\"username\" name=\"username\" autocomplete=\"username\" required value=\"{}\">\n\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\n\
         <button type=\"submit\">Sign in</button>\n</form>",
        escape(form.csrf),
        escape(form.username),
    ));
    html(
        status,
        page("Sign in", &body),
        &csp(Some(form.redirect_origin)),
    )
}

/// A redirect that carries the page headers too (no caching, no referrer:
/// the `Location` holds a code); the server-error page if `location`
/// cannot be a header value.
pub fn redirect(status: StatusCode, location: &str) -> Response {
    let Ok(location) = HeaderValue::try_from(location) else {
        tracing::error!("a redirect's address is no header value");
        return server_error();
    };
    let mut response = status.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location);
    set_page_headers(headers);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape("plain ü"), "plain ü");
    }

    #[test]
    fn a_policy_that_is_no_header_value_is_replaced_by_the_strict_one() {
        let response = html(StatusCode::OK, page("t", "b"), "default-src 'self'\n");
        assert_eq!(
            response.headers()[header::CONTENT_SECURITY_POLICY],
            STRICT_CSP
        );
    }

    #[test]
    fn a_location_that_is_no_header_value_is_a_server_error_page() {
        let response = redirect(StatusCode::SEE_OTHER, "https://app.example/cb?x=\n");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!response.headers().contains_key(header::LOCATION));
        assert!(
            response
                .headers()
                .contains_key(header::CONTENT_SECURITY_POLICY)
        );
    }

    #[test]
    fn the_policy_allows_the_style_by_its_hash_and_nothing_inline() {
        assert!(!CSP.contains("unsafe-inline"));
        assert!(CSP.contains("default-src 'none'"));
        assert!(CSP.contains("frame-ancestors 'none'"));
        assert!(CSP.contains("form-action 'self';"));
        let hash = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
        assert!(CSP.contains(&format!("style-src 'sha256-{hash}'")));
        assert!(
            csp(Some("https://app.example")).contains("form-action 'self' https://app.example;")
        );
    }
}
