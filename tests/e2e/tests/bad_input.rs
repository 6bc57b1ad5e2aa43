//! Bad input of every kind: answered with problem+json and the right 4xx,
//! and nothing stored.

use reqwest::{Method, StatusCode};
use test_kit::{Stack, json};

#[tokio::test]
async fn malformed_and_mistyped_client_bodies_store_nothing() {
    let stack = Stack::start().await;
    let bad_json: [&[u8]; 5] = [
        b"{",
        b"{\"name\": }",
        b"not json",
        b"",
        b"{\"name\":\"a\"} trailing",
    ];
    for body in bad_json {
        stack
            .send_raw(Method::POST, "/client/", "application/json", body.to_vec())
            .await
            .assert_problem(StatusCode::BAD_REQUEST);
    }
    stack
        .send_raw(
            Method::POST,
            "/client/",
            "text/plain",
            br#"{"name":"a"}"#.to_vec(),
        )
        .await
        .assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let cases = [
        (json!([1, 2]), "body"),
        (json!("a string"), "body"),
        (json!(null), "body"),
        (json!({}), "name"),
        (
            json!({"name": 42, "card_number": "A-1", "card_issued_on": "2020-01-01"}),
            "name",
        ),
        (
            json!({"name": "   ", "card_number": "A-1", "card_issued_on": "2020-01-01"}),
            "name",
        ),
        (
            json!({"name": "x".repeat(201), "card_number": "A-1", "card_issued_on": "2020-01-01"}),
            "name",
        ),
        (
            json!({"name": "a\u{0000}b", "card_number": "A-1", "card_issued_on": "2020-01-01"}),
            "name",
        ),
        (
            json!({"name": "Ada", "card_number": "", "card_issued_on": "2020-01-01"}),
            "card_number",
        ),
        (
            json!({"name": "Ada", "card_number": "A 1", "card_issued_on": "2020-01-01"}),
            "card_number",
        ),
        (
            json!({"name": "Ada", "card_number": "A".repeat(33), "card_issued_on": "2020-01-01"}),
            "card_number",
        ),
        (
            json!({"name": "Ada", "card_number": 12345, "card_issued_on": "2020-01-01"}),
            "card_number",
        ),
        (
            json!({"name": "Ada", "card_number": "A-1", "card_issued_on": "2023-02-29"}),
            "card_issued_on",
        ),
        (
            json!({"name": "Ada", "card_number": "A-1", "card_issued_on": "2021-04-31"}),
            "card_issued_on",
        ),
        (
            json!({"name": "Ada", "card_number": "A-1", "card_issued_on": "2020-13-01"}),
            "card_issued_on",
        ),
        (
            json!({"name": "Ada", "card_number": "A-1", "card_issued_on": "3000-01-01"}),
            "card_issued_on",
        ),
        (
            json!({"name": "Ada", "card_number": "A-1", "card_issued_on": "01/02/2020"}),
            "card_issued_on",
        ),
        (
            json!({"name": "Ada", "card_number": "A-1", "card_issued_on": 20200101}),
            "card_issued_on",
        ),
        (
            json!({"name": "Ada", "card_number": "A-1", "card_issued_on": "2020-01-01", "cardnumber": "x"}),
            "cardnumber",
        ),
    ];
    for (body, field) in cases {
        let reply = stack.post("/client/", &body).await;
        reply.assert_invalid(field);
    }
    assert_eq!(stack.all_clients().await, Vec::<serde_json::Value>::new());
}

