//! The System page, `GET /console/system`: every instance of
//! `CONSOLE_INSTANCES` with its health, readiness, circuit breakers toward
//! its peers, and its requests per second and p99 over the last minute,
//! as the poller ([`monitor`]) last read them from the instances' own
//! `/healthz`, `/readyz` and `/metrics` ([`prometheus`]).
//!
//! Without JavaScript the page has a "Refresh" link; with it,
//! `/console/static/system.js` fetches `/console/system?part=table` (the
//! table alone) every 3 s and puts it in place. For signed-in people only:
//! a visitor without a session is sent to `/console/sign-in` (the table
//! alone answers 403, and the script says so).
//!
//! [`routes`] is merged into the console's router; the [`Monitor`] reaches
//! the handler as a request extension (`lib.rs` adds it and starts its
//! poller), so the console's `AppState` needs no field for it.

pub mod monitor;
pub mod prometheus;

use askama::Template;
use axum::{
    Extension, Router,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use serde::Deserialize;

use crate::{
    pages::{self, Chrome, PageError},
    state::AppState,
    system::monitor::{Health, Instance, Readiness, clock},
};

pub use monitor::Monitor;

/// The page, the table alone, and the script.
pub fn routes() -> Router<AppState> {
    Router::new().route("/console/system", get(page))
}

/// The page.
#[derive(Template)]
#[template(path = "system.html")]
pub struct SystemPage {
    pub chrome: Chrome,
    pub configured: bool,
    pub rows: Vec<Row>,
}

/// The table alone (`?part=table`), what the script puts in place.
#[derive(Template)]
#[template(path = "system_table.html")]
pub struct SystemTable {
    pub configured: bool,
    pub rows: Vec<Row>,
}

/// One instance, in words.
#[derive(Clone, Debug)]
pub struct Row {
    pub service: String,
    /// `address:port`, as `data-instance`.
    pub instance: String,
    /// "up" or "down".
    pub health: &'static str,
    /// "ready", "not ready" or "down".
    pub readiness: &'static str,
    /// "client_service 127.0.0.1:8000: closed", one per peer.
    pub breakers: Vec<String>,
    /// Requests per second over the last minute, or "—".
    pub rate: String,
    /// p99 in milliseconds over the last minute, or "—".
    pub p99: String,
    /// When `/metrics` was last read ("hh:mm:ss UTC"), or "never".
    pub last_read: String,
    /// Why the last poll could not read the instance.
    pub problem: Option<String>,
}

/// Shown until two readings exist, or without requests for a p99.
const NONE: &str = "—";

impl Row {
    pub fn of(instance: &Instance) -> Self {
        let rates = instance.rate_and_p99();
        Self {
            service: instance.service.clone(),
            instance: instance.label.clone(),
            health: match instance.health {
                Health::Up => "up",
                Health::Down => "down",
            },
            readiness: match instance.readiness {
                Readiness::Ready => "ready",
                Readiness::NotReady => "not ready",
                Readiness::Down => "down",
            },
            breakers: instance
                .breakers
                .iter()
                .map(|b| {
                    let peer = b.peer.strip_prefix("http://").unwrap_or(&b.peer);
                    format!("{} {}: {}", b.target, peer, b.state.as_str())
                })
                .collect(),
            rate: rates.map_or(NONE.into(), |(rate, _)| format!("{rate:.1}")),
            p99: match rates {
                Some((_, Some(p99))) => format!("{:.1}", p99 * 1000.0),
                _ => NONE.into(),
            },
            last_read: instance.last_read.map_or("never".into(), clock),
            problem: instance.problem.clone(),
        }
    }
}

#[derive(Deserialize)]
struct PageQuery {
    part: Option<String>,
}

async fn page(
    State(state): State<AppState>,
    Extension(monitor): Extension<Monitor>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    let table_only = query.part.as_deref() == Some("table");
    let Some(user) = state.user(&headers) else {
        if table_only {
            return PageError::Api {
                status: StatusCode::FORBIDDEN,
                detail: "Sign in again to see the System page.".into(),
                request_id: None,
            }
            .page(None);
        }
        return Redirect::to("/console/sign-in").into_response();
    };
    let configured = monitor.is_configured();
    let rows = monitor.instances().iter().map(Row::of).collect();
    if table_only {
        pages::render(StatusCode::OK, &SystemTable { configured, rows })
    } else {
        let page = SystemPage {
            chrome: Chrome {
                user: Some(user),
                ..Chrome::default()
            },
            configured,
            rows,
        };
        pages::render(StatusCode::OK, &page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(service: &str) -> Row {
        Row {
            service: service.into(),
            instance: "127.0.0.1:8000".into(),
            health: "up",
            readiness: "ready",
            breakers: vec!["order_service 127.0.0.1:8001: closed".into()],
            rate: "1.5".into(),
            p99: NONE.into(),
            last_read: "13:04:05 UTC".into(),
            problem: Some("<b>".into()),
        }
    }

    #[test]
    fn the_table_escapes_and_names_each_row() {
        let html = SystemTable {
            configured: true,
            rows: vec![row("a\"<script>")],
        }
        .render()
        .unwrap();
        assert!(html.contains("<table id=\"instances\">"), "{html}");
        assert!(html.contains("<caption>"), "{html}");
        assert!(
            html.contains(
                "data-service=\"a&#34;&#60;script&#62;\" data-instance=\"127.0.0.1:8000\""
            ),
            "{html}"
        );
        assert!(!html.contains("<b>"), "{html}");
        assert!(
            html.contains("order_service 127.0.0.1:8001: closed"),
            "{html}"
        );
    }

    #[test]
    fn without_instances_the_page_says_so() {
        let html = SystemTable {
            configured: false,
            rows: vec![],
        }
        .render()
        .unwrap();
        assert!(!html.contains("<table"), "{html}");
        assert!(html.contains("CONSOLE_INSTANCES"), "{html}");
    }
}
