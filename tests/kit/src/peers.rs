//! What a test puts beside the system, in the test's own process: an HTTP
//! server of its own ([`serve`]), a TCP proxy that delays answers and
//! records requests ([`DelayProxy`]), and a stand-in OpenTelemetry
//! collector ([`OtlpReceiver`]).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU16, AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::Router;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    task::JoinHandle,
};

/// Serves `app` on a free port of 127.0.0.1, in this process, until the
/// task is aborted or the test's runtime ends; its port and its task.
pub async fn serve(app: Router) -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port for an in-process server");
    let port = listener.local_addr().expect("its address").port();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, task)
}

/// A TCP proxy on 127.0.0.1 that delays every chunk of the answers it
/// relays: "a little slow" or "slower than the timeout", switchable while
/// it runs. The target is set once the proxied service has its port. It
/// also records what it passes to the target (the first
/// [`DelayProxy::RECORD_LIMIT`] bytes), to show what a service sends.
pub struct DelayProxy {
    pub port: u16,
    target: Arc<AtomicU16>,
    delay_ms: Arc<AtomicU64>,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl DelayProxy {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy port");
        let port = listener.local_addr().expect("proxy address").port();
        let target = Arc::new(AtomicU16::new(0));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (t, d, record) = (target.clone(), delay_ms.clone(), sent.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let (t, d, record) = (t.load(Ordering::SeqCst), d.clone(), record.clone());
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", t)).await
                    else {
                        return;
                    };
                    let (mut in_read, mut in_write) = inbound.into_split();
                    let (mut out_read, mut out_write) = outbound.into_split();
                    let up = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = in_read.read(&mut buf).await?;
                            if n == 0 {
                                return out_write.shutdown().await;
                            }
                            if let Ok(mut sent) = record.lock() {
                                let room = Self::RECORD_LIMIT.saturating_sub(sent.len());
                                sent.extend_from_slice(&buf[..n.min(room)]);
                            }
                            out_write.write_all(&buf[..n]).await?;
                        }
                    };
                    let down = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = out_read.read(&mut buf).await?;
                            if n == 0 {
                                return Ok::<_, std::io::Error>(());
                            }
                            let delay = d.load(Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(delay)).await;
                            in_write.write_all(&buf[..n]).await?;
                        }
                    };
                    let _ = tokio::join!(up, down);
                });
            }
        });
        Self {
            port,
            target,
            delay_ms,
            sent,
        }
    }

    /// How much of the traffic to the target is kept for [`DelayProxy::sent`].
    pub const RECORD_LIMIT: usize = 4 * 1024 * 1024;

    /// What was sent to the target so far (requests with their headers).
    pub fn sent(&self) -> String {
        let sent = self.sent.lock().map(|s| s.clone()).unwrap_or_default();
        String::from_utf8_lossy(&sent).into_owned()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set_target(&self, port: u16) {
        self.target.store(port, Ordering::SeqCst);
    }

    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }
}

/// A stand-in OpenTelemetry collector: accepts OTLP/HTTP JSON on
/// `POST /v1/traces` (what a service sends with
/// `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`) and keeps every span.
pub struct OtlpReceiver {
    pub port: u16,
    spans: Arc<Mutex<Vec<Value>>>,
    task: JoinHandle<()>,
}

impl OtlpReceiver {
    pub async fn start() -> Self {
        use axum::{extract::State, http::StatusCode, routing::post};
        type Spans = Arc<Mutex<Vec<Value>>>;
        async fn traces(State(spans): State<Spans>, body: axum::body::Bytes) -> StatusCode {
            let Ok(request) = serde_json::from_slice::<Value>(&body) else {
                return StatusCode::BAD_REQUEST;
            };
            let mut found = Vec::new();
            for resource in request["resourceSpans"].as_array().into_iter().flatten() {
                let service = resource["resource"]["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|a| a["key"] == "service.name")
                    .and_then(|a| a["value"]["stringValue"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                    for span in scope["spans"].as_array().into_iter().flatten() {
                        let mut span = span.clone();
                        span["service"] = Value::String(service.clone());
                        found.push(span);
                    }
                }
            }
            if let Ok(mut spans) = spans.lock() {
                spans.extend(found);
            }
            StatusCode::OK
        }
        let spans: Spans = Arc::default();
        let app = Router::new()
            .route("/v1/traces", post(traces))
            .with_state(spans.clone());
        let (port, task) = serve(app).await;
        Self { port, spans, task }
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every span received so far, each with the `service` (its resource's
    /// `service.name`) added.
    pub fn spans(&self) -> Vec<Value> {
        self.spans.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
