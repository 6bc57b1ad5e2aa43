//! order_service in-process, against a stand-in client_service that counts
//! the calls it gets: one batched call per list, and a 503 (with nothing
//! stored) when client_service hangs or fails.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::{Path, Query},
    http::StatusCode,
    routing::get,
};
use clap::Parser;
use futures::future::join_all;
use kit_auth::{Scopes, Verifier, testing::TestIssuer};
use kit_config::ServiceUrls;
use order_service::config::ClientServiceCalls;
use serde_json::{Value, json};

/// What the stand-in client_service asks of order_service's calls.
const SCOPES: Scopes = Scopes {
    read: "clients:read",
    write: "clients:write",
};

/// The token issuer of every test in this file (one per test thread's
/// runtime would stop with it: one for the process, on its own runtime).
async fn issuer() -> &'static TestIssuer {
    static ISSUER: std::sync::OnceLock<TestIssuer> = std::sync::OnceLock::new();
    if let Some(issuer) = ISSUER.get() {
        return issuer;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let _ = tx.send(TestIssuer::start().await);
            std::future::pending::<()>().await;
        });
    });
    let started = rx.recv().unwrap();
    ISSUER.get_or_init(|| started)
}

/// How many calls the stand-in got, by kind, and how it behaves.
#[derive(Default)]
struct Calls {
    one: AtomicUsize,
    batch: AtomicUsize,
    /// Answer this many calls with 503 before answering normally.
    fail_next: AtomicUsize,
    /// Answer every call with 500 while set.
    broken: AtomicBool,
    /// Wait this long before answering.
    delay_ms: AtomicU64,
}

impl Calls {
    /// The status to answer with instead of a client, if any.
    async fn misbehave(&self) -> Option<StatusCode> {
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if self.broken.load(Ordering::SeqCst) {
            return Some(StatusCode::INTERNAL_SERVER_ERROR);
        }
        let failing = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        failing.then_some(StatusCode::SERVICE_UNAVAILABLE)
    }
}

fn client(id: i64) -> Value {
    json!({"id": id, "name": format!("Client {id}"), "card_number": format!("C-{id}"),
           "card_issued_on": "2020-01-01", "created_at": "2020-01-01T00:00:00Z", "updated_at": "2020-01-01T00:00:00Z"})
}

