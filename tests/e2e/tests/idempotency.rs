//! `Idempotency-Key` on POST: a retried create creates nothing new.

use futures::future::join_all;
use reqwest::StatusCode;
use test_kit::{Stack, bearer_client, json, token_at};

async fn post_with_key(
    stack: &Stack,
    path: &str,
    key: &str,
    body: &serde_json::Value,
) -> test_kit::Reply {
    let response = stack
        .http
        .post(stack.url(path))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    test_kit::Reply::from(response).await
}

#[tokio::test]
async fn the_same_request_with_the_same_key_creates_one_record() {
    let stack = Stack::start().await;
    let body = json!({"name": "Once", "card_number": "ONCE-1", "card_issued_on": "2020-01-01"});

    let first = post_with_key(&stack, "/client/", "key-1", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert!(first.header("idempotent-replayed").is_empty());
    for _ in 0..10 {
        let again = post_with_key(&stack, "/client/", "key-1", &body).await;
        assert_eq!(again.status, StatusCode::CREATED);
        assert_eq!(again.body, first.body);
        assert_eq!(again.header("location"), first.header("location"));
        assert_eq!(again.header("idempotent-replayed"), "true");
    }
    assert_eq!(stack.all_clients().await.len(), 1);

    // The same body in another order of keys is the same request.
    let reordered =
        json!({"card_issued_on": "2020-01-01", "card_number": "ONCE-1", "name": "Once"});
    assert_eq!(
        post_with_key(&stack, "/client/", "key-1", &reordered)
            .await
            .body,
        first.body
    );

    // The same key with another body is refused, and creates nothing.
    let other = json!({"name": "Other", "card_number": "OTHER-1", "card_issued_on": "2020-01-01"});
    post_with_key(&stack, "/client/", "key-1", &other)
        .await
        .assert_invalid("Idempotency-Key");
    // Without a key (or with a new one) it is a new request: here a duplicate card.
    post_with_key(&stack, "/client/", "key-2", &body)
        .await
        .assert_problem(StatusCode::CONFLICT);
    assert_eq!(stack.all_clients().await.len(), 1);

    stack
        .send_raw(
            reqwest::Method::POST,
            "/client/",
            "application/json",
            body.to_string().into_bytes(),
        )
        .await
        .assert_problem(StatusCode::CONFLICT);
    let bad_key = stack
        .http
        .post(stack.url("/client/"))
        .header("idempotency-key", "k".repeat(300))
        .json(&other)
        .send()
        .await
        .unwrap();
    test_kit::Reply::from(bad_key)
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    assert_eq!(stack.all_clients().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_key_create_one_record() {
    let stack = Stack::start().await;
    let client = stack.create_client("Ada", "A-1").await["id"]
        .as_i64()
        .unwrap();
    let body = json!({"client_id": client, "item": "Once", "price": "5.00"});

    let replies =
        join_all((0..30).map(|_| post_with_key(&stack, "/order/", "order-key", &body))).await;
    let created: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    assert!(!created.is_empty());
    for reply in &replies {
        match reply.status {
            StatusCode::CREATED => assert_eq!(reply.body, created[0].body),
            // Still being processed by the first: retry later.
            StatusCode::CONFLICT => {
                reply.assert_problem(StatusCode::CONFLICT);
            }
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    // Retried now, every one gets the first answer.
    let again = post_with_key(&stack, "/order/", "order-key", &body).await;
    assert_eq!(again.body, created[0].body);
    assert_eq!(stack.all_orders().await.len(), 1);
}

#[tokio::test]
async fn a_failed_create_can_be_retried_with_its_key_and_keys_survive_a_restart() {
    let mut stack = Stack::start().await;
    let client = stack.create_client("Ada", "A-1").await["id"]
        .as_i64()
        .unwrap();
    let body = json!({"client_id": client, "item": "Retried", "price": "1.00"});

    stack.kill_client_service();
    post_with_key(&stack, "/order/", "retry-key", &body)
        .await
        .assert_problem(StatusCode::SERVICE_UNAVAILABLE);
    assert!(stack.all_orders().await.is_empty());
    stack.restart_client_service().await;

    let (created, _) =
        test_kit::create_with_retries(&stack.http, &stack.url("/order/"), "retry-key", &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert!(created.header("idempotent-replayed").is_empty());

    for status in stack.stop_services() {
        assert!(status.success());
    }
    stack.start_services().await;
    let replayed = post_with_key(&stack, "/order/", "retry-key", &body).await;
    assert_eq!(replayed.status, StatusCode::CREATED);
    assert_eq!(replayed.header("idempotent-replayed"), "true");
    assert_eq!(replayed.body, created.body);
    assert_eq!(stack.all_orders().await.len(), 1);
}

/// A key belongs to its caller: the same key from another client is another
/// key. That client's create is a create of its own (not the first caller's
/// answer replayed), and it cannot tell that the first caller used the key.
#[tokio::test]
async fn an_idempotency_key_belongs_to_its_caller() {
    let mut stack = Stack::start().await;
    let secret = stack
        .register_client("second-writer", "clients:read orders:read orders:write")
        .await;
    let token = token_at(
        &stack.anonymous,
        &stack.gateway,
        "second-writer",
        &secret,
        None,
    )
    .await;
    let second = bearer_client(&token);
    let post_as = async |http: &reqwest::Client, key: &str, body: &serde_json::Value| {
        let response = http
            .post(stack.url("/order/"))
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await
            .unwrap();
        test_kit::Reply::from(response).await
    };
    let client = stack.create_client("Ada", "A-1").await["id"]
        .as_i64()
        .unwrap();
    let tea = json!({"client_id": client, "item": "tea", "price": "1.00"});
    let cake = json!({"client_id": client, "item": "cake", "price": "2.00"});

    let first = post_as(&stack.http, "shared-key", &tea).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    // The same key and body from the second caller: a new order.
    let theirs = post_as(&second, "shared-key", &tea).await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.text);
    assert!(
        theirs.header("idempotent-replayed").is_empty(),
        "{:?}",
        theirs.headers
    );
    assert_ne!(theirs.body["id"], first.body["id"]);
    // ... which its own retries replay.
    let retried = post_as(&second, "shared-key", &tea).await;
    assert_eq!(retried.header("idempotent-replayed"), "true");
    assert_eq!(retried.body, theirs.body);
    // A key the first caller used, with another body: no 422 for the second.
    let other = post_as(&stack.http, "used-by-the-first", &tea).await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.text);
    let cake_reply = post_as(&second, "used-by-the-first", &cake).await;
    assert_eq!(
        cake_reply.status,
        StatusCode::CREATED,
        "{}",
        cake_reply.text
    );
    // The first caller's keys are still its own.
    assert_eq!(
        post_as(&stack.http, "shared-key", &tea).await.body,
        first.body
    );
    post_as(&stack.http, "shared-key", &cake)
        .await
        .assert_invalid("Idempotency-Key");
    assert_eq!(stack.stored_items("").await, ["cake", "tea", "tea", "tea"]);
}
