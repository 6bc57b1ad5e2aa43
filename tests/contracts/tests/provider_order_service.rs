//! The provider side of client_service → order_service: the real
//! order_service binary, on SQLite, replays every interaction of
//! `target/pacts/client_service-order_service.json` (written by
//! `consumer_client_service.rs`) and must answer each as the consumer stated.
//!
//! Provider states are set up by this test process, never by order_service:
//! a client "has orders" because the hook wrote them into order_service's
//! SQLite file; the database "is busy" because the hook holds its write lock
//! (`BEGIN IMMEDIATE`) from another connection until the interaction is
//! over, so that order_service's write fails after its busy timeout, as it
//! would behind another process's long write.
//!
//! And the proof that this verification can fail too: a deliberately broken
//! order_service (its list wrapped in an object, 404 for the deletion of a
//! client's orders) fails it, naming the interactions that broke.

mod common;

use std::{collections::HashMap, path::PathBuf, sync::Mutex};

use axum::{Json, Router, http::StatusCode, routing::get};
use common::{
    CLIENT_SERVICE, Issuer, NoStates, ORDER_SERVICE, Provider, StateHook, TokenFilter, Verified,
    interactions, open_database, pact_file, param_i64, verify,
};
use kit_http::problem::Problem;
use serde_json::{Value, json};

/// The provider states of client_service's pact, written into
/// order_service's own database file.
struct OrderStates {
    database: PathBuf,
    /// The connection that holds the write lock while "the database is busy".
    busy: Mutex<Option<rusqlite::Connection>>,
}

impl StateHook for OrderStates {
    fn set_up(&self, state: &str, params: &HashMap<String, Value>) -> Result<(), String> {
        match state {
            "a client has orders" => {
                let client_id = param_i64(params, "client_id")?;
                let count = param_i64(params, "count")?;
                let db = open_database(&self.database)?;
                for _ in 0..count {
                    db.execute(
                        "INSERT INTO orders \
                         (client_id, item, quantity, price_cents, status, created_at, updated_at) \
                         VALUES (?1, 'Difference Engine', 2, 99900, 'paid', \
                                 '2024-01-02T03:04:05+00:00', '2024-01-02T03:04:05+00:00')",
                        [client_id],
                    )
                    .map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            "a client has no orders" => {
                let client_id = param_i64(params, "client_id")?;
                open_database(&self.database)?
                    .execute("DELETE FROM orders WHERE client_id = ?1", [client_id])
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            "the database is busy" => {
                let db = open_database(&self.database)?;
                db.execute_batch("BEGIN IMMEDIATE")
                    .map_err(|e| e.to_string())?;
                let mut busy = self.busy.lock().map_err(|e| e.to_string())?;
                *busy = Some(db);
                Ok(())
            }
            other => Err(format!("unknown provider state `{other}`")),
        }
    }

    fn tear_down(&self) -> Result<(), String> {
        // The lock first (dropping the connection rolls its transaction back).
        self.busy.lock().map_err(|e| e.to_string())?.take();
        open_database(&self.database)?
            .execute_batch("DELETE FROM orders; DELETE FROM deleted_clients;")
            .map_err(|e| e.to_string())
    }
}

fn token_filter(issuer: &Issuer) -> TokenFilter {
    TokenFilter {
        issuer: issuer.clone(),
        audience: ORDER_SERVICE,
        scope: "orders:read orders:write",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_service_gives_client_service_what_its_pact_states() {
    let pact = pact_file(CLIENT_SERVICE, ORDER_SERVICE);
    let issuer = Issuer::start().await;
    let provider = Provider::start("order_service", &issuer).await;
    let hook = OrderStates {
        database: provider.database.clone(),
        busy: Mutex::new(None),
    };

    verify(
        ORDER_SERVICE,
        provider.service.port,
        &pact,
        hook,
        token_filter(&issuer),
    )
    .await
    .assert_passed(&pact, &provider);
}

/// order_service as a careless change could make it: the list wrapped in
/// an object (`{"items": [...]}`), and the deletion of a client's orders
/// moved elsewhere (404). The busy database's 503 it does not give either.
fn broken_order_service() -> Router {
    Router::new().route(
        "/order/",
        get(|| async { Json(json!({"items": []})) }).delete(|| async {
            Problem::new(StatusCode::NOT_FOUND, "There is nothing at this path.")
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_order_service_fails_the_verification_naming_what_broke() {
    let pact = pact_file(CLIENT_SERVICE, ORDER_SERVICE);
    let issuer = Issuer::start().await;
    let (port, _) = test_kit::serve(broken_order_service()).await;

    let Verified {
        passed, mut failed, ..
    } = verify(ORDER_SERVICE, port, &pact, NoStates, token_filter(&issuer)).await;

    assert!(!passed, "a broken order_service passed the verification");
    failed.sort();
    assert_eq!(
        failed,
        interactions(&pact),
        "every interaction of the cascade breaks, and the report names each"
    );
}
