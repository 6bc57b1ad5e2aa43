//! Logging: readable text for a terminal, or JSON lines for machines
//! (`LOG_FORMAT`); the level comes from `RUST_LOG`.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// The log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber. `RUST_LOG` wins over the default level.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            )
            .try_init(),
        LogFormat::Text => registry.with(fmt::layer()).try_init(),
    };
    // Already installed (e.g. by another test in this process): keep that one.
    drop(result);
}
