//! The System page in-process (`oneshot`), against stand-in instances on
//! 127.0.0.1:0 (and 127.0.0.2, the second address of one name) serving
//! canned `/healthz`, `/readyz` and `/metrics`: one ready, one not ready,
//! one that does not answer at all.

mod support;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Extension, Router,
    http::{StatusCode, header},
    response::Response,
    routing::get,
};
use console::{
    provider::Tokens,
    routes::{outer, router},
    session::Session,
    system::{
        Monitor,
        monitor::{Resolver, parse_targets, system_resolver},
    },
};
use support::{get_with, send, state};

/// A stand-in instance: `/readyz` answers `ready`, `/metrics` the text
/// the test puts in `metrics`.
async fn instance(
    listener: tokio::net::TcpListener,
    ready: StatusCode,
    metrics: Arc<Mutex<String>>,
) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(move || async move { (ready, "ready?") }))
        .route(
            "/metrics",
            get(move || {
                let text = metrics.lock().unwrap().clone();
                async move { text }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

/// Two listeners on one port, at 127.0.0.1 and 127.0.0.2 (both loopback
/// on Linux): the two addresses of one name.
async fn twin_listeners() -> (tokio::net::TcpListener, tokio::net::TcpListener) {
    for _ in 0..20 {
        let first = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = first.local_addr().unwrap().port();
        if let Ok(second) = tokio::net::TcpListener::bind(("127.0.0.2", port)).await {
            return (first, second);
        }
    }
    panic!("no port free at both 127.0.0.1 and 127.0.0.2");
}

/// `replicas.test` is both listeners; any other name, the system's.
fn resolver(replicas: Vec<SocketAddr>) -> Resolver {
    let system = system_resolver();
    Arc::new(move |host: String, port: u16| {
        if host == "replicas.test" {
            let found = replicas.clone();
            Box::pin(async move { Ok(found) })
        } else {
            system(host, port)
        }
    })
}

fn metrics(requests: u32, fast: u32, breaker: u8) -> String {
    format!(
        "# TYPE http_requests_total counter\n\
         http_requests_total{{method=\"GET\",route=\"/client/{{id}}\",status=\"200\"}} {requests}\n\
         http_requests_total{{method=\"GET\",route=\"/metrics\",status=\"200\"}} 1234\n\
         # TYPE http_request_duration_seconds histogram\n\
         http_request_duration_seconds_bucket{{method=\"GET\",route=\"/client/{{id}}\",status=\"200\",le=\"0.01\"}} {fast}\n\
         http_request_duration_seconds_bucket{{method=\"GET\",route=\"/client/{{id}}\",status=\"200\",le=\"0.1\"}} {requests}\n\
         http_request_duration_seconds_bucket{{method=\"GET\",route=\"/client/{{id}}\",status=\"200\",le=\"+Inf\"}} {requests}\n\
         http_request_duration_seconds_sum{{method=\"GET\",route=\"/client/{{id}}\",status=\"200\"}} 1.5\n\
         http_request_duration_seconds_count{{method=\"GET\",route=\"/client/{{id}}\",status=\"200\"}} {requests}\n\
         # TYPE upstream_peer_circuit_breaker_state gauge\n\
         upstream_peer_circuit_breaker_state{{target=\"order_service\",peer=\"http://127.0.0.1:8001\"}} {breaker}\n"
    )
}

/// The console's routes with `monitor`, and a session's cookie.
fn console(monitor: Monitor) -> (Router, String) {
    let state = state("http://auth.test/auth", "http://127.0.0.1:9", false, 10);
    let tokens = Tokens {
        access_token: "e30.e30.c2ln".into(),
        refresh_token: None,
        expires_at: None,
    };
    let session = Session::new("admin".into(), true, "csrf-token".into(), tokens);
    let id = state.sessions.insert(session);
    let app = outer(router(state.clone()).layer(Extension(monitor)), state);
    (app, format!("console_session={id}"))
}

async fn fetch(app: &Router, uri: &str, cookie: Option<&str>) -> (Response, String) {
    send(app, get_with(uri, cookie)).await
}

/// The `<tr>` of `instance`, up to its `</tr>`.
fn row<'a>(html: &'a str, service: &str, instance: &str) -> &'a str {
    let start = format!("<tr data-service=\"{service}\" data-instance=\"{instance}\">");
    let at = html
        .find(&start)
        .unwrap_or_else(|| panic!("no row {start} in {html}"));
    let rest = &html[at..];
    &rest[..rest.find("</tr>").unwrap()]
}

fn cell<'a>(row: &'a str, class: &str) -> &'a str {
    let start = format!("<td class=\"{class}\">");
    let rest = &row[row
        .find(&start)
        .unwrap_or_else(|| panic!("no {class} in {row}"))
        + start.len()..];
    &rest[..rest.find("</td>").unwrap()]
}

