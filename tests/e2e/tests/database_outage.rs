//! The database stopped and started again under traffic (PostgreSQL, in a
//! cluster of this test's own, whatever E2E_BACKEND says): requests that
//! need it get 503 with Retry-After, never 500; /readyz says not ready; the
//! services recover by themselves; and every 201 is stored, nothing else.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use test_kit::{Options, PgCluster, Stack, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_stopped_and_started_under_traffic() {
    let cluster = PgCluster::start();
    let stack = Stack::start_with(Options {
        databases: Some((
            cluster.create_database("clients").await,
            cluster.create_database("orders").await,
        )),
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
