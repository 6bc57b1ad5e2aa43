//! A restart keeps the data, and a graceful stop exits 0.

use reqwest::StatusCode;
use test_kit::{Stack, json};

#[tokio::test]
async fn data_survives_a_restart() {
    let mut stack = Stack::start().await;
    let client = stack.create_client("Persistent", "P-1").await;
    let order = stack
        .create_order(client["id"].as_i64().unwrap(), "kept")
        .await;

    for status in stack.stop_services() {
        assert!(status.success(), "a service did not stop cleanly: {status}");
    }
    stack.start_services().await;

    assert_eq!(
        stack.get(&format!("/client/{}", client["id"])).await.body,
        client
    );
    assert_eq!(
        stack.get(&format!("/order/{}", order["id"])).await.body,
        order
    );
    // Ids go on from where they were; the unique constraint still holds.
    let next = stack.create_client("Next", "P-2").await;
    assert!(next["id"].as_i64() > client["id"].as_i64());
    stack
        .post(
            "/client/",
            &json!({"name": "Dup", "card_number": "P-1", "card_issued_on": "2020-01-01"}),
        )
        .await
        .assert_problem(StatusCode::CONFLICT);
}
