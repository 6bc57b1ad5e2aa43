//! The harness of the tests that start the real binaries: the end-to-end
//! tests (tests/e2e) and the contract tests' providers (tests/contracts).
//! One module per concern, everything re-exported here:
//!
//! - [`ports`]: free ports on 127.0.0.1, never the same one twice in a
//!   test process;
//! - [`binaries`]: the workspace, and the service binaries built from the
//!   code under test before the first one starts (or `E2E_BIN_DIR`'s);
//! - [`process`]: a started command, its log, its signals, its end;
//! - [`service`]: one service binary on its port, ready when `/readyz` is;
//! - [`database`]: the services' databases (`E2E_BACKEND`), and a
//!   PostgreSQL cluster of a test's own;
//! - [`auth`]: `auth_service init`'s keys and clients, tokens;
//! - [`http`]: a response read whole, a raw HTTP/1.1 client;
//! - [`peers`]: in-process servers beside the system: a delaying proxy, a
//!   stand-in OpenTelemetry collector;
//! - [`load`]: steady reads while a test breaks something;
//! - [`prometheus`]: the services' metrics, read;
//! - [`stack`]: the whole system behind nginx, per test.

pub mod auth;
pub mod binaries;
pub mod database;
pub mod http;
pub mod load;
pub mod peers;
pub mod ports;
pub mod process;
pub mod prometheus;
pub mod service;
pub mod stack;

pub use auth::{auth_init, bearer_client, env_file_value, token_at};
pub use binaries::{bin_dir, built_bin_dir, nginx_binary, workspace_root};
pub use database::{Backend, PgCluster, auth_database, databases};
pub use http::{Reply, answers, create_with_retries, raw_get, raw_request, raw_request_bytes};
pub use load::{Load, assert_no_failures};
pub use peers::{DelayProxy, OtlpReceiver, serve};
pub use ports::{free_port, free_port_block};
pub use process::{Process, alive, command_of, json_lines, line_request_id, send_signal};
pub use prometheus::{Sample, metric, parse_metrics};
pub use serde_json::json;
pub use service::Service;
pub use stack::{GATEWAY_FAIL_TIMEOUT, Kind, Options, Stack, WITHOUT_RATE_LIMITS};
