//! The consumer side of order_service → client_service: order_service's own
//! typed client (`order_service::clients::ClientService`, the code that runs
//! in production) against a Pact mock server, for every call it makes. Each
//! test states what order_service needs from client_service; together they
//! write `target/pacts/order_service-client_service.json`, which
//! `provider_client_service.rs` replays against the real client_service.

mod common;

use common::{
    CLIENT_SERVICE, ORDER_SERVICE, bearer, dependency, json_ok, problem, service_token, unavailable,
};
use kit_auth::testing::TestIssuer;
use kit_upstream::UpstreamError;
use order_service::{clients::ClientService, domain::ClientSummary};
use pact_consumer::{json_pattern, like, prelude::*, term};
use serde_json::json;

/// The pact of these tests, written to `target/pacts/` when each test's
/// mock server has seen exactly the requests it expected.
fn pact() -> PactBuilder {
    common::require_do_not_track();
    common::start_pact_file(&common::pact_file(ORDER_SERVICE, CLIENT_SERVICE));
    let mut pact = PactBuilder::new_v4(ORDER_SERVICE, CLIENT_SERVICE);
    pact.with_output_dir(common::pact_dir());
    pact
}

/// What order_service reads of a client: its id (the key it files the
/// client under), name, card number and the card's date. The id is a
/// literal (it must be the client asked for); the rest only need their type
/// and, for the date, its form. Other fields may come and go.
fn client_7() -> JsonPattern {
    json_pattern!({
        "id": 7,
        "name": like!("Ada Lovelace"),
        "card_number": like!("AL-1815"),
        "card_issued_on": term!(r"^\d{4}-\d{2}-\d{2}$", "2020-02-29"),
    })
}

fn expected_client_7() -> ClientSummary {
    ClientSummary {
        id: 7,
        name: "Ada Lovelace".into(),
        card_number: "AL-1815".into(),
        card_issued_on: "2020-02-29".parse().expect("a date"),
    }
}

/// order_service's typed client, pointed at the mock server, with its own
/// token from a stand-in issuer (as in production: the call carries a
/// bearer token of order_service's own).
fn client_service(mock: &dyn ValidatingMockServer, issuer: &TestIssuer) -> ClientService {
    let url = mock.url().to_string();
    ClientService::new(
        &dependency(url.trim_end_matches('/')),
        service_token(issuer, ClientService::SCOPE),
    )
    .expect("the typed client")
}

/// `GET /client/{id}` of a client that exists: 200 and the client.
#[tokio::test]
async fn a_client_that_exists_is_read() {
    let mut pact = pact();
    pact.interaction("a request for client 7", "", |mut i| {
        i.given_with_params("a client exists", &json!({"id": 7}));
        bearer(i.request.get().path("/client/7"));
        json_ok(&mut i.response, client_7());
        i
    });
    let mock = pact.start_mock_server(None, None);
    let issuer = TestIssuer::start().await;

    let client = client_service(mock.as_ref(), &issuer).get(7).await;

    assert_eq!(client.expect("an answer"), Some(expected_client_7()));
}

/// `GET /client/{id}` of a client that does not exist: 404 problem+json,
/// which the typed client reads as "no such client" (`None`), not as a
/// failure of client_service.
#[tokio::test]
async fn a_client_that_does_not_exist_is_none_not_a_failure() {
    let mut pact = pact();
    pact.interaction(
        "a request for client 9, which does not exist",
        "",
        |mut i| {
            i.given_with_params("a client does not exist", &json!({"id": 9}));
            bearer(i.request.get().path("/client/9"));
            problem(
                &mut i.response,
                404,
                json_pattern!({
                    "status": 404,
                    "title": like!("Not Found"),
                    "detail": like!("There is no client 9."),
                }),
            );
            i
        },
    );
    let mock = pact.start_mock_server(None, None);
    let issuer = TestIssuer::start().await;

    let client = client_service(mock.as_ref(), &issuer).get(9).await;

    assert_eq!(client.expect("an answer, not a failure"), None);
}

/// A batch of ids some of which do not exist: 200 with the clients found
/// only (exactly one here), the missing ones simply absent: no 404, no null.
/// An empty batch makes no call at all (the mock server would report it).
#[tokio::test]
async fn a_batch_answers_the_clients_found_and_leaves_out_the_missing() {
    let mut pact = pact();
    pact.interaction(
        "a batch lookup of clients 7 and 9, of which 9 does not exist",
        "",
        |mut i| {
            i.given_with_params("a client exists", &json!({"id": 7}));
            i.given_with_params("a client does not exist", &json!({"id": 9}));
            bearer(
                i.request
                    .get()
                    .path("/client/")
                    .query_param("ids", "7,9")
                    .query_param("limit", "1000"),
            );
            json_ok(&mut i.response, json_pattern!([client_7()]));
            i
        },
    );
    let mock = pact.start_mock_server(None, None);
    let issuer = TestIssuer::start().await;
    let clients = client_service(mock.as_ref(), &issuer);

    let none = clients.get_many(&[]).await.expect("no call, no failure");
    assert!(none.is_empty());
    // Unsorted and repeated: the typed client asks once, sorted.
    let found = clients.get_many(&[9, 7, 9]).await.expect("an answer");

    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found.get(&7), Some(&expected_client_7()));
}

/// A batch none of whose ids exist: 200 and an empty list.
#[tokio::test]
async fn a_batch_of_missing_clients_is_an_empty_list() {
    let mut pact = pact();
    pact.interaction(
        "a batch lookup of client 9, which does not exist",
        "",
        |mut i| {
            i.given_with_params("a client does not exist", &json!({"id": 9}));
            bearer(
                i.request
                    .get()
                    .path("/client/")
                    .query_param("ids", "9")
                    .query_param("limit", "1000"),
            );
            json_ok(&mut i.response, json_pattern!([]));
            i
        },
    );
    let mock = pact.start_mock_server(None, None);
    let issuer = TestIssuer::start().await;

    let found = client_service(mock.as_ref(), &issuer)
        .get_many(&[9])
        .await
        .expect("an answer");

    assert!(found.is_empty(), "{found:?}");
}

/// client_service may answer 503 with `Retry-After` (problem+json) when it
/// cannot check the token, its issuer's keys being out of reach. The typed
/// client reports it as client_service failing (the caller's 503 and what
/// order_service does then are order_service's own tests).
#[tokio::test]
async fn a_503_with_retry_after_is_a_failure_of_client_service() {
    let mut pact = pact();
    pact.interaction(
        "a request for client 7 while client_service cannot check tokens",
        "",
        |mut i| {
            i.given_with_params("a client exists", &json!({"id": 7}));
            i.given("the token issuer's keys cannot be fetched");
            bearer(i.request.get().path("/client/7"));
            unavailable(&mut i.response);
            i
        },
    );
    let mock = pact.start_mock_server(None, None);
    let issuer = TestIssuer::start().await;

    let failed = client_service(mock.as_ref(), &issuer).get(7).await;

    match failed {
        Err(UpstreamError::Status { service, status }) => {
            assert_eq!((service, status.as_u16()), ("client_service", 503));
        }
        other => panic!("expected client_service's 503 as a failure, got {other:?}"),
    }
}
