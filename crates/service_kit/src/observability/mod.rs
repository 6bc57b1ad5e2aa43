//! What shows a running service from outside: which request a line or a
//! span belongs to ([`context`]), log lines and traces ([`telemetry`]; a
//! JSON line is [`json_lines`], written out by [`log_writer`]), and metrics
//! ([`metrics`]). Depends only
//! on [`crate::config`].

pub mod context;
pub mod json_lines;
pub mod log_writer;
pub mod metrics;
pub mod telemetry;
