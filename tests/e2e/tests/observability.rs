//! Observability: one request id through the gateway, order_service and
//! client_service (headers, logs, problem+json bodies); bad ids replaced,
//! never echoed; exact metrics after known traffic; and a trace of
//! `POST /order/` whose call to client_service is a child of the request.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use test_kit::{
    DelayProxy, Options, OtlpReceiver, Reply, Service, Stack, json, line_request_id, metric,
    parse_metrics,
};

/// The request id rule of the gateway and the services.
fn is_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b))
}

fn random_hex(len: usize) -> String {
    let mut hex = String::new();
    while hex.len() < len {
        hex.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    hex.truncate(len);
    hex
}

/// Sends `method path` to `base` with extra headers and an optional JSON body.
async fn send(
    stack: &Stack,
    base: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Reply {
    let mut request = stack.http.request(method, format!("{base}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    Reply::from(request.send().await.expect("request")).await
}

/// The lines of `service`'s log for request `id`, waiting (at most 5 s)
/// until its "request finished" line is there.
async fn request_lines(service: &Service, id: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines: Vec<Value> = service
            .log_lines()
            .into_iter()
            .filter(|line| line_request_id(line) == Some(id))
            .collect();
        if lines.iter().any(|l| l["message"] == "request finished") || Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The "request finished" line of request `id`: asserts it has the fields.
#[track_caller]
fn finished_line<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    let line = lines
        .iter()
        .find(|l| l["message"] == "request finished")
        .unwrap_or_else(|| panic!("no `request finished` line in {name}'s log: {lines:?}"));
    for field in ["method", "route", "status", "latency_ms", "request_id"] {
        assert!(!line[field].is_null(), "no `{field}` in {line}");
    }
    assert!(
        line["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{line}"
    );
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_id_follows_a_request_through_every_hop() {
    // order_service calls client_service through a proxy that records what
    // it is sent.
    let proxy = DelayProxy::start().await;
    let stack = Stack::start_with(Options {
        client_service_url: Some(proxy.url()),
        ..Options::default()
    })
    .await;
    proxy.set_target(stack.client_service().port);
    let client = stack.create_client("Ada", "A-1").await["id"]
        .as_i64()
        .unwrap();

    let id = format!("e2e-{}", random_hex(16));
    let traceparent = format!("00-{}-{}-01", random_hex(32), random_hex(16));
    let order = json!({"client_id": client, "item": "Tea", "price": "3.20"});
    let reply = send(
        &stack,
        &stack.gateway,
        Method::POST,
        "/order/",
        &[("x-request-id", &id), ("traceparent", &traceparent)],
        Some(&order),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    // In the response, once.
    let returned: Vec<_> = reply.headers.get_all("x-request-id").iter().collect();
    assert_eq!(returned, [id.as_str()], "{:?}", reply.headers);

    // In order_service's log: its request line and the lines inside it.
    let lines = request_lines(stack.order_service(), &id).await;
    let line = finished_line(&lines, "order_service");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["route"], "/order/");
    assert_eq!(line["status"], 201);
    assert_eq!(line["request_id"], id.as_str());

    // In the request order_service sent to client_service: the id, and the
    // caller's traceparent forwarded unchanged (tracing export is off).
    let sent = proxy.sent().to_ascii_lowercase();
    let call = sent
        .split("\r\n\r\n")
        .find(|head| head.contains(&format!("\r\nx-request-id: {id}\r\n").to_ascii_lowercase()))
        .unwrap_or_else(|| panic!("no call to client_service with x-request-id {id} in:\n{sent}"));
    assert!(
        call.starts_with(&format!("get /client/{client} ")),
        "{call}"
    );
    assert!(
        call.contains(&format!("\r\ntraceparent: {traceparent}")),
        "{call}"
    );

    // In client_service's log, for the call it got.
    let lines = request_lines(stack.client_service(), &id).await;
    let line = finished_line(&lines, "client_service");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/client/{id}");
    assert_eq!(line["status"], 200);

    // In the gateway's access log, with the instance that answered.
    // nginx writes the line after it has sent the answer: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let entry = loop {
        let access = stack.access_log();
        if let Some(entry) = access.iter().find(|l| l["request_id"] == id.as_str()) {
            break entry.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no access log line for {id}: {access:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(entry["uri"], "/order/");
    assert_eq!(
        entry["upstream_addr"],
        format!("127.0.0.1:{}", stack.order_service().port)
    );
    assert!(
        entry["upstream_response_time"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );

    // In problem+json bodies: a 422 whose check went through client_service,
    // and a 404.
    let id = format!("e2e-{}", random_hex(16));
    let reply = send(
        &stack,
        &stack.gateway,
        Method::POST,
        "/order/",
        &[("x-request-id", &id)],
        Some(&json!({"client_id": 999_999, "item": "Tea", "price": "1"})),
    )
    .await;
    reply.assert_invalid("client_id");
    assert_eq!(reply.body["request_id"], id.as_str(), "{}", reply.text);
    assert!(
        proxy.sent().contains(&id),
        "the 422's check did not carry the id"
    );
    let reply = send(
        &stack,
        &stack.gateway,
        Method::GET,
        "/order/999999",
        &[("x-request-id", "e2e-not-found")],
        None,
    )
    .await;
    reply.assert_problem(StatusCode::NOT_FOUND);
    assert_eq!(reply.body["request_id"], "e2e-not-found", "{}", reply.text);
    assert_eq!(reply.header("x-request-id"), "e2e-not-found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_made_when_missing_and_bad_ones_are_never_echoed() {
    let stack = Stack::start().await;
    let client_service = stack.client_service().url();

    // None sent: one is made, returned, logged and put in the problem.
    for base in [&stack.gateway, &client_service] {
        let reply = send(&stack, base, Method::GET, "/client/999999", &[], None).await;
        reply.assert_problem(StatusCode::NOT_FOUND);
        let id = reply.header("x-request-id").to_owned();
        assert!(is_request_id(&id), "{base}: made id `{id}`");
        assert_eq!(
            reply.body["request_id"],
            id.as_str(),
            "{base}: {}",
            reply.text
        );
        let lines = request_lines(stack.client_service(), &id).await;
        assert_eq!(finished_line(&lines, "client_service")["status"], 404);
    }

    // Well-formed ids are kept, also by the service on its own.
    let longest = "k".repeat(64);
    for base in [&stack.gateway, &client_service] {
        for good in ["a", "A.b_c:d-1", longest.as_str()] {
            let reply = send(
                &stack,
                base,
                Method::GET,
                "/client/",
                &[("x-request-id", good)],
                None,
            )
            .await;
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(reply.header("x-request-id"), good, "{base}");
        }
    }

    // Malformed or over-long: replaced by a new id, in the gateway and in
    // the service alike, and never written anywhere.
    let too_long = "x".repeat(65);
    let bad = [
        too_long.as_str(),
        "has space",
        "<script>alert(1)</script>",
        "quote\"d",
        "semi;colon",
        "slash/ed",
        "comma,separated",
    ];
    let mut made_by_gateway = Vec::new();
    for base in [&stack.gateway, &client_service] {
        for bad in bad {
            let reply = send(
                &stack,
                base,
                Method::GET,
                "/client/999999",
                &[("x-request-id", bad)],
                None,
            )
            .await;
            reply.assert_problem(StatusCode::NOT_FOUND);
            let id = reply.header("x-request-id");
            assert_ne!(id, bad, "{base} echoed a bad id");
            assert!(is_request_id(id), "{base}: `{id}` for `{bad}`");
            assert_eq!(reply.body["request_id"], id, "{base}: {}", reply.text);
            assert!(!reply.text.contains(bad), "{base}: {}", reply.text);
            if base == &stack.gateway {
                made_by_gateway.push(id.to_owned());
            }
        }
    }
    // Sent twice, directly to the service: neither is kept.
    let response = stack
        .http
        .get(format!("{client_service}/client/"))
        .header("x-request-id", "first")
        .header("x-request-id", "second")
        .send()
        .await
        .expect("request");
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        is_request_id(&id) && id != "first" && id != "second",
        "{id}"
    );

    let log = stack.client_service().log() + &stack.order_service().log();
    for bad in bad {
        assert!(!log.contains(bad), "a bad id was logged: {bad}");
    }
    // The gateway logged those requests (after answering: wait for the
    // lines) under the ids it made, never under the bad ones.
    let deadline = Instant::now() + Duration::from_secs(5);
    let access = loop {
        let access = stack.access_log();
        let logged = made_by_gateway
            .iter()
            .all(|id| access.iter().any(|l| l["request_id"] == id.as_str()));
        if logged {
            break access;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not log {made_by_gateway:?}: {access:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for bad in bad {
        let in_id = access.iter().any(|l| l["request_id"] == bad);
        assert!(
            !in_id,
            "the gateway logged a bad id as the request id: {bad}"
        );
    }
}

/// The metrics of one service, read from its own port.
async fn metrics_of(stack: &Stack, service: &Service) -> Vec<test_kit::Sample> {
    let reply = send(stack, &service.url(), Method::GET, "/metrics", &[], None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.header("content-type").starts_with("text/plain"),
        "{:?}",
        reply.headers
    );
    parse_metrics(&reply.text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_exactly_the_traffic_by_route_template() {
    let stack = Stack::start().await;
    let client = stack.create_client("Ada", "A-1").await["id"]
        .as_i64()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(
            stack.get(&format!("/client/{client}")).await.status,
            StatusCode::OK
        );
    }
    for id in [999_998, 999_999] {
        assert_eq!(
            stack.get(&format!("/client/{id}")).await.status,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        stack.delete("/client/").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let nowhere = send(
        &stack,
        &stack.client_service().url(),
        Method::GET,
        "/nowhere/7",
        &[],
        None,
    )
    .await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    // Each order create and read asks client_service once: 3 more 200s there.
    let order = stack.create_order(client, "Tea").await["id"]
        .as_i64()
        .unwrap();
    stack.create_order(client, "Cake").await;
    assert_eq!(
        stack.get(&format!("/order/{order}")).await.status,
        StatusCode::OK
    );
    // And this one gets a 404 there (a 422 here).
    stack
        .post(
            "/order/",
            &json!({"client_id": 999_999, "item": "x", "price": "1"}),
        )
        .await
        .assert_invalid("client_id");

    let samples = metrics_of(&stack, stack.client_service()).await;
    let requests = |method, route, status| {
        metric(
            &samples,
            "http_requests_total",
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    assert_eq!(requests("POST", "/client/", "201"), Some(1.0));
    assert_eq!(requests("GET", "/client/{id}", "200"), Some(6.0));
    assert_eq!(requests("GET", "/client/{id}", "404"), Some(3.0));
    assert_eq!(requests("DELETE", "/client/", "405"), Some(1.0));
    assert_eq!(requests("GET", "<unmatched>", "404"), Some(1.0));
    assert_eq!(
        metric(
            &samples,
            "http_request_duration_seconds_count",
            &[
                ("method", "GET"),
                ("route", "/client/{id}"),
                ("status", "200")
            ],
        ),
        Some(6.0)
    );
    let bucket = |le| {
        metric(
            &samples,
            "http_request_duration_seconds_bucket",
            &[
                ("method", "GET"),
                ("route", "/client/{id}"),
                ("status", "200"),
                ("le", le),
            ],
        )
    };
    assert_eq!(bucket("+Inf"), Some(6.0));
    assert!(bucket("0.001").is_some() && bucket("10").is_some());
    // Only route templates, never raw paths, as labels.
    let routes: BTreeSet<&str> = samples
        .iter()
        .filter_map(|s| s.labels.get("route").map(String::as_str))
        .collect();
    let known = [
        "/client/",
        "/client/{id}",
        "<unmatched>",
        "/healthz",
        "/readyz",
        "/metrics",
    ];
    assert!(routes.iter().all(|r| known.contains(r)), "{routes:?}");
    assert_eq!(
        metric(
            &samples,
            "build_info",
            &[("service", "client_service"), ("version", "0.1.0")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &samples,
            "upstream_circuit_breaker_state",
            &[("target", "order_service")]
        ),
        Some(0.0)
    );
    let idle = metric(&samples, "db_pool_connections", &[("state", "idle")]).expect("idle");
    let in_use = metric(&samples, "db_pool_connections", &[("state", "in_use")]).expect("in use");
    let max = metric(&samples, "db_pool_max_connections", &[]).expect("max");
    assert!(
        idle + in_use >= 1.0 && idle + in_use <= max,
        "{idle} {in_use} {max}"
    );

    let samples = metrics_of(&stack, stack.order_service()).await;
    let requests = |method, route, status| {
        metric(
            &samples,
            "http_requests_total",
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    assert_eq!(requests("POST", "/order/", "201"), Some(2.0));
    assert_eq!(requests("POST", "/order/", "422"), Some(1.0));
    assert_eq!(requests("GET", "/order/{id}", "200"), Some(1.0));
    let calls = |outcome| {
        metric(
            &samples,
            "upstream_calls_total",
            &[("target", "client_service"), ("outcome", outcome)],
        )
    };
    assert_eq!(calls("success"), Some(3.0));
    assert_eq!(calls("not_found"), Some(1.0));
    // Every outcome has its series from the start, so rates work at once.
    assert_eq!(calls("timeout"), Some(0.0));
    assert_eq!(calls("circuit_open"), Some(0.0));
    assert_eq!(
        metric(
            &samples,
            "upstream_call_duration_seconds_count",
            &[("target", "client_service"), ("outcome", "success")],
        ),
        Some(3.0)
    );
    assert_eq!(
        metric(
            &samples,
            "upstream_circuit_breaker_state",
            &[("target", "client_service")]
        ),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &samples,
            "build_info",
            &[("service", "order_service"), ("version", "0.1.0")]
        ),
        Some(1.0)
    );

    // The gateway does not route /metrics.
    stack
        .get("/metrics")
        .await
        .assert_problem(StatusCode::NOT_FOUND);
}

/// SQLite's write-ahead log in `/metrics`: its size and the service's own
/// checkpoints, the last of which left it empty once the service was idle
/// (issue 14). PostgreSQL has no such series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_ahead_log_and_its_checkpoints_are_in_the_metrics() {
    let stack = Stack::start().await;
    let client = stack.create_client("Ada", "A-1").await["id"]
        .as_i64()
        .unwrap();
    stack.create_order(client, "Tea").await;
    let sqlite = matches!(test_kit::Backend::from_env(), test_kit::Backend::Sqlite);
    let emptied = |samples: &[test_kit::Sample]| {
        metric(samples, "db_wal_bytes", &[]) == Some(0.0)
            && metric(
                samples,
                "db_wal_checkpoints_total",
                &[("outcome", "complete")],
            )
            .is_some_and(|n| n >= 1.0)
    };
    let mut samples = metrics_of(&stack, stack.order_service()).await;
    // The log is truncated within a few seconds of the last write.
    for _ in 0..80 {
        if !sqlite || emptied(&samples) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        samples = metrics_of(&stack, stack.order_service()).await;
    }
    let wal: Vec<_> = samples
        .iter()
        .filter(|s| s.name.starts_with("db_wal_"))
        .map(|s| (s.name.as_str(), &s.labels, s.value))
        .collect();
    if !sqlite {
        assert!(wal.is_empty(), "no WAL on PostgreSQL: {wal:?}");
        return;
    }
    assert!(emptied(&samples), "the idle log is truncated: {wal:?}");
    let checkpoints = |outcome| {
        metric(
            &samples,
            "db_wal_checkpoints_total",
            &[("outcome", outcome)],
        )
    };
    assert_eq!(checkpoints("error"), Some(0.0), "{wal:?}");
    assert!(checkpoints("busy").is_some(), "{wal:?}");
    assert_eq!(
        metric(&samples, "db_wal_last_checkpoint_busy", &[]),
        Some(0.0)
    );
    for state in ["log", "checkpointed"] {
        assert_eq!(
            metric(
                &samples,
                "db_wal_last_checkpoint_frames",
                &[("state", state)]
            ),
            Some(0.0),
            "a TRUNCATE that finished leaves no frame: {wal:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_of_failed_calls_and_the_open_breaker_are_counted() {
    let mut stack = Stack::start_with(Options {
        order_env: vec![
            ("CLIENT_SERVICE_RETRIES".into(), "0".into()),
            ("CLIENT_SERVICE_BREAKER_FAILURES".into(), "2".into()),
            ("CLIENT_SERVICE_BREAKER_OPEN_MS".into(), "60000".into()),
        ],
        ..Options::default()
    })
    .await;
    stack.kill_client_service();
    let order = json!({"client_id": 1, "item": "Tea", "price": "1"});
    for _ in 0..3 {
        let reply = stack.post("/order/", &order).await;
        reply.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
    }
    let samples = metrics_of(&stack, stack.order_service()).await;
    let calls = |outcome| {
        metric(
            &samples,
            "upstream_calls_total",
            &[("target", "client_service"), ("outcome", outcome)],
        )
    };
    assert_eq!(calls("unreachable"), Some(2.0));
    assert_eq!(calls("circuit_open"), Some(1.0));
    assert_eq!(
        metric(
            &samples,
            "upstream_circuit_breaker_state",
            &[("target", "client_service")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &samples,
            "http_requests_total",
            &[("method", "POST"), ("route", "/order/"), ("status", "503")],
        ),
        Some(3.0)
    );
}

/// Waits (at most 15 s) until `found` picks what it needs from the spans.
async fn wait_for_spans<T>(receiver: &OtlpReceiver, found: impl Fn(&[Value]) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let spans = receiver.spans();
        if let Some(result) = found(&spans) {
            return result;
        }
        assert!(
            Instant::now() < deadline,
            "the spans wanted did not arrive within 15 s; got:\n{}",
            serde_json::to_string_pretty(&spans).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn span_kind(span: &Value) -> String {
    // OTLP/JSON writes enums as integers (2 server, 3 client).
    match &span["kind"] {
        Value::Number(n) if n.as_u64() == Some(2) => "server".into(),
        Value::Number(n) if n.as_u64() == Some(3) => "client".into(),
        other => other.to_string().to_ascii_lowercase(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_of_post_order_holds_the_call_to_client_service_as_a_child() {
    let receiver = OtlpReceiver::start().await;
    let otel = vec![
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
            receiver.endpoint(),
        ),
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(),
            "http/json".to_owned(),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "100".to_owned()),
    ];
    let stack = Stack::start_with(Options {
        order_env: otel.clone(),
        client_env: otel,
        ..Options::default()
    })
    .await;
    let client = stack.create_client("Ada", "A-1").await["id"]
        .as_i64()
        .unwrap();

    // The caller's own trace: the request joins it.
    let trace_id = random_hex(32);
    let caller_span = random_hex(16);
    let traceparent = format!("00-{trace_id}-{caller_span}-01");
    let reply = send(
        &stack,
        &stack.gateway,
        Method::POST,
        "/order/",
        &[("traceparent", &traceparent)],
        Some(&json!({"client_id": client, "item": "Tea", "price": "3.20"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);

    let in_trace = |spans: &[Value], service: &str, name: &str| {
        spans
            .iter()
            .find(|s| {
                s["traceId"] == trace_id.as_str() && s["service"] == service && s["name"] == name
            })
            .cloned()
    };
    let (request, call, callee, insert) = wait_for_spans(&receiver, |spans| {
        Some((
            in_trace(spans, "order_service", "POST /order/")?,
            in_trace(spans, "order_service", "GET client_service")?,
            in_trace(spans, "client_service", "GET /client/{id}")?,
            in_trace(spans, "order_service", "INSERT orders")?,
        ))
    })
    .await;
    // order_service's request span: a server span, child of the caller's.
    assert_eq!(span_kind(&request), "server", "{request}");
    assert_eq!(request["parentSpanId"], caller_span.as_str(), "{request}");
    // The outgoing call: a client span, child of the request span.
    assert_eq!(span_kind(&call), "client", "{call}");
    assert_eq!(call["parentSpanId"], request["spanId"], "{call}\n{request}");
    // client_service's request span: a child of that call (traceparent sent).
    assert_eq!(span_kind(&callee), "server", "{callee}");
    assert_eq!(callee["parentSpanId"], call["spanId"], "{callee}\n{call}");
    // A database query of the request, inside it too.
    assert_eq!(insert["parentSpanId"], request["spanId"], "{insert}");
    // The call lies within the request in time.
    let time = |span: &Value, field: &str| -> u128 {
        span[field]
            .as_str()
            .and_then(|t| t.parse().ok())
            .or_else(|| span[field].as_u64().map(u128::from))
            .unwrap_or_else(|| panic!("no {field} in {span}"))
    };
    assert!(time(&call, "startTimeUnixNano") >= time(&request, "startTimeUnixNano"));
    assert!(time(&call, "endTimeUnixNano") <= time(&request, "endTimeUnixNano"));

    // Without a traceparent, a new trace starts with the request at its root.
    let reply = stack.get(&format!("/client/{client}")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let root = wait_for_spans(&receiver, |spans| {
        spans
            .iter()
            .find(|s| {
                s["service"] == "client_service"
                    && s["name"] == "GET /client/{id}"
                    && s["traceId"] != trace_id.as_str()
            })
            .cloned()
    })
    .await;
    let parent = root["parentSpanId"].as_str().unwrap_or_default();
    assert!(parent.is_empty(), "a root span has no parent: {root}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_database_url_is_never_printed() {
    use std::process::{Command, Stdio};
    let password = "s3cret-Pw-e2e";
    let dir = tempfile::tempdir().expect("temp dir");
    // Nothing listens on that port: the service keeps retrying, and says so.
    let url = format!(
        "postgres://app:{password}@127.0.0.1:{}/orders",
        test_kit::free_port()
    );
    let run = |name: &str, args: &[&str], env: &[(&str, &str)]| {
        let log = dir
            .path()
            .join(format!("{name}-{}.log", args.len() + env.len()));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(test_kit::bin_dir().join(name))
            .args(args)
            .env("DATABASE_URL", &url)
            .env(
                "LISTEN_ADDR",
                format!("127.0.0.1:{}", test_kit::free_port()),
            )
            .env("SERVICE_CLIENT_ID", "test-client")
            .env("SERVICE_CLIENT_SECRET", "test-secret-0123456789")
            .env("RUST_LOG", "debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file)
            .spawn()
            .expect("cannot start the service: run `cargo build --bins` first");
        (child, log)
    };
    for name in ["client_service", "order_service"] {
        // --help lists DATABASE_URL without its value; a bad setting names
        // itself, not the URL.
        for (args, env) in [
            (&["--help"][..], &[][..]),
            (&[][..], &[("LOG_FORMAT", "yaml")][..]),
        ] {
            let (mut child, log) = run(name, args, env);
            let status = child.wait().expect("wait");
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                text.contains("DATABASE_URL") || text.contains("yaml"),
                "{text}"
            );
            assert!(
                !text.contains(password),
                "{name} {args:?} printed the password:\n{text}"
            );
            assert_eq!(status.success(), args == ["--help"], "{text}");
        }
    }
    // Starting against a database that does not answer: every retry is
    // logged (at debug level too), the password never. (The first failure
    // comes after the pool's 2 s acquire timeout.)
    let started: Vec<_> = ["client_service", "order_service"]
        .into_iter()
        .map(|name| (name, run(name, &[], &[("LOG_FORMAT", "json")])))
        .collect();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    for (name, (mut child, log)) in started {
        let _ = child.kill();
        let _ = child.wait();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            text.contains("database not reachable yet"),
            "{name}:\n{text}"
        );
        assert!(
            !text.contains(password),
            "{name} printed the password:\n{text}"
        );
    }
}
