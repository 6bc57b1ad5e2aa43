//! The HTTP server every service runs: its routes plus the shared layers
//! (request id, trace context, the request's span, log line and metrics,
//! one reading of the request target, body limit, problem+json for bare
//! errors), the health endpoints, `/metrics`, and graceful shutdown on
//! Ctrl-C or SIGTERM.

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use tower::{Layer, Service};
use tracing::{Instrument, field::Empty};

use std::{
    convert::Infallible,
    net::SocketAddr,
    pin::Pin,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use crate::{
    config::{CommonConfig, redact_url},
    data::db::{Db, DbError},
    http::{
        problem::{ApiError, Problem, cause_chain},
        target,
    },
    observability::{
        context::{Correlation, REQUEST_ID},
        metrics, telemetry,
    },
    upstream::BuildError,
};

/// Why a service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot prepare the data directory")]
    DataDir(#[from] std::io::Error),
    #[error("the database is not usable")]
    Database(#[from] DbError),
    #[error("cannot build the HTTP client for the other service")]
    HttpClient(#[from] BuildError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the server failed")]
    Serve(#[source] std::io::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A service ready to serve: bound to its port, connected to its database.
pub struct Started {
    listener: tokio::net::TcpListener,
    app: Router,
    db: Option<Db>,
    draining: Draining,
    grace: Duration,
}

/// Set once the service has been told to stop: `/readyz` then says not ready.
#[derive(Clone, Debug, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn start(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl Started {
    /// Binds `addr` (port 0 picks a free port) for `routes` plus the shared
    /// layers, health endpoints and `/metrics`.
    pub async fn bind(
        service: &'static str,
        addr: SocketAddr,
        routes: Router,
        db: Db,
        database_url: &str,
        config: &CommonConfig,
    ) -> Result<Self, StartError> {
        Self::bind_with(
            service,
            addr,
            routes,
            Some((db, redact_url(database_url))),
            config.shutdown_grace,
        )
        .await
    }

    /// As [`bind`](Self::bind), for a service without a database of its
    /// own (auth_service): `/readyz` is then only "not shutting down".
    pub async fn bind_without_database(
        service: &'static str,
        addr: SocketAddr,
        routes: Router,
        grace: Duration,
    ) -> Result<Self, StartError> {
        Self::bind_with(service, addr, routes, None, grace).await
    }

    async fn bind_with(
        service: &'static str,
        addr: SocketAddr,
        routes: Router,
        db: Option<(Db, String)>,
        grace: Duration,
    ) -> Result<Self, StartError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let local = listener.local_addr().map_err(StartError::Serve)?;
        metrics::install();
        metrics::set_build_info(service, env!("CARGO_PKG_VERSION"));
        let (db, database) = db.unzip();
        tracing::info!(
            service,
            addr = %local,
            database = database.as_deref().unwrap_or("none"),
            version = env!("CARGO_PKG_VERSION"),
            "listening"
        );
        let draining = Draining::default();
        Ok(Self {
            listener,
            app: app(routes, db.clone(), draining.clone()),
            db,
            draining,
            grace,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves until Ctrl-C or SIGTERM; then reports not ready, stops
    /// accepting connections, lets the requests in flight finish (for at most
    /// the grace period), closes the database pool and returns.
    pub async fn run(self) -> Result<(), StartError> {
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let draining = self.draining.clone();
        let server = serve(self.listener, self.app, async move {
            shutdown_signal().await;
            draining.start();
            let _ = stop_tx.send(true);
        });
        let grace = self.grace;
        let deadline = async move {
            let _ = stop_rx.wait_for(|stopped| *stopped).await;
            tokio::time::sleep(grace).await;
        };
        let served = tokio::select! {
            served = server => served,
            () = deadline => {
                tracing::warn!(?grace, "grace period over: requests still in flight are dropped");
                Ok(())
            }
        };
        if let Some(db) = &self.db {
            db.close().await;
        }
        tracing::info!("stopped");
        served.map_err(StartError::Serve)
    }
}

/// The process exit code for a service's result, logging a failure with its
/// whole cause chain.
pub fn exit_code(result: Result<(), StartError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %cause_chain(&err), "exiting");
            eprintln!("error: {}", cause_chain(&err));
            ExitCode::FAILURE
        }
    }
}

/// Request bodies larger than this are answered 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The service's own endpoints, answered on its port only (the gateway
/// routes none of them): not traced, and logged at debug level only.
const OPERATIONS_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

// ANCHOR: app
/// Wraps a service's routes with the health endpoints, `/metrics` and the
/// shared layers.
pub fn app(routes: Router, db: Option<Db>, draining: Draining) -> Router {
    let operations = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state((db, draining));
    routes
        .merge(operations)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(problem_for_bare_errors))
        .layer(middleware::from_fn(refuse_unreadable_requests))
        .layer(ObserveLayer)
}
// ANCHOR_END: app

/// Requests with more header fields than this are answered 431.
pub const MAX_HEADER_FIELDS: usize = 100;

/// How many header fields the HTTP parser takes before it answers a 431 of
/// its own, with no body (hyper's default: 100). Above what the gateway can
/// pass on, so that through the gateway no request gets that bare 431 and
/// [`refuse_unreadable_requests`] answers it in problem+json instead: the
/// gateway reads at most 1 KiB + 4 x 8 KiB of request header
/// (`client_header_buffer_size`, `large_client_header_buffers` in
/// gateway/templates/gateway.conf.template: KEEP IN STEP), and the shortest
/// field it passes on, `a:` and a line feed, is 3 bytes: 11 264 fields.
/// (nginx 1.22 on Debian and upstream nginx since 1.29 also refuse more
/// than 1000 header lines themselves, `max_headers`; the nginx 1.27 of the
/// Docker image does not.) The parser's arrays of this length are
/// allocated, not initialised, for each request head: their cost is one
/// allocation of about 0.8 MB of address space, of which only the fields
/// present are written.
const PARSED_HEADER_FIELDS: usize = 12 * 1024;

/// Serves `app` on `listener` until `shutdown` resolves; then stops
/// accepting connections, lets each open one finish the request in flight
/// (an idle keep-alive connection is closed at once) and returns when all
/// are closed. It is what `axum::serve` does, with the HTTP/1 parser's
/// header limit set ([`PARSED_HEADER_FIELDS`]), which `axum::serve` does
/// not let one set.
async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
) -> Result<(), std::io::Error> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.max_headers(PARSED_HEADER_FIELDS);
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let io = hyper_util::rt::TokioIo::new(stream);
        let connection = connections.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
    Ok(())
}

