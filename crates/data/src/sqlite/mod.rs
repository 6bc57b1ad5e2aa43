//! SQLite, through rusqlite alone (requests, migrations, checkpoints), on
//! the thread of the request that runs the statement.
//!
//! Why not a driver that hands statements to a thread of its own (sqlx's
//! SQLite driver does): each statement would cost two thread switches (six
//! with its pool's pings), while SQLite itself runs in the process, and a
//! statement of this API (a lookup or a write of one row, from pages in
//! memory) takes a few microseconds. `make profile` showed those switches
//! to be the largest cost of a `GET /client/{id}` (see the guide's
//! "Profiles"). So the statement runs where the request is, with
//! rusqlite's cache of prepared statements, and no thread is woken for it.
//!
//! What could make a statement wait is the write lock, and that wait is
//! kept off the threads:
//!
//! - **writes take turns in the process, asynchronously**: a write (and a
//!   transaction, from `BEGIN IMMEDIATE` to its end) first waits for its
//!   turn ([`WriteTurn`]) as any request waits for I/O, and only then
//!   touches the file; so no write of this process ever waits for
//!   another's lock on a thread. Reads never wait for writes (write-ahead
//!   log mode). A transaction is a synchronous closure: nothing
//!   can be awaited while it holds the turn, so no call to another service
//!   can stall every writer.
//! - **another process's write** (several instances on one file, as
//!   `REPLICAS=2 make run` does) can still hold the lock. SQLite's busy
//!   handler would wait for it on the thread, so there is none: a statement
//!   that finds the lock taken fails at once, before doing anything, and is
//!   run again after a pause that the request waits out as it waits for
//!   I/O (1 ms, doubling to 20 ms), for at most [`BUSY_TIMEOUT`]; then it
//!   fails as a busy database does (503). A service whose instances write
//!   a lot belongs on PostgreSQL.
//!
//! A statement that never waits also never yields: each one counts against
//! the task's share of the runtime (`tokio::task::consume_budget`), so that
//! a task running statements in a loop cannot keep the other tasks of its
//! thread waiting.
//!
//! Connections are opened when needed and kept for reuse (at most
//! [`MAX_IDLE`] idle): as a statement never waits while it holds one, no
//! more are open at once than there are runtime threads, plus the one
//! transaction whose turn it is.

pub(crate) mod migrate;
pub mod wal;

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use rusqlite::{CachedStatement, Connection, OpenFlags, ffi};

use crate::{
    StoreError,
    statement::{FromRow, Insert, Param, Row, Statement},
};

/// How long a statement waits for another process's write lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The most connections kept open while idle.
pub const MAX_IDLE: usize = 8;
/// rusqlite's cache of prepared statements, per connection (its default
/// is 16; the services use some 20 distinct statements).
const STATEMENT_CACHE: usize = 64;

/// The turn of this process's writes to one file: an async mutex, held by
/// the write (or transaction) whose turn it is, and by the checkpointer.
pub type WriteTurn = Arc<tokio::sync::Mutex<()>>;

/// The connections to one SQLite file.
#[derive(Clone)]
pub struct SqlitePool {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Open connections, idle or in use.
    open: AtomicUsize,
    turn: WriteTurn,
}

impl fmt::Debug for SqlitePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlitePool")
            .field("path", &self.inner.path)
            .field("open", &self.inner.open.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A connection lent by the [`SqlitePool`], given back when dropped.
struct Lent<'p> {
    pool: &'p SqlitePool,
    conn: Option<Connection>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn);
        }
    }
}

impl Lent<'_> {
    fn conn(&self) -> Result<&Connection, Failure> {
        self.conn
            .as_ref()
            .ok_or_else(|| Failure::Other(StoreError::failed("a connection lent twice")))
    }
}

