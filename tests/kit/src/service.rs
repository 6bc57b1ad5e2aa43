//! One service binary of the system on a port of its own: started, stopped
//! and started again by the test, its log kept, ready when its `/readyz`
//! says so.

use std::{
    path::PathBuf,
    process::{Command, ExitStatus},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{Process, answers, bin_dir};

/// A service binary (from [`bin_dir`]) listening on 127.0.0.1:`port`.
pub struct Service {
    pub name: &'static str,
    pub port: u16,
    process: Process,
}

impl Service {
    /// The binary `name`, not started yet, with `env` (`LISTEN_ADDR` and
    /// `RUST_LOG=info` set after it), its output appended to `log`.
    pub fn new(
        name: &'static str,
        port: u16,
        env: impl IntoIterator<Item = (String, String)>,
        log: impl Into<PathBuf>,
    ) -> Self {
        let mut command = Command::new(bin_dir().join(name));
        command
            .envs(env)
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info");
        Self {
            name,
            port,
            process: Process::new(name, command, log),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn process(&self) -> &Process {
        &self.process
    }

    /// The process, to signal, stop or start it again.
    pub fn process_mut(&mut self) -> &mut Process {
        &mut self.process
    }

    /// Starts it (again: same port, environment and log).
    pub fn spawn(&mut self) {
        self.process.spawn();
    }

    /// Sets `name` to `value` for the next start.
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.process.command().env(name, value);
    }

    /// SIGKILL: its connections break at once.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// SIGTERM, and waits for it to exit.
    pub fn stop(&mut self) -> ExitStatus {
        self.process.stop()
    }

    /// Starts it and waits until it is ready.
    pub async fn start(&mut self) {
        self.spawn();
        self.wait_ready().await;
    }

    /// Waits until its `/readyz` answers 2xx, for at most 30 s; panics with
    /// its log if it exits meanwhile.
    pub async fn wait_ready(&mut self) {
        let url = format!("{}/readyz", self.url());
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.process.assert_not_exited();
            if answers(&http, &url).await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready after 30 s:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The service's log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The service's JSON log lines so far (`LOG_FORMAT=json`); lines that
    /// are not JSON objects are left out.
    pub fn log_lines(&self) -> Vec<Value> {
        self.process.log_lines()
    }
}
