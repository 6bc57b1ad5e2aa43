//! SQLite, through rusqlite, on the thread of the request that runs the
//! statement.
//!
//! Why not sqlx's SQLite driver: it runs each connection on a thread of its
//! own and hands every statement to it and the answer back over channels, so
//! each statement costs two thread switches (six with its pool's pings).
//! SQLite itself runs in the process, and a statement of this API (a lookup
//! or a write of one row, from pages in memory) takes a few microseconds:
//! far less than those switches, which `make profile` showed to be the
//! largest cost of a `GET /client/{id}` (see docs/src/performance/profile.md).
//! So the statement runs where the request is, with rusqlite's cache of
//! prepared statements, and no thread is woken for it.
//!
//! What could make a statement wait is the write lock, and that wait is
//! kept off the threads:
//!
//! - **writes take turns in the process, asynchronously**: a write (and a
//!   transaction, from `BEGIN IMMEDIATE` to its end) first waits for its
//!   turn on a `tokio::sync::Mutex`, as any request waits for I/O, and only
//!   then touches the file; so no write of this process ever waits for
//!   another's lock on a thread. Reads never wait for writes (write-ahead
//!   log mode).
//! - **another process's write** (several instances on one file, as
//!   `REPLICAS=2 make run` does) can still hold the lock. SQLite's busy
//!   handler would wait for it on the thread, so there is none: a statement
//!   that finds the lock taken fails at once, before doing anything, and is
//!   run again after a pause that the request waits out as it waits for
//!   I/O (1 ms, doubling to 20 ms), for at most `BUSY_TIMEOUT`; then it
//!   fails as a busy database does (503). A service whose instances write
//!   a lot belongs on PostgreSQL.
//!
//! A statement that never waits also never yields: each one counts against
//! the task's share of the runtime ([`fair_share`]), so that a task running
//! statements in a loop cannot keep the other tasks of its thread waiting.
//!
//! Connections are opened when needed and kept for reuse (at most
//! [`MAX_IDLE`] idle): as a statement never waits while it holds one, no
//! more are open at once than there are runtime threads, plus the one
//! transaction whose turn it is.

use std::{
    borrow::Cow,
    fmt,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use rusqlite::{Connection, OpenFlags, types::Null};
use sqlx::error::{DatabaseError, ErrorKind};
use tokio::sync::{Mutex as TurnLock, OwnedMutexGuard};

use super::{
    query::{FromRow, Param, Query, Row, sqlite_time},
    wal,
};

/// How long a statement waits for another process's write lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The most connections kept open while idle.
pub const MAX_IDLE: usize = 8;
/// rusqlite's cache of prepared statements, per connection (its default
/// is 16; the services use some 20 distinct statements).
const STATEMENT_CACHE: usize = 64;

/// The connections to one SQLite file.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Open connections, idle or in use.
    open: AtomicUsize,
    /// The turn of the writes of this process (see the module's comment).
    writes: Arc<TurnLock<()>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("sqlite::Pool")
            .field("path", &self.inner.path)
            .field("open", &self.inner.open.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A connection lent by the [`Pool`], given back when dropped.
struct Lent<'p> {
    pool: &'p Pool,
    conn: Option<Connection>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn);
        }
    }
}

