//! The console's settings: each a variable of the environment and a flag
//! (`console --help` lists them all), checked at start. The names the
//! services share keep the kit's names (`LISTEN_ADDR`, `LOG_FORMAT`,
//! `SHUTDOWN_DELAY_SECS`, `SHUTDOWN_GRACE_SECS`, `AUTH_ISSUER`); the
//! console's own start with `CONSOLE_`.

use std::{net::SocketAddr, path::PathBuf};

use kit_config::{
    LogFormat, ShutdownConfig, parse_client_id, parse_client_secret, parse_listen_addr,
    parse_service_url,
};

use crate::system::monitor::{Target, parse_targets};

/// console: the web console, a confidential OAuth client of auth_service.
#[derive(clap::Parser, Clone, Debug)]
#[command(name = "console", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8030", value_parser = parse_listen_addr)]
    pub listen_addr: SocketAddr,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub shutdown: ShutdownConfig,

    /// The origin people open the console at, e.g. `http://127.0.0.1:8080`
    /// (the gateway's): the redirect URI is `<it>/console/callback`, and an
    /// `https://` origin makes the session cookie `__Host-` and `Secure`.
    #[arg(long, env = "CONSOLE_PUBLIC_URL", default_value = "http://127.0.0.1:8080", value_parser = parse_origin)]
    pub public_url: String,

    /// The authorization server's issuer identifier; its metadata (RFC
    /// 8414) is read from `/.well-known/oauth-authorization-server` + the
    /// issuer's path, at the first sign-in.
    #[arg(long, env = "AUTH_ISSUER", default_value = "http://127.0.0.1:8080/auth", value_parser = parse_service_url)]
    pub issuer: String,

    /// The origin (`scheme://host:port`) at which the console itself
    /// reaches the issuer's origin from inside the network, e.g.
    /// `http://gateway:8080` in compose and Kubernetes, where the issuer is
    /// `http://localhost:8080/auth`: the console's own calls (the metadata,
    /// the token endpoint, the revocation) go to the same path on this
    /// origin; the browser still goes to the issuer's URLs. Unset: the
    /// issuer's own origin.
    #[arg(long, env = "CONSOLE_AUTH_INTERNAL_URL", value_parser = parse_origin)]
    pub auth_internal_url: Option<String>,

    /// The console's client id at the authorization server.
    #[arg(long, env = "CONSOLE_CLIENT_ID", value_parser = parse_client_id)]
    pub client_id: String,

    /// A file that holds the console's client secret (a Docker or
    /// Kubernetes secret; a final line break is left out).
    #[arg(long, env = "CONSOLE_CLIENT_SECRET_FILE")]
    pub client_secret_file: PathBuf,

    /// The API's base URL (the gateway), for the `/client/` and `/order/` calls.
    #[arg(long, env = "CONSOLE_API_URL", default_value = "http://127.0.0.1:8080", value_parser = parse_service_url)]
    pub api_url: String,

    /// How long a session lasts after its sign-in, in seconds.
    #[arg(long, env = "CONSOLE_SESSION_SECS", default_value = "28800",
          value_parser = clap::value_parser!(u64).range(60..=604_800))]
    pub session_secs: u64,

    /// Sessions kept at most; past that, the oldest is ended.
    #[arg(long, env = "CONSOLE_MAX_SESSIONS", default_value = "10000",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_sessions: u32,

    /// The instances the System page shows, comma-separated
    /// `service=http://host:port` (each one's own port, where it serves
    /// `/healthz`, `/readyz` and `/metrics`); a name of several addresses
    /// (compose's replicas) is one instance per address, resolved again at
    /// every poll. Empty: none.
    #[arg(long, env = "CONSOLE_INSTANCES", default_value = "", value_parser = parse_instances)]
    pub instances: Instances,
}

/// `CONSOLE_INSTANCES`, parsed.
#[derive(Clone, Debug, Default)]
pub struct Instances(pub Vec<Target>);

fn parse_instances(value: &str) -> Result<Instances, String> {
    parse_targets(value).map(Instances)
}

impl Config {
    /// The client secret, read from CONSOLE_CLIENT_SECRET_FILE.
    pub fn client_secret(&self) -> Result<String, String> {
        let file = &self.client_secret_file;
        let text = std::fs::read_to_string(file).map_err(|e| {
            format!(
                "CONSOLE_CLIENT_SECRET_FILE: cannot read {}: {e}",
                file.display()
            )
        })?;
        parse_client_secret(text.trim_end_matches(['\r', '\n']))
            .map_err(|why| format!("CONSOLE_CLIENT_SECRET_FILE {}: {why}", file.display()))
    }

    /// Whether people reach the console over HTTPS.
    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// Where auth_service sends the browser back with a code.
    pub fn redirect_uri(&self) -> String {
        format!("{}/console/callback", self.public_url)
    }
}

/// An origin: `http://` or `https://`, a host, no path, query or fragment.
fn parse_origin(value: &str) -> Result<String, String> {
    let url = parse_service_url(value)?;
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    if rest.contains(['/', '?', '#', '@']) {
        return Err(format!(
            "`{value}` must be an origin only, like https://console.example"
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_url_is_an_origin() {
        assert_eq!(
            parse_origin("https://c.example/").unwrap(),
            "https://c.example"
        );
        assert!(parse_origin("https://c.example/console").is_err());
        assert!(parse_origin("https://u@c.example").is_err());
        assert!(parse_origin("c.example").is_err());
    }
}
