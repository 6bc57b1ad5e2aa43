//! The instances the System page shows (`CONSOLE_INSTANCES`), and the
//! poller that reads each one's `/healthz`, `/readyz` and `/metrics` every
//! [`POLL_EVERY`], keeping its last minute of readings.
//!
//! It polls whether anyone looks or not: three small GETs per instance
//! every 3 s cost less than keeping track of who is looking, and the page
//! then has a minute of history the moment it is opened.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures::future::{BoxFuture, join_all};
use reqwest::StatusCode;

use crate::system::prometheus::{self, Sample};

/// How often every instance is read.
pub const POLL_EVERY: Duration = Duration::from_secs(3);
/// How long one read (and one name resolution) may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(1);
/// The readings kept per instance: those of the last minute.
pub const WINDOW: Duration = Duration::from_secs(60);
/// At most this many readings per instance, whatever the clock does.
const MAX_POINTS: usize = 32;
/// The largest `/metrics` answer read (the kit's is a few tens of KiB).
const MAX_METRICS_BYTES: usize = 4 << 20;
/// Instances listed at most, and addresses taken from one name at most.
pub const MAX_TARGETS: usize = 64;
const MAX_ADDRESSES: usize = 32;
/// The kit's own endpoints: the console's polls are not the traffic shown.
const OPERATIONS_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// One entry of `CONSOLE_INSTANCES`: `service=http://host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub service: String,
    pub host: String,
    pub port: u16,
}

impl Target {
    /// `host:port` (`[v6]:port`).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// `CONSOLE_INSTANCES`' value: comma-separated `service=http://host:port`
/// (port 80 when left out), each listed once; empty for none.
pub fn parse_targets(value: &str) -> Result<Vec<Target>, String> {
    let mut targets: Vec<Target> = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let target = parse_target(part)?;
        if targets.contains(&target) {
            return Err(format!("`{part}` is listed twice"));
        }
        targets.push(target);
    }
    if targets.len() > MAX_TARGETS {
        return Err(format!(
            "lists {} instances; at most {MAX_TARGETS}",
            targets.len()
        ));
    }
    Ok(targets)
}

fn parse_target(part: &str) -> Result<Target, String> {
    let shape = || format!("`{part}` must be service=http://host:port");
    let (service, url) = part.split_once('=').ok_or_else(shape)?;
    let service = service.trim();
    if service.is_empty()
        || !service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "`{part}`: the service's name is letters, digits, `_` and `-`"
        ));
    }
    let authority = url
        .trim()
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{part}`: the URL must start with http://"))?
        .trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!(
            "`{part}`: the URL is a base URL only, http://host:port"
        ));
    }
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 address without a port: `[::1]`.
        Some((_, tail)) if tail.ends_with(']') => (authority, 80),
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{part}`: `{port}` is no port"))?,
        ),
        None => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(shape());
    }
    Ok(Target {
        service: service.to_owned(),
        host: host.to_owned(),
        port,
    })
}

/// Finds a host's addresses: [`tokio::net::lookup_host`], or a stand-in.
pub type Resolver =
    Arc<dyn Fn(String, u16) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> + Send + Sync>;

/// The system's resolver (the hosts file, then DNS).
pub fn system_resolver() -> Resolver {
    Arc::new(|host: String, port: u16| {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    })
}

/// An instance's liveness: `/healthz` answered 200 or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Up,
    Down,
}

/// An instance's readiness: `/readyz` answered 200, answered something
/// else (503 while it drains or its database is away), or did not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotReady,
    Down,
}

/// What one `/metrics` holds that the page shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reading {
    /// `http_requests_total`, every series but the kit's own endpoints.
    pub requests: f64,
    /// `http_request_duration_seconds_bucket`, the same series summed per
    /// bound: (upper bound, cumulative count), by bound.
    pub buckets: Vec<(f64, f64)>,
    /// `upstream_peer_circuit_breaker_state`, by target then peer.
    pub breakers: Vec<Breaker>,
}

/// The breaker of this instance toward one instance of another service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breaker {
    /// The other service.
    pub target: String,
    /// Its instance's base URL, as configured.
    pub peer: String,
    pub state: BreakerState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
    Unknown,
}

