//! Conditional requests (RFC 9110 §13): every single resource has a version,
//! its `ETag` is that version, `If-None-Match` on GET answers 304 when
//! nothing changed, and `If-Match` on PUT, PATCH and DELETE answers 412 when
//! the resource changed since the client read it — so two writers that read
//! the same version cannot overwrite each other silently: one gets 412.
//!
//! The check and the write are one statement (`… WHERE id = $1 AND version
//! = $2`), so no other write can slip in between.

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use kit_data::Written;

use axum::Json;

use crate::problem::ApiError;

/// The `ETag` of a resource at `version`: a strong entity tag.
pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// One entity-tag list header: `*`, or the tags it names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tags {
    Any,
    /// (weak, opaque tag) pairs.
    List(Vec<(bool, String)>),
}

impl Tags {
    fn parse(headers: &HeaderMap, name: HeaderName) -> Result<Option<Self>, ApiError> {
        let values: Vec<&HeaderValue> = headers.get_all(&name).iter().collect();
        if values.is_empty() {
            return Ok(None);
        }
        let mut tags = Vec::new();
        for value in values {
            let text = value.to_str().map_err(|_| malformed(&name))?.trim();
            if text == "*" {
                return Ok(Some(Tags::Any));
            }
            tags.extend(parse_list(text).ok_or_else(|| malformed(&name))?);
        }
        // An empty field is no condition (as if it had not been sent).
        Ok((!tags.is_empty()).then_some(Tags::List(tags)))
    }

    /// Strong comparison (If-Match): a weak tag never matches.
    fn strong_match(&self, version: i64) -> bool {
        let current = version.to_string();
        match self {
            Tags::Any => true,
            Tags::List(tags) => tags.iter().any(|(weak, tag)| !weak && *tag == current),
        }
    }

    /// Weak comparison (If-None-Match).
    fn weak_match(&self, version: i64) -> bool {
        let current = version.to_string();
        match self {
            Tags::Any => true,
            Tags::List(tags) => tags.iter().any(|(_, tag)| *tag == current),
        }
    }
}

/// `#entity-tag`: tags separated by commas and spaces, each `"…"` or
/// `W/"…"`, where … is visible ASCII but `"` (so a comma may be inside).
fn parse_list(text: &str) -> Option<Vec<(bool, String)>> {
    let mut tags = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return Some(tags);
        }
        let (weak, after) = match rest.strip_prefix("W/") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        let body = after.strip_prefix('"')?;
        let end = body.find('"')?;
        let opaque = &body[..end];
        if !opaque
            .bytes()
            .all(|b| b == b'!' || (b'#'..=b'~').contains(&b))
        {
            return None;
        }
        tags.push((weak, opaque.to_owned()));
        rest = &body[end + 1..];
        // After a tag: only spaces, then a comma or the end.
        let trimmed = rest.trim_start_matches([' ', '\t']);
        if !(trimmed.is_empty() || trimmed.starts_with(',')) {
            return None;
        }
        rest = trimmed;
    }
}

fn malformed(name: &HeaderName) -> ApiError {
    ApiError::BadRequest(format!(
        "`{name}` must be `*` or a list of entity tags such as \"3\"."
    ))
}

/// The `If-Match` and `If-None-Match` headers of a request.
#[derive(Debug, Clone, Default)]
pub struct Preconditions {
    if_match: Option<Tags>,
    if_none_match: Option<Tags>,
}

impl<S: Send + Sync> FromRequestParts<S> for Preconditions {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Self {
            if_match: Tags::parse(&parts.headers, header::IF_MATCH)?,
            if_none_match: Tags::parse(&parts.headers, header::IF_NONE_MATCH)?,
        })
    }
}

impl Preconditions {
    /// For a write to a resource now at `current` version: `Ok(None)` when
    /// the request has no `If-Match`, `Ok(Some(current))` when it matches (the
    /// write must then still find that version), 412 when it does not.
    pub fn expected_version(&self, current: i64) -> Result<Option<i64>, ApiError> {
        match &self.if_match {
            None => Ok(None),
            Some(tags) if tags.strong_match(current) => Ok(Some(current)),
            Some(_) => Err(changed_since()),
        }
    }

    /// Whether the request asks for a write only if the resource is unchanged.
    pub fn has_if_match(&self) -> bool {
        self.if_match.is_some()
    }

    /// For a GET: whether the client's copy is current (answer 304).
    pub fn not_modified(&self, current: i64) -> bool {
        self.if_none_match
            .as_ref()
            .is_some_and(|tags| tags.weak_match(current))
    }
}

/// The 412 of a conditional write that found another version.
/// The answer of a conditional write that did not write: 412 when the
/// record is at another version, `missing()` when there is none:
/// `store.update(…).await?.done(|| not_found(id))?`.
pub trait WrittenOr<T> {
    fn done(self, missing: impl FnOnce() -> ApiError) -> Result<T, ApiError>;
}

