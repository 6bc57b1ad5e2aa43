//! One browser session: go to pages, fill and send forms, wait (each wait
//! bounded), and check every page the same way ([`Browser::check_page`]):
//!
//! - the browser's console holds no error and no Content-Security-Policy
//!   violation (read from chromedriver's log endpoint: Chromium reports
//!   both there, the violations as errors naming the directive);
//! - axe-core, injected into the page (WebDriver's scripts are not subject
//!   to the page's CSP), reports no violation;
//! - a console page follows the contract's frame: a `<title>` ending in
//!   " · console" and exactly one `<h1>`;
//! - a screenshot goes to `console-screenshots/NAME.png` in the target
//!   folder.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

pub use fantoccini::Locator;
use fantoccini::{Client, elements::Element};
use serde_json::{Value, json};
use test_kit::workspace_root;

use crate::axe;

/// How long a wait for an element or a page lasts at most.
pub const WAIT: Duration = Duration::from_secs(10);

/// A browser session of a [`Driver`](crate::Driver).
pub struct Browser {
    client: Client,
    driver: String,
    session: String,
    origin: String,
    http: reqwest::Client,
}

impl Browser {
    pub(crate) async fn new(client: Client, driver: String, origin: String) -> Self {
        let session = client
            .session_id()
            .await
            .expect("the session's id")
            .expect("a session id");
        Self {
            client,
            driver,
            session,
            origin,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// fantoccini's client, for what this type does not wrap.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The origin the paths of [`Browser::goto`] are on (the gateway's).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Opens `target`: a path on the origin (`/console/clients`) or a URL.
    pub async fn goto(&self, target: &str) {
        let url = if target.starts_with('/') {
            format!("{}{target}", self.origin)
        } else {
            target.to_owned()
        };
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
        self.wait_loaded().await;
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("the current URL")
            .to_string()
    }

    /// The current URL's path and query.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("the current URL");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    pub async fn title(&self) -> String {
        self.client.title().await.expect("the page's title")
    }

    /// Runs `script` in the page (a function body; `arguments` are `args`).
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("the script failed ({e}):\n{script:.300}"))
    }

    /// Marks the document shown now, so that [`Self::wait_for_next_document`]
    /// can tell it from the one a click leads to (right after a click, the
    /// old document is still there, and "complete").
    async fn mark_document(&self) {
        self.execute("window.__beforeClick = true;", vec![]).await;
    }

    /// Waits until a document other than the marked one has loaded.
    pub async fn wait_for_next_document(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let state = self
                .client
                .execute(
                    "return window.__beforeClick === undefined && document.readyState === 'complete';",
                    vec![],
                )
                .await;
            if matches!(state, Ok(Value::Bool(true))) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no new page within {WAIT:?} of the click"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the document has loaded.
    pub async fn wait_loaded(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let state = self
                .client
                .execute("return document.readyState", vec![])
                .await;
            if matches!(state, Ok(Value::String(s)) if s == "complete") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the page did not load in {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first element `css` selects, waiting for it (at most [`WAIT`]).
    pub async fn find(&self, css: &str) -> Element {
        self.find_by(Locator::Css(css), css).await
    }

    async fn find_by(&self, locator: Locator<'_>, what: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(element) = self.client.find(locator).await {
                return element;
            }
            if Instant::now() >= deadline {
                panic!(
                    "no {what} on {} after {WAIT:?}; the page says:\n{}",
                    self.url().await,
                    self.body_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every element `css` selects now (no wait).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_default()
    }

    /// Whether `css` selects anything now (no wait).
    pub async fn exists(&self, css: &str) -> bool {
        !self.find_all(css).await.is_empty()
    }

    /// The text of the first element `css` selects (waiting for it).
    pub async fn text(&self, css: &str) -> String {
        self.find(css)
            .await
            .text()
            .await
            .expect("an element's text")
    }

    /// The page's visible text (empty when it has no body).
    pub async fn body_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The page's HTML as the browser holds it now.
    pub async fn source(&self) -> String {
        self.client.source().await.expect("the page's source")
    }

    /// Types `value` into the field named `name` (emptied first).
    pub async fn fill(&self, name: &str, value: &str) {
        let field = self.find(&format!("[name=\"{name}\"]")).await;
        field.clear().await.expect("the field emptied");
        field.send_keys(value).await.expect("the field typed into");
    }

    /// Sets the field named `name` to `value` by script (a date field
    /// takes `YYYY-MM-DD` this way whatever the browser's locale).
    pub async fn set_value(&self, name: &str, value: &str) {
        let field = self.find(&format!("[name=\"{name}\"]")).await;
        let element = serde_json::to_value(&field).expect("an element reference");
        self.execute(
            "arguments[0].value = arguments[1]; \
             arguments[0].dispatchEvent(new Event('input', {bubbles: true})); \
             arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
            vec![element, json!(value)],
        )
        .await;
    }

    /// Chooses the option of value `value` in the select named `name`.
    pub async fn select(&self, name: &str, value: &str) {
        self.find(&format!("select[name=\"{name}\"]"))
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("no option {value} in select {name}: {e}"));
    }

    /// Clicks the radio button named `name` of value `value`.
    pub async fn choose(&self, name: &str, value: &str) {
        self.find(&format!(
            "input[type=radio][name=\"{name}\"][value=\"{value}\"]"
        ))
        .await
        .click()
        .await
        .expect("the radio button clicked");
    }

    /// Clicks the button whose text is `label` (the first, waiting for
    /// it), then waits for the page it leads to.
    pub async fn click_button(&self, label: &str) {
        let xpath = format!("//button[normalize-space(.)='{label}']");
        let button = self
            .find_by(Locator::XPath(&xpath), &format!("button \"{label}\""))
            .await;
        self.mark_document().await;
        button
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click \"{label}\": {e}"));
        self.wait_for_next_document().await;
    }

    /// Clicks the link whose text is `text`, then waits for its page.
    pub async fn click_link(&self, text: &str) {
        let xpath = format!("//a[normalize-space(.)='{text}']");
        let link = self
            .find_by(Locator::XPath(&xpath), &format!("link \"{text}\""))
            .await;
        self.mark_document().await;
        link.click()
            .await
            .unwrap_or_else(|e| panic!("cannot click \"{text}\": {e}"));
        self.wait_for_next_document().await;
    }

    /// The links whose text is `text` (no wait).
    pub async fn links(&self, text: &str) -> Vec<Element> {
        let xpath = format!("//a[normalize-space(.)='{text}']");
        self.client
            .find_all(Locator::XPath(&xpath))
            .await
            .unwrap_or_default()
    }

    /// The buttons whose text is `label` (no wait).
    pub async fn buttons(&self, label: &str) -> Vec<Element> {
        let xpath = format!("//button[normalize-space(.)='{label}']");
        self.client
            .find_all(Locator::XPath(&xpath))
            .await
            .unwrap_or_default()
    }

    /// Waits until `check` holds for the page (reloading it first when
    /// `reload`), at most `limit`; panics with the page's text otherwise.
    pub async fn wait_until<F>(&self, what: &str, limit: Duration, reload: bool, check: F)
    where
        F: AsyncFn(&Self) -> bool,
    {
        let deadline = Instant::now() + limit;
        loop {
            if reload {
                self.client.refresh().await.expect("the page reloaded");
                self.wait_loaded().await;
            }
            if check(self).await {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{what}: not after {limit:?} on {}; the page says:\n{}",
                    self.url().await,
                    self.body_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The browser's console log since the last call (chromedriver's log
    /// endpoint empties it): entries with `level` and `message`.
    pub async fn log(&self) -> Vec<Value> {
        let url = format!("{}/session/{}/se/log", self.driver, self.session);
        let reply = self
            .http
            .post(&url)
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("the browser's log ({url}): {e}"));
        let status = reply.status();
        let body: Value = reply.json().await.unwrap_or_default();
        assert!(status.is_success(), "the browser's log: {status} {body}");
        body["value"].as_array().cloned().unwrap_or_default()
    }

    /// axe-core's violations on the page, one line each: the rule, its
    /// impact, what it asks for, and the elements at fault.
    pub async fn axe(&self) -> Vec<String> {
        let script = format!(
            "{}\n;return axe.run(document, {{resultTypes: ['violations']}}).then(r => \
             r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ': ' + \
             v.nodes.map(n => n.target.join(' ')).join(', ')));",
            axe::source()
        );
        match self.execute(&script, vec![]).await {
            Value::Array(lines) => lines
                .iter()
                .map(|l| l.as_str().unwrap_or_default().to_owned())
                .collect(),
            other => panic!("axe-core answered {other}"),
        }
    }

    /// Writes a screenshot of the page to `console-screenshots/NAME.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("the screenshots folder");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("the screenshot written");
    }

    /// The checks of every page (see the module's comment), then its
    /// screenshot `name`; panics listing every problem. A page answered
    /// with a status of `statuses` (e.g. the 409 of a conflict) may say so
    /// in the console ("the server responded with a status of 409").
    pub async fn check_page(&self, name: &str, statuses: &[u16]) {
        self.wait_loaded().await;
        let problems = page_problems(self, statuses).await;
        self.screenshot(name).await;
        assert!(
            problems.is_empty(),
            "page {name} ({}): {} problem(s):\n  {}",
            self.url().await,
            problems.len(),
            problems.join("\n  ")
        );
    }

    /// Ends the session (its Chromium quits).
    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// What is wrong with the page `browser` shows (see [`Browser::check_page`]):
/// console errors and CSP violations, axe-core's violations, and for a
/// console page (not auth_service's) its title and `<h1>`.
pub async fn page_problems(browser: &Browser, statuses: &[u16]) -> Vec<String> {
    let mut problems = Vec::new();
    for entry in browser.log().await {
        let level = entry["level"].as_str().unwrap_or_default();
        let message = entry["message"].as_str().unwrap_or_default();
        let csp = message.contains("Content Security Policy")
            || message.contains("Content-Security-Policy");
        let expected = statuses
            .iter()
            .any(|s| message.contains(&format!("the server responded with a status of {s}")));
        if csp || (level == "SEVERE" && !expected) {
            problems.push(format!("console {level}: {message}"));
        }
    }
    for violation in browser.axe().await {
        problems.push(format!("axe: {violation}"));
    }
    let url = browser.url().await;
    let own = url.starts_with(browser.origin()) && !browser.path().await.starts_with("/auth/");
    if own {
        let title = browser.title().await;
        if !title.ends_with(" · console") {
            problems.push(format!(
                "title \"{title}\" does not end with \" · console\""
            ));
        }
        let h1 = browser.find_all("h1").await.len();
        if h1 != 1 {
            problems.push(format!("{h1} <h1> elements, not one"));
        }
    }
    problems
}

/// Where the screenshots go: `console-screenshots/` in cargo's target
/// folder (`CARGO_TARGET_DIR`, else the workspace's `target`).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    target.join("console-screenshots")
}
