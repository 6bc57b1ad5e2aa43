//! Settings every service shares, read from environment variables (or the
//! matching flags: `--help` lists them all). An invalid value stops the
//! service at start with a message that names the variable.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// The log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args, Clone, Debug)]
pub struct CommonConfig {
    /// Database URL: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`.
    /// Unset: a SQLite file named after the service in DATA_DIR.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Folder of the SQLite database file when DATABASE_URL is unset.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub shutdown: ShutdownConfig,
}

/// How a service stops on SIGTERM (every service has these two).
#[derive(clap::Args, Clone, Debug)]
pub struct ShutdownConfig {
    /// On SIGTERM, how long to go on serving new requests first, in
    /// seconds, while /readyz says not ready: the time the callers take to
    /// stop sending here (an orchestrator's DNS, a load balancer's check).
    #[arg(long, env = "SHUTDOWN_DELAY_SECS", default_value = "0", value_parser = parse_shutdown_delay)]
    pub delay: Duration,

    /// Then, how long requests in flight may take to finish, in seconds.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value = "10", value_parser = parse_grace)]
    pub grace: Duration,
}

fn parse_shutdown_delay(value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(secs @ 0..=60) => Ok(Duration::from_secs(secs)),
        _ => Err(format!(
            "`{value}` must be a whole number of seconds, 0 to 60"
        )),
    }
}

fn parse_grace(value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(secs @ 0..=300) => Ok(Duration::from_secs(secs)),
        _ => Err(format!(
            "`{value}` must be a whole number of seconds, 0 to 300"
        )),
    }
}

impl CommonConfig {
    /// The database URL to use: DATABASE_URL, else `DATA_DIR/<service>.db`.
    pub fn database_url(&self, service: &str) -> std::io::Result<String> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        std::fs::create_dir_all(&self.data_dir)?;
        let file = self.data_dir.join(format!("{service}.db"));
        Ok(format!("sqlite://{}", file.display()))
    }
}

/// How a service checks the access tokens of its callers, and gets its
/// own for the calls it makes. There is no setting that turns the check
/// off. The defaults fit `make run` (auth_service on 127.0.0.1:8020
/// behind the gateway on :8080); another OAuth2 provider is these
/// variables pointed at it.
#[derive(clap::Args, Clone, Debug)]
pub struct AuthConfig {
    /// The issuer (`iss`) every access token must name: the provider's
    /// issuer identifier, as its metadata says.
    #[arg(long, env = "AUTH_ISSUER", default_value = "http://127.0.0.1:8080/auth", value_parser = parse_service_url)]
    pub issuer: String,

    /// Where the provider publishes its public keys (JWKS).
    #[arg(long, env = "AUTH_JWKS_URL", default_value = "http://127.0.0.1:8020/auth/jwks.json", value_parser = parse_service_url)]
    pub jwks_url: String,

    /// The audience (`aud`) a token must be for. Default: the service's name.
    #[arg(long, env = "AUTH_AUDIENCE")]
    pub audience: Option<String>,

    /// How long the keys fetched from the JWKS are used before they are
    /// fetched again, in seconds (a token with an unknown `kid` fetches
    /// them at once, at most once a second).
    #[arg(long, env = "AUTH_JWKS_MAX_AGE_SECS", default_value = "300", value_parser = parse_jwks_max_age)]
    pub jwks_max_age: Duration,

    /// The token endpoint where this service gets its own access token
    /// (client credentials) for its calls to the other service.
    #[arg(long, env = "AUTH_TOKEN_URL", default_value = "http://127.0.0.1:8020/auth/token", value_parser = parse_service_url)]
    pub token_url: String,

    /// This service's own client id at the token endpoint.
    #[arg(long, env = "SERVICE_CLIENT_ID", value_parser = parse_client_id)]
    pub client_id: String,

    /// This service's own client secret at the token endpoint (or
    /// SERVICE_CLIENT_SECRET_FILE).
    #[arg(long, env = "SERVICE_CLIENT_SECRET", hide_env_values = true, value_parser = parse_client_secret,
          required_unless_present = "client_secret_file", conflicts_with = "client_secret_file")]
    pub client_secret: Option<String>,

    /// A file that holds this service's own client secret (a Docker or
    /// Kubernetes secret), instead of SERVICE_CLIENT_SECRET.
    #[arg(long, env = "SERVICE_CLIENT_SECRET_FILE")]
    pub client_secret_file: Option<PathBuf>,
}