impl BreakerState {
    /// The gauge's value: 0 closed, 1 open, 2 half-open (kit-upstream).
    fn from_gauge(value: f64) -> Self {
        match value {
            0.0 => Self::Closed,
            1.0 => Self::Open,
            2.0 => Self::HalfOpen,
            _ => Self::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half-open",
            Self::Unknown => "unknown",
        }
    }
}

impl Reading {
    /// The numbers of a `/metrics` text.
    pub fn from_text(text: &str) -> Self {
        Self::from_samples(&prometheus::parse(text))
    }

    fn from_samples(samples: &[Sample]) -> Self {
        let served = |s: &Sample| {
            !s.label("route")
                .is_some_and(|r| OPERATIONS_ROUTES.contains(&r))
        };
        let mut reading = Self::default();
        for sample in samples {
            match sample.name.as_str() {
                "http_requests_total" if served(sample) => reading.requests += sample.value,
                "http_request_duration_seconds_bucket" if served(sample) => {
                    let Some(bound) = sample.label("le").and_then(prometheus_bound) else {
                        continue;
                    };
                    match reading.buckets.iter_mut().find(|(b, _)| *b == bound) {
                        Some((_, count)) => *count += sample.value,
                        None => reading.buckets.push((bound, sample.value)),
                    }
                }
                "upstream_peer_circuit_breaker_state" => {
                    let (Some(target), Some(peer)) = (sample.label("target"), sample.label("peer"))
                    else {
                        continue;
                    };
                    reading.breakers.push(Breaker {
                        target: target.to_owned(),
                        peer: peer.to_owned(),
                        state: BreakerState::from_gauge(sample.value),
                    });
                }
                _ => {}
            }
        }
        reading.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        reading
            .breakers
            .sort_by(|a, b| (&a.target, &a.peer).cmp(&(&b.target, &b.peer)));
        reading
    }
}

fn prometheus_bound(le: &str) -> Option<f64> {
    match le {
        "+Inf" => Some(f64::INFINITY),
        _ => le.parse().ok(),
    }
}

/// A reading and when it was taken.
#[derive(Clone, Debug)]
pub struct Point {
    pub at: Instant,
    pub reading: Reading,
}

/// Requests per second and p99 (seconds) between the oldest and the newest
/// of `points` (oldest first). `None` until two points exist. A counter
/// that went down (the instance restarted) counts from zero, as
/// Prometheus' `rate` does; p99 is `None` when no request was answered.
pub fn rate_and_p99(points: &VecDeque<Point>) -> Option<(f64, Option<f64>)> {
    let (first, last) = (points.front()?, points.back()?);
    let elapsed = last.at.checked_duration_since(first.at)?.as_secs_f64();
    if points.len() < 2 || elapsed <= 0.0 {
        return None;
    }
    let (old, new) = (&first.reading, &last.reading);
    let requests = if new.requests >= old.requests {
        new.requests - old.requests
    } else {
        new.requests
    };
    let reset = new.buckets.iter().any(|(bound, count)| {
        old.buckets
            .iter()
            .find(|(b, _)| b == bound)
            .is_some_and(|(_, before)| count < before)
    });
    let deltas: Vec<(f64, f64)> = new
        .buckets
        .iter()
        .map(|&(bound, count)| {
            let before = old.buckets.iter().find(|(b, _)| *b == bound);
            match before {
                Some(&(_, before)) if !reset => (bound, count - before),
                _ => (bound, count),
            }
        })
        .collect();
    Some((
        requests / elapsed,
        prometheus::histogram_quantile(0.99, &deltas),
    ))
}

/// One instance as last polled.
#[derive(Clone, Debug)]
pub struct Instance {
    pub service: String,
    /// Its entry in `CONSOLE_INSTANCES`.
    target: usize,
    /// `address:port`, or the configured `host:port` when the name did
    /// not resolve.
    pub label: String,
    address: Option<SocketAddr>,
    pub health: Health,
    pub readiness: Readiness,
    /// The breakers of the last `/metrics` read.
    pub breakers: Vec<Breaker>,
    /// The last minute's readings, oldest first.
    pub points: VecDeque<Point>,
    /// When `/metrics` was last read.
    pub last_read: Option<SystemTime>,
    /// Why the last poll could not read it, if it could not.
    pub problem: Option<String>,
}

