//! The page checks themselves can fail: on a page made to break them (an
//! inline script the CSP refuses, a script's console.error, an image
//! without alternative text, a title and headings outside the contract)
//! each is reported; on a clean page nothing is.

use axum::{
    Router,
    http::header,
    response::{Html, IntoResponse},
    routing::get,
};
use browser::{Driver, bounded, page_problems};

const CSP: &str = "default-src 'self'; frame-ancestors 'none'";

fn page(body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_SECURITY_POLICY, CSP)], Html(body))
}

const BAD: &str = "<!doctype html><html><head><meta charset=utf-8><title>Bad</title>\
    <script src=\"/noisy.js\"></script></head><body>\
    <script>document.title = 'inline ran';</script>\
    <img src=\"/missing.png\"><h1>One</h1><h1>Two</h1></body></html>";

const GOOD: &str = "<!doctype html><html lang=\"en\"><head><meta charset=utf-8>\
    <title>Good · console</title></head><body><main><h1>Good</h1>\
    <p>Nothing wrong here.</p></main></body></html>";

#[tokio::test]
async fn the_page_checks_report_console_errors_csp_violations_and_axe_violations() {
    bounded(120, async {
        let app = Router::new()
            .route("/bad", get(|| async { page(BAD) }))
            .route("/good", get(|| async { page(GOOD) }))
            .route(
                "/noisy.js",
                get(|| async {
                    (
                        [(header::CONTENT_TYPE, "text/javascript")],
                        "console.error('a deliberate error');",
                    )
                }),
            );
        let (port, _server) = test_kit::serve(app).await;
        let driver = Driver::start().await;
        let browser = driver.session(&format!("http://127.0.0.1:{port}")).await;

        browser.goto("/bad").await;
        let problems = page_problems(&browser, &[]).await.join("\n");
        for expected in [
            "Content Security Policy",
            "a deliberate error",
            "missing.png",
            "axe: image-alt",
            "axe: html-has-lang",
            "does not end with \" · console\"",
            "2 <h1> elements",
        ] {
            assert!(
                problems.contains(expected),
                "`{expected}` not reported:\n{problems}"
            );
        }
        assert_eq!(browser.title().await, "Bad", "the inline script ran");

        browser.goto("/good").await;
        let problems = page_problems(&browser, &[]).await;
        assert!(problems.is_empty(), "{problems:#?}");
        browser.check_page("checks-good", &[]).await;
        browser.close().await;
    })
    .await;
}