#[tokio::test]
async fn malformed_and_mistyped_order_bodies_store_nothing() {
    let stack = Stack::start().await;
    let client = stack.create_client("Ada", "A-1").await["id"]
        .as_i64()
        .unwrap();
    stack
        .send_raw(
            Method::POST,
            "/order/",
            "application/json",
            b"{\"item\":".to_vec(),
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    let order = |patch: serde_json::Value| {
        let mut body = json!({"client_id": client, "item": "Tea", "quantity": 2, "price": "3.50", "status": "new"});
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases = [
        (order(json!({"client_id": "1"})), "client_id"),
        (order(json!({"client_id": 0})), "client_id"),
        (order(json!({"client_id": -5})), "client_id"),
        (order(json!({"client_id": 1.5})), "client_id"),
        (order(json!({"client_id": null})), "client_id"),
        (order(json!({"item": ""})), "item"),
        (order(json!({"item": "x".repeat(201)})), "item"),
        (order(json!({"item": ["Tea"]})), "item"),
        (order(json!({"quantity": 0})), "quantity"),
        (order(json!({"quantity": 1_000_001})), "quantity"),
        (order(json!({"quantity": 2.5})), "quantity"),
        (order(json!({"quantity": "2"})), "quantity"),
        (order(json!({"quantity": 99_999_999_999_i64})), "quantity"),
        (order(json!({"price": -1})), "price"),
        (order(json!({"price": "-1.00"})), "price"),
        (order(json!({"price": "1.234"})), "price"),
        (order(json!({"price": 1.234})), "price"),
        (order(json!({"price": "1e3"})), "price"),
        (order(json!({"price": "twelve"})), "price"),
        (order(json!({"price": true})), "price"),
        (order(json!({"price": "99999999999999"})), "price"),
        (order(json!({"status": "lost"})), "status"),
        (order(json!({"status": "NEW"})), "status"),
        (order(json!({"status": 1})), "status"),
        (order(json!({"colour": "red"})), "colour"),
    ];
    for (body, field) in cases {
        stack.post("/order/", &body).await.assert_invalid(field);
    }
    assert!(stack.all_orders().await.is_empty());
}

#[tokio::test]
async fn unknown_ids_and_paths_are_404_problems() {
    let stack = Stack::start().await;
    for path in [
        "/client/999999",
        "/client/0",
        "/client/-1",
        "/client/abc",
        "/client/99999999999999999999999",
        "/order/999999",
        "/order/abc",
        "/client/1/extra",
        "/nothing/here",
        // `/` and `/console/…` are the web console's (gateway.rs).
        "/consoles/",
    ] {
        stack.get(path).await.assert_problem(StatusCode::NOT_FOUND);
    }
    for (method, path, allow) in [
        (Method::POST, "/client/1", "GET,HEAD,PUT,PATCH,DELETE"),
        (Method::PUT, "/client/", "GET,HEAD,POST"),
        (Method::PATCH, "/order/", "GET,HEAD,POST,DELETE"),
    ] {
        let reply = stack.send(method, path, None).await;
        reply.assert_problem(StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(reply.header("allow"), allow);
    }
}

#[tokio::test]
async fn oversized_bodies_are_413_at_the_gateway_and_at_the_service() {
    let stack = Stack::start().await;
    let big = json!({"name": "x".repeat(1_100_000), "card_number": "B-1", "card_issued_on": "2020-01-01"});
    stack
        .post("/client/", &big)
        .await
        .assert_problem(StatusCode::PAYLOAD_TOO_LARGE);
    stack
        .post("/order/", &big)
        .await
        .assert_problem(StatusCode::PAYLOAD_TOO_LARGE);
    // The service enforces the same limit when called directly.
    let direct = stack
        .http
        .post(format!("{}/client/", stack.client_service().url()))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(direct.headers()["content-type"], "application/problem+json");
    assert!(stack.all_clients().await.is_empty());
}

#[tokio::test]
async fn hostile_strings_are_stored_verbatim() {
    let stack = Stack::start().await;
    let names = [
        "Robert'); DROP TABLE clients;--",
        "<script>alert(1)</script>",
        "\"quoted\" \\ back\\slash",
        "Ünïcödé Ελληνικά Кириллица 中文 🎉",
        "\u{202e}right-to-left override",
        "%s%n%x {{template}} ${jndi:ldap://x}",
    ];
    for (n, name) in names.iter().enumerate() {
        let created = stack.create_client(name, &format!("H-{n}")).await;
        assert_eq!(created["name"], *name);
        let fetched = stack.get(&format!("/client/{}", created["id"])).await;
        assert_eq!(fetched.body["name"], *name);
        let order = stack
            .create_order(created["id"].as_i64().unwrap(), name)
            .await;
        assert_eq!(
            stack.get(&format!("/order/{}", order["id"])).await.body["item"],
            *name
        );
    }
    assert_eq!(stack.all_clients().await.len(), names.len());
}

/// What schemathesis found with other seeds: a merge patch member that is
/// no field (even one set to null, which removes nothing) was accepted; an
/// integer query parameter written `196.0` (an integer in JSON Schema) was
/// refused.
#[tokio::test]
async fn the_services_take_what_their_documents_allow_and_refuse_what_they_forbid() {
    let stack = Stack::start().await;
    let client = stack.create_client("Ada", "A-1").await;
    let id = client["id"].as_i64().unwrap();
    let order = stack.create_order(id, "tea").await;
    let order_path = format!("/order/{}", order["id"]);
    let cases = [
        (format!("/client/{id}"), json!({"": null}), ""),
        (
            format!("/client/{id}"),
            json!({"nmae": null, "name": "B"}),
            "nmae",
        ),
        (order_path.clone(), json!({"": null}), ""),
        (order_path, json!({"x": null, "item": "coffee"}), "x"),
    ];
    for (path, patch, stranger) in cases {
        let before = stack.get(&path).await;
        stack
            .send_raw(
                Method::PATCH,
                &path,
                "application/merge-patch+json",
                serde_json::to_vec(&patch).unwrap(),
            )
            .await
            .assert_invalid(stranger);
        let after = stack.get(&path).await;
        assert_eq!(
            before.header("etag"),
            after.header("etag"),
            "{path} changed"
        );
        assert_eq!(before.body, after.body, "{path} changed");
    }

    let listed = stack
        .get(&format!("/order/?client_id={id}.0&status=new"))
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.body.as_array().unwrap().len(), 1, "{}", listed.text);
    let paged = stack.get("/client/?limit=1.0&after=0.0").await;
    assert_eq!(paged.status, StatusCode::OK, "{}", paged.text);
    stack
        .get(&format!("/order/?client_id={id}.5"))
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    let deleted = stack.delete(&format!("/order/?client_id={id}.0")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert!(stack.all_orders().await.is_empty());
}

/// A key twice in one object, at any depth, is a 400 that names it, at
/// both services, through the gateway and directly; nothing is stored or
/// changed. (Taken as it came, `{"name":"A","name":"B"}` was stored as "B",
/// while a proxy or log reading the first value saw "A".)
#[tokio::test]
async fn duplicate_keys_are_refused_at_every_service_at_any_depth() {
    let stack = Stack::start().await;
    let client = stack.create_client("Ada", "A-1").await;
    let id = client["id"].as_i64().unwrap();
    let order = stack.create_order(id, "tea").await;
    let client_path = format!("/client/{id}");
    let order_path = format!("/order/{}", order["id"]);
    let json = "application/json";
    let patch = "application/merge-patch+json";
    let cases = [
        (
            Method::POST,
            "/client/".to_owned(),
            json,
            r#"{"name":"A","card_number":"D-1","card_issued_on":"2021-01-01","name":"B"}"#
                .to_owned(),
            "`name`",
        ),
        (
            Method::POST,
            "/client/".to_owned(),
            json,
            r#"{"name":"A","card_number":"D-2","\u006eame":"B","card_issued_on":"2021-01-01"}"#
                .to_owned(),
            "`name`",
        ),
        (
            Method::PUT,
            client_path.clone(),
            json,
            r#"{"name":"A","card_number":"A-1","card_issued_on":"2021-01-01","card_number":"A-9"}"#
                .to_owned(),
            "`card_number`",
        ),
        (
            Method::PATCH,
            client_path.clone(),
            patch,
            r#"{"name":"A","name":"B"}"#.to_owned(),
            "`name`",
        ),
        (
            Method::POST,
            "/order/".to_owned(),
            json,
            format!(r#"{{"client_id":{id},"item":"x","price":"1.00","item":"y"}}"#),
            "`item`",
        ),
        (
            Method::POST,
            "/order/".to_owned(),
            json,
            format!(
                r#"{{"client_id":{id},"item":"x","price":"1.00","extra":[{{"a":1}},{{"b":1,"b":2}}]}}"#
            ),
            "`b` more than once in the object at `/extra/1`",
        ),
        (
            Method::PUT,
            order_path.clone(),
            json,
            format!(r#"{{"client_id":{id},"item":"x","quantity":1,"quantity":2,"price":"1.00"}}"#),
            "`quantity`",
        ),
        (
            Method::PATCH,
            order_path.clone(),
            patch,
            r#"{"item":"x","nested":{"deeper":{"k":1,"k":1}}}"#.to_owned(),
            "`k` more than once in the object at `/nested/deeper`",
        ),
    ];
    for (method, path, content_type, body, named) in cases {
        let reply = stack
            .send_raw(
                method.clone(),
                &path,
                content_type,
                body.clone().into_bytes(),
            )
            .await;
        let problem = reply.assert_problem_with_id(StatusCode::BAD_REQUEST);
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(named), "{method} {path} {body}: {detail}");
        let service = if path.starts_with("/client") {
            stack.client_service()
        } else {
            stack.order_service()
        };
        let direct = stack
            .http
            .request(method.clone(), format!("{}{path}", service.url()))
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let direct = test_kit::Reply::from(direct).await;
        let problem = direct.assert_problem_with_id(StatusCode::BAD_REQUEST);
        assert_eq!(problem["detail"], detail, "{} {path}", service.name);
    }
    assert_eq!(stack.all_clients().await, vec![client.clone()]);
    assert_eq!(stack.get(&client_path).await.body, client);
    assert_eq!(stack.all_orders().await, vec![order.clone()]);
}
