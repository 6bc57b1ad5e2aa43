//! The metrics of the calls to one target: `upstream_calls_total` and
//! `upstream_call_duration_seconds` by `outcome`, and
//! `upstream_retries_total`.

use std::time::Duration;

use metrics::{Counter, Histogram};

use super::error::Outcome;
use kit_observability::metrics::{UPSTREAM_CALLS, UPSTREAM_DURATION, UPSTREAM_RETRIES};

/// The metrics of the calls to one target, registered once: a call only
/// adds to them (no label lookup per call), and every outcome has its
/// series from the start.
#[derive(Debug)]
pub struct UpstreamMetrics {
    /// One (calls, duration) pair per [`Outcome`], in [`Outcome::ALL`] order.
    by_outcome: Vec<(Counter, Histogram)>,
    retries: Counter,
}

impl UpstreamMetrics {
    pub fn new(target: &'static str) -> Self {
        let by_outcome = Outcome::ALL
            .iter()
            .map(|outcome| {
                let labels = [("target", target), ("outcome", outcome.as_str())];
                (
                    metrics::counter!(UPSTREAM_CALLS, &labels),
                    metrics::histogram!(UPSTREAM_DURATION, &labels),
                )
            })
            .collect();
        Self {
            by_outcome,
            retries: metrics::counter!(UPSTREAM_RETRIES, "target" => target),
        }
    }

    /// One logical call (its retries included).
    pub fn record(&self, outcome: Outcome, latency: Duration) {
        if let Some((calls, duration)) = self.by_outcome.get(outcome as usize) {
            calls.increment(1);
            duration.record(latency.as_secs_f64());
        }
    }

    pub fn record_retry(&self) {
        self.retries.increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_index_their_own_series() {
        for (i, outcome) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*outcome as usize, i, "{outcome:?}");
        }
    }
}
