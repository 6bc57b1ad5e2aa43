//! [`Db`]: the service's one database, SQLite or PostgreSQL, chosen once at
//! start-up by its URL; every statement of a store goes through it, and
//! every transaction through [`Db::transaction`], a synchronous closure
//! over a [`Tx`].

use std::time::Duration;
#[cfg(feature = "sqlite")]
use std::{path::Path, sync::Arc};

use kit_observability::{
    health::{Checking, Closing, Dependency},
    metrics as names,
};

use crate::{
    StoreError,
    statement::{FromRow, Insert, Param, Statement},
};

/// The service's own database.
#[derive(Clone, Debug)]
pub enum Db {
    /// SQLite, with its write-ahead log kept bounded by a checkpointer.
    #[cfg(feature = "sqlite")]
    Sqlite(crate::sqlite::SqlitePool, Arc<crate::sqlite::wal::Wal>),
    #[cfg(feature = "postgres")]
    Postgres(crate::postgres::Postgres),
    /// No value: a build without a backend has a `Db` type all the same.
    #[doc(hidden)]
    _NoBackend(std::convert::Infallible),
}

/// A transaction's statements: run synchronously, so that nothing but the
/// transaction's own statements can be awaited while it holds its locks
/// (on SQLite, the turn of every writer of the process). What a
/// transaction needs from elsewhere (another service's answer, say) is got
/// before it begins.
pub enum Tx<'t> {
    #[cfg(feature = "sqlite")]
    Sqlite(&'t rusqlite::Connection),
    #[cfg(feature = "postgres")]
    Postgres(crate::postgres::PgTx<'t>),
    #[doc(hidden)]
    _Unused(std::marker::PhantomData<&'t ()>),
}

/// Each method of [`Tx`], on its backend.
macro_rules! on_tx {
    ($tx:expr, $sqlite:ident => $on_sqlite:expr, $postgres:ident => $on_postgres:expr) => {
        match $tx {
            #[cfg(feature = "sqlite")]
            Tx::Sqlite($sqlite) => $on_sqlite,
            #[cfg(feature = "postgres")]
            Tx::Postgres($postgres) => $on_postgres,
            Tx::_Unused(_) => Err(StoreError::failed("a transaction of no backend")),
        }
    };
}

impl Tx<'_> {
    pub fn fetch_all<T: FromRow>(
        &mut self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<Vec<T>, StoreError> {
        on_tx!(self,
            conn => crate::sqlite::TxConn::fetch_all(conn, statement, params),
            tx => tx.fetch_all(statement, params))
    }

    pub fn fetch_optional<T: FromRow>(
        &mut self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<Option<T>, StoreError> {
        on_tx!(self,
            conn => crate::sqlite::TxConn::fetch_optional(conn, statement, params),
            tx => tx.fetch_optional(statement, params))
    }

    pub fn execute(
        &mut self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<u64, StoreError> {
        on_tx!(self,
            conn => crate::sqlite::TxConn::execute(conn, statement, params),
            tx => tx.execute(statement, params))
    }

    /// See [`Db::insert`].
    pub fn insert(
        &mut self,
        insert: &Insert,
        params: &[&dyn Param],
    ) -> Result<Option<i64>, StoreError> {
        on_tx!(self,
            conn => crate::sqlite::TxConn::insert(conn, insert, params),
            tx => tx.insert(insert, params))
    }

    /// Whether this transaction runs on PostgreSQL (a store may need a
    /// statement of PostgreSQL's only, such as a table lock).
    pub fn is_postgres(&self) -> bool {
        match self {
            #[cfg(feature = "postgres")]
            Tx::Postgres(_) => true,
            _ => false,
        }
    }
}

/// The outcome of a conditional write (`… WHERE id = $1 AND version = $2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written<T> {
    Done(T),
    /// There is no such record.
    Missing,
    /// The record is at another version than the one expected.
    Stale,
}

impl<T> Written<T> {
    /// `Done` when the write wrote; otherwise `Stale` or `Missing`, as
    /// `exists` (a second look at the record) tells.
    pub async fn from_outcome<F>(outcome: Option<T>, exists: F) -> Result<Self, StoreError>
    where
        F: Future<Output = Result<bool, StoreError>>,
    {
        Ok(match outcome {
            Some(value) => Written::Done(value),
            None if exists.await? => Written::Stale,
            None => Written::Missing,
        })
    }
}

/// A service's migrations, one set per backend (each `sqlx::migrate!`:
/// files embedded at compile time).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub struct Migrations {
    pub sqlite: &'static sqlx::migrate::Migrator,
    pub postgres: &'static sqlx::migrate::Migrator,
}

/// Why the database could not be opened at start-up.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL must start with {0} (got scheme `{1}`)")]
    UnsupportedScheme(&'static str, String),
    #[error("DATABASE_URL is not valid: {0}")]
    InvalidUrl(String),
    #[error("could not connect to the database within {0:?}")]
    Unreachable(Duration, #[source] StoreError),
    #[error("cannot take a connection for the migrations")]
    Connect(#[source] StoreError),
    #[cfg(feature = "sqlite")]
    #[error("the SQLite migrations failed")]
    MigrateSqlite(#[from] crate::sqlite::migrate::MigrateError),
    #[cfg(feature = "postgres")]
    #[error("the PostgreSQL migrations did not run")]
    MigratePostgres(#[from] crate::postgres::Migrate),
    #[error("cannot lock the database file for migrations")]
    Lock(#[source] std::io::Error),
}

/// How long a request waits for a pooled connection before it is answered 503.
#[cfg(feature = "postgres")]
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long start-up waits for the database to come up (e.g. in docker compose).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);
/// PostgreSQL connections per instance.
#[cfg(feature = "postgres")]
const POSTGRES_CONNECTIONS: usize = 16;

/// The URL schemes this build can open.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
const SCHEMES: &str = match (cfg!(feature = "sqlite"), cfg!(feature = "postgres")) {
    (true, true) => "sqlite: or postgres://",
    (true, false) => "sqlite:",
    (false, true) => "postgres://",
    (false, false) => "a scheme of a backend this build has (none)",
};

/// What the database is, for the log line of a full disk (set once, at
/// [`Db::connect`]: a process has one database).
static DESCRIPTION: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The database the process opened (the SQLite file, or the PostgreSQL
/// URL without its password), for log lines.
pub fn description() -> &'static str {
    DESCRIPTION.get().map_or("the database", String::as_str)
}

/// Runs `$on` with `$backend` bound to the [`Db`]'s backend.
macro_rules! on_db {
    ($db:expr, $sqlite:pat => $on_sqlite:expr, $postgres:pat => $on_postgres:expr) => {
        match $db {
            #[cfg(feature = "sqlite")]
            $sqlite => $on_sqlite,
            #[cfg(feature = "postgres")]
            $postgres => $on_postgres,
            #[allow(unreachable_patterns)]
            Db::_NoBackend(never) => match *never {},
        }
    };
}

impl Db {
    /// Opens the database at `url` (retrying for a while, as a database may
    /// still be starting) and runs the migrations.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub async fn connect(url: &str, migrations: &Migrations) -> Result<Self, DbError> {
        let db = Self::open_lazily(url)?;
        let _ = DESCRIPTION.set(on_db!(&db,
            Db::Sqlite(pool, _) => format!("SQLite file {}", pool.path().display()),
            Db::Postgres(_) => format!("PostgreSQL {}", kit_config::redact_url(url))));
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
        on_db!(&db,
        Db::Sqlite(pool, wal) => {
            migrate_sqlite(pool, migrations.sqlite).await?;
            tokio::spawn(crate::sqlite::wal::checkpointer(
                pool.path().to_owned(),
                wal.clone(),
                pool.write_turn(),
            ));
        },
        Db::Postgres(postgres) => {
            crate::postgres::migrate(&postgres.pool, migrations.postgres).await?;
        });
        Ok(db)
    }

    /// The database at `url`, whose connections are opened when first
    /// needed.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn open_lazily(url: &str) -> Result<Self, DbError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            #[cfg(feature = "sqlite")]
            "sqlite" => {
                let path = sqlite_path(url)?;
                let wal = Arc::new(crate::sqlite::wal::Wal::new(&path));
                Ok(Db::Sqlite(crate::sqlite::SqlitePool::new(&path), wal))
            }
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => {
                let options =
                    <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(url)
                        .map_err(|err| DbError::InvalidUrl(err.to_string()))?;
                let pool = crate::postgres::pool(options, POSTGRES_CONNECTIONS, ACQUIRE_TIMEOUT);
                Ok(Db::Postgres(crate::postgres::Postgres { pool }))
            }
            other => Err(DbError::UnsupportedScheme(SCHEMES, other.to_owned())),
        }
    }

    /// Runs the read `statement` and reads every row.
    pub async fn fetch_all<T: FromRow>(
        &self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<Vec<T>, StoreError> {
        on_db!(self,
            Db::Sqlite(pool, _) => pool.fetch_all(statement, params).await,
            Db::Postgres(postgres) => postgres.fetch_all(statement, params).await)
    }

    /// Runs the read `statement` and reads its first row, if any.
    pub async fn fetch_optional<T: FromRow>(
        &self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<Option<T>, StoreError> {
        on_db!(self,
            Db::Sqlite(pool, _) => pool.fetch_optional(statement, params).await,
            Db::Postgres(postgres) => postgres.fetch_optional(statement, params).await)
    }

    /// Runs the write `statement`; returns how many rows it changed.
    pub async fn execute(
        &self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<u64, StoreError> {
        on_db!(self,
            Db::Sqlite(pool, _) => pool.execute(statement, params).await,
            Db::Postgres(postgres) => postgres.execute(statement, params).await)
    }

    /// Runs the write `statement`, whose `RETURNING` clause returns the
    /// changed row, and reads it: `None` when it changed none. (Read to
    /// its end on both backends: SQLite runs its automatic checkpoint only
    /// from a statement that finished.)
    pub async fn update_returning<T: FromRow>(
        &self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<Option<T>, StoreError> {
        on_db!(self,
            Db::Sqlite(pool, _) => Ok(pool.write_returning(statement, params).await?.into_iter().next()),
            Db::Postgres(postgres) => Ok(postgres.fetch_all(statement, params).await?.into_iter().next()))
    }

    /// Runs `insert`, an `INSERT` of one row into a table keyed by `id`,
    /// and returns the new row's `id`, or `None` when it inserted nothing
    /// (an `INSERT … SELECT … WHERE` whose condition did not hold). The
    /// caller knows every other column of the row: it has just written
    /// them.
    pub async fn insert(
        &self,
        insert: &Insert,
        params: &[&dyn Param],
    ) -> Result<Option<i64>, StoreError> {
        on_db!(self,
            Db::Sqlite(pool, _) => pool.insert(insert, params).await,
            Db::Postgres(postgres) => postgres.insert(insert, params).await)
    }

    /// Runs `work` as one transaction: committed when it returns `Ok`,
    /// rolled back when it returns an error. `work` is synchronous: see
    /// [`Tx`]. (On PostgreSQL it needs the multi-threaded runtime, which
    /// the services run on.)
    pub async fn transaction<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce(&mut Tx<'_>) -> Result<T, E> + Send,
    ) -> Result<T, E> {
        on_db!(self,
            Db::Sqlite(pool, _) => pool.transaction(|conn| work(&mut Tx::Sqlite(conn))).await,
            Db::Postgres(postgres) => postgres.transaction(|tx| work(&mut Tx::Postgres(tx))).await)
    }

    /// One statement, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        // BIGINT on both: PostgreSQL's bare 1 is an INT4, which i64 does not read.
        const PING: Statement = Statement::new("SELECT", "SELECT CAST(1 AS BIGINT)");
        self.fetch_optional::<i64>(&PING, &[]).await.map(drop)
    }

    /// The backend's name: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        on_db!(self, Db::Sqlite(..) => "sqlite", Db::Postgres(_) => "postgres")
    }

    /// Sets the pool's gauges, and on SQLite the write-ahead log's, to
    /// their state now (at each scrape).
    pub fn record_metrics(&self) {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let (size, idle, max) = on_db!(self,
        Db::Sqlite(pool, _) => {
            let (open, idle) = pool.stats();
            (open, idle, crate::sqlite::MAX_IDLE.max(open))
        },
        Db::Postgres(postgres) => {
            let status = postgres.pool.status();
            (status.size, status.available, status.max_size)
        });
        let (size, idle, max) = (count(size), count(idle).min(count(size)), count(max));
        metrics::gauge!(names::DB_POOL, "state" => "in_use").set(f64::from(size - idle));
        metrics::gauge!(names::DB_POOL, "state" => "idle").set(f64::from(idle));
        metrics::gauge!(names::DB_POOL_MAX).set(f64::from(max));
        #[cfg(feature = "sqlite")]
        #[allow(irrefutable_let_patterns)]
        if let Db::Sqlite(_, wal) = self {
            wal.record_metrics();
        }
    }

    /// Stops the checkpointer (SQLite) and closes the pool's connections.
    pub async fn close(&self) {
        on_db!(self,
            Db::Sqlite(pool, wal) => {
                wal.stop();
                pool.close();
            },
            Db::Postgres(postgres) => postgres.close().await)
    }
}

/// Readiness is the database answering a statement; `/metrics` samples
/// the pool (and the log) first; the server closes it last.
impl Dependency for Db {
    fn check(&self) -> Checking<'_> {
        Box::pin(async move {
            self.ping()
                .await
                .map_err(|err| format!("The database is not reachable: {err}"))
        })
    }

    fn sample_metrics(&self) {
        self.record_metrics();
    }

    fn close(&self) -> Closing<'_> {
        Box::pin(Db::close(self))
    }
}

/// The file of a `sqlite:` URL (`sqlite://PATH`, `sqlite:PATH`; query
/// parameters are not taken).
#[cfg(feature = "sqlite")]
fn sqlite_path(url: &str) -> Result<std::path::PathBuf, DbError> {
    let rest = url.strip_prefix("sqlite:").unwrap_or(url);
    let path = rest.strip_prefix("//").unwrap_or(rest);
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Err(DbError::InvalidUrl(format!(
            "`{url}` names no file (a service's database is a file: sqlite://PATH)"
        )));
    }
    Ok(Path::new(path).to_owned())
}

/// Runs the SQLite migrations on a connection of their own, holding an
/// exclusive lock on `<database>.migrate.lock` (several instances may
/// share one file and start at once), then closes the pool's idle
/// connections: one that read the schema before (the ping's) must not be
/// lent after it changed.
#[cfg(feature = "sqlite")]
async fn migrate_sqlite(
    pool: &crate::sqlite::SqlitePool,
    migrator: &'static sqlx::migrate::Migrator,
) -> Result<(), DbError> {
    let path = pool.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let _lock = lock_file(&path)?;
        // The migrations wait for another process's lock (an instance of
        // the same service already serving, on the same file) as long as
        // any statement does, from the connection's first pragma on.
        let mut conn = crate::sqlite::open_waiting(&path, crate::sqlite::BUSY_TIMEOUT)
            .map_err(|err| DbError::Connect(crate::sqlite::error(err)))?;
        crate::sqlite::migrate::run(&mut conn, migrator)?;
        Ok::<_, DbError>(())
    })
    .await
    .map_err(|err| DbError::Lock(std::io::Error::other(err)))??;
    pool.close();
    Ok(())
}

