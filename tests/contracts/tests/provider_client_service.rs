//! The provider side of order_service → client_service: the real
//! client_service binary, on SQLite, replays every interaction of
//! `target/pacts/order_service-client_service.json` (written by
//! `consumer_order_service.rs`) and must answer each as the consumer stated.
//!
//! Provider states are set up by this test process, never by client_service:
//! a client "exists" because the hook wrote its row into client_service's
//! SQLite file; the issuer's keys "cannot be fetched" because the hook made
//! this test's issuer answer 503 and the requests carry a token of a key the
//! provider has never seen (a rotation while auth_service is down). The
//! shipped binary has no state endpoint, no test switch.
//!
//! And the proof that the verification can fail: a deliberately broken
//! client_service (its card number under another name, 500 for a batch)
//! fails it, and Pact's report names the interactions that broke.

mod common;

use std::{collections::HashMap, path::PathBuf};

use axum::{
    Json, Router,
    extract::{Path, Query},
    http::StatusCode,
    response::IntoResponse,
    routing::get,
};
use common::{
    CLIENT_SERVICE, Issuer, NoStates, ORDER_SERVICE, Provider, StateHook, TokenFilter, Verified,
    open_database, pact_file, param_i64, verify,
};
use kit_http::problem::Problem;
use serde_json::{Value, json};

/// The provider states of order_service's pact, written into client_service's
/// own database file.
struct ClientStates {
    database: PathBuf,
    issuer: Issuer,
}

impl StateHook for ClientStates {
    fn set_up(&self, state: &str, params: &HashMap<String, Value>) -> Result<(), String> {
        match state {
            // Values other than the pact's examples on purpose: only the id
            // is the contract's; the rest is matched by type and form.
            "a client exists" => {
                let id = param_i64(params, "id")?;
                open_database(&self.database)?
                    .execute(
                        "INSERT OR REPLACE INTO clients \
                         (id, name, name_folded, card_number, card_issued_on, created_at, updated_at, version) \
                         VALUES (?1, 'Grace Hopper', 'grace hopper', ?2, '1906-12-09', \
                                 '2024-01-02T03:04:05+00:00', '2024-01-02T03:04:05+00:00', 1)",
                        rusqlite::params![id, format!("GH-{id}")],
                    )
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            "a client does not exist" => {
                let id = param_i64(params, "id")?;
                open_database(&self.database)?
                    .execute("DELETE FROM clients WHERE id = ?1", [id])
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            "the token issuer's keys cannot be fetched" => {
                self.issuer.set_keys_unreachable(true);
                Ok(())
            }
            other => Err(format!("unknown provider state `{other}`")),
        }
    }

    fn tear_down(&self) -> Result<(), String> {
        self.issuer.set_keys_unreachable(false);
        open_database(&self.database)?
            .execute("DELETE FROM clients", [])
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

fn token_filter(issuer: &Issuer) -> TokenFilter {
    TokenFilter {
        issuer: issuer.clone(),
        audience: CLIENT_SERVICE,
        scope: "clients:read",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_service_gives_order_service_what_its_pact_states() {
    let pact = pact_file(ORDER_SERVICE, CLIENT_SERVICE);
    let issuer = Issuer::start().await;
    let provider = Provider::start("client_service", &issuer).await;
    let hook = ClientStates {
        database: provider.database.clone(),
        issuer: issuer.clone(),
    };

    verify(
        CLIENT_SERVICE,
        provider.service.port,
        &pact,
        hook,
        token_filter(&issuer),
    )
    .await
    .assert_passed(&pact, &provider);
}

/// client_service as a careless change could make it: the card number
/// answered as `card_no`, and 500 for every batch lookup. Everything else
/// is right (the 404 of a missing client too), so the report must name
/// exactly the interactions that this breaks.
fn broken_client_service() -> Router {
    Router::new()
        .route(
            "/client/{id}",
            get(|Path(id): Path<i64>| async move {
                match id {
                    7 => Json(
                        json!({"id": 7, "name": "Ada Lovelace", "card_no": "AL-1815",
                                     "card_issued_on": "2020-02-29"}),
                    )
                    .into_response(),
                    _ => Problem::new(StatusCode::NOT_FOUND, format!("There is no client {id}."))
                        .into_response(),
                }
            }),
        )
        .route(
            "/client/",
            get(|Query(_): Query<HashMap<String, String>>| async move {
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "An unexpected error occurred.",
                )
            }),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_client_service_fails_the_verification_naming_what_broke() {
    let pact = pact_file(ORDER_SERVICE, CLIENT_SERVICE);
    let issuer = Issuer::start().await;
    let (port, _) = test_kit::serve(broken_client_service()).await;

    let Verified { passed, failed, .. } =
        verify(CLIENT_SERVICE, port, &pact, NoStates, token_filter(&issuer)).await;

    assert!(!passed, "a broken client_service passed the verification");
    for broken in [
        "a request for client 7",
        "a batch lookup of clients 7 and 9, of which 9 does not exist",
        "a batch lookup of client 9, which does not exist",
        "a request for client 7 while client_service cannot check tokens",
    ] {
        assert!(
            failed.iter().any(|f| f == broken),
            "the report does not name `{broken}`: {failed:?}"
        );
    }
    assert!(
        !failed
            .iter()
            .any(|f| f == "a request for client 9, which does not exist"),
        "the stand-in's 404 is right, yet it failed: {failed:?}"
    );
}
