//! PostgreSQL, through tokio-postgres on a deadpool-postgres pool of its
//! connections.
//!
//! Why tokio-postgres and not sqlx's driver (which the services used
//! before): per statement it costs the service about half the CPU time
//! (measured in `make bench`: the guide's "Profiles" has the figures), and
//! it pipelines, so that statements sent together share a round trip (a
//! transaction's `BEGIN` goes with its first statement). sqlx still runs
//! the migrations at start-up (its migrator, advisory lock and records):
//! that is one connection, once.
//!
//! Every statement is prepared once per connection and named (the pool's
//! statement cache), so a request's statement is one round trip: `Bind`,
//! `Execute`, `Sync`. A connection goes back to the pool as it is (no ping
//! on the way in or out); one whose socket failed is closed by the pool
//! instead of lent again ([`RecyclingMethod::Fast`] checks for that).
//!
//! A transaction is a synchronous closure, as on SQLite, so that nothing
//! but its own statements can be awaited while it holds its locks: its
//! thread drives each statement to its end.

use std::{str::FromStr, time::Duration};

use deadpool_postgres::{
    Manager, ManagerConfig, Object, PoolError, QueueMode, RecyclingMethod, Runtime,
};
use tokio_postgres::NoTls;
use tracing::Instrument;

use crate::{
    StoreError,
    statement::{FromRow, Insert, Param, Row, Statement, postgres_params},
};

/// PostgreSQL's connections for one database.
pub type PgPool = deadpool_postgres::Pool;

/// How many prepared statements a connection keeps. The statements a
/// store writes are a few dozen; a batch lookup (`?ids=`) makes one per
/// count of ids, so the cache is emptied when it grows past this.
const STATEMENT_CACHE: usize = 256;

