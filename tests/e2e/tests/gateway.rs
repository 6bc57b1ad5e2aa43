//! The gateway itself: routing with the path passed through whole, its own
//! health check, and its own errors in problem+json.

use e2e::Stack;
use reqwest::StatusCode;

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

#[tokio::test]
async fn a_path_without_the_trailing_slash_is_redirected_and_others_are_404() {
    let stack = Stack::start().await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let reply = no_redirects.get(stack.url("/client")).send().await.unwrap();
    assert_eq!(reply.status(), StatusCode::MOVED_PERMANENTLY);
    assert!(
        reply.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("/client/")
    );
    for path in ["/clients/", "/orders", "/favicon.ico"] {
        stack.get(path).await.assert_problem(StatusCode::NOT_FOUND);
    }
}
