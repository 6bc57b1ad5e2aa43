//! One database per service: SQLite (embedded, the default) or PostgreSQL,
//! chosen at start-up by the URL.
//!
//! Both backends run the same SQL text ([`Query`]) and read rows with the
//! same code ([`FromRow`]): SQLite through rusqlite, on the request's own
//! thread ([`sqlite`], which says why); PostgreSQL through sqlx, over a
//! pool of its connections ([`pool`], which says why not sqlx's own). DDL
//! differs, so each service keeps one migrations folder per backend (run
//! by sqlx's migrator on both).

pub mod pool;
pub mod query;
pub mod sqlite;
pub mod wal;

use std::{str::FromStr, sync::Arc, time::Duration};

use sqlx::{
    ConnectOptions, Connection,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgConnection},
    sqlite::SqliteConnectOptions,
};

use tracing::Instrument;

pub use self::query::{FromRow, Param, Query, Row, invalid_column};
use crate::{
    http::{conditional, problem::ApiError},
    observability::metrics as names,
};

/// The service's own database: SQLite, with its write-ahead log (kept
/// bounded by a checkpointer, see [`wal`]), or a PostgreSQL pool.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(sqlite::Pool, Arc<wal::Wal>),
    Postgres(pool::Pool<PgConnectOptions>),
}

/// A backend's name, for the spans of statements that have no [`Db`] at hand.
#[derive(Clone, Copy, Debug)]
pub struct System(&'static str);

impl System {
    pub fn system_name(self) -> &'static str {
        self.0
    }
}

impl Db {
    pub const SQLITE: System = System("sqlite");
    pub const POSTGRES: System = System("postgresql");
}

/// How many connections a pool holds, and how many of them are idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// The span of one database query: `db_span!(db, "SELECT", "clients")`, or
/// `db_span!(db, "COMMIT")` for a statement on no table. Its name is `db`;
/// `otel.name` is `SELECT clients` (the operation and the table, never the
/// statement's values), so spans group well in a trace viewer and carry
/// nothing of the data. At info level while traces are exported, at debug
/// level otherwise: without an exporter, the default log level does not
/// pay for them.
#[macro_export]
macro_rules! db_span {
    ($db:expr, $operation:literal $(, $table:literal)?) => {
        if $crate::observability::telemetry::otel_enabled() {
            $crate::__tracing::info_span!(
                "db",
                otel.kind = "client",
                otel.name = concat!($operation $(, " ", $table)?),
                db.system.name = $db.system_name(),
                db.operation.name = $operation,
                $(db.collection.name = $table,)?
            )
        } else {
            $crate::__tracing::debug_span!(
                "db",
                db.system.name = $db.system_name(),
                db.operation.name = $operation,
                $(db.collection.name = $table,)?
            )
        }
    };
}

/// A transaction on the service's database; it rolls back when dropped
/// without [`commit`](Self::commit).
pub enum Tx {
    Sqlite(sqlite::Transaction),
    Postgres(pool::Transaction<PgConnectOptions>),
}

impl Tx {
    pub async fn fetch_all<T: FromRow>(&mut self, query: &Query) -> Result<Vec<T>, sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => {
                sqlite::fair_share().await;
                tx.fetch_all(query)
            }
            Tx::Postgres(tx) => {
                let result = pg_fetch_all(tx.conn()?, query).await;
                tx.settle(result)
            }
        }
    }

    pub async fn fetch_optional<T: FromRow>(
        &mut self,
        query: &Query,
    ) -> Result<Option<T>, sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => {
                sqlite::fair_share().await;
                tx.fetch_optional(query)
            }
            Tx::Postgres(tx) => {
                let result = pg_fetch_optional(tx.conn()?, query).await;
                tx.settle(result)
            }
        }
    }

    pub async fn execute(&mut self, query: &Query) -> Result<u64, sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => {
                sqlite::fair_share().await;
                tx.execute(query)
            }
            Tx::Postgres(tx) => {
                let result = pg_execute(tx.conn()?, query).await;
                tx.settle(result)
            }
        }
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => {
                let _span = db_span!(Db::SQLITE, "COMMIT").entered();
                tx.commit()
            }
            Tx::Postgres(tx) => {
                tx.commit()
                    .instrument(db_span!(Db::POSTGRES, "COMMIT"))
                    .await
            }
        }
    }
}

