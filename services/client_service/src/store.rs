//! Clients in the service's own database (SQLite or PostgreSQL): every
//! statement of the service, and how a row becomes a [`Client`]. What a
//! store returns is a record or a [`StoreError`]; the routes say what the
//! caller is answered.

use kit_data::{
    Builder, Db, FromRow, Insert, Migrations, Param, Row, Statement, StoreError, Timestamp,
    Written, insert,
};
use kit_http::{idempotency::Alongside, pagination::Page};

use crate::domain::{Client, NewClient};

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &sqlx::migrate!("./migrations/sqlite"),
    postgres: &sqlx::migrate!("./migrations/postgres"),
};

const INSERT: Insert = insert!(
    "INSERT clients",
    "INSERT INTO clients (name, name_folded, card_number, card_issued_on, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $5)"
);
const GET: Statement = Statement::new(
    "SELECT clients",
    "SELECT id, name, card_number, card_issued_on, created_at, updated_at, version \
     FROM clients WHERE id = $1",
);
const LIST: &str = "SELECT id, name, card_number, card_issued_on, created_at, updated_at, \
     version FROM clients WHERE id > ";
const UPDATE: Statement = Statement::new(
    "UPDATE clients",
    "UPDATE clients SET name = $1, name_folded = $2, card_number = $3, card_issued_on = $4, \
     updated_at = $5, version = version + 1 \
     WHERE id = $6 AND (CAST($7 AS BIGINT) IS NULL OR version = $7) \
     RETURNING id, name, card_number, card_issued_on, created_at, updated_at, version",
);
const DELETE: Statement = Statement::new(
    "DELETE clients",
    "DELETE FROM clients WHERE id = $1 AND (CAST($2 AS BIGINT) IS NULL OR version = $2)",
);

/// Every statement of the store but the list (built per filter, see
/// [`ClientStore::list_statement`]), for the test that prepares them all on
/// each backend.
pub fn statements() -> Vec<Statement> {
    vec![
        Statement::new(INSERT.summary, INSERT.sqlite),
        Statement::new(INSERT.summary, INSERT.postgres),
        GET,
        UPDATE,
        DELETE,
    ]
}

impl FromRow for Client {
    fn from_row(row: &Row<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.get("id")?,
            name: row.get("name")?,
            card_number: row.get("card_number")?,
            card_issued_on: row.get("card_issued_on")?,
            created_at: row.get::<Timestamp>("created_at")?.0,
            updated_at: row.get::<Timestamp>("updated_at")?.0,
            version: row.get("version")?,
        })
    }
}

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

/// Why a client was not written although the database worked: its card
/// number is another client's (the unique constraint on `card_number` is
/// what makes it unique under concurrent requests).
#[derive(Debug, PartialEq, Eq)]
pub struct CardTaken;

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

/// A duplicate card number as [`CardTaken`]; every other failure as it is.
fn card_taken<T>(result: Result<T, StoreError>) -> Result<Result<T, CardTaken>, StoreError> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(err) if err.is_duplicate_of("clients_card_number_key", "clients.card_number") => {
            Ok(Err(CardTaken))
        }
        Err(err) => Err(err),
    }
}

