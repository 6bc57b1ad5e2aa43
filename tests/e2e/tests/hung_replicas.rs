//! Every instance of client_service hung (SIGSTOP: connections accepted by
//! the kernel, never answered) behind two instances of order_service: each
//! create answers 503 within the call's overall deadline, however many
//! instances there are, and once every breaker is open each create answers
//! 503 at once. Nothing is stored. When client_service answers again,
//! creates succeed within the breaker's open time.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use test_kit::{Options, Stack, json};

/// One attempt's timeout, and the whole call's deadline (all its attempts).
const ATTEMPT_TIMEOUT_MS: u64 = 600;
const DEADLINE_MS: u64 = 700;
const CONNECT_TIMEOUT_MS: u64 = 100;
/// Failures in a row that open an instance's breaker, and for how long.
const BREAKER_FAILURES: u64 = 2;
const BREAKER_OPEN_MS: u64 = 8000;
/// Instances of each service.
const REPLICAS: u64 = 2;
/// What the gateway and order_service add to a call's deadline, at most,
/// on a busy machine running debug builds.
const OVERHEAD: Duration = Duration::from_millis(400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_instances_open_every_breaker_and_then_fail_fast() {
    let setting = |name: &str, value: u64| (format!("CLIENT_SERVICE_{name}"), value.to_string());
    let mut stack = Stack::start_with(Options {
        replicas: REPLICAS as usize,
        client_timeout_ms: ATTEMPT_TIMEOUT_MS,
        order_env: vec![
            setting("DEADLINE_MS", DEADLINE_MS),
            setting("CONNECT_TIMEOUT_MS", CONNECT_TIMEOUT_MS),
            setting("BREAKER_FAILURES", BREAKER_FAILURES),
            setting("BREAKER_OPEN_MS", BREAKER_OPEN_MS),
        ],
        ..Options::default()
    })
    .await;
    let client = stack.create_client("Ada", "A-1").await["id"]
        .as_i64()
        .unwrap();

    stack.freeze_client_service();
    // The most calls it can take to open every breaker: the gateway takes
    // the order_service instances in turn, and each of them must see
    // BREAKER_FAILURES failures of each client_service instance, at worst
    // one instance per call (a failover fits in the deadline only when
    // time is left for it). From the call after those, every breaker of
    // every order_service instance is open.
    let fast_from = REPLICAS * REPLICAS * BREAKER_FAILURES + 1;
    let deadline = Duration::from_millis(DEADLINE_MS);
    let started_outage = Instant::now();
    for call in 1..=20 {
        let started = Instant::now();
        let reply = stack
            .post(
                "/order/",
                &json!({"client_id": client, "item": format!("hung {call}"), "price": "1"}),
            )
            .await;
        let took = started.elapsed();
        reply.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            reply
                .header("retry-after")
                .parse::<u64>()
                .is_ok_and(|s| s >= 1),
            "call {call}: {:?}",
            reply.headers
        );
        assert!(
            took < deadline + OVERHEAD,
            "call {call} took {took:?}: more than the deadline ({deadline:?})"
        );
        if call >= fast_from {
            assert!(
                took < Duration::from_millis(100),
                "call {call} took {took:?}: every breaker should be open from call {fast_from} on ({})",
                reply.text
            );
        }
    }
    assert!(
        started_outage.elapsed() < Duration::from_millis(BREAKER_OPEN_MS),
        "the calls outlasted the breakers' open time: the test proves nothing"
    );
    stack.thaw_client_service();
    assert!(stack.stored_items("hung ").await.is_empty());

    // Back: creates succeed within the breaker's open time plus a second.
    let deadline = Instant::now() + Duration::from_millis(BREAKER_OPEN_MS + 1000);
    loop {
        let reply = stack
            .post(
                "/order/",
                &json!({"client_id": client, "item": "after", "price": "1"}),
            )
            .await;
        if reply.status == StatusCode::CREATED {
            break;
        }
        reply.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "no recovery: {}", reply.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
