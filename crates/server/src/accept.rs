//! The accept loop: hyper's HTTP/1 server on each accepted connection,
//! with graceful shutdown, as `axum::serve` does, and one setting that
//! `axum::serve` does not offer, the parser's header limit
//! ([`PARSED_HEADER_FIELDS`]). That setting is what this loop is for:
//! with hyper's default (100 fields) a request with 101 to 11 264 header
//! fields, all of which the gateway passes on, gets hyper's bare 431 with
//! no body; with it, kit-http's layer answers a 431 in problem+json
//! (`the_server_reads_enough_header_fields_to_answer_a_431_itself`).

use std::time::Duration;

use axum::Router;

/// How many header fields the HTTP parser takes before it answers a 431 of
/// its own, with no body (hyper's default: 100). Above what the gateway can
/// pass on, so that through the gateway no request gets that bare 431 and
/// kit-http's layer answers it in problem+json instead: the
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
pub(crate) async fn serve(
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

#[cfg(test)]
mod tests {
    use axum::routing::get;

    use super::*;

    /// The accept loop's HTTP parser takes more header fields than its own
    /// default of 100 (and more than the gateway can pass on), so that a
    /// request with 11 000 reaches kit-http's layer and is answered in
    /// problem+json, not with hyper's bare 431.
    #[tokio::test(flavor = "current_thread")]
    async fn the_server_reads_enough_header_fields_to_answer_a_431_itself() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let app =
            kit_http::layers::problem_layers(Router::new().route("/", get(|| async { "ok" })));
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
}
