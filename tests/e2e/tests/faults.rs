//! client_service or order_service refused or frozen: writes that need them
//! answer 503 with Retry-After within the timeout and store nothing; reads
//! still answer; everything works again when the service returns (at the
//! latest when the circuit breaker, opened by the outage, lets calls through).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use test_kit::{Options, Stack, json};

const TIMEOUT_MS: u64 = 1000;
const BREAKER_OPEN_MS: u64 = 1000;

async fn stack() -> Stack {
    Stack::start_with(Options {
        client_timeout_ms: TIMEOUT_MS,
        order_env: vec![(
            "CLIENT_SERVICE_BREAKER_OPEN_MS".into(),
            BREAKER_OPEN_MS.to_string(),
        )],
        ..Options::default()
    })
    .await
}

/// Once client_service is back, an order can be created again, at the
/// latest when the breaker's open time is over (until then: 503).
async fn create_after_recovery(stack: &Stack, client: i64, item: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_millis(BREAKER_OPEN_MS + 2000);
    loop {
        let reply = stack
            .post(
                "/order/",
                &json!({"client_id": client, "item": item, "price": "9.99"}),
            )
            .await;
        if reply.status == StatusCode::CREATED {
            return reply.body;
        }
        reply.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "no recovery: {}", reply.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// POST /order/ while client_service cannot answer: 503, quickly, nothing stored.
async fn assert_create_refused(stack: &Stack, client_id: i64, within: Duration) {
    let started = Instant::now();
    let reply = stack
        .post(
            "/order/",
            &json!({"client_id": client_id, "item": "during outage", "price": "1"}),
        )
        .await;
    let took = started.elapsed();
    reply.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        reply.header("retry-after").parse::<u64>().is_ok(),
        "{:?}",
        reply.headers
    );
    assert!(took < within, "503 took {took:?}, more than {within:?}");
}

async fn assert_reads_without_client(stack: &Stack, order: &serde_json::Value) {
    let one = stack.get(&format!("/order/{}", order["id"])).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    assert_eq!(one.body["client"], serde_json::Value::Null);
    assert_eq!(one.body["item"], order["item"]);
    let list = stack.get("/order/").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert!(
        list.body
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["client"].is_null())
    );
}

#[tokio::test]
async fn client_service_stopped() {
    let mut stack = stack().await;
    let client = stack.create_client("Ada", "A-1").await["id"]
        .as_i64()
        .unwrap();
    let order = stack.create_order(client, "before").await;

    stack.kill_client_service();
    assert_create_refused(&stack, client, Duration::from_millis(TIMEOUT_MS)).await;
    let put = stack
        .put(
            &format!("/order/{}", order["id"]),
            &json!({"client_id": client, "item": "changed", "quantity": 5, "price": "5", "status": "paid"}),
        )
        .await;
    put.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
    assert_reads_without_client(&stack, &order).await;
    // The gateway answers for the stopped service itself, in problem+json.
    let gone = stack.get("/client/").await;
    gone.assert_problem(StatusCode::BAD_GATEWAY);
    assert_eq!(gone.header("retry-after"), "2");

    stack.restart_client_service().await;
    assert_eq!(
        stack.all_orders().await,
        [stack.get(&format!("/order/{}", order["id"])).await.body]
    );
    assert_eq!(
        stack.get(&format!("/order/{}", order["id"])).await.body["item"],
        "before"
    );
    let again = create_after_recovery(&stack, client, "after").await;
    assert_eq!(again["client"]["name"], "Ada");
    assert_eq!(stack.all_orders().await.len(), 2);
}

#[tokio::test]
async fn client_service_frozen() {
    let mut stack = stack().await;
    let client = stack.create_client("Ada", "A-1").await["id"]
        .as_i64()
        .unwrap();
    let order = stack.create_order(client, "before").await;

    stack.freeze_client_service();
    let timeout = Duration::from_millis(TIMEOUT_MS);
    // It must wait for the timeout (the service is there, but hung) and no longer.
    let started = Instant::now();
    assert_create_refused(&stack, client, timeout + Duration::from_millis(1500)).await;
    assert!(started.elapsed() >= timeout - Duration::from_millis(100));
    assert_reads_without_client(&stack, &order).await;
    // Called through the gateway, the hung service is the gateway's own 504
    // after its read timeout (10 s), in problem+json.
    let hung = stack.get(&format!("/client/{client}")).await;
    hung.assert_problem(StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(hung.header("retry-after"), "2");

    stack.thaw_client_service();
    let again = create_after_recovery(&stack, client, "after").await;
    assert_eq!(again["client"]["id"], client);
    let stored: Vec<String> = stack
        .all_orders()
        .await
        .iter()
        .map(|o| o["item"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stored, ["before", "after"]);
}

#[tokio::test]
async fn order_service_stopped_blocks_client_deletion_only() {
    let mut stack = stack().await;
    let client = stack.create_client("Ada", "A-1").await["id"]
        .as_i64()
        .unwrap();

    stack.kill_order_service();
    for path in [
        format!("/client/{client}"),
        format!("/client/{client}?cascade=true"),
    ] {
        let reply = stack.delete(&path).await;
        reply.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
        assert!(!reply.header("retry-after").is_empty());
    }
    assert_eq!(
        stack.get(&format!("/client/{client}")).await.status,
        StatusCode::OK
    );
    stack.create_client("Still works", "B-1").await;
    stack
        .get("/order/")
        .await
        .assert_problem(StatusCode::BAD_GATEWAY);

    stack.restart_order_service().await;
    assert_eq!(
        stack.delete(&format!("/client/{client}")).await.status,
        StatusCode::NO_CONTENT
    );
}
