//! Metrics in the Prometheus text format, served by each service on its own
//! port at `GET /metrics` (not routed by the gateway).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `http_requests_total` | counter | `method`, `route` (the route template, `<unmatched>` otherwise), `status` |
//! | `http_request_duration_seconds` | histogram | `method`, `route`, `status` |
//! | `upstream_calls_total` | counter | `target` (the other service), `outcome` |
//! | `upstream_call_duration_seconds` | histogram | `target`, `outcome` |
//! | `upstream_retries_total` | counter | `target` |
//! | `upstream_circuit_breaker_state` | gauge | `target`: 0 closed (some instance's breaker is closed), 1 open (every one is), 2 half-open |
//! | `upstream_peer_circuit_breaker_state` | gauge | `target`, `peer` (an instance's base URL, from the configuration): that instance's breaker |
//! | `db_pool_connections` | gauge | `state`: `in_use`, `idle` (sampled at scrape time) |
//! | `db_pool_max_connections` | gauge | |
//! | `db_wal_bytes` | gauge | SQLite only: the write-ahead log's size (sampled at scrape time) |
//! | `db_wal_checkpoints_total` | counter | SQLite only: `outcome`: `complete`, `busy`, `error` |
//! | `db_wal_last_checkpoint_busy` | gauge | SQLite only: 1 when the last checkpoint could not finish |
//! | `db_wal_last_checkpoint_frames` | gauge | SQLite only: `state`: `log`, `checkpointed` |
//! | `db_storage_full_total` | counter | | writes refused because the database's disk (or its quota) is full |
//! | `build_info` | gauge, always 1 | `service`, `version` |
//!
//! Every label takes a bounded set of values, so the number of series stays
//! bounded whatever the traffic.

use std::{sync::OnceLock, time::Duration};

use axum::http::{Method, StatusCode};
use metrics::Label;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
pub const UPSTREAM_CALLS: &str = "upstream_calls_total";
pub const UPSTREAM_DURATION: &str = "upstream_call_duration_seconds";
pub const UPSTREAM_RETRIES: &str = "upstream_retries_total";
pub const BREAKER_STATE: &str = "upstream_circuit_breaker_state";
pub const PEER_BREAKER_STATE: &str = "upstream_peer_circuit_breaker_state";
pub const DB_POOL: &str = "db_pool_connections";
pub const DB_POOL_MAX: &str = "db_pool_max_connections";
pub const DB_WAL_BYTES: &str = "db_wal_bytes";
pub const DB_WAL_CHECKPOINTS: &str = "db_wal_checkpoints_total";
pub const DB_WAL_LAST_BUSY: &str = "db_wal_last_checkpoint_busy";
pub const DB_WAL_LAST_FRAMES: &str = "db_wal_last_checkpoint_frames";
pub const DB_STORAGE_FULL: &str = "db_storage_full_total";
pub const BUILD_INFO: &str = "build_info";

/// Latency buckets, in seconds: 1 ms to 10 s.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The label for requests that matched no route: keeps `route` bounded.
pub const UNMATCHED_ROUTE: &str = "<unmatched>";

/// How often histogram samples are folded into their buckets when nobody
/// scrapes (scrapes do it too), so that they never pile up.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder, once (several services built in one
/// test process share it). `None` when another recorder was installed first:
/// metrics then go there, and `/metrics` answers empty.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = match builder.set_buckets(&LATENCY_BUCKETS) {
                Ok(builder) => builder,
                Err(err) => {
                    tracing::warn!(error = %err, "latency buckets refused; using summaries");
                    PrometheusBuilder::new()
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(err) = metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %err, "a metrics recorder was already installed");
                return None;
            }
            describe();
            spawn_upkeep(handle.clone());
            Some(handle)
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template, method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request (to the response head)."
    );
    describe_counter!(
        UPSTREAM_CALLS,
        "Calls to another service, by target and outcome."
    );
    describe_histogram!(
        UPSTREAM_DURATION,
        Unit::Seconds,
        "Time of a call to another service, retries included."
    );
    describe_counter!(
        UPSTREAM_RETRIES,
        "Extra attempts of calls to another service."
    );
    describe_gauge!(
        BREAKER_STATE,
        "Circuit breaker of the calls to a target: 0 closed, 1 open, 2 half-open."
    );
    describe_gauge!(
        PEER_BREAKER_STATE,
        "Circuit breaker of the calls to one instance of a target: 0 closed, 1 open, 2 half-open."
    );
    describe_counter!(
        DB_STORAGE_FULL,
        "Writes refused because the database's disk is full (SQLite SQLITE_FULL, PostgreSQL 53100)."
    );
    describe_gauge!(DB_POOL, "Database pool connections, in use and idle.");
    describe_gauge!(DB_POOL_MAX, "The database pool's maximum size.");
    describe_gauge!(
        DB_WAL_BYTES,
        Unit::Bytes,
        "Size of SQLite's write-ahead log file."
    );
    describe_counter!(
        DB_WAL_CHECKPOINTS,
        "The service's own SQLite checkpoints (TRUNCATE), by outcome."
    );
    describe_gauge!(
        DB_WAL_LAST_BUSY,
        "1 when the last checkpoint was kept from finishing (by readers or a writer)."
    );
    describe_gauge!(
        DB_WAL_LAST_FRAMES,
        "The last checkpoint's frames in the log and checkpointed (0 and 0 once it truncated the log)."
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the labels name the service and its version."
    );
}

fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(err) = spawned {
        tracing::warn!(error = %err, "cannot start the metrics upkeep thread");
    }
}

/// `build_info{service, version} 1`.
pub fn set_build_info(service: &'static str, version: &'static str) {
    metrics::gauge!(BUILD_INFO, "service" => service, "version" => version).set(1.0);
}

/// One answered HTTP request.
pub fn record_request(method: &Method, route: &str, status: StatusCode, latency: Duration) {
    let labels = [
        Label::from_static_parts("method", method_label(method)),
        Label::new("route", route.to_owned()),
        status_label(status),
    ];
    metrics::counter!(HTTP_REQUESTS, labels.iter()).increment(1);
    metrics::histogram!(HTTP_DURATION, labels.iter()).record(latency.as_secs_f64());
}

/// Standard methods by name; anything else as `OTHER`, so a client cannot
/// make up new label values (or span names).
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// The `status` label; the statuses this API answers need no allocation.
fn status_label(status: StatusCode) -> Label {
    let code = match status.as_u16() {
        200 => "200",
        201 => "201",
        204 => "204",
        400 => "400",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        415 => "415",
        422 => "422",
        500 => "500",
        503 => "503",
        other => return Label::new("status", other.to_string()),
    };
    Label::from_static_parts("status", code)
}

/// The text of `GET /metrics`.
pub fn render() -> String {
    install().map(|handle| handle.render()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
    }

    #[test]
    fn every_status_has_its_own_label() {
        for code in [200, 201, 404, 418, 503, 599] {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(status_label(status).value(), code.to_string());
        }
    }
}
