//! The service's own database: the pool, its transactions and the SQL that
//! runs the same on SQLite and PostgreSQL ([`db`]), and the
//! `Idempotency-Key`s stored beside the records ([`idempotency`]). Depends
//! on [`crate::http`] (a database error is an [`ApiError`](crate::ApiError))
//! and [`crate::observability`].

pub mod db;
pub mod idempotency;