/// An exclusive lock on `<database>.migrate.lock`, held until dropped.
#[cfg(feature = "sqlite")]
fn lock_file(database: &Path) -> Result<std::fs::File, DbError> {
    let mut name = database.as_os_str().to_owned();
    name.push(".migrate.lock");
    let file = std::fs::File::create(std::path::PathBuf::from(name)).map_err(DbError::Lock)?;
    file.lock().map_err(DbError::Lock)?;
    Ok(file)
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    /// A migrator whose one migration creates table `t`, in `dir`.
    async fn migrations(dir: &Path) -> Migrations {
        let folder = dir.join("migrations");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(
            folder.join("1_t.sql"),
            "CREATE TABLE t (id INTEGER PRIMARY KEY);",
        )
        .unwrap();
        let migrator: &'static sqlx::migrate::Migrator = Box::leak(Box::new(
            sqlx::migrate::Migrator::new(folder.as_path())
                .await
                .unwrap(),
        ));
        Migrations {
            sqlite: migrator,
            postgres: migrator,
        }
    }

    const COUNT: Statement = Statement::new("SELECT t", "SELECT count(*) FROM t");

    /// Takes the lock of the SQLite file at `path` from another connection,
    /// as another process would, and keeps it for `how_long` on a thread of
    /// its own; returns once the lock is taken.
    fn hold_the_lock(path: std::path::PathBuf, how_long: Duration) -> std::thread::JoinHandle<()> {
        let (locked, lock_taken) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let other = rusqlite::Connection::open(&path).unwrap();
            other
                .execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;")
                .unwrap();
            locked.send(()).unwrap();
            std::thread::sleep(how_long);
            other.execute_batch("COMMIT;").unwrap();
        });
        lock_taken.recv().unwrap();
        holder
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
        let holder = hold_the_lock(path, Duration::from_millis(300));
        let count: Option<i64> = db.fetch_optional(&COUNT, &[]).await.unwrap();
        assert_eq!(count, Some(0));
        holder.join().unwrap();
        db.close().await;
    }

    /// The migrations of an instance starting while another instance on
    /// the same file holds its lock (here for 300 ms, taken after the
    /// start's first look at the file) wait for the lock from their
    /// connection's first pragma on, and run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_migrations_wait_for_another_instance_holding_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let url = format!("sqlite://{}", path.display());
        let migrations = migrations(dir.path()).await;
        Db::connect(&url, &migrations).await.unwrap().close().await;
        let holder = hold_the_lock(path.clone(), Duration::from_millis(300));
        let pool = crate::sqlite::SqlitePool::new(&path);
        let migrated = migrate_sqlite(&pool, migrations.sqlite).await;
        holder.join().unwrap();
        assert!(migrated.is_ok(), "{migrated:?}");
    }

    /// A file migrated once is recognised as migrated (here, by this
    /// migrator; the records are sqlx's, so a file an earlier version
    /// migrated with sqlx's own migrator is too), and one whose migration
    /// changed since is refused at start.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migrations_run_once_and_a_changed_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let migrations = migrations(dir.path()).await;
        Db::connect(&url, &migrations).await.unwrap().close().await;
        Db::connect(&url, &migrations).await.unwrap().close().await;
        std::fs::write(
            dir.path().join("migrations/1_t.sql"),
            "CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT);",
        )
        .unwrap();
        let changed: &'static sqlx::migrate::Migrator = Box::leak(Box::new(
            sqlx::migrate::Migrator::new(dir.path().join("migrations").as_path())
                .await
                .unwrap(),
        ));
        let refused = Db::connect(
            &url,
            &Migrations {
                sqlite: changed,
                postgres: changed,
            },
        )
        .await;
        assert!(
            matches!(
                refused,
                Err(DbError::MigrateSqlite(
                    crate::sqlite::migrate::MigrateError::Changed { version: 1 }
                ))
            ),
            "{refused:?}"
        );
    }

    #[test]
    fn unknown_schemes_and_memory_databases_are_refused() {
        assert!(matches!(
            Db::open_lazily("mysql://x"),
            Err(DbError::UnsupportedScheme(_, s)) if s == "mysql"
        ));
        assert!(matches!(
            Db::open_lazily("sqlite::memory:"),
            Err(DbError::InvalidUrl(_))
        ));
        assert_eq!(
            sqlite_path("sqlite:///data/c.db?mode=rwc").unwrap(),
            Path::new("/data/c.db")
        );
        assert_eq!(
            sqlite_path("sqlite://data/c.db").unwrap(),
            Path::new("data/c.db")
        );
    }
}
