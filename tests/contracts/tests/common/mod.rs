//! What the contract tests share: where the pact files go, the consumers'
//! stand-in token issuer and typed-client settings, and the provider side's
//! harness (a real service binary, started by the test kit (tests/kit) on a
//! free port, with its own SQLite file; a token issuer whose keys can be
//! made unreachable; the request filter that puts a valid token on every
//! replayed request; and the provider-state executor that writes the states
//! into the provider's database).
//!
//! Each test binary uses a part of this module only.
#![allow(dead_code)]

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc, Once,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Json, Router, http::StatusCode, response::IntoResponse, routing::get};
use kit_auth::testing::{TEST_ISSUER, TestIssuer, TestKey, claims};
use kit_config::DependencyConfig;
use kit_upstream::token::ServiceToken;
use pact_consumer::{
    builders::{RequestBuilder, ResponseBuilder},
    json_pattern, like,
    prelude::*,
    term,
};
use serde_json::{Value, json};
use test_kit::{Service, free_port, workspace_root};

/// The names the pact files and the verifier know the services by.
pub const CLIENT_SERVICE: &str = "client_service";
pub const ORDER_SERVICE: &str = "order_service";

/// Where the consumer tests write the pact files and the provider
/// verification reads them: `target/pacts/` of the workspace (git-ignored;
/// `make test` runs the consumer tests first).
pub fn pact_dir() -> PathBuf {
    workspace_root().join("target/pacts")
}

/// The pact file of `consumer` with `provider`, as pact_consumer names it.
pub fn pact_file(consumer: &str, provider: &str) -> PathBuf {
    pact_dir().join(format!("{consumer}-{provider}.json"))
}

/// Pact sends usage metrics to a public address unless PACT_DO_NOT_TRACK is
/// `true`; the workspace's `.cargo/config.toml` sets it for every cargo
/// command. A test run without it stops here, before anything is sent.
pub fn require_do_not_track() {
    assert_eq!(
        std::env::var("PACT_DO_NOT_TRACK").as_deref(),
        Ok("true"),
        "PACT_DO_NOT_TRACK must be `true` (the workspace's .cargo/config.toml sets it): \
         pact would otherwise send usage metrics"
    );
}

/// Removes `file` once per test binary, before its first test writes to it:
/// pact_consumer merges new interactions into an existing file, so an
/// interaction renamed or removed since the last run would otherwise stay in
/// the contract.
pub fn start_pact_file(file: &Path) {
    static CLEAN: Once = Once::new();
    CLEAN.call_once(|| {
        if let Err(err) = std::fs::remove_file(file)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            panic!("cannot remove the old pact file {}: {err}", file.display());
        }
    });
}

// ---------------------------------------------------------------- consumers

/// The `Authorization` header of every call between the services: a bearer
/// JWT (three base64url parts). The value does not matter to the contract;
/// the provider verification replaces it with a token valid for the
/// provider (see [`TokenFilter`]).
pub const BEARER_JWT: &str = r"^Bearer [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$";
pub const BEARER_EXAMPLE: &str =
    "Bearer eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCJ9.eyJzY29wZSI6ImNsaWVudHM6cmVhZCJ9.c2lnbmF0dXJl";

/// A problem+json media type (RFC 9457), charset or not.
pub const PROBLEM_JSON: &str = r"^application/problem\+json(;.*)?$";
/// A JSON media type.
pub const APPLICATION_JSON: &str = r"^application/json(;.*)?$";
/// `Retry-After` in seconds.
pub const RETRY_AFTER_SECONDS: &str = r"^[1-9][0-9]*$";

/// The `Authorization` header every call between the services carries.
pub fn bearer(request: &mut RequestBuilder) -> &mut RequestBuilder {
    request.header("Authorization", term!(BEARER_JWT, BEARER_EXAMPLE))
}

/// 200 with a JSON body.
pub fn json_ok(response: &mut ResponseBuilder, body: JsonPattern) {
    response
        .ok()
        .header("Content-Type", term!(APPLICATION_JSON, "application/json"))
        .json_body(body);
}

