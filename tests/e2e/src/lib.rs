//! The end-to-end harness: a whole system per test (client_service,
//! order_service and nginx rendered from the shipped gateway template), on
//! free loopback ports, with its own databases, driven over HTTP through the
//! gateway.
//!
//! The backend comes from `E2E_BACKEND`: `sqlite` (the default, a temp
//! folder per test) or `postgres`, which needs `E2E_PG_URL` (an admin URL:
//! each test creates its own two databases). `make test` runs the suite
//! once with each. A missing prerequisite fails the test; nothing is skipped.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode};
use serde_json::Value;

pub use serde_json::json;

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bin_dir() -> PathBuf {
    std::env::var_os("E2E_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/debug"))
}

fn nginx_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("E2E_NGINX") {
        return path.into();
    }
    let system = PathBuf::from("/usr/sbin/nginx");
    if system.exists() {
        system
    } else {
        "nginx".into()
    }
}

/// A free port on 127.0.0.1 for a service to bind next. It is drawn at
/// random below the kernel's ephemeral range (32768 and up), so that the
/// outgoing connections of parallel tests cannot take it in the meantime.
pub fn free_port() -> u16 {
    for _ in 0..1000 {
        let port = 20_000 + (uuid::Uuid::new_v4().as_u128() % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 between 20000 and 32000")
}

/// Which database the services run on.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    Postgres { admin_url: String },
}

impl Backend {
    pub fn from_env() -> Self {
        match std::env::var("E2E_BACKEND").as_deref() {
            Ok("postgres") => Backend::Postgres {
                admin_url: std::env::var("E2E_PG_URL")
                    .expect("E2E_BACKEND=postgres needs E2E_PG_URL (make test sets it)"),
            },
            Ok("sqlite") | Err(_) => Backend::Sqlite,
            Ok(other) => panic!("E2E_BACKEND must be sqlite or postgres, not {other}"),
        }
    }
}

/// One service process of the stack.
pub struct Service {
    pub name: &'static str,
    pub port: u16,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    frozen: bool,
}

impl Service {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("cannot open the service log");
        let child = Command::new(bin_dir().join(self.name))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("LISTEN_ADDR", format!("127.0.0.1:{}", self.port))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} from {} ({e}): run `cargo build --bins` first",
                    self.name,
                    bin_dir().display()
                )
            });
        self.child = Some(child);
    }

    fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) on a child process id that we own and have not reaped.
            unsafe { libc::kill(child.id() as i32, signal) };
        }
    }

    /// The service's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The whole system behind its gateway.
