//! The contract beyond CRUD: `Link` pagination, name search, JSON Merge
//! Patch, ETags with conditional requests, and 415 for other media types.

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use test_kit::{Stack, json};

/// Follows `Link: <…>; rel="next"` from `first` to the end.
async fn follow_links(stack: &Stack, first: &str) -> (Vec<i64>, usize) {
    let (mut ids, mut pages, mut next) = (Vec::new(), 0, Some(first.to_owned()));
    while let Some(path) = next.take() {
        let reply = stack.get(&path).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        pages += 1;
        ids.extend(
            reply
                .body
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_i64().unwrap()),
        );
        let link = reply.header("link");
        if !link.is_empty() {
            assert!(link.ends_with(r#">; rel="next""#), "{link}");
            next = Some(
                link.trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_owned(),
            );
        }
        assert!(pages < 50);
    }
    (ids, pages)
}

#[tokio::test]
async fn lists_link_to_the_next_page_and_not_past_the_last() {
    let stack = Stack::start().await;
    let mut created = Vec::new();
    for n in 0..7 {
        created.push(
            stack
                .create_client(&format!("Page {n}"), &format!("P-{n}"))
                .await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let (ids, pages) = follow_links(&stack, "/client/?limit=3").await;
    assert_eq!((ids.clone(), pages), (created.clone(), 3));
    // Exactly a full last page: no link after it.
    let (ids, pages) = follow_links(&stack, "/client/?limit=7").await;
    assert_eq!((ids, pages), (created.clone(), 1));
    // Filters are kept in the link.
    let reply = stack.get("/client/?limit=2&name=page").await;
    assert!(
        reply.header("link").contains("name=page"),
        "{}",
        reply.header("link")
    );

    let client = created[0];
    for item in ["a", "b", "c"] {
        stack
            .post(
                "/order/",
                &json!({"client_id": client, "item": item, "price": "1", "status": "paid"}),
            )
            .await;
    }
    stack
        .post(
            "/order/",
            &json!({"client_id": client, "item": "d", "price": "1"}),
        )
        .await;
    let reply = stack
        .get(&format!("/order/?client_id={client}&status=paid&limit=2"))
        .await;
    let link = reply.header("link");
    assert!(
        link.contains(&format!("client_id={client}")) && link.contains("status=paid"),
        "{link}"
    );
    let (ids, pages) = follow_links(
        &stack,
        &format!("/order/?client_id={client}&status=paid&limit=2"),
    )
    .await;
    assert_eq!((ids.len(), pages), (3, 2));
}

#[tokio::test]
async fn names_are_found_by_prefix_ignoring_case_in_any_script() {
    let stack = Stack::start().await;
    for (n, name) in [
        "Ada Lovelace",
        "adam Smith",
        "Alan Turing",
        "Ольга Петрова",
        "олег",
        "100%_sure",
        "Bob",
    ]
    .iter()
    .enumerate()
    {
        stack.create_client(name, &format!("N-{n}")).await;
    }
    let names = |reply: test_kit::Reply| -> Vec<String> {
        reply
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(stack.get("/client/?name=ada").await),
        ["Ada Lovelace", "adam Smith"]
    );
    assert_eq!(
        names(stack.get("/client/?name=ADA%20L").await),
        ["Ada Lovelace"]
    );
    assert_eq!(
        names(stack.get("/client/?name=%D0%9E%D0%9B").await),
        ["Ольга Петрова", "олег"]
    );
    assert_eq!(
        names(stack.get("/client/?name=%D0%BE%D0%BB%D1%8C").await),
        ["Ольга Петрова"]
    );
    // LIKE wildcards in the text are plain characters.
    assert_eq!(
        names(stack.get("/client/?name=100%25_").await),
        ["100%_sure"]
    );
    assert!(names(stack.get("/client/?name=%25").await).is_empty());
    assert!(names(stack.get("/client/?name=zz").await).is_empty());
}

#[tokio::test]
async fn merge_patch_changes_only_the_given_fields() {
    let stack = Stack::start().await;
    let client = stack.create_client("Grace", "GH-1").await;
    let id = client["id"].as_i64().unwrap();
    let patch = |path: String, body: serde_json::Value| {
        let stack = &stack;
        async move {
            stack
                .send_raw(
                    Method::PATCH,
                    &path,
                    "application/merge-patch+json",
                    body.to_string().into_bytes(),
                )
                .await
        }
    };

    let patched = patch(format!("/client/{id}"), json!({"name": "Grace Hopper"})).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.body["name"], "Grace Hopper");
    assert_eq!(patched.body["card_number"], "GH-1");
    assert_eq!(patched.body["card_issued_on"], client["card_issued_on"]);
    patch(
        format!("/client/{id}"),
        json!({"card_issued_on": "2999-01-01"}),
    )
    .await
    .assert_invalid("card_issued_on");
    patch(format!("/client/{id}"), json!({"name": null}))
        .await
        .assert_invalid("name");
    patch(format!("/client/{id}"), json!({"nmae": "x"}))
        .await
        .assert_invalid("nmae");
    patch(format!("/client/{id}"), json!([1]))
        .await
        .assert_invalid("body");
    patch("/client/999999".into(), json!({"name": "x"}))
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    assert_eq!(stack.get(&format!("/client/{id}")).await.body, patched.body);

    let order = stack.create_order(id, "Compiler").await;
    let other = stack.create_client("Other", "OT-1").await["id"]
        .as_i64()
        .unwrap();
    let oid = order["id"].as_i64().unwrap();
    let paid = patch(
        format!("/order/{oid}"),
        json!({"status": "paid", "price": 3}),
    )
    .await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.text);
    assert_eq!(
        (paid.body["status"].as_str(), paid.body["price"].as_str()),
        (Some("paid"), Some("3.00"))
    );
    assert_eq!(paid.body["item"], "Compiler");
    assert_eq!(paid.body["client"]["id"], id);
    patch(format!("/order/{oid}"), json!({"client_id": 999999}))
        .await
        .assert_invalid("client_id");
    let moved = patch(format!("/order/{oid}"), json!({"client_id": other})).await;
    assert_eq!(moved.body["client"]["id"], other);
    assert_eq!(moved.body["status"], "paid");
}

#[tokio::test]
async fn etags_make_reads_cheap_and_writes_safe() {
    let stack = Stack::start().await;
    let created = stack
        .post(
            "/client/",
            &json!({"name": "E", "card_number": "E-1", "card_issued_on": "2020-01-01"}),
        )
        .await;
    let id = created.body["id"].as_i64().unwrap();
    let etag = created.header("etag").to_owned();
    assert!(!etag.is_empty());
    let read = stack.get(&format!("/client/{id}")).await;
    assert_eq!(read.header("etag"), etag);

    let conditional_get = |tag: String| {
        let stack = &stack;
        async move {
            let r = stack
                .http
                .get(stack.url(&format!("/client/{id}")))
                .header("if-none-match", tag)
                .send()
                .await
                .unwrap();
            test_kit::Reply::from(r).await
        }
    };
    let unchanged = conditional_get(etag.clone()).await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    assert!(unchanged.text.is_empty());
    assert_eq!(unchanged.header("etag"), etag);

    let body = json!({"name": "E2", "card_number": "E-1", "card_issued_on": "2020-01-01"});
    let put = |tag: &str, body: &serde_json::Value| {
        let request = stack
            .http
            .put(stack.url(&format!("/client/{id}")))
            .header("if-match", tag)
            .json(body);
        async move { test_kit::Reply::from(request.send().await.unwrap()).await }
    };
    let updated = put(&etag, &body).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    let new_etag = updated.header("etag").to_owned();
    assert_ne!(new_etag, etag);
    assert_eq!(conditional_get(etag.clone()).await.status, StatusCode::OK);

    // A write with the old ETag changes nothing.
    let stale = put(
        &etag,
        &json!({"name": "Lost", "card_number": "E-1", "card_issued_on": "2020-01-01"}),
    )
    .await;
    stale.assert_problem(StatusCode::PRECONDITION_FAILED);
    assert_eq!(stack.get(&format!("/client/{id}")).await.body["name"], "E2");
    let delete_stale = stack
        .http
        .delete(stack.url(&format!("/client/{id}")))
        .header("if-match", etag.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(delete_stale.status(), StatusCode::PRECONDITION_FAILED);

    // Two writers read the same version and both write with If-Match: one wins.
    let replies = join_all((0..10).map(|n| {
        let body = json!({"name": format!("Writer {n}"), "card_number": "E-1", "card_issued_on": "2020-01-01"});
        let tag = new_etag.clone();
        let put = &put;
        async move { put(&tag, &body).await }
    }))
    .await;
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.status == StatusCode::OK)
            .count(),
        1
    );
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.status == StatusCode::PRECONDITION_FAILED)
            .count(),
        9
    );
    let winner = replies.iter().find(|r| r.status == StatusCode::OK).unwrap();
    assert_eq!(stack.get(&format!("/client/{id}")).await.body, winner.body);

    let order = stack.create_order(id, "x").await;
    let order_read = stack.get(&format!("/order/{}", order["id"])).await;
    assert!(!order_read.header("etag").is_empty());
    let current = winner.header("etag").to_owned();
    let deleted = stack
        .http
        .delete(stack.url(&format!("/client/{id}?cascade=true")))
        .header("if-match", current)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn writes_in_other_media_types_are_415() {
    let stack = Stack::start().await;
    let client = stack.create_client("M", "M-1").await;
    let body = br#"{"name": "M", "card_number": "M-2", "card_issued_on": "2020-01-01"}"#.to_vec();
    for (method, path, content_type) in [
        (Method::POST, "/client/".to_owned(), "text/plain"),
        (
            Method::POST,
            "/client/".to_owned(),
            "application/merge-patch+json",
        ),
        (
            Method::POST,
            "/client/".to_owned(),
            "application/x-www-form-urlencoded",
        ),
        (
            Method::PUT,
            format!("/client/{}", client["id"]),
            "application/xml",
        ),
        (
            Method::PATCH,
            format!("/client/{}", client["id"]),
            "text/json",
        ),
        (Method::POST, "/order/".to_owned(), "text/plain"),
    ] {
        stack
            .send_raw(method.clone(), &path, content_type, body.clone())
            .await
            .assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let with_charset = stack
        .send_raw(
            Method::POST,
            "/client/",
            "application/json; charset=utf-8",
            body,
        )
        .await;
    assert_eq!(
        with_charset.status,
        StatusCode::CREATED,
        "{}",
        with_charset.text
    );
    assert_eq!(stack.all_clients().await.len(), 2);
}

/// The order of the checks of a conditional write (RFC 9110, 13.2.2: the
/// preconditions are evaluated after the request's own checks, just before
/// its content is processed): an invalid body is a 422 whatever its
/// `If-Match` says; a valid body with a stale `If-Match` is a 412; and
/// neither changes anything. For PUT and PATCH, on both services.
#[tokio::test]
async fn an_invalid_body_is_a_422_before_a_stale_if_match_is_a_412() {
    let stack = Stack::start().await;
    let client = stack.create_client("Ada", "A-1").await;
    let order = stack
        .create_order(client["id"].as_i64().unwrap(), "tea")
        .await;
    let order_before = stack.get(&format!("/order/{}", order["id"])).await.body;
    let stale = "\"999\"";
    let cases = [
        (
            Method::PATCH,
            format!("/client/{}", client["id"]),
            json!({"card_number": []}),
            "application/merge-patch+json",
            "card_number",
        ),
        (
            Method::PATCH,
            format!("/client/{}", client["id"]),
            json!({"name": null}),
            "application/merge-patch+json",
            "name",
        ),
        (
            Method::PUT,
            format!("/client/{}", client["id"]),
            json!({"name": "", "card_number": "A-1", "card_issued_on": "2020-01-01"}),
            "application/json",
            "name",
        ),
        (
            Method::PATCH,
            format!("/order/{}", order["id"]),
            json!({"quantity": "many"}),
            "application/merge-patch+json",
            "quantity",
        ),
        (
            Method::PUT,
            format!("/order/{}", order["id"]),
            json!({"client_id": 1, "item": "x", "quantity": 0, "price": "1", "status": "new"}),
            "application/json",
            "quantity",
        ),
    ];
    for (method, path, body, media_type, field) in cases {
        let send = |tag: &'static str, body: serde_json::Value| {
            let request = stack
                .http
                .request(method.clone(), stack.url(&path))
                .header("if-match", tag)
                .header("content-type", media_type)
                .body(body.to_string());
            async move { test_kit::Reply::from(request.send().await.unwrap()).await }
        };
        let invalid = send(stale, body.clone()).await;
        invalid.assert_invalid(field);
        // The same path with a valid body and the stale tag: 412.
        let valid = if path.starts_with("/client/") {
            json!({"name": "Ada Lovelace", "card_number": "A-1", "card_issued_on": "2020-01-01"})
        } else {
            json!({"client_id": client["id"], "item": "tea", "quantity": 1, "price": "1", "status": "new"})
        };
        send(stale, valid)
            .await
            .assert_problem(StatusCode::PRECONDITION_FAILED);
    }
    assert_eq!(
        stack.get(&format!("/client/{}", client["id"])).await.body["name"],
        "Ada"
    );
    assert_eq!(
        stack.get(&format!("/order/{}", order["id"])).await.body,
        order_before
    );
}
