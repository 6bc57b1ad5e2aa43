//! client_service slow (behind a delaying TCP proxy) and flapping: slower
//! than the timeout is a 503 within the timeout, a little slow still
//! succeeds, and the circuit breaker opens, fails fast and closes again.
//! Afterwards an exact account: every 201 is stored, nothing else is.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use test_kit::{DelayProxy, Options, Stack, json};

const TIMEOUT_MS: u64 = 800;

async fn stack_behind(proxy: &DelayProxy) -> Stack {
    let stack = Stack::start_with(Options {
        client_timeout_ms: TIMEOUT_MS,
        client_service_url: Some(proxy.url()),
        order_env: vec![
            ("CLIENT_SERVICE_BREAKER_FAILURES".into(), "3".into()),
            ("CLIENT_SERVICE_BREAKER_OPEN_MS".into(), "1500".into()),
        ],
        ..Options::default()
    })
    .await;
    proxy.set_target(stack.client_service().port);
    stack
}

/// Creates an order; returns the status, how long it took and the item.
async fn create(
    stack: &Stack,
    client: i64,
    n: usize,
) -> (StatusCode, Duration, String, test_kit::Reply) {
    let item = format!("order {n}");
    let started = Instant::now();
    let reply = stack
        .post(
            "/order/",
            &json!({"client_id": client, "item": item, "price": "1"}),
        )
        .await;
    (reply.status, started.elapsed(), item, reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_flapping_client_service() {
    let proxy = DelayProxy::start().await;
    let stack = stack_behind(&proxy).await;
    let client = stack.create_client("Ada", "A-1").await["id"]
        .as_i64()
        .unwrap();
    let timeout = Duration::from_millis(TIMEOUT_MS);
    let mut told_created = Vec::new();
    let mut n = 0;

    // A little slow: still succeeds, just slower.
    proxy.set_delay(Duration::from_millis(300));
    let (status, took, item, _) = create(&stack, client, n).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(took >= Duration::from_millis(300), "{took:?}");
    told_created.push(item);

    // Slower than the timeout: 503 after the timeout, and no later.
    proxy.set_delay(Duration::from_millis(3000));
    for _ in 0..3 {
        n += 1;
        let (status, took, _, reply) = create(&stack, client, n).await;
        reply.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
        assert!(!reply.header("retry-after").is_empty());
        assert!(took >= timeout - Duration::from_millis(50), "{took:?}");
        assert!(took < timeout + Duration::from_millis(1500), "{took:?}");
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }

    // Three failures in a row opened the breaker: now it fails at once.
    n += 1;
    let (_, took, _, reply) = create(&stack, client, n).await;
    reply.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        took < Duration::from_millis(300),
        "the open breaker took {took:?}"
    );
    let retry_after: u64 = reply.header("retry-after").parse().unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("circuit breaker")
    );
    // Reads still answer, without the client.
    let listed = stack.get("/order/").await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(listed.body[0]["client"].is_null());

    // Flapping: healthy again; after the open time a probe closes the breaker.
    proxy.set_delay(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    for _ in 0..3 {
        n += 1;
        let (status, _, item, reply) = create(&stack, client, n).await;
        assert_eq!(status, StatusCode::CREATED, "{}", reply.text);
        told_created.push(item);
    }
    // Down again: the breaker opens again, and closes again.
    proxy.set_delay(Duration::from_millis(3000));
    for _ in 0..4 {
        n += 1;
        assert_eq!(
            create(&stack, client, n).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    proxy.set_delay(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    n += 1;
    let (status, _, item, _) = create(&stack, client, n).await;
    assert_eq!(status, StatusCode::CREATED);
    told_created.push(item);

    // The exact account: what was answered 201 is stored, once; nothing else.
    let mut stored: Vec<String> = stack
        .all_orders()
        .await
        .iter()
        .map(|o| o["item"].as_str().unwrap().to_owned())
        .collect();
    stored.sort();
    told_created.sort();
    assert_eq!(stored, told_created);
    let log = stack.order_service().log();
    assert!(
        log.contains("circuit breaker changed state"),
        "no breaker log line"
    );
}