/// `status` with a problem+json body (the kit's `Problem`).
pub fn problem(response: &mut ResponseBuilder, status: u16, body: JsonPattern) {
    response
        .status(status)
        .header(
            "Content-Type",
            term!(PROBLEM_JSON, "application/problem+json"),
        )
        .json_body(body);
}

/// The kit's 503 (`ApiError::Unavailable`, the same in both services):
/// problem+json with `Retry-After` in seconds. What a consumer may be
/// answered when its provider cannot serve the call now.
pub fn unavailable(response: &mut ResponseBuilder) {
    response.header("Retry-After", term!(RETRY_AFTER_SECONDS, "2"));
    problem(
        response,
        503,
        json_pattern!({
            "status": 503,
            "title": like!("Service Unavailable"),
        }),
    );
}

/// The settings of a typed client that calls `url` once per call: no
/// retries, so that a failure the contract describes is seen as it is.
pub fn dependency(url: &str) -> DependencyConfig {
    let urls = kit_config::parse_service_urls(url)
        .unwrap_or_else(|e| panic!("the mock server's URL {url}: {e}"));
    let mut config = DependencyConfig::new(urls.0);
    config.retries = 0;
    config.timeout = Duration::from_secs(5);
    config.deadline = config.timeout;
    config
}

/// The consumer's own token, from a stand-in issuer, as in production.
pub fn service_token(issuer: &TestIssuer, scope: &str) -> ServiceToken {
    ServiceToken::new(&issuer.config(), scope, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("the service token: {e}"))
}

// ---------------------------------------------------------------- providers

/// The token issuer of a provider verification: it publishes one key in its
/// JWKS, and a provider state can make the JWKS unreachable (it answers 503)
/// and the requests carry a token of a key the provider has never seen, as
/// after a key rotation while auth_service is down.
#[derive(Clone)]
pub struct Issuer {
    pub base: String,
    key: TestKey,
    jwks_down: Arc<AtomicBool>,
    rotations: Arc<AtomicUsize>,
}

