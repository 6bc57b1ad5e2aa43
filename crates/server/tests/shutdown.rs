//! SIGTERM with a shutdown delay: the service says it is not ready and goes
//! on serving new connections for the delay, before it stops accepting.

use std::{net::SocketAddr, time::Duration};

use axum::{Router, routing::get};
use kit_config::ShutdownConfig;
use kit_server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The status code of `GET path` on a new connection; None when the
/// connection fails.
async fn status_of(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.ok()?;
    let answer = String::from_utf8_lossy(&answer);
    answer.split(' ').nth(1)?.parse().ok()
}

/// A server with a `/hello` route and this shutdown delay, serving until
/// the returned sender is used.
async fn serve_with_delay(
    delay: Duration,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), kit_server::ServerError>>,
) {
    let routes = Router::new().route("/hello", get(|| async { "hello" }));
    let shutdown = ShutdownConfig {
        delay,
        grace: Duration::from_secs(1),
    };
    let bound = Server::new("shutdown_test", routes)
        .shutdown(&shutdown)
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = bound.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bound.serve_until(async {
        let _ = stopped.await;
    }));
    (addr, stop, server)
}

#[tokio::test]
async fn during_the_shutdown_delay_it_is_not_ready_and_serves_new_connections() {
    // Far longer than the test: it is over before the delay is.
    let (addr, stop, server) = serve_with_delay(Duration::from_secs(60)).await;
    assert_eq!(status_of(addr, "/readyz").await, Some(200));

    stop.send(()).unwrap();
    // Not ready once the stop is seen (bounded: 100 tries, 20 ms apart).
    let mut readyz = None;
    for _ in 0..100 {
        readyz = status_of(addr, "/readyz").await;
        if readyz != Some(200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(readyz, Some(503), "/readyz after the stop");
    // ... and still serving, on a new connection.
    assert_eq!(status_of(addr, "/hello").await, Some(200));
    assert!(!server.is_finished());
    server.abort();
}

#[tokio::test]
async fn without_a_delay_it_stops_accepting_at_once() {
    let (addr, stop, server) = serve_with_delay(Duration::ZERO).await;
    assert_eq!(status_of(addr, "/hello").await, Some(200));

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops within 10 s")
        .unwrap()
        .unwrap();
    assert_eq!(status_of(addr, "/hello").await, None, "the port is closed");
}
