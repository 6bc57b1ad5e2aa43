//! The kit every service of the system is built from, so that each service
//! holds only its own domain, storage and routes (eShop calls its
//! counterpart "ServiceDefaults").
//!
//! Its folders are layers. Each module uses only modules of its own layer or
//! of the layers below it, never above, and no two modules use each other
//! (`scripts/check-layers.py`, run by `make test`, checks both):
//!
//! ```text
//!  server         the HTTP server of a service: its routes plus the shared
//!    |            layers, /healthz, /readyz, /metrics, graceful shutdown
//!    +------------------------+-----------------------+
//!  data                     upstream                auth
//!    db, idempotency          calls to another        the callers' access
//!    (the service's own       service: HTTP client,   tokens: JWKS, checks,
//!     database)               breaker, retries, the   scopes, 401/403
//!                             service's own token     |
//!    +------------------------+-----------------------+
//!  http           the HTTP surface: problem+json errors, extractors,
//!    |            validation, pagination, conditional requests, OpenAPI
//!  observability  request ids and trace context, logs and traces, metrics
//!    |
//!  config         settings from the environment
//! ```
//!
//! - [`config`]: the settings every service shares, and those of its calls
//!   to another service.
//! - [`observability`]: [`context`](observability::context) (the request id
//!   and W3C trace context of the request being served),
//!   [`telemetry`](observability::telemetry) (log lines, OpenTelemetry
//!   traces), [`metrics`](observability::metrics) (the Prometheus recorder
//!   and the catalogue of every metric).
//! - [`http`]: [`problem`](http::problem) (RFC 9457 errors),
//!   [`extract`](http::extract) (extractors that answer in problem+json),
//!   [`validate`](http::validate) (field-by-field parsing),
//!   [`pagination`](http::pagination), [`conditional`](http::conditional)
//!   (ETags, `If-Match`, `If-None-Match`), [`api_doc`](http::api_doc)
//!   (the OpenAPI documents: shared responses and parameters, serving and
//!   checking them).
//! - [`data`]: [`db`](data::db) (SQLite or PostgreSQL, one SQL text for
//!   both), [`idempotency`](data::idempotency) (`Idempotency-Key`, and the
//!   keyed create flow).
//! - [`upstream`]: synchronous calls to another service with their
//!   resilience and metrics, and [`token`](upstream::token), the
//!   service's own access token for them.
//! - [`auth`]: [`verify`](auth::verify) (access tokens checked against the
//!   provider's JWKS, remembered until they expire) and
//!   [`guard`](auth::guard) (the check in front of an API: 401, 403).
//! - [`server`]: what composes them into a running service.

pub mod auth;
pub mod config;
pub mod data;
pub mod http;
pub mod observability;
pub mod server;
pub mod upstream;

pub use http::problem::{ApiError, FieldError};

#[doc(hidden)]
pub use tracing as __tracing;
