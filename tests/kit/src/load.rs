//! Steady read traffic while a test breaks something, and the verdict:
//! enough requests sent, none failed.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crate::Stack;

/// Steady read traffic through the gateway from a few concurrent loops,
/// recording every answer that was not a 2xx.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<(usize, Vec<String>)>>,
}

impl Load {
    /// `loops` concurrent loops, each cycling through `paths` with GET.
    pub fn start(stack: &Stack, paths: Vec<String>, loops: usize) -> Self {
        Self::start_at(&stack.http, &stack.gateway, paths, loops)
    }

    /// The same against any gateway (e.g. one that `scripts/dev/run.sh` started).
    pub fn start_at(
        http: &reqwest::Client,
        gateway: &str,
        paths: Vec<String>,
        loops: usize,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..loops)
            .map(|n| {
                let (stop, http, gateway) = (stop.clone(), http.clone(), gateway.to_owned());
                let paths = paths.clone();
                tokio::spawn(async move {
                    let (mut sent, mut failures) = (0, Vec::new());
                    let started = Instant::now();
                    // Bounded: at most 2 minutes, whatever the test does.
                    while !stop.load(Ordering::SeqCst)
                        && started.elapsed() < Duration::from_secs(120)
                    {
                        let path = &paths[(sent + n) % paths.len()];
                        sent += 1;
                        match http.get(format!("{gateway}{path}")).send().await {
                            Ok(r) if r.status().is_success() => {}
                            Ok(r) => failures.push(format!(
                                "GET {path}: {} after {:?}",
                                r.status(),
                                started.elapsed()
                            )),
                            Err(e) => failures.push(format!("GET {path}: {e}")),
                        }
                    }
                    (sent, failures)
                })
            })
            .collect();
        Self { stop, tasks }
    }

    /// Stops the loops; returns how many requests were sent, and the failures.
    pub async fn stop(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let mut total = (0, Vec::new());
        for task in self.tasks {
            let (sent, failures) = task.await.expect("load task");
            total.0 += sent;
            total.1.extend(failures);
        }
        total
    }
}

/// Asserts that a [`Load`] sent enough requests and none failed.
#[track_caller]
pub fn assert_no_failures(sent: usize, failures: &[String]) {
    assert!(sent > 50, "only {sent} requests were sent");
    assert!(
        failures.is_empty(),
        "{} of {sent} failed: {failures:#?}",
        failures.len()
    );
}