impl Issuer {
    pub async fn start() -> Self {
        let key = TestKey::from_seed(7, "contract-key");
        let jwks = json!({"keys": [key.jwk.clone()]});
        let jwks_down = Arc::new(AtomicBool::new(false));
        let down = jwks_down.clone();
        let app = Router::new().route(
            "/auth/jwks.json",
            get(move || {
                let (jwks, down) = (jwks.clone(), down.clone());
                async move {
                    if down.load(Ordering::SeqCst) {
                        StatusCode::SERVICE_UNAVAILABLE.into_response()
                    } else {
                        Json(jwks).into_response()
                    }
                }
            }),
        );
        let (port, _) = test_kit::serve(app).await;
        Self {
            base: format!("http://127.0.0.1:{port}"),
            key,
            jwks_down,
            rotations: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The environment that points a service at this issuer.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AUTH_ISSUER", TEST_ISSUER.to_owned()),
            ("AUTH_JWKS_URL", format!("{}/auth/jwks.json", self.base)),
            // The providers' own calls are not part of their verification;
            // their token requests fail at once (404 here).
            ("AUTH_TOKEN_URL", format!("{}/auth/token", self.base)),
            ("SERVICE_CLIENT_ID", "contract-provider".to_owned()),
            (
                "SERVICE_CLIENT_SECRET",
                "contract-secret-0123456789".to_owned(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// `Bearer …` for `audience` with `scope`: signed with the published
    /// key, or, while the keys are unreachable, with a key never published.
    pub fn authorization(&self, audience: &str, scope: &str) -> String {
        let claims = claims(audience, scope, 300);
        let token = if self.jwks_down.load(Ordering::SeqCst) {
            let n = self.rotations.fetch_add(1, Ordering::SeqCst);
            TestKey::from_seed(100 + (n % 100) as u8, &format!("rotated-{n}")).sign(&claims)
        } else {
            self.key.sign(&claims)
        };
        format!("Bearer {token}")
    }

    pub fn set_keys_unreachable(&self, down: bool) {
        self.jwks_down.store(down, Ordering::SeqCst);
    }
}

/// One real service process (the test kit's [`Service`]: the binary built
/// from the code under test, on a free port), with its own SQLite file in a
/// temp folder; killed when dropped.
pub struct Provider {
    pub service: Service,
    pub database: PathBuf,
    _dir: tempfile::TempDir,
}

impl Provider {
    /// Starts `name` and waits until it is ready (its migrations have run:
    /// the database file has its tables).
    pub async fn start(name: &'static str, issuer: &Issuer) -> Self {
        let dir = tempfile::tempdir().expect("a temp folder");
        let database = dir.path().join(format!("{name}.db"));
        let mut env = issuer.env();
        env.extend([
            (
                "DATABASE_URL".to_owned(),
                format!("sqlite://{}", database.display()),
            ),
            // The other service is not part of this verification: nothing
            // listens there, so a call to it fails at once.
            (
                "CLIENT_SERVICE_URL".to_owned(),
                format!("http://127.0.0.1:{}", free_port()),
            ),
            (
                "ORDER_SERVICE_URL".to_owned(),
                format!("http://127.0.0.1:{}", free_port()),
            ),
        ]);
        let log = dir.path().join(format!("{name}.log"));
        let mut service = Service::new(name, free_port(), env, log);
        service.start().await;
        Self {
            service,
            database,
            _dir: dir,
        }
    }
}

/// The request filter of a verification: every request the verifier replays
/// gets a valid token of [`Issuer`] for the provider, in place of the
/// example in the pact file (which is no token at all). The contract says
/// only that calls carry a bearer JWT; whether that token is valid is the
/// provider's own test (`tests/e2e/tests/security.rs`).
#[derive(Clone)]
pub struct TokenFilter {
    pub issuer: Issuer,
    pub audience: &'static str,
    pub scope: &'static str,
}

impl std::fmt::Debug for TokenFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFilter")
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .finish()
    }
}

impl pact_verifier::callback_executors::RequestFilterExecutor for TokenFilter {
    fn call(
        self: Arc<Self>,
        request: &pact_models::v4::http_parts::HttpRequest,
    ) -> pact_models::v4::http_parts::HttpRequest {
        let mut request = request.clone();
        let headers = request.headers.get_or_insert_with(HashMap::new);
        headers.retain(|name, _| !name.eq_ignore_ascii_case("authorization"));
        headers.insert(
            "Authorization".to_owned(),
            vec![self.issuer.authorization(self.audience, self.scope)],
        );
        request
    }

    fn call_non_http(
        &self,
        body: &pact_models::bodies::OptionalBody,
        metadata: &HashMap<String, either::Either<Value, bytes::Bytes>>,
    ) -> (
        pact_models::bodies::OptionalBody,
        HashMap<String, either::Either<Value, bytes::Bytes>>,
    ) {
        (body.clone(), metadata.clone())
    }
}

/// How a provider state is set up: the verifier calls [`StateHook::set_up`]
/// before an interaction for each of its states, and
/// [`StateHook::tear_down`] after it.
pub trait StateHook: Send + Sync + 'static {
    /// Puts the provider into `state` (its name and parameters, as the
    /// consumer wrote them); an unknown state is an error that fails the
    /// interaction.
    fn set_up(&self, state: &str, params: &HashMap<String, Value>) -> Result<(), String>;
    /// Undoes every state: the next interaction starts from nothing.
    fn tear_down(&self) -> Result<(), String>;
}

/// The states of a deliberately broken stand-in, which answers the same
/// whatever the state.
pub struct NoStates;

impl StateHook for NoStates {
    fn set_up(&self, _: &str, _: &HashMap<String, Value>) -> Result<(), String> {
        Ok(())
    }
    fn tear_down(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The verifier's provider-state executor around a [`StateHook`]: the hook
/// runs in this test process, never in the provider.
pub struct States<H: StateHook>(pub H);

impl<H: StateHook> std::fmt::Debug for States<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("States")
    }
}

#[async_trait::async_trait]
impl<H: StateHook> pact_verifier::callback_executors::ProviderStateExecutor for States<H> {
    async fn call(
        self: Arc<Self>,
        _interaction_id: Option<String>,
        state: &pact_models::provider_states::ProviderState,
        setup: bool,
        _client: Option<&reqwest_pact::Client>,
    ) -> anyhow::Result<HashMap<String, Value>> {
        let done = if setup {
            self.0.set_up(&state.name, &state.params)
        } else {
            self.0.tear_down()
        };
        done.map_err(|why| anyhow::anyhow!("provider state `{}`: {why}", state.name))?;
        Ok(HashMap::new())
    }

