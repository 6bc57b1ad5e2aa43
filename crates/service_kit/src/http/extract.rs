//! Extractors whose rejections are [`ApiError`]s, so that a malformed body or
//! query is answered in problem+json like every other error.

use axum::{
    extract::{
        FromRequest, FromRequestParts, Request,
        rejection::{JsonRejection, PathRejection, QueryRejection},
    },
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::http::problem::ApiError;

/// A JSON body (requests) or a JSON response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    /// Only `application/json` (POST and PUT); anything else is a 415.
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_media_type(&req, &["application/json"])?;
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// A JSON Merge Patch (RFC 7396) body: `application/merge-patch+json` (or
/// plain `application/json`), which must be a JSON object.
#[derive(Debug, Clone)]
pub struct MergePatch(pub serde_json::Map<String, serde_json::Value>);

impl<S: Send + Sync> FromRequest<S> for MergePatch {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_media_type(&req, &["application/merge-patch+json", "application/json"])?;
        match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(serde_json::Value::Object(patch))) => Ok(Self(patch)),
            Ok(_) => Err(ApiError::invalid(
                "body",
                "a merge patch must be a JSON object",
            )),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

impl MergePatch {
    /// The patch's members.
    pub fn members(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.0
    }

    /// Applies the patch to `target` (RFC 7396): a member set to `null` is
    /// removed, an object is merged member by member, anything else replaces.
    pub fn apply_to(&self, target: &mut serde_json::Map<String, serde_json::Value>) {
        for (key, value) in &self.0 {
            merge(target, key, value);
        }
    }
}

fn merge(
    target: &mut serde_json::Map<String, serde_json::Value>,
    key: &str,
    patch: &serde_json::Value,
) {
    use serde_json::Value;
    match patch {
        Value::Null => {
            target.remove(key);
        }
        Value::Object(members) => {
            let slot = target
                .entry(key)
                .or_insert_with(|| Value::Object(Default::default()));
            if !slot.is_object() {
                *slot = Value::Object(Default::default());
            }
            if let Value::Object(inner) = slot {
                for (k, v) in members {
                    merge(inner, k, v);
                }
            }
        }
        other => {
            target.insert(key.to_owned(), other.clone());
        }
    }
}

/// A 415 unless the request's `Content-Type` is one of `allowed`.
fn require_media_type(req: &Request, allowed: &[&str]) -> Result<(), ApiError> {
    let essence = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    match essence {
        Some(essence) if allowed.contains(&essence.as_str()) => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "The request body must be sent with `Content-Type: {}`.",
            allowed.join("` or `")
        ))),
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
            "The request body must be JSON, sent with `Content-Type: application/json`.".into(),
        ),
        JsonRejection::JsonSyntaxError(err) => {
            ApiError::BadRequest(format!("The body is not valid JSON: {}", inner(&err)))
        }
        JsonRejection::JsonDataError(err) => ApiError::invalid("body", inner(&err)),
        JsonRejection::BytesRejection(err) if err.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge
        }
        other => ApiError::BadRequest(other.body_text()),
    }
}

/// The innermost message of a rejection: serde's own words, with the position.
fn inner(err: &dyn std::error::Error) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A query string; a value of the wrong type is a 400 that names it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|err: QueryRejection| {
                ApiError::BadRequest(format!("Invalid query string: {}", inner(&err)))
            })
    }
}

/// For `#[serde(deserialize_with = "whole_number")]` on an integer query
/// parameter: a whole number, written `196` or `196.0` or `1.96e2` (JSON
/// Schema's `integer` allows each, so the documents and the service agree),
/// else an error that names the value.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    parse_whole_number(&text)
        .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a whole number")))
}

/// As [`whole_number`], for an optional parameter (with `#[serde(default)]`).
pub fn optional_whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    whole_number(deserializer).map(Some)
}

fn parse_whole_number(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().or_else(|| {
        // As for integers in bodies (validate::integer_in): exactly whole,
        // and small enough that a float holds it exactly.
        text.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

/// A resource id in the path: a positive 64-bit integer, else 404 (no such
/// resource can exist at that path).
#[derive(Debug, Clone, Copy)]
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|err: PathRejection| ApiError::BadRequest(err.body_text()))?;
        match raw.parse::<i64>() {
            Ok(id) if id > 0 => Ok(Self(id)),
            _ => Err(ApiError::NotFound(format!(
                "`{raw}` is not an id: ids are positive integers."
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_numbers_may_be_written_as_json_schema_integers() {
        assert_eq!(parse_whole_number("196"), Some(196));
        assert_eq!(parse_whole_number("196.0"), Some(196));
        assert_eq!(parse_whole_number("1.96e2"), Some(196));
        assert_eq!(parse_whole_number("-3"), Some(-3));
        for bad in ["196.5", "", "x", "1e20", "NaN", "inf", "0x10"] {
            assert_eq!(parse_whole_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}})
            .as_object()
            .cloned()
            .unwrap();
        let patch = MergePatch(
            json!({"a": "z", "c": {"f": null}, "n": [1]})
                .as_object()
                .cloned()
                .unwrap(),
        );
        patch.apply_to(&mut target);
        assert_eq!(
            serde_json::Value::Object(target),
            json!({"a": "z", "c": {"d": "e"}, "n": [1]})
        );

        let mut target = json!({"a": "b"}).as_object().cloned().unwrap();
        MergePatch(json!({"a": null}).as_object().cloned().unwrap()).apply_to(&mut target);
        assert!(target.is_empty());
    }
}
