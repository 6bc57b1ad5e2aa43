//! The circuit breakers of the calls to one target ([`failsafe`]), one per
//! instance of it, so that one dead instance does not stop the calls to the
//! healthy ones. A breaker opens after `failures` failures in a row, and
//! for `open_for` its instance gets no call; then one call at a time goes
//! through (half-open: the probe; the others still fail at once), its
//! success closes the breaker and its failure opens it again. Every change is logged and exported per instance as
//! `upstream_peer_circuit_breaker_state{target, peer}`, and for the target
//! as `upstream_circuit_breaker_state{target}`: closed while any instance's
//! breaker is closed, open when every one is open (calls then fail at once,
//! with the shortest time left as `Retry-After`).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU8, Ordering},
    },
    time::{Duration, Instant},
};

use failsafe::{
    StateMachine,
    backoff::{self, Constant},
    failure_policy::{self, ConsecutiveFailures},
};

use kit_observability::metrics as names;

/// The circuit breaker's state, as logged and exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

impl BreakerState {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Open,
            2 => Self::HalfOpen,
            _ => Self::Closed,
        }
    }

    /// How little it lets through: closed, then half-open, then open.
    fn closure(self) -> u8 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }
}

/// The breakers of one target, one per instance.
#[derive(Clone)]
pub struct Breakers {
    group: Arc<Group>,
    each: Arc<[Breaker]>,
}

impl std::fmt::Debug for Breakers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breakers")
            .field("target", &self.group.target)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Breakers {
    /// A closed breaker for each of `peers` (the instances' base URLs),
    /// whose gauges exist from now on.
    pub fn new(target: &'static str, peers: &[String], failures: u32, open_for: Duration) -> Self {
        let group = Arc::new(Group {
            target,
            states: peers
                .iter()
                .map(|_| AtomicU8::new(BreakerState::Closed as u8))
                .collect(),
            state: AtomicU8::new(BreakerState::Closed as u8),
        });
        group.export();
        let each = peers
            .iter()
            .enumerate()
            .map(|(index, peer)| {
                let events = Events(Arc::new(EventsInner {
                    group: group.clone(),
                    index,
                    gauge: metrics::gauge!(
                        names::PEER_BREAKER_STATE,
                        "target" => target,
                        "peer" => peer.clone()
                    ),
                    opened_at: Mutex::new(None),
                }));
                events.0.gauge.set(f64::from(BreakerState::Closed as u8));
                let policy =
                    failure_policy::consecutive_failures(failures, backoff::constant(open_for));
                let machine = failsafe::Config::new()
                    .failure_policy(policy)
                    .instrument(events.clone())
                    .build();
                Breaker {
                    machine,
                    events,
                    open_for,
                    probing: AtomicBool::new(false),
                }
            })
            .collect();
        Self { group, each }
    }

    /// The breaker of instance `index`.
    pub fn get(&self, index: usize) -> Option<&Breaker> {
        self.each.get(index)
    }

    /// The target's state: closed while any instance's breaker is closed.
    pub fn state(&self) -> BreakerState {
        BreakerState::from_u8(self.group.state.load(Ordering::SeqCst))
    }

    /// While every breaker is open: the shortest time one stays open.
    pub fn open_time_left(&self) -> Duration {
        self.each
            .iter()
            .map(Breaker::open_time_left)
            .min()
            .unwrap_or_default()
    }
}

/// The breaker of one instance.
pub struct Breaker {
    machine: StateMachine<ConsecutiveFailures<Constant>, Events>,
    events: Events,
    open_for: Duration,
    /// A half-open breaker's one call (the probe) is in flight.
    probing: AtomicBool,
}

/// The right to make one call to an instance: report its outcome with
/// [`succeeded`](Self::succeeded) or [`failed`](Self::failed). A permit
/// dropped without an outcome (the caller went away) counts for nothing.
pub struct Permit<'b> {
    breaker: &'b Breaker,
    probe: bool,
}

impl Permit<'_> {
    pub fn succeeded(self) {
        self.breaker.machine.on_success();
    }

    pub fn failed(self) {
        self.breaker.machine.on_error();
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.breaker.probing.store(false, Ordering::SeqCst);
        }
    }
}