/// Where a statement runs: on its own (autocommit) or inside a transaction.
pub enum Exec<'a> {
    Pool(&'a Db),
    Tx(&'a mut Tx),
}

impl<'a> Exec<'a> {
    /// Inside `tx` when there is one, else on its own.
    pub fn new(db: &'a Db, tx: Option<&'a mut Tx>) -> Self {
        match tx {
            Some(tx) => Exec::Tx(tx),
            None => Exec::Pool(db),
        }
    }

    pub async fn fetch_all<T: FromRow>(self, query: &Query) -> Result<Vec<T>, sqlx::Error> {
        match self {
            Exec::Pool(db) => db.fetch_all(query).await,
            Exec::Tx(tx) => tx.fetch_all(query).await,
        }
    }

    /// Runs `query`, an `INSERT` of one row into a table keyed by `id`
    /// (with no `RETURNING` clause), and returns the new row's `id`, or
    /// `None` when it inserted nothing (an `INSERT … SELECT … WHERE` whose
    /// condition did not hold). The caller knows every other column of the
    /// row: it has just written them.
    ///
    /// Why not `RETURNING` the whole row: SQLite runs a `RETURNING` clause
    /// through a temporary table, which cost a fifth of an insert's time
    /// (see docs/src/performance/profile.md). So SQLite reports the id of the
    /// row it inserted (`last_insert_rowid`, on the connection that ran
    /// the statement), and PostgreSQL, which has no such thing, returns it
    /// with `RETURNING id`.
    pub async fn insert(self, query: &Query) -> Result<Option<i64>, sqlx::Error> {
        match self {
            Exec::Pool(Db::Sqlite(pool, _)) => pool.insert(query).await,
            Exec::Tx(Tx::Sqlite(tx)) => {
                sqlite::fair_share().await;
                tx.insert(query)
            }
            Exec::Pool(db @ Db::Postgres(_)) => {
                db.fetch_all(&query.returning_id()).await.map(returned)
            }
            Exec::Tx(tx @ Tx::Postgres(_)) => {
                tx.fetch_all(&query.returning_id()).await.map(returned)
            }
        }
    }
}

/// The outcome of a conditional write (`… WHERE id = $1 AND version = $2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written<T> {
    Done(T),
    /// There is no such resource.
    Missing,
    /// The resource is at another version than the one expected.
    Stale,
}

impl<T> Written<T> {
    /// The written value, or the caller's error: 412 when the resource is
    /// at another version, `missing()` when there is no such resource.
    pub fn done(self, missing: impl FnOnce() -> ApiError) -> Result<T, ApiError> {
        match self {
            Written::Done(value) => Ok(value),
            Written::Stale => Err(conditional::changed_since()),
            Written::Missing => Err(missing()),
        }
    }

    /// `Done` when the write wrote; otherwise `Stale` or `Missing`, as
    /// `exists` (a second look at the resource) tells.
    pub async fn of<F>(outcome: Option<T>, exists: F) -> Result<Self, ApiError>
    where
        F: Future<Output = Result<bool, ApiError>>,
    {
        Ok(match outcome {
            Some(value) => Written::Done(value),
            None if exists.await? => Written::Stale,
            None => Written::Missing,
        })
    }
}

/// The row that a write's `RETURNING` clause returned, if any:
/// `db.fetch_all(&update).await.map(db::returned)`.
///
/// A write with `RETURNING` is read with `fetch_all`, never
/// `fetch_optional`: that stops after the first row and resets the
/// statement, so on SQLite it never reaches `SQLITE_DONE`. The write is
/// committed all the same (by the reset), but SQLite runs its automatic
/// checkpoint only from a statement that reached `SQLITE_DONE`: with every
/// write read that way, the write-ahead log was never checkpointed and
/// grew by every create, forever (issue 14).
pub fn returned<T>(rows: Vec<T>) -> Option<T> {
    rows.into_iter().next()
}

