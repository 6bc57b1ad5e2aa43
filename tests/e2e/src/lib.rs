//! The end-to-end harness: a whole system per test (auth_service,
//! client_service, order_service and nginx rendered from the shipped gateway
//! template), on free loopback ports, with its own databases and its own
//! keys and clients (`auth_service init`), driven over HTTP through the
//! gateway. [`Stack::http`] sends the token of the development client with
//! every scope; [`Stack::anonymous`] sends none.
//!
//! The backend comes from `E2E_BACKEND`: `sqlite` (the default, a temp
//! folder per test) or `postgres`, which needs `E2E_PG_URL` (an admin URL:
//! each test creates its own two databases). `make test` runs the suite
//! once with each. A missing prerequisite fails the test; nothing is skipped.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use reqwest::{Method, StatusCode};
use serde_json::Value;

pub use serde_json::json;

/// How long nginx keeps an instance out after it failed (`fail_timeout` in
/// gateway/render.sh): a rolling restart waits this long between instances.
pub const GATEWAY_FAIL_TIMEOUT: Duration = Duration::from_secs(2);

/// Rate limits high enough never to refuse a request, for the gateway and
/// the services: the tests send many requests from one address with one
/// token (the defaults are for users). A test of the limits sets its own
/// after these (`Options::gateway_env`, `client_env`, `order_env`).
pub const WITHOUT_RATE_LIMITS: [(&str, &str); 6] = [
    ("GATEWAY_ADDRESS_RATE", "9999999r/s"),
    ("GATEWAY_ADDRESS_BURST", "9999999"),
    ("GATEWAY_ANONYMOUS_RATE", "9999999r/s"),
    ("GATEWAY_ANONYMOUS_BURST", "9999999"),
    ("RATE_LIMIT_PER_SECOND", "1000000"),
    ("RATE_LIMIT_BURST", "1000000"),
];

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the service binaries are: `E2E_BIN_DIR` (binaries built
/// elsewhere, taken as they are), else the target folder's `debug` (cargo's:
/// `CARGO_TARGET_DIR` or `target`), built from the code
/// under test first: the first call in a test process runs `cargo build
/// --workspace --bins`, so that a test never runs binaries older than the
/// code (nothing to do when `make test` built them already).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("E2E_BIN_DIR") {
        return dir.into();
    }
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    if let Err(why) = BUILT.get_or_init(build_binaries) {
        panic!("{why}");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    target.join("debug")
}

/// `cargo build --workspace --bins --locked` in the workspace, quietly;
/// its output when it fails.
fn build_binaries() -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let output = Command::new(cargo)
        .args(["build", "--workspace", "--bins", "--locked", "--quiet"])
        .current_dir(workspace_root())
        .output()
        .map_err(|e| format!("cannot run cargo to build the services: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "`cargo build --workspace --bins` failed, so there is nothing to test:\n{}",
        String::from_utf8_lossy(&output.stderr)
    ))
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
///
/// A port is handed out once per process: two tests running at the same
/// time never get the same one (each stack takes five or more, and a second
/// bind of one port fails at start).
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..1000 {
        let port = 20_000 + (uuid::Uuid::new_v4().as_u128() % 12_000) as u16;
        let Ok(mut handed_out) = HANDED_OUT.lock() else {
            break;
        };
        if handed_out.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 between 20000 and 32000")
}

/// The first of `count` consecutive free ports on 127.0.0.1, for a command
/// that takes base ports and counts up from them (`scripts/dev/run.sh`: instance
/// i of a service on its base port + 2*i). The block is drawn at random from
/// 12000-17999: below the ports [`free_port`] hands out (20000 and up), so
/// that tests running at the same time cannot take one of them in the
/// meantime, and below the fixed ports of `make bench` (18100-18190) and
/// scripts/ci/schemathesis.sh (18300-18380). Blocks handed out in this process
/// never overlap.
pub fn free_port_block(count: u16) -> u16 {
    static TAKEN: std::sync::Mutex<Vec<(u16, u16)>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..1000 {
        let base = 12_000 + (uuid::Uuid::new_v4().as_u128() % 6_000) as u16;
        let end = base + count;
        if end > 18_000 {
            continue;
        }
        let Ok(mut taken) = TAKEN.lock() else { break };
        if taken.iter().any(|&(b, e)| base < e && b < end) {
            continue;
        }
        if (base..end).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok()) {
            taken.push((base, end));
            return base;
        }
    }
    panic!("no {count} consecutive free ports on 127.0.0.1 between 12000 and 18000")
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
                    "cannot start {} from {} ({e})",
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

    /// The service's JSON log lines so far (`LOG_FORMAT=json`); lines that
    /// are not JSON objects are left out.
    pub fn log_lines(&self) -> Vec<Value> {
        json_lines(&self.log())
    }
}