impl Breaker {
    /// A call may go to the instance: always while the breaker is closed,
    /// never while it is open, and one call at a time while it is
    /// half-open (failsafe's state machine lets every call through then:
    /// with a hung instance, each would wait out its timeout).
    pub fn permit(&self) -> Option<Permit<'_>> {
        if !self.machine.is_call_permitted() {
            return None;
        }
        let probe = self.events.state() == BreakerState::HalfOpen;
        if probe && self.probing.swap(true, Ordering::SeqCst) {
            return None;
        }
        Some(Permit {
            breaker: self,
            probe,
        })
    }

    /// How long the breaker stays open from now (the `Retry-After`).
    pub fn open_time_left(&self) -> Duration {
        let opened_at = self.events.0.opened_at.lock().ok().and_then(|at| *at);
        opened_at.map_or(self.open_for, |at| {
            self.open_for.saturating_sub(at.elapsed())
        })
    }
}

/// The states of one target's breakers, and the target's own.
#[derive(Debug)]
struct Group {
    target: &'static str,
    states: Box<[AtomicU8]>,
    state: AtomicU8,
}

impl Group {
    /// Sets the target's state from its instances' (the least closed one
    /// wins), logging a change.
    fn update(&self) {
        let state = self
            .states
            .iter()
            .map(|s| BreakerState::from_u8(s.load(Ordering::SeqCst)))
            .min_by_key(|s| s.closure())
            .unwrap_or(BreakerState::Closed);
        let before = self.state.swap(state as u8, Ordering::SeqCst);
        self.export();
        if before != state as u8 {
            tracing::warn!(service = self.target, state = ?state, "circuit breaker changed state");
        }
    }

    fn export(&self) {
        let state = f64::from(self.state.load(Ordering::SeqCst));
        metrics::gauge!(names::BREAKER_STATE, "target" => self.target).set(state);
    }
}

/// Records one breaker's changes of state, and remembers when it opened,
/// for `Retry-After`. Shared between the state machine and the [`Breaker`].
#[derive(Clone, Debug)]
struct Events(Arc<EventsInner>);

#[derive(Debug)]
struct EventsInner {
    group: Arc<Group>,
    index: usize,
    gauge: metrics::Gauge,
    opened_at: Mutex<Option<Instant>>,
}

impl Events {
    fn state(&self) -> BreakerState {
        let inner = &self.0;
        inner
            .group
            .states
            .get(inner.index)
            .map_or(BreakerState::Closed, |s| {
                BreakerState::from_u8(s.load(Ordering::SeqCst))
            })
    }

    fn set(&self, state: BreakerState) {
        let inner = &self.0;
        if let Some(slot) = inner.group.states.get(inner.index) {
            slot.store(state as u8, Ordering::SeqCst);
        }
        inner.gauge.set(f64::from(state as u8));
        inner.group.update();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_closed_while_any_instance_is() {
        let peers = ["http://a:1".to_owned(), "http://b:2".to_owned()];
        let breakers = Breakers::new("test_target", &peers, 2, Duration::from_secs(60));
        let (a, b) = (breakers.get(0).unwrap(), breakers.get(1).unwrap());
        a.permit().unwrap().failed();
        a.permit().unwrap().failed();
        assert!(a.permit().is_none());
        assert!(b.permit().is_some());
        assert_eq!(breakers.state(), BreakerState::Closed);
        b.permit().unwrap().failed();
        b.permit().unwrap().failed();
        assert_eq!(breakers.state(), BreakerState::Open);
        assert!(breakers.open_time_left() > Duration::from_secs(50));
    }

    /// Half-open, one call goes through (the probe) and the others are
    /// refused until it ends; a probe that ends without an outcome lets
    /// the next call probe.
    #[test]
    fn a_half_open_breaker_lets_one_probe_through_at_a_time() {
        let peers = ["http://a:1".to_owned()];
        let breakers = Breakers::new("test_probe", &peers, 1, Duration::from_millis(20));
        let a = breakers.get(0).unwrap();
        a.permit().unwrap().failed();
        assert!(a.permit().is_none(), "open");
        std::thread::sleep(Duration::from_millis(30));
        let probe = a.permit().expect("half-open: the probe");
        assert_eq!(breakers.state(), BreakerState::HalfOpen);
        assert!(a.permit().is_none(), "a second call while the probe runs");
        drop(probe);
        let probe = a.permit().expect("the probe's slot is free again");
        probe.failed();
        assert!(a.permit().is_none(), "the failed probe opened it again");
        std::thread::sleep(Duration::from_millis(30));
        a.permit().expect("half-open again").succeeded();
        assert_eq!(breakers.state(), BreakerState::Closed);
        let (first, second) = (a.permit(), a.permit());
        assert!(first.is_some() && second.is_some(), "closed: every call");
    }
}
