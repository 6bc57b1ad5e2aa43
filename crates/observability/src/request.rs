//! The request's own observation, outermost on every route: its request id
//! and trace context, its `request` span, its one log line and its metrics
//! ([`ObserveLayer`]), and who made it ([`Caller`]), as the token check
//! found it.

use std::{
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request},
    http::{HeaderValue, StatusCode},
    response::Response,
};
use tower::{Layer, Service};
use tracing::{Instrument, field::Empty};

use crate::{
    context::{Correlation, REQUEST_ID},
    metrics, telemetry,
};

/// The service's own endpoints, answered on its port only (the gateway
/// routes none of them): not traced, and logged at debug level only.
pub const OPERATIONS_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Who made a request: the verified access token's `sub` and `client_id`.
/// The token check (kit-auth's guard) puts it among the extensions of the
/// answer to every request whose token it accepted (a read or a write, and
/// also when it then refuses the scope or the rate); [`Observe`] takes it out
/// and writes it into the request's line as `sub` and `client_id`. A request
/// without a valid token has none, and its line no such fields. Never the
/// token itself.
///
/// On the response rather than the request: the request is the handler's by
/// the time the line is written, while every layer between the check and
/// [`Observe`] passes the response's extensions on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// `sub`: who: the person's user id, or the client itself for a program.
    pub sub: String,
    /// The client the token was issued to (`client_id`, else `azp`, else
    /// `sub`).
    pub client_id: String,
}

/// The outermost layer of every route: see [`Observe`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner }
    }
}

/// Every request, from the outside in: its request id (an incoming
/// well-formed `X-Request-ID`, else a new one) and trace context become the
/// current [`Correlation`]; it runs inside its `request` span (an
/// OpenTelemetry server span, the child of an incoming `traceparent`, when
/// traces are exported); then it is counted and timed by route template,
/// logged in one line (with its [`Caller`], if the answer names one), and
/// answered with its `X-Request-ID`.
///
/// A plain tower service rather than `middleware::from_fn`: it runs on every
/// request, and calls the route directly instead of cloning it each time.
#[derive(Clone, Debug)]
pub struct Observe<S> {
    inner: S,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let started = Instant::now();
        let correlation = Correlation::from_headers(request.headers());
        let request_id = correlation.request_id_header();
        request.headers_mut().insert(REQUEST_ID, request_id.clone());
        let method = request.method().clone();
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or(metrics::UNMATCHED_ROUTE, MatchedPath::as_str)
            .to_owned();
        let operations = OPERATIONS_ROUTES.contains(&route.as_str());
        let exported = telemetry::otel_enabled() && !operations;
        let span = request_span(&request, &correlation, &route, operations, exported);
        let response = span.in_scope(|| self.inner.call(request));
        Box::pin(async move {
            let Ok(mut response) = correlation.scope(response).instrument(span.clone()).await;
            let status = response.status();
            let latency = started.elapsed();
            metrics::record_request(&method, &route, status, latency);
            if exported {
                span.record("status", i64::from(status.as_u16()));
                if status.is_server_error() {
                    span.record("otel.status_code", "ERROR");
                }
            }
            let caller = response.extensions_mut().remove::<Caller>();
            span.in_scope(|| {
                log_request(
                    &method,
                    &route,
                    status,
                    latency,
                    &request_id,
                    caller.as_ref(),
                    operations,
                )
            });
            response.headers_mut().insert(REQUEST_ID, request_id);
            Ok(response)
        })
    }
}