/// The JSON objects among `text`'s lines.
pub fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(Value::is_object)
        .collect()
}

/// The request id a service's JSON log line belongs to: the line's own
/// `request_id` field, or its request span's.
pub fn line_request_id(line: &Value) -> Option<&str> {
    line["request_id"]
        .as_str()
        .or_else(|| line["span"]["request_id"].as_str())
}

/// The whole system behind its gateway.
pub struct Stack {
    pub gateway: String,
    pub client_services: Vec<Service>,
    pub order_services: Vec<Service>,
    /// The token issuer.
    pub auth_service: Service,
    /// Where `auth_service init` made the keys, the clients file and the
    /// clients' env files.
    pub auth_dir: PathBuf,
    nginx: Option<Child>,
    nginx_dir: PathBuf,
    /// Sends the token of the development client with every scope.
    pub http: reqwest::Client,
    /// Sends no token.
    pub anonymous: reqwest::Client,
    /// The token [`Stack::http`] and [`Stack::raw`] send.
    pub token: String,
    _dir: tempfile::TempDir,
}

/// Knobs of a test stack.
#[derive(Clone, Debug)]
pub struct Options {
    /// order_service's timeout for calls to client_service.
    pub client_timeout_ms: u64,
    /// Instances of each service behind the gateway.
    pub replicas: usize,
    /// Extra environment for every order_service instance.
    pub order_env: Vec<(String, String)>,
    /// Extra environment for every client_service instance.
    pub client_env: Vec<(String, String)>,
    /// The client_service URL order_service instances use, when not the
    /// instance of the same index (e.g. a delaying proxy).
    pub client_service_url: Option<String>,
    /// Database URLs instead of the ones the backend makes.
    pub databases: Option<(String, String)>,
    /// nginx directives added to the public server of the rendered gateway,
    /// for a test only: e.g. `location = /_test/429 { return 429; }` makes a
    /// status that the shipped configuration cannot produce, to see that the
    /// shipped error pages answer it. Empty: the gateway as it ships.
    pub gateway_test_directives: String,
    /// Extra environment for auth_service (e.g. AUTH_PUBLISHED_KEY_FILES).
    pub auth_env: Vec<(String, String)>,
    /// Environment for render.sh (e.g. GATEWAY_AUTH_RATE).
    pub gateway_env: Vec<(String, String)>,
    /// Where the gateway sends `/client/…`, when not to the client_service
    /// instances (e.g. a recording [`DelayProxy`] in front of them).
    pub gateway_client_upstream: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            client_timeout_ms: 1000,
            replicas: 1,
            order_env: Vec::new(),
            client_env: Vec::new(),
            client_service_url: None,
            databases: None,
            gateway_test_directives: String::new(),
            auth_env: Vec::new(),
            gateway_env: Vec::new(),
            gateway_client_upstream: None,
        }
    }
}

/// The settings of [`WITHOUT_RATE_LIMITS`] whose names start with `prefix`.
fn without_rate_limits(prefix: &str) -> impl Iterator<Item = (String, String)> + '_ {
    WITHOUT_RATE_LIMITS
        .iter()
        .filter(move |(name, _)| name.starts_with(prefix))
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
}

/// The value of `name` in an env file `auth_service init` wrote.
pub fn env_file_value(file: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {}", file.display()))
        .to_owned()
}

/// Runs `auth_service init dir`: a signing key, the clients file and the
/// clients' env files, as `make run` makes them.
pub fn auth_init(dir: &Path) {
    let status = Command::new(bin_dir().join("auth_service"))
        .arg("init")
        .arg(dir)
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run auth_service init ({e})"));
    assert!(status.success(), "auth_service init failed");
}

