//! The layers that make every answer of a service's API a problem+json when
//! it is an error, before and after its handler: one reading of the request
//! target, a bounded number of header fields, a bounded body, a 404 for a
//! path no route serves, and a body for axum's own bodiless errors.
//! [`problem_layers`] puts them around a router.

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};

use crate::{
    problem::{ApiError, Problem},
    target,
};

/// Request bodies larger than this are answered 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Requests with more header fields than this are answered 431.
pub const MAX_HEADER_FIELDS: usize = 100;

/// `routes` with the layers: the 404 fallback, the body limit, problem+json
/// for axum's bare errors, and the refusal of unreadable requests.
pub fn problem_layers(routes: Router) -> Router {
    routes
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(problem_for_bare_errors))
        .layer(middleware::from_fn(refuse_unreadable_requests))
}

async fn not_found() -> ApiError {
    ApiError::NotFound("There is nothing at this path.".into())
}

/// One reading of the request target ([`target::check`], the gateway's rules
/// too): a target that could be read two ways is a 400. And a request with
/// more than [`MAX_HEADER_FIELDS`] header fields is a 431. Both in
/// problem+json, before the route's handler runs.
async fn refuse_unreadable_requests(request: Request, next: Next) -> Response {
    let uri = request.uri();
    if let Err(fault) = target::check(uri.path(), uri.query()) {
        return ApiError::BadRequest(format!(
            "The request target holds {fault}, which the service refuses so that it and the gateway always read a path the same way."
        ))
        .into_response();
    }
    let fields = request.headers().len();
    if fields > MAX_HEADER_FIELDS {
        return Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "The request has {fields} header fields; at most {MAX_HEADER_FIELDS} are read."
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// Gives axum's own bodiless error answers (such as 405, which keeps its
/// `Allow` header) a problem+json body like every other error.
async fn problem_for_bare_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => "This path does not support this method.",
        _ => "The request could not be served.",
    };
    let problem = Problem::new(status, detail).into_response();
    parts.headers.extend(problem.headers().clone());
    Response::from_parts(parts, problem.into_body())
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, routing::get};
    use tower::ServiceExt;

    use super::*;

    /// A request target that could be read two ways is a 400, too many
    /// header fields a 431: both problems, and the route never runs.
    #[tokio::test(flavor = "current_thread")]
    async fn unreadable_requests_are_refused_in_problem_json() {
        let app = problem_layers(Router::new().route("/client/{id}", get(|| async { "found" })));
        let send = |target: &str, headers: usize| {
            let mut request = Request::get(target);
            for i in 0..headers {
                request = request.header(format!("x-h{i}"), "v");
            }
            app.clone().oneshot(request.body(Body::empty()).unwrap())
        };
        for (target, status) in [
            ("/client/1", StatusCode::OK),
            ("/client/%2E%2E/order/1", StatusCode::BAD_REQUEST),
            ("/client/1%2F..%2F..%2Forder", StatusCode::BAD_REQUEST),
            ("/client/./1", StatusCode::BAD_REQUEST),
            ("/client/%5C", StatusCode::BAD_REQUEST),
            ("/client/%00", StatusCode::BAD_REQUEST),
            ("/%63lient/1", StatusCode::BAD_REQUEST),
            ("/nowhere", StatusCode::NOT_FOUND),
        ] {
            let response = send(target, 0).await.unwrap();
            assert_eq!(response.status(), status, "{target}");
            if status != StatusCode::OK {
                assert_eq!(
                    response.headers()[header::CONTENT_TYPE],
                    "application/problem+json"
                );
            }
        }
        let ok = send("/client/1", MAX_HEADER_FIELDS).await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        let refused = send("/client/1", MAX_HEADER_FIELDS + 1).await.unwrap();
        assert_eq!(
            refused.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        assert_eq!(
            refused.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let not_allowed = app
            .clone()
            .oneshot(Request::delete("/client/1").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(not_allowed.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            not_allowed.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert!(not_allowed.headers().contains_key(header::ALLOW));
    }
}
