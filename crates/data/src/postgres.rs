//! PostgreSQL, through sqlx's PostgreSQL driver, on a pool of its
//! connections kept by `deadpool`.
//!
//! Why not sqlx's own pool: it sends every connection a ping on its way
//! back to the pool, and (with `test_before_acquire`, its default) another
//! on its way out. A one-statement request then makes three round trips to
//! the database where one is the work (measured: `GET /client/{id}` cost
//! 290 µs of CPU time with them; see the guide's "Profiles"). Here a
//! connection goes back to the pool as it is, and comes out as it went in.
//! What the pings were for is handled where it arises: a statement that
//! failed because the connection broke (the server went away, I/O error)
//! marks it broken, and the pool closes it instead of lending it again.
//!
//! Every statement is prepared once per connection and named (sqlx's
//! statement cache), so a request's statement is one round trip: `Bind`,
//! `Execute`, `Sync`.
//!
//! A transaction is a synchronous closure, as on SQLite, so
//! that nothing but its own statements can be awaited while it holds its
//! locks: its thread drives each statement to its end.

use std::time::Duration;

use deadpool::managed::{self, Metrics, Object, PoolError, RecycleError, RecycleResult};
use sqlx::{
    Connection, Executor, PgConnection,
    postgres::{PgArguments, PgConnectOptions},
};
use tracing::Instrument;

use crate::{
    StoreError,
    statement::{FromRow, Insert, Param, PostgresParam, Row, Statement},
};

/// A connection of the pool, whether it broke, and whether a transaction
/// on it has begun and not yet ended.
#[derive(Debug)]
pub struct PgConn {
    raw: PgConnection,
    broken: bool,
    in_transaction: bool,
}

/// Makes the pool's connections.
#[derive(Debug)]
pub struct Connector(PgConnectOptions);

impl managed::Manager for Connector {
    type Type = PgConn;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<PgConn, sqlx::Error> {
        let raw = sqlx::ConnectOptions::connect(&self.0).await?;
        Ok(PgConn {
            raw,
            broken: false,
            in_transaction: false,
        })
    }

    /// A connection is used again unless it broke, or comes back inside a
    /// transaction (its request was cancelled, a client gone or a timeout,
    /// between `BEGIN` and the end): then the pool drops it, closing it,
    /// which ends the transaction on the server, and makes a new one.
    async fn recycle(&self, conn: &mut PgConn, _: &Metrics) -> RecycleResult<sqlx::Error> {
        if conn.broken {
            return Err(RecycleError::message("the connection broke"));
        }
        if conn.in_transaction {
            return Err(RecycleError::message(
                "the connection came back inside a transaction",
            ));
        }
        Ok(())
    }
}

/// PostgreSQL's connections for one database.
pub type PgPool = managed::Pool<Connector>;

/// A pool of at most `max` connections, made when first needed. A request
/// waits at most `acquire_timeout` for a free one (then it fails as
/// unavailable), and as long again for a new one to connect.
pub fn pool(options: PgConnectOptions, max: usize, acquire_timeout: Duration) -> PgPool {
    let built = managed::Pool::builder(Connector(options))
        .max_size(max)
        // The connection used last goes out first (as PgBouncer reuses its
        // server connections): under a light load the same few
        // connections, and their server processes with their caches warm,
        // serve every request instead of all of them in turn. Under the
        // bench's load every connection is busy and it makes no difference.
        .queue_mode(managed::QueueMode::Lifo)
        .wait_timeout(Some(acquire_timeout))
        .create_timeout(Some(acquire_timeout))
        .runtime(deadpool::Runtime::Tokio1);
    // The builder fails only when timeouts are set without a runtime, and
    // the runtime is set just above.
    match built.build() {
        Ok(pool) => pool,
        Err(err) => unreachable!("a pool with a runtime is always built: {err}"),
    }
}

async fn get(pool: &PgPool) -> Result<Object<Connector>, StoreError> {
    pool.get().await.map_err(|err| match err {
        PoolError::Backend(err) => error(err),
        PoolError::Timeout(_) => {
            StoreError::Unavailable("no free database connection in time".into())
        }
        PoolError::Closed | PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => {
            StoreError::Unavailable("the database pool is closed".into())
        }
    })
}

