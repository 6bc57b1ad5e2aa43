//! The service's own endpoints, on its port only (the gateway routes none
//! of them): `/healthz` (liveness: the process answers), `/readyz`
//! (readiness: not shutting down, and its dependency answers; never
//! another service: that would turn one outage into two) and `/metrics`
//! (Prometheus' text format).

use std::sync::Arc;

use axum::{
    Router,
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};
use kit_http::problem::ApiError;
use kit_observability::{health::Dependency, metrics};

use crate::shutdown::Draining;

#[derive(Clone)]
struct Operations {
    dependency: Option<Arc<dyn Dependency>>,
    draining: Draining,
}

/// The three endpoints, for `dependency` (if the service has one) and the
/// shutdown flag `draining`.
pub(crate) fn routes(dependency: Option<Arc<dyn Dependency>>, draining: Draining) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Operations {
            dependency,
            draining,
        })
}

/// The service's metrics, in the Prometheus text format.
async fn metrics_text(State(operations): State<Operations>) -> Response {
    if let Some(dependency) = &operations.dependency {
        dependency.sample_metrics();
    }
    let mut response = metrics::render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn readyz(State(operations): State<Operations>) -> Response {
    if operations.draining.is_draining() {
        return ApiError::Unavailable {
            detail: "The service is shutting down.".into(),
            retry_after_secs: 1,
        }
        .into_response();
    }
    let Some(dependency) = &operations.dependency else {
        return "ready".into_response();
    };
    match dependency.check().await {
        Ok(()) => "ready".into_response(),
        Err(detail) => ApiError::Unavailable {
            detail,
            retry_after_secs: 2,
        }
        .into_response(),
    }
}
