//! Clients in the service's own database (SQLite or PostgreSQL).

use chrono::{SubsecRound, Utc};
use service_kit::{
    ApiError,
    data::db::{self, Db, Exec, Migrations, Query, Tx, Written, is_unique_violation},
    db_span,
    http::pagination::Page,
};
use tracing::Instrument;

use crate::domain::{Client, NewClient};

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &sqlx::migrate!("./migrations/sqlite"),
    postgres: &sqlx::migrate!("./migrations/postgres"),
};

const COLUMNS: &str = "id, name, card_number, card_issued_on, created_at, updated_at, version";

#[derive(Clone, Debug)]
pub struct ClientStore {
    db: Db,
}

/// A filter on the list of clients.
#[derive(Debug, Clone, Default)]
pub struct ClientFilter {
    /// Only these ids (a batch lookup).
    pub ids: Option<Vec<i64>>,
    /// Only names that start with this, ignoring case.
    pub name_prefix: Option<String>,
}

/// `text` as a LIKE pattern that matches what starts with it.
fn starts_with_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl ClientStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Inserts inside `tx` when given, else as a statement of its own.
    pub async fn insert(&self, tx: Option<&mut Tx>, new: &NewClient) -> Result<Client, ApiError> {
        let now = Utc::now().trunc_subsecs(6);
        let insert = Query::new(
            "INSERT INTO clients (name, name_folded, card_number, card_issued_on, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
            .bind(new.name.as_str())
            .bind(new.name.folded())
            .bind(new.card_number.as_str())
            .bind(new.card_issued_on.date())
            .bind(now);
        let id = Exec::new(&self.db, tx)
            .insert(&insert)
            .instrument(db_span!(self.db, "INSERT", "clients"))
            .await
            .map_err(|err| card_conflict(err, new))?
            .ok_or_else(|| ApiError::internal("an INSERT … VALUES inserted no row"))?;
        Ok(new.stored(id, now))
    }

    pub async fn get(&self, id: i64) -> Result<Option<Client>, ApiError> {
        let sql = format!("SELECT {COLUMNS} FROM clients WHERE id = $1");
        Ok(self
            .db
            .fetch_optional(&Query::new(sql).bind(id))
            .instrument(db_span!(self.db, "SELECT", "clients"))
            .await?)
    }

    async fn exists(&self, id: i64) -> Result<bool, ApiError> {
        Ok(self.get(id).await?.is_some())
    }

    pub async fn list(&self, page: Page, filter: &ClientFilter) -> Result<Vec<Client>, ApiError> {
        let mut query = Query::new(format!("SELECT {COLUMNS} FROM clients WHERE id > "));
        query.push_bind(page.after);
        if let Some(ids) = &filter.ids {
            query.push(" AND id IN (");
            for (i, id) in ids.iter().enumerate() {
                if i > 0 {
                    query.push(", ");
                }
                query.push_bind(*id);
            }
            query.push(")");
        }
        if let Some(prefix) = &filter.name_prefix {
            query
                .push(" AND name_folded LIKE ")
                .push_bind(starts_with_pattern(&prefix.to_lowercase()))
                .push(" ESCAPE '\\'");
        }
        query
            .push(" ORDER BY id LIMIT ")
            .push_bind(page.rows_to_fetch());
        Ok(self
            .db
            .fetch_all(&query)
            .instrument(db_span!(self.db, "SELECT", "clients"))
            .await?)
    }

    /// Replaces every writable field, if the client is at `expected`
    /// version (when given).
    pub async fn update(
        &self,
        id: i64,
        new: &NewClient,
        expected: Option<i64>,
    ) -> Result<Written<Client>, ApiError> {
        let now = Utc::now().trunc_subsecs(6);
        let sql = format!(
            "UPDATE clients SET name = $1, name_folded = $2, card_number = $3, card_issued_on = $4, \
             updated_at = $5, version = version + 1 \
             WHERE id = $6 AND ($7 IS NULL OR version = $7) RETURNING {COLUMNS}"
        );
        let update = Query::new(sql)
            .bind(new.name.as_str())
            .bind(new.name.folded())
            .bind(new.card_number.as_str())
            .bind(new.card_issued_on.date())
            .bind(now)
            .bind(id)
            .bind(expected);
        let updated: Option<Client> = self
            .db
            .fetch_all(&update)
            .instrument(db_span!(self.db, "UPDATE", "clients"))
            .await
            .map(db::returned)
            .map_err(|err| card_conflict(err, new))?;
        Written::of(updated, self.exists(id)).await
    }

    /// Deletes the client, if it is at `expected` version (when given).
    pub async fn delete(&self, id: i64, expected: Option<i64>) -> Result<Written<()>, ApiError> {
        let delete =
            Query::new("DELETE FROM clients WHERE id = $1 AND ($2 IS NULL OR version = $2)")
                .bind(id)
                .bind(expected);
        let deleted = self
            .db
            .execute(&delete)
            .instrument(db_span!(self.db, "DELETE", "clients"))
            .await?;
        Written::of((deleted > 0).then_some(()), self.exists(id)).await
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// `insert` answers with the client it built from what it wrote, not
    /// with the row read back: that client must be the row, exactly.
    #[tokio::test]
    async fn an_inserted_client_is_the_stored_client() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}", dir.path().join("clients.db").display());
        let db = Db::connect(&url, &MIGRATIONS)
            .await
            .expect("the database opens");
        let store = ClientStore::new(db.clone());
        let new = NewClient::parse(
            &json!({"name": "  Ada Lovelace ", "card_number": "AL-1815", "card_issued_on": "2020-02-29"}),
        )
        .expect("a valid client");
        let created = store.insert(None, &new).await.expect("inserted");
        assert_eq!(created.name, "Ada Lovelace");
        assert_eq!(created.version, 1);
        assert_eq!(
            store.get(created.id).await.expect("read"),
            Some(created.clone())
        );

        let again = store.insert(None, &new).await;
        assert!(matches!(&again, Err(ApiError::Conflict(_))), "{again:?}");
        db.close().await;
    }
}
