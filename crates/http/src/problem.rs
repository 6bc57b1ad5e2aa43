//! Errors as `application/problem+json` (RFC 9457).
//!
//! Every handler returns `Result<_, ApiError>`. The variants name what went
//! wrong in the caller's terms; [`ApiError::status`] maps each to its HTTP
//! status in one place. Details of a 5xx are logged with their whole cause
//! chain and never sent to the caller.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use kit_data::StoreError;
use kit_observability::context;
use serde::Serialize;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request body or query, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What a caller can be told went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("validation failed: {0:?}")]
    Validation(Vec<FieldError>),
    /// A dependency (the other service, the database) cannot answer now.
    #[error("service unavailable: {detail}")]
    Unavailable {
        detail: String,
        retry_after_secs: u64,
    },
    /// The caller sent more requests than its rate limit allows.
    #[error("too many requests: {detail}")]
    TooManyRequests {
        detail: String,
        retry_after_secs: u64,
    },
    /// A bug or an unexpected failure: logged, never described to the caller.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// A 422 with one invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(err.into())
    }

    // ANCHOR: status
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    // ANCHOR_END: status

    fn detail(&self) -> String {
        match self {
            Self::BadRequest(d)
            | Self::NotFound(d)
            | Self::Conflict(d)
            | Self::PreconditionFailed(d)
            | Self::UnsupportedMediaType(d) => d.clone(),
            Self::Unavailable { detail, .. } | Self::TooManyRequests { detail, .. } => {
                detail.clone()
            }
            Self::MethodNotAllowed => "This path does not support this method.".into(),
            Self::PayloadTooLarge => "The request body is larger than 1 MiB.".into(),
            Self::Validation(errors) => match errors.as_slice() {
                [one] => format!("{}: {}", one.field, one.message),
                _ => format!("{} fields are invalid.", errors.len()),
            },
            Self::Internal(_) => "An unexpected error occurred; it has been logged.".into(),
        }
    }
}

/// The RFC 9457 body. `type` is `about:blank` (the status says it all) except
/// for validation errors, which also carry `errors`. `request_id` (an
/// extension member) is the id of the request that failed, as in its
/// `X-Request-ID` header and in the logs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"type": "about:blank", "title": "Not Found", "status": 404, "detail": "There is no client 7.", "request_id": "6f1c0e2a9b4d4c1e8f7a3b2c1d0e9f8a"}))]
pub struct Problem {
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: None,
            request_id: context::current_request_id(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

/// How long a caller is asked to wait after a write refused for a full
/// disk: freeing space takes an operator, not a moment.
pub const STORAGE_FULL_RETRY_AFTER_SECS: u64 = 30;

/// The one mapping of a store's failure to an answer: the database
/// unavailable is a 503 the caller may retry, a full disk a 503 with a
/// longer `Retry-After` (logged once a minute, counted in
/// `db_storage_full_total`), anything else a bug, logged as a 500. A
/// unique constraint is a 500 here too: a store that expects one maps it
/// to its own answer (a 409 naming the field) before this.
// ANCHOR: store_error
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %cause_chain(&err), "database unavailable");
                ApiError::Unavailable {
                    detail: "The database is not reachable at the moment.".into(),
                    retry_after_secs: 2,
                }
            }
            StoreError::StorageFull(_) => {
                storage_full(&err);
                ApiError::Unavailable {
                    detail:
                        "The service's storage is full; nothing was changed. Please retry later."
                            .into(),
                    retry_after_secs: STORAGE_FULL_RETRY_AFTER_SECS,
                }
            }
            StoreError::Duplicate { .. } | StoreError::Failed(_) => ApiError::internal(err),
        }
    }
}
// ANCHOR_END: store_error

/// Logs a full disk as an error once a minute at most (with the writes
/// refused since the last line), and counts every refused write in
/// `db_storage_full_total`, which is what to alert on.
fn storage_full(err: &StoreError) {
    use std::{sync::Mutex, time::Instant};
    static LAST: Mutex<Option<(Instant, u64)>> = Mutex::new(None);
    metrics::counter!(kit_observability::metrics::DB_STORAGE_FULL).increment(1);
    let Ok(mut last) = LAST.lock() else { return };
    let refused = match *last {
        Some((at, count)) if at.elapsed() < std::time::Duration::from_secs(60) => {
            *last = Some((at, count + 1));
            return;
        }
        Some((_, count)) => count + 1,
        None => 1,
    };
    *last = Some((Instant::now(), 0));
    tracing::error!(
        storage = kit_data::description(),
        refused,
        error = %cause_chain(err),
        "database or disk is full: writes are refused (503) until space is freed; reads go on"
    );
}

/// Formats an error with every `source()` below it, for the logs.
pub fn cause_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

// ANCHOR: into_response
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Self::Internal(err) => {
                tracing::error!(error = %cause_chain(err.as_ref()), "request failed")
            }
            Self::Unavailable { detail, .. } => tracing::warn!(%detail, "dependency unavailable"),
            _ => {}
        }
        let mut problem = Problem::new(status, self.detail());
        let retry_after = match self {
            Self::Validation(errors) => {
                problem.kind = "/problems/validation";
                problem.errors = Some(errors);
                None
            }
            Self::Unavailable {
                retry_after_secs, ..
            }
            | Self::TooManyRequests {
                retry_after_secs, ..
            } => Some(retry_after_secs),
            _ => None,
        };
        let mut response = problem.into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
// ANCHOR_END: into_response

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn validation_error_lists_each_field() {
        let err = ApiError::Validation(vec![
            FieldError::new("name", "must not be empty"),
            FieldError::new("card_number", "is required"),
        ]);
        let response = err.into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let body = body_of(response).await;
        assert_eq!(body["status"], 422);
        assert_eq!(body["title"], "Unprocessable Entity");
        assert_eq!(body["errors"][1]["field"], "card_number");
    }

    #[tokio::test]
    async fn unavailable_sets_retry_after_and_internal_hides_details() {
        let response = ApiError::Unavailable {
            detail: "client_service timed out".into(),
            retry_after_secs: 3,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");

        let response = ApiError::internal("password=hunter2 leaked").into_response();
        let body = body_of(response).await;
        assert_eq!(body["status"], 500);
        assert!(!body.to_string().contains("hunter2"));
    }

    #[tokio::test]
    async fn a_problem_names_the_request_that_failed() {
        let body = body_of(ApiError::NotFound("gone".into()).into_response()).await;
        assert!(body.get("request_id").is_none(), "{body}");

        let mut headers = axum::http::HeaderMap::new();
        headers.insert("x-request-id", HeaderValue::from_static("req-42"));
        let response = context::Correlation::from_headers(&headers)
            .scope(async { ApiError::NotFound("gone".into()).into_response() })
            .await;
        assert_eq!(body_of(response).await["request_id"], "req-42");
    }
}
