//! The service's own database, and nothing of HTTP: a store (a service's
//! `store.rs`) runs its statements through [`Db`] and returns its records,
//! or a [`StoreError`] that says in the store's terms what went wrong; the
//! HTTP layer (kit-http) turns each kind into an answer, once.
//!
//! - [`Db`]: SQLite ([`sqlite`], through rusqlite on the request's own
//!   thread) or PostgreSQL ([`postgres`], sqlx's driver on a deadpool
//!   pool), chosen once at start-up by the database's URL, with the
//!   service's migrations run on the way.
//! - [`statement`]: one SQL text for both backends, parameters bound
//!   through the drivers' own traits, one [`FromRow`] per record type.
//! - [`Tx`]: a transaction's statements, synchronous, so that nothing else
//!   can be awaited while it holds its locks.
//! - [`idempotency`]: the `Idempotency-Key`s stored beside the records.
//!
//! The backends are features (`sqlite`, `postgres`, both by default): a
//! service without a database depends on neither (kit-http uses this
//! crate's types only).

// Without a backend the methods of `Db` and `Tx` have nothing to run:
// their parameters go unused and their bodies end in an empty match.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(unused_variables, unreachable_code)
)]

mod db;
mod error;
pub mod idempotency;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod statement;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use db::Migrations;
pub use db::{Db, DbError, Tx, Written, description};
pub use error::{Source, StoreError};
pub use statement::{
    Builder, Column, FromRow, Insert, POSTGRES, Param, Row, SQLITE, Statement, Timestamp,
    bad_column, statement_span,
};