/// A client_service that knows clients 1 to 10, and refuses any call
/// without order_service's own token (audience client_service, scope
/// clients:read).
async fn stand_in() -> (SocketAddr, Arc<Calls>) {
    let calls = Arc::new(Calls::default());
    let (one, batch) = (calls.clone(), calls.clone());
    let verifier = Verifier::new(&issuer().await.config(), "client_service").unwrap();
    let app = Router::new()
        .route(
            "/client/{id}",
            get(move |Path(id): Path<i64>| async move {
                one.one.fetch_add(1, Ordering::SeqCst);
                if let Some(status) = one.misbehave().await {
                    return Err(status);
                }
                match id {
                    1..=10 => Ok(Json(client(id))),
                    _ => Err(StatusCode::NOT_FOUND),
                }
            }),
        )
        .route(
            "/client/",
            get(
                move |Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    batch.batch.fetch_add(1, Ordering::SeqCst);
                    let ids = q.get("ids").map(String::as_str).unwrap_or_default();
                    let found: Vec<Value> = ids
                        .split(',')
                        .filter_map(|s| s.parse::<i64>().ok())
                        .filter(|id| (1..=10).contains(id))
                        .map(client)
                        .collect();
                    Json(found)
                },
            ),
        );
    let limit = kit_auth::CallerLimit::new(&kit_config::RateLimitConfig {
        per_second: 1_000_000,
        burst: 1_000_000,
        exempt_clients: Vec::new(),
    });
    let app = kit_auth::protect(app, verifier, SCOPES, limit, "client_service");
    (serve(app).await, calls)
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// order_service on a free port, its data in a temp folder.
struct OrderService {
    base: String,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

async fn order_service(client_service: SocketAddr, timeout_ms: u64) -> OrderService {
    order_service_with(client_service, |d| {
        d.timeout = Duration::from_millis(timeout_ms)
    })
    .await
}

/// order_service with its calls to client_service set by `tweak`.
async fn order_service_with(
    client_service: SocketAddr,
    tweak: impl FnOnce(&mut ClientServiceCalls),
) -> OrderService {
    let data = tempfile::tempdir().unwrap();
    let issuer = issuer().await;
    let mut args = vec![
        "order_service".to_owned(),
        "--listen-addr=127.0.0.1:0".to_owned(),
        format!("--data-dir={}", data.path().display()),
    ];
    args.extend(issuer.flags());
    let mut config = order_service::config::Config::try_parse_from(args).unwrap();
    config.client_service.urls = ServiceUrls(vec![format!("http://{client_service}")]);
    tweak(&mut config.client_service);
    let bound = order_service::build(config).await.unwrap();
    let base = format!("http://{}", bound.local_addr());
    tokio::spawn(bound.serve_until(std::future::pending()));
    OrderService {
        base,
        http: authorized(&issuer.token("order_service", "orders:read orders:write")),
        _data: data,
    }
}

/// A client that sends `token` with every request.
fn authorized(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

impl OrderService {
    async fn post(&self, body: Value) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let response = self
            .http
            .post(format!("{}/order/", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        (
            status,
            response.json().await.unwrap_or(Value::Null),
            headers,
        )
    }

    async fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

#[tokio::test]
async fn a_list_of_orders_fetches_its_clients_in_one_batched_call() {
    let (addr, calls) = stand_in().await;
    let service = order_service(addr, 2000).await;
    for n in 0..9 {
        let (status, body, _) = service
            .post(json!({"client_id": n % 3 + 1, "item": format!("item {n}"), "price": "1.00"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    assert_eq!(
        calls.one.load(Ordering::SeqCst),
        9,
        "each create checks its client"
    );
    assert_eq!(calls.batch.load(Ordering::SeqCst), 0);

    let orders = service.get("/order/").await;
    assert_eq!(orders.as_array().unwrap().len(), 9);
    for order in orders.as_array().unwrap() {
        assert_eq!(order["client"]["id"], order["client_id"]);
        assert_eq!(
            order["client"]["name"],
            format!("Client {}", order["client_id"])
        );
    }
    assert_eq!(
        calls.batch.load(Ordering::SeqCst),
        1,
        "one batched call for the list"
    );
    assert_eq!(calls.one.load(Ordering::SeqCst), 9, "no call per order");

    // An empty page asks client_service nothing.
    service.get("/order/?client_id=999").await;
    assert_eq!(calls.batch.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_hung_client_service_gives_503_within_the_timeout_and_stores_nothing() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let service = order_service(addr, 300).await;

    let started = Instant::now();
    let (status, body, headers) = service
        .post(json!({"client_id": 1, "item": "x", "price": "1"}))
        .await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert!(headers.contains_key("retry-after"));
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(service.get("/order/").await, json!([]));
}

#[tokio::test]
async fn a_client_service_answering_5xx_gives_503_and_stores_nothing() {
    let app = Router::new().fallback(|| async { StatusCode::INTERNAL_SERVER_ERROR });
    let addr = serve(app).await;
    let service = order_service(addr, 1000).await;
    let (status, _, headers) = service
        .post(json!({"client_id": 1, "item": "x", "price": "1"}))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key("retry-after"));
    assert_eq!(service.get("/order/").await, json!([]));
}

#[tokio::test]
async fn a_read_refused_with_5xx_is_retried() {
    let (addr, calls) = stand_in().await;
    let service = order_service(addr, 2000).await;
    calls.fail_next.store(2, Ordering::SeqCst);
    let (status, body, _) = service
        .post(json!({"client_id": 1, "item": "x", "price": "1"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        calls.one.load(Ordering::SeqCst),
        3,
        "two retries, then success"
    );
    assert_eq!(service.get("/order/").await.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_circuit_breaker_opens_fails_fast_and_closes_again() {
    let (addr, calls) = stand_in().await;
    let service = order_service_with(addr, |d| {
        d.retries = 0;
        d.breaker_failures = 3;
        d.breaker_open = Duration::from_millis(700);
    })
    .await;
    let create = || service.post(json!({"client_id": 1, "item": "x", "price": "1"}));

    calls.broken.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(create().await.0, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(calls.one.load(Ordering::SeqCst), 3);

    // Open: refused at once, without a call, with the time left to wait.
    let (status, body, headers) = create().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["detail"].as_str().unwrap().contains("circuit breaker"),
        "{body}"
    );
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(calls.one.load(Ordering::SeqCst), 3, "no call while open");

    // Half-open after the wait: a failing probe opens it again...
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(create().await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(calls.one.load(Ordering::SeqCst), 4);
    assert_eq!(create().await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(calls.one.load(Ordering::SeqCst), 4);

    // ...and a successful one closes it.
    calls.broken.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(800)).await;
    for _ in 0..3 {
        assert_eq!(create().await.0, StatusCode::CREATED);
    }
    assert_eq!(calls.one.load(Ordering::SeqCst), 7);
    assert_eq!(service.get("/order/").await.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn the_bulkhead_refuses_calls_past_its_limit_at_once() {
    let (addr, calls) = stand_in().await;
    calls.delay_ms.store(600, Ordering::SeqCst);
    let service = order_service_with(addr, |d| d.max_concurrent = 2).await;

    let started = Instant::now();
    let replies =
        join_all((0..6).map(|_| service.post(json!({"client_id": 1, "item": "x", "price": "1"}))))
            .await;
    let created = replies
        .iter()
        .filter(|r| r.0 == StatusCode::CREATED)
        .count();
    let refused: Vec<_> = replies
        .iter()
        .filter(|r| r.0 == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert_eq!((created, refused.len()), (2, 4), "{replies:?}");
    assert!(refused.iter().all(|r| r.2.contains_key("retry-after")));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        calls.one.load(Ordering::SeqCst),
        2,
        "the refused calls were never sent"
    );
}

/// A port nothing listens on: connecting to it is refused.
async fn dead_address() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn calls_fail_over_from_a_dead_instance_whose_breaker_alone_opens() {
    let dead = dead_address().await;
    let (alive, calls) = stand_in().await;
    let service = order_service_with(alive, |d| {
        d.urls = ServiceUrls(vec![format!("http://{dead}"), format!("http://{alive}")]);
        d.retries = 0;
        d.breaker_failures = 2;
        d.breaker_open = Duration::from_secs(60);
    })
    .await;
    // Every create succeeds: a refused attempt goes on to the other
    // instance at once (no retry is configured; this is failover).
    for n in 0..10 {
        let (status, body, _) = service
            .post(json!({"client_id": 1, "item": format!("x{n}"), "price": "1"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    assert_eq!(calls.one.load(Ordering::SeqCst), 10);
    // The dead instance's breaker opened, the live one's did not. (The
    // target's own gauge is shared by every test of this process, so the
    // breaker's unit test checks it instead.)
    let metrics = service.http.get(format!("{}/metrics", service.base));
    let text = metrics.send().await.unwrap().text().await.unwrap();
    let gauge = |peer: &str| {
        format!(
            "upstream_peer_circuit_breaker_state{{target=\"client_service\",peer=\"http://{peer}\"}}"
        )
    };
    let value_of = |series: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(series))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
            .to_owned()
    };
    assert_eq!(value_of(&gauge(&dead.to_string())), "1");
    assert_eq!(value_of(&gauge(&alive.to_string())), "0");
}