/// The `request` span. Exported: an OpenTelemetry server span named after
/// the route template, the child of the caller's `traceparent`. Not
/// exported: only what the log lines need (the request line has the
/// status). `/healthz`, `/readyz` and `/metrics`: debug level.
fn request_span(
    request: &Request,
    correlation: &Correlation,
    route: &str,
    operations: bool,
    exported: bool,
) -> tracing::Span {
    let method = request.method();
    if exported {
        // Low cardinality: the route template, and only standard methods.
        let standard = metrics::method_label(method);
        let name = match route {
            metrics::UNMATCHED_ROUTE => standard.to_owned(),
            route => format!("{standard} {route}"),
        };
        let span = tracing::info_span!(
            "request",
            otel.kind = "server",
            otel.name = name.as_str(),
            otel.status_code = Empty,
            method = %method,
            route,
            uri = %request.uri(),
            request_id = correlation.request_id(),
            status = Empty,
        );
        telemetry::set_remote_parent(&span, request.headers());
        span
    } else if operations {
        tracing::debug_span!(
            "request",
            method = %method,
            route,
            request_id = correlation.request_id(),
        )
    } else {
        tracing::info_span!(
            "request",
            method = %method,
            route,
            uri = %request.uri(),
            request_id = correlation.request_id(),
        )
    }
}

/// The one line per request: method, route template, status, latency and
/// request id as fields of their own (also inside the request's span), and
/// the caller's `sub` and `client_id` when its token was accepted (fields
/// left out, not empty, when not).
fn log_request(
    method: &axum::http::Method,
    route: &str,
    status: StatusCode,
    latency: Duration,
    request_id: &HeaderValue,
    caller: Option<&Caller>,
    operations: bool,
) {
    let method = method.as_str();
    let status = status.as_u16();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    let request_id = request_id.to_str().unwrap_or_default();
    // An absent `Option` field is not written at all.
    let sub = caller.map(|c| c.sub.as_str());
    let client_id = caller.map(|c| c.client_id.as_str());
    macro_rules! line {
        ($level:expr) => {
            tracing::event!(
                $level,
                method,
                route,
                status,
                latency_ms,
                request_id,
                sub,
                client_id,
                "request finished"
            )
        };
    }
    match status {
        _ if operations => line!(tracing::Level::DEBUG),
        500.. => line!(tracing::Level::ERROR),
        _ => line!(tracing::Level::INFO),
    }
}

#[cfg(test)]
mod tests {
    use axum::{Router, body::Body, response::IntoResponse, routing::post};
    use tower::ServiceExt;

    use super::*;
    use crate::json_lines::tests::Memory;

    /// The answer's [`Caller`] is written into the request's JSON line as
    /// `sub` and `client_id`, and taken off the answer; an answer without
    /// one gives a line without them.
    #[tokio::test(flavor = "current_thread")]
    async fn the_callers_sub_and_client_are_in_the_request_line() {
        let memory = Memory::default();
        let subscriber = memory.subscriber();
        let _default = tracing::subscriber::set_default(subscriber);

        let app = Router::new()
            .route(
                "/order/",
                post(|| async {
                    let mut response = StatusCode::CREATED.into_response();
                    response.extensions_mut().insert(Caller {
                        sub: "user-42".into(),
                        client_id: "console".into(),
                    });
                    response
                }),
            )
            .route("/anonymous", post(|| async { StatusCode::UNAUTHORIZED }))
            .layer(ObserveLayer);
        for (path, id) in [("/order/", "with-caller"), ("/anonymous", "without")] {
            let request = Request::post(path)
                .header(REQUEST_ID, id)
                .body(Body::empty())
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert!(response.extensions().get::<Caller>().is_none());
        }

        let text = memory.text();
        let line = |id: &str| -> serde_json::Value {
            text.lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .find(|l| l["message"] == "request finished" && l["request_id"] == id)
                .unwrap_or_else(|| panic!("no request line for {id}: {text}"))
        };
        let with = line("with-caller");
        assert_eq!(with["status"], 201);
        assert_eq!(with["sub"], "user-42");
        assert_eq!(with["client_id"], "console");
        let without = line("without");
        assert_eq!(without["status"], 401);
        let fields = without.as_object().unwrap();
        assert!(
            !fields.contains_key("sub") && !fields.contains_key("client_id"),
            "{without}"
        );
    }
}
