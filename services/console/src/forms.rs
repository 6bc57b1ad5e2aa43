//! What the forms that change something share: the CSRF check of every
//! POST, the fields of a form as a page shows them (with the API's errors
//! next to them), and the API's answers to a write turned into pages.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::{
    api::Answer,
    pages::{Notice, PageError},
    person::Person,
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

/// The CSRF check of a form that changes something: from the console's own
/// origin, and carrying the session's synchroniser token.
pub fn check(
    headers: &HeaderMap,
    origin: &str,
    person: &Person,
    csrf: &str,
) -> Result<(), PageError> {
    if same_origin(headers, origin) && csrf == person.session.csrf {
        Ok(())
    } else {
        Err(PageError::CrossSite)
    }
}

/// One field of a form, as shown: its value, and the API's word on it.
#[derive(Clone, Debug)]
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    /// The input's `type`, or `select`.
    pub kind: &'static str,
    pub value: String,
    pub hint: Option<&'static str>,
    pub options: Vec<&'static str>,
    pub error: Option<String>,
}

impl Field {
    pub fn new(name: &'static str, label: &'static str, kind: &'static str, value: &str) -> Self {
        Self {
            name,
            label,
            kind,
            value: value.to_owned(),
            hint: None,
            options: Vec::new(),
            error: None,
        }
    }

    pub fn hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
        self
    }

    pub fn select(mut self, options: &[&'static str]) -> Self {
        self.kind = "select";
        self.options = options.to_vec();
        self
    }
}

/// The problem's field errors put next to their fields; those that name
/// no field of the form are returned, for the page's problem.
pub fn mark(fields: &mut [Field], answer: &Answer) -> Vec<String> {
    let mut unplaced = Vec::new();
    for error in answer.field_errors() {
        let message = sentence(&error.message);
        match fields.iter_mut().find(|f| f.name == error.field) {
            Some(field) => field.error = Some(message),
            None => unplaced.push(format!("{}: {message}", error.field)),
        }
    }
    unplaced
}

/// The API's message as a sentence: capitalised, with a full stop.
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut text: String = chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !text.ends_with(['.', '!', '?']) {
        text.push('.');
    }
    text
}

/// The page's problem for an answer that is a validation error.
pub fn invalid(answer: &Answer, unplaced: Vec<String>) -> Notice {
    let mut text = "Nothing was saved: correct the fields marked below.".to_owned();
    for extra in unplaced {
        text.push(' ');
        text.push_str(&extra);
    }
    if answer.field_errors().is_empty() {
        text = format!("Nothing was saved: {}", answer.detail());
    }
    Notice::new(text, answer.request_id.clone())
}

/// An answer no page handles itself, as an error page: a 403 (a viewer's
/// write), a 404, a 503 (a dependency not answering, with its
/// `Retry-After`), or the API's own words.
pub fn failure(answer: Answer, service: &str, what: &str) -> PageError {
    let request_id = answer.request_id.clone();
    match answer.status {
        StatusCode::FORBIDDEN => PageError::Forbidden { request_id },
        StatusCode::NOT_FOUND => PageError::NotFound {
            what: what.to_owned(),
            request_id,
        },
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => {
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

    #[test]
    fn the_apis_messages_become_sentences() {
        assert_eq!(sentence("must not be empty"), "Must not be empty.");
        assert_eq!(sentence("Is taken."), "Is taken.");
    }
}
