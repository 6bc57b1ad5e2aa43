//! Logs and traces.
//!
//! - Logs: readable text for a terminal, or JSON lines for machines
//!   (`LOG_FORMAT`), on standard output; the level and filters come from
//!   `RUST_LOG`. In JSON, every line of a request carries the request's span
//!   (`span`), hence its `request_id`. A line is formatted where it
//!   is logged and written within [`FLUSH_EVERY`](log_writer::FLUSH_EVERY)
//!   by a thread of its own ([`log_writer`]): a request never waits for
//!   the terminal or the log file, and no line is dropped.
//! - Traces: OpenTelemetry over OTLP/HTTP, only when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` is set; otherwise no OpenTelemetry layer is
//!   installed and nothing of it runs per request. The spans are the tracing
//!   spans: `request` (each incoming request, a child of an incoming W3C
//!   `traceparent`), `upstream` (each call to the other service, which
//!   receives this span's `traceparent`) and `db` (each database query).

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::{
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::TracerProvider as _,
};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, filter::Targets, fmt, prelude::*};

use kit_config::{LogFormat, redact_url};

use crate::{
    json_lines::{JsonLines, SpanFields},
    log_writer,
};

/// The default filter when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn";

static OTEL_ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (`OTEL_EXPORTER_OTLP_ENDPOINT` was set at start).
pub fn otel_enabled() -> bool {
    OTEL_ENABLED.load(Ordering::Relaxed)
}

/// Tracing could not be set up as configured.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error(
        "OTEL_EXPORTER_OTLP_PROTOCOL: `{0}` is not supported; use http/protobuf (the default) or http/json"
    )]
    Protocol(String),
    #[error("cannot build the OTLP span exporter")]
    Exporter(#[source] opentelemetry_otlp::ExporterBuildError),
}

/// What [`init`] installed; [`Telemetry::shutdown`] exports the spans still
/// buffered and writes the log lines still queued.
#[must_use = "call shutdown() before exiting, or buffered spans and log lines are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    /// The log writer's thread: dropping this writes out what is waiting.
    log_writer: Option<log_writer::Flusher>,
}

impl Telemetry {
    /// Flushes and stops the span exporter (at most a few seconds), then
    /// writes out the log lines still queued. Nothing is logged after this.
    pub async fn shutdown(mut self) {
        self.export_spans().await;
        drop(self.log_writer.take());
    }

    async fn export_spans(&mut self) {
        let Some(provider) = self.provider.take() else {
            return;
        };
        // The exporter blocks on its HTTP call: not on a runtime thread.
        let done = tokio::task::spawn_blocking(move || {
            provider.shutdown_with_timeout(Duration::from_secs(5))
        })
        .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "span exporter did not shut down cleanly"),
            Err(err) => tracing::warn!(error = %err, "span exporter shutdown failed"),
        }
    }
}

/// Installs the global subscriber: the log layer, and the OpenTelemetry
/// layer when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. `RUST_LOG` wins over the
/// default level. `service` is the `service.name` of the spans unless
/// `OTEL_SERVICE_NAME` says otherwise.
pub fn init(format: LogFormat, service: &'static str) -> Result<Telemetry, TelemetryError> {
    init_with(format, service, |name| std::env::var(name).ok())
}

fn init_with(
    format: LogFormat,
    service: &'static str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Telemetry, TelemetryError> {
    let provider = match env("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|v| !v.trim().is_empty()) {
        Some(_) => Some(tracer_provider(service, &env)?),
        None => None,
    };
    let (targets, env_filter) = filter(env("RUST_LOG"));
    let (writer, log_writer) = log_writer::stdout();
    let otel = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer(service)));
    let logs = match format {
        LogFormat::Json => fmt::layer()
            .fmt_fields(SpanFields)
            .event_format(JsonLines)
            .with_writer(writer)
            .boxed(),
        LogFormat::Text => fmt::layer().with_writer(writer).boxed(),
    };
    let installed = tracing_subscriber::registry()
        .with(targets)
        .with(env_filter)
        .with(otel)
        .with(logs)
        .try_init()
        .is_ok();
    // Not installed: another subscriber was first (e.g. another test in this
    // process). Keep that one, and export nothing from here.
    let provider = provider.filter(|_| installed);
    if provider.is_some() {
        OTEL_ENABLED.store(true, Ordering::Relaxed);
        tracing::info!(
            endpoint = redact_url(&env("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_default()),
            "exporting traces over OTLP"
        );
    }
    Ok(Telemetry {
        provider,
        log_writer: Some(log_writer),
    })
}

/// The level filter, from `RUST_LOG` (else [`DEFAULT_FILTER`]; an invalid
/// value falls back to it too). Plain `target=level` directives, the usual
/// kind, become a [`Targets`] filter, decided once per call site; only
/// directives that name spans or fields (`[request{route=…}]=debug`) need an
/// [`EnvFilter`], which looks at every span as it is entered and exited.
fn filter(rust_log: Option<String>) -> (Option<Targets>, Option<EnvFilter>) {
    let directives = rust_log
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_FILTER.to_owned());
    if let Ok(targets) = directives.parse::<Targets>() {
        return (Some(targets), None);
    }
    let env_filter = EnvFilter::try_new(&directives).unwrap_or_else(|err| {
        eprintln!("RUST_LOG=`{directives}` is not valid ({err}); using `{DEFAULT_FILTER}`");
        EnvFilter::new(DEFAULT_FILTER)
    });
    (None, Some(env_filter))
}

/// The span exporter and its batch processor, configured by the standard
/// `OTEL_*` variables (endpoint, headers, timeout; `OTEL_BSP_*` for batching,
/// `OTEL_TRACES_SAMPLER`), plus `OTEL_EXPORTER_OTLP_PROTOCOL`.
fn tracer_provider(
    service: &'static str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<SdkTracerProvider, TelemetryError> {
    let protocol = match env("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref().map(str::trim) {
        None | Some("") | Some("http/protobuf") => Protocol::HttpBinary,
        Some("http/json") => Protocol::HttpJson,
        Some(other) => return Err(TelemetryError::Protocol(other.to_owned())),
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .build()
        .map_err(TelemetryError::Exporter)?;
    let resource = match env("OTEL_SERVICE_NAME") {
        Some(_) => Resource::builder().build(),
        None => Resource::builder().with_service_name(service).build(),
    };
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Makes `span` (an incoming request's) the child of the W3C trace context
/// in `headers`, if there is one. Only with export on.
pub fn set_remote_parent(span: &tracing::Span, headers: &HeaderMap) {
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    // An error means the span is disabled (filtered out): nothing to do.
    let _ = span.set_parent(parent);
}

/// Writes `span`'s trace context into `headers` as `traceparent`/`tracestate`.
pub fn inject_context(span: &tracing::Span, headers: &mut HeaderMap) {
    let context = span.context();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_protocol_is_refused() {
        let env = |name: &str| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://127.0.0.1:4318".to_owned()),
            "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("grpc".to_owned()),
            _ => None,
        };
        let err = init_with(LogFormat::Text, "test", env).err();
        assert!(
            matches!(&err, Some(TelemetryError::Protocol(p)) if p == "grpc"),
            "{err:?}"
        );
    }
}
