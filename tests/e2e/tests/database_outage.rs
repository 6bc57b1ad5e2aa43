//! The database stopped and started again under traffic (PostgreSQL, in a
//! cluster of this test's own, whatever E2E_BACKEND says): requests that
//! need it get 503 with Retry-After, never 500; /readyz says not ready; the
//! services recover by themselves; and every 201 is stored, nothing else.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use e2e::{Options, Stack, free_port, json, workspace_root};
use reqwest::StatusCode;
use sqlx::Connection;

/// A PostgreSQL cluster of this test's own, removed when dropped.
struct Cluster {
    dir: PathBuf,
    url: String,
}

impl Cluster {
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

    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("e2e-pg-{}", uuid::Uuid::new_v4().simple()));
        let port = free_port().to_string();
        let url = Self::script(&["start", dir.to_str().unwrap(), &port]);
        let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
        for db in ["clients", "orders"] {
            sqlx::query(&format!("CREATE DATABASE {db}"))
                .execute(&mut admin)
                .await
                .unwrap();
        }
        Self { dir, url }
    }

    fn database(&self, name: &str) -> String {
        format!("{}/{name}", self.url.rsplit_once('/').unwrap().0)
    }

    fn pause(&self) {
        Self::script(&["pause", self.dir.to_str().unwrap()]);
    }

    fn resume(&self) {
        Self::script(&["resume", self.dir.to_str().unwrap()]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(workspace_root().join("scripts/dev/pg-cluster.sh"))
            .args(["stop", self.dir.to_str().unwrap()])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_stopped_and_started_under_traffic() {
    let cluster = Cluster::start().await;
    let stack = Stack::start_with(Options {
        databases: Some((cluster.database("clients"), cluster.database("orders"))),
        ..Options::default()
    })
    .await;
    let first = stack.create_client("Before", "B-0").await;

    let mut told_created = vec!["B-0".to_owned()];
    let mut told_failed = Vec::new();
    let mut n = 0;
    let create = async |n: usize| {
        let card = format!("C-{n}");
        let reply = stack
            .post(
                "/client/",
                &json!({"name": "During", "card_number": card, "card_issued_on": "2020-01-01"}),
            )
            .await;
        (card, reply)
    };

    for _ in 0..5 {
        n += 1;
        let (card, reply) = create(n).await;
        assert_eq!(reply.status, StatusCode::CREATED);
        told_created.push(card);
    }

    cluster.pause();
    let started = Instant::now();
    for _ in 0..3 {
        n += 1;
        let (card, reply) = create(n).await;
        reply.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
        assert!(!reply.header("retry-after").is_empty());
        told_failed.push(card);
        let read = stack.get(&format!("/client/{}", first["id"])).await;
        read.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
    }
    // Each waits at most the pool's acquire timeout (2 s), twice per round.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "503s took {:?}",
        started.elapsed()
    );
    let ready = stack
        .http
        .get(format!("{}/readyz", stack.client_service().url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Liveness is unaffected: the process is fine, its database is not.
    let alive = stack
        .http
        .get(format!("{}/healthz", stack.client_service().url()))
        .send()
        .await
        .unwrap();
    assert_eq!(alive.status(), StatusCode::OK);

    cluster.resume();
    // Recovers by itself, without a restart.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        n += 1;
        let (card, reply) = create(n).await;
        if reply.status == StatusCode::CREATED {
            told_created.push(card);
            break;
        }
        reply.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
        told_failed.push(card);
        assert!(
            Instant::now() < deadline,
            "no recovery after the database returned"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready = stack
        .http
        .get(format!("{}/readyz", stack.client_service().url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    let mut stored: Vec<String> = stack
        .all_clients()
        .await
        .iter()
        .map(|c| c["card_number"].as_str().unwrap().to_owned())
        .collect();
    stored.sort();
    told_created.sort();
    assert_eq!(stored, told_created);
    assert!(told_failed.iter().all(|card| !stored.contains(card)));
}