/// The statement's arguments, bound through sqlx's own `Encode`.
fn arguments(params: &[&dyn Param]) -> Result<PgArguments, StoreError> {
    let mut arguments = PgArguments::default();
    for param in params {
        PostgresParam::add_to(*param, &mut arguments).map_err(StoreError::Failed)?;
    }
    Ok(arguments)
}

/// Runs one statement on a connection, marking the connection broken when
/// the failure says so.
async fn on<T>(
    conn: &mut PgConn,
    run: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
) -> Result<T, StoreError> {
    let result = run(&mut conn.raw).await;
    if let Err(err) = &result
        && is_broken(err)
    {
        conn.broken = true;
    }
    result.map_err(error)
}

async fn fetch_all_on<T: FromRow>(
    conn: &mut PgConn,
    sql: &str,
    params: &[&dyn Param],
) -> Result<Vec<T>, StoreError> {
    let arguments = arguments(params)?;
    let query = sqlx::query_with(sql, arguments);
    let rows = on(conn, async |c| query.fetch_all(c).await).await?;
    rows.iter()
        .map(|row| T::from_row(&Row::Postgres(row)))
        .collect()
}

async fn fetch_optional_on<T: FromRow>(
    conn: &mut PgConn,
    sql: &str,
    params: &[&dyn Param],
) -> Result<Option<T>, StoreError> {
    let arguments = arguments(params)?;
    let query = sqlx::query_with(sql, arguments);
    let row = on(conn, async |c| query.fetch_optional(c).await).await?;
    row.as_ref()
        .map(|row| T::from_row(&Row::Postgres(row)))
        .transpose()
}

async fn execute_on(
    conn: &mut PgConn,
    sql: &str,
    params: &[&dyn Param],
) -> Result<u64, StoreError> {
    let arguments = arguments(params)?;
    let query = sqlx::query_with(sql, arguments);
    let done = on(conn, async |c| query.execute(c).await).await?;
    Ok(done.rows_affected())
}

async fn insert_on(
    conn: &mut PgConn,
    insert: &Insert,
    params: &[&dyn Param],
) -> Result<Option<i64>, StoreError> {
    let ids: Vec<i64> = fetch_all_on(conn, insert.postgres, params).await?;
    Ok(ids.into_iter().next())
}

/// The statements of a PostgreSQL pool, each on a connection of its own.
#[derive(Clone, Debug)]
pub struct Postgres {
    pub(crate) pool: PgPool,
}