impl Instance {
    fn new(target: usize, service: &str, label: String) -> Self {
        Self {
            service: service.to_owned(),
            target,
            label,
            address: None,
            health: Health::Down,
            readiness: Readiness::Down,
            breakers: Vec::new(),
            points: VecDeque::new(),
            last_read: None,
            problem: None,
        }
    }

    /// Requests per second and p99 over the last minute.
    pub fn rate_and_p99(&self) -> Option<(f64, Option<f64>)> {
        rate_and_p99(&self.points)
    }

    fn forget_before(&mut self, now: Instant) {
        while self
            .points
            .front()
            .is_some_and(|p| now.saturating_duration_since(p.at) > WINDOW)
            || self.points.len() > MAX_POINTS
        {
            self.points.pop_front();
        }
    }
}

/// The instances' state, shared by the poller and the page.
#[derive(Clone)]
pub struct Monitor {
    inner: Arc<Inner>,
}

struct Inner {
    targets: Vec<Target>,
    http: reqwest::Client,
    resolve: Resolver,
    instances: Mutex<Vec<Instance>>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("targets", &self.inner.targets)
            .finish_non_exhaustive()
    }
}

impl Monitor {
    /// A monitor of `targets`, resolving their names with `resolve`.
    pub fn new(targets: Vec<Target>, resolve: Resolver) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(READ_TIMEOUT)
            .timeout(READ_TIMEOUT)
            .build()?;
        Ok(Self {
            inner: Arc::new(Inner {
                targets,
                http,
                resolve,
                instances: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Whether `CONSOLE_INSTANCES` names any instance.
    pub fn is_configured(&self) -> bool {
        !self.inner.targets.is_empty()
    }

    /// Polls every [`POLL_EVERY`] until the runtime stops (nothing when no
    /// instance is configured).
    pub fn spawn(&self) -> Option<tokio::task::JoinHandle<()>> {
        if !self.is_configured() {
            return None;
        }
        let monitor = self.clone();
        Some(tokio::spawn(async move {
            let mut every = tokio::time::interval(POLL_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                monitor.poll().await;
            }
        }))
    }

    /// The instances as last polled, in the order of `CONSOLE_INSTANCES`
    /// (a name's addresses in order), with readings older than a minute
    /// left out.
    pub fn instances(&self) -> Vec<Instance> {
        let now = Instant::now();
        let mut instances = self.lock().clone();
        for instance in &mut instances {
            instance.forget_before(now);
        }
        instances
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Instance>> {
        self.inner
            .instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// One round: resolves every name again, reads every address at once.
    pub async fn poll(&self) {
        let resolved = join_all(self.inner.targets.iter().map(|t| self.resolve(t))).await;
        let previous = self.lock().clone();
        let mut instances = Vec::new();
        for ((index, target), addresses) in self.inner.targets.iter().enumerate().zip(resolved) {
            let earlier = |label: &str| {
                previous
                    .iter()
                    .find(|i| i.target == index && i.label == label)
                    .cloned()
                    .unwrap_or_else(|| Instance::new(index, &target.service, label.to_owned()))
            };
            match addresses {
                Ok(addresses) => {
                    for address in addresses {
                        let instance = earlier(&address.to_string());
                        instances.push(Instance {
                            address: Some(address),
                            ..instance
                        });
                    }
                }
                Err(why) => {
                    // A name that does not resolve now: its instances as
                    // they were, read at their last addresses.
                    let kept: Vec<Instance> = previous
                        .iter()
                        .filter(|i| i.target == index && i.address.is_some())
                        .cloned()
                        .collect();
                    tracing::debug!(host = %target.host, error = %why, "cannot resolve an instance");
                    if kept.is_empty() {
                        let mut instance = earlier(&target.authority());
                        instance.problem = Some(UNRESOLVED.into());
                        instances.push(instance);
                    } else {
                        instances.extend(kept);
                    }
                }
            }
        }
        let reads = instances.iter().map(|instance| {
            let http = self.inner.http.clone();
            let address = instance.address;
            async move {
                match address {
                    Some(address) => Some(read(&http, address).await),
                    None => None,
                }
            }
        });
        let reads = join_all(reads).await;
        let now = Instant::now();
        for (instance, read) in instances.iter_mut().zip(reads) {
            instance.forget_before(now);
            let Some(read) = read else {
                instance.health = Health::Down;
                instance.readiness = Readiness::Down;
                continue;
            };
            instance.health = read.health;
            instance.readiness = read.readiness;
            instance.problem = read.problem;
            if let Some(reading) = read.reading {
                instance.breakers = reading.breakers.clone();
                instance.last_read = Some(SystemTime::now());
                instance.points.push_back(Point { at: now, reading });
                instance.forget_before(now);
            }
        }
        *self.lock() = instances;
    }

    async fn resolve(&self, target: &Target) -> Result<Vec<SocketAddr>, String> {
        let lookup = (self.inner.resolve)(target.host.clone(), target.port);
        match tokio::time::timeout(READ_TIMEOUT, lookup).await {
            Err(_) => Err("name resolution timed out".into()),
            Ok(Err(err)) => Err(err.to_string()),
            Ok(Ok(mut addresses)) => {
                addresses.sort();
                addresses.dedup();
                addresses.truncate(MAX_ADDRESSES);
                if addresses.is_empty() {
                    Err("the name has no address".into())
                } else {
                    Ok(addresses)
                }
            }
        }
    }
}

const UNRESOLVED: &str = "the name does not resolve";

/// What one poll of one instance found.
struct Read {
    health: Health,
    readiness: Readiness,
    reading: Option<Reading>,
    problem: Option<String>,
}

async fn read(http: &reqwest::Client, address: SocketAddr) -> Read {
    let get = |path: &'static str| http.get(format!("http://{address}{path}")).send();
    let (health, ready, metrics) = tokio::join!(get("/healthz"), get("/readyz"), get("/metrics"));
    let health = match health {
        Ok(answer) if answer.status() == StatusCode::OK => Health::Up,
        _ => Health::Down,
    };
    let readiness = match ready {
        Ok(answer) if answer.status() == StatusCode::OK => Readiness::Ready,
        Ok(_) => Readiness::NotReady,
        Err(_) => Readiness::Down,
    };
    let (reading, problem) = match metrics {
        Ok(answer) if answer.status() == StatusCode::OK => match body(answer).await {
            Ok(text) => (Some(Reading::from_text(&text)), None),
            Err(why) => (None, Some(why)),
        },
        Ok(answer) => (None, Some(format!("/metrics answered {}", answer.status()))),
        Err(err) => (None, Some(describe(&err))),
    };
    Read {
        health,
        readiness,
        reading,
        problem,
    }
}

/// An answer's text, [`MAX_METRICS_BYTES`] at most.
async fn body(mut answer: reqwest::Response) -> Result<String, String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| describe(&e))? {
        if bytes.len() + chunk.len() > MAX_METRICS_BYTES {
            return Err("/metrics is too large".into());
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| "/metrics is not UTF-8".into())
}

fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "no answer within 1 s".into()
    } else if err.is_connect() {
        "connection refused".into()
    } else {
        "the connection failed".into()
    }
}

/// `time` as `hh:mm:ss UTC`.
pub fn clock(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(service: &str, host: &str, port: u16) -> Target {
        Target {
            service: service.into(),
            host: host.into(),
            port,
        }
    }

    #[test]
    fn instances_are_service_equals_base_url() {
        let targets = parse_targets(
            " client_service=http://client_service:8000, order_service=http://127.0.0.1:8001/,\
             auth=http://[::1]:8020,web=http://web",
        )
        .unwrap();
        assert_eq!(
            targets,
            vec![
                target("client_service", "client_service", 8000),
                target("order_service", "127.0.0.1", 8001),
                target("auth", "::1", 8020),
                target("web", "web", 80),
            ]
        );
        assert_eq!(parse_targets("").unwrap(), vec![]);
        assert_eq!(parse_targets(" , ").unwrap(), vec![]);
    }

    #[test]
    fn bad_instances_are_named() {
        for (value, says) in [
            ("http://a:1", "service=http://host:port"),
            ("a=https://a:1", "must start with http://"),
            ("a=http://a:1/x", "base URL only"),
            ("a=http://u@a:1", "base URL only"),
            ("a=http://a:x", "no port"),
            ("a=http://a:0", "no port"),
            ("a b=http://a:1", "service's name"),
            ("a=http://", "base URL only"),
            ("a=http://a:1,a=http://a:1", "listed twice"),
        ] {
            let err = parse_targets(value).unwrap_err();
            assert!(err.contains(says), "{value}: {err}");
        }
    }

    const METRICS: &str = r#"# TYPE http_requests_total counter
http_requests_total{method="GET",route="/client/{id}",status="200"} 90
http_requests_total{method="POST",route="/client",status="201"} 10
http_requests_total{method="GET",route="/metrics",status="200"} 500
http_request_duration_seconds_bucket{method="GET",route="/client/{id}",status="200",le="0.01"} 80
http_request_duration_seconds_bucket{method="GET",route="/client/{id}",status="200",le="0.1"} 90
http_request_duration_seconds_bucket{method="GET",route="/client/{id}",status="200",le="+Inf"} 90
http_request_duration_seconds_bucket{method="POST",route="/client",status="201",le="0.01"} 0
http_request_duration_seconds_bucket{method="POST",route="/client",status="201",le="0.1"} 10
http_request_duration_seconds_bucket{method="POST",route="/client",status="201",le="+Inf"} 10
http_request_duration_seconds_bucket{method="GET",route="/metrics",status="200",le="0.01"} 500
http_request_duration_seconds_bucket{method="GET",route="/metrics",status="200",le="0.1"} 500
http_request_duration_seconds_bucket{method="GET",route="/metrics",status="200",le="+Inf"} 500
upstream_circuit_breaker_state{target="order_service"} 0
upstream_peer_circuit_breaker_state{target="order_service",peer="http://10.0.0.9:8001"} 1
upstream_peer_circuit_breaker_state{target="order_service",peer="http://10.0.0.8:8001"} 0
"#;

    #[test]
    fn a_reading_leaves_out_the_kits_own_endpoints() {
        let reading = Reading::from_text(METRICS);
        assert_eq!(reading.requests, 100.0);
        assert_eq!(
            reading.buckets,
            vec![(0.01, 80.0), (0.1, 100.0), (f64::INFINITY, 100.0)]
        );
        assert_eq!(
            reading.breakers,
            vec![
                Breaker {
                    target: "order_service".into(),
                    peer: "http://10.0.0.8:8001".into(),
                    state: BreakerState::Closed,
                },
                Breaker {
                    target: "order_service".into(),
                    peer: "http://10.0.0.9:8001".into(),
                    state: BreakerState::Open,
                },
            ]
        );
    }

    fn point(at: Instant, requests: f64, buckets: &[(f64, f64)]) -> Point {
        Point {
            at,
            reading: Reading {
                requests,
                buckets: buckets.to_vec(),
                breakers: vec![],
            },
        }
    }

    const INF: f64 = f64::INFINITY;

    #[test]
    fn rate_and_p99_come_from_the_oldest_and_newest_points() {
        let t0 = Instant::now();
        let mut points = VecDeque::new();
        points.push_back(point(
            t0,
            1000.0,
            &[(0.01, 900.0), (0.1, 1000.0), (INF, 1000.0)],
        ));
        assert_eq!(rate_and_p99(&points), None, "one point is no rate");
        // In between: ignored.
        points.push_back(point(t0 + Duration::from_secs(30), 1.0, &[(INF, 1.0)]));
        // 60 s later, 600 more requests: 10/s; 590 of them ≤ 100 ms, so
        // rank 594 falls in +Inf, whose answer is the largest finite
        // bound, 100 ms.
        points.push_back(point(
            t0 + Duration::from_secs(60),
            1600.0,
            &[(0.01, 1400.0), (0.1, 1590.0), (INF, 1600.0)],
        ));
        let (rate, p99) = rate_and_p99(&points).unwrap();
        assert!((rate - 10.0).abs() < 1e-9, "{rate}");
        assert_eq!(p99, Some(0.1));
        // 600 more of which 300 ≤ 10 ms and 300 in (10, 100] ms: rank
        // 594 is 294 into the second bucket: 10 + 90 × 294/300 = 98.2 ms.
        points.pop_back();
        points.push_back(point(
            t0 + Duration::from_secs(60),
            1600.0,
            &[(0.01, 1200.0), (0.1, 1600.0), (INF, 1600.0)],
        ));
        let (_, p99) = rate_and_p99(&points).unwrap();
        let p99 = p99.unwrap();
        assert!((p99 - 0.0982).abs() < 1e-12, "{p99}");
    }

    #[test]
    fn no_p99_without_requests_and_a_restart_counts_from_zero() {
        let t0 = Instant::now();
        let idle = VecDeque::from([
            point(t0, 5.0, &[(0.1, 5.0), (INF, 5.0)]),
            point(t0 + Duration::from_secs(3), 5.0, &[(0.1, 5.0), (INF, 5.0)]),
        ]);
        assert_eq!(rate_and_p99(&idle), Some((0.0, None)));
        // The instance restarted: its counters began again from 0.
        let restarted = VecDeque::from([
            point(t0, 500.0, &[(0.1, 500.0), (INF, 500.0)]),
            point(
                t0 + Duration::from_secs(10),
                20.0,
                &[(0.1, 10.0), (INF, 20.0)],
            ),
        ]);
        let (rate, p99) = rate_and_p99(&restarted).unwrap();
        assert!((rate - 2.0).abs() < 1e-9, "{rate}");
        assert_eq!(p99, Some(0.1));
    }

    #[test]
    fn the_clock_is_utc() {
        let t = UNIX_EPOCH + Duration::from_secs(86_400 * 3 + 3600 * 13 + 60 * 4 + 5);
        assert_eq!(clock(t), "13:04:05 UTC");
    }

    /// A resolver that answers from a table.
    fn table(entries: Vec<(&'static str, Vec<SocketAddr>)>) -> Resolver {
        Arc::new(move |host: String, _port: u16| {
            let found = entries
                .iter()
                .find(|(h, _)| *h == host)
                .map(|(_, a)| a.clone());
            Box::pin(async move {
                found.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "unknown"))
            })
        })
    }

    #[tokio::test]
    async fn a_name_of_several_addresses_is_one_instance_each_resolved_at_every_poll() {
        // Nothing listens on port 9 (discard): every read fails fast.
        let a: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let b: SocketAddr = "127.0.0.2:9".parse().unwrap();
        let names = Arc::new(Mutex::new(vec![b, a, a]));
        let shared = names.clone();
        let resolve: Resolver = Arc::new(move |_host, _port| {
            let found = shared.lock().unwrap().clone();
            Box::pin(async move { Ok(found) })
        });
        let monitor = Monitor::new(vec![target("client_service", "replicas", 9)], resolve).unwrap();
        monitor.poll().await;
        let labels: Vec<String> = monitor.instances().into_iter().map(|i| i.label).collect();
        assert_eq!(labels, ["127.0.0.1:9", "127.0.0.2:9"]);
        assert!(monitor.instances().iter().all(|i| i.health == Health::Down));
        // The name now has one address: the other instance is gone.
        *names.lock().unwrap() = vec![b];
        monitor.poll().await;
        let labels: Vec<String> = monitor.instances().into_iter().map(|i| i.label).collect();
        assert_eq!(labels, ["127.0.0.2:9"]);
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_one_instance_down() {
        let monitor = Monitor::new(
            vec![target("order_service", "nowhere.invalid", 8001)],
            table(vec![]),
        )
        .unwrap();
        monitor.poll().await;
        let instances = monitor.instances();
        assert_eq!(instances.len(), 1);
        assert_eq!(instances[0].label, "nowhere.invalid:8001");
        assert_eq!(instances[0].health, Health::Down);
        assert_eq!(instances[0].readiness, Readiness::Down);
        assert_eq!(instances[0].problem.as_deref(), Some(UNRESOLVED));
    }

    #[tokio::test]
    async fn the_system_resolver_finds_localhost() {
        let addresses = system_resolver()("localhost".into(), 8000).await.unwrap();
        assert!(!addresses.is_empty());
        assert!(
            addresses
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 8000)
        );
    }
}