/// A service's migrations, one set per backend.
pub struct Migrations {
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL must start with sqlite: or postgres:// (got scheme `{0}`)")]
    UnsupportedScheme(String),
    #[error("DATABASE_URL is not valid")]
    InvalidUrl(#[source] sqlx::Error),
    #[error("could not connect to the database within {0:?}")]
    Unreachable(Duration, #[source] sqlx::Error),
    #[error("cannot take a connection for the migrations")]
    Connect(#[source] sqlx::Error),
    #[error("migrations failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot lock the database file for migrations")]
    Lock(#[source] std::io::Error),
}

/// How long a request waits for a pooled connection before it is answered 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long start-up waits for the database to come up (e.g. in docker compose).
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

impl Db {
    /// Connects (retrying for a while, as a database may still be starting)
    /// and runs the migrations.
    pub async fn connect(url: &str, migrations: &Migrations) -> Result<Self, DbError> {
        let db = Self::pool(url)?;
        let _ = STORAGE.set(match &db {
            Db::Sqlite(pool, _) => format!("SQLite file {}", pool.path().display()),
            Db::Postgres(_) => format!("PostgreSQL {}", crate::config::redact_url(url)),
        });
        let started = tokio::time::Instant::now();
        loop {
            match db.ping().await {
                Ok(()) => break,
                Err(err) if started.elapsed() >= STARTUP_DEADLINE => {
                    return Err(DbError::Unreachable(STARTUP_DEADLINE, err));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "database not reachable yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        match &db {
            Db::Sqlite(pool, wal) => {
                // Several instances may share one SQLite file and start at
                // once; sqlx locks migrations only on PostgreSQL (an advisory
                // lock), so here a lock file next to the database does it.
                let _lock = lock_file(pool.path()).await?;
                let options = sqlite_options(url)?;
                let mut conn = options.connect().await.map_err(DbError::Connect)?;
                migrations.sqlite.run(&mut conn).await?;
                if let Err(err) = conn.close().await {
                    tracing::debug!(error = %err, "the migrations' connection did not close cleanly");
                }
                // The ping's connection read the schema before the migrations.
                pool.close();
                tokio::spawn(wal::checkpointer(options, wal.clone(), pool.writes()));
            }
            Db::Postgres(pool) => {
                let mut conn = pool::get(pool).await.map_err(DbError::Connect)?;
                migrations.postgres.run(&mut **conn).await?;
            }
        }
        Ok(db)
    }

    /// The database at `url`, connected when first used.
    fn pool(url: &str) -> Result<Self, DbError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => {
                let path = sqlite_options(url)?.get_filename().to_owned();
                let wal = Arc::new(wal::Wal::new(&path));
                Ok(Db::Sqlite(sqlite::Pool::new(&path), wal))
            }
            "postgres" | "postgresql" => {
                let options = PgConnectOptions::from_str(url).map_err(DbError::InvalidUrl)?;
                Ok(Db::Postgres(pool::new(options, 16, ACQUIRE_TIMEOUT)))
            }
            other => Err(DbError::UnsupportedScheme(other.to_owned())),
        }
    }

    /// Starts a transaction; it rolls back when dropped without `commit`.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        let span = db_span!(self, "BEGIN");
        Ok(match self {
            Db::Sqlite(pool, _) => {
                Tx::Sqlite(sqlite::Transaction::begin(pool).instrument(span).await?)
            }
            Db::Postgres(pool) => {
                Tx::Postgres(pool::Transaction::begin(pool).instrument(span).await?)
            }
        })
    }

    /// Runs `query` and reads every row it returns.
    pub async fn fetch_all<T: FromRow>(&self, query: &Query) -> Result<Vec<T>, sqlx::Error> {
        match self {
            Db::Sqlite(pool, _) => pool.fetch_all(query).await,
            Db::Postgres(pool) => {
                let mut conn = pool::get(pool).await?;
                let result = pg_fetch_all(&mut conn, query).await;
                pool::settle(&mut conn, result)
            }
        }
    }

    /// Runs `query` and reads its first row, if any. A write that returns
    /// rows is read with [`fetch_all`](Self::fetch_all) (see [`returned`]).
    pub async fn fetch_optional<T: FromRow>(
        &self,
        query: &Query,
    ) -> Result<Option<T>, sqlx::Error> {
        match self {
            Db::Sqlite(pool, _) => pool.fetch_optional(query).await,
            Db::Postgres(pool) => {
                let mut conn = pool::get(pool).await?;
                let result = pg_fetch_optional(&mut conn, query).await;
                pool::settle(&mut conn, result)
            }
        }
    }

    /// Runs `query`; returns how many rows it changed.
    pub async fn execute(&self, query: &Query) -> Result<u64, sqlx::Error> {
        match self {
            Db::Sqlite(pool, _) => pool.execute(query).await,
            Db::Postgres(pool) => {
                let mut conn = pool::get(pool).await?;
                let result = pg_execute(&mut conn, query).await;
                pool::settle(&mut conn, result)
            }
        }
    }

    /// One statement, for readiness.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        // BIGINT on both: PostgreSQL's bare 1 is an INT4, which i64 does not read.
        self.fetch_optional::<i64>(&Query::new("SELECT CAST(1 AS BIGINT)"))
            .await
            .map(drop)
    }

    /// The OpenTelemetry `db.system.name` of the backend.
    pub fn system_name(&self) -> &'static str {
        match self {
            Db::Sqlite(..) => Self::SQLITE.system_name(),
            Db::Postgres(_) => Self::POSTGRES.system_name(),
        }
    }

    /// The pool's connections now, for the metrics. (SQLite: `max` is the
    /// most kept open while idle; see [`sqlite`].)
    pub fn pool_stats(&self) -> PoolStats {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let (size, idle, max) = match self {
            Db::Sqlite(pool, _) => {
                let (open, idle) = pool.stats();
                (open, idle, sqlite::MAX_IDLE.max(open))
            }
            Db::Postgres(pool) => {
                let status = pool.status();
                (status.size, status.available, status.max_size)
            }
        };
        PoolStats {
            size: count(size),
            idle: count(idle).min(count(size)),
            max: count(max),
        }
    }

    /// Sets the pool's gauges, and on SQLite the write-ahead log's, to
    /// their state now (at each scrape).
    pub fn record_metrics(&self) {
        let pool = self.pool_stats();
        metrics::gauge!(names::DB_POOL, "state" => "in_use").set(f64::from(pool.size - pool.idle));
        metrics::gauge!(names::DB_POOL, "state" => "idle").set(f64::from(pool.idle));
        metrics::gauge!(names::DB_POOL_MAX).set(f64::from(pool.max));
        let Some(wal) = self.wal_stats() else {
            return;
        };
        // u64 to f64: exact below 2^53 bytes and frames.
        metrics::gauge!(names::DB_WAL_BYTES).set(wal.bytes as f64);
        for (outcome, count) in [
            ("complete", wal.complete),
            ("busy", wal.busy),
            ("error", wal.failed),
        ] {
            metrics::counter!(names::DB_WAL_CHECKPOINTS, "outcome" => outcome).absolute(count);
        }
        if let Some(last) = wal.last {
            metrics::gauge!(names::DB_WAL_LAST_BUSY).set(f64::from(u8::from(last.busy)));
            metrics::gauge!(names::DB_WAL_LAST_FRAMES, "state" => "log")
                .set(last.log_frames as f64);
            metrics::gauge!(names::DB_WAL_LAST_FRAMES, "state" => "checkpointed")
                .set(last.checkpointed_frames as f64);
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(..) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// The write-ahead log's size and checkpoints, for the metrics (SQLite
    /// only).
    pub fn wal_stats(&self) -> Option<wal::WalStats> {
        match self {
            Db::Sqlite(_, wal) => Some(wal.stats()),
            Db::Postgres(_) => None,
        }
    }

    pub async fn close(&self) {
        if let Db::Sqlite(_, wal) = self {
            wal.stop();
        }
        match self {
            Db::Sqlite(pool, _) => pool.close(),
            Db::Postgres(pool) => pool::close(pool).await,
        }
    }
}

/// sqlx's options for the SQLite file at `url`: for the migrations and the
/// checkpointer, which use sqlx's connections.
fn sqlite_options(url: &str) -> Result<SqliteConnectOptions, DbError> {
    Ok(wal::with_pragmas(
        SqliteConnectOptions::from_str(url)
            .map_err(DbError::InvalidUrl)?
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(sqlite::BUSY_TIMEOUT)
            .foreign_keys(true),
    ))
}

/// `query` for sqlx's PostgreSQL driver.
fn pg_query(query: &Query) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .params
        .iter()
        .fold(sqlx::query(&query.sql), |statement, param| match param {
            Param::Int(value) => statement.bind(*value),
            Param::NullInt => statement.bind(None::<i64>),
            Param::Text(value) => statement.bind(value.as_str()),
            Param::Date(value) => statement.bind(*value),
            Param::Time(value) => statement.bind(*value),
        })
}

async fn pg_fetch_all<T: FromRow>(
    conn: &mut PgConnection,
    query: &Query,
) -> Result<Vec<T>, sqlx::Error> {
    let rows = pg_query(query).fetch_all(conn).await?;
    rows.iter()
        .map(|row| T::from_row(&Row::Postgres(row)))
        .collect()
}

async fn pg_fetch_optional<T: FromRow>(
    conn: &mut PgConnection,
    query: &Query,
) -> Result<Option<T>, sqlx::Error> {
    let row = pg_query(query).fetch_optional(conn).await?;
    row.as_ref()
        .map(|row| T::from_row(&Row::Postgres(row)))
        .transpose()
}

async fn pg_execute(conn: &mut PgConnection, query: &Query) -> Result<u64, sqlx::Error> {
    Ok(pg_query(query).execute(conn).await?.rows_affected())
}

/// An exclusive lock on `<database>.migrate.lock`, held until dropped.
async fn lock_file(database: &std::path::Path) -> Result<std::fs::File, DbError> {
    let mut name = database.as_os_str().to_owned();
    name.push(".migrate.lock");
    let path = std::path::PathBuf::from(name);
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::create(&path)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .map_err(|err| DbError::Lock(std::io::Error::other(err)))?
    .map_err(DbError::Lock)
}

/// True when `err` is a violation of the unique constraint or index `name`.
/// SQLite does not report constraint names, so there the column list that
/// it reports (`table.column`) is matched instead.
pub fn is_unique_violation(err: &sqlx::Error, name: &str, sqlite_columns: &str) -> bool {
    let sqlx::Error::Database(db_err) = err else {
        return false;
    };
    db_err.is_unique_violation()
        && (db_err.constraint() == Some(name) || db_err.message().contains(sqlite_columns))
}

/// Whether `err` means the database is unreachable or going away (so the
/// request may succeed later) rather than a bug.
pub fn is_outage(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL: connection exceptions (08…), shutting down or starting
        // up (57P01-57P03), too many connections (53300); SQLite: busy.
        sqlx::Error::Database(db) => match db.try_downcast_ref::<sqlite::SqliteError>() {
            Some(sqlite) => sqlite.is_busy(),
            None => db.code().is_some_and(|code| {
                code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
            }),
        },
        _ => false,
    }
}

/// Whether `err` says the database's storage is full: SQLite's SQLITE_FULL
/// ("database or disk is full"), PostgreSQL's `53100 disk_full`.
pub fn is_storage_full(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else {
        return false;
    };
    match db.try_downcast_ref::<sqlite::SqliteError>() {
        Some(sqlite) => sqlite.is_full(),
        None => db.code().is_some_and(|code| code == "53100"),
    }
}

/// How long a caller is asked to wait after a write refused for a full
/// disk: freeing space takes an operator, not a moment.
pub const STORAGE_FULL_RETRY_AFTER_SECS: u64 = 30;

/// What the database is, for the log line of a full disk (set once, at
/// [`Db::connect`]: a process has one database).
static STORAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Logs a full disk as an error once a minute at most (with the writes
/// refused since the last line), and counts every refused write in
/// `db_storage_full_total`, which is what to alert on.
fn storage_full(err: &sqlx::Error) {
    use std::sync::Mutex;
    static LAST: Mutex<Option<(std::time::Instant, u64)>> = Mutex::new(None);
    metrics::counter!(names::DB_STORAGE_FULL).increment(1);
    let Ok(mut last) = LAST.lock() else { return };
    let refused = match *last {
        Some((at, count)) if at.elapsed() < Duration::from_secs(60) => {
            *last = Some((at, count + 1));
            return;
        }
        Some((_, count)) => count + 1,
        None => 1,
    };
    *last = Some((std::time::Instant::now(), 0));
    let storage = STORAGE.get().map_or("the database", String::as_str);
    tracing::error!(
        storage,
        refused,
        error = %err,
        "database or disk is full: writes are refused (503) until space is freed; reads go on"
    );
}

/// The default mapping of a database error: an outage or a full disk is a
/// 503 that the caller may retry; anything else is a bug, logged as a 500.
impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if is_storage_full(&err) {
            storage_full(&err);
            return ApiError::Unavailable {
                detail: "The service's storage is full; nothing was changed. Please retry later."
                    .into(),
                retry_after_secs: STORAGE_FULL_RETRY_AFTER_SECS,
            };
        }
        if is_outage(&err) {
            tracing::warn!(error = %err, "database unavailable");
            ApiError::Unavailable {
                detail: "The database is not reachable at the moment.".into(),
                retry_after_secs: 2,
            }
        } else {
            ApiError::internal(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migrator whose one migration creates table `t`, in `dir`.
    async fn migrations(dir: &std::path::Path) -> Migrations {
        let folder = dir.join("migrations");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(
            folder.join("1_t.sql"),
            "CREATE TABLE t (id INTEGER PRIMARY KEY);",
        )
        .unwrap();
        let migrator: &'static Migrator =
            Box::leak(Box::new(Migrator::new(folder.as_path()).await.unwrap()));
        Migrations {
            sqlite: migrator,
            postgres: migrator,
        }
    }

    /// `connect` pings before it migrates, so the pool has a connection
    /// whose schema (read by the ping) has no table. Were it lent after
    /// the migrations, a statement on it would fail with "no such table"
    /// whenever SQLite cannot re-read the schema at once: its check for a
    /// changed schema gives up silently on a busy file (here another
    /// process holds the file's lock for a moment; in the services, the
    /// checkpointer truncating the WAL did it). Any connection lent after
    /// `connect` knows the migrated schema, and a busy file is waited out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_connect_every_statement_sees_the_migrated_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let migrations = migrations(dir.path()).await;
        let db = Db::connect(&format!("sqlite://{}", path.display()), &migrations)
            .await
            .unwrap();
        // Another process takes the file's lock and keeps it for 300 ms.
        let (locked, lock_taken) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let other = rusqlite::Connection::open(&path).unwrap();
            other
                .execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;")
                .unwrap();
            locked.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            other.execute_batch("COMMIT;").unwrap();
        });
        lock_taken.recv().unwrap();
        let count: Option<i64> = db
            .fetch_optional(&Query::new("SELECT count(*) FROM t"))
            .await
            .unwrap();
        assert_eq!(count, Some(0));
        holder.join().unwrap();
        db.close().await;
    }

    #[test]
    fn unknown_schemes_are_refused() {
        assert!(matches!(
            Db::pool("mysql://x"),
            Err(DbError::UnsupportedScheme(s)) if s == "mysql"
        ));
    }
}
