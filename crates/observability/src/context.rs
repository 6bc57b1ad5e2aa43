//! What ties the hops of one request together: its request id
//! (`X-Request-ID`) and its W3C trace context (`traceparent`, `tracestate`).
//!
//! The server reads them once per request ([`Correlation::from_headers`]) and
//! runs the request inside [`Correlation::scope`]; everything the request
//! does from there can ask for them: a problem+json body names the request
//! id, and [`inject`] adds them to each outgoing call to the other service.

use std::future::Future;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::telemetry;

/// The request id header, kept or made by the gateway and by each service.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// W3C Trace Context.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The longest request id kept (the gateway's rule too).
pub const MAX_REQUEST_ID_LEN: usize = 64;
/// The longest `tracestate` forwarded unchanged (the W3C limit is 32 members).
const MAX_TRACESTATE_LEN: usize = 512;

/// Whether an incoming request id may be kept: 1 to 64 of `A-Z a-z 0-9 . _ : -`,
/// the same rule as the gateway's (`^[A-Za-z0-9._:-]{1,64}$`). Anything else
/// is replaced, never echoed: the id is copied into log lines and headers.
pub fn is_valid_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Whether `value` looks like a W3C `traceparent`: `vv-<32 hex>-<16 hex>-ff`,
/// where a future version may append fields after a `-`.
pub fn is_valid_traceparent(value: &[u8]) -> bool {
    let hex = |part: &[u8]| part.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let well_formed = value.len() >= 55
        && (value.len() == 55 || value[55] == b'-')
        && value[2] == b'-'
        && value[35] == b'-'
        && value[52] == b'-'
        && hex(&value[..2])
        && hex(&value[3..35])
        && hex(&value[36..52])
        && hex(&value[53..55]);
    // Version ff is invalid; all-zero trace or span ids are invalid.
    well_formed
        && &value[..2] != b"ff"
        && value[3..35].iter().any(|b| *b != b'0')
        && value[36..52].iter().any(|b| *b != b'0')
}

/// The correlation of the request being served.
#[derive(Clone, Debug)]
pub struct Correlation {
    request_id: HeaderValue,
    traceparent: Option<HeaderValue>,
    tracestate: Option<HeaderValue>,
}

tokio::task_local! {
    static CURRENT: Correlation;
}

impl Correlation {
    /// Keeps a well-formed incoming request id (sent once) or makes a new
    /// one (a UUID); keeps a well-formed `traceparent` and its `tracestate`.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let single = |name: &HeaderName| {
            let mut values = headers.get_all(name).iter();
            match (values.next(), values.next()) {
                (Some(value), None) => Some(value),
                _ => None,
            }
        };
        let request_id = single(&REQUEST_ID)
            .filter(|id| is_valid_request_id(id.as_bytes()))
            .cloned()
            .unwrap_or_else(new_request_id);
        let traceparent = single(&TRACEPARENT)
            .filter(|value| is_valid_traceparent(value.as_bytes()))
            .cloned();
        let tracestate = traceparent
            .as_ref()
            .and(single(&TRACESTATE))
            .filter(|value| value.len() <= MAX_TRACESTATE_LEN)
            .cloned();
        Self {
            request_id,
            traceparent,
            tracestate,
        }
    }

    pub fn request_id(&self) -> &str {
        // Only ASCII is ever kept or made, so this never falls back.
        self.request_id.to_str().unwrap_or_default()
    }

    pub fn request_id_header(&self) -> HeaderValue {
        self.request_id.clone()
    }

    /// Runs `future` with this correlation as the current one.
    pub async fn scope<F: Future>(self, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }

    /// The correlation of the request being served, if any.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }
}

/// The request id of the request being served, if any.
pub fn current_request_id() -> Option<String> {
    CURRENT.try_with(|c| c.request_id().to_owned()).ok()
}

fn new_request_id() -> HeaderValue {
    let id = uuid::Uuid::new_v4().to_string();
    HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// Adds the current request's id and trace context to the headers of an
/// outgoing call made inside `span`. With tracing export on, the trace
/// context is `span`'s own (so the callee's spans become its children);
/// with it off, an incoming `traceparent` is forwarded unchanged, so that
/// a trace still passes through a service that does not export.
pub fn inject(headers: &mut HeaderMap, span: &tracing::Span) {
    let Some(current) = Correlation::current() else {
        if telemetry::otel_enabled() {
            telemetry::inject_context(span, headers);
        }
        return;
    };
    headers.insert(REQUEST_ID, current.request_id);
    if telemetry::otel_enabled() {
        telemetry::inject_context(span, headers);
    } else if let Some(traceparent) = current.traceparent {
        headers.insert(TRACEPARENT, traceparent);
        if let Some(tracestate) = current.tracestate {
            headers.insert(TRACESTATE, tracestate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_follow_the_gateways_rule() {
        assert!(is_valid_request_id(b"abc-123_DEF.4:5"));
        assert!(is_valid_request_id(&[b'a'; 64]));
        assert!(!is_valid_request_id(&[b'a'; 65]));
        assert!(!is_valid_request_id(b""));
        for bad in ["a b", "<script>", "a\"b", "a/b", "é", "a,b"] {
            assert!(!is_valid_request_id(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn a_bad_or_repeated_request_id_is_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("kept-1"));
        assert_eq!(Correlation::from_headers(&headers).request_id(), "kept-1");

        headers.insert(REQUEST_ID, HeaderValue::from_static("not kept"));
        let made = Correlation::from_headers(&headers);
        assert_ne!(made.request_id(), "not kept");
        assert!(is_valid_request_id(made.request_id().as_bytes()));

        headers.insert(REQUEST_ID, HeaderValue::from_static("one"));
        headers.append(REQUEST_ID, HeaderValue::from_static("two"));
        let made = Correlation::from_headers(&headers);
        assert!(!["one", "two"].contains(&made.request_id()));

        let fresh = Correlation::from_headers(&HeaderMap::new());
        assert_eq!(fresh.request_id().len(), 36);
    }

    #[test]
    fn traceparents_are_checked() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(is_valid_traceparent(good.as_bytes()));
        assert!(is_valid_traceparent(
            format!("01{}-extra", &good[2..]).as_bytes()
        ));
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ] {
            assert!(!is_valid_traceparent(bad.as_bytes()), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_current_correlation_is_forwarded() {
        let mut incoming = HeaderMap::new();
        incoming.insert(REQUEST_ID, HeaderValue::from_static("req-7"));
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        incoming.insert(TRACEPARENT, HeaderValue::from_static(traceparent));
        incoming.insert(TRACESTATE, HeaderValue::from_static("vendor=x"));
        let outgoing = Correlation::from_headers(&incoming)
            .scope(async {
                assert_eq!(current_request_id().as_deref(), Some("req-7"));
                let mut headers = HeaderMap::new();
                inject(&mut headers, &tracing::Span::none());
                headers
            })
            .await;
        assert_eq!(outgoing[REQUEST_ID], "req-7");
        assert_eq!(outgoing[TRACEPARENT], traceparent);
        assert_eq!(outgoing[TRACESTATE], "vendor=x");
        assert_eq!(current_request_id(), None);
    }
}