/// Asks the token endpoint at `gateway` for a token of client `id`
/// (HTTP Basic), with `scope` when given; panics unless it gets one.
pub async fn token_at(
    http: &reqwest::Client,
    gateway: &str,
    id: &str,
    secret: &str,
    scope: Option<&str>,
) -> String {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let response = http
        .post(format!("{gateway}/auth/token"))
        .basic_auth(id, Some(secret))
        .form(&form)
        .send()
        .await
        .expect("the token endpoint");
    let reply = Reply::from(response).await;
    assert_eq!(reply.status, StatusCode::OK, "no token: {}", reply.text);
    reply.body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// An HTTP client that sends `Authorization: Bearer <token>` with every
/// request (a test may still set another Authorization on one request).
pub fn bearer_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("a header value"),
    );
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .default_headers(headers)
        .build()
        .expect("http client")
}

/// Which service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Client,
    Order,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (client_db, order_db) = match options.databases.clone() {
            Some(urls) => urls,
            None => databases(&Backend::from_env(), dir.path()).await,
        };
        let replicas = options.replicas.max(1);
        let client_ports: Vec<u16> = (0..replicas).map(|_| free_port()).collect();
        let order_ports: Vec<u16> = (0..replicas).map(|_| free_port()).collect();
        let gateway_port = free_port();
        let auth_port = free_port();
        let auth_dir = dir.path().join("auth");
        auth_init(&auth_dir);
        let issuer = format!("http://127.0.0.1:{gateway_port}/auth");
        let auth_url = format!("http://127.0.0.1:{auth_port}/auth");
        let services_env = auth_dir.join("service-clients.env");
        // What every service needs to check tokens and get its own.
        let auth_vars = |prefix: &str| {
            vec![
                ("AUTH_ISSUER".to_owned(), issuer.clone()),
                ("AUTH_JWKS_URL".to_owned(), format!("{auth_url}/jwks.json")),
                ("AUTH_TOKEN_URL".to_owned(), format!("{auth_url}/token")),
                (
                    "SERVICE_CLIENT_ID".to_owned(),
                    env_file_value(&services_env, &format!("{prefix}_ID")),
                ),
                (
                    "SERVICE_CLIENT_SECRET".to_owned(),
                    env_file_value(&services_env, &format!("{prefix}_SECRET")),
                ),
            ]
        };
        let mut auth_env = vec![
            ("AUTH_ISSUER".to_owned(), issuer.clone()),
            (
                "AUTH_SIGNING_KEY_FILE".to_owned(),
                auth_dir.join("auth-signing-key.pem").display().to_string(),
            ),
            (
                "AUTH_CLIENTS_FILE".to_owned(),
                auth_dir.join("auth-clients").display().to_string(),
            ),
            ("LOG_FORMAT".to_owned(), "json".to_owned()),
        ];
        auth_env.extend(options.auth_env.iter().cloned());
        let auth_service = Service {
            name: "auth_service",
            port: auth_port,
            env: auth_env,
            log: dir.path().join("auth.log"),
            child: None,
            frozen: false,
        };
        let mut client_services = Vec::new();
        let mut order_services = Vec::new();
        // Every instance calls every instance of the other service, as with
        // `make run` (scripts/dev/stack.sh).
        let all = |ports: &[u16]| {
            ports
                .iter()
                .map(|port| format!("http://127.0.0.1:{port}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        for i in 0..replicas {
            let env = |db: &str, peer: &str, url: String| {
                let mut env = vec![
                    ("DATABASE_URL".to_owned(), db.to_owned()),
                    ("LOG_FORMAT".to_owned(), "json".to_owned()),
                    ("SHUTDOWN_GRACE_SECS".to_owned(), "5".to_owned()),
                    (format!("{peer}_URL"), url),
                ];
                env.extend(without_rate_limits("RATE_LIMIT_"));
                env
            };
            let mut client_env = env(&client_db, "ORDER_SERVICE", all(&order_ports));
            client_env.extend(auth_vars("CLIENT_SERVICE"));
            client_env.extend(options.client_env.iter().cloned());
            client_services.push(Service {
                name: "client_service",
                port: client_ports[i],
                env: client_env,
                log: dir.path().join(format!("client.{i}.log")),
                child: None,
                frozen: false,
            });
            let client_url = options
                .client_service_url
                .clone()
                .unwrap_or_else(|| all(&client_ports));
            let mut order_env = env(&order_db, "CLIENT_SERVICE", client_url);
            order_env.push((
                "CLIENT_SERVICE_TIMEOUT_MS".into(),
                options.client_timeout_ms.to_string(),
            ));
            order_env.extend(auth_vars("ORDER_SERVICE"));
            order_env.extend(options.order_env.iter().cloned());
            order_services.push(Service {
                name: "order_service",
                port: order_ports[i],
                env: order_env,
                log: dir.path().join(format!("order.{i}.log")),
                child: None,
                frozen: false,
            });
        }
        let anonymous = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        let mut stack = Stack {
            gateway: format!("http://127.0.0.1:{gateway_port}"),
            client_services,
            order_services,
            auth_service,
            auth_dir,
            nginx: None,
            nginx_dir: dir.path().join("gateway"),
            http: anonymous.clone(),
            anonymous,
            token: String::new(),
            _dir: dir,
        };
        let mut gateway_env: Vec<(String, String)> = without_rate_limits("GATEWAY_").collect();
        gateway_env.extend(options.gateway_env.iter().cloned());
        if let Some(upstream) = &options.gateway_client_upstream {
            gateway_env.push(("CLIENT_SERVICE_ADDRS".into(), upstream.clone()));
        }
        stack.render_gateway(gateway_port, &options.gateway_test_directives, &gateway_env);
        stack.auth_service.spawn();
        for service in stack
            .client_services
            .iter_mut()
            .chain(stack.order_services.iter_mut())
        {
            service.spawn();
        }
        stack.start_nginx();
        stack.wait_ready().await;
        let token = stack.token(None).await;
        stack.http = bearer_client(&token);
        stack.token = token;
        stack
    }

    /// A client id and secret from `dev-clients.env`: `CLIENT` (every
    /// scope) or `READONLY_CLIENT` (the read scopes).
    pub fn credentials(&self, prefix: &str) -> (String, String) {
        let file = self.auth_dir.join("dev-clients.env");
        (
            env_file_value(&file, &format!("{prefix}_ID")),
            env_file_value(&file, &format!("{prefix}_SECRET")),
        )
    }

    /// A token of the development client with every scope (or `scope`),
    /// from the gateway's token endpoint.
    pub async fn token(&self, scope: Option<&str>) -> String {
        let (id, secret) = self.credentials("CLIENT");
        token_at(&self.anonymous, &self.gateway, &id, &secret, scope).await
    }

    /// A token of the read-only development client.
    pub async fn readonly_token(&self) -> String {
        let (id, secret) = self.credentials("READONLY_CLIENT");
        token_at(&self.anonymous, &self.gateway, &id, &secret, None).await
    }

    /// Sends a request through the gateway with `authorization` as its
    /// Authorization header (None: without one).
    pub async fn send_as(
        &self,
        authorization: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Reply {
        let mut request = self.anonymous.request(method, self.url(path));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Reply::from(request.send().await.expect("request through the gateway")).await
    }

    /// Registers another client at auth_service (a line in its clients
    /// file, hashed by `auth_service hash-secret`, and auth_service started
    /// again to read it); returns its secret.
    pub async fn register_client(&mut self, id: &str, scopes: &str) -> String {
        use std::io::Write;
        let secret = format!("secret-{}", uuid::Uuid::new_v4().simple());
        let mut hashing = Command::new(bin_dir().join("auth_service"))
            .arg("hash-secret")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("auth_service hash-secret");
        hashing
            .stdin
            .take()
            .expect("its standard input")
            .write_all(secret.as_bytes())
            .expect("the secret written");
        let hashed = hashing.wait_with_output().expect("the hash");
        assert!(hashed.status.success(), "auth_service hash-secret failed");
        let hash = String::from_utf8_lossy(&hashed.stdout).trim().to_owned();
        let mut clients = std::fs::OpenOptions::new()
            .append(true)
            .open(self.auth_dir.join("auth-clients"))
            .expect("the clients file");
        writeln!(clients, "{id} {hash} {scopes}").expect("a client line");
        self.restart_auth_service(Vec::new()).await;
        secret
    }

    /// Stops auth_service, and starts it again with `env` added to its
    /// environment (a new signing key, keys published beside it...).
    pub async fn restart_auth_service(&mut self, env: Vec<(String, String)>) {
        self.auth_service.signal(libc::SIGTERM);
        if let Some(mut child) = self.auth_service.child.take() {
            let _ = child.wait();
        }
        for (name, value) in env {
            self.auth_service.env.retain(|(n, _)| *n != name);
            self.auth_service.env.push((name, value));
        }
        self.auth_service.spawn();
        let url = format!("{}/readyz", self.auth_service.url());
        self.wait_for(&url).await;
    }

    /// Kills auth_service (SIGKILL).
    pub fn kill_auth_service(&mut self) {
        kill(&mut self.auth_service);
    }

    /// Renders the shipped template with `gateway/render.sh`, as `make run`
    /// does; then adds `test_directives`, if any, to the public server.
    fn render_gateway(&self, gateway_port: u16, test_directives: &str, env: &[(String, String)]) {
        let addrs = |services: &[Service]| {
            services
                .iter()
                .map(|s| format!("127.0.0.1:{}", s.port))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let status = Command::new(workspace_root().join("gateway/render.sh"))
            .env("GATEWAY_RUN_DIR", &self.nginx_dir)
            .env("GATEWAY_LISTEN", format!("127.0.0.1:{gateway_port}"))
            .env("CLIENT_SERVICE_ADDRS", addrs(&self.client_services))
            .env("ORDER_SERVICE_ADDRS", addrs(&self.order_services))
            .env(
                "AUTH_SERVICE_ADDRS",
                format!("127.0.0.1:{}", self.auth_service.port),
            )
            .envs(env.iter().map(|(k, v)| (k, v)))
            .status()
            .expect("cannot run gateway/render.sh");
        assert!(status.success(), "gateway/render.sh failed");
        if !test_directives.is_empty() {
            let path = self.nginx_dir.join("gateway.conf");
            let conf = std::fs::read_to_string(&path).expect("rendered gateway.conf");
            let marker = "    server_name _;\n";
            assert!(conf.contains(marker), "no `server_name _;` in {conf}");
            let conf = conf.replacen(marker, &format!("{marker}{test_directives}\n"), 1);
            std::fs::write(&path, conf).expect("write gateway.conf");
        }
    }

    /// The first client_service instance.
    pub fn client_service(&self) -> &Service {
        &self.client_services[0]
    }

    /// The first order_service instance.
    pub fn order_service(&self) -> &Service {
        &self.order_services[0]
    }

    fn services_mut(&mut self, kind: Kind) -> &mut Vec<Service> {
        match kind {
            Kind::Client => &mut self.client_services,
            Kind::Order => &mut self.order_services,
        }
    }

    /// Kills one instance (SIGKILL): its connections break at once.
    pub fn kill_replica(&mut self, kind: Kind, i: usize) {
        kill(&mut self.services_mut(kind)[i]);
    }

    /// Stops one instance gracefully (SIGTERM) and waits for it to exit.
    pub fn stop_replica(&mut self, kind: Kind, i: usize) -> std::process::ExitStatus {
        let service = &mut self.services_mut(kind)[i];
        service.signal(libc::SIGTERM);
        let mut child = service.child.take().expect("a running instance");
        child.wait().expect("wait")
    }

    /// Starts one instance again (same port and database) and waits until ready.
    pub async fn start_replica(&mut self, kind: Kind, i: usize) {
        let service = &mut self.services_mut(kind)[i];
        service.spawn();
        let url = format!("{}/readyz", service.url());
        self.wait_for(&url).await;
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

    /// Waits until every instance and the gateway answer their health checks.
    pub async fn wait_ready(&mut self) {
        let mut urls: Vec<String> = std::iter::once(&self.auth_service)
            .chain(&self.client_services)
            .chain(&self.order_services)
            .map(|s| format!("{}/readyz", s.url()))
            .collect();
        urls.push(format!("{}/healthz", self.gateway));
        for url in urls {
            self.wait_for(&url).await;
        }
    }

    async fn wait_for(&mut self, url: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            for service in std::iter::once(&mut self.auth_service)
                .chain(self.client_services.iter_mut())
                .chain(self.order_services.iter_mut())
            {
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
                self.client_services[0].log(),
                self.order_services[0].log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway)
    }

    /// The gateway's JSON access log lines so far.
    pub fn access_log(&self) -> Vec<Value> {
        json_lines(&std::fs::read_to_string(self.nginx_dir.join("access.log")).unwrap_or_default())
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

    /// The gateway's port.
    pub fn gateway_port(&self) -> u16 {
        self.gateway
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .expect("the gateway's port")
    }

    /// Sends `request` as it is, byte for byte, to the gateway: for what an
    /// HTTP client library would refuse to send or would tidy up (raw paths,
    /// bad request lines, hundreds of headers, broken bodies).
    /// With the stack's token (an `Authorization` line after the request
    /// line) unless the request has an Authorization header of its own:
    /// [`Stack::raw_anonymous`] sends it without.
    pub async fn raw(&self, request: &[u8]) -> Reply {
        let has_own = String::from_utf8_lossy(request)
            .to_ascii_lowercase()
            .contains("\r\nauthorization:");
        let line_end = request.windows(2).position(|w| w == b"\r\n");
        match line_end {
            Some(end) if !has_own => {
                let mut with = request[..end + 2].to_vec();
                with.extend_from_slice(
                    format!("Authorization: Bearer {}\r\n", self.token).as_bytes(),
                );
                with.extend_from_slice(&request[end + 2..]);
                raw_request(self.gateway_port(), &with).await
            }
            _ => raw_request(self.gateway_port(), request).await,
        }
    }

    /// [`Stack::raw`] without a token.
    pub async fn raw_anonymous(&self, request: &[u8]) -> Reply {
        raw_request(self.gateway_port(), request).await
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

    /// The items of the orders stored whose item starts with `prefix`,
    /// sorted: to compare with the creates a test made.
    pub async fn stored_items(&self, prefix: &str) -> Vec<String> {
        let mut items: Vec<String> = self
            .all_orders()
            .await
            .iter()
            .filter_map(|o| o["item"].as_str())
            .filter(|item| item.starts_with(prefix))
            .map(str::to_owned)
            .collect();
        items.sort();
        items
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

    /// Kills every client_service instance (SIGKILL): connections are refused.
    pub fn kill_client_service(&mut self) {
        self.client_services.iter_mut().for_each(kill);
    }

    pub fn kill_order_service(&mut self) {
        self.order_services.iter_mut().for_each(kill);
    }

    /// Starts client_service again on the same ports and database.
    pub async fn restart_client_service(&mut self) {
        for i in 0..self.client_services.len() {
            self.kill_replica(Kind::Client, i);
            self.start_replica(Kind::Client, i).await;
        }
    }

    pub async fn restart_order_service(&mut self) {
        for i in 0..self.order_services.len() {
            self.kill_replica(Kind::Order, i);
            self.start_replica(Kind::Order, i).await;
        }
    }

    /// Freezes client_service (SIGSTOP): connections open, nothing answers.
    pub fn freeze_client_service(&mut self) {
        for service in &mut self.client_services {
            service.signal(libc::SIGSTOP);
            service.frozen = true;
        }
    }

    pub fn thaw_client_service(&mut self) {
        for service in &mut self.client_services {
            service.signal(libc::SIGCONT);
            service.frozen = false;
        }
    }

    /// Stops every instance gracefully (SIGTERM) and waits for them to exit.
    pub fn stop_services(&mut self) -> Vec<std::process::ExitStatus> {
        self.client_services
            .iter_mut()
            .chain(self.order_services.iter_mut())
            .filter_map(|service| {
                service.signal(libc::SIGTERM);
                service
                    .child
                    .take()
                    .map(|mut child| child.wait().expect("wait"))
            })
            .collect()
    }

    /// Starts every instance again on the same ports and databases.
    pub async fn start_services(&mut self) {
        for service in self
            .client_services
            .iter_mut()
            .chain(self.order_services.iter_mut())
        {
            service.spawn();
        }
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
        self.client_services.iter_mut().for_each(kill);
        self.order_services.iter_mut().for_each(kill);
        kill(&mut self.auth_service);
        if let Some(nginx) = self.nginx.take() {
            // SIGTERM, not SIGKILL: nginx's master stops its workers, which
            // a killed master would leave behind.
            terminate(nginx);
        }
    }
}

/// The two database URLs (client_service's, order_service's) of a new
/// stack whose files, for SQLite, go into `dir`.
pub async fn databases(backend: &Backend, dir: &Path) -> (String, String) {
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

/// `GET target HTTP/1.1` with a Host, `Connection: close`, and `headers`
/// (each line ending in CRLF), as bytes for [`Stack::raw`].
pub fn raw_get(target: &[u8], headers: &[u8]) -> Vec<u8> {
    raw_request_bytes(b"GET", target, headers, b"")
}

/// A request of `method` with `headers` (each line ending in CRLF) and
/// `body`, sent as they are (no Content-Length added).
pub fn raw_request_bytes(method: &[u8], target: &[u8], headers: &[u8], body: &[u8]) -> Vec<u8> {
    let mut request = Vec::new();
    for part in [
        method,
        b" ",
        target,
        b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n",
        headers,
        b"\r\n",
        body,
    ] {
        request.extend_from_slice(part);
    }
    request
}

/// Sends `request` as it is to 127.0.0.1:`port` and reads the answer up to
/// the end of the connection (the request should say `Connection: close`);
/// for at most 30 s. An answer that never came is a `Reply` with status 0
/// ([`Reply::NO_ANSWER`]).
pub async fn raw_request(port: u16, request: &[u8]) -> Reply {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        // A server that answers before it has read the whole request (a
        // header too large) may close the connection while it is still being
        // written, or reset it after its answer: what it answered counts.
        let written = stream.write_all(request).await;
        let mut answer = Vec::new();
        if let Err(err) = stream.read_to_end(&mut answer).await.and(written)
            && answer.is_empty()
        {
            return Err(err);
        }
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .expect("no end of the answer within 30 s")
        .unwrap_or_default();
    Reply::parse(&answer)
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    /// The status as sent: [`Reply::NO_ANSWER`] when none was.
    pub raw_status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            raw_status: status.as_u16(),
            headers,
            body,
            text,
        }
    }

    /// The status of an answer that never came: the connection was closed
    /// without a byte.
    pub const NO_ANSWER: u16 = 0;

    /// Reads a raw HTTP/1.1 answer (status line, headers, body whole or
    /// chunked). Empty input: status 0.
    pub fn parse(answer: &[u8]) -> Self {
        use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(answer.len());
        let head = String::from_utf8_lossy(&answer[..split]).into_owned();
        let mut body = answer.get(split + 4..).unwrap_or_default().to_vec();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse::<u16>().ok())
            .unwrap_or(Self::NO_ANSWER);
        let mut headers = HeaderMap::new();
        for line in lines {
            if let Some((name, value)) = line.split_once(':')
                && let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.trim().as_bytes()),
                    HeaderValue::from_str(value.trim()),
                )
            {
                headers.append(name, value);
            }
        }
        if headers
            .get("transfer-encoding")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"))
        {
            body = dechunk(&body);
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        Self {
            // No answer (0) is no status code: 999, which no server sends;
            // `raw_status` keeps the 0.
            status: StatusCode::from_u16(status)
                .or_else(|_| StatusCode::from_u16(999))
                .unwrap_or_default(),
            raw_status: status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
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

    /// Asserts a problem with this status that names its request: the
    /// body's `request_id` is the `X-Request-ID` header, which is not empty.
    #[track_caller]
    pub fn assert_problem_with_id(&self, status: StatusCode) -> &Value {
        let body = self.assert_problem(status);
        let id = self.header("x-request-id");
        assert!(!id.is_empty(), "no X-Request-ID: {self:?}");
        assert_eq!(body["request_id"], id, "{}", self.text);
        assert_eq!(
            self.headers.get_all("x-request-id").iter().count(),
            1,
            "X-Request-ID more than once: {:?}",
            self.headers
        );
        body
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

/// The body of a chunked answer, put together.
fn dechunk(mut chunked: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(end) = chunked.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&chunked[..end])
            .ok()
            .and_then(|line| usize::from_str_radix(line.split(';').next()?.trim(), 16).ok())
            .unwrap_or(0);
        let start = end + 2;
        if size == 0 || chunked.len() < start + size {
            break;
        }
        body.extend_from_slice(&chunked[start..start + size]);
        chunked = chunked.get(start + size + 2..).unwrap_or_default();
    }
    body
}

/// A TCP proxy on 127.0.0.1 that delays every chunk of the answers it
/// relays: "a little slow" or "slower than the timeout", switchable while
/// it runs. The target is set once the proxied service has its port. It
/// also records what it passes to the target (the first
/// [`DelayProxy::RECORD_LIMIT`] bytes), to show what a service sends.
pub struct DelayProxy {
    pub port: u16,
    target: Arc<AtomicU16>,
    delay_ms: Arc<AtomicU64>,
    sent: Arc<std::sync::Mutex<Vec<u8>>>,
}

impl DelayProxy {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy port");
        let port = listener.local_addr().expect("proxy address").port();
        let target = Arc::new(AtomicU16::new(0));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (t, d, record) = (target.clone(), delay_ms.clone(), sent.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let (t, d, record) = (t.load(Ordering::SeqCst), d.clone(), record.clone());
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", t)).await
                    else {
                        return;
                    };
                    let (mut in_read, mut in_write) = inbound.into_split();
                    let (mut out_read, mut out_write) = outbound.into_split();
                    let up = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = in_read.read(&mut buf).await?;
                            if n == 0 {
                                return out_write.shutdown().await;
                            }
                            if let Ok(mut sent) = record.lock() {
                                let room = Self::RECORD_LIMIT.saturating_sub(sent.len());
                                sent.extend_from_slice(&buf[..n.min(room)]);
                            }
                            out_write.write_all(&buf[..n]).await?;
                        }
                    };
                    let down = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = out_read.read(&mut buf).await?;
                            if n == 0 {
                                return Ok::<_, std::io::Error>(());
                            }
                            let delay = d.load(Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(delay)).await;
                            in_write.write_all(&buf[..n]).await?;
                        }
                    };
                    let _ = tokio::join!(up, down);
                });
            }
        });
        Self {
            port,
            target,
            delay_ms,
            sent,
        }
    }

    /// How much of the traffic to the target is kept for [`DelayProxy::sent`].
    pub const RECORD_LIMIT: usize = 4 * 1024 * 1024;

    /// What was sent to the target so far (requests with their headers).
    pub fn sent(&self) -> String {
        let sent = self.sent.lock().map(|s| s.clone()).unwrap_or_default();
        String::from_utf8_lossy(&sent).into_owned()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set_target(&self, port: u16) {
        self.target.store(port, Ordering::SeqCst);
    }

    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }
}

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

