//! A client deleted while orders are being created for it: no order may
//! outlive its client. Many rounds of a delete (with `?cascade=true`, and
//! without) racing several creates for the same client; afterwards no order
//! exists whose client is gone, every create answered 201 either still
//! exists with its client or was removed by the delete that answered 204
//! after it, and every create answered with an error stored nothing.

use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use test_kit::{Reply, Stack, json};

const ROUNDS: usize = 40;
const CREATES: usize = 8;

enum Sent {
    Create(String, Reply),
    Delete(Reply),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_order_outlives_its_client() {
    let stack = Stack::start().await;
    let mut deleted = Vec::new();
    let mut kept = Vec::new();
    let mut refused = Vec::new();
    for round in 0..ROUNDS {
        let client = stack
            .create_client(&format!("Racer {round}"), &format!("RACE-{round}"))
            .await["id"]
            .as_i64()
            .unwrap();
        let cascade = round % 2 == 0;
        let stack = &stack;
        let creates = (0..CREATES).map(|n| {
            let item = format!("race-{round}-{n}");
            async move {
                // Spread over the few milliseconds a delete takes.
                tokio::time::sleep(Duration::from_micros(700 * n as u64)).await;
                let body = json!({"client_id": client, "item": item, "price": "1.00"});
                Sent::Create(item, stack.post("/order/", &body).await)
            }
        });
        let delete = async move {
            tokio::time::sleep(Duration::from_micros(1500)).await;
            let path = format!("/client/{client}?cascade={cascade}");
            Sent::Delete(stack.delete(&path).await)
        };
        let (mut sent, deleted_reply) = futures::join!(join_all(creates), delete);
        sent.push(deleted_reply);
        let mut delete_status = None;
        let mut created = Vec::new();
        for outcome in sent {
            match outcome {
                Sent::Delete(reply) => delete_status = Some(reply.status),
                Sent::Create(item, reply) if reply.status == StatusCode::CREATED => {
                    created.push(item)
                }
                Sent::Create(item, reply) => {
                    assert!(
                        reply.status.is_client_error() || reply.status.is_server_error(),
                        "{item}: {} {}",
                        reply.status,
                        reply.text
                    );
                    refused.push(item);
                }
            }
        }
        match delete_status {
            Some(StatusCode::NO_CONTENT) => deleted.push((client, created)),
            Some(StatusCode::CONFLICT) if !cascade => kept.push((client, created)),
            other => panic!("round {round}: the delete answered {other:?}"),
        }
    }

    let orders = stack.all_orders().await;
    let stored = |item: &str| orders.iter().any(|o| o["item"] == item);
    for (client, _) in &deleted {
        let left: Vec<_> = orders
            .iter()
            .filter(|o| o["client_id"] == *client)
            .collect();
        assert!(
            left.is_empty(),
            "client {client} was deleted (204), yet: {left:#?}"
        );
        stack
            .get(&format!("/client/{client}"))
            .await
            .assert_problem(StatusCode::NOT_FOUND);
    }
    for (client, created) in &kept {
        assert_eq!(
            stack.get(&format!("/client/{client}")).await.status,
            StatusCode::OK
        );
        for item in created {
            assert!(
                stored(item),
                "{item} was created (201) for client {client}, kept, but is gone"
            );
        }
    }
    for item in &refused {
        assert!(!stored(item), "{item} was refused, yet it is stored");
    }
    assert!(!deleted.is_empty(), "no round deleted its client");
}

/// A delete that stopped after order_service recorded the client as
/// deleted (client_service failed before removing the client): the client
/// is still there but takes no new order, nor can an order be moved to it,
/// and the next DELETE, even without `?cascade=true`, finishes the job.
#[tokio::test]
async fn a_delete_stopped_midway_takes_no_new_order_and_the_next_delete_finishes_it() {
    let stack = Stack::start().await;
    let client = stack.create_client("Half", "HALF-1").await["id"]
        .as_i64()
        .unwrap();
    let other = stack.create_client("Other", "OTHER-1").await["id"]
        .as_i64()
        .unwrap();
    stack.create_order(client, "first").await;
    let elsewhere = stack.create_order(other, "elsewhere").await;

    // The first half of the delete: order_service's part.
    let url = format!("{}/order/?client_id={client}", stack.order_service().url());
    let reply = stack.http.delete(url).send().await.unwrap();
    assert_eq!(reply.status(), StatusCode::NO_CONTENT);

    assert_eq!(
        stack.get(&format!("/client/{client}")).await.status,
        StatusCode::OK
    );
    let body = json!({"client_id": client, "item": "late", "price": "1.00"});
    stack
        .post("/order/", &body)
        .await
        .assert_invalid("client_id");
    let moved = json!({"client_id": client, "item": "moved", "quantity": 1, "price": "1.00", "status": "new"});
    let path = format!("/order/{}", elsewhere["id"]);
    stack.put(&path, &moved).await.assert_invalid("client_id");
    assert_eq!(stack.get(&path).await.body["client_id"], other);

    let finished = stack.delete(&format!("/client/{client}")).await;
    assert_eq!(finished.status, StatusCode::NO_CONTENT, "{}", finished.text);
    let left: Vec<_> = stack
        .all_orders()
        .await
        .into_iter()
        .filter(|o| o["client_id"] == client)
        .collect();
    assert!(left.is_empty(), "{left:#?}");
}
