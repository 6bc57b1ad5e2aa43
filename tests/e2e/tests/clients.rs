//! `/client/…` through the gateway: every row of the API table.

use reqwest::StatusCode;
use test_kit::{Stack, json};

#[tokio::test]
async fn create_read_update_delete_a_client() {
    let stack = Stack::start().await;

    let created = stack
        .post(
            "/client/",
            &json!({"name": "  Ada Lovelace  ", "card_number": "AL-1815", "card_issued_on": "2020-02-29"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_i64().unwrap();
    assert_eq!(created.header("location"), format!("/client/{id}"));
    assert_eq!(created.header("content-type"), "application/json");
    assert_eq!(created.body["name"], "Ada Lovelace");
    assert_eq!(created.body["card_number"], "AL-1815");
    assert_eq!(created.body["card_issued_on"], "2020-02-29");
    let created_at = created.body["created_at"].as_str().unwrap().to_owned();
    assert!(
        created_at.ends_with('Z'),
        "{created_at} is not RFC 3339 UTC"
    );
    assert_eq!(created.body["updated_at"], created_at.as_str());

    let fetched = stack.get(&format!("/client/{id}")).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body, created.body);

    let updated = stack
        .put(
            &format!("/client/{id}"),
            &json!({"name": "Ada King", "card_number": "AK-1835", "card_issued_on": "2021-01-01"}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.body["id"], id);
    assert_eq!(updated.body["name"], "Ada King");
    assert_eq!(updated.body["card_number"], "AK-1835");
    assert_eq!(updated.body["created_at"], created_at.as_str());
    assert_ne!(updated.body["updated_at"], created_at.as_str());
    assert_eq!(stack.get(&format!("/client/{id}")).await.body, updated.body);

    let deleted = stack.delete(&format!("/client/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert!(deleted.text.is_empty());
    stack
        .get(&format!("/client/{id}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    stack
        .delete(&format!("/client/{id}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn lists_are_ordered_by_id_with_keyset_pages_and_batch_lookup() {
    let stack = Stack::start().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let client = stack
            .create_client(&format!("Client {n}"), &format!("C-{n}"))
            .await;
        ids.push(client["id"].as_i64().unwrap());
    }

    let all = stack.get("/client/").await;
    assert_eq!(all.status, StatusCode::OK);
    let listed: Vec<i64> = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, ids);

    let first = stack.get("/client/?limit=2").await;
    let page: Vec<i64> = first
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(page, ids[..2]);
    let next = stack
        .get(&format!("/client/?limit=2&after={}", ids[1]))
        .await;
    let page: Vec<i64> = next
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(page, ids[2..4]);
    let last = stack.get(&format!("/client/?after={}", ids[4])).await;
    assert_eq!(last.body, json!([]));

    let batch = stack
        .get(&format!("/client/?ids={},{},999999", ids[3], ids[0]))
        .await;
    let found: Vec<i64> = batch
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(found, [ids[0], ids[3]]);
    // A long lookup (with a page): every id is a parameter of the
    // statement, past the first 32 too.
    let most = (1..=200)
        .map(|i| {
            if i == 200 {
                ids[4].to_string()
            } else {
                (1_000_000 + i).to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    let batch = stack
        .get(&format!("/client/?ids={most}&after=0&limit=1000"))
        .await;
    assert_eq!(batch.status, StatusCode::OK, "{:?}", batch.body);
    assert_eq!(
        batch.body.as_array().map(Vec::len),
        Some(1),
        "{:?}",
        batch.body
    );
    assert_eq!(batch.body[0]["id"].as_i64(), Some(ids[4]));

    for bad in [
        "/client/?limit=0",
        "/client/?limit=1001",
        "/client/?limit=x",
        "/client/?after=-1",
        "/client/?ids=1,x",
        "/client/?ids=",
        "/client/?colour=red",
    ] {
        stack.get(bad).await.assert_problem(StatusCode::BAD_REQUEST);
    }
    let too_many = (1..=1001)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    stack
        .get(&format!("/client/?ids={too_many}"))
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn card_numbers_are_unique_on_create_and_update() {
    let stack = Stack::start().await;
    let first = stack.create_client("First", "DUP-1").await;
    let second = stack.create_client("Second", "DUP-2").await;

    stack
        .post(
            "/client/",
            &json!({"name": "Again", "card_number": "DUP-1", "card_issued_on": "2020-01-01"}),
        )
        .await
        .assert_problem(StatusCode::CONFLICT);
    let id = second["id"].as_i64().unwrap();
    stack
        .put(
            &format!("/client/{id}"),
            &json!({"name": "Second", "card_number": "DUP-1", "card_issued_on": "2020-01-01"}),
        )
        .await
        .assert_problem(StatusCode::CONFLICT);
    // Keeping one's own card number is no conflict.
    let same = stack
        .put(
            &format!("/client/{id}"),
            &json!({"name": "Renamed", "card_number": "DUP-2", "card_issued_on": "2020-01-01"}),
        )
        .await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.text);

    assert_eq!(
        stack.get(&format!("/client/{id}")).await.body["name"],
        "Renamed"
    );
    assert_eq!(
        stack.get(&format!("/client/{}", first["id"])).await.body,
        first
    );
    assert_eq!(stack.all_clients().await.len(), 2);
}

#[tokio::test]
async fn put_needs_every_field_and_an_existing_client() {
    let stack = Stack::start().await;
    let client = stack.create_client("Grace", "GH-1").await;
    let id = client["id"].as_i64().unwrap();

    let partial = stack
        .put(&format!("/client/{id}"), &json!({"name": "Grace Hopper"}))
        .await;
    partial.assert_invalid("card_number");
    partial.assert_invalid("card_issued_on");
    stack
        .put(
            "/client/424242",
            &json!({"name": "X", "card_number": "X-1", "card_issued_on": "2020-01-01"}),
        )
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    stack
        .send_raw(
            reqwest::Method::PUT,
            &format!("/client/{id}"),
            "application/json",
            b"{nope".to_vec(),
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    assert_eq!(stack.get(&format!("/client/{id}")).await.body, client);
}

#[tokio::test]
async fn a_client_with_orders_is_deleted_only_with_cascade() {
    let stack = Stack::start().await;
    let client = stack.create_client("Alan", "AT-1").await;
    let other = stack.create_client("Other", "OT-1").await;
    let id = client["id"].as_i64().unwrap();
    for item in ["Tea", "Scone"] {
        stack.create_order(id, item).await;
    }
    let kept = stack
        .create_order(other["id"].as_i64().unwrap(), "Kept")
        .await;

    let refused = stack.delete(&format!("/client/{id}")).await;
    refused.assert_problem(StatusCode::CONFLICT);
    assert_eq!(
        stack.get(&format!("/client/{id}")).await.status,
        StatusCode::OK
    );
    assert_eq!(stack.all_orders().await.len(), 3);

    stack
        .delete(&format!("/client/{id}?cascade=maybe"))
        .await
        .assert_problem(StatusCode::BAD_REQUEST);

    let cascaded = stack.delete(&format!("/client/{id}?cascade=true")).await;
    assert_eq!(cascaded.status, StatusCode::NO_CONTENT, "{}", cascaded.text);
    stack
        .get(&format!("/client/{id}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    let left = stack.all_orders().await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], kept["id"]);
}