/// `POST url` with an `Idempotency-Key`, retried with the same key until it
/// is answered 201 (for at most 30 s): what a careful client does. Returns
/// the answer and the number of attempts.
pub async fn create_with_retries(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    body: &Value,
) -> (Reply, usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let sent = http
            .post(url)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await;
        let last = match sent {
            Ok(response) => {
                let reply = Reply::from(response).await;
                if reply.status == StatusCode::CREATED {
                    return (reply, attempts);
                }
                format!("{}: {}", reply.status, reply.text)
            }
            Err(err) => err.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "{url} with key {key} never succeeded: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One sample of a Prometheus text exposition: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of a Prometheus text exposition (comments left out).
/// Panics on a line it cannot read: the format is the service's promise.
pub fn parse_metrics(text: &str) -> Vec<Sample> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| parse_sample(line).unwrap_or_else(|| panic!("not a metric sample: {line}")))
        .collect()
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut labels = std::collections::BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            inner = inner.trim_start_matches(',');
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            // key="value", with \\, \" and \n escaped inside the value.
            let (key, after_key) = inner.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after_key.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.insert(key.to_owned(), value);
            inner = &after_key[end + 1..];
        }
    }
    let value = match rest.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// The value of the sample `name` whose labels are exactly `labels`.
pub fn metric(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: std::collections::BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == wanted)
        .map(|s| s.value)
}

