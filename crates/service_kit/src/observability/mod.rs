//! What shows a running service from outside: which request a line or a
//! span belongs to ([`context`]), log lines and traces ([`telemetry`]), and
//! metrics ([`metrics`]). Depends only on [`crate::config`].

pub mod context;
pub mod metrics;
pub mod telemetry;