impl Pool {
    /// Connections to the file at `path` (created when missing), opened
    /// when first needed.
    pub fn new(path: &Path) -> Self {
        Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
                open: AtomicUsize::new(0),
                writes: Arc::new(TurnLock::new(())),
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The turn of this process's writes: the checkpointer takes it too.
    pub fn writes(&self) -> Arc<TurnLock<()>> {
        self.inner.writes.clone()
    }

    /// Open connections, and how many of them are idle.
    pub fn stats(&self) -> (usize, usize) {
        let idle = self.inner.idle.lock().map_or(0, |idle| idle.len());
        (self.inner.open.load(Ordering::Relaxed), idle)
    }

    fn lend(&self) -> Result<Lent<'_>, sqlx::Error> {
        let idle = self.inner.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = open(&self.inner.path)?;
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

    /// Runs `query` and reads every row it returns. A write waits for its
    /// turn first.
    pub async fn fetch_all<T: FromRow>(&self, query: &Query) -> Result<Vec<T>, sqlx::Error> {
        fair_share().await;
        let _turn = self.turn_for(query).await?;
        retry_busy(|| fetch_all(self.lend()?.conn()?, query)).await
    }

    /// Runs `query` and reads its first row, if any. (A write that returns
    /// rows is read with [`fetch_all`](Self::fetch_all), to its end.)
    pub async fn fetch_optional<T: FromRow>(
        &self,
        query: &Query,
    ) -> Result<Option<T>, sqlx::Error> {
        fair_share().await;
        let _turn = self.turn_for(query).await?;
        retry_busy(|| fetch_optional(self.lend()?.conn()?, query)).await
    }

    /// Runs `query`; returns how many rows it changed.
    pub async fn execute(&self, query: &Query) -> Result<u64, sqlx::Error> {
        fair_share().await;
        let _turn = self.turn_for(query).await?;
        retry_busy(|| execute(self.lend()?.conn()?, query)).await
    }

    /// Runs the `INSERT` `query`; returns the new row's id, or `None`
    /// when it inserted no row. See [`Exec::insert`](super::Exec::insert).
    pub async fn insert(&self, query: &Query) -> Result<Option<i64>, sqlx::Error> {
        fair_share().await;
        let _turn = self.turn_for(query).await?;
        retry_busy(|| insert(self.lend()?.conn()?, query)).await
    }

    async fn turn_for(
        &self,
        query: &Query,
    ) -> Result<Option<tokio::sync::MutexGuard<'_, ()>>, sqlx::Error> {
        if query.is_read() {
            return Ok(None);
        }
        wait_for_turn(self.inner.writes.lock()).await.map(Some)
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

impl Lent<'_> {
    /// The connection (there until the loan ends).
    fn conn(&self) -> Result<&Connection, sqlx::Error> {
        self.conn.as_ref().ok_or(sqlx::Error::PoolClosed)
    }
}

/// A transaction: `BEGIN IMMEDIATE` once it is this process's turn to
/// write, which it keeps until it ends. Dropped without
/// [`commit`](Self::commit), it rolls back (at once: SQLite runs here).
pub struct Transaction {
    pool: Pool,
    conn: Option<Connection>,
    _turn: OwnedMutexGuard<()>,
}

impl Transaction {
    pub async fn begin(pool: &Pool) -> Result<Self, sqlx::Error> {
        let turn = wait_for_turn(pool.inner.writes.clone().lock_owned()).await?;
        let conn = retry_busy(|| {
            let mut lent = pool.lend()?;
            lent.conn()?
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(error)?;
            Ok(lent.conn.take())
        })
        .await?;
        Ok(Self {
            pool: pool.clone(),
            conn,
            _turn: turn,
        })
    }

    fn conn(&self) -> Result<&Connection, sqlx::Error> {
        self.conn.as_ref().ok_or(sqlx::Error::PoolClosed)
    }

    pub fn fetch_all<T: FromRow>(&self, query: &Query) -> Result<Vec<T>, sqlx::Error> {
        fetch_all(self.conn()?, query)
    }

    pub fn fetch_optional<T: FromRow>(&self, query: &Query) -> Result<Option<T>, sqlx::Error> {
        fetch_optional(self.conn()?, query)
    }

    pub fn execute(&self, query: &Query) -> Result<u64, sqlx::Error> {
        execute(self.conn()?, query)
    }

    pub fn insert(&self, query: &Query) -> Result<Option<i64>, sqlx::Error> {
        insert(self.conn()?, query)
    }

    pub fn commit(mut self) -> Result<(), sqlx::Error> {
        self.conn()?.execute_batch("COMMIT").map_err(error)?;
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn);
        }
        Ok(())
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if !conn.is_autocommit()
            && let Err(err) = conn.execute_batch("ROLLBACK")
        {
            tracing::warn!(error = %err, "a transaction could not roll back");
        }
        self.pool.give_back(conn);
    }
}

/// Waits for this process's turn to write, as long as SQLite would wait
/// for its lock ([`BUSY_TIMEOUT`]); past that, the statement fails as it
/// would on a busy database (a 503 for the request), never hangs.
async fn wait_for_turn<G>(turn: impl Future<Output = G>) -> Result<G, sqlx::Error> {
    tokio::time::timeout(BUSY_TIMEOUT, turn)
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)
}

/// A statement counts against the task's share of the runtime, as a read
/// from a socket does: a statement that runs here never waits, so a task
/// that runs statements in a loop would otherwise never let another task
/// run on its thread (tokio then makes it yield once its share is spent).
pub(super) async fn fair_share() {
    tokio::task::consume_budget().await;
}

