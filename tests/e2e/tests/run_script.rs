//! `make run` itself: scripts/dev/run.sh, the command users run, started here
//! as they start it (only the ports, RUN_DIR, DATA_DIR and RUN_BIN_DIR are
//! set, so that it runs beside other tests and does not build release
//! binaries). It supervises its instances as `restart: unless-stopped`
//! does: one killed and one stopped come back by themselves while reads
//! through the gateway go on without a failure; one that keeps exiting is
//! given up while the rest keep serving; SIGTERM stops everything. Two
//! stacks with their own RUN_DIR run from one checkout without mixing logs.
//! The web console answers at the gateway's `/`, and the banner tells
//! whom to sign in as.

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use test_kit::{
    Backend, GATEWAY_FAIL_TIMEOUT, Load, Process, alive, answers, assert_no_failures, bin_dir,
    command_of, free_port_block, json, send_signal, workspace_root,
};

/// scripts/dev/run.sh running, with its output in a file. (In the test's own
/// process group: a Ctrl-C to `cargo test` reaches it, and it stops its
/// stack.)
struct RunSh {
    process: Process,
    base: u16,
    replicas: u16,
    run_dir: PathBuf,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl RunSh {
    /// Starts `REPLICAS=replicas scripts/dev/run.sh` on a free block of ports,
    /// with `env` added, and waits until every instance and the gateway
    /// answer.
    async fn start(replicas: u16, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let run_dir = dir.path().join("run");
        // Instance i of client_service on base + 2i, of order_service on
        // base + 1 + 2i; the gateway just after them, then auth_service,
        // then the console.
        let base = free_port_block(2 * replicas + 3);
        let mut command = Command::new(workspace_root().join("scripts/dev/run.sh"));
        command
            .env("REPLICAS", replicas.to_string())
            .env("CLIENT_SERVICE_PORT", base.to_string())
            .env("ORDER_SERVICE_PORT", (base + 1).to_string())
            .env("GATEWAY_PORT", (base + 2 * replicas).to_string())
            .env("AUTH_SERVICE_PORT", (base + 2 * replicas + 1).to_string())
            .env("CONSOLE_PORT", (base + 2 * replicas + 2).to_string())
            .env("RUN_DIR", &run_dir)
            .env("DATA_DIR", dir.path().join("data"))
            .env("RUN_BIN_DIR", bin_dir())
            .env("LOG_FORMAT", "json")
            .env("SHUTDOWN_GRACE_SECS", "5")
            .envs(test_kit::WITHOUT_RATE_LIMITS);
        // On SQLite run.sh's own default (DATA_DIR); on PostgreSQL the
        // databases the harness makes, passed as run.sh documents.
        if let backend @ Backend::Postgres { .. } = Backend::from_env() {
            let (clients, orders) = test_kit::databases(&backend, dir.path()).await;
            let auth = test_kit::auth_database(&backend, dir.path()).await;
            command
                .env("CLIENT_DATABASE_URL", clients)
                .env("ORDER_DATABASE_URL", orders)
                .env("AUTH_DATABASE_URL", auth);
        }
        command.envs(env.iter().copied());
        let mut process =
            Process::new("scripts/dev/run.sh", command, dir.path().join("run.sh.out"));
        process.spawn();
        let mut run = Self {
            process,
            base,
            replicas,
            run_dir,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            _dir: dir,
        };
        let mut urls: Vec<String> = (0..replicas)
            .flat_map(|i| [run.port("client_service", i), run.port("order_service", i)])
            .map(|port| format!("http://127.0.0.1:{port}/readyz"))
            .collect();
        urls.push(format!(
            "http://127.0.0.1:{}/readyz",
            run.port("console", 0)
        ));
        urls.push(format!("{}/healthz", run.gateway()));
        for url in urls {
            run.wait_until(&format!("{url} answers"), Duration::from_secs(60), |run| {
                let url = url.clone();
                let http = run.http.clone();
                async move { answers(&http, &url).await }
            })
            .await;
        }
        // A token of the development client run.sh made in DATA_DIR, as
        // the guide tells a user to get one: scripts/dev/dev-token.sh, with
        // the DATA_DIR and GATEWAY_PORT of this run.
        let token = run.dev_token();
        run.http = test_kit::bearer_client(&token);
        run
    }

    /// `scripts/dev/dev-token.sh`: its standard output, which must be a token
    /// and nothing else.
    fn dev_token(&self) -> String {
        let out = Command::new(workspace_root().join("scripts/dev/dev-token.sh"))
            .env("DATA_DIR", self._dir.path().join("data"))
            .env("GATEWAY_PORT", (self.base + 2 * self.replicas).to_string())
            .stdin(Stdio::null())
            .output()
            .expect("cannot run scripts/dev/dev-token.sh");
        let token = String::from_utf8(out.stdout).expect("a token is text");
        assert!(
            out.status.success(),
            "scripts/dev/dev-token.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = token.trim_end_matches('\n');
        assert!(
            token.split('.').count() == 3 && !token.contains(char::is_whitespace),
            "scripts/dev/dev-token.sh printed {token:?}, not a token alone"
        );
        token.to_owned()
    }

    /// `scripts/dev/sign-in.sh USER`, as the README shows it: its standard
    /// output, the token response, which must hold an access token that
    /// reads through the gateway.
    async fn sign_in(&self, user: &str) {
        let out = Command::new(workspace_root().join("scripts/dev/sign-in.sh"))
            .arg(user)
            .env("DATA_DIR", self._dir.path().join("data"))
            .env("GATEWAY_PORT", (self.base + 2 * self.replicas).to_string())
            .stdin(Stdio::null())
            .output()
            .expect("cannot run scripts/dev/sign-in.sh");
        assert!(
            out.status.success(),
            "scripts/dev/sign-in.sh {user} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "scripts/dev/sign-in.sh {user} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        let access = body["access_token"].as_str().expect("an access token");
        assert!(body["refresh_token"].is_string(), "{body}");
        let read = reqwest::Client::new()
            .get(format!("{}/client/", self.gateway()))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(read, StatusCode::OK, "{user}'s token from sign-in.sh");
    }

    fn gateway(&self) -> String {
        format!("http://127.0.0.1:{}", self.base + 2 * self.replicas)
    }

    /// The gateway as people open it in a browser (the console's origin,
    /// and the web client's redirect URIs).
    fn web_origin(&self) -> String {
        format!("http://localhost:{}", self.base + 2 * self.replicas)
    }

    fn port(&self, service: &str, i: u16) -> u16 {
        match service {
            "client_service" => self.base + 2 * i,
            "order_service" => self.base + 1 + 2 * i,
            "console" => self.base + 2 * self.replicas + 2,
            other => panic!("no service {other}"),
        }
    }

    /// The process id in RUN_DIR/<label>.pid, e.g. `client_service.1`.
    fn pid(&self, label: &str) -> Option<i32> {
        std::fs::read_to_string(self.run_dir.join(format!("{label}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Every process id that run.sh has written (instances and gateway).
    fn pids(&self) -> Vec<(String, i32)> {
        let mut labels: Vec<String> = (0..self.replicas)
            .flat_map(|i| [format!("client_service.{i}"), format!("order_service.{i}")])
            .collect();
        labels.push("auth_service.0".into());
        labels.push("console.0".into());
        labels.push("gateway".into());
        labels
            .into_iter()
            .filter_map(|label| self.pid(&label).map(|pid| (label, pid)))
            .collect()
    }

    /// What run.sh printed so far.
    fn output(&self) -> String {
        self.process.log()
    }

    fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Whether run.sh is still running (panics with its output if not).
    fn assert_running(&mut self) {
        self.process.assert_not_exited();
    }

    /// Polls `condition` every 100 ms until it holds, for at most `limit`;
    /// fails at once if run.sh exits meanwhile.
    async fn wait_until<F, Fut>(&mut self, what: &str, limit: Duration, mut condition: F)
    where
        F: FnMut(&Self) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + limit;
        loop {
            self.assert_running();
            if condition(self).await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not within {limit:?}: {what}\nscripts/run.sh said:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `label` (e.g. client_service.0) runs again under another
    /// process id than `old`, as that service, and answers /healthz.
    async fn wait_back(&mut self, label: &str, old: i32, limit: Duration) -> i32 {
        let (service, i) = label.split_once('.').expect("service.i");
        let url = format!(
            "http://127.0.0.1:{}/healthz",
            self.port(service, i.parse().expect("instance number"))
        );
        let what = format!("{label} (was pid {old}) runs again under a new pid and answers {url}");
        let (label, service) = (label.to_owned(), service.to_owned());
        self.wait_until(&what, limit, |run| {
            let (pid, http, url, service) = (
                run.pid(&label),
                run.http.clone(),
                url.clone(),
                service.clone(),
            );
            async move {
                match pid {
                    Some(pid) if pid != old && command_of(pid) == service => {
                        answers(&http, &url).await
                    }
                    _ => false,
                }
            }
        })
        .await;
        self.pid(label.as_str()).expect("a pid file")
    }

    /// SIGTERM to run.sh, as Ctrl-C or a service manager would stop it;
    /// waits up to 30 s for it to exit.
    fn terminate(&mut self) -> ExitStatus {
        self.process
            .stop_within(Duration::from_secs(30))
            .unwrap_or_else(|| {
                // Its group is ended by Drop.
                panic!(
                    "scripts/dev/run.sh did not stop within 30 s of SIGTERM:\n{}",
                    self.output()
                )
            })
    }
}

impl Drop for RunSh {
    /// After a failed test: SIGTERM to run.sh, which stops what it started
    /// (killed if it has not exited 15 s later). Then whatever it left
    /// running (it was killed, or it ended without stopping them) is ended
    /// from its pid files: nginx with SIGTERM (a killed master would leave
    /// its workers), the services with SIGKILL.
    fn drop(&mut self) {
        self.process.terminate(Duration::from_secs(15));
        for (label, pid) in self.pids() {
            let (program, how) = match label.as_str() {
                "gateway" => ("nginx", libc::SIGTERM),
                label => (label.split('.').next().unwrap_or(label), libc::SIGKILL),
            };
            // Only the process the file names: its id may have been reused.
            if alive(pid) && command_of(pid) == program {
                send_signal(pid, how);
            }
        }
    }
}

/// A client created through the gateway, and the path that reads it.
async fn a_client(run: &RunSh, card: &str) -> String {
    let response = run
        .http
        .post(format!("{}/client/", run.gateway()))
        .json(&json!({"name": "Ada", "card_number": card, "card_issued_on": "2021-06-15"}))
        .send()
        .await
        .expect("POST /client/");
    assert_eq!(response.status(), StatusCode::CREATED);
    let client: serde_json::Value = response.json().await.expect("the created client");
    format!("/client/{}", client["id"])
}

/// After SIGTERM: run.sh exited 0, and every process it had started is gone
/// and its port closed.
async fn assert_stopped_everything(run: &mut RunSh) {
    let pids = run.pids();
    assert_eq!(
        pids.len(),
        2 * run.replicas as usize + 3,
        "a pid file for each instance, auth_service, the console and the gateway: {pids:?}"
    );
    let status = run.terminate();
    assert!(
        status.success(),
        "run.sh exits 0 on SIGTERM, not {status}:\n{}",
        run.output()
    );
    assert!(run.output().contains("stopping..."), "{}", run.output());
    for (label, pid) in &pids {
        assert!(
            !alive(*pid),
            "{label} (pid {pid}) still runs after run.sh stopped"
        );
    }
    let mut ports: Vec<u16> = (0..run.replicas)
        .flat_map(|i| [run.port("client_service", i), run.port("order_service", i)])
        .collect();
    ports.push(run.base + 2 * run.replicas);
    ports.push(run.port("console", 0));
    for port in ports {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still answers after run.sh stopped"
        );
    }
    assert!(run.pids().is_empty(), "pid files left: {:?}", run.pids());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sh_restarts_a_killed_and_a_stopped_instance_without_a_failed_read() {
    let mut run = RunSh::start(2, &[]).await;
    // The banner names the development users and the web client people
    // sign in to (from DATA_DIR/dev-users.env and dev-clients.env), and
    // where to open the console, with whom to sign in.
    let web_client = format!("WEB_REDIRECT_URI={}/console/callback", run.web_origin());
    let users = std::fs::read_to_string(run._dir.path().join("data/dev-users.env"))
        .expect("DATA_DIR/dev-users.env");
    let password = |name: &str| {
        users
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}_PASSWORD=")))
            .unwrap_or_else(|| panic!("no {name}_PASSWORD in dev-users.env"))
            .to_owned()
    };
    let console_line = format!(
        "The web console: open {}/ and sign in as admin / viewer with {} / {}",
        run.web_origin(),
        password("ADMIN"),
        password("VIEWER")
    );
    run.wait_until("the banner", Duration::from_secs(10), |run| {
        let output = run.output();
        let said = [
            "ADMIN_USER=admin",
            "VIEWER_PASSWORD=",
            "WEB_CLIENT_ID=dev-web",
        ]
        .iter()
        .all(|line| output.contains(line))
            && output.contains(&web_client)
            && output.contains(&console_line);
        async move { said }
    })
    .await;
    // The console answers at the gateway's `/`: its page, HTML.
    let page = reqwest::get(format!("{}/", run.gateway()))
        .await
        .expect("GET / through the gateway");
    assert_eq!(page.status(), StatusCode::OK, "GET / through the gateway");
    let html = page
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let body = page.text().await.unwrap_or_default();
    assert!(
        html && body.contains("<html"),
        "not the console's page: {body}"
    );
    // The README's sign-in: scripts/dev/sign-in.sh, for both users.
    run.sign_in("admin").await;
    run.sign_in("viewer").await;
    let path = a_client(&run, "RUN-1").await;
    let load = Load::start_at(&run.http, &run.gateway(), vec![path], 4);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // One instance killed: it cannot even finish its requests in flight.
    let killed = run.pid("client_service.0").expect("client_service.0's pid");
    send_signal(killed, libc::SIGKILL);
    let back = run
        .wait_back("client_service.0", killed, Duration::from_secs(20))
        .await;
    // nginx takes an instance it saw fail out for its fail_timeout: only
    // after that is the restarted one sure to be in use again, and the
    // other one may go.
    tokio::time::sleep(GATEWAY_FAIL_TIMEOUT * 2).await;

    // The other instance stopped gracefully (exits 0): started again all the same.
    let stopped = run.pid("client_service.1").expect("client_service.1's pid");
    send_signal(stopped, libc::SIGTERM);
    run.wait_back("client_service.1", stopped, Duration::from_secs(20))
        .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let (sent, failures) = load.stop().await;
    assert_no_failures(sent, &failures);
    run.assert_running();
    assert_eq!(
        run.pid("client_service.0"),
        Some(back),
        "restarted once only"
    );
    let output = run.output();
    for said in [
        format!("client_service.0 (pid {killed}) was killed by SIGKILL: starting it again in 1s"),
        format!(
            "client_service.1 (pid {stopped}) exited with status 0 (stopped): starting it again in 1s"
        ),
    ] {
        assert!(
            output.contains(&said),
            "run.sh did not say `{said}`:\n{output}"
        );
    }
    assert_stopped_everything(&mut run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sh_gives_up_on_an_instance_that_keeps_exiting_and_the_rest_keep_serving() {
    let mut run = RunSh::start(2, &[("RESTART_LIMIT", "3")]).await;
    let path = a_client(&run, "RUN-2").await;
    let load = Load::start_at(&run.http, &run.gateway(), vec![path], 4);

    // Three exits within the window: restarted after 1 s, then 2 s, then
    // given up.
    let mut pid = run.pid("client_service.1").expect("client_service.1's pid");
    for _ in 0..2 {
        send_signal(pid, libc::SIGKILL);
        pid = run
            .wait_back("client_service.1", pid, Duration::from_secs(20))
            .await;
    }
    send_signal(pid, libc::SIGKILL);
    let gave_up = format!(
        "client_service.1 (pid {pid}) was killed by SIGKILL: it exited 3 times within 60s, GIVING UP on it"
    );
    run.wait_until(&gave_up, Duration::from_secs(20), |run| {
        let said = run.output().contains(&gave_up);
        async move { said }
    })
    .await;
    // Longer than the next delay (4 s) would have been: not started again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(run.pid("client_service.1"), None, "{}", run.output());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", run.port("client_service", 1))).is_err(),
        "client_service.1 was started again:\n{}",
        run.output()
    );

    let (sent, failures) = load.stop().await;
    assert_no_failures(sent, &failures);
    run.assert_running();
    assert_eq!(
        run.pids().len(),
        6,
        "the others still run: {:?}",
        run.pids()
    );
    let status = run.terminate();
    assert!(
        status.success(),
        "run.sh exits 0 on SIGTERM, not {status}:\n{}",
        run.output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stacks_with_their_own_run_dir_keep_their_logs_apart() {
    let (mut a, mut b) = tokio::join!(RunSh::start(1, &[]), RunSh::start(1, &[]));
    let id_a = format!("run-dir-a-{}", uuid::Uuid::new_v4().simple());
    let id_b = format!("run-dir-b-{}", uuid::Uuid::new_v4().simple());
    for (run, id) in [(&a, &id_a), (&b, &id_b)] {
        let response = run
            .http
            .get(format!("{}/client/?limit=1", run.gateway()))
            .header("x-request-id", id.as_str())
            .send()
            .await
            .expect("GET /client/");
        assert_eq!(response.status(), StatusCode::OK);
    }

    let read = |dir: &Path, file: &str| std::fs::read_to_string(dir.join(file)).unwrap_or_default();
    for (run, own, other) in [(&mut a, &id_a, &id_b), (&mut b, &id_b, &id_a)] {
        // nginx and the service write their line after the answer is sent.
        let what = format!("{own} in the logs in {}", run.run_dir().display());
        run.wait_until(&what, Duration::from_secs(10), |run| {
            let found = ["gateway/access.log", "client_service.0.log"]
                .iter()
                .all(|file| read(run.run_dir(), file).contains(own.as_str()));
            async move { found }
        })
        .await;
        for file in ["gateway/access.log", "client_service.0.log"] {
            let text = read(run.run_dir(), file);
            assert!(text.contains(own.as_str()), "{own} not in {file}:\n{text}");
            assert!(
                !text.contains(other.as_str()),
                "the other stack's {other} in {file}"
            );
        }
        assert!(run.pid("client_service.0").is_some() && run.pid("gateway").is_some());
    }
    assert_ne!(a.pids(), b.pids());
    // Nothing of either went to the default folder of the checkout.
    let default_dir = workspace_root().join(".run");
    for file in ["gateway/access.log", "client_service.0.log"] {
        let text = read(&default_dir, file);
        assert!(
            !text.contains(&id_a) && !text.contains(&id_b),
            "written to {}",
            default_dir.join(file).display()
        );
    }
    assert_stopped_everything(&mut a).await;
    assert_stopped_everything(&mut b).await;
}