/// A pool of at most `max` connections to the database at `url`, made when
/// first needed. A request waits at most `acquire_timeout` for a free one
/// (then it fails as unavailable), and as long again for a new one to
/// connect.
pub fn pool(url: &str, max: usize, acquire_timeout: Duration) -> Result<PgPool, String> {
    let config = tokio_postgres::Config::from_str(url).map_err(|err| err.to_string())?;
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    deadpool_postgres::Pool::builder(manager)
        .max_size(max)
        // The connection used last goes out first: under a light load the
        // same few connections (and their server processes, their caches
        // warm) serve every request, instead of all of them in turn.
        .queue_mode(QueueMode::Lifo)
        .wait_timeout(Some(acquire_timeout))
        .create_timeout(Some(acquire_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|err| err.to_string())
}

async fn get(pool: &PgPool) -> Result<Object, StoreError> {
    pool.get().await.map_err(|err| match err {
        // The server cannot be reached (not up yet, gone): say why.
        PoolError::Backend(err) => StoreError::Unavailable(err.into()),
        PoolError::Timeout(_) => {
            StoreError::Unavailable("no free database connection in time".into())
        }
        PoolError::Closed | PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => {
            StoreError::Unavailable("the database pool is closed".into())
        }
    })
}

/// `sql`, prepared on this connection once and named.
async fn prepared(conn: &Object, sql: &str) -> Result<tokio_postgres::Statement, StoreError> {
    if conn.statement_cache.size() >= STATEMENT_CACHE {
        conn.statement_cache.clear();
    }
    conn.prepare_cached(sql).await.map_err(error)
}

async fn query_on(
    conn: &Object,
    sql: &str,
    params: &[&dyn Param],
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    let statement = prepared(conn, sql).await?;
    let params = postgres_params(params);
    conn.query(&statement, &params).await.map_err(error)
}

fn rows_as<T: FromRow>(rows: &[tokio_postgres::Row]) -> Result<Vec<T>, StoreError> {
    rows.iter()
        .map(|row| T::from_row(&Row::Postgres(row)))
        .collect()
}

fn first_as<T: FromRow>(rows: &[tokio_postgres::Row]) -> Result<Option<T>, StoreError> {
    rows.first()
        .map(|row| T::from_row(&Row::Postgres(row)))
        .transpose()
}

async fn execute_on(conn: &Object, sql: &str, params: &[&dyn Param]) -> Result<u64, StoreError> {
    let statement = prepared(conn, sql).await?;
    let params = postgres_params(params);
    conn.execute(&statement, &params).await.map_err(error)
}

/// The statements of a PostgreSQL pool, each on a connection of its own.
#[derive(Clone, Debug)]
pub struct Postgres {
    pub(crate) pool: PgPool,
    /// For the migrations, which sqlx's migrator runs.
    pub(crate) url: String,
}

impl Postgres {
    pub async fn fetch_all<T: FromRow>(
        &self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<Vec<T>, StoreError> {
        let span = crate::statement::statement_span(crate::statement::POSTGRES, statement.summary);
        async { rows_as(&query_on(&get(&self.pool).await?, &statement.sql, params).await?) }
            .instrument(span)
            .await
    }

    pub async fn fetch_optional<T: FromRow>(
        &self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<Option<T>, StoreError> {
        let span = crate::statement::statement_span(crate::statement::POSTGRES, statement.summary);
        async { first_as(&query_on(&get(&self.pool).await?, &statement.sql, params).await?) }
            .instrument(span)
            .await
    }

    pub async fn execute(
        &self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<u64, StoreError> {
        let span = crate::statement::statement_span(crate::statement::POSTGRES, statement.summary);
        async { execute_on(&get(&self.pool).await?, &statement.sql, params).await }
            .instrument(span)
            .await
    }

    pub async fn insert(
        &self,
        insert: &Insert,
        params: &[&dyn Param],
    ) -> Result<Option<i64>, StoreError> {
        let span = crate::statement::statement_span(crate::statement::POSTGRES, insert.summary);
        async { first_as(&query_on(&get(&self.pool).await?, insert.postgres, params).await?) }
            .instrument(span)
            .await
    }

    /// Runs `work` as one transaction: `BEGIN` (sent with `work`'s first
    /// statement, in one round trip), then `work`'s statements, each driven
    /// to its end from this thread (which tells the runtime it blocks, so
    /// that its other tasks move on: `block_in_place`, of the
    /// multi-threaded runtime the services run on), then `COMMIT` when it
    /// succeeds and `ROLLBACK` otherwise.
    pub async fn transaction<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce(PgTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let conn = get(&self.pool).await?;
        let runtime = tokio::runtime::Handle::current();
        let mut begun = false;
        let outcome = tokio::task::block_in_place(|| {
            work(PgTx {
                conn: &conn,
                runtime: &runtime,
                begun: &mut begun,
            })
        });
        if !begun {
            // Nothing was sent: there is nothing to end.
            return outcome;
        }
        let end = if outcome.is_ok() {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        conn.batch_execute(end)
            .instrument(crate::statement::statement_span(
                crate::statement::POSTGRES,
                end,
            ))
            .await
            .map_err(error)?;
        outcome
    }

    /// Closes the pool: no connection is lent any more, and the idle ones
    /// are closed (tokio-postgres ends a connection when its client goes).
    pub async fn close(&self) {
        self.pool.close();
    }
}

/// A transaction's connection, driven from the transaction's thread.
pub struct PgTx<'t> {
    conn: &'t Object,
    runtime: &'t tokio::runtime::Handle,
    /// Whether `BEGIN` has been sent (with the first statement).
    begun: &'t mut bool,
}

impl PgTx<'_> {
    /// Drives `send` (a statement of the transaction) to its end; the first
    /// goes out in one round trip with the `BEGIN` before it
    /// (tokio-postgres pipelines requests that are awaited together, in the
    /// order they are first polled).
    fn run<R>(
        &mut self,
        summary: &'static str,
        sql: &str,
        params: &[&dyn Param],
        send: impl AsyncFnOnce(
            &Object,
            &tokio_postgres::Statement,
            &[&(dyn tokio_postgres::types::ToSql + Sync)],
        ) -> Result<R, tokio_postgres::Error>,
    ) -> Result<R, StoreError> {
        let _span = crate::statement::statement_span(crate::statement::POSTGRES, summary).entered();
        let (conn, begun) = (self.conn, &mut *self.begun);
        self.runtime.block_on(async {
            let statement = prepared(conn, sql).await?;
            let params = postgres_params(params);
            if !std::mem::replace(begun, true) {
                let (begun, done) =
                    tokio::join!(conn.batch_execute("BEGIN"), send(conn, &statement, &params));
                begun.map_err(error)?;
                done.map_err(error)
            } else {
                send(conn, &statement, &params).await.map_err(error)
            }
        })
    }

    fn query(
        &mut self,
        summary: &'static str,
        sql: &str,
        params: &[&dyn Param],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        self.run(summary, sql, params, async |conn, statement, params| {
            conn.query(statement, params).await
        })
    }

    pub(crate) fn fetch_all<T: FromRow>(
        &mut self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<Vec<T>, StoreError> {
        rows_as(&self.query(statement.summary, &statement.sql, params)?)
    }

    pub(crate) fn fetch_optional<T: FromRow>(
        &mut self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<Option<T>, StoreError> {
        first_as(&self.query(statement.summary, &statement.sql, params)?)
    }

    /// How many rows `statement` wrote.
    pub(crate) fn execute(
        &mut self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<u64, StoreError> {
        self.run(
            statement.summary,
            &statement.sql,
            params,
            async |conn, statement, params| conn.execute(statement, params).await,
        )
    }

    pub(crate) fn insert(
        &mut self,
        insert: &Insert,
        params: &[&dyn Param],
    ) -> Result<Option<i64>, StoreError> {
        first_as(&self.query(insert.summary, insert.postgres, params)?)
    }
}

/// Runs the migrations on a connection of its own (sqlx's migrator: it
/// takes PostgreSQL's advisory lock first, so replicas that start together
/// migrate once).
pub async fn migrate(url: &str, migrator: &sqlx::migrate::Migrator) -> Result<(), Migrate> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .map_err(|err| Migrate::Connect(StoreError::Unavailable(err.into())))?;
    let migrated = migrator.run(&mut conn).await.map_err(Migrate::Failed);
    if let Err(err) = conn.close().await {
        tracing::debug!(error = %err, "the migrations' connection did not close cleanly");
    }
    migrated
}

/// Why the migrations did not run.
#[derive(Debug, thiserror::Error)]
pub enum Migrate {
    #[error("cannot connect for the migrations")]
    Connect(#[source] StoreError),
    #[error("the PostgreSQL migrations failed")]
    Failed(#[source] sqlx::migrate::MigrateError),
}

/// PostgreSQL's codes for a connection that is lost: connection exceptions
/// (08…), the server shutting down (57P01 admin, 57P02 crash, 57P03 cannot
/// connect now).
fn is_connection_lost(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// An error of tokio-postgres's as the store's: `23505` a
/// [`StoreError::Duplicate`] with the constraint's name, `53100` a full
/// disk, a lost connection, too many connections (`53300`) or a failed
/// socket [`StoreError::Unavailable`], anything else (a statement the
/// server refused, a value that does not convert) [`StoreError::Failed`].
pub(crate) fn error(err: tokio_postgres::Error) -> StoreError {
    if let Some(db) = err.as_db_error() {
        let code = db.code().code();
        return match code {
            "23505" => StoreError::Duplicate {
                constraint: db.constraint().unwrap_or_default().to_owned(),
            },
            "53100" => StoreError::StorageFull(err.into()),
            "53300" => StoreError::Unavailable(err.into()),
            code if is_connection_lost(code) => StoreError::Unavailable(err.into()),
            _ => StoreError::Failed(err.into()),
        };
    }
    let io = std::error::Error::source(&err).is_some_and(|source| source.is::<std::io::Error>());
    if err.is_closed() || io {
        StoreError::Unavailable(err.into())
    } else {
        StoreError::Failed(err.into())
    }
}
