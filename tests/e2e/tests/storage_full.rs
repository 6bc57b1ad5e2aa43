//! A full disk is an outage the caller is told about, not an unexpected
//! error: order_service's database on a small tmpfs, filled up. Every
//! create is then a 503 with `Retry-After` (nothing stored), reads go on,
//! the condition is logged as what it is once (not once per request) and
//! counted in `db_storage_full_total`; when space is freed, creates succeed
//! again and every order acknowledged before is there.
//!
//! On SQLite the orders' file is on the tmpfs; on PostgreSQL (`E2E_BACKEND=
//! postgres`) the orders' database is in a tablespace on it, so that the
//! table's files run out of space (SQLSTATE 53100) while PostgreSQL's own
//! log does not. Mounting a tmpfs needs root: `make test` runs as root.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use test_kit::{Backend, Options, Stack, json, metric, parse_metrics};

/// A tmpfs of `size` mounted on a new temporary folder; unmounted when
/// dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .expect("mount(8)");
        assert!(
            mounted.success(),
            "cannot mount a tmpfs on {} (this test needs root, as `make test` has)",
            dir.path().display()
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes zeros to a file until the file system has no space left.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("the filler file");
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        // The last bytes, in smaller pieces.
        while file.write_all(&chunk[..512]).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// The orders' database on `tmpfs`, and client_service's elsewhere.
async fn databases(tmpfs: &Tmpfs, dir: &Path) -> (String, String, Option<String>) {
    match Backend::from_env() {
        Backend::Sqlite => (
            format!("sqlite://{}/clients.db", dir.display()),
            format!("sqlite://{}/orders.db", tmpfs.path().display()),
            None,
        ),
        backend @ Backend::Postgres { .. } => {
            let Backend::Postgres { admin_url } = &backend else {
                unreachable!()
            };
            let (clients, _) = test_kit::databases(&backend, dir).await;
            let location = tmpfs.path().join("tablespace");
            std::fs::create_dir(&location).expect("the tablespace's folder");
            let owned = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&location)
                .status()
                .expect("chown(1)");
            assert!(
                owned.success(),
                "cannot give {} to postgres",
                location.display()
            );
            use sqlx::Connection;
            let mut admin = sqlx::PgConnection::connect(admin_url)
                .await
                .expect("PostgreSQL at E2E_PG_URL");
            let id = uuid::Uuid::new_v4().simple().to_string();
            let (space, name) = (format!("e2e_full_{id}"), format!("e2e_orders_{id}"));
            for statement in [
                format!(
                    "CREATE TABLESPACE \"{space}\" LOCATION '{}'",
                    location.display()
                ),
                format!("CREATE DATABASE \"{name}\" TABLESPACE \"{space}\""),
            ] {
                sqlx::query(&statement)
                    .execute(&mut admin)
                    .await
                    .unwrap_or_else(|e| panic!("{statement}: {e}"));
            }
            let base = admin_url
                .rsplit_once('/')
                .map_or(admin_url.as_str(), |(b, _)| b);
            (clients, format!("{base}/{name}"), Some(space))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_a_503_with_retry_after_and_reads_go_on() {
    let tmpfs = Tmpfs::mount("16m");
    let dir = tempfile::tempdir().expect("a temp dir");
    let (clients, orders, tablespace) = databases(&tmpfs, dir.path()).await;
    let stack = Stack::start_with(Options {
        databases: Some((clients, orders.clone())),
        ..Options::default()
    })
    .await;
    let client = stack.create_client("Ada", "A-1").await["id"]
        .as_i64()
        .unwrap();
    let before = stack.create_order(client, "full 0").await;

    let filler = tmpfs.fill();
    // Creates until the first refused one: the disk has no byte left, but
    // a page the database already has may still take a row or two.
    let mut acknowledged = vec!["full 0".to_owned()];
    let started = Instant::now();
    let refused = loop {
        let item = format!("full {}", acknowledged.len());
        let reply = stack
            .post(
                "/order/",
                &json!({"client_id": client, "item": item, "price": "1"}),
            )
            .await;
        if reply.status == StatusCode::CREATED {
            acknowledged.push(item);
            assert!(
                acknowledged.len() < 5000 && started.elapsed() < Duration::from_secs(60),
                "no create refused with the disk full"
            );
            continue;
        }
        break reply;
    };
    refused.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        refused
            .header("retry-after")
            .parse::<u64>()
            .is_ok_and(|s| s >= 1),
        "{:?}",
        refused.headers
    );
    assert!(refused.text.contains("storage is full"), "{}", refused.text);
    // Every create from now on is refused the same way, never a 500.
    for n in 0..5 {
        let reply = stack
            .post(
                "/order/",
                &json!({"client_id": client, "item": format!("refused {n}"), "price": "1"}),
            )
            .await;
        reply.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            !reply.header("retry-after").is_empty(),
            "{:?}",
            reply.headers
        );
    }
    // Reads go on.
    let one = stack.get(&format!("/order/{}", before["id"])).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    assert_eq!(one.body["item"], "full 0");
    let list = stack.get("/order/?limit=10").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    // Counted, and logged once as what it is (not once per request).
    let scraped = stack
        .anonymous
        .get(format!("{}/metrics", stack.order_service().url()))
        .send()
        .await
        .expect("/metrics")
        .text()
        .await
        .expect("its text");
    let counted = metric(&parse_metrics(&scraped), "db_storage_full_total", &[]);
    assert!(
        counted.is_some_and(|n| n >= 6.0),
        "db_storage_full_total: {counted:?}"
    );
    let lines: Vec<_> = stack
        .order_service()
        .log_lines()
        .into_iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("database or disk is full"))
        })
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["level"], "ERROR", "{}", lines[0]);
    let storage = lines[0]["storage"].as_str().unwrap_or_default();
    let named = match &tablespace {
        None => storage.contains(&*tmpfs.path().to_string_lossy()),
        Some(_) => storage.starts_with("PostgreSQL"),
    };
    assert!(named, "the line does not name the database: {}", lines[0]);
    assert!(
        stack
            .order_service()
            .log_lines()
            .iter()
            .all(|l| l["status"] != 500),
        "a 500 was answered"
    );

    // Space freed: creates succeed again, and nothing acknowledged is lost.
    std::fs::remove_file(filler).expect("the filler removed");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = stack
            .post(
                "/order/",
                &json!({"client_id": client, "item": "full after", "price": "1"}),
            )
            .await;
        if reply.status == StatusCode::CREATED {
            break;
        }
        reply.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            Instant::now() < deadline,
            "no create after space was freed: {}",
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    acknowledged.push("full after".into());
    acknowledged.sort();
    assert_eq!(stack.stored_items("full ").await, acknowledged);

    drop(stack);
    if let (Some(space), Backend::Postgres { admin_url }) = (tablespace, Backend::from_env()) {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("PostgreSQL");
        let name = orders.rsplit('/').next().unwrap_or_default().to_owned();
        for statement in [
            format!("DROP DATABASE \"{name}\" WITH (FORCE)"),
            format!("DROP TABLESPACE \"{space}\""),
        ] {
            sqlx::query(&statement)
                .execute(&mut admin)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
    }
}
