//! The sign-in attempts of each user name: after [`MAX_FAILURES`] failures
//! within [`WINDOW`], the name is locked for [`LOCK`] (counted from the
//! last failure), whatever the password, so that guessing one person's
//! password is slow. The same for a name that exists and one that does not
//! (a lock tells nothing about the name). Per instance, in memory: the
//! gateway's `limit_req` bounds each address's rate in front of it, and
//! with several replicas an attacker gets at most MAX_FAILURES per replica.
//!
//! The map is bounded ([`MAX_NAMES`]): when full, the names whose window
//! has passed are dropped, then those not locked; the locks are the last
//! kept, so that flooding it with names does not unlock one.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
pub const LOCK: Duration = Duration::from_secs(15 * 60);
pub const MAX_NAMES: usize = 10_000;

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    first: Instant,
    last: Instant,
}

impl Failures {
    fn locked(&self, now: Instant) -> bool {
        self.count >= MAX_FAILURES && now.duration_since(self.last) < LOCK
    }

    fn stale(&self, now: Instant) -> bool {
        !self.locked(now) && now.duration_since(self.first) >= WINDOW
    }
}

#[derive(Clone, Debug, Default)]
pub struct Attempts {
    by_name: Arc<Mutex<HashMap<String, Failures>>>,
}

impl Attempts {
    /// Whether `name` is locked now.
    pub fn is_locked(&self, name: &str) -> bool {
        let now = Instant::now();
        self.by_name
            .lock()
            .map(|map| map.get(name).is_some_and(|f| f.locked(now)))
            .unwrap_or(false)
    }

    /// Counts a failure of `name`.
    pub fn failed(&self, name: &str) {
        let now = Instant::now();
        let Ok(mut map) = self.by_name.lock() else {
            return;
        };
        if map.len() >= MAX_NAMES && !map.contains_key(name) {
            map.retain(|_, f| !f.stale(now));
            if map.len() >= MAX_NAMES {
                map.retain(|_, f| f.locked(now));
            }
            if map.len() >= MAX_NAMES {
                return;
            }
        }
        let entry = map.entry(name.to_owned()).or_insert(Failures {
            count: 0,
            first: now,
            last: now,
        });
        if entry.stale(now) {
            *entry = Failures {
                count: 0,
                first: now,
                last: now,
            };
        }
        entry.count += 1;
        entry.last = now;
    }

    /// Forgets the failures of `name` (it signed in).
    pub fn succeeded(&self, name: &str) {
        if let Ok(mut map) = self.by_name.lock() {
            map.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_locked_after_its_failures_and_freed_by_a_success() {
        let attempts = Attempts::default();
        for _ in 1..MAX_FAILURES {
            attempts.failed("ada");
        }
        assert!(!attempts.is_locked("ada"));
        attempts.failed("ada");
        assert!(attempts.is_locked("ada"));
        assert!(!attempts.is_locked("bob"));
        attempts.succeeded("ada");
        assert!(!attempts.is_locked("ada"));
    }

    #[test]
    fn a_full_map_keeps_its_locks() {
        let attempts = Attempts::default();
        for _ in 0..MAX_FAILURES {
            attempts.failed("ada");
        }
        for i in 0..MAX_NAMES + 10 {
            attempts.failed(&format!("name{i}"));
        }
        assert!(attempts.is_locked("ada"));
        let len = attempts.by_name.lock().map(|m| m.len()).unwrap_or(0);
        assert!(len <= MAX_NAMES, "{len}");
    }
}
