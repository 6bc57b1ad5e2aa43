//! SQLite's write-ahead log stays bounded while clients are created (issue
//! 14): the store's own insert, in-process. Sizes and counts only. The
//! orders' test (services/order_service/tests/wal.rs) does the same with
//! more creates and with readers.

use std::{path::Path, time::Duration};

use client_service::{
    domain::{ClientInput, NewClient},
    store::ClientStore,
};
use kit_data::{Db, Statement};
use serde::Deserialize;
use serde_json::json;

/// Creates enough to pass several automatic checkpoints (one per 1000
/// pages of WAL): without the fix, these would leave a WAL of some 40 MB.
const CREATES: i64 = 3_000;
/// SQLite checkpoints the WAL at 1000 pages (4 MiB) and, with no reader
/// in its way, starts it again: it never grows much past that.
const WAL_BOUND: u64 = 5 * 1024 * 1024;
/// How long the test waits, at most, for the idle WAL to be emptied.
const IDLE_WAIT: Duration = Duration::from_secs(20);

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_while_clients_are_created() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db_path = dir.path().join("clients.db");
    let wal_path = dir.path().join("clients.db-wal");
    let db = Db::connect(
        &format!("sqlite://{}", db_path.display()),
        &client_service::store::MIGRATIONS,
    )
    .await
    .expect("the database opens");
    let store = ClientStore::new(db.clone());

    let mut largest = 0;
    for i in 0..CREATES {
        let body = json!({
            "name": format!("Client {i}"),
            "card_number": format!("WAL-{i:06}"),
            "card_issued_on": "2020-01-01",
        });
        let input = ClientInput::deserialize(&body).expect("the body's members");
        let new = NewClient::try_from(input).expect("a valid client");
        store
            .insert(&new, None)
            .await
            .expect("created")
            .expect("a new card");
        largest = largest.max(file_size(&wal_path));
    }
    assert!(
        largest <= WAL_BOUND,
        "the WAL reached {largest} bytes during the creates; its bound is {WAL_BOUND}"
    );

    let step = Duration::from_millis(250);
    let mut waited = Duration::ZERO;
    while file_size(&wal_path) > 0 && waited < IDLE_WAIT {
        tokio::time::sleep(step).await;
        waited += step;
    }
    assert_eq!(file_size(&wal_path), 0, "the idle WAL is emptied");
    let count: Option<i64> = db
        .fetch_optional(
            &Statement::new("SELECT clients", "SELECT count(*) FROM clients"),
            &[],
        )
        .await
        .expect("counted");
    let count = count.expect("a count");
    assert_eq!(count, CREATES, "no client lost");
    db.close().await;
}
