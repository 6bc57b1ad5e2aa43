//! What the gateway answers by itself: problem+json with the request id for
//! every status nginx can produce, one reading of the request target (at
//! the gateway and at each service called directly), and a 308 for a
//! collection without its trailing slash. Requests an HTTP client library
//! would refuse to send, or would tidy up first, go out as raw bytes.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use test_kit::{Options, Reply, Stack, raw_get, raw_request, raw_request_bytes};

/// The access log line of the request that got `reply`. nginx writes it
/// once the answer is sent, so it may come a moment after the answer.
fn access_line(stack: &Stack, reply: &Reply) -> serde_json::Value {
    let id = reply.header("x-request-id");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(line) = stack
            .access_log()
            .into_iter()
            .find(|line| line["request_id"] == id)
        {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "no access log line for request {id}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts that the gateway answered `reply` itself: no service was asked.
#[track_caller]
fn answered_by_the_gateway(stack: &Stack, reply: &Reply) {
    let line = access_line(stack, reply);
    assert_eq!(line["upstream_addr"], "", "passed on to a service: {line}");
}

/// The rows of issue 15's table, each through the real gateway.
#[tokio::test]
async fn the_answers_probing_found_are_problems_now() {
    let stack = Stack::start().await;

    // A 20 000-character query: 414, was nginx's HTML page.
    let long = format!("/client/?name={}", "a".repeat(20_000));
    let reply = stack.raw(&raw_get(long.as_bytes(), b"")).await;
    reply.assert_problem_with_id(StatusCode::URI_TOO_LONG);
    answered_by_the_gateway(&stack, &reply);

    // 200 extra header fields: 431, was the service's HTTP library's bare
    // 431 (no body, no content type), passed through.
    let many: String = (0..200).map(|i| format!("X-Extra-{i}: {i}\r\n")).collect();
    for path in [&b"/client/"[..], b"/order/"] {
        let reply = stack.raw(&raw_get(path, many.as_bytes())).await;
        reply.assert_problem_with_id(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }

    // `POST /client` and `GET /order`: a 308 (method and body kept) with a
    // problem, was a 301 with nginx's HTML page.
    let create = br#"{"name":"Ada","card_number":"T-1","card_issued_on":"2021-06-15"}"#;
    let headers = format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n",
        create.len()
    );
    for (request, location) in [
        (
            raw_request_bytes(b"POST", b"/client", headers.as_bytes(), create),
            "/client/",
        ),
        (raw_get(b"/order", b""), "/order/"),
        (
            raw_get(b"/order?client_id=1&limit=2", b""),
            "/order/?client_id=1&limit=2",
        ),
    ] {
        let reply = stack.raw(&request).await;
        reply.assert_problem_with_id(StatusCode::PERMANENT_REDIRECT);
        assert_eq!(reply.header("location"), location, "{}", reply.text);
        answered_by_the_gateway(&stack, &reply);
    }
    // A client that follows it (reqwest does, keeping the method and body).
    let created = stack
        .post(
            "/client",
            &test_kit::json!({"name": "Ada", "card_number": "T-1", "card_issued_on": "2021-06-15"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(stack.get("/order").await.status, StatusCode::OK);

    // An encoded slash: 400, was a 301 into the other service's path.
    let reply = stack
        .raw(&raw_get(b"/client/1%2F..%2F..%2Forder", b""))
        .await;
    reply.assert_problem_with_id(StatusCode::BAD_REQUEST);
    assert!(reply.text.contains("encoded slash"), "{}", reply.text);
    answered_by_the_gateway(&stack, &reply);

    // An encoded dot segment: 400, was routed to order_service.
    let reply = stack.raw(&raw_get(b"/client/%2E%2E/order/1", b"")).await;
    reply.assert_problem_with_id(StatusCode::BAD_REQUEST);
    assert!(reply.text.contains("dot segment"), "{}", reply.text);
    answered_by_the_gateway(&stack, &reply);
    // (The last row, duplicate keys, is in bad_input.rs.)
}

/// Targets that two readers could read two ways, each refused with a 400
/// problem by the gateway before any routing, and by each service called
/// directly; the targets next to them, which need their escapes, pass.
#[tokio::test]
async fn one_reading_of_the_path_at_the_gateway_and_at_each_service() {
    let stack = Stack::start().await;
    let client = stack.create_client("Ada", "A-1").await;
    let id = client["id"].as_i64().unwrap();
    // (target, also sent to the services directly: the services' HTTP
    // library refuses some raw characters itself, before any code of ours)
    let refused: &[(&[u8], bool)] = &[
        (b"/client/1%2F..%2F..%2Forder", true),
        (b"/client/1%2f", true),
        (b"/client/%2E%2E/order/1", true),
        (b"/client/.%2e/order/1", true),
        (b"/client/%2e/1", true),
        (b"/client/../order/1", true),
        (b"/client/./1", true),
        (b"/order/1/..", true),
        (b"/client/1\\..\\order", true),
        (b"/client/%5C..%5Corder", true),
        (b"/client/1%00", true),
        (b"/client/1%0A", true),
        (b"/client/1%7f", true),
        (b"/client/%31", true),
        (b"/%63lient/1", true),
        (b"/client/1%zz", true),
        (b"/client/1%", true),
        (b"/client/\xc3\xa9", true),
        (b"/client/{1}", true),
        (b"/client/?name=a|b", true),
        (b"/client/1\x01", false),
        (b"/client/1\x7f", false),
        (b"/client/<1>", false),
        (b"/client/#1", false),
    ];
    let mut through_gateway = Vec::new();
    for &(target, direct) in refused {
        let shown = String::from_utf8_lossy(target);
        let reply = stack.raw(&raw_get(target, b"")).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{shown}: {}",
            reply.text
        );
        reply.assert_problem_with_id(StatusCode::BAD_REQUEST);
        through_gateway.push(reply);
        if direct {
            for service in [stack.client_service(), stack.order_service()] {
                let reply = raw_request(service.port, &raw_get(target, b"")).await;
                assert_eq!(
                    reply.status,
                    StatusCode::BAD_REQUEST,
                    "{} {shown}: {}",
                    service.name,
                    reply.text
                );
                reply.assert_problem_with_id(StatusCode::BAD_REQUEST);
            }
        }
    }
    // Only the gateway answered: no service was asked.
    for reply in &through_gateway {
        answered_by_the_gateway(&stack, reply);
    }
    // Escapes that are needed pass, and so do dots inside a segment.
    let path = format!("/client/{id}");
    for target in [
        format!("/client/?ids={id}&name=A%20da%2F..%2E"),
        format!("/client/?ids={id}&limit=5"),
        path.clone(),
    ] {
        let reply = stack.raw(&raw_get(target.as_bytes(), b"")).await;
        assert_eq!(reply.status, StatusCode::OK, "{target}: {}", reply.text);
    }
    for target in [
        "/client/a%20b",
        "/client/%C3%A9",
        "/client/...",
        "/client/1.json",
    ] {
        let reply = stack.raw(&raw_get(target.as_bytes(), b"")).await;
        reply.assert_problem_with_id(StatusCode::NOT_FOUND);
        // Not found by client_service: the gateway passed it on.
        assert_ne!(access_line(&stack, &reply)["upstream_addr"], "", "{target}");
    }
    // `//client/1` is not `/client/1`: nginx does not merge the slashes.
    let reply = stack
        .raw(&raw_get(format!("/{path}").as_bytes(), b""))
        .await;
    reply.assert_problem_with_id(StatusCode::NOT_FOUND);
    answered_by_the_gateway(&stack, &reply);
}

/// Every status nginx produces with the shipped configuration, each
/// provoked for real through the gateway: a problem with the request id.
#[tokio::test]
async fn every_status_the_gateway_produces_is_a_problem_with_the_request_id() {
    let stack = Stack::start().await;
    let json = b"Content-Type: application/json\r\n";
    let cases: Vec<(&str, Vec<u8>, StatusCode)> = vec![
        (
            "/docs without its slash",
            raw_get(b"/docs", b""),
            StatusCode::MOVED_PERMANENTLY,
        ),
        (
            "/client without its slash",
            raw_get(b"/client", b""),
            StatusCode::PERMANENT_REDIRECT,
        ),
        (
            "a path read two ways",
            raw_get(b"/client/%2e%2e/", b""),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a method nginx cannot parse",
            raw_request_bytes(b"G@T", b"/client/", b"", b""),
            StatusCode::BAD_REQUEST,
        ),
        (
            "no Host in HTTP/1.1",
            b"GET /client/ HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "two Content-Lengths",
            raw_request_bytes(
                b"POST",
                b"/client/",
                b"Content-Length: 2\r\nContent-Length: 3\r\n",
                b"{}",
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a broken chunked body",
            raw_request_bytes(
                b"POST",
                b"/client/",
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
                b"zz\r\n{}\r\n0\r\n\r\n",
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            "an internal path",
            raw_get(b"/_gateway/problem", b""),
            StatusCode::NOT_FOUND,
        ),
        (
            "nothing there",
            raw_get(b"/nothing/here.ico", b""),
            StatusCode::NOT_FOUND,
        ),
        (
            "TRACE",
            raw_request_bytes(b"TRACE", b"/client/", b"", b""),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "POST to a file",
            raw_request_bytes(b"POST", b"/docs/index.html", b"Content-Length: 0\r\n", b""),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "If-Match on a file",
            raw_get(b"/docs/index.html", b"If-Match: \"other\"\r\n"),
            StatusCode::PRECONDITION_FAILED,
        ),
        (
            "a body over 1 MiB",
            raw_request_bytes(
                b"POST",
                b"/client/",
                &[&json[..], b"Content-Length: 2000000\r\n"].concat(),
                b"",
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "a chunked body over 1 MiB",
            raw_request_bytes(
                b"POST",
                b"/order/",
                &[&json[..], b"Transfer-Encoding: chunked\r\n"].concat(),
                format!("{:x}\r\n{}\r\n0\r\n\r\n", 1_100_000, "x".repeat(1_100_000)).as_bytes(),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "a target over 8 KiB",
            raw_get(format!("/order/?item={}", "x".repeat(9000)).as_bytes(), b""),
            StatusCode::URI_TOO_LONG,
        ),
        (
            "a header field over 8 KiB (nginx's 494)",
            raw_get(
                b"/client/",
                format!("X-Big: {}\r\n", "x".repeat(9000)).as_bytes(),
            ),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ),
        (
            "over a thousand header fields (nginx's 494)",
            raw_get(b"/client/", "X-A: 1\r\n".repeat(1200).as_bytes()),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ),
        (
            "a Transfer-Encoding nginx does not know",
            raw_request_bytes(b"POST", b"/client/", b"Transfer-Encoding: gzip\r\n", b""),
            StatusCode::NOT_IMPLEMENTED,
        ),
        (
            "HTTP/2.0 in an HTTP/1 request line",
            b"GET /client/ HTTP/2.0\r\nHost: x\r\n\r\n".to_vec(),
            StatusCode::HTTP_VERSION_NOT_SUPPORTED,
        ),
    ];
    for (what, request, status) in cases {
        let reply = stack.raw(&request).await;
        assert_eq!(reply.status, status, "{what}: {reply:?}");
        let body = reply.assert_problem_with_id(status);
        assert_eq!(
            body["title"],
            status.canonical_reason().unwrap_or_default(),
            "{what}: {}",
            reply.text
        );
        assert!(!reply.text.contains("<html"), "{what}: {}", reply.text);
        match status.as_u16() {
            301 => assert_eq!(reply.header("location"), "/docs/"),
            308 => assert_eq!(reply.header("location"), "/client/"),
            405 => assert!(
                reply.header("allow").starts_with("GET, HEAD"),
                "{what}: {reply:?}"
            ),
            _ => {}
        }
    }
    // 405 names the methods of the path asked for.
    let reply = stack
        .raw(&raw_request_bytes(b"TRACE", b"/order/7", b"", b""))
        .await;
    reply.assert_problem_with_id(StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.header("allow"), "GET, HEAD, PUT, PATCH, DELETE");
    // A caller's own request id comes back in the header and the body.
    let reply = stack
        .raw(&raw_get(b"/client/%2F", b"X-Request-ID: caller-7\r\n"))
        .await;
    assert_eq!(
        reply.assert_problem_with_id(StatusCode::BAD_REQUEST)["request_id"],
        "caller-7"
    );
}

/// 502: no instance can be reached.
#[tokio::test]
async fn no_service_to_reach_is_a_502_problem() {
    let mut stack = Stack::start().await;
    stack.kill_client_service();
    stack.kill_order_service();
    for path in ["/client/", "/order/1"] {
        let reply = stack.get(path).await;
        reply.assert_problem_with_id(StatusCode::BAD_GATEWAY);
        assert_eq!(reply.header("retry-after"), "2");
    }
}

/// 504: the instance took the request and did not answer within the
/// gateway's read timeout (10 s).
#[tokio::test]
async fn a_service_that_does_not_answer_is_a_504_problem() {
    let mut stack = Stack::start().await;
    stack.freeze_client_service();
    let started = Instant::now();
    let reply = stack.get("/client/").await;
    stack.thaw_client_service();
    reply.assert_problem_with_id(StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(reply.header("retry-after"), "2");
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
}

/// Each status in the shipped `error_page` directives, as (status asked
/// for, status answered): `=431` answers 494 as 431, and so on.
fn shipped_error_pages() -> Vec<(u16, u16)> {
    let template = std::fs::read_to_string(
        test_kit::workspace_root().join("gateway/templates/gateway.conf.template"),
    )
    .expect("the gateway template");
    let mut pages = Vec::new();
    for directive in template.split("error_page").skip(1) {
        let directive = directive.split(';').next().unwrap_or_default();
        if directive
            .trim_start()
            .starts_with(|c: char| !c.is_ascii_digit())
        {
            continue; // the word in a comment
        }
        let words: Vec<&str> = directive.split_whitespace().collect();
        let answered = words
            .iter()
            .find_map(|w| w.strip_prefix('=').and_then(|code| code.parse().ok()));
        for code in words.iter().filter_map(|w| w.parse::<u16>().ok()) {
            // A status a location names again (the sign-in form's) once.
            if !pages.iter().any(|&(seen, _)| seen == code) {
                pages.push((code, answered.unwrap_or(code)));
            }
        }
    }
    pages
}

/// The statuses nginx cannot produce with the shipped configuration (no
/// limit_conn for 503, no TLS for 495 to 497, no WebDAV ...) still
/// have their error page: a test-only `return` of each, added to the
/// rendered gateway, is answered by the shipped error pages with a
/// problem. Every status of the shipped `error_page` lines is tried, so a
/// status added there is tried too. 408 closes the connection without an
/// answer: nginx never answers a 408, error page or not.
#[tokio::test]
async fn every_status_of_the_error_pages_is_a_problem_with_the_request_id() {
    let pages = shipped_error_pages();
    let codes: Vec<u16> = pages.iter().map(|&(code, _)| code).collect();
    for code in [400, 404, 405, 408, 413, 414, 429, 494, 500, 502, 503, 504] {
        assert!(codes.contains(&code), "no error_page for {code}: {pages:?}");
    }
    let directives: String = codes
        .iter()
        .filter(|&&code| !(300..400).contains(&code))
        .map(|code| format!("    location = /_test/{code} {{ return {code}; }}\n"))
        .collect();
    let stack = Stack::start_with(Options {
        gateway_test_directives: directives,
        ..Options::default()
    })
    .await;
    for (code, answered) in pages {
        if (300..400).contains(&code) {
            continue; // a redirect needs its URL: the 301 and 308 above
        }
        let reply = stack
            .raw(&raw_get(format!("/_test/{code}").as_bytes(), b""))
            .await;
        if code == 408 {
            assert_eq!(reply.raw_status, Reply::NO_ANSWER, "{reply:?}");
            continue;
        }
        let status = StatusCode::from_u16(answered).unwrap();
        assert_eq!(reply.status, status, "{code}: {reply:?}");
        let body = reply.assert_problem_with_id(status);
        assert_eq!(
            body["title"],
            status.canonical_reason().unwrap_or_default(),
            "{code}: {}",
            reply.text
        );
        let retry = matches!(answered, 429 | 502 | 503 | 504);
        assert_eq!(
            reply.header("retry-after"),
            if retry { "2" } else { "" },
            "{code}"
        );
    }
}