/// Runs `attempt` (a statement that takes its own connection) again while
/// it fails because another process holds the file's lock, pausing between
/// attempts as a request waits for I/O, never on the thread (1 ms, doubling
/// to 20 ms), for at most [`BUSY_TIMEOUT`]; then its error (a 503) stands.
/// A statement that finds the lock taken fails before it has done anything,
/// so it is safe to run again.
async fn retry_busy<T>(
    mut attempt: impl FnMut() -> Result<T, sqlx::Error>,
) -> Result<T, sqlx::Error> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match attempt() {
            Err(sqlx::Error::Database(err))
                if err
                    .try_downcast_ref::<SqliteError>()
                    .is_some_and(SqliteError::is_busy)
                    && started.elapsed() + pause < BUSY_TIMEOUT =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            result => return result,
        }
    }
}

/// A new connection to `path`, set up as every connection of a service is
/// (write-ahead log, foreign keys, the log's bounds: see [`wal`]).
fn open(path: &Path) -> Result<Connection, sqlx::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(error)?;
    // No busy handler: it would wait on the request's thread. A statement
    // that finds the file locked fails at once, and `retry_busy` waits.
    conn.busy_timeout(Duration::ZERO).map_err(error)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA wal_autocheckpoint = {}; PRAGMA journal_size_limit = {};",
        wal::AUTOCHECKPOINT_PAGES,
        wal::JOURNAL_SIZE_LIMIT
    ))
    .map_err(error)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn prepare<'c>(
    conn: &'c Connection,
    query: &Query,
) -> Result<rusqlite::CachedStatement<'c>, sqlx::Error> {
    let mut statement = conn.prepare_cached(&query.sqlite_sql()).map_err(error)?;
    for (i, param) in query.params.iter().enumerate() {
        let index = i + 1;
        let bound = match param {
            Param::Int(value) => statement.raw_bind_parameter(index, value),
            Param::NullInt => statement.raw_bind_parameter(index, Null),
            Param::Text(value) => statement.raw_bind_parameter(index, value.as_str()),
            Param::Date(value) => {
                statement.raw_bind_parameter(index, value.format("%F").to_string())
            }
            Param::Time(value) => statement.raw_bind_parameter(index, sqlite_time(value)),
        };
        bound.map_err(error)?;
    }
    Ok(statement)
}

fn fetch_all<T: FromRow>(conn: &Connection, query: &Query) -> Result<Vec<T>, sqlx::Error> {
    let mut statement = prepare(conn, query)?;
    let mut rows = statement.raw_query();
    let mut read = Vec::new();
    while let Some(row) = rows.next().map_err(error)? {
        read.push(T::from_row(&Row::Sqlite(row))?);
    }
    Ok(read)
}

fn fetch_optional<T: FromRow>(conn: &Connection, query: &Query) -> Result<Option<T>, sqlx::Error> {
    let mut statement = prepare(conn, query)?;
    let mut rows = statement.raw_query();
    match rows.next().map_err(error)? {
        Some(row) => Ok(Some(T::from_row(&Row::Sqlite(row))?)),
        None => Ok(None),
    }
}

fn execute(conn: &Connection, query: &Query) -> Result<u64, sqlx::Error> {
    let mut statement = prepare(conn, query)?;
    let changed = statement.raw_execute().map_err(error)?;
    Ok(u64::try_from(changed).unwrap_or(u64::MAX))
}

/// The id of the row that the `INSERT` `query` inserted (SQLite's rowid:
/// the `INTEGER PRIMARY KEY`), or `None` when it inserted none. Read on the
/// connection that ran it, before any other statement can run on it.
fn insert(conn: &Connection, query: &Query) -> Result<Option<i64>, sqlx::Error> {
    let inserted = execute(conn, query)?;
    Ok((inserted > 0).then(|| conn.last_insert_rowid()))
}

/// An error of SQLite's, as the sqlx error that the rest of the code
/// (and sqlx's PostgreSQL driver) speaks: a database error with SQLite's
/// extended result code, or a decoding error.
pub fn error(err: rusqlite::Error) -> sqlx::Error {
    match err {
        rusqlite::Error::SqliteFailure(failure, message) => {
            sqlx::Error::Database(Box::new(SqliteError {
                code: failure.extended_code,
                message: message.unwrap_or_else(|| failure.to_string()),
            }))
        }
        other => sqlx::Error::Decode(Box::new(other)),
    }
}