/// As `axum::serve`: a connection that failed before it was accepted is
/// skipped; any other failure (too many open files) is logged, then the
/// loop waits a second rather than spin.
async fn accept_failed(err: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        err.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "cannot accept a connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
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
/// logged in one line, and answered with its `X-Request-ID`.
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
            span.in_scope(|| {
                log_request(&method, &route, status, latency, &request_id, operations)
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
/// request id as fields of their own (also inside the request's span).
fn log_request(
    method: &axum::http::Method,
    route: &str,
    status: StatusCode,
    latency: Duration,
    request_id: &HeaderValue,
    operations: bool,
) {
    let method = method.as_str();
    let status = status.as_u16();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    let request_id = request_id.to_str().unwrap_or_default();
    macro_rules! line {
        ($level:expr) => {
            tracing::event!(
                $level,
                method,
                route,
                status,
                latency_ms,
                request_id,
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

/// The service's metrics, in the Prometheus text format.
async fn metrics_text(State((db, _)): State<(Option<Db>, Draining)>) -> Response {
    if let Some(db) = &db {
        db.record_metrics();
    }
    let mut response = metrics::render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Liveness is the process answering; readiness is its own database
/// answering (never the other service: that would turn one outage into two),
/// and not shutting down.
async fn readyz(State((db, draining)): State<(Option<Db>, Draining)>) -> Response {
    if draining.is_draining() {
        return ApiError::Unavailable {
            detail: "The service is shutting down.".into(),
            retry_after_secs: 1,
        }
        .into_response();
    }
    let Some(db) = db else {
        return "ready".into_response();
    };
    match db.ping().await {
        Ok(()) => "ready".into_response(),
        Err(err) => ApiError::Unavailable {
            detail: format!("The database is not reachable: {err}"),
            retry_after_secs: 2,
        }
        .into_response(),
    }
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

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use std::{
        io::Write,
        sync::{Arc, Mutex},
    };

    use axum::{body::Body, http::Request};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    /// Log lines written to memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A request target that could be read two ways is a 400, too many
    /// header fields a 431: both problems, and the route never runs.
    #[tokio::test(flavor = "current_thread")]
    async fn unreadable_requests_are_refused_in_problem_json() {
        let app = Router::new()
            .route("/client/{id}", get(|| async { "found" }))
            .fallback(not_found)
            .layer(middleware::from_fn(refuse_unreadable_requests));
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
    }

    /// The accept loop's HTTP parser takes more header fields than its own
    /// default of 100 (and more than the gateway can pass on), so that a
    /// request with 11 000 reaches the layer above and is answered in
    /// problem+json, not with hyper's bare 431.
    #[tokio::test(flavor = "current_thread")]
    async fn the_server_reads_enough_header_fields_to_answer_a_431_itself() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let app = Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(middleware::from_fn(refuse_unreadable_requests));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, app, async {
            let _ = stopped.await;
        }));
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut request = String::from("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n");
        for _ in 0..11_000 {
            request.push_str("a:\n");
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
        assert!(
            answer.contains("content-type: application/problem+json"),
            "{answer}"
        );
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot store the order")]
    struct Outer(#[source] std::io::Error);

    /// A 5xx is logged with its whole cause chain and the request's id, its
    /// request line at error level; the caller gets the id, not the causes.
    #[tokio::test(flavor = "current_thread")]
    async fn a_5xx_is_logged_with_its_cause_chain_and_request_id() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);

        let failing = || async {
            let cause = std::io::Error::other("disk full at /var/lib/x");
            Err::<(), _>(ApiError::internal(Outer(cause)))
        };
        let app = Router::new()
            .route("/boom/{id}", get(failing))
            .layer(ObserveLayer);
        let request = Request::get("/boom/7")
            .header("x-request-id", "req-500")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[REQUEST_ID], "req-500");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["request_id"], "req-500");
        assert!(!body.to_string().contains("disk full"), "{body}");

        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let failed = lines
            .iter()
            .find(|l| l["message"] == "request failed")
            .unwrap_or_else(|| panic!("no `request failed` line: {text}"));
        assert_eq!(
            failed["error"],
            "cannot store the order: disk full at /var/lib/x"
        );
        assert_eq!(failed["span"]["request_id"], "req-500");
        let finished = lines
            .iter()
            .find(|l| l["message"] == "request finished")
            .unwrap_or_else(|| panic!("no `request finished` line: {text}"));
        assert_eq!(finished["level"], "ERROR");
        assert_eq!(finished["status"], 500);
        assert_eq!(finished["route"], "/boom/{id}");
        assert_eq!(finished["method"], "GET");
        assert_eq!(finished["request_id"], "req-500");
        assert!(finished["latency_ms"].as_f64().is_some(), "{finished}");
    }
}
