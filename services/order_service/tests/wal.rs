//! SQLite's write-ahead log stays bounded while orders are created (issue
//! 14): the store's own insert on a database opened as the service opens
//! it, in-process. Sizes and counts are asserted, never times.
//!
//! Without the fix every create added about 13 KB to the WAL forever: the
//! automatic checkpoint never ran, the WAL of 20 000 creates was some
//! 260 MB and the main database file held no row at all.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use kit_data::{Db, FromRow, Row, Statement, StoreError};
use order_service::{
    domain::{NewOrder, OrderStatus, Price},
    store::{MIGRATIONS, OrderStore},
};

/// Enough creates to pass many automatic checkpoints (one per 1000 pages
/// of WAL, about 300 creates).
const CREATES: i64 = 20_000;
/// The WAL's bound while creates run one after another: SQLite checkpoints
/// it at 1000 pages (4 MiB of 4 KiB pages, plus frame headers) and, with no
/// reader in its way, starts it again from the beginning.
const WAL_BOUND_SEQUENTIAL: u64 = 5 * 1024 * 1024;
/// The WAL's bound with readers running all along: a WAL cannot start again
/// while a reader is in it, so it grows past the automatic checkpoint's
/// size until the service's own checkpoint truncates it.
const WAL_BOUND_WITH_READERS: u64 = 32 * 1024 * 1024;
/// The WAL once the service has been idle for a while: empty (truncated),
/// every page is in the main database file.
const WAL_BOUND_IDLE: u64 = 0;
/// How long the test waits, at most, for the WAL to be emptied when idle.
const IDLE_WAIT: Duration = Duration::from_secs(20);

fn order(i: i64) -> NewOrder {
    NewOrder {
        client_id: 1 + i % 50,
        item: format!("Item {i}"),
        quantity: 1 + (i % 7) as i32,
        price: Price::from_cents(999 + i).expect("a valid price"),
        status: OrderStatus::New,
    }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The database file, its WAL, and the service's store on it.
struct Fixture {
    _dir: tempfile::TempDir,
    db_path: PathBuf,
    wal_path: PathBuf,
    db: Db,
    store: OrderStore,
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let db_path = dir.path().join("orders.db");
        let wal_path = dir.path().join("orders.db-wal");
        let url = format!("sqlite://{}", db_path.display());
        let db = Db::connect(&url, &MIGRATIONS)
            .await
            .expect("the database opens");
        let store = OrderStore::new(db.clone());
        Self {
            _dir: dir,
            db_path,
            wal_path,
            db,
            store,
        }
    }

    fn wal_size(&self) -> u64 {
        file_size(&self.wal_path)
    }

    /// Creates `CREATES` orders one after another; returns the largest WAL
    /// seen after any of them.
    async fn create_orders(&self) -> u64 {
        let mut largest = 0;
        for i in 0..CREATES {
            let created = self
                .store
                .insert(&order(i), None)
                .await
                .expect("created")
                .expect("its client is not deleted");
            assert_eq!(created.id, i + 1, "ids are given in order, none skipped");
            largest = largest.max(self.wal_size());
        }
        largest
    }

    /// Waits (bounded) for the WAL to shrink to `WAL_BOUND_IDLE` while
    /// nothing happens; returns its size then.
    async fn wal_size_when_idle(&self) -> u64 {
        let step = Duration::from_millis(250);
        let mut waited = Duration::ZERO;
        while self.wal_size() > WAL_BOUND_IDLE && waited < IDLE_WAIT {
            tokio::time::sleep(step).await;
            waited += step;
        }
        self.wal_size()
    }

    /// The rows as the main database file alone holds them (`immutable`:
    /// SQLite reads the file as it is, without the WAL).
    async fn rows_in_main_file(&self) -> i64 {
        let url = format!("file:{}?immutable=1", self.db_path.display());
        let conn = rusqlite::Connection::open_with_flags(
            url,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
        )
        .expect("the main file opens");
        conn.query_row("SELECT count(*) FROM orders", [], |row| row.get(0))
            .expect("the main file has the orders table")
    }

    /// Every order as the service sees it: their number and the largest id.
    async fn rows(&self) -> (i64, i64) {
        let rows: Option<Rows> = self
            .db
            .fetch_optional(
                &Statement::new(
                    "SELECT orders",
                    "SELECT count(*) AS count, coalesce(max(id), 0) AS last FROM orders",
                ),
                &[],
            )
            .await
            .expect("counted");
        let rows = rows.expect("a count");
        (rows.count, rows.last)
    }

    async fn assert_bounded_and_complete(&self, largest: u64, bound: u64) {
        let mb = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        eprintln!(
            "after {CREATES} creates: largest WAL {:.1} MiB (bound {:.1} MiB), WAL now {:.1} MiB, main file {:.1} MiB",
            mb(largest),
            mb(bound),
            mb(self.wal_size()),
            mb(file_size(&self.db_path)),
        );
        assert!(
            largest <= bound,
            "the WAL reached {largest} bytes during the creates; its bound is {bound}"
        );
        let idle = self.wal_size_when_idle().await;
        assert_eq!(
            idle, WAL_BOUND_IDLE,
            "the WAL after the service was idle, in bytes"
        );
        assert_eq!(self.rows().await, (CREATES, CREATES), "no order lost");
        assert_eq!(
            self.rows_in_main_file().await,
            CREATES,
            "every order is in the main database file"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_while_orders_are_created() {
    let fixture = Fixture::new().await;
    let largest = fixture.create_orders().await;
    fixture
        .assert_bounded_and_complete(largest, WAL_BOUND_SEQUENTIAL)
        .await;
    fixture.db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_while_orders_are_created_and_read() {
    const READERS: usize = 4;
    /// A bound on each reader's loop, whatever happens to the creates.
    const MAX_READS_PER_READER: u64 = 10_000_000;
    let fixture = Fixture::new().await;
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..READERS as i64)
        .map(|r| {
            let (store, done, reads) = (fixture.store.clone(), done.clone(), reads.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !done.load(Ordering::Relaxed) && n < MAX_READS_PER_READER {
                    // The last order created so far, or thereabouts.
                    let id = 1 + (n as i64 * 7919 + r) % 1000;
                    store.get(id).await.expect("a read never fails");
                    n += 1;
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let largest = fixture.create_orders().await;
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.expect("a reader finishes without panicking");
    }
    let reads = reads.load(Ordering::Relaxed);
    eprintln!("{reads} reads ran during the creates");
    assert!(
        reads >= READERS as u64,
        "the readers ran during the creates"
    );
    fixture
        .assert_bounded_and_complete(largest, WAL_BOUND_WITH_READERS)
        .await;
    fixture.db.close().await;
}

/// How many orders there are, and the last id.
struct Rows {
    count: i64,
    last: i64,
}

impl FromRow for Rows {
    fn from_row(row: &Row<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            count: row.get("count")?,
            last: row.get("last")?,
        })
    }
}