impl AuthConfig {
    /// The client secret: SERVICE_CLIENT_SECRET, or the content of
    /// SERVICE_CLIENT_SECRET_FILE (a final line break left out).
    pub fn client_secret(&self) -> Result<String, String> {
        match (&self.client_secret, &self.client_secret_file) {
            (Some(secret), _) => Ok(secret.clone()),
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file).map_err(|e| {
                    format!(
                        "SERVICE_CLIENT_SECRET_FILE: cannot read {}: {e}",
                        file.display()
                    )
                })?;
                parse_client_secret(text.trim_end_matches(['\r', '\n']))
                    .map_err(|why| format!("SERVICE_CLIENT_SECRET_FILE {}: {why}", file.display()))
            }
            (None, None) => Err("set SERVICE_CLIENT_SECRET or SERVICE_CLIENT_SECRET_FILE".into()),
        }
    }
}

/// How many requests each caller may make: per instance of the service, per
/// caller (the client and the subject its access token names), past which
/// requests are answered 429 with `Retry-After`.
#[derive(clap::Args, Clone, Debug)]
pub struct RateLimitConfig {
    /// Requests per second each caller may make to this instance, on
    /// average.
    #[arg(long = "rate-limit-per-second", env = "RATE_LIMIT_PER_SECOND", default_value = "200",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub per_second: u32,

    /// Requests a caller may make at once above that rate (the bucket's size).
    #[arg(long = "rate-limit-burst", env = "RATE_LIMIT_BURST", default_value = "400",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub burst: u32,

    /// Client ids that are never limited, comma-separated: the other
    /// services of the system (their calls follow from requests that were
    /// limited already; limiting them would cap the whole system).
    #[arg(long = "rate-limit-exempt-clients", env = "RATE_LIMIT_EXEMPT_CLIENTS",
          default_value = "client_service,order_service", value_delimiter = ',',
          value_parser = parse_client_id)]
    pub exempt_clients: Vec<String>,
}

/// Seconds the clocks of the token's issuer and of a service may differ by:
/// a token is accepted until `exp` plus this, and not before `iat` minus it.
pub const TOKEN_LEEWAY_SECS: u64 = 10;

fn parse_jwks_max_age(value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(secs @ 10..=86_400) => Ok(Duration::from_secs(secs)),
        _ => Err(format!(
            "`{value}` must be a whole number of seconds, 10 to 86400"
        )),
    }
}

/// A client id: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn parse_client_id(value: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(value.to_owned())
    } else {
        Err("a client id is 1 to 64 of A-Z a-z 0-9 . _ -".into())
    }
}

/// A client secret: 16 to 256 visible ASCII characters (the value is never
/// repeated in the message).
pub fn parse_client_secret(value: &str) -> Result<String, String> {
    let ok = (16..=256).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(value.to_owned())
    } else {
        Err("a client secret is 16 to 256 visible ASCII characters".into())
    }
}

/// Settings of the calls to another service. A service declares them in
/// its configuration with [`calls_to!`](crate::calls_to), which names every
/// variable after the other service (`CLIENT_SERVICE_URL`,
/// `CLIENT_SERVICE_TIMEOUT_MS`, …) and lists them in `--help`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DependencyConfig {
    /// The base URL of each instance, e.g. `http://127.0.0.1:8000` (from a
    /// comma-separated list). One URL whose host name resolves to several
    /// addresses (as in compose) is one instance to this list: the HTTP
    /// client then tries each address.
    pub urls: Vec<String>,
    /// Total time for one attempt.
    pub timeout: Duration,
    /// Total time for one call, all its attempts together (failover and
    /// retries included): an attempt gets at most what is left of it.
    pub deadline: Duration,
    /// Time to open a connection.
    pub connect_timeout: Duration,
    /// Extra attempts for a read that was refused or answered 5xx (0 to 2).
    pub retries: u32,
    /// Calls in flight at most; past that, a call fails at once.
    pub max_concurrent: usize,
    /// Failures in a row that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open before it lets calls through again.
    pub breaker_open: Duration,
}