/// A stand-in OpenTelemetry collector: accepts OTLP/HTTP JSON on
/// `POST /v1/traces` (what a service sends with
/// `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`) and keeps every span.
pub struct OtlpReceiver {
    pub port: u16,
    spans: Arc<std::sync::Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    pub async fn start() -> Self {
        use axum::{Router, extract::State, http::StatusCode, routing::post};
        type Spans = Arc<std::sync::Mutex<Vec<Value>>>;
        async fn traces(State(spans): State<Spans>, body: axum::body::Bytes) -> StatusCode {
            let Ok(request) = serde_json::from_slice::<Value>(&body) else {
                return StatusCode::BAD_REQUEST;
            };
            let mut found = Vec::new();
            for resource in request["resourceSpans"].as_array().into_iter().flatten() {
                let service = resource["resource"]["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|a| a["key"] == "service.name")
                    .and_then(|a| a["value"]["stringValue"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                    for span in scope["spans"].as_array().into_iter().flatten() {
                        let mut span = span.clone();
                        span["service"] = Value::String(service.clone());
                        found.push(span);
                    }
                }
            }
            if let Ok(mut spans) = spans.lock() {
                spans.extend(found);
            }
            StatusCode::OK
        }
        let spans: Spans = Arc::default();
        let app = Router::new()
            .route("/v1/traces", post(traces))
            .with_state(spans.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("receiver port");
        let port = listener.local_addr().expect("receiver address").port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { port, spans, task }
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every span received so far, each with the `service` (its resource's
    /// `service.name`) added.
    pub fn spans(&self) -> Vec<Value> {
        self.spans.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
