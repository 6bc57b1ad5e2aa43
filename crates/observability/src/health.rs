//! What a service depends on to serve, as a trait ([`Dependency`]): the
//! server answers `/readyz` from it, samples its gauges before each
//! `/metrics` and closes it last on shutdown, without knowing what it is
//! (kit-data's `Db` is one).

use std::{future::Future, pin::Pin};

/// A check in progress: `Err` says, for the 503's detail, why not ready.
pub type Checking<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Closing in progress.
pub type Closing<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A dependency the service is not ready without.
pub trait Dependency: Send + Sync {
    /// Whether it answers now (readiness).
    fn check(&self) -> Checking<'_>;

    /// Sets its gauges to their state now (before each scrape of
    /// `/metrics`).
    fn sample_metrics(&self) {}

    /// Closes it, once the service has stopped serving.
    fn close(&self) -> Closing<'_> {
        Box::pin(async {})
    }
}
