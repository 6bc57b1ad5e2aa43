//! Clients in the service's own database (SQLite or PostgreSQL).

use chrono::{SubsecRound, Utc};
use shared::{
    ApiError,
    db::{Db, Migrations, Tx, is_unique_violation},
    db_span,
    extract::Page,
    with_pool, with_tx,
};
use tracing::Instrument;

use crate::domain::{Client, NewClient};

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &sqlx::migrate!("./migrations/sqlite"),
    postgres: &sqlx::migrate!("./migrations/postgres"),
};

const COLUMNS: &str = "id, name, card_number, card_issued_on, created_at, updated_at";

#[derive(Clone, Debug)]
pub struct ClientStore {
    db: Db,
}

/// A filter on the list of clients.
#[derive(Debug, Clone, Default)]
pub struct ClientFilter {
    /// Only these ids (a batch lookup).
    pub ids: Option<Vec<i64>>,
}

impl ClientStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Starts a transaction, for a create that also stores its response.
    pub async fn begin(&self) -> Result<Tx, ApiError> {
        Ok(self.db.begin().await?)
    }

    pub async fn insert(&self, tx: &mut Tx, new: &NewClient) -> Result<Client, ApiError> {
        let now = Utc::now().trunc_subsecs(6);
        let sql = format!(
            "INSERT INTO clients (name, card_number, card_issued_on, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) RETURNING {COLUMNS}"
        );
        with_tx!(tx, conn => sqlx::query_as(&sql)
            .bind(new.name.as_str())
            .bind(new.card_number.as_str())
            .bind(new.card_issued_on.date())
            .bind(now)
            .fetch_one(conn)
            .instrument(db_span!(self.db, "INSERT", "clients"))
            .await)
        .map_err(|err| card_conflict(err, new))
    }

    pub async fn get(&self, id: i64) -> Result<Option<Client>, ApiError> {
        let sql = format!("SELECT {COLUMNS} FROM clients WHERE id = $1");
        Ok(with_pool!(&self.db, pool => sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(pool)
            .instrument(db_span!(self.db, "SELECT", "clients"))
            .await)?)
    }

    pub async fn list(&self, page: Page, filter: &ClientFilter) -> Result<Vec<Client>, ApiError> {
        Ok(with_pool!(&self.db, pool => {
            let mut query = sqlx::QueryBuilder::new(format!("SELECT {COLUMNS} FROM clients WHERE id > "));
            query.push_bind(page.after);
            if let Some(ids) = &filter.ids {
                query.push(" AND id IN (");
                let mut list = query.separated(", ");
                for id in ids {
                    list.push_bind(*id);
                }
                query.push(")");
            }
            query.push(" ORDER BY id LIMIT ").push_bind(page.limit);
            query
                .build_query_as()
                .fetch_all(pool)
                .instrument(db_span!(self.db, "SELECT", "clients"))
                .await
        })?)
    }

    /// Replaces every writable field; `None` when there is no such client.
    pub async fn update(&self, id: i64, new: &NewClient) -> Result<Option<Client>, ApiError> {
        let now = Utc::now().trunc_subsecs(6);
        let sql = format!(
            "UPDATE clients SET name = $1, card_number = $2, card_issued_on = $3, updated_at = $4 \
             WHERE id = $5 RETURNING {COLUMNS}"
        );
        with_pool!(&self.db, pool => sqlx::query_as(&sql)
            .bind(new.name.as_str())
            .bind(new.card_number.as_str())
            .bind(new.card_issued_on.date())
            .bind(now)
            .bind(id)
            .fetch_optional(pool)
            .instrument(db_span!(self.db, "UPDATE", "clients"))
            .await)
        .map_err(|err| card_conflict(err, new))
    }

    /// `false` when there was no such client.
    pub async fn delete(&self, id: i64) -> Result<bool, ApiError> {
        let done = with_pool!(&self.db, pool => sqlx::query("DELETE FROM clients WHERE id = $1")
            .bind(id)
            .execute(pool)
            .instrument(db_span!(self.db, "DELETE", "clients"))
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }
}

/// The unique constraint on `card_number` is what makes it unique under
/// concurrent requests; its violation is the caller's 409.
fn card_conflict(err: sqlx::Error, new: &NewClient) -> ApiError {
    if is_unique_violation(&err, "clients_card_number_key", "clients.card_number") {
        ApiError::Conflict(format!(
            "A client with card number `{}` already exists.",
            new.card_number.as_str()
        ))
    } else {
        err.into()
    }
}