    fn teardown(&self) -> bool {
        true
    }
}

/// The integer parameter `name` of a provider state.
pub fn param_i64(params: &HashMap<String, Value>, name: &str) -> Result<i64, String> {
    params
        .get(name)
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("needs the integer parameter `{name}` (got {params:?})"))
}

/// A connection to a provider's SQLite file, next to the provider's own
/// (write-ahead log mode: the service keeps reading while this one writes).
pub fn open_database(path: &Path) -> Result<rusqlite::Connection, String> {
    let conn =
        rusqlite::Connection::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// A result of the verification, whole: passed, and which interactions failed.
pub struct Verified {
    pub passed: bool,
    /// The descriptions of the interactions that failed.
    pub failed: Vec<String>,
    /// The descriptions of every interaction verified.
    pub verified: Vec<String>,
}

impl Verified {
    /// Passed, and every interaction of `pact` verified; else the failed
    /// interactions and the provider's log (Pact's report is above them).
    pub fn assert_passed(mut self, pact: &Path, provider: &Provider) {
        assert!(
            self.passed,
            "{name} broke its consumer's pact {pact}: {failed:?} (Pact's report above)\n\
             {name}'s log:\n{log}",
            name = provider.service.name,
            pact = pact.display(),
            failed = self.failed,
            log = provider.service.log(),
        );
        self.verified.sort();
        assert_eq!(
            self.verified,
            interactions(pact),
            "every interaction verified"
        );
    }
}

/// Verifies the provider at `port` against `pact` (a pact file), with the
/// state hook and the token filter; prints pact_verifier's own report.
pub async fn verify<H: StateHook>(
    provider: &str,
    port: u16,
    pact: &Path,
    hook: H,
    filter: TokenFilter,
) -> Verified {
    require_do_not_track();
    assert!(
        pact.is_file(),
        "no pact file at {}: run the consumer tests first \
         (cargo test -p contracts --test consumer_client_service --test consumer_order_service)",
        pact.display()
    );
    #[allow(deprecated)]
    let info = pact_verifier::ProviderInfo {
        name: provider.to_owned(),
        host: "127.0.0.1".to_owned(),
        port: Some(port),
        transports: vec![pact_verifier::ProviderTransport {
            transport: "http".to_owned(),
            port: Some(port),
            path: None,
            scheme: Some("http".to_owned()),
        }],
        ..Default::default()
    };
    let options = pact_verifier::VerificationOptions {
        request_filter: Some(Arc::new(filter)),
        // A busy SQLite database answers after its 5 s busy timeout.
        request_timeout: 15_000,
        coloured_output: false,
        no_pacts_is_error: true,
        ..Default::default()
    };
    let states = Arc::new(States(hook));
    let result = pact_verifier::verify_provider_async(
        info,
        vec![pact_verifier::PactSource::File(pact.display().to_string())],
        pact_verifier::FilterInfo::None,
        vec![],
        &options,
        None,
        &states,
        None,
    )
    .await
    .unwrap_or_else(|e| panic!("the verification of {provider} could not run: {e}"));
    Verified {
        passed: result.result,
        failed: result
            .interaction_results
            .iter()
            .filter(|r| r.result.is_err())
            .map(|r| r.interaction_description.clone())
            .collect(),
        verified: result
            .interaction_results
            .iter()
            .map(|r| r.interaction_description.clone())
            .collect(),
    }
}

/// The descriptions of the interactions in a pact file, sorted.
pub fn interactions(pact: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(pact)
        .unwrap_or_else(|e| panic!("{}: {e} (run the consumer tests first)", pact.display()));
    let pact: Value = serde_json::from_str(&text).expect("a pact file is JSON");
    let mut names: Vec<String> = pact["interactions"]
        .as_array()
        .expect("interactions")
        .iter()
        .filter_map(|i| i["description"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}
