//! The services' databases in a test: SQLite files in the test's own
//! folder, or PostgreSQL databases of their own on a server (`E2E_BACKEND`,
//! `E2E_PG_URL`); and a PostgreSQL cluster of a test's own
//! (scripts/dev/pg-cluster.sh), for a test that stops it or needs one
//! whatever the backend.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use sqlx::{Connection, PgConnection};

use crate::{free_port, workspace_root};

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

/// The two database URLs (client_service's, order_service's) of a new
/// stack whose files, for SQLite, go into `dir`.
pub async fn databases(backend: &Backend, dir: &Path) -> (String, String) {
    match backend {
        Backend::Sqlite => (
            format!("sqlite://{}/clients.db", dir.display()),
            format!("sqlite://{}/orders.db", dir.display()),
        ),
        Backend::Postgres { admin_url } => {
            let mut admin = PgConnection::connect(admin_url)
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
                urls.push(database_url(admin_url, &name));
            }
            let orders = urls.pop().unwrap_or_default();
            let clients = urls.pop().unwrap_or_default();
            (clients, orders)
        }
    }
}

/// auth_service's database for a test: a SQLite file in `dir`, or a new
/// database on the PostgreSQL server of E2E_PG_URL.
pub async fn auth_database(backend: &Backend, dir: &Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}/auth_service.db", dir.display()),
        Backend::Postgres { admin_url } => {
            let mut admin = PgConnection::connect(admin_url)
                .await
                .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at E2E_PG_URL: {e}"));
            let name = format!("e2e_auth_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut admin)
                .await
                .expect("CREATE DATABASE");
            database_url(admin_url, &name)
        }
    }
}

/// The URL of the database `name` on the server of `admin_url`.
fn database_url(admin_url: &str, name: &str) -> String {
    let server = admin_url.rsplit_once('/').map_or(admin_url, |(s, _)| s);
    format!("{server}/{name}")
}

/// A PostgreSQL cluster of a test's own (`scripts/dev/pg-cluster.sh`: its
/// own folder and port, trust authentication), stopped and removed when
/// dropped.
pub struct PgCluster {
    dir: PathBuf,
    /// The admin URL (`postgres://postgres@127.0.0.1:PORT/postgres`).
    pub url: String,
}

impl PgCluster {
    /// Starts a new cluster on a free port (installing PostgreSQL's server
    /// first when it is missing and the test runs as root on Debian).
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("e2e-pg-{}", uuid::Uuid::new_v4().simple()));
        let url = Self::script(&[
            "start",
            &dir.display().to_string(),
            &free_port().to_string(),
        ]);
        Self { dir, url }
    }

    fn script(args: &[&str]) -> String {
        let out = Command::new(workspace_root().join("scripts/dev/pg-cluster.sh"))
            .args(args)
            .output()
            .expect("scripts/dev/pg-cluster.sh");
        assert!(
            out.status.success(),
            "pg-cluster.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Creates the database `name`; its URL.
    pub async fn create_database(&self, name: &str) -> String {
        let mut admin = PgConnection::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the cluster at {}: {e}", self.url));
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        self.database(name)
    }

    /// The URL of the database `name` on this cluster.
    pub fn database(&self, name: &str) -> String {
        database_url(&self.url, name)
    }

    /// Stops the server, keeping its data: connections are refused.
    pub fn pause(&self) {
        Self::script(&["pause", &self.dir.display().to_string()]);
    }

    /// Starts the server again on the same port.
    pub fn resume(&self) {
        Self::script(&["resume", &self.dir.display().to_string()]);
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = Command::new(workspace_root().join("scripts/dev/pg-cluster.sh"))
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}