impl ClientStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Inserts the client. `alongside`, when given, runs in the same
    /// transaction with the stored client (the answer to an
    /// `Idempotency-Key` is stored so); without it the insert is a
    /// statement of its own.
    pub async fn insert(
        &self,
        new: &NewClient,
        alongside: Alongside<'_, Client>,
    ) -> Result<Result<Client, CardTaken>, StoreError> {
        let now = Timestamp::now();
        let (folded, issued_on) = (new.name.folded(), new.card_issued_on.date());
        let params: [&dyn Param; 5] = [
            &new.name.as_str(),
            &folded,
            &new.card_number.as_str(),
            &issued_on,
            &now,
        ];
        let inserted = match alongside {
            None => self.db.insert(&INSERT, &params).await,
            Some(alongside) => {
                self.db
                    .transaction(|tx| {
                        let id = tx.insert(&INSERT, &params)?;
                        if let Some(id) = id {
                            alongside(tx, &new.stored(id, now.0))?;
                        }
                        Ok::<_, StoreError>(id)
                    })
                    .await
            }
        };
        let Ok(id) = card_taken(inserted)? else {
            return Ok(Err(CardTaken));
        };
        let id = id.ok_or_else(|| StoreError::failed("an INSERT … VALUES inserted no row"))?;
        Ok(Ok(new.stored(id, now.0)))
    }

    pub async fn get(&self, id: i64) -> Result<Option<Client>, StoreError> {
        self.db.fetch_optional(&GET, &[&id]).await
    }

    async fn exists(&self, id: i64) -> Result<bool, StoreError> {
        Ok(self.get(id).await?.is_some())
    }

    /// The statement of a page of clients with `filter`, and its parameters.
    pub fn list_statement<'p>(
        page: &'p Page,
        filter: &'p ClientFilter,
        pattern: &'p Option<String>,
        rows: &'p i64,
    ) -> (Statement, Vec<&'p dyn Param>) {
        let mut list = Builder::new("SELECT clients", LIST);
        list.bind(&page.after);
        if let Some(ids) = &filter.ids {
            list.push(" AND id IN (");
            for (i, id) in ids.iter().enumerate() {
                if i > 0 {
                    list.push(", ");
                }
                list.bind(id);
            }
            list.push(")");
        }
        if let Some(pattern) = pattern {
            list.push(" AND name_folded LIKE ")
                .bind(pattern)
                .push(" ESCAPE '\\'");
        }
        list.push(" ORDER BY id LIMIT ").bind(rows);
        list.build()
    }

    pub async fn list(&self, page: Page, filter: &ClientFilter) -> Result<Vec<Client>, StoreError> {
        let pattern = filter
            .name_prefix
            .as_ref()
            .map(|prefix| starts_with_pattern(&prefix.to_lowercase()));
        let rows = page.rows_to_fetch();
        let (statement, params) = Self::list_statement(&page, filter, &pattern, &rows);
        self.db.fetch_all(&statement, &params).await
    }

    /// Replaces every writable field, if the client is at `expected`
    /// version (when given).
    pub async fn update(
        &self,
        id: i64,
        new: &NewClient,
        expected: Option<i64>,
    ) -> Result<Result<Written<Client>, CardTaken>, StoreError> {
        let now = Timestamp::now();
        let (folded, issued_on) = (new.name.folded(), new.card_issued_on.date());
        let updated = self
            .db
            .update_returning(
                &UPDATE,
                &[
                    &new.name.as_str(),
                    &folded,
                    &new.card_number.as_str(),
                    &issued_on,
                    &now,
                    &id,
                    &expected,
                ],
            )
            .await;
        let Ok(updated) = card_taken(updated)? else {
            return Ok(Err(CardTaken));
        };
        Written::from_outcome(updated, self.exists(id))
            .await
            .map(Ok)
    }

    /// Deletes the client, if it is at `expected` version (when given).
    pub async fn delete(&self, id: i64, expected: Option<i64>) -> Result<Written<()>, StoreError> {
        let deleted = self.db.execute(&DELETE, &[&id, &expected]).await?;
        Written::from_outcome((deleted > 0).then_some(()), self.exists(id)).await
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;
    use crate::domain::ClientInput;

    async fn store() -> (tempfile::TempDir, Db, ClientStore) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}", dir.path().join("clients.db").display());
        let db = Db::connect(&url, &MIGRATIONS)
            .await
            .expect("the database opens");
        (dir, db.clone(), ClientStore::new(db))
    }

    /// `insert` answers with the client it built from what it wrote, not
    /// with the row read back: that client must be the row, exactly.
    #[tokio::test]
    async fn an_inserted_client_is_the_stored_client() {
        let (_dir, db, store) = store().await;
        let body = json!({"name": "  Ada Lovelace ", "card_number": "AL-1815", "card_issued_on": "2020-02-29"});
        let input = ClientInput::deserialize(&body).expect("the body's members");
        let new = NewClient::try_from(input).expect("a valid client");
        let created = store
            .insert(&new, None)
            .await
            .expect("inserted")
            .expect("a new card");
        assert_eq!(created.name, "Ada Lovelace");
        assert_eq!(created.version, 1);
        assert_eq!(
            store.get(created.id).await.expect("read"),
            Some(created.clone())
        );
        let again = store.insert(&new, None).await.expect("no failure");
        assert_eq!(again, Err(CardTaken));
        db.close().await;
    }

    /// Every statement prepares on SQLite, with the parameters it names;
    /// the end-to-end tests prepare them on PostgreSQL.
    #[tokio::test]
    async fn every_statement_prepares_on_sqlite() {
        let (dir, db, _) = store().await;
        db.close().await;
        let conn = rusqlite::Connection::open(dir.path().join("clients.db")).expect("opened");
        for statement in statements() {
            conn.prepare(statement.sql())
                .unwrap_or_else(|e| panic!("{}: {e}", statement.sql()));
        }
    }
}
