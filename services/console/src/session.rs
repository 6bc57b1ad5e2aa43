//! The console's server-side stores: the sessions (a person's tokens) and
//! the sign-ins under way (a PKCE verifier and a state). Both are a
//! [`Store`]: a map from a random id (the cookie's value) to an entry,
//! bounded in time (each entry expires a fixed time after its creation)
//! and in size (past the cap, the oldest entry is dropped), so that a flood
//! of sign-in attempts cannot exhaust memory. In memory, per instance: a
//! restart signs everyone out (a shared store comes with replicas).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::{
    pages::{Notice, User},
    provider::Tokens,
};

/// A new random id: 32 bytes from the operating system, base64url (43
/// characters). Every entry gets a fresh one, so an id known before a
/// sign-in (fixation) never names the session after it.
pub fn random_id() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random numbers");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A person's session: who, what they may do, the tokens (never sent to
/// the browser), the CSRF token of its forms, and the message the next
/// page shows (the outcome of the last action).
#[derive(Clone, Debug)]
pub struct Session {
    pub sub: String,
    /// Whether the access token carries a write scope: a viewer's does not,
    /// and sees no write controls.
    pub can_write: bool,
    pub csrf: String,
    pub tokens: Arc<tokio::sync::Mutex<Tokens>>,
    pub notice: Arc<Mutex<Option<Notice>>>,
}

impl Session {
    pub fn new(sub: String, can_write: bool, csrf: String, tokens: Tokens) -> Self {
        Self {
            sub,
            can_write,
            csrf,
            tokens: Arc::new(tokio::sync::Mutex::new(tokens)),
            notice: Arc::new(Mutex::new(None)),
        }
    }
}

impl Session {
    /// The person as a page shows them.
    pub fn user(&self) -> User {
        User {
            name: self.sub.clone(),
            csrf: self.csrf.clone(),
            can_write: self.can_write,
        }
    }
}

struct Entry<T> {
    value: T,
    expires: Instant,
}

struct Inner<T> {
    entries: HashMap<String, Entry<T>>,
    /// The ids in order of creation, hence of expiry (ids of entries taken
    /// out meanwhile are skipped, and compacted away when they pile up).
    order: VecDeque<String>,
}

/// Entries keyed by random ids, each living `ttl` after its creation, at
/// most `cap` of them.
pub struct Store<T> {
    inner: Mutex<Inner<T>>,
    ttl: Duration,
    cap: usize,
}

impl<T: Clone> Store<T> {
    pub fn new(ttl: Duration, cap: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
            ttl,
            cap: cap.max(1),
        }
    }

    /// Keeps `value` under a new random id, which it returns.
    pub fn insert(&self, value: T) -> String {
        self.insert_at(value, Instant::now())
    }

    /// The value under `id`, unless it has expired.
    pub fn get(&self, id: &str) -> Option<T> {
        self.get_at(id, Instant::now())
    }

    /// Takes the value under `id` out (a single use), unless it has expired.
    pub fn take(&self, id: &str) -> Option<T> {
        self.take_at(id, Instant::now())
    }

    /// Replaces the value under `id` (a refreshed token), keeping its expiry.
    pub fn update(&self, id: &str, value: T) {
        let mut inner = self.lock();
        if let Some(entry) = inner.entries.get_mut(id) {
            entry.value = value;
        }
    }

    /// How many entries are kept, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert_at(&self, value: T, now: Instant) -> String {
        let id = random_id();
        let mut inner = self.lock();
        Self::drop_expired(&mut inner, now);
        while inner.entries.len() >= self.cap {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            inner.entries.remove(&oldest);
        }
        if inner.order.len() >= 2 * self.cap {
            let Inner { entries, order } = &mut *inner;
            order.retain(|id| entries.contains_key(id));
        }
        let expires = now + self.ttl;
        inner.entries.insert(id.clone(), Entry { value, expires });
        inner.order.push_back(id.clone());
        id
    }

    fn get_at(&self, id: &str, now: Instant) -> Option<T> {
        let inner = self.lock();
        let entry = inner.entries.get(id)?;
        (entry.expires > now).then(|| entry.value.clone())
    }

    fn take_at(&self, id: &str, now: Instant) -> Option<T> {
        let entry = self.lock().entries.remove(id)?;
        (entry.expires > now).then_some(entry.value)
    }

    fn drop_expired(inner: &mut Inner<T>, now: Instant) {
        while let Some(id) = inner.order.front() {
            match inner.entries.get(id) {
                Some(entry) if entry.expires > now => break,
                Some(_) => {
                    let id = inner.order.pop_front().unwrap_or_default();
                    inner.entries.remove(&id);
                }
                None => {
                    inner.order.pop_front();
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        // A panic while the lock was held leaves a map that is still whole.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn an_entry_expires_its_ttl_after_its_creation() {
        let store = Store::new(MINUTE, 10);
        let start = Instant::now();
        let id = store.insert_at("a", start);
        assert_eq!(store.get_at(&id, start + MINUTE / 2), Some("a"));
        assert_eq!(store.get_at(&id, start + MINUTE), None);
        assert_eq!(store.take_at(&id, start + 2 * MINUTE), None);
        // Dropped from memory by the next insertion.
        store.insert_at("b", start + 2 * MINUTE);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn past_the_cap_the_oldest_entry_is_dropped() {
        let store = Store::new(MINUTE, 3);
        let now = Instant::now();
        let ids: Vec<String> = (0..5).map(|i| store.insert_at(i, now)).collect();
        assert_eq!(store.len(), 3);
        assert_eq!(store.get_at(&ids[0], now), None);
        assert_eq!(store.get_at(&ids[1], now), None);
        assert_eq!(store.get_at(&ids[4], now), Some(4));
    }

    #[test]
    fn entries_taken_out_do_not_pile_up() {
        let store = Store::new(MINUTE, 2);
        let now = Instant::now();
        let kept = store.insert_at(0, now);
        for i in 1..100 {
            let id = store.insert_at(i, now);
            assert_eq!(store.take_at(&id, now), Some(i), "a single use");
            assert_eq!(store.take_at(&id, now), None);
        }
        assert_eq!(store.get_at(&kept, now), Some(0));
        assert!(store.lock().order.len() <= 4);
    }

    #[test]
    fn every_entry_gets_a_fresh_random_id() {
        let store = Store::new(MINUTE, 100);
        let ids: std::collections::HashSet<String> = (0..100).map(|i| store.insert(i)).collect();
        assert_eq!(ids.len(), 100);
        assert!(ids.iter().all(|id| id.len() == 43), "{ids:?}");
    }
}