impl SqlitePool {
    /// Connections to the file at `path` (created when missing), opened
    /// when first needed.
    pub fn new(path: &Path) -> Self {
        Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
                open: AtomicUsize::new(0),
                turn: Arc::new(tokio::sync::Mutex::new(())),
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The turn of this process's writes: the checkpointer takes it too.
    pub fn write_turn(&self) -> WriteTurn {
        self.inner.turn.clone()
    }

    /// Open connections, and how many of them are idle.
    pub fn stats(&self) -> (usize, usize) {
        let idle = self.inner.idle.lock().map_or(0, |idle| idle.len());
        (self.inner.open.load(Ordering::Relaxed), idle)
    }

    fn lend(&self) -> Result<Lent<'_>, Failure> {
        let idle = self.inner.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => {
                // Opening sets the connection's pragmas, which may find
                // another process's lock: busy, retried as a statement is.
                let conn = open(&self.inner.path).map_err(failure)?;
                self.inner.open.fetch_add(1, Ordering::Relaxed);
                conn
            }
        };
        Ok(Lent {
            pool: self,
            conn: Some(conn),
        })
    }

    fn give_back(&self, conn: Connection) {
        // A connection left inside a transaction (it cannot happen through
        // this module's API) is not lent again.
        if conn.is_autocommit()
            && let Ok(mut idle) = self.inner.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
            return;
        }
        self.inner.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Runs the read `statement` and reads every row.
    pub async fn fetch_all<T: FromRow>(
        &self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<Vec<T>, StoreError> {
        tokio::task::consume_budget().await;
        retry_busy(|| fetch_all(self.lend()?.conn()?, statement, params)).await
    }

    /// Runs the read `statement` and reads its first row, if any.
    pub async fn fetch_optional<T: FromRow>(
        &self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<Option<T>, StoreError> {
        tokio::task::consume_budget().await;
        retry_busy(|| fetch_optional(self.lend()?.conn()?, statement, params)).await
    }

    /// Runs the write `statement` in its turn; returns how many rows it
    /// changed.
    pub async fn execute(
        &self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<u64, StoreError> {
        tokio::task::consume_budget().await;
        let _turn = self.wait_for_turn().await?;
        retry_busy(|| execute(self.lend()?.conn()?, statement, params)).await
    }

    /// Runs the write `statement` (with a `RETURNING` clause) in its turn
    /// and reads its rows to the end (see [`wal`]: SQLite checkpoints only
    /// from a statement that finished).
    pub async fn write_returning<T: FromRow>(
        &self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<Vec<T>, StoreError> {
        tokio::task::consume_budget().await;
        let _turn = self.wait_for_turn().await?;
        retry_busy(|| fetch_all(self.lend()?.conn()?, statement, params)).await
    }

    /// Runs `insert` in its turn; the new row's id, or `None` when it
    /// inserted no row (an `INSERT … SELECT … WHERE` whose condition did
    /// not hold).
    pub async fn insert(
        &self,
        insert: &Insert,
        params: &[&dyn Param],
    ) -> Result<Option<i64>, StoreError> {
        tokio::task::consume_budget().await;
        let _turn = self.wait_for_turn().await?;
        retry_busy(|| run_insert(self.lend()?.conn()?, insert, params)).await
    }

    /// Runs `work` as one transaction (`BEGIN IMMEDIATE` … `COMMIT`) in
    /// this process's turn to write; it rolls back when `work` fails.
    pub async fn transaction<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let _turn = self.wait_for_turn().await?;
        let lent = retry_busy(|| {
            let lent = self.lend()?;
            lent.conn()?
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(failure)?;
            Ok(lent)
        })
        .await?;
        let conn = lent.conn().map_err(StoreError::from)?;
        let outcome = {
            let _span =
                crate::statement::statement_span(crate::statement::SQLITE, "TRANSACTION").entered();
            work(conn)
        };
        let ended = match &outcome {
            Ok(_) => conn.execute_batch("COMMIT"),
            Err(_) => conn.execute_batch("ROLLBACK"),
        };
        if let Err(err) = ended {
            // Not committed: make sure nothing is left half-open.
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            return Err(error(err).into());
        }
        outcome
    }

    async fn wait_for_turn(&self) -> Result<tokio::sync::MutexGuard<'_, ()>, StoreError> {
        wait_for_turn(self.inner.turn.lock()).await
    }

    /// Closes the idle connections (the last connection to the file to
    /// close checkpoints the log and removes it). The pool opens new ones
    /// when needed: after a change of the schema (the migrations), a
    /// connection that read the old one must not be lent, as SQLite
    /// notices a changed schema only when it can read the file at that
    /// moment, and otherwise reports "no such table" for a table that is
    /// there.
    pub fn close(&self) {
        let idle = self
            .inner
            .idle
            .lock()
            .map(|mut idle| std::mem::take(&mut *idle))
            .unwrap_or_default();
        for conn in idle {
            self.inner.open.fetch_sub(1, Ordering::Relaxed);
            if let Err((_, err)) = conn.close() {
                tracing::debug!(error = %err, "a connection did not close cleanly");
            }
        }
    }
}

/// Runs the statements of a transaction, on its connection (kit-data's
/// `Tx`).
pub(crate) struct TxConn;

impl TxConn {
    pub(crate) fn fetch_all<T: FromRow>(
        conn: &Connection,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<Vec<T>, StoreError> {
        fetch_all(conn, statement, params).map_err(StoreError::from)
    }

    pub(crate) fn fetch_optional<T: FromRow>(
        conn: &Connection,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<Option<T>, StoreError> {
        fetch_optional(conn, statement, params).map_err(StoreError::from)
    }

    pub(crate) fn execute(
        conn: &Connection,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<u64, StoreError> {
        execute(conn, statement, params).map_err(StoreError::from)
    }

    pub(crate) fn insert(
        conn: &Connection,
        insert: &Insert,
        params: &[&dyn Param],
    ) -> Result<Option<i64>, StoreError> {
        run_insert(conn, insert, params).map_err(StoreError::from)
    }
}

/// Waits for this process's turn to write, as long as SQLite would wait
/// for its lock ([`BUSY_TIMEOUT`]); past that, the statement fails as it
/// would on a busy database (a 503 for the request), never hangs.
async fn wait_for_turn<G>(turn: impl Future<Output = G>) -> Result<G, StoreError> {
    tokio::time::timeout(BUSY_TIMEOUT, turn)
        .await
        .map_err(|_| StoreError::Unavailable("no turn to write within the busy timeout".into()))
}

/// Runs `attempt` (a statement that takes its own connection) again while
/// it fails because another process holds the file's lock, pausing between
/// attempts as a request waits for I/O, never on the thread (1 ms, doubling
/// to 20 ms), for at most [`BUSY_TIMEOUT`]; then its error (a 503) stands.
/// A statement that finds the lock taken fails before it has done anything,
/// so it is safe to run again.
async fn retry_busy<T>(mut attempt: impl FnMut() -> Result<T, Failure>) -> Result<T, StoreError> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match attempt() {
            Err(Failure::Busy(_)) if started.elapsed() + pause < BUSY_TIMEOUT => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            result => return result.map_err(StoreError::from),
        }
    }
}

/// A failed statement, with SQLite's busy told apart (it is retried).
#[derive(Debug)]
enum Failure {
    Busy(rusqlite::Error),
    Other(StoreError),
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        Self::Other(err)
    }
}

impl From<Failure> for StoreError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Busy(err) => StoreError::Unavailable(err.into()),
            Failure::Other(err) => err,
        }
    }
}