impl Postgres {
    pub async fn fetch_all<T: FromRow>(
        &self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<Vec<T>, StoreError> {
        let span = crate::statement::statement_span(crate::statement::POSTGRES, statement.summary);
        async { fetch_all_on(&mut *get(&self.pool).await?, &statement.sql, params).await }
            .instrument(span)
            .await
    }

    pub async fn fetch_optional<T: FromRow>(
        &self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<Option<T>, StoreError> {
        let span = crate::statement::statement_span(crate::statement::POSTGRES, statement.summary);
        async { fetch_optional_on(&mut *get(&self.pool).await?, &statement.sql, params).await }
            .instrument(span)
            .await
    }

    pub async fn execute(
        &self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<u64, StoreError> {
        let span = crate::statement::statement_span(crate::statement::POSTGRES, statement.summary);
        async { execute_on(&mut *get(&self.pool).await?, &statement.sql, params).await }
            .instrument(span)
            .await
    }

    pub async fn insert(
        &self,
        insert: &Insert,
        params: &[&dyn Param],
    ) -> Result<Option<i64>, StoreError> {
        let span = crate::statement::statement_span(crate::statement::POSTGRES, insert.summary);
        async { insert_on(&mut *get(&self.pool).await?, insert, params).await }
            .instrument(span)
            .await
    }

    /// Runs `work` as one transaction: `BEGIN`, then `work`'s statements,
    /// each driven to its end from this thread (which tells the runtime it
    /// blocks, so that its other tasks move on: `block_in_place`, of the
    /// multi-threaded runtime the services run on), then `COMMIT` when it
    /// succeeds and `ROLLBACK` otherwise.
    pub async fn transaction<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce(PgTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = get(&self.pool).await?;
        // Until the transaction has ended, the connection must not be lent
        // again (see `recycle`).
        conn.in_transaction = true;
        on(&mut conn, async |c| c.execute("BEGIN").await.map(drop))
            .instrument(crate::statement::statement_span(
                crate::statement::POSTGRES,
                "BEGIN",
            ))
            .await?;
        let runtime = tokio::runtime::Handle::current();
        let outcome = tokio::task::block_in_place(|| {
            work(PgTx {
                conn: &mut conn,
                runtime: &runtime,
            })
        });
        let end = if outcome.is_ok() {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        on(&mut conn, async |c| c.execute(end).await.map(drop))
            .instrument(crate::statement::statement_span(
                crate::statement::POSTGRES,
                end,
            ))
            .await?;
        conn.in_transaction = false;
        outcome
    }

    /// Closes the pool: no connection is lent any more, the idle ones are
    /// closed cleanly, and those still lent out as they come back.
    pub async fn close(&self) {
        let idle = self.pool.retain(|_, _| false).removed;
        self.pool.close();
        for conn in idle {
            if let Err(err) = conn.raw.close().await {
                tracing::debug!(error = %err, "a connection did not close cleanly");
            }
        }
    }
}

/// A transaction's connection, driven from the transaction's thread.
pub struct PgTx<'t> {
    conn: &'t mut PgConn,
    runtime: &'t tokio::runtime::Handle,
}

impl PgTx<'_> {
    pub(crate) fn fetch_all<T: FromRow>(
        &mut self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<Vec<T>, StoreError> {
        let _span = crate::statement::statement_span(crate::statement::POSTGRES, statement.summary)
            .entered();
        self.runtime
            .block_on(fetch_all_on(self.conn, &statement.sql, params))
    }

    pub(crate) fn fetch_optional<T: FromRow>(
        &mut self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<Option<T>, StoreError> {
        let _span = crate::statement::statement_span(crate::statement::POSTGRES, statement.summary)
            .entered();
        self.runtime
            .block_on(fetch_optional_on(self.conn, &statement.sql, params))
    }

    pub(crate) fn execute(
        &mut self,
        statement: &Statement,
        params: &[&dyn Param],
    ) -> Result<u64, StoreError> {
        let _span = crate::statement::statement_span(crate::statement::POSTGRES, statement.summary)
            .entered();
        self.runtime
            .block_on(execute_on(self.conn, &statement.sql, params))
    }

    pub(crate) fn insert(
        &mut self,
        insert: &Insert,
        params: &[&dyn Param],
    ) -> Result<Option<i64>, StoreError> {
        let _span =
            crate::statement::statement_span(crate::statement::POSTGRES, insert.summary).entered();
        self.runtime.block_on(insert_on(self.conn, insert, params))
    }
}

/// Runs the migrations on a connection of `pool` (sqlx's migrator: it
/// takes PostgreSQL's advisory lock first, so replicas that start together
/// migrate once).
pub async fn migrate(pool: &PgPool, migrator: &sqlx::migrate::Migrator) -> Result<(), Migrate> {
    let mut conn = get(pool).await.map_err(Migrate::Connect)?;
    migrator.run(&mut conn.raw).await.map_err(Migrate::Failed)
}

/// Why the migrations did not run.
#[derive(Debug, thiserror::Error)]
pub enum Migrate {
    #[error("cannot take a connection for the migrations")]
    Connect(#[source] StoreError),
    #[error("the PostgreSQL migrations failed")]
    Failed(#[source] sqlx::migrate::MigrateError),
}

/// Whether `err` says the connection itself is broken: it is then closed,
/// never used again.
fn is_broken(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_connection_lost(&code)),
        _ => false,
    }
}

/// PostgreSQL's codes for a connection that is lost: connection exceptions
/// (08…), the server shutting down (57P01 admin, 57P02 crash, 57P03 cannot
/// connect now).
fn is_connection_lost(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// An error of sqlx's as the store's: `23505` a
/// [`StoreError::Duplicate`] with the constraint's name, `53100` a full
/// disk, a lost connection, too many connections (`53300`) or any I/O
/// failure [`StoreError::Unavailable`], anything else
/// [`StoreError::Failed`].
pub(crate) fn error(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            match &*code {
                "23505" => StoreError::Duplicate {
                    constraint: db.constraint().unwrap_or_default().to_owned(),
                },
                "53100" => StoreError::StorageFull(err.into()),
                "53300" => StoreError::Unavailable(err.into()),
                code if is_connection_lost(code) => StoreError::Unavailable(err.into()),
                _ => StoreError::Failed(err.into()),
            }
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err.into()),
        _ => StoreError::Failed(err.into()),
    }
}
