//! Every SQL statement of each service prepares on PostgreSQL, against the
//! service's own schema: its migrations applied first, as at its start
//! (`Db::connect`), then each statement of its store (`store::statements()`,
//! and the list with every filter) prepared, which PostgreSQL checks against
//! the tables: a syntax error, a column or table that is not there, a
//! parameter whose type cannot be told fail it. The unit tests
//! `every_statement_prepares_on_sqlite` do the same on SQLite. In a
//! PostgreSQL cluster of this test's own (scripts/dev/pg-cluster.sh),
//! whatever E2E_BACKEND says.

use client_service::store::{ClientFilter, ClientStore};
use kit_data::{Db, Migrations, Statement};
use kit_http::pagination::Page;
use order_service::{
    domain::OrderStatus,
    store::{OrderFilter, OrderStore},
};
use sqlx::{Connection, Executor, PgConnection};
use test_kit::PgCluster;

/// client_service's statements: its store's, and the list with every filter.
fn client_statements() -> Vec<Statement> {
    let page = Page::new(None, None).expect("the first page");
    let filter = ClientFilter {
        ids: Some(vec![7, 9]),
        name_prefix: Some("ada".into()),
    };
    let (pattern, rows) = (Some("ada%".to_owned()), page.rows_to_fetch());
    let (list, _) = ClientStore::list_statement(&page, &filter, &pattern, &rows);
    let mut statements = client_service::store::statements();
    statements.push(list);
    statements
}

/// order_service's statements: its store's, and the list with every filter.
fn order_statements() -> Vec<Statement> {
    let page = Page::new(None, None).expect("the first page");
    let filter = OrderFilter {
        client_id: Some(7),
        status: Some(OrderStatus::Paid),
    };
    let (status, rows) = (filter.status.map(OrderStatus::as_str), page.rows_to_fetch());
    let (list, _) = OrderStore::list_statement(&page, &filter, &status, &rows);
    let mut statements = order_service::store::statements();
    statements.push(list);
    statements
}

/// auth_service's statements: its users' and its grants' (sign-in
/// sessions, codes, refresh tokens).
fn auth_statements() -> Vec<Statement> {
    let mut statements = auth_service::users::statements();
    statements.extend(auth_service::grants::statements());
    statements
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_of_each_service_prepares_on_postgresql() {
    let cluster = PgCluster::start();
    let services: [(&str, &Migrations, Vec<Statement>); 3] = [
        (
            "clients",
            &client_service::store::MIGRATIONS,
            client_statements(),
        ),
        (
            "orders",
            &order_service::store::MIGRATIONS,
            order_statements(),
        ),
        // (The database is named after a table of it: the check below
        // selects a missing column from it.)
        ("users", &auth_service::users::MIGRATIONS, auth_statements()),
    ];
    let mut failed = Vec::new();
    for (database, migrations, statements) in services {
        let url = cluster.create_database(database).await;
        let db = Db::connect(&url, migrations)
            .await
            .unwrap_or_else(|e| panic!("{database}: the migrations: {e}"));
        db.close().await;
        let mut conn = PgConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{database}: {e}"));
        // What this test relies on: a statement is checked against the
        // schema, not only parsed (the table is there, the column not).
        let wrong = format!("SELECT no_such_column FROM {database}");
        assert!(
            conn.prepare(wrong.as_str()).await.is_err(),
            "PostgreSQL prepared {wrong}"
        );
        for statement in statements {
            if let Err(e) = conn.prepare(statement.sql()).await {
                failed.push(format!("{database}: {}: {e}", statement.sql()));
            }
        }
        conn.close().await.ok();
    }
    assert!(
        failed.is_empty(),
        "statements that PostgreSQL refused:\n{}",
        failed.join("\n")
    );
}
