//! The sign-in attempts of each user name: after [`MAX_FAILURES`] failures
//! within [`WINDOW`], the name is locked for [`LOCK`] (counted from the
//! last failure), whatever the password, so that guessing one person's
//! password is slow. The same for a name that exists and one that does not
//! (a lock tells nothing about the name). Per instance, in memory: the
//! gateway's `limit_req` bounds each address's rate in front of it, and
//! with several replicas an attacker gets at most MAX_FAILURES per replica.
//!
//! An attempt counts as a failure from the moment it [begins](Attempts::begin),
//! before its password is checked, and is forgotten when it
//! [succeeds](Attempts::succeeded): attempts sent at the same time cannot
//! check more than MAX_FAILURES passwords between two locks.
//!
//! The map is bounded ([`MAX_NAMES`]): when full, the names whose window
//! has passed are dropped, then the oldest entry (an unlocked one first),
//! so that a new name is always counted.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
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

/// A sign-in refused: the name is locked for `left` more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Locked {
    pub left: Duration,
}

impl Locked {
    /// `left` in whole seconds, rounded up and at least 1 (`Retry-After`).
    pub fn seconds_left(self) -> u64 {
        let rounded_up = self.left.as_secs() + u64::from(self.left.subsec_nanos() > 0);
        rounded_up.max(1)
    }
}

#[derive(Clone, Debug)]
pub struct Attempts {
    by_name: Arc<Mutex<HashMap<String, Failures>>>,
    capacity: usize,
}

impl Default for Attempts {
    fn default() -> Self {
        Self::with_capacity(MAX_NAMES)
    }
}

impl Attempts {
    /// Counts the attempts of at most `capacity` names (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            by_name: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    /// The map, even if a thread panicked while holding it: the counts stay
    /// valid, and a lock must not be lost to a panic.
    fn map(&self) -> MutexGuard<'_, HashMap<String, Failures>> {
        self.by_name.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `name` is locked now.
    pub fn is_locked(&self, name: &str) -> bool {
        let now = Instant::now();
        self.map().get(name).is_some_and(|f| f.locked(now))
    }

    /// Begins an attempt of `name`: refused while the name is locked,
    /// otherwise counted as a failure until [`Attempts::succeeded`].
    pub fn begin(&self, name: &str) -> Result<(), Locked> {
        let now = Instant::now();
        let mut map = self.map();
        if let Some(failures) = map.get(name)
            && failures.locked(now)
        {
            return Err(Locked {
                left: LOCK.saturating_sub(now.duration_since(failures.last)),
            });
        }
        if !map.contains_key(name) {
            make_room(&mut map, self.capacity, now);
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
        Ok(())
    }

    /// Forgets the failures of `name` (it signed in).
    pub fn succeeded(&self, name: &str) {
        self.map().remove(name);
    }
}

/// Frees a place in a map of `capacity` names: drops the stale entries,
/// then, if it is still full, the oldest (by its last failure) of those
/// not locked, or if every one is locked, the one whose lock ends first.
fn make_room(map: &mut HashMap<String, Failures>, capacity: usize, now: Instant) {
    if map.len() < capacity {
        return;
    }
    map.retain(|_, f| !f.stale(now));
    while map.len() >= capacity {
        let oldest = map
            .iter()
            .min_by_key(|(_, f)| (f.locked(now), f.last))
            .map(|(name, _)| name.clone());
        let Some(oldest) = oldest else {
            return;
        };
        map.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `times` failures of `name`, the last one a little later than any
    /// before (so that the oldest entry is well defined).
    fn fail(attempts: &Attempts, name: &str, times: u32) {
        std::thread::sleep(Duration::from_millis(2));
        for _ in 0..times {
            attempts.begin(name).expect("not locked yet");
        }
    }

    #[test]
    fn a_name_is_locked_after_its_failures_and_freed_by_a_success() {
        let attempts = Attempts::default();
        fail(&attempts, "ada", MAX_FAILURES - 1);
        assert!(!attempts.is_locked("ada"));
        fail(&attempts, "ada", 1);
        assert!(attempts.is_locked("ada"));
        assert!(!attempts.is_locked("bob"));
        attempts.succeeded("ada");
        assert!(!attempts.is_locked("ada"));
        assert_eq!(attempts.begin("ada"), Ok(()));
    }

    #[test]
    fn an_attempt_counts_before_its_password_is_checked() {
        let attempts = Attempts::default();
        let begun = (0..2 * MAX_FAILURES)
            .filter(|_| attempts.begin("ada").is_ok())
            .count();
        assert_eq!(begun, MAX_FAILURES as usize);
    }

    #[test]
    fn a_locked_name_says_how_long_it_stays_locked() {
        let attempts = Attempts::default();
        fail(&attempts, "ada", MAX_FAILURES);
        let locked = attempts.begin("ada").expect_err("locked");
        assert!(locked.left <= LOCK && locked.left > LOCK - Duration::from_secs(60));
        assert_eq!(locked.seconds_left(), LOCK.as_secs());
        let almost_over = Locked {
            left: Duration::from_millis(1),
        };
        assert_eq!(almost_over.seconds_left(), 1);
        assert_eq!(
            Locked {
                left: Duration::ZERO
            }
            .seconds_left(),
            1
        );
    }

    #[test]
    fn a_full_map_drops_an_unlocked_name_first_and_keeps_its_locks() {
        let attempts = Attempts::with_capacity(3);
        fail(&attempts, "ada", MAX_FAILURES);
        fail(&attempts, "bob", 1);
        fail(&attempts, "cy", 1);
        fail(&attempts, "dan", 1);
        assert!(attempts.is_locked("ada"));
        let map = attempts.map();
        assert_eq!(map.len(), 3);
        assert!(!map.contains_key("bob"), "not the oldest unlocked dropped");
    }

    #[test]
    fn a_map_full_of_locks_still_counts_a_new_name() {
        let attempts = Attempts::with_capacity(3);
        for name in ["ada", "bob", "cy"] {
            fail(&attempts, name, MAX_FAILURES);
        }
        fail(&attempts, "dan", MAX_FAILURES);
        assert!(attempts.is_locked("dan"), "a new name was not counted");
        assert!(!attempts.is_locked("ada"), "not the oldest lock dropped");
        assert!(attempts.is_locked("cy"));
        assert_eq!(attempts.map().len(), 3);
    }
}
