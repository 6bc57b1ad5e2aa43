//! The system with its web console (test_kit's Stack with
//! `Options::console`) and a chromedriver beside it; signing in as the
//! development users through auth_service's sign-in form, as a person does.

use std::{future::Future, time::Duration};

use test_kit::{Options, Stack};

use crate::{browser::Browser, driver::Driver};

/// Runs `test` for at most `secs` seconds: a browser test never hangs.
pub async fn bounded<F: Future<Output = ()>>(secs: u64, test: F) {
    if tokio::time::timeout(Duration::from_secs(secs), test)
        .await
        .is_err()
    {
        panic!("the test took longer than {secs} s");
    }
}

/// The stack and its browser driver.
pub struct ConsoleStack {
    pub stack: Stack,
    pub driver: Driver,
}

impl ConsoleStack {
    /// The whole system with its console, and chromedriver.
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// The same with other options (`console` is set here).
    pub async fn start_with(options: Options) -> Self {
        // The driver first: a missing browser fails at once, before the
        // system is built and started.
        let driver = Driver::start().await;
        let stack = Stack::start_with(Options {
            console: true,
            ..options
        })
        .await;
        Self { stack, driver }
    }

    /// A new browser session on the gateway's origin.
    pub async fn browser(&self) -> Browser {
        self.driver.session(&self.stack.gateway).await
    }

    /// The development user `role` ("admin" or "viewer") and its password.
    pub fn user(&self, role: &str) -> (String, String) {
        let (name, password) = self.stack.dev_user(&role.to_uppercase());
        assert_eq!(name, role, "dev-users.env names another user");
        (name, password)
    }

    /// Opens the console's sign-in, which leads to auth_service's form;
    /// returns on that form (not yet sent), checked like every page.
    pub async fn open_sign_in_form(&self, browser: &Browser, screenshot: &str) {
        browser.goto("/").await;
        browser.click_link("Sign in").await;
        browser.find("input[name=username]").await;
        assert!(
            browser.path().await.starts_with("/auth/"),
            "the sign-in is not auth_service's form: {}",
            browser.url().await
        );
        browser.check_page(screenshot, &[]).await;
    }

    /// Signs in as `role` from the home page, through auth_service's form;
    /// checks that the browser is back on the console, signed in.
    pub async fn sign_in(&self, browser: &Browser, role: &str, screenshot: &str) {
        let (name, password) = self.user(role);
        self.open_sign_in_form(browser, screenshot).await;
        browser.fill("username", &name).await;
        browser.fill("password", &password).await;
        browser.click_button("Sign in").await;
        browser
            .wait_until(
                "signed in, back on the console",
                Duration::from_secs(10),
                false,
                async |b: &Browser| !b.buttons("Sign out").await.is_empty(),
            )
            .await;
        let path = browser.path().await;
        assert!(
            path == "/" || path.starts_with("/console/"),
            "not back on the console after signing in: {path}"
        );
    }

    /// Signs out with the navigation bar's button; checks that the browser
    /// ends on the console, signed out.
    pub async fn sign_out(&self, browser: &Browser) {
        browser.click_button("Sign out").await;
        browser
            .wait_until(
                "signed out, back on the console",
                Duration::from_secs(10),
                false,
                async |b: &Browser| !b.links("Sign in").await.is_empty(),
            )
            .await;
        assert_eq!(browser.path().await, "/", "not back home after signing out");
    }

    /// The CSRF token of the page's forms (the sign-out form's).
    pub async fn csrf(&self, browser: &Browser) -> String {
        browser
            .find("form[action=\"/console/sign-out\"] input[name=csrf]")
            .await
            .attr("value")
            .await
            .expect("the csrf field's value")
            .expect("a csrf value")
    }
}
