//! What shows a running service from outside: which request a line or a
//! span belongs to ([`context`]), log lines and traces ([`telemetry`]; a
//! JSON line is [`json_lines`], written out by [`log_writer`]), and metrics
//! ([`metrics`]), each request's span, line and metrics ([`request`]), and
//! what a service depends on to serve ([`health`]). Depends
//! only on kit-config.

pub mod context;
pub mod health;
pub mod json_lines;
pub mod log_writer;
pub mod metrics;
pub mod request;
pub mod telemetry;