impl<T> WrittenOr<T> for Written<T> {
    fn done(self, missing: impl FnOnce() -> ApiError) -> Result<T, ApiError> {
        match self {
            Written::Done(value) => Ok(value),
            Written::Stale => Err(changed_since()),
            Written::Missing => Err(missing()),
        }
    }
}

pub fn changed_since() -> ApiError {
    ApiError::PreconditionFailed(
        "The resource has changed since the version named in If-Match: read it again, then retry."
            .into(),
    )
}

/// A single resource with its `ETag`.
pub struct Tagged<T> {
    pub version: i64,
    pub status: StatusCode,
    pub body: T,
}

impl<T> Tagged<T> {
    pub fn ok(version: i64, body: T) -> Self {
        Self {
            version,
            status: StatusCode::OK,
            body,
        }
    }
}

impl<T: Serialize> IntoResponse for Tagged<T> {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        response
            .headers_mut()
            .insert(header::ETAG, etag(self.version));
        response
    }
}

/// `304 Not Modified` with the current `ETag`.
pub fn not_modified(version: i64) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    response.headers_mut().insert(header::ETAG, etag(version));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preconditions(name: HeaderName, value: &str) -> Preconditions {
        let mut headers = HeaderMap::new();
        headers.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        let tags = Tags::parse(&headers, name.clone()).unwrap();
        if name == header::IF_MATCH {
            Preconditions {
                if_match: tags,
                if_none_match: None,
            }
        } else {
            Preconditions {
                if_match: None,
                if_none_match: tags,
            }
        }
    }

    #[test]
    fn if_match_uses_strong_comparison() {
        assert_eq!(
            preconditions(header::IF_MATCH, "\"3\"")
                .expected_version(3)
                .unwrap(),
            Some(3)
        );
        assert_eq!(
            preconditions(header::IF_MATCH, "\"1\", \"3\"")
                .expected_version(3)
                .unwrap(),
            Some(3)
        );
        assert_eq!(
            preconditions(header::IF_MATCH, "*")
                .expected_version(7)
                .unwrap(),
            Some(7)
        );
        assert!(
            preconditions(header::IF_MATCH, "\"2\"")
                .expected_version(3)
                .is_err()
        );
        assert!(
            preconditions(header::IF_MATCH, "W/\"3\"")
                .expected_version(3)
                .is_err()
        );
        assert_eq!(Preconditions::default().expected_version(3).unwrap(), None);
    }

    #[test]
    fn if_none_match_uses_weak_comparison() {
        assert!(preconditions(header::IF_NONE_MATCH, "W/\"3\"").not_modified(3));
        assert!(preconditions(header::IF_NONE_MATCH, "*").not_modified(1));
        assert!(!preconditions(header::IF_NONE_MATCH, "\"2\"").not_modified(3));
    }

    #[test]
    fn tags_may_hold_commas() {
        assert_eq!(
            parse_list(r#"W/"a,b" , "c""#).unwrap(),
            [(true, "a,b".to_owned()), (false, "c".to_owned())]
        );
        assert!(parse_list(r#""a" "b""#).is_none());
        assert!(parse_list(r#""a"#).is_none());
        assert_eq!(parse_list("").unwrap(), []);
    }

    /// The pattern the OpenAPI documents give for these headers accepts
    /// exactly what the parser accepts (schemathesis sends what the
    /// pattern refuses and expects a 400).
    #[test]
    fn the_documented_pattern_is_what_the_parser_takes() {
        let pattern = regex::Regex::new(crate::api_doc::ENTITY_TAGS).unwrap();
        for text in [
            "",
            ",",
            " , ,",
            "*",
            " * ",
            "\"3\"",
            "W/\"3\"",
            "\"a\",\"b\"",
            "\"a\" ,\t, W/\"b\" ,",
            ", \"a\"",
            "\"a,b\"",
            "\"\"",
            "3",
            "\"a\" \"b\"",
            "\"a",
            "*, \"a\"",
            "W/3",
            "w/\"a\"",
            "\"a\"x",
            "\"caf\u{e9}\"",
            "\"a b\"",
            "\"a\"\t",
            "**",
        ] {
            let mut headers = HeaderMap::new();
            let Ok(value) = HeaderValue::from_str(text) else {
                continue;
            };
            headers.insert(header::IF_NONE_MATCH, value);
            let parsed = Tags::parse(&headers, header::IF_NONE_MATCH).is_ok();
            assert_eq!(pattern.is_match(text), parsed, "{text:?}");
        }
    }

    #[test]
    fn malformed_tags_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_MATCH, HeaderValue::from_static("3"));
        assert!(Tags::parse(&headers, header::IF_MATCH).is_err());
    }
}
