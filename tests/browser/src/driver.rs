//! chromedriver (Debian's `chromium-driver`) on a free port of 127.0.0.1,
//! started by the test and killed with it, and browser sessions of it:
//! each a headless Chromium of its own (its own profile: its own cookies),
//! with a fixed window size and its console log kept for the checks.

use std::{
    os::unix::process::CommandExt,
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use fantoccini::ClientBuilder;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use test_kit::{Process, free_port};

use crate::browser::Browser;

/// The window every page is shown (and screenshot) in.
pub const WINDOW: (u32, u32) = (1280, 900);

/// What to install when the browser or its driver is missing.
const INSTALL: &str = "install Debian's chromium and chromium-driver \
     (apt-get install chromium chromium-driver; `scripts/setup/prerequisites.sh test` \
     does it as root), or name them with CHROMIUM and CHROMEDRIVER";

/// A running chromedriver.
pub struct Driver {
    url: String,
    chromium: PathBuf,
    process: Process,
    _dir: tempfile::TempDir,
}

/// `name` as given by the environment variable `var`, else the first of
/// `candidates` that exists, else `name` on PATH; None when none is there.
fn find(var: &str, candidates: &[&str], name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(path.into());
    }
    if let Some(found) = candidates.iter().map(PathBuf::from).find(|p| p.exists()) {
        return Some(found);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.exists())
    })
}

impl Driver {
    /// Starts chromedriver (`CHROMEDRIVER`, else /usr/bin/chromedriver or
    /// the one on PATH) for Chromium (`CHROMIUM`, else /usr/bin/chromium),
    /// and waits until it answers; panics, saying what to install, when
    /// either is missing.
    pub async fn start() -> Self {
        let driver = find("CHROMEDRIVER", &["/usr/bin/chromedriver"], "chromedriver")
            .unwrap_or_else(|| panic!("chromedriver is missing: {INSTALL}"));
        let chromium = find("CHROMIUM", &["/usr/bin/chromium"], "chromium")
            .unwrap_or_else(|| panic!("chromium is missing: {INSTALL}"));
        let dir = tempfile::tempdir().expect("a folder for chromedriver");
        let port = free_port();
        let mut command = Command::new(&driver);
        command
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .current_dir(dir.path())
            // A process group of its own, with its Chromiums: ended as one
            // when the test ends, even a test that panicked mid-session.
            .process_group(0);
        let mut process =
            Process::new("chromedriver", command, dir.path().join("chromedriver.log"));
        process.spawn();
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            process.assert_not_exited();
            let ready = http
                .get(format!("{url}/status"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success());
            if let Some(reply) = ready {
                let status: serde_json::Value = reply.json().await.unwrap_or_default();
                if status["value"]["ready"] == true {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver ({}) not ready after 20 s:\n{}",
                driver.display(),
                process.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            url,
            chromium,
            process,
            _dir: dir,
        }
    }

    /// The driver's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A new browser session (a new headless Chromium, a fresh profile)
    /// for pages of `origin`.
    pub async fn session(&self, origin: &str) -> Browser {
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-gpu".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--disable-extensions".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--password-store=basic".to_owned(),
            "--lang=en-US".to_owned(),
            format!("--window-size={},{}", WINDOW.0, WINDOW.1),
        ];
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": args,
                // No "Chrome is being controlled by automated software" bar.
                "excludeSwitches": ["enable-automation"],
            },
            // The page's console (errors, CSP violations), read after
            // each page through the driver's log endpoint.
            "goog:loggingPrefs": {"browser": "ALL"},
            "timeouts": {"pageLoad": 20_000, "script": 20_000, "implicit": 0},
            "unhandledPromptBehavior": "dismiss",
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let client = tokio::time::timeout(
            Duration::from_secs(30),
            ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities)
                .connect(&self.url),
        )
        .await
        .expect("a browser session within 30 s")
        .unwrap_or_else(|e| panic!("no browser session ({e}):\n{}", self.process.log()));
        Browser::new(client, self.url.clone(), origin.to_owned()).await
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Then whatever of its group is left: the Chromiums of sessions
        // never closed (a test that panicked).
        let group = self.process.id();
        self.process.terminate(Duration::from_secs(5));
        if let Some(group) = group.filter(|g| *g > 1) {
            // SAFETY: kill(2) with a negative pid signals that process
            // group: the one made for chromedriver above, nothing else.
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
        }
    }
}
