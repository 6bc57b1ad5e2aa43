//! PostgreSQL's connection pool behind [`Db`](super::Db): `deadpool`
//! holding sqlx connections. (SQLite needs none of this: see
//! [`super::sqlite`].)
//!
//! Why not sqlx's own `Pool`: it sends every connection a `ping` on its way
//! back to the pool, and (with `test_before_acquire`, its default) another
//! on its way out. A one-statement request then makes three round trips to
//! the database where one is the work (measured: `GET /client/{id}` on
//! PostgreSQL cost 290 µs of CPU time with them, see
//! docs/src/performance/profile.md).
//!
//! Here a connection goes back to the pool as it is, and comes out as it
//! went in. What the pings were for is handled where it arises:
//!
//! - a statement that failed because the connection broke (the server went
//!   away, I/O error) marks it broken ([`settle`]); the pool closes it
//!   instead of lending it again, and the next request opens a fresh one;
//! - a transaction dropped without `commit` (an error, or the request was
//!   cancelled) is rolled back at once, on a task of its own, before its
//!   connection goes back ([`Transaction`]);
//! - a statement cancelled half-way leaves its answer unread, which sqlx
//!   reads and discards before the connection's next statement.

use std::{
    ops::{Deref, DerefMut},
    time::Duration,
};

use deadpool::managed::{self, Metrics, Object, PoolError, RecycleError, RecycleResult};
use sqlx::{ConnectOptions, Connection, Database, TransactionManager};

/// A connection of a [`Pool`]: sqlx's, and whether it broke.
#[derive(Debug)]
pub struct Conn<C> {
    raw: C,
    broken: bool,
}

impl<C> Deref for Conn<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.raw
    }
}

impl<C> DerefMut for Conn<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.raw
    }
}

/// Makes the connections of a pool from sqlx's options for one database.
#[derive(Debug)]
pub struct Connector<O>(pub O);

impl<O> managed::Manager for Connector<O>
where
    O: ConnectOptions,
    O::Connection: Send + Sized,
{
    type Type = Conn<O::Connection>;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<Self::Type, sqlx::Error> {
        let raw = self.0.connect().await?;
        Ok(Conn { raw, broken: false })
    }

    /// A connection is used again unless it broke (see [`settle`]): then
    /// the pool drops it (closing it) and makes a new one.
    async fn recycle(&self, conn: &mut Self::Type, _: &Metrics) -> RecycleResult<sqlx::Error> {
        if conn.broken {
            return Err(RecycleError::message("the connection broke"));
        }
        Ok(())
    }
}

/// A pool of connections made from the options `O`.
pub type Pool<O> = managed::Pool<Connector<O>>;
/// A connection taken from a [`Pool`]; back to it when dropped.
pub type Pooled<O> = Object<Connector<O>>;

/// A pool of at most `max` connections, made when first needed. A request
/// waits at most `acquire_timeout` for a free one (then it fails with
/// sqlx's `PoolTimedOut`), and as long again for a new one to connect.
pub fn new<O>(options: O, max: usize, acquire_timeout: Duration) -> Pool<O>
where
    O: ConnectOptions,
    O::Connection: Send + Sized,
{
    let built = managed::Pool::builder(Connector(options))
        .max_size(max)
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

/// A connection from `pool`, with deadpool's errors as sqlx's.
pub async fn get<O>(pool: &Pool<O>) -> Result<Pooled<O>, sqlx::Error>
where
    O: ConnectOptions,
    O::Connection: Send + Sized,
{
    pool.get().await.map_err(|err| match err {
        PoolError::Backend(err) => err,
        PoolError::Timeout(_) => sqlx::Error::PoolTimedOut,
        PoolError::Closed | PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => {
            sqlx::Error::PoolClosed
        }
    })
}

/// Whether `err` says the connection itself is broken: it is then closed,
/// never used again.
pub fn is_broken(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL: connection exceptions (08…), the server shutting down
        // (57P01 admin, 57P02 crash, 57P03 cannot connect now).
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// Passes on `result`, the result of a statement on `conn`, marking `conn`
/// broken when that result says so: the pool then closes it instead of
/// lending it again.
pub fn settle<C, T>(conn: &mut Conn<C>, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
    if let Err(err) = &result
        && is_broken(err)
    {
        conn.broken = true;
    }
    result
}

type Db<O> = <<O as ConnectOptions>::Connection as Connection>::Database;
type Manager<O> = <Db<O> as Database>::TransactionManager;

/// A transaction on a pooled connection: sqlx's `Transaction`, for a
/// connection of our pool rather than of sqlx's (it drives the same
/// `TransactionManager`). Dropped without [`commit`](Self::commit) (the
/// request failed or was cancelled), it rolls back before its connection
/// goes back to the pool: on a task of its own, as a destructor cannot wait.
/// So no connection waits in the pool inside a transaction, holding its
/// locks.
pub struct Transaction<O>
where
    O: ConnectOptions,
    O::Connection: Send + Sized,
{
    /// `None` once committed.
    conn: Option<Pooled<O>>,
}

impl<O> Transaction<O>
where
    O: ConnectOptions,
    O::Connection: Send + Sized,
{
    /// `BEGIN` on a connection from `pool`.
    pub async fn begin(pool: &Pool<O>) -> Result<Self, sqlx::Error> {
        let mut conn = get(pool).await?;
        let begun = Manager::<O>::begin(&mut conn, None).await;
        settle(&mut conn, begun)?;
        Ok(Self { conn: Some(conn) })
    }

    /// `COMMIT`.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        let conn = self.conn()?;
        let committed = Manager::<O>::commit(conn).await;
        settle(conn, committed)?;
        self.conn = None;
        Ok(())
    }

    /// The transaction's connection, to run statements on.
    pub fn conn(&mut self) -> Result<&mut Conn<O::Connection>, sqlx::Error> {
        self.conn.as_deref_mut().ok_or(sqlx::Error::PoolClosed)
    }

    /// Passes on `result`, a statement's in this transaction (see [`settle`]).
    pub fn settle<T>(&mut self, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        match self.conn.as_deref_mut() {
            Some(conn) => settle(conn, result),
            None => result,
        }
    }
}

impl<O> Drop for Transaction<O>
where
    O: ConnectOptions,
    O::Connection: Send + Sized,
{
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if conn.broken {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let rolled_back = Manager::<O>::rollback(&mut conn).await;
                    if let Err(err) = settle(&mut conn, rolled_back) {
                        tracing::warn!(error = %err, "a dropped transaction could not roll back");
                    }
                });
            }
            // No runtime (shutting down): queue the ROLLBACK, which sqlx
            // sends before the connection's next statement.
            Err(_) => Manager::<O>::start_rollback(&mut conn),
        }
    }
}

/// Closes `pool`: no connection is lent any more, the idle ones are closed
/// cleanly (on SQLite, the last connection to close checkpoints the log and
/// removes it), and those still lent out are closed as they come back.
pub async fn close<O>(pool: &Pool<O>)
where
    O: ConnectOptions,
    O::Connection: Send + Sized,
{
    let idle = pool.retain(|_, _| false).removed;
    pool.close();
    for conn in idle {
        if let Err(err) = conn.raw.close().await {
            tracing::debug!(error = %err, "a connection did not close cleanly");
        }
    }
}
