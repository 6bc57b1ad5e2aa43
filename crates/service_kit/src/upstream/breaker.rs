//! The circuit breaker of the calls to one target ([`failsafe`]): after
//! `failures` failures in a row it opens, and for `open_for` every call
//! fails at once, with the time left as `Retry-After`; then calls go
//! through again (half-open), the first success closes it and the first
//! failure opens it again. Every change of state is logged and exported as
//! `upstream_circuit_breaker_state{target}`.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU8, Ordering},
    },
    time::{Duration, Instant},
};

use failsafe::{
    StateMachine,
    backoff::{self, Constant},
    failure_policy::{self, ConsecutiveFailures},
};

use crate::observability::metrics as names;

/// The circuit breaker's state, as logged and exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

/// One target's breaker; clones share it.
#[derive(Clone)]
pub struct Breaker {
    machine: StateMachine<ConsecutiveFailures<Constant>, Events>,
    events: Events,
    open_for: Duration,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("target", &self.events.0.target)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Breaker {
    /// A closed breaker for `target`, whose gauge exists from now on.
    pub fn new(target: &'static str, failures: u32, open_for: Duration) -> Self {
        let events = Events(Arc::new(EventsInner {
            target,
            state: AtomicU8::new(BreakerState::Closed as u8),
            opened_at: Mutex::new(None),
        }));
        events.export(BreakerState::Closed);
        let policy = failure_policy::consecutive_failures(failures, backoff::constant(open_for));
        let machine = failsafe::Config::new()
            .failure_policy(policy)
            .instrument(events.clone())
            .build();
        Self {
            machine,
            events,
            open_for,
        }
    }

    pub fn is_call_permitted(&self) -> bool {
        self.machine.is_call_permitted()
    }

    pub fn on_success(&self) {
        self.machine.on_success();
    }

    pub fn on_error(&self) {
        self.machine.on_error();
    }

    pub fn state(&self) -> BreakerState {
        match self.events.0.state.load(Ordering::SeqCst) {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }

    /// How long the breaker stays open from now (the `Retry-After`).
    pub fn open_time_left(&self) -> Duration {
        let opened_at = self.events.0.opened_at.lock().ok().and_then(|at| *at);
        opened_at.map_or(self.open_for, |at| {
            self.open_for.saturating_sub(at.elapsed())
        })
    }
}

/// Logs every change of the breaker's state and remembers when it opened,
/// for `Retry-After`. Shared between the state machine and the [`Breaker`].
#[derive(Clone, Debug)]
struct Events(Arc<EventsInner>);

#[derive(Debug)]
struct EventsInner {
    target: &'static str,
    state: AtomicU8,
    opened_at: Mutex<Option<Instant>>,
}

impl Events {
    fn set(&self, state: BreakerState) {
        let before = self.0.state.swap(state as u8, Ordering::SeqCst);
        self.export(state);
        if before != state as u8 {
            tracing::warn!(service = self.0.target, state = ?state, "circuit breaker changed state");
        }
    }

    fn export(&self, state: BreakerState) {
        metrics::gauge!(names::BREAKER_STATE, "target" => self.0.target)
            .set(f64::from(state as u8));
    }
}

impl failsafe::Instrument for Events {
    fn on_call_rejected(&self) {}

    fn on_open(&self) {
        if let Ok(mut opened_at) = self.0.opened_at.lock() {
            *opened_at = Some(Instant::now());
        }
        self.set(BreakerState::Open);
    }

    fn on_half_open(&self) {
        self.set(BreakerState::HalfOpen);
    }

    fn on_closed(&self) {
        self.set(BreakerState::Closed);
    }
}