impl DependencyConfig {
    /// The defaults (those of `--help`), for the instances at `urls`.
    pub fn new(urls: Vec<String>) -> Self {
        Self {
            urls,
            timeout: Duration::from_millis(2000),
            deadline: Duration::from_millis(2500),
            connect_timeout: Duration::from_millis(500),
            retries: 2,
            max_concurrent: 256,
            breaker_failures: 5,
            breaker_open: Duration::from_millis(5000),
        }
    }
}

/// Declares the clap arguments of a service's calls to another service,
/// each variable named after it, and their conversion into a
/// [`DependencyConfig`]:
///
/// ```
/// kit_config::calls_to!(ClientServiceCalls, "CLIENT_SERVICE", "client-service", "http://127.0.0.1:8000");
/// ```
///
/// (`env = concat!(…)`: clap takes any expression, so the names are written
/// once, here, and every one is in `--help`.) The defaults are
/// [`DependencyConfig::new`]'s.
#[macro_export]
macro_rules! calls_to {
    ($name:ident, $env:literal, $flag:literal, $default_url:literal) => {
        #[doc = concat!("The calls to the instances named by `", $env, "_URL`.")]
        #[derive(clap::Args, Clone, Debug)]
        pub struct $name {
            /// The base URL of each instance, comma-separated (at most 64;
            /// one name that resolves to several addresses is one instance).
            #[arg(long = concat!($flag, "-url"), env = concat!($env, "_URL"),
                  default_value = $default_url, value_parser = $crate::parse_service_urls)]
            pub urls: $crate::ServiceUrls,
            /// Time for one attempt, in milliseconds.
            #[arg(long = concat!($flag, "-timeout-ms"), env = concat!($env, "_TIMEOUT_MS"),
                  default_value = "2000", value_parser = $crate::parse_millis)]
            pub timeout: std::time::Duration,
            /// Time for a whole call, every attempt together, in milliseconds.
            #[arg(long = concat!($flag, "-deadline-ms"), env = concat!($env, "_DEADLINE_MS"),
                  default_value = "2500", value_parser = $crate::parse_millis)]
            pub deadline: std::time::Duration,
            /// Time to open a connection, in milliseconds.
            #[arg(long = concat!($flag, "-connect-timeout-ms"), env = concat!($env, "_CONNECT_TIMEOUT_MS"),
                  default_value = "500", value_parser = $crate::parse_millis)]
            pub connect_timeout: std::time::Duration,
            /// Extra attempts of a read that was refused or answered 5xx (0 to 2).
            #[arg(long = concat!($flag, "-retries"), env = concat!($env, "_RETRIES"),
                  default_value = "2", value_parser = clap::value_parser!(u32).range(0..=2))]
            pub retries: u32,
            /// Calls in flight at most (the bulkhead); past that, a call fails at once.
            #[arg(long = concat!($flag, "-max-concurrent"), env = concat!($env, "_MAX_CONCURRENT"),
                  default_value = "256", value_parser = clap::value_parser!(u32).range(1..=10_000))]
            pub max_concurrent: u32,
            /// Failures in a row that open an instance's circuit breaker.
            #[arg(long = concat!($flag, "-breaker-failures"), env = concat!($env, "_BREAKER_FAILURES"),
                  default_value = "5", value_parser = clap::value_parser!(u32).range(1..=1000))]
            pub breaker_failures: u32,
            /// How long a breaker stays open, in milliseconds.
            #[arg(long = concat!($flag, "-breaker-open-ms"), env = concat!($env, "_BREAKER_OPEN_MS"),
                  default_value = "5000", value_parser = $crate::parse_millis)]
            pub breaker_open: std::time::Duration,
        }

        impl From<&$name> for $crate::DependencyConfig {
            fn from(calls: &$name) -> Self {
                Self {
                    urls: calls.urls.0.clone(),
                    timeout: calls.timeout,
                    deadline: calls.deadline,
                    connect_timeout: calls.connect_timeout,
                    retries: calls.retries,
                    max_concurrent: calls.max_concurrent as usize,
                    breaker_failures: calls.breaker_failures,
                    breaker_open: calls.breaker_open,
                }
            }
        }
    };
}

/// The instances' base URLs of one `*_URL` setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceUrls(pub Vec<String>);

/// Parses a `host:port` listen address.
pub fn parse_listen_addr(value: &str) -> Result<SocketAddr, String> {
    value
        .parse()
        .map_err(|_| format!("`{value}` is not an address like 127.0.0.1:8000"))
}