#[tokio::test]
async fn the_page_shows_each_instance_as_last_read() {
    let (first, second) = twin_listeners().await;
    let port = first.local_addr().unwrap().port();
    let replicas = vec![first.local_addr().unwrap(), second.local_addr().unwrap()];
    let busy = Arc::new(Mutex::new(metrics(0, 0, 0)));
    instance(first, StatusCode::OK, busy.clone()).await;
    instance(
        second,
        StatusCode::SERVICE_UNAVAILABLE,
        Arc::new(Mutex::new(metrics(7, 7, 1))),
    )
    .await;
    // An instance that is gone: its port, closed.
    let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone_port = gone.local_addr().unwrap().port();
    drop(gone);

    let targets = parse_targets(&format!(
        "client_service=http://replicas.test:{port},order_service=http://127.0.0.1:{gone_port}"
    ))
    .unwrap();
    let monitor = Monitor::new(targets, resolver(replicas)).unwrap();
    monitor.poll().await;
    let (app, session) = console(monitor.clone());

    let (page, html) = fetch(&app, "/console/system", Some(&session)).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()[header::CACHE_CONTROL], "no-store");
    assert!(html.contains("<title>System · console</title>"), "{html}");
    assert!(html.contains("<h1>System</h1>"), "{html}");
    assert!(
        html.contains("<a href=\"/console/system\" id=\"refresh\">Refresh</a>"),
        "{html}"
    );
    assert!(
        html.contains("<script src=\"/console/static/system.js\" defer></script>"),
        "{html}"
    );
    assert!(
        html.contains("<table id=\"instances\">\n<caption>"),
        "{html}"
    );

    // One name, two addresses: two instances.
    let one = format!("127.0.0.1:{port}");
    let two = format!("127.0.0.2:{port}");
    let ready = row(&html, "client_service", &one);
    assert_eq!(cell(ready, "health"), "up");
    assert_eq!(cell(ready, "readiness"), "ready");
    assert_eq!(
        cell(ready, "breakers"),
        "<ul><li>order_service 127.0.0.1:8001: closed</li></ul>"
    );
    // One reading is no rate yet.
    assert_eq!(cell(ready, "rate"), "—");
    assert_eq!(cell(ready, "p99"), "—");
    assert!(cell(ready, "last-read").ends_with(" UTC"), "{ready}");
    let draining = row(&html, "client_service", &two);
    assert_eq!(cell(draining, "health"), "up");
    assert_eq!(cell(draining, "readiness"), "not ready");
    assert_eq!(
        cell(draining, "breakers"),
        "<ul><li>order_service 127.0.0.1:8001: open</li></ul>"
    );
    let down = row(&html, "order_service", &format!("127.0.0.1:{gone_port}"));
    assert_eq!(cell(down, "health"), "down");
    assert_eq!(cell(down, "readiness"), "down");
    assert_eq!(cell(down, "breakers"), "none");
    assert_eq!(cell(down, "last-read"), "never (connection refused)");

    // 100 requests more, 50 of them within 10 ms, the rest within 100 ms:
    // p99 is rank 99, 49 of 50 into (10, 100] ms: 98.2 ms.
    *busy.lock().unwrap() = metrics(100, 50, 2);
    tokio::time::sleep(Duration::from_millis(20)).await;
    monitor.poll().await;
    let (table, html) = fetch(&app, "/console/system?part=table", Some(&session)).await;
    assert_eq!(table.status(), StatusCode::OK);
    assert!(
        html.trim_start().starts_with("<table id=\"instances\">"),
        "{html}"
    );
    assert!(!html.contains("<nav"), "{html}");
    let ready = row(&html, "client_service", &one);
    assert_eq!(cell(ready, "p99"), "98.2");
    let rate: f64 = cell(ready, "rate").parse().unwrap();
    assert!(rate > 0.0, "{ready}");
    assert_eq!(
        cell(ready, "breakers"),
        "<ul><li>order_service 127.0.0.1:8001: half-open</li></ul>"
    );
    // No request in between: a rate of 0 and no p99.
    let draining = row(&html, "client_service", &two);
    assert_eq!(cell(draining, "rate"), "0.0");
    assert_eq!(cell(draining, "p99"), "—");
    let down = row(&html, "order_service", &format!("127.0.0.1:{gone_port}"));
    assert_eq!(cell(down, "rate"), "—");
}

#[tokio::test]
async fn signed_out_the_page_sends_to_the_sign_in_and_the_table_is_refused() {
    let monitor = Monitor::new(vec![], system_resolver()).unwrap();
    let (app, _) = console(monitor);
    let (page, _) = fetch(&app, "/console/system", None).await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()[header::LOCATION], "/console/sign-in");
    let (table, html) = fetch(
        &app,
        "/console/system?part=table",
        Some("console_session=forged"),
    )
    .await;
    assert_eq!(table.status(), StatusCode::FORBIDDEN);
    assert!(!html.contains("<table"), "{html}");
}

#[tokio::test]
async fn without_instances_the_page_says_none_are_configured() {
    let monitor = Monitor::new(vec![], system_resolver()).unwrap();
    monitor.poll().await;
    let (app, session) = console(monitor);
    let (page, html) = fetch(&app, "/console/system", Some(&session)).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(html.contains("id=\"no-instances\""), "{html}");
    assert!(!html.contains("<table"), "{html}");
}

#[tokio::test]
async fn the_script_is_served_as_javascript_and_may_be_cached() {
    let monitor = Monitor::new(vec![], system_resolver()).unwrap();
    let (app, _) = console(monitor);
    let (script, text) = fetch(&app, "/console/static/system.js", None).await;
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(
        script.headers()[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        script.headers()[header::CACHE_CONTROL],
        "public, max-age=300"
    );
    assert_eq!(script.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(text.contains("?part=table"), "{text}");
}
