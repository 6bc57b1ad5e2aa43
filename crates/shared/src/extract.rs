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
use serde::{Serialize, de::DeserializeOwned};

use crate::problem::ApiError;

/// A JSON body (requests) or a JSON response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
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

/// Keyset pagination: at most `limit` items with an id greater than `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub after: i64,
}

impl Page {
    pub const DEFAULT_LIMIT: i64 = 100;
    pub const MAX_LIMIT: i64 = 1000;

    /// From the `limit` and `after` query parameters; out of range is a 400.
    pub fn new(limit: Option<i64>, after: Option<i64>) -> Result<Self, ApiError> {
        let limit = limit.unwrap_or(Self::DEFAULT_LIMIT);
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(ApiError::BadRequest(format!(
                "`limit` must be from 1 to {} (got {limit}).",
                Self::MAX_LIMIT
            )));
        }
        let after = after.unwrap_or(0);
        if after < 0 {
            return Err(ApiError::BadRequest(format!(
                "`after` must be an id, 0 or more (got {after})."
            )));
        }
        Ok(Self { limit, after })
    }
}