/// A failure reported by SQLite.
#[derive(Debug)]
pub struct SqliteError {
    /// The extended result code (e.g. 2067, a UNIQUE constraint).
    code: i32,
    message: String,
}

impl SqliteError {
    /// SQLITE_BUSY (5) and its extended codes: the lock was held for longer
    /// than the busy timeout.
    pub fn is_busy(&self) -> bool {
        self.code & 0xff == rusqlite::ffi::SQLITE_BUSY
    }

    /// SQLITE_FULL (13): "database or disk is full".
    pub fn is_full(&self) -> bool {
        self.code & 0xff == rusqlite::ffi::SQLITE_FULL
    }
}

impl fmt::Display for SqliteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for SqliteError {}

impl DatabaseError for SqliteError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        use rusqlite::ffi;
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> (tempfile::TempDir, Pool) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let pool = Pool::new(&dir.path().join("t.db"));
        (dir, pool)
    }

    #[tokio::test]
    async fn statements_run_and_constraints_are_reported_as_sqlx_reports_them() {
        let (_dir, pool) = pool();
        pool.execute(&Query::new(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)",
        ))
        .await
        .unwrap();
        let insert = |name: &str| Query::new("INSERT INTO t (name) VALUES ($1)").bind(name);
        assert_eq!(pool.execute(&insert("a")).await.unwrap(), 1);
        let err = pool.execute(&insert("a")).await.unwrap_err();
        let sqlx::Error::Database(db) = &err else {
            panic!("{err:?}")
        };
        assert!(db.is_unique_violation(), "{err}");
        assert!(db.message().contains("t.name"), "{err}");
        let count: Option<i64> = pool
            .fetch_optional(&Query::new("SELECT count(*) FROM t WHERE name = $1").bind("a"))
            .await
            .unwrap();
        assert_eq!(count, Some(1));
    }

    /// Two pools on one file are two processes: their writes do not take
    /// turns in memory, only at SQLite's lock. The one that finds it taken
    /// waits without holding the thread: on this single-threaded runtime,
    /// the transaction that holds the lock still gets to commit.
    #[tokio::test(flavor = "current_thread")]
    async fn a_write_waits_for_another_processs_lock_without_holding_the_thread() {
        let (dir, first) = pool();
        let second = Pool::new(&dir.path().join("t.db"));
        first
            .execute(&Query::new("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
            .await
            .unwrap();
        let tx = Transaction::begin(&first).await.unwrap();
        tx.execute(&Query::new("INSERT INTO t (id) VALUES (1)"))
            .unwrap();
        let waiting = tokio::spawn(async move {
            second
                .execute(&Query::new("INSERT INTO t (id) VALUES (2)"))
                .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "the second write went through a held lock"
        );
        tx.commit().unwrap();
        assert_eq!(waiting.await.unwrap().unwrap(), 1);
        let count: Vec<i64> = first
            .fetch_all(&Query::new("SELECT count(*) FROM t"))
            .await
            .unwrap();
        assert_eq!(count, vec![2]);
    }

    #[tokio::test]
    async fn a_dropped_transaction_rolls_back_and_frees_the_turn() {
        let (_dir, pool) = pool();
        pool.execute(&Query::new("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
            .await
            .unwrap();
        let tx = Transaction::begin(&pool).await.unwrap();
        tx.execute(&Query::new("INSERT INTO t (id) VALUES (1)"))
            .unwrap();
        drop(tx);
        let count: Vec<i64> = pool
            .fetch_all(&Query::new("SELECT count(*) FROM t"))
            .await
            .unwrap();
        assert_eq!(count, vec![0]);
        // The turn was given back: a write goes through.
        assert_eq!(
            pool.execute(&Query::new("INSERT INTO t (id) VALUES (2)"))
                .await
                .unwrap(),
            1
        );
        let tx = Transaction::begin(&pool).await.unwrap();
        tx.execute(&Query::new("INSERT INTO t (id) VALUES (3)"))
            .unwrap();
        tx.commit().unwrap();
        let count: Vec<i64> = pool
            .fetch_all(&Query::new("SELECT count(*) FROM t"))
            .await
            .unwrap();
        assert_eq!(count, vec![2]);
    }
}