/// A new connection to `path`, set up as every connection of a service is
/// (write-ahead log, foreign keys, the log's bounds: see [`wal`]).
pub(crate) fn open(path: &Path) -> Result<Connection, rusqlite::Error> {
    // No busy handler: it would wait on the request's thread. A statement
    // that finds the file locked fails at once, and `retry_busy` waits.
    open_waiting(path, Duration::ZERO)
}

/// A connection whose statements, the pragmas set here among them, wait
/// up to `busy` for another process's lock: for work off the request
/// path (the migrations at start-up, on a blocking thread).
pub(crate) fn open_waiting(path: &Path, busy: Duration) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA wal_autocheckpoint = {}; PRAGMA journal_size_limit = {};",
        wal::AUTOCHECKPOINT_PAGES,
        wal::JOURNAL_SIZE_LIMIT
    ))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// The names of the placeholders `$1` to `$32` (the rest are formatted
/// when bound), bound by name: SQLite numbers `$NNN` parameters in the
/// order they first appear in the text, which need not be the order of
/// their numbers.
const NAMES: [&str; 32] = [
    "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15",
    "$16", "$17", "$18", "$19", "$20", "$21", "$22", "$23", "$24", "$25", "$26", "$27", "$28",
    "$29", "$30", "$31", "$32",
];

fn prepare<'c>(
    conn: &'c Connection,
    sql: &str,
    params: &[&dyn Param],
) -> Result<CachedStatement<'c>, Failure> {
    let mut prepared = conn.prepare_cached(sql).map_err(failure)?;
    if prepared.parameter_count() != params.len() {
        return Err(Failure::Other(StoreError::failed(format!(
            "the statement has {} parameters, {} were given: {sql}",
            prepared.parameter_count(),
            params.len()
        ))));
    }
    for (i, param) in params.iter().enumerate() {
        let index = match NAMES.get(i) {
            Some(name) => prepared.parameter_index(name),
            // Past `$32` (a long `?ids=` batch names up to 1000), formatted.
            None => prepared.parameter_index(&format!("${}", i + 1)),
        }
        .map_err(failure)?;
        let Some(index) = index else {
            return Err(Failure::Other(StoreError::failed(format!(
                "no placeholder ${} in the statement: {sql}",
                i + 1
            ))));
        };
        let value: &dyn rusqlite::ToSql = *param;
        prepared.raw_bind_parameter(index, value).map_err(failure)?;
    }
    Ok(prepared)
}

