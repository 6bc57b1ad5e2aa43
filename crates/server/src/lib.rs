//! What runs a service, the same way for every service:
//!
//! - [`main`]: the process from start to exit, in one order (telemetry,
//!   the service built and bound, served until Ctrl-C or SIGTERM, drained,
//!   its dependency closed, the failure logged, telemetry flushed, the exit
//!   code);
//! - [`Server`]: a service's routes behind the shared layers (each
//!   request's span, line and metrics; problem+json for every error), its
//!   own endpoints (`/healthz`, `/readyz`, `/metrics`), bound to its port
//!   ([`BoundServer`]) before it serves, so a test can bind port 0 and
//!   read the port it got.

mod accept;
mod operations;
pub mod shutdown;

use std::{net::SocketAddr, process::ExitCode, sync::Arc, time::Duration};

use axum::Router;
use kit_config::{LogFormat, ShutdownConfig};
use kit_http::{layers::problem_layers, problem::cause_chain};
use kit_observability::{health::Dependency, metrics, request::ObserveLayer, telemetry};

use crate::shutdown::{Draining, shutdown_signal};

/// Why a service could not be built: its configuration, its database, its
/// HTTP client, its port. Anything, with its cause chain.
pub type StartupError = Box<dyn std::error::Error + Send + Sync>;

/// Why a bound server failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the server failed")]
    Serve(#[source] std::io::Error),
}

/// A service's server, to be bound: its routes, its dependency, how it
/// stops.
pub struct Server {
    name: &'static str,
    routes: Router,
    dependency: Option<Arc<dyn Dependency>>,
    delay: Duration,
    grace: Duration,
    description: String,
    outer: Option<Box<dyn FnOnce(Router) -> Router + Send>>,
}

impl Server {
    /// The server of the service `name` (for its log lines and
    /// `build_info`), serving `routes`.
    pub fn new(name: &'static str, routes: Router) -> Self {
        Self {
            name,
            routes,
            dependency: None,
            delay: Duration::ZERO,
            grace: Duration::from_secs(10),
            description: "none".into(),
            outer: None,
        }
    }

    /// Layers around the whole service, the kit's own answers included
    /// (its 404 fallback, its request-target checks): the console, whose
    /// callers are people at a browser, turns those into pages there.
    pub fn wrap(mut self, outer: impl FnOnce(Router) -> Router + Send + 'static) -> Self {
        self.outer = Some(Box::new(outer));
        self
    }

    /// What the service needs to be ready (its database), described for
    /// the "listening" log line (never with a password).
    pub fn depends_on(
        mut self,
        dependency: impl Dependency + 'static,
        description: String,
    ) -> Self {
        self.dependency = Some(Arc::new(dependency));
        self.description = description;
        self
    }

    /// On SIGTERM, how long it goes on serving (not ready), then how long
    /// requests in flight may take to finish.
    pub fn shutdown(mut self, shutdown: &ShutdownConfig) -> Self {
        self.delay = shutdown.delay;
        self.grace = shutdown.grace;
        self
    }

    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(self, addr: SocketAddr) -> Result<BoundServer, ServerError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let local = listener.local_addr().map_err(ServerError::Serve)?;
        metrics::install();
        metrics::set_build_info(self.name, env!("CARGO_PKG_VERSION"));
        tracing::info!(
            service = self.name,
            addr = %local,
            database = self.description,
            version = env!("CARGO_PKG_VERSION"),
            "listening"
        );
        let draining = Draining::default();
        // ANCHOR: app
        let operations = operations::routes(self.dependency.clone(), draining.clone());
        let mut app = problem_layers(self.routes.merge(operations));
        if let Some(outer) = self.outer {
            app = outer(app);
        }
        let app = app.layer(ObserveLayer);
        // ANCHOR_END: app
        Ok(BoundServer {
            listener,
            app,
            dependency: self.dependency,
            draining,
            delay: self.delay,
            grace: self.grace,
        })
    }
}

/// A service bound to its port, not serving yet.
pub struct BoundServer {
    listener: tokio::net::TcpListener,
    app: Router,
    dependency: Option<Arc<dyn Dependency>>,
    draining: Draining,
    delay: Duration,
    grace: Duration,
}

impl BoundServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves until Ctrl-C or SIGTERM (see [`serve_until`](Self::serve_until)).
    pub async fn serve(self) -> Result<(), ServerError> {
        self.serve_until(shutdown_signal()).await
    }

    /// Serves until `stop` resolves; then reports not ready and goes on
    /// serving for the shutdown delay, stops accepting connections, lets
    /// the requests in flight finish (for at most the grace period), closes
    /// its dependency and returns.
    ///
    /// The delay is for callers that learn late that this instance is
    /// going: a name that still gives its address for a few seconds
    /// (Docker Swarm takes a stopping task out of its service's DNS name
    /// 2 s before it sends SIGTERM; the gateway looks it up every second), a
    /// load balancer between two health checks. Without it, a request sent
    /// here meanwhile finds the port closed, or the address gone.
    pub async fn serve_until(
        self,
        stop: impl Future<Output = ()> + Send,
    ) -> Result<(), ServerError> {
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let draining = self.draining.clone();
        let delay = self.delay;
        let server = accept::serve(self.listener, self.app, async move {
            stop.await;
            draining.start();
            if !delay.is_zero() {
                tracing::info!(?delay, "not ready; serving on for the shutdown delay");
                tokio::time::sleep(delay).await;
            }
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
        if let Some(dependency) = &self.dependency {
            dependency.close().await;
        }
        tracing::info!("stopped");
        served.map_err(ServerError::Serve)
    }
}

/// A service's process: the one `main` of every service. Starts the
/// runtime and telemetry (`log_format`), builds and binds the service
/// (`service`), serves it until Ctrl-C or SIGTERM, then drains it; logs a
/// failure with its whole cause chain before telemetry is flushed; returns
/// the exit code.
pub fn main(
    name: &'static str,
    log_format: LogFormat,
    service: impl Future<Output = Result<BoundServer, StartupError>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let telemetry = match telemetry::init(log_format, name) {
            Ok(telemetry) => telemetry,
            Err(err) => {
                eprintln!("error: {}", cause_chain(&err));
                return ExitCode::FAILURE;
            }
        };
        let result = async { Ok::<_, StartupError>(service.await?.serve().await?) }.await;
        let code = match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                tracing::error!(error = %cause_chain(err.as_ref()), "exiting");
                eprintln!("error: {}", cause_chain(err.as_ref()));
                ExitCode::FAILURE
            }
        };
        telemetry.shutdown().await;
        code
    })
}

#[cfg(test)]
mod tests {
    use std::{
        io::Write,
        sync::{Arc, Mutex},
    };

    use axum::{
        body::Body,
        http::{Request, StatusCode},
        routing::get,
    };
    use http_body_util::BodyExt;
    use kit_http::problem::ApiError;
    use kit_observability::context::REQUEST_ID;
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
