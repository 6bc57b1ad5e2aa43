//! Many requests at once: nothing lost, nothing duplicated.

use futures::future::join_all;
use reqwest::StatusCode;
use test_kit::{Stack, json};

#[tokio::test]
async fn two_hundred_parallel_order_creates_are_all_stored() {
    let stack = Stack::start().await;
    let client = stack.create_client("Busy", "BUSY-1").await["id"]
        .as_i64()
        .unwrap();

    let replies = join_all((0..200).map(|n| {
        let body = json!({"client_id": client, "item": format!("item {n}"), "price": "1.00"});
        let stack = &stack;
        async move { stack.post("/order/", &body).await }
    }))
    .await;

    let mut created: Vec<i64> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            r.body["id"].as_i64().unwrap()
        })
        .collect();
    created.sort_unstable();
    created.dedup();
    assert_eq!(created.len(), 200, "ids were given out twice");

    let stored = stack.all_orders().await;
    let mut stored_ids: Vec<i64> = stored.iter().map(|o| o["id"].as_i64().unwrap()).collect();
    stored_ids.sort_unstable();
    assert_eq!(stored_ids, created);
    let mut items: Vec<&str> = stored.iter().map(|o| o["item"].as_str().unwrap()).collect();
    items.sort_unstable();
    items.dedup();
    assert_eq!(items.len(), 200);
}

#[tokio::test]
async fn racing_creates_with_one_card_number_have_exactly_one_winner() {
    let stack = Stack::start().await;
    let replies = join_all((0..50).map(|n| {
        let body = json!({"name": format!("Racer {n}"), "card_number": "RACE-1", "card_issued_on": "2020-01-01"});
        let stack = &stack;
        async move { stack.post("/client/", &body).await }
    }))
    .await;

    let won = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(won, 1);
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        reply.assert_problem(StatusCode::CONFLICT);
    }
    let stored = stack.all_clients().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["card_number"], "RACE-1");
}

#[tokio::test]
async fn racing_updates_to_one_card_number_have_exactly_one_winner() {
    let stack = Stack::start().await;
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(
            stack.create_client("Racer", &format!("R-{n}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let replies = join_all(ids.iter().map(|id| {
        let body = json!({"name": "Racer", "card_number": "TAKEN", "card_issued_on": "2020-01-01"});
        let stack = &stack;
        async move { stack.put(&format!("/client/{id}"), &body).await }
    }))
    .await;
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.status == StatusCode::OK)
            .count(),
        1
    );
    let holders = stack
        .all_clients()
        .await
        .into_iter()
        .filter(|c| c["card_number"] == "TAKEN")
        .count();
    assert_eq!(holders, 1);
}