fn fetch_all<T: FromRow>(
    conn: &Connection,
    statement: &Statement,
    params: &[&dyn Param],
) -> Result<Vec<T>, Failure> {
    let _span =
        crate::statement::statement_span(crate::statement::SQLITE, statement.summary).entered();
    let mut prepared = prepare(conn, &statement.sql, params)?;
    let mut rows = prepared.raw_query();
    let mut read = Vec::new();
    while let Some(row) = rows.next().map_err(failure)? {
        read.push(T::from_row(&Row::Sqlite(row))?);
    }
    Ok(read)
}

fn fetch_optional<T: FromRow>(
    conn: &Connection,
    statement: &Statement,
    params: &[&dyn Param],
) -> Result<Option<T>, Failure> {
    let _span =
        crate::statement::statement_span(crate::statement::SQLITE, statement.summary).entered();
    let mut prepared = prepare(conn, &statement.sql, params)?;
    let mut rows = prepared.raw_query();
    match rows.next().map_err(failure)? {
        Some(row) => Ok(Some(T::from_row(&Row::Sqlite(row))?)),
        None => Ok(None),
    }
}

fn execute(
    conn: &Connection,
    statement: &Statement,
    params: &[&dyn Param],
) -> Result<u64, Failure> {
    let _span =
        crate::statement::statement_span(crate::statement::SQLITE, statement.summary).entered();
    let changed = prepare(conn, &statement.sql, params)?
        .raw_execute()
        .map_err(failure)?;
    Ok(u64::try_from(changed).unwrap_or(u64::MAX))
}

/// The id of the row that `insert` inserted (SQLite's rowid: the `INTEGER
/// PRIMARY KEY`), or `None` when it inserted none. Read on the connection
/// that ran it, before any other statement can run on it.
fn run_insert(
    conn: &Connection,
    insert: &Insert,
    params: &[&dyn Param],
) -> Result<Option<i64>, Failure> {
    let _span =
        crate::statement::statement_span(crate::statement::SQLITE, insert.summary).entered();
    let inserted = prepare(conn, insert.sqlite, params)?
        .raw_execute()
        .map_err(failure)?;
    Ok((inserted > 0).then(|| conn.last_insert_rowid()))
}

fn failure(err: rusqlite::Error) -> Failure {
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy) => Failure::Busy(err),
        _ => Failure::Other(error(err)),
    }
}

