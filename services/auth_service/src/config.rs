//! auth_service's settings, from environment variables (every one of them:
//! docs/src/how-it-works/configuration.md), and its commands.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use kit_config::{LogFormat, ShutdownConfig, parse_listen_addr, parse_service_url};

use crate::users::{Role, UserName};

/// Where people open the gateway by default (`make run`'s
/// http://localhost:8080/, the web console): `init`'s `--web-origin`, the
/// development web client's URIs.
pub const DEFAULT_WEB_ORIGIN: &str = "http://localhost:8080";

/// auth_service: the OAuth 2.0 authorization server (client credentials,
/// authorization code with PKCE, refresh tokens).
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
    /// (`dev-clients.env`, with the web client people sign in to) and the services' own (`service-clients.env`, and
    /// each alone in `client_service.secret`, `order_service.secret`).
    ///
    /// And in the database two development users, `admin` and `viewer`
    /// (roles of the same names), with random passwords written to
    /// `dev-users.env`; when that file exists, its users are kept as they
    /// are (and added with its passwords if the database lacks them).
    Init {
        /// The folder (`make run`: DATA_DIR).
        dir: PathBuf,

        /// The database of the users: `sqlite://PATH` or
        /// `postgres://USER:PASSWORD@HOST/DB`. Unset: `DIR/auth_service.db`,
        /// where the service finds it when DIR is its DATA_DIR.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,

        /// The gateway's address, where the development web client
        /// (`dev-web`) gets its redirect URIs (`/console/callback`,
        /// `/console/`).
        #[arg(long, default_value = DEFAULT_WEB_ORIGIN, value_parser = parse_service_url)]
        web_origin: String,
    },
    /// Writes a new Ed25519 signing key (PKCS#8 PEM) to FILE, which must not
    /// exist yet, and prints its key id.
    NewKey { file: PathBuf },
    /// Reads a client secret from standard input and prints its argon2 hash,
    /// for a line of the clients file.
    HashSecret,
    /// Manages the people who sign in (auth_service's database, migrated
    /// first).
    Users {
        #[command(flatten)]
        database: Database,

        #[command(subcommand)]
        command: UsersCommand,
    },
}

/// `auth_service users …`. A password is read from standard input when it
/// is not a terminal and has something to read (one line, at least 12
/// characters); otherwise a random one is made and printed, once.
#[derive(clap::Subcommand, Clone, Debug)]
pub enum UsersCommand {
    /// Adds a user.
    Add {
        #[arg(value_parser = parse_user_name)]
        name: UserName,
        /// What the user may do: admin (read and write), viewer (read).
        #[arg(long, value_enum)]
        role: Role,
    },
    /// Lists the users: name, role, whether disabled, when created.
    List,
    /// Disables a user: no more sign-in, no more refresh.
    Disable {
        #[arg(value_parser = parse_user_name)]
        name: UserName,
    },
    /// Enables a disabled user again.
    Enable {
        #[arg(value_parser = parse_user_name)]
        name: UserName,
    },
    /// Gives a user a new password.
    SetPassword {
        #[arg(value_parser = parse_user_name)]
        name: UserName,
    },
}

fn parse_user_name(value: &str) -> Result<UserName, String> {
    UserName::parse(value)
}

/// auth_service's database (its users), for the commands that manage it:
/// the same variables as the other services' (DATABASE_URL, DATA_DIR).
#[derive(clap::Args, Clone, Debug)]
pub struct Database {
    /// Database URL: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`.
    /// Unset: `DATA_DIR/auth_service.db`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,

    /// Folder of the SQLite database file when DATABASE_URL is unset.
    #[arg(long, env = "DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
}

impl Database {
    /// The database URL to use: DATABASE_URL, else
    /// `DATA_DIR/auth_service.db` (the folder made if need be).
    pub fn url(&self) -> Result<String, String> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        std::fs::create_dir_all(&self.data_dir)
            .map_err(|e| format!("cannot create {}: {e}", self.data_dir.display()))?;
        Ok(sqlite_url(&self.data_dir))
    }
}

/// The running service's database: the same variables as [`Database`]'s
/// (not global: they belong to the service, not to its commands).
#[derive(clap::Args, Clone, Debug)]
pub struct ServiceDatabase {
    /// Database URL: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`.
    /// Unset: `DATA_DIR/auth_service.db`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Folder of the SQLite database file when DATABASE_URL is unset.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

impl ServiceDatabase {
    /// DATABASE_URL, else `DATA_DIR/auth_service.db` (the folder made if
    /// need be).
    pub fn url(&self) -> Result<String, String> {
        Database {
            database_url: self.database_url.clone(),
            data_dir: self.data_dir.clone(),
        }
        .url()
    }
}

/// The URL of auth_service's SQLite file in `dir`.
pub fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}", dir.join("auth_service.db").display())
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

    /// The database of the users, sessions, codes and refresh tokens.
    #[command(flatten)]
    pub database: ServiceDatabase,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub shutdown: ShutdownConfig,
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

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        let args = std::iter::once("auth_service").chain(args.iter().copied());
        Cli::try_parse_from(args)
            .map_err(|e| e.to_string())?
            .command
            .ok_or_else(|| "no command".to_owned())
    }

    #[test]
    fn the_commands_parse() {
        Cli::command().debug_assert();
        match parse(&[
            "users",
            "add",
            "ada.l",
            "--role",
            "viewer",
            "--data-dir",
            "d",
        ]) {
            Ok(Command::Users {
                database,
                command: UsersCommand::Add { name, role },
            }) => {
                assert_eq!((name.as_str(), role), ("ada.l", Role::Viewer));
                assert_eq!(database.data_dir, PathBuf::from("d"));
            }
            other => panic!("{other:?}"),
        }
        match parse(&[
            "users",
            "set-password",
            "ada",
            "--database-url",
            "sqlite://x.db",
        ]) {
            Ok(Command::Users {
                database,
                command: UsersCommand::SetPassword { name },
            }) => {
                assert_eq!(name.as_str(), "ada");
                assert_eq!(database.url().as_deref(), Ok("sqlite://x.db"));
            }
            other => panic!("{other:?}"),
        }
        for args in [
            &["users", "list"][..],
            &["users", "disable", "a"],
            &["users", "enable", "a"],
        ] {
            assert!(parse(args).is_ok(), "{args:?}");
        }
        match parse(&["init", "some/dir"]) {
            Ok(Command::Init { dir, .. }) => {
                assert_eq!(dir, PathBuf::from("some/dir"));
                assert_eq!(sqlite_url(&dir), "sqlite://some/dir/auth_service.db");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_bad_role_or_name_is_refused_by_the_command_line() {
        let refused = parse(&["users", "add", "ada", "--role", "root"]).unwrap_err();
        assert!(
            refused.contains("root") && refused.contains("admin"),
            "{refused}"
        );
        let refused = parse(&["users", "add", "ada"]).unwrap_err();
        assert!(refused.contains("--role"), "{refused}");
        let refused = parse(&["users", "disable", "a b"]).unwrap_err();
        assert!(refused.contains("not a user name"), "{refused}");
    }
}
