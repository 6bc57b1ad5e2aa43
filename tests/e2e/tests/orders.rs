//! `/order/…` through the gateway: every row of the API table.

use reqwest::StatusCode;
use test_kit::{Stack, json};

fn ids(list: &serde_json::Value) -> Vec<i64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn create_read_update_delete_an_order_with_its_client() {
    let stack = Stack::start().await;
    let client = stack.create_client("Ada", "A-1").await;
    let client_id = client["id"].as_i64().unwrap();

    let created = stack
        .post(
            "/order/",
            &json!({"client_id": client_id, "item": "Analytical Engine", "price": 12.5}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_i64().unwrap();
    assert_eq!(created.header("location"), format!("/order/{id}"));
    assert_eq!(created.body["quantity"], 1);
    assert_eq!(created.body["status"], "new");
    assert_eq!(created.body["price"], "12.50");
    assert_eq!(
        created.body["client"],
        json!({"id": client_id, "name": "Ada", "card_number": "A-1", "card_issued_on": "2021-06-15"})
    );

    let fetched = stack.get(&format!("/order/{id}")).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body, created.body);

    // The client's *current* details are shown, not a copy from creation time.
    stack
        .put(
            &format!("/client/{client_id}"),
            &json!({"name": "Ada King", "card_number": "A-2", "card_issued_on": "2022-01-01"}),
        )
        .await;
    let fresh = stack.get(&format!("/order/{id}")).await;
    assert_eq!(fresh.body["client"]["name"], "Ada King");
    assert_eq!(fresh.body["client"]["card_number"], "A-2");

    let other = stack.create_client("Charles", "C-1").await;
    let replaced = stack
        .put(
            &format!("/order/{id}"),
            &json!({"client_id": other["id"], "item": "Difference Engine", "quantity": 2, "price": "100", "status": "paid"}),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text);
    assert_eq!(replaced.body["client_id"], other["id"]);
    assert_eq!(replaced.body["client"]["name"], "Charles");
    assert_eq!(replaced.body["price"], "100.00");
    assert_eq!(replaced.body["status"], "paid");
    assert_eq!(replaced.body["created_at"], created.body["created_at"]);
    assert_eq!(stack.get(&format!("/order/{id}")).await.body, replaced.body);

    let deleted = stack.delete(&format!("/order/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    stack
        .get(&format!("/order/{id}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    stack
        .delete(&format!("/order/{id}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn lists_filter_by_client_and_status_and_page_by_id() {
    let stack = Stack::start().await;
    let a = stack.create_client("A", "A-1").await["id"]
        .as_i64()
        .unwrap();
    let b = stack.create_client("B", "B-1").await["id"]
        .as_i64()
        .unwrap();
    let mut all = Vec::new();
    for (client, status) in [
        (a, "new"),
        (b, "paid"),
        (a, "paid"),
        (b, "new"),
        (a, "paid"),
    ] {
        let order = stack
            .post(
                "/order/",
                &json!({"client_id": client, "item": "x", "price": "1", "status": status}),
            )
            .await;
        assert_eq!(order.status, StatusCode::CREATED);
        all.push(order.body["id"].as_i64().unwrap());
    }

    let listed = stack.get("/order/").await;
    assert_eq!(ids(&listed.body), all);
    for order in listed.body.as_array().unwrap() {
        assert_eq!(order["client"]["id"], order["client_id"], "{order}");
    }
    assert_eq!(
        ids(&stack.get(&format!("/order/?client_id={a}")).await.body),
        [all[0], all[2], all[4]]
    );
    assert_eq!(
        ids(&stack.get("/order/?status=paid").await.body),
        [all[1], all[2], all[4]]
    );
    assert_eq!(
        ids(&stack
            .get(&format!("/order/?client_id={a}&status=paid"))
            .await
            .body),
        [all[2], all[4]]
    );
    assert_eq!(ids(&stack.get("/order/?limit=2").await.body), all[..2]);
    assert_eq!(
        ids(&stack
            .get(&format!("/order/?limit=2&after={}", all[1]))
            .await
            .body),
        all[2..4]
    );
    assert_eq!(stack.get("/order/?client_id=999999").await.body, json!([]));

    for bad in [
        "/order/?status=lost",
        "/order/?client_id=abc",
        "/order/?limit=0",
        "/order/?limit=5000",
        "/order/?after=x",
        "/order/?clientid=1",
    ] {
        stack.get(bad).await.assert_problem(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn orders_of_a_missing_client_are_refused_and_nothing_is_stored() {
    let stack = Stack::start().await;
    let client = stack.create_client("Ada", "A-1").await;
    let order = stack
        .create_order(client["id"].as_i64().unwrap(), "Tea")
        .await;

    stack
        .post(
            "/order/",
            &json!({"client_id": 999999, "item": "Tea", "price": "1.00"}),
        )
        .await
        .assert_invalid("client_id");
    let put = stack
        .put(
            &format!("/order/{}", order["id"]),
            &json!({"client_id": 999999, "item": "Coffee", "quantity": 3, "price": "2.00", "status": "paid"}),
        )
        .await;
    put.assert_invalid("client_id");

    let stored = stack.all_orders().await;
    assert_eq!(stored, std::slice::from_ref(&order));
    stack
        .put("/order/999999", &json!({"client_id": client["id"], "item": "x", "quantity": 1, "price": "1", "status": "new"}))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    let partial = stack
        .put(
            &format!("/order/{}", order["id"]),
            &json!({"item": "Coffee"}),
        )
        .await;
    partial.assert_invalid("client_id");
    partial.assert_invalid("status");
    assert_eq!(
        stack.get(&format!("/order/{}", order["id"])).await.body,
        order
    );
}

#[tokio::test]
async fn deleting_all_orders_of_a_client_needs_the_client_id() {
    let stack = Stack::start().await;
    let a = stack.create_client("A", "A-1").await["id"]
        .as_i64()
        .unwrap();
    let b = stack.create_client("B", "B-1").await["id"]
        .as_i64()
        .unwrap();
    stack.create_order(a, "x").await;
    stack.create_order(a, "y").await;
    let kept = stack.create_order(b, "z").await;

    stack
        .delete("/order/")
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    stack
        .delete("/order/?client_id=x")
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    assert_eq!(stack.all_orders().await.len(), 3);

    let done = stack.delete(&format!("/order/?client_id={a}")).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT);
    assert_eq!(stack.all_orders().await, [kept]);
    // Deleting the orders of a client without any is done, not missing.
    assert_eq!(
        stack.delete(&format!("/order/?client_id={a}")).await.status,
        StatusCode::NO_CONTENT
    );
}