/// An error of SQLite's as the store's: a unique constraint is a
/// [`StoreError::Duplicate`] (SQLite names the columns, not the
/// constraint: `clients.card_number`), a full disk
/// [`StoreError::StorageFull`], a busy or locked file
/// [`StoreError::Unavailable`], anything else [`StoreError::Failed`].
pub(crate) fn error(err: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, message) = &err {
        match failure.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                return StoreError::Duplicate {
                    constraint: message.clone().unwrap_or_default(),
                };
            }
            _ => {}
        }
        match failure.code {
            rusqlite::ErrorCode::DiskFull => return StoreError::StorageFull(err.into()),
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => {
                return StoreError::Unavailable(err.into());
            }
            _ => {}
        }
    }
    StoreError::Failed(err.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> (tempfile::TempDir, SqlitePool) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let pool = SqlitePool::new(&dir.path().join("t.db"));
        (dir, pool)
    }

    const CREATE: Statement = Statement::new(
        "CREATE t",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)",
    );
    const INSERT_NAME: Statement = Statement::new("INSERT t", "INSERT INTO t (name) VALUES ($1)");
    const INSERT_ID: Statement = Statement::new("INSERT t", "INSERT INTO t (id) VALUES ($1)");
    const COUNT: Statement = Statement::new("SELECT t", "SELECT count(*) FROM t");

    async fn count(pool: &SqlitePool) -> i64 {
        pool.fetch_optional(&COUNT, &[]).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn statements_run_and_a_duplicate_is_reported_with_its_columns() {
        let (_dir, pool) = pool();
        pool.execute(&CREATE, &[]).await.unwrap();
        assert_eq!(pool.execute(&INSERT_NAME, &[&"a"]).await.unwrap(), 1);
        let err = pool.execute(&INSERT_NAME, &[&"a"]).await.unwrap_err();
        assert!(err.is_duplicate_of("t_name_key", "t.name"), "{err:?}");
        let found: Option<i64> = pool
            .fetch_optional(
                &Statement::new("SELECT t", "SELECT count(*) FROM t WHERE name = $1"),
                &[&"a"],
            )
            .await
            .unwrap();
        assert_eq!(found, Some(1));
    }

    /// More placeholders than the named ones of `NAMES` (a batch lookup
    /// of many ids): every one is bound.
    #[tokio::test]
    async fn a_statement_with_a_thousand_placeholders_is_bound_whole() {
        let (_dir, pool) = pool();
        let values: Vec<i64> = (1..=1000).collect();
        let mut lookup = crate::statement::Builder::new("SELECT", "SELECT 1 WHERE 1000 IN (0");
        for value in &values {
            lookup.push(", ").bind(value);
        }
        lookup.push(")");
        let (statement, params) = lookup.build();
        let found: Option<i64> = pool.fetch_optional(&statement, &params).await.unwrap();
        assert_eq!(found, Some(1), "the 1000th value is bound");
    }

    /// `$n` are bound by name: a statement that names `$2` before `$1`
    /// gets each value where its number says.
    #[tokio::test]
    async fn placeholders_are_bound_by_their_numbers_whatever_their_order() {
        let (_dir, pool) = pool();
        let both: Option<(String, i64)> = pool
            .fetch_optional(
                &Statement::new("SELECT", "SELECT $2 || '', $1 + 0"),
                &[&7_i64, &"second"],
            )
            .await
            .map(|row: Option<Pair>| row.map(|p| (p.0, p.1)))
            .unwrap();
        assert_eq!(both, Some(("second".to_owned(), 7)));
        let err = pool
            .fetch_optional::<i64>(&Statement::new("SELECT", "SELECT $1"), &[&1_i64, &2_i64])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("failed"), "{err}");
    }

    struct Pair(String, i64);
    impl FromRow for Pair {
        fn from_row(row: &Row<'_>) -> Result<Self, StoreError> {
            match row {
                Row::Sqlite(row) => Ok(Pair(
                    row.get(0).map_err(|e| crate::bad_column("0", e))?,
                    row.get(1).map_err(|e| crate::bad_column("1", e))?,
                )),
                _ => Err(StoreError::failed("sqlite only")),
            }
        }
    }

    /// Two pools on one file are two processes: their writes do not take
    /// turns in memory, only at SQLite's lock. The one that finds it taken
    /// waits without holding the thread: on this single-threaded runtime,
    /// the transaction that holds the lock still gets to commit.
    #[tokio::test(flavor = "current_thread")]
    async fn a_write_waits_for_another_processs_lock_without_holding_the_thread() {
        let (dir, first) = pool();
        let second = SqlitePool::new(&dir.path().join("t.db"));
        first.execute(&CREATE, &[]).await.unwrap();
        // Another process's transaction, holding the write lock.
        let other = open(&dir.path().join("t.db")).unwrap();
        other
            .execute_batch("BEGIN IMMEDIATE; INSERT INTO t (id) VALUES (1);")
            .unwrap();
        let waiting = tokio::spawn(async move { second.execute(&INSERT_ID, &[&2_i64]).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "the second write went through a held lock"
        );
        other.execute_batch("COMMIT").unwrap();
        assert_eq!(waiting.await.unwrap().unwrap(), 1);
        assert_eq!(count(&first).await, 2);
    }

    #[tokio::test]
    async fn a_failed_transaction_rolls_back_and_frees_the_turn() {
        let (_dir, pool) = pool();
        pool.execute(&CREATE, &[]).await.unwrap();
        let failed: Result<(), StoreError> = pool
            .transaction(|conn| {
                TxConn::execute(conn, &INSERT_ID, &[&1_i64])?;
                Err(StoreError::failed("changed my mind"))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(count(&pool).await, 0);
        // The turn was given back: a write goes through.
        assert_eq!(pool.execute(&INSERT_ID, &[&2_i64]).await.unwrap(), 1);
        let inserted = pool
            .transaction(|conn| {
                TxConn::execute(conn, &INSERT_ID, &[&3_i64])?;
                TxConn::fetch_optional::<i64>(conn, &COUNT, &[])
            })
            .await
            .unwrap();
        assert_eq!(inserted, Some(2), "the transaction sees its own write");
        assert_eq!(count(&pool).await, 2);
    }

    #[tokio::test]
    async fn an_insert_tells_the_new_rows_id_or_none() {
        let (_dir, pool) = pool();
        pool.execute(&CREATE, &[]).await.unwrap();
        let insert = crate::insert!("INSERT t", "INSERT INTO t (name) SELECT $1 WHERE $2 = 1");
        assert_eq!(
            pool.insert(&insert, &[&"a", &1_i64]).await.unwrap(),
            Some(1)
        );
        assert_eq!(
            pool.insert(&insert, &[&"b", &1_i64]).await.unwrap(),
            Some(2)
        );
        assert_eq!(pool.insert(&insert, &[&"c", &0_i64]).await.unwrap(), None);
    }
}
