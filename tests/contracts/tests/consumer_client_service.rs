//! The consumer side of client_service → order_service: client_service's
//! own typed client (`client_service::orders::OrderService`, the calls of
//! `DELETE /client/{id}` and its cascade) against a Pact mock server, for
//! every call it makes. Together these tests write
//! `target/pacts/client_service-order_service.json`, which
//! `provider_order_service.rs` replays against the real order_service.

mod common;

use client_service::orders::OrderService;
use common::{
    CLIENT_SERVICE, ORDER_SERVICE, bearer, dependency, json_ok, service_token, unavailable,
};
use kit_auth::testing::TestIssuer;
use kit_upstream::UpstreamError;
use pact_consumer::{json_pattern, like, prelude::*};
use serde_json::json;

fn pact() -> PactBuilder {
    common::require_do_not_track();
    common::start_pact_file(&common::pact_file(CLIENT_SERVICE, ORDER_SERVICE));
    let mut pact = PactBuilder::new_v4(CLIENT_SERVICE, ORDER_SERVICE);
    pact.with_output_dir(common::pact_dir());
    pact
}

fn order_service(mock: &dyn ValidatingMockServer, issuer: &TestIssuer) -> OrderService {
    let url = mock.url().to_string();
    OrderService::new(
        &dependency(url.trim_end_matches('/')),
        service_token(issuer, OrderService::SCOPE),
    )
    .expect("the typed client")
}

/// `GET /order/?client_id=8&limit=1` answers a list of the client's
/// orders, at most one: all client_service asks is whether it is empty.
fn list_request(i: &mut pact_consumer::builders::InteractionBuilder) {
    bearer(
        i.request
            .get()
            .path("/order/")
            .query_param("client_id", "8")
            .query_param("limit", "1"),
    );
}

fn delete_request(i: &mut pact_consumer::builders::InteractionBuilder) {
    bearer(
        i.request
            .delete()
            .path("/order/")
            .query_param("client_id", "8"),
    );
}

/// A client with orders: the list holds one (the limit), an order of that
/// client.
#[tokio::test]
async fn a_client_with_orders_has_orders() {
    let mut pact = pact();
    pact.interaction(
        "a request for one order of client 8, who has two",
        "",
        |mut i| {
            i.given_with_params("a client has orders", &json!({"client_id": 8, "count": 2}));
            list_request(&mut i);
            json_ok(
                &mut i.response,
                json_pattern!([{"id": like!(1), "client_id": 8}]),
            );
            i
        },
    );
    let mock = pact.start_mock_server(None, None);
    let issuer = TestIssuer::start().await;

    let has = order_service(mock.as_ref(), &issuer).has_orders(8).await;

    assert!(has.expect("an answer"));
}

/// A client without orders: an empty list, not a 404.
#[tokio::test]
async fn a_client_without_orders_has_none() {
    let mut pact = pact();
    pact.interaction(
        "a request for one order of client 8, who has none",
        "",
        |mut i| {
            i.given_with_params("a client has no orders", &json!({"client_id": 8}));
            list_request(&mut i);
            json_ok(&mut i.response, json_pattern!([]));
            i
        },
    );
    let mock = pact.start_mock_server(None, None);
    let issuer = TestIssuer::start().await;

    let has = order_service(mock.as_ref(), &issuer).has_orders(8).await;

    assert!(!has.expect("an answer"));
}

/// The cascade: `DELETE /order/?client_id=8` deletes the client's orders
/// and answers 204.
#[tokio::test]
async fn the_cascade_deletes_the_orders_of_a_client() {
    let mut pact = pact();
    pact.interaction(
        "the deletion of the orders of client 8, who has two",
        "",
        |mut i| {
            i.given_with_params("a client has orders", &json!({"client_id": 8, "count": 2}));
            delete_request(&mut i);
            i.response.no_content();
            i
        },
    );
    let mock = pact.start_mock_server(None, None);
    let issuer = TestIssuer::start().await;

    let done = order_service(mock.as_ref(), &issuer)
        .delete_orders_of(8)
        .await;

    done.expect("deleted");
}

/// The cascade when the client has no orders: 204 all the same (not 404:
/// the typed client would read a 404 as the wrong service answering).
#[tokio::test]
async fn the_cascade_of_a_client_without_orders_is_a_204() {
    let mut pact = pact();
    pact.interaction(
        "the deletion of the orders of client 8, who has none",
        "",
        |mut i| {
            i.given_with_params("a client has no orders", &json!({"client_id": 8}));
            delete_request(&mut i);
            i.response.no_content();
            i
        },
    );
    let mock = pact.start_mock_server(None, None);
    let issuer = TestIssuer::start().await;

    let done = order_service(mock.as_ref(), &issuer)
        .delete_orders_of(8)
        .await;

    done.expect("deleted");
}

/// order_service may answer the cascade with 503 and `Retry-After`
/// (problem+json) when its database is busy: nothing was deleted, and the
/// typed client reports order_service failing (client_service then keeps
/// the client and answers 503 itself: its own tests).
#[tokio::test]
async fn a_503_with_retry_after_is_a_failure_of_order_service() {
    let mut pact = pact();
    pact.interaction(
        "the deletion of the orders of client 8 while order_service's database is busy",
        "",
        |mut i| {
            i.given_with_params("a client has orders", &json!({"client_id": 8, "count": 2}));
            i.given("the database is busy");
            delete_request(&mut i);
            unavailable(&mut i.response);
            i
        },
    );
    let mock = pact.start_mock_server(None, None);
    let issuer = TestIssuer::start().await;

    let failed = order_service(mock.as_ref(), &issuer)
        .delete_orders_of(8)
        .await;

    match failed {
        Err(UpstreamError::Status { service, status }) => {
            assert_eq!((service, status.as_u16()), ("order_service", 503));
        }
        other => panic!("expected order_service's 503 as a failure, got {other:?}"),
    }
}
