//! What every service of the system needs, so that each service holds only
//! its own domain, storage and routes.

pub mod conditional;
pub mod config;
pub mod correlation;
pub mod db;
pub mod extract;
pub mod idempotency;
pub mod openapi;
pub mod problem;
pub mod prometheus;
pub mod server;
pub mod telemetry;
pub mod upstream;
pub mod validate;

pub use problem::{ApiError, FieldError};

#[doc(hidden)]
pub use tracing as __tracing;
