//! The HTTP server every service runs: its routes plus the shared layers
//! (request id, tracing, body limit, problem+json for bare errors), the
//! health endpoints, and graceful shutdown on Ctrl-C or SIGTERM.

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{HeaderName, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::{DefaultOnResponse, TraceLayer},
};
use tracing::Level;

use std::{
    future::IntoFuture,
    net::SocketAddr,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crate::{
    config::CommonConfig,
    db::{Db, DbError, redact_url},
    problem::{ApiError, Problem, cause_chain},
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
    db: Db,
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
    /// layers and health endpoints.
    pub async fn bind(
        addr: SocketAddr,
        routes: Router,
        db: Db,
        database_url: &str,
        config: &CommonConfig,
    ) -> Result<Self, StartError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let local = listener.local_addr().map_err(StartError::Serve)?;
        tracing::info!(
            addr = %local,
            database = %redact_url(database_url),
            version = env!("CARGO_PKG_VERSION"),
            "listening"
        );
        let draining = Draining::default();
        Ok(Self {
            listener,
            app: app(routes, db.clone(), draining.clone()),
            db,
            draining,
            grace: config.shutdown_grace,
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
        let server = axum::serve(self.listener, self.app).with_graceful_shutdown(async move {
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
            served = server.into_future() => served,
            () = deadline => {
                tracing::warn!(?grace, "grace period over: requests still in flight are dropped");
                Ok(())
            }
        };
        self.db.close().await;
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

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps a service's routes with the health endpoints and the shared layers.
pub fn app(routes: Router, db: Db, draining: Draining) -> Router {
    let health = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state((db, draining));
    routes
        .merge(health)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(problem_for_bare_errors))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_response(DefaultOnResponse::new().level(Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
        )
}

fn request_span(request: &Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("<unmatched>", MatchedPath::as_str);
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!("request", method = %request.method(), route, uri = %request.uri(), request_id)
}

/// Liveness is the process answering; readiness is its own database
/// answering (never the other service: that would turn one outage into two),
/// and not shutting down.
async fn readyz(State((db, draining)): State<(Db, Draining)>) -> Response {
    if draining.is_draining() {
        return ApiError::Unavailable {
            detail: "The service is shutting down.".into(),
            retry_after_secs: 1,
        }
        .into_response();
    }
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
