//! The gateway itself: routing with the path passed through whole, its own
//! health check, and its own errors in problem+json.

use reqwest::StatusCode;
use test_kit::Stack;

#[tokio::test]
async fn routes_by_prefix_and_passes_the_whole_path_and_query() {
    let stack = Stack::start().await;
    let client = stack.create_client("Ada", "A-1").await;
    let path = format!("/client/?ids={}&limit=5", client["id"]);
    let through_gateway = stack.get(&path).await;
    let direct = stack
        .http
        .get(format!("{}{path}", stack.client_service().url()))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(through_gateway.body, direct);
    assert_eq!(through_gateway.body[0]["id"], client["id"]);
    // The request id the service made comes back through the gateway.
    assert!(!through_gateway.header("x-request-id").is_empty());
}

#[tokio::test]
async fn health_endpoints_are_the_gateways_own_and_the_services_are_not_routed() {
    let stack = Stack::start().await;
    let health = stack.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.text.trim(), "ok");
    for path in ["/readyz", "/client/healthz", "/order/readyz"] {
        let reply = stack.get(path).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            reply.text
        );
    }
    for service in [stack.client_service(), stack.order_service()] {
        for path in ["/healthz", "/readyz"] {
            let direct = stack
                .http
                .get(format!("{}{path}", service.url()))
                .send()
                .await
                .unwrap();
            assert_eq!(direct.status(), StatusCode::OK, "{} {path}", service.name);
        }
    }
}

/// A collection without its trailing slash is a 308 (method and body kept,
/// a problem as the body), not nginx's 301; other unknown paths are 404.
#[tokio::test]
async fn a_path_without_the_trailing_slash_is_redirected_and_others_are_404() {
    let stack = Stack::start().await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, location) in [
        ("/client", "/client/"),
        ("/order", "/order/"),
        ("/client?limit=2", "/client/?limit=2"),
    ] {
        let reply = test_kit::Reply::from(
            no_redirects
                .post(stack.url(path))
                .json(&serde_json::json!({"name": "Ada"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        reply.assert_problem_with_id(StatusCode::PERMANENT_REDIRECT);
        assert_eq!(reply.header("location"), location);
    }
    for path in ["/clients/", "/orders", "/client/x/", "/clientx"] {
        stack
            .get(path)
            .await
            .assert_problem_with_id(StatusCode::NOT_FOUND);
    }
}

/// `/` and `/console/…` go to the console's upstream (CONSOLE_ADDRS): in
/// this stack nothing listens there, so the gateway's own 502 answers, and
/// the access log names the console's address. The authorization code of
/// the sign-in's callback is not logged.
#[tokio::test]
async fn the_root_and_console_paths_go_to_the_console_upstream() {
    let stack = Stack::start().await;
    let console = format!("127.0.0.1:{}", stack.console_port);
    for path in [
        "/",
        "/?x=1",
        "/console/",
        "/console/clients",
        "/console/callback?code=secret-code-1&state=s",
    ] {
        let reply = stack.anonymous.get(stack.url(path)).send().await.unwrap();
        assert_eq!(reply.status(), StatusCode::BAD_GATEWAY, "{path}");
    }
    let log = stack.access_log();
    let to_console: Vec<_> = log
        .iter()
        .filter(|line| line["upstream_addr"].as_str() == Some(console.as_str()))
        .collect();
    assert_eq!(to_console.len(), 5, "{log:?}");
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains("secret-code-1"), "{text}");
    assert!(
        text.contains("/console/callback?(query not logged)"),
        "{text}"
    );
    // The icon browsers ask every site for: none, and no error either.
    let icon = stack
        .anonymous
        .get(stack.url("/favicon.ico"))
        .send()
        .await
        .unwrap();
    assert_eq!(icon.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_served_openapi_documents_are_the_committed_ones() {
    let stack = Stack::start().await;
    for (path, file) in [
        (
            "/client/openapi.json",
            "services/client_service/openapi.json",
        ),
        ("/order/openapi.json", "services/order_service/openapi.json"),
    ] {
        let served = stack.get(path).await;
        assert_eq!(served.status, StatusCode::OK);
        let committed: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(test_kit::workspace_root().join(file)).unwrap(),
        )
        .unwrap();
        assert_eq!(
            served.body, committed,
            "{path} differs from {file}: run `UPDATE_OPENAPI=1 cargo test`"
        );
        assert_eq!(served.body["openapi"], "3.1.0");
    }
}

#[tokio::test]
async fn the_docs_page_shows_both_services_from_local_files_only() {
    let stack = Stack::start().await;
    let page = stack.get("/docs/").await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "build it with gateway/docs/build.sh (make test does)"
    );
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(page.text.contains("swagger-ui"));
    let initializer = stack.get("/docs/swagger-initializer.js").await;
    assert_eq!(initializer.header("content-type"), "application/javascript");
    for url in [
        "/client/openapi.json",
        "/order/openapi.json",
        "validatorUrl: null",
    ] {
        assert!(initializer.text.contains(url), "{url} missing");
    }
    // Every file the page loads is served here, and none is fetched elsewhere.
    for asset in [
        "swagger-ui.css",
        "index.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
    ] {
        let reply = stack.get(&format!("/docs/{asset}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{asset}");
    }
    for text in [&page.text, &initializer.text] {
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "an absolute URL in {text}"
        );
    }
}
