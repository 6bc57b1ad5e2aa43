//! The **limit** of `make bench`: the least any service behind the gateway
//! can do. An axum server on tokio's defaults (as the services are) that
//! answers `GET /client/{id}` and `GET /order/{id}` with a fixed JSON body
//! the size of a client, and nothing else: no database, no log line, no
//! metrics. `scripts/perf/bench.sh` puts the project's own gateway in front of it,
//! so the ratio of a target to this row says what share of the
//! architecture's ceiling on this machine the services reach.
//!
//!   bench_limit [ADDR]   (default 127.0.0.1:18102)

use std::net::SocketAddr;

use axum::{
    Router,
    http::{HeaderValue, header},
    response::IntoResponse,
    routing::get,
};

/// A client as client_service answers it (`GET /client/{id}`), to the byte
/// count; the ETag header too.
const BODY: &str = r#"{"id":1,"name":"Bench","card_number":"BENCH-1","card_issued_on":"2020-01-01","created_at":"2026-12-01T00:00:00.000000Z","updated_at":"2026-12-01T00:00:00.000000Z","version":1}"#;

async fn fixed() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, HeaderValue::from_static("\"1\"")),
        ],
        BODY,
    )
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let addr = std::env::args().nth(1);
    let addr: SocketAddr = match addr.as_deref().unwrap_or("127.0.0.1:18102").parse() {
        Ok(addr) => addr,
        Err(err) => {
            eprintln!("bench_limit: give an address such as 127.0.0.1:18102: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let app = Router::new()
        .route("/client/{id}", get(fixed))
        .route("/order/{id}", get(fixed))
        .route("/healthz", get(|| async { "ok" }));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("bench_limit: cannot listen on {addr}: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match axum::serve(listener, app).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench_limit: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
