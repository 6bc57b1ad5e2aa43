//! Settings every service shares, read from environment variables (or the
//! matching flags: `--help` lists them all). An invalid value stops the
//! service at start with a message that names the variable.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use crate::telemetry::LogFormat;

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

/// Settings of the calls to another service.
#[derive(Clone, Debug)]
pub struct DependencyConfig {
    pub url: String,
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

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

/// Parses a duration in milliseconds, 1..=60000.
pub fn parse_millis(value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(ms @ 1..=60_000) => Ok(Duration::from_millis(ms)),
        _ => Err(format!(
            "`{value}` must be a whole number of milliseconds, 1 to 60000"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