/// Parses the base URL of another service: `http://host:port`.
pub fn parse_service_url(value: &str) -> Result<String, String> {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .ok_or_else(|| format!("`{value}` must start with http:// or https://"))?;
    if rest.trim_end_matches('/').is_empty() || rest.contains(char::is_whitespace) {
        return Err(format!("`{value}` has no host"));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// The most instances of another service one `*_URL` may list.
pub const MAX_INSTANCES: usize = 64;

/// Parses a comma-separated list of base URLs of another service's
/// instances (at least one, at most [`MAX_INSTANCES`], each listed once).
pub fn parse_service_urls(value: &str) -> Result<ServiceUrls, String> {
    let mut urls: Vec<String> = Vec::new();
    for part in value.split(',').map(str::trim) {
        let url = parse_service_url(part)?;
        if urls.contains(&url) {
            return Err(format!("`{url}` is listed twice"));
        }
        urls.push(url);
    }
    if urls.len() > MAX_INSTANCES {
        return Err(format!(
            "lists {} URLs; at most {MAX_INSTANCES} instances",
            urls.len()
        ));
    }
    Ok(ServiceUrls(urls))
}

/// Parses a duration in milliseconds, 1..=60000.
pub fn parse_millis(value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(ms @ 1..=60_000) => Ok(Duration::from_millis(ms)),
        _ => Err(format!(
            "`{value}` must be a whole number of milliseconds, 1 to 60000"
        )),
    }
}

/// `url` with any password replaced, safe to log.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shutdown_times_are_bounded() {
        assert_eq!(parse_shutdown_delay("5"), Ok(Duration::from_secs(5)));
        assert!(parse_shutdown_delay("61").is_err());
        assert!(parse_shutdown_delay("-1").is_err());
        assert_eq!(parse_grace("300"), Ok(Duration::from_secs(300)));
        assert!(parse_grace("301").is_err());
    }

    #[test]
    fn values_are_checked() {
        assert!(parse_listen_addr("0.0.0.0:8000").is_ok());
        assert!(parse_listen_addr("localhost").is_err());
        assert_eq!(
            parse_service_url("http://c:8000/").unwrap(),
            "http://c:8000"
        );
        assert!(parse_service_url("c:8000").is_err());
        assert!(parse_service_url("http://").is_err());
        assert_eq!(parse_millis("2000").unwrap(), Duration::from_secs(2));
        assert!(parse_millis("0").is_err());
        assert!(parse_millis("2s").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:s3cr@t@db:5432/clients"),
            "postgres://app:***@db:5432/clients"
        );
        assert_eq!(redact_url("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(redact_url("sqlite:///data/c.db"), "sqlite:///data/c.db");
    }

    crate::calls_to!(TestCalls, "X", "x", "http://x:1");

    #[derive(clap::Parser, Debug)]
    struct Settings {
        #[command(flatten)]
        calls: TestCalls,
    }

    fn settings(args: &[&str]) -> Result<DependencyConfig, String> {
        use clap::Parser;
        let args = std::iter::once("test").chain(args.iter().copied());
        Settings::try_parse_from(args)
            .map(|s| DependencyConfig::from(&s.calls))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn calls_have_the_defaults_of_new_and_name_the_bad_setting() {
        let defaults = settings(&[]).unwrap();
        assert_eq!(defaults, DependencyConfig::new(vec!["http://x:1".into()]));
        let bad = |arg: &str| settings(&[arg]).unwrap_err();
        assert!(bad("--x-retries=3").contains("--x-retries"));
        assert!(bad("--x-timeout-ms=soon").contains("--x-timeout-ms"));
        assert!(bad("--x-deadline-ms=0").contains("--x-deadline-ms"));
        assert!(bad("--x-url=x:1").contains("--x-url"));
        assert!(bad("--x-url=http://a:1,").contains("--x-url"));
        assert!(bad("--x-url=http://a:1,http://a:1/").contains("twice"));
    }

    #[test]
    fn calls_may_go_to_several_instances() {
        let config = settings(&["--x-url", " http://a:1/ , http://b:2"]).unwrap();
        assert_eq!(config.urls, ["http://a:1", "http://b:2"]);
    }
}
