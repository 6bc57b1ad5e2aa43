//! Signing in and out of the console in a real browser: the home page
//! before and after, auth_service's sign-in form (a wrong password shown
//! there), the session cookie's attributes, a cross-site form post refused,
//! and the back button after signing out showing nothing private.

use std::time::Duration;

use browser::{Browser, ConsoleStack, bounded};

#[tokio::test]
async fn admin_signs_in_and_out_and_the_back_button_then_shows_nothing_private() {
    bounded(180, async {
        let console = ConsoleStack::start().await;
        let browser = console.browser().await;
        browser.goto("/").await;
        assert!(!browser.links("Sign in").await.is_empty());
        browser.check_page("home-signed-out", &[]).await;

        console.sign_in(&browser, "admin", "sign-in-form").await;
        let text = browser.body_text().await;
        assert!(text.contains("Signed in as"), "{text}");
        browser.check_page("home-signed-in", &[]).await;
        // /console/ is the console's too: it leads home.
        browser.goto("/console/").await;
        assert_eq!(browser.path().await, "/");

        console.sign_out(&browser).await;
        browser.check_page("home-after-sign-out", &[]).await;
        // Back to the page of the signed-in person: it was never stored
        // (Cache-Control: no-store), so the browser asks again and the
        // console, without a session, shows nobody's.
        browser.client().back().await.expect("back");
        browser.wait_loaded().await;
        let text = browser.body_text().await;
        assert!(
            !text.contains("Signed in as") && !browser.links("Sign in").await.is_empty(),
            "after signing out, back shows:\n{text}"
        );
        browser.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_wrong_password_shows_the_sign_in_pages_error() {
    bounded(120, async {
        let console = ConsoleStack::start().await;
        let browser = console.browser().await;
        console
            .open_sign_in_form(&browser, "sign-in-form-empty")
            .await;
        browser.fill("username", "admin").await;
        browser.fill("password", "not-the-password").await;
        browser.click_button("Sign in").await;
        let error = browser.text(".error[role=alert]").await;
        assert!(
            error.contains("The user name or the password is wrong"),
            "{error}"
        );
        // The form again (its 401 is expected), and no session.
        browser.check_page("sign-in-wrong-password", &[401]).await;
        assert!(browser.path().await.starts_with("/auth/"));
        browser.goto("/").await;
        assert!(!browser.links("Sign in").await.is_empty());
        browser.close().await;
    })
    .await;
}

#[tokio::test]
async fn the_session_cookie_is_http_only_lax_on_the_whole_site() {
    bounded(120, async {
        let console = ConsoleStack::start().await;
        let browser = console.browser().await;
        console.sign_in(&browser, "admin", "cookie-sign-in").await;
        let cookies = browser
            .client()
            .get_all_cookies()
            .await
            .expect("the cookies");
        let names: Vec<_> = cookies.iter().map(|c| c.name().to_owned()).collect();
        // Over plain HTTP: `console_session` (over HTTPS `__Host-console_session`,
        // Secure: the console's own tests show that); the sign-in's
        // cookie is gone once it is done.
        let session = cookies
            .iter()
            .find(|c| c.name() == "console_session")
            .unwrap_or_else(|| panic!("no console_session cookie among {names:?}"));
        assert!(!names.iter().any(|n| n == "console_login"), "{names:?}");
        assert_eq!(session.http_only(), Some(true), "{session}");
        assert_eq!(
            session.same_site().map(|s| s.to_string()).as_deref(),
            Some("Lax"),
            "{session}"
        );
        assert_eq!(session.path(), Some("/"), "{session}");
        assert_ne!(session.secure(), Some(true), "{session}");
        // A host-only cookie (no Domain attribute): the browser reports the
        // host it was set by.
        assert_eq!(session.domain(), Some("127.0.0.1"), "{session}");
        // HttpOnly: no script of the page can read it.
        let seen = browser.execute("return document.cookie", vec![]).await;
        assert!(
            !seen
                .as_str()
                .unwrap_or_default()
                .contains("console_session"),
            "{seen}"
        );
        browser.close().await;
    })
    .await;
}

/// A page of another origin (another port of 127.0.0.1: the same site, so
/// the Lax cookie IS sent; only the console's Origin / Sec-Fetch-Site check
/// stands in the way) sends a form to the console, with the right CSRF token
/// even: refused, and the session is still there.
#[tokio::test]
async fn a_form_posted_from_another_origin_is_refused() {
    bounded(180, async {
        let console = ConsoleStack::start().await;
        let browser = console.browser().await;
        console
            .sign_in(&browser, "admin", "cross-site-sign-in")
            .await;
        let csrf = console.csrf(&browser).await;
        let other = foreign_site(&console.stack.gateway, &csrf).await;
        browser
            .goto(&format!("http://127.0.0.1:{other}/sign-out"))
            .await;
        // The page sends its form by itself; wait for the console's answer.
        browser
            .wait_until(
                "the foreign form answered",
                Duration::from_secs(10),
                false,
                async |b: &Browser| b.url().await.starts_with(b.origin()),
            )
            .await;
        let text = browser.body_text().await;
        assert!(text.contains("another site"), "{text}");
        browser.check_page("cross-site-refused", &[403]).await;
        // Still signed in: the forged sign-out did nothing.
        browser.goto("/").await;
        assert!(!browser.buttons("Sign out").await.is_empty());
        browser.close().await;
    })
    .await;
}

/// A server on another port serving a page that posts a form to the
/// console's sign-out as soon as it loads (its own script, allowed by its
/// own policy). Returns its port.
async fn foreign_site(console: &str, csrf: &str) -> u16 {
    use axum::{Router, http::header, response::Html, routing::get};
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><title>Elsewhere</title>\
         <script src=\"/send.js\" defer></script></head><body><main><h1>Elsewhere</h1>\
         <form id=\"f\" method=\"post\" action=\"{console}/console/sign-out\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"></form></main></body></html>"
    );
    let app = Router::new()
        .route("/sign-out", get(move || async move { Html(page) }))
        .route(
            "/send.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript")],
                    "document.getElementById('f').submit();",
                )
            }),
        );
    test_kit::serve(app).await.0
}
