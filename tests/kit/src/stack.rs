//! The whole system per test: auth_service, client_service, order_service
//! and nginx rendered from the shipped gateway template, on free loopback
//! ports, with its own databases and its own keys and clients (`auth_service
//! init`), driven over HTTP through the gateway. [`Stack::http`] sends the
//! token of the development client with every scope; [`Stack::anonymous`]
//! sends none. With [`Options::console`], the web console too (at `/` and
//! `/console/` of the gateway, signed in to with the development users of
//! [`Stack::dev_user`]); without it, the gateway's console upstream is an
//! address nothing listens on.
//!
//! The backend comes from `E2E_BACKEND` (see [`Backend`]): `sqlite` (the
//! default, a temp folder per test) or `postgres`, which needs `E2E_PG_URL`
//! (an admin URL: each test creates its own two databases). `make test`
//! runs the suite once with each. A missing prerequisite fails the test;
//! nothing is skipped.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    Backend, Process, Reply, Service, answers, auth_database, auth_init, bearer_client, bin_dir,
    databases, env_file_value, free_port, json_lines, nginx_binary, raw_request, token_at,
    workspace_root,
};

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

/// The whole system behind its gateway.
pub struct Stack {
    pub gateway: String,
    pub client_services: Vec<Service>,
    pub order_services: Vec<Service>,
    /// The token issuer.
    pub auth_service: Service,
    /// The web console, when [`Options::console`] asked for it.
    pub console: Option<Service>,
    /// The console's port: the gateway's console upstream (nothing listens
    /// there without [`Options::console`]).
    pub console_port: u16,
    /// Where `auth_service init` made the keys, the clients file and the
    /// clients' env files.
    pub auth_dir: PathBuf,
    nginx: Process,
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
    /// instances (e.g. a recording [`DelayProxy`](crate::DelayProxy) in front of them).
    pub gateway_client_upstream: Option<String>,
    /// Starts the web console (the `console` binary) behind the gateway, a
    /// confidential client of auth_service (`dev-web`), its System page
    /// watching every instance of the stack (`CONSOLE_INSTANCES`).
    pub console: bool,
    /// Extra environment for the console.
    pub console_env: Vec<(String, String)>,
    /// auth_service's `AUTH_TOKEN_TTL_SECS` (the access tokens' lifetime,
    /// 60 to 600 s; its default, 300, when None).
    pub token_ttl_secs: Option<u64>,
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
            console: false,
            console_env: Vec::new(),
            token_ttl_secs: None,
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
        let console_port = free_port();
        let auth_dir = dir.path().join("auth");
        let auth_db = auth_database(&Backend::from_env(), dir.path()).await;
        let web_origin = format!("http://127.0.0.1:{gateway_port}");
        auth_init(&auth_dir, &auth_db, &web_origin);
        let issuer = format!("{web_origin}/auth");
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
            // Its database (users, sign-in sessions, codes, refresh
            // tokens), where `init` added the development users: a SQLite
            // file in the stack's folder, or a database of its own on
            // PostgreSQL.
            ("DATABASE_URL".to_owned(), auth_db.clone()),
        ];
        if let Some(ttl) = options.token_ttl_secs {
            auth_env.push(("AUTH_TOKEN_TTL_SECS".to_owned(), ttl.to_string()));
        }
        auth_env.extend(options.auth_env.iter().cloned());
        let auth_service = Service::new(
            "auth_service",
            auth_port,
            auth_env,
            dir.path().join("auth.log"),
        );
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
            client_services.push(Service::new(
                "client_service",
                client_ports[i],
                client_env,
                dir.path().join(format!("client.{i}.log")),
            ));
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
            order_services.push(Service::new(
                "order_service",
                order_ports[i],
                order_env,
                dir.path().join(format!("order.{i}.log")),
            ));
        }
        let console = options.console.then(|| {
            console_service(
                &ConsoleSetup {
                    port: console_port,
                    dir: dir.path(),
                    auth_dir: &auth_dir,
                    origin: &web_origin,
                    issuer: &issuer,
                    instances: [
                        ("client_service", &client_ports[..]),
                        ("order_service", &order_ports[..]),
                        ("auth_service", &[auth_port][..]),
                    ],
                },
                &options.console_env,
            )
        });
        let anonymous = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        let nginx_dir = dir.path().join("gateway");
        let mut stack = Stack {
            gateway: format!("http://127.0.0.1:{gateway_port}"),
            client_services,
            order_services,
            auth_service,
            console,
            console_port,
            auth_dir,
            nginx: nginx(&nginx_dir),
            nginx_dir,
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
        stack.nginx.spawn();
        if let Some(console) = &mut stack.console {
            console.spawn();
        }
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

    /// The name and password of a development user (`dev-users.env`:
    /// `ADMIN` or `VIEWER`), as `auth_service init` made them.
    pub fn dev_user(&self, prefix: &str) -> (String, String) {
        let file = self.auth_dir.join("dev-users.env");
        (
            env_file_value(&file, &format!("{prefix}_USER")),
            env_file_value(&file, &format!("{prefix}_PASSWORD")),
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
        if self.auth_service.process().is_started() {
            self.auth_service.stop();
        }
        for (name, value) in env {
            self.auth_service.set_env(&name, &value);
        }
        self.auth_service.start().await;
    }

    /// Kills auth_service (SIGKILL).
    pub fn kill_auth_service(&mut self) {
        self.auth_service.kill();
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
            .env("CONSOLE_ADDRS", format!("127.0.0.1:{}", self.console_port))
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
        self.services_mut(kind)[i].kill();
    }

    /// Stops one instance gracefully (SIGTERM) and waits for it to exit.
    pub fn stop_replica(&mut self, kind: Kind, i: usize) -> std::process::ExitStatus {
        self.services_mut(kind)[i].stop()
    }

    /// Starts one instance again (same port and database) and waits until ready.
    pub async fn start_replica(&mut self, kind: Kind, i: usize) {
        self.services_mut(kind)[i].start().await;
    }

    /// Waits until every instance and the gateway answer their health checks.
    pub async fn wait_ready(&mut self) {
        let mut urls: Vec<String> = std::iter::once(&self.auth_service)
            .chain(&self.client_services)
            .chain(&self.order_services)
            .map(|s| format!("{}/readyz", s.url()))
            .collect();
        if let Some(console) = &self.console {
            urls.push(format!("{}/readyz", console.url()));
        }
        urls.push(format!("{}/healthz", self.gateway));
        for url in urls {
            self.wait_for(&url).await;
        }
    }

    /// Waits until `url` answers 2xx, for at most 30 s; panics with its
    /// log if a process of the stack exits meanwhile.
    async fn wait_for(&mut self, url: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            for service in std::iter::once(&mut self.auth_service)
                .chain(self.client_services.iter_mut())
                .chain(self.order_services.iter_mut())
            {
                service.process_mut().assert_not_exited();
            }
            if let Some(console) = &mut self.console {
                console.process_mut().assert_not_exited();
            }
            self.nginx.assert_not_exited();
            if answers(&self.http, url).await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{url} not ready after 30 s\nclient_service log:\n{}\norder_service log:\n{}",
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
        self.client_services.iter_mut().for_each(Service::kill);
    }

    pub fn kill_order_service(&mut self) {
        self.order_services.iter_mut().for_each(Service::kill);
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
            service.process_mut().freeze();
        }
    }

    pub fn thaw_client_service(&mut self) {
        for service in &mut self.client_services {
            service.process_mut().thaw();
        }
    }

    /// Stops every instance gracefully (SIGTERM) and waits for them to exit.
    pub fn stop_services(&mut self) -> Vec<std::process::ExitStatus> {
        self.client_services
            .iter_mut()
            .chain(self.order_services.iter_mut())
            .filter(|service| service.process().is_started())
            .map(Service::stop)
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

impl Drop for Stack {
    fn drop(&mut self) {
        self.client_services.iter_mut().for_each(Service::kill);
        self.order_services.iter_mut().for_each(Service::kill);
        self.auth_service.kill();
        if let Some(console) = &mut self.console {
            console.kill();
        }
        // SIGTERM, not SIGKILL: nginx's master stops its workers, which a
        // killed master would leave behind.
        self.nginx.terminate(Duration::from_secs(5));
    }
}

/// nginx with the configuration rendered into `dir`, not started yet.
fn nginx(dir: &Path) -> Process {
    let mut command = Command::new(nginx_binary());
    command
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"));
    Process::new("nginx", command, dir.join("nginx.log"))
}

/// What the console of a stack is given.
struct ConsoleSetup<'a> {
    port: u16,
    dir: &'a Path,
    auth_dir: &'a Path,
    /// The gateway's origin: the one the browser opens, and the origin of
    /// the development web client's redirect URI (`auth_service init`'s
    /// `--web-origin`).
    origin: &'a str,
    issuer: &'a str,
    /// The instances its System page watches, by service.
    instances: [(&'a str, &'a [u16]); 3],
}

/// The console, not started yet: the development web client `dev-web` of
/// `dev-clients.env` (its secret in a file, as Docker and Kubernetes give
/// it), the API and the browser's origin both the gateway.
fn console_service(setup: &ConsoleSetup, extra: &[(String, String)]) -> Service {
    let clients = setup.auth_dir.join("dev-clients.env");
    let secret_file = setup.dir.join("console-client-secret");
    std::fs::write(&secret_file, env_file_value(&clients, "WEB_CLIENT_SECRET"))
        .expect("the console's client secret file");
    let instances = setup
        .instances
        .iter()
        .flat_map(|(service, ports)| {
            ports
                .iter()
                .map(move |port| format!("{service}=http://127.0.0.1:{port}"))
        })
        .collect::<Vec<_>>()
        .join(",");
    let mut env = vec![
        ("AUTH_ISSUER".to_owned(), setup.issuer.to_owned()),
        ("CONSOLE_PUBLIC_URL".to_owned(), setup.origin.to_owned()),
        ("CONSOLE_API_URL".to_owned(), setup.origin.to_owned()),
        (
            "CONSOLE_CLIENT_ID".to_owned(),
            env_file_value(&clients, "WEB_CLIENT_ID"),
        ),
        (
            "CONSOLE_CLIENT_SECRET_FILE".to_owned(),
            secret_file.display().to_string(),
        ),
        ("CONSOLE_INSTANCES".to_owned(), instances),
        ("LOG_FORMAT".to_owned(), "json".to_owned()),
    ];
    env.extend(extra.iter().cloned());
    Service::new("console", setup.port, env, setup.dir.join("console.log"))
}