pub struct Stack {
    pub gateway: String,
    pub client_service: Service,
    pub order_service: Service,
    nginx: Option<Child>,
    nginx_dir: PathBuf,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// Knobs of a test stack.
#[derive(Clone, Debug)]
pub struct Options {
    /// order_service's timeout for calls to client_service.
    pub client_timeout_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            client_timeout_ms: 1000,
        }
    }
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (client_db, order_db) = databases(&Backend::from_env(), dir.path()).await;
        let (client_port, order_port, gateway_port) = (free_port(), free_port(), free_port());
        let common = |db: String| {
            vec![
                ("DATABASE_URL".to_owned(), db),
                ("LOG_FORMAT".to_owned(), "json".to_owned()),
            ]
        };
        let mut client_env = common(client_db);
        client_env.push((
            "ORDER_SERVICE_URL".into(),
            format!("http://127.0.0.1:{order_port}"),
        ));
        let mut order_env = common(order_db);
        order_env.extend([
            (
                "CLIENT_SERVICE_URL".into(),
                format!("http://127.0.0.1:{client_port}"),
            ),
            (
                "CLIENT_SERVICE_TIMEOUT_MS".into(),
                options.client_timeout_ms.to_string(),
            ),
        ]);
        let service = |name, port, env, log: &str| Service {
            name,
            port,
            env,
            log: dir.path().join(log),
            child: None,
            frozen: false,
        };
        let mut stack = Stack {
            gateway: format!("http://127.0.0.1:{gateway_port}"),
            client_service: service("client_service", client_port, client_env, "client.log"),
            order_service: service("order_service", order_port, order_env, "order.log"),
            nginx: None,
            nginx_dir: dir.path().join("gateway"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            _dir: dir,
        };
        stack.render_gateway(gateway_port);
        stack.client_service.spawn();
        stack.order_service.spawn();
        stack.start_nginx();
        stack.wait_ready().await;
        stack
    }

    /// Renders the shipped template exactly as `gateway/render.sh` does.
    fn render_gateway(&self, gateway_port: u16) {
        let root = workspace_root().join("gateway");
        let run_dir = self.nginx_dir.display().to_string();
        let vars = [
            ("GATEWAY_RUN_DIR", run_dir.clone()),
            ("GATEWAY_LISTEN", format!("127.0.0.1:{gateway_port}")),
            (
                "GATEWAY_CLIENT_SERVERS",
                format!("server 127.0.0.1:{};", self.client_service.port),
            ),
            (
                "GATEWAY_ORDER_SERVERS",
                format!("server 127.0.0.1:{};", self.order_service.port),
            ),
        ];
        std::fs::create_dir_all(self.nginx_dir.join("tmp")).expect("gateway dir");
        for (template, out) in [
            ("templates/gateway.conf.template", "gateway.conf"),
            ("local/nginx.conf.template", "nginx.conf"),
        ] {
            let mut text = std::fs::read_to_string(root.join(template)).expect("template");
            for (name, value) in &vars {
                text = text.replace(&format!("${{{name}}}"), value);
            }
            std::fs::write(self.nginx_dir.join(out), text).expect("rendered gateway");
        }
    }

    fn start_nginx(&mut self) {
        let conf = self.nginx_dir.join("nginx.conf");
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(&self.nginx_dir)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start nginx: `make test` installs it");
        self.nginx = Some(child);
    }

    /// Waits until both services and the gateway answer their health checks.
    pub async fn wait_ready(&mut self) {
        for url in [
            format!("{}/readyz", self.client_service.url()),
            format!("{}/readyz", self.order_service.url()),
            format!("{}/healthz", self.gateway),
        ] {
            self.wait_for(&url).await;
        }
    }

    async fn wait_for(&mut self, url: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            for service in [&mut self.client_service, &mut self.order_service] {
                if let Some(Ok(Some(status))) = service.child.as_mut().map(Child::try_wait) {
                    panic!("{} exited ({status}):\n{}", service.name, service.log());
                }
            }
            let probe = self
                .http
                .get(url)
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if matches!(&probe, Ok(r) if r.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{url} not ready after 30 s: {probe:?}\nclient_service log:\n{}\norder_service log:\n{}",
                self.client_service.log(),
                self.order_service.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway)
    }

    /// Sends a request through the gateway; `body` is sent as JSON.
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        Reply::from(request.send().await.expect("request through the gateway")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    /// Sends raw bytes with a content type, for malformed bodies.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        let response = self
            .http
            .request(method, self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request through the gateway");
        Reply::from(response).await
    }

    /// Creates a client and returns it (asserting 201).
    pub async fn create_client(&self, name: &str, card: &str) -> Value {
        let reply = self
            .post(
                "/client/",
                &json!({"name": name, "card_number": card, "card_issued_on": "2021-06-15"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body
    }

    /// Creates an order and returns it (asserting 201).
    pub async fn create_order(&self, client_id: i64, item: &str) -> Value {
        let reply = self
            .post(
                "/order/",
                &json!({"client_id": client_id, "item": item, "price": "9.99"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body
    }

    /// Every order stored, read through the gateway page by page.
    pub async fn all_orders(&self) -> Vec<Value> {
        self.all("/order/?limit=1000").await
    }

    /// Every client stored, read through the gateway page by page.
    pub async fn all_clients(&self) -> Vec<Value> {
        self.all("/client/?limit=1000").await
    }

    async fn all(&self, first: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let reply = self.get(&format!("{first}&after={after}")).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            let page = reply.body.as_array().cloned().unwrap_or_default();
            let Some(last) = page.last() else { return out };
            after = last["id"].as_i64().expect("id");
            out.extend(page);
        }
    }

    /// Kills client_service (SIGKILL): connections are refused.
    pub fn kill_client_service(&mut self) {
        kill(&mut self.client_service);
    }

    pub fn kill_order_service(&mut self) {
        kill(&mut self.order_service);
    }

    /// Starts client_service again on the same port and database.
    pub async fn restart_client_service(&mut self) {
        kill(&mut self.client_service);
        self.client_service.spawn();
        self.wait_for(&format!("{}/readyz", self.client_service.url()))
            .await;
    }

    pub async fn restart_order_service(&mut self) {
        kill(&mut self.order_service);
        self.order_service.spawn();
        self.wait_for(&format!("{}/readyz", self.order_service.url()))
            .await;
    }

    /// Freezes client_service (SIGSTOP): connections open, nothing answers.
    pub fn freeze_client_service(&mut self) {
        self.client_service.signal(libc::SIGSTOP);
        self.client_service.frozen = true;
    }

    pub fn thaw_client_service(&mut self) {
        self.client_service.signal(libc::SIGCONT);
        self.client_service.frozen = false;
    }

    /// Stops both services gracefully (SIGTERM) and waits for them to exit.
    pub fn stop_services(&mut self) -> Vec<std::process::ExitStatus> {
        [&mut self.client_service, &mut self.order_service]
            .into_iter()
            .filter_map(|service| {
                service.signal(libc::SIGTERM);
                service
                    .child
                    .take()
                    .map(|mut child| child.wait().expect("wait"))
            })
            .collect()
    }

    /// Starts both services again on the same ports and databases.
    pub async fn start_services(&mut self) {
        self.client_service.spawn();
        self.order_service.spawn();
        self.wait_ready().await;
    }
}

fn kill(service: &mut Service) {
    if service.frozen {
        service.signal(libc::SIGCONT);
        service.frozen = false;
    }
    if let Some(mut child) = service.child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// SIGTERM, then up to 5 s for the process to exit, then SIGKILL.
fn terminate(mut child: Child) {
    // SAFETY: kill(2) on a child process id that we own and have not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Stack {
    fn drop(&mut self) {
        kill(&mut self.client_service);
        kill(&mut self.order_service);
        if let Some(nginx) = self.nginx.take() {
            // SIGTERM, not SIGKILL: nginx's master stops its workers, which
            // a killed master would leave behind.
            terminate(nginx);
        }
    }
}

/// The two database URLs of a new stack.
async fn databases(backend: &Backend, dir: &Path) -> (String, String) {
    match backend {
        Backend::Sqlite => (
            format!("sqlite://{}/clients.db", dir.display()),
            format!("sqlite://{}/orders.db", dir.display()),
        ),
        Backend::Postgres { admin_url } => {
            use sqlx::Connection;
            let mut admin = sqlx::PgConnection::connect(admin_url)
                .await
                .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at E2E_PG_URL: {e}"));
            let id = uuid::Uuid::new_v4().simple().to_string();
            let mut urls = Vec::new();
            for service in ["clients", "orders"] {
                let name = format!("e2e_{service}_{id}");
                sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut admin)
                    .await
                    .expect("CREATE DATABASE");
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(b, _)| b);
                urls.push(format!("{base}/{name}"));
            }
            let orders = urls.pop().unwrap_or_default();
            let clients = urls.pop().unwrap_or_default();
            (clients, orders)
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    async fn from(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Asserts an RFC 9457 problem with this status, and returns its body.
    #[track_caller]
    pub fn assert_problem(&self, status: StatusCode) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(
            self.header("content-type"),
            "application/problem+json",
            "body: {}",
            self.text
        );
        for field in ["type", "title", "status", "detail"] {
            assert!(!self.body[field].is_null(), "no `{field}` in {}", self.text);
        }
        assert_eq!(self.body["status"], status.as_u16(), "{}", self.text);
        &self.body
    }

    /// Asserts a 422 naming `field` among its invalid fields.
    #[track_caller]
    pub fn assert_invalid(&self, field: &str) {
        let body = self.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
            .unwrap_or_default();
        assert!(fields.contains(&field), "`{field}` not in {}", self.text);
    }
}
