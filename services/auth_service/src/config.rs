//! auth_service's settings, from environment variables (every one of them:
//! docs/src/how-it-works/configuration.md), and its commands.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use kit_config::{LogFormat, parse_listen_addr, parse_service_url};

/// auth_service: the OAuth2 token issuer (client credentials).
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "auth_service",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub config: Config,
}

#[derive(clap::Subcommand, Clone, Debug)]
pub enum Command {
    /// Makes what a development system needs in DIR, keeping what is
    /// already there: a signing key (`auth-signing-key.pem`), the clients
    /// file (`auth-clients`), the development clients' ids and secrets
    /// (`dev-clients.env`) and the services' own (`service-clients.env`, and
    /// each alone in `client_service.secret`, `order_service.secret`).
    Init {
        /// The folder (`make run`: DATA_DIR).
        dir: PathBuf,
    },
    /// Writes a new Ed25519 signing key (PKCS#8 PEM) to FILE, which must not
    /// exist yet, and prints its key id.
    NewKey { file: PathBuf },
    /// Reads a client secret from standard input and prints its argon2 hash,
    /// for a line of the clients file.
    HashSecret,
}

/// The settings of the running service.
#[derive(clap::Args, Clone, Debug)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8020", value_parser = parse_listen_addr)]
    pub listen_addr: SocketAddr,

    /// The issuer identifier (`iss` of every token): the URL at which the
    /// callers reach auth_service, through the gateway.
    #[arg(long, env = "AUTH_ISSUER", default_value = "http://127.0.0.1:8080/auth", value_parser = parse_service_url)]
    pub issuer: String,

    /// The Ed25519 private key (PKCS#8 PEM) that signs the tokens.
    #[arg(long, env = "AUTH_SIGNING_KEY_FILE", required = true)]
    pub signing_key_file: Option<PathBuf>,

    /// More keys to publish in the JWKS (PEM, private or public; comma-
    /// separated): the previous signing key during a rotation, or the next.
    #[arg(long, env = "AUTH_PUBLISHED_KEY_FILES", default_value = "", value_parser = parse_key_files)]
    pub published_key_files: KeyFiles,

    /// The clients: one per line, `CLIENT_ID ARGON2_HASH SCOPE...`.
    #[arg(long, env = "AUTH_CLIENTS_FILE", required = true)]
    pub clients_file: Option<PathBuf>,

    /// Lifetime of an access token, in seconds (60 to 600).
    #[arg(long, env = "AUTH_TOKEN_TTL_SECS", default_value = "300", value_parser = parse_ttl)]
    pub token_ttl: Duration,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// On SIGTERM, how long requests in flight may take to finish, in seconds.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value = "10", value_parser = parse_grace)]
    pub shutdown_grace: Duration,
}

/// A comma-separated list of files; empty: none.
#[derive(Clone, Debug, Default)]
pub struct KeyFiles(pub Vec<PathBuf>);

fn parse_key_files(value: &str) -> Result<KeyFiles, String> {
    Ok(KeyFiles(
        value
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(PathBuf::from)
            .collect(),
    ))
}

fn parse_ttl(value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(secs @ 60..=600) => Ok(Duration::from_secs(secs)),
        _ => Err(format!(
            "`{value}` must be a whole number of seconds, 60 to 600"
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
