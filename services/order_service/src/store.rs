//! Orders in the service's own database (SQLite or PostgreSQL).

use chrono::{SubsecRound, Utc};
use service_kit::{
    ApiError,
    data::db::{self, Db, Exec, Migrations, Query, Tx, Written},
    db_span,
    http::pagination::Page,
};
use tracing::Instrument;

use crate::domain::{NewOrder, Order, OrderStatus};

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &sqlx::migrate!("./migrations/sqlite"),
    postgres: &sqlx::migrate!("./migrations/postgres"),
};

// ANCHOR: columns
const COLUMNS: &str =
    "id, client_id, item, quantity, price_cents, status, created_at, updated_at, version";
// ANCHOR_END: columns

#[derive(Clone, Debug)]
pub struct OrderStore {
    db: Db,
}

/// A filter on the list of orders.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderFilter {
    pub client_id: Option<i64>,
    pub status: Option<OrderStatus>,
}

impl OrderStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    // ANCHOR: insert
    /// Inserts inside `tx` when given, else as a statement of its own;
    /// refused (422) when the client has been deleted. The check and the
    /// insert are one statement: see [`delete_by_client`](Self::delete_by_client)
    /// for why no delete can slip in between.
    pub async fn insert(&self, tx: Option<&mut Tx>, new: &NewOrder) -> Result<Order, ApiError> {
        let now = Utc::now().trunc_subsecs(6);
        let insert = Query::new(
            "INSERT INTO orders (client_id, item, quantity, price_cents, status, created_at, updated_at) \
             SELECT $1, $2, $3, $4, $5, $6, $6 \
             WHERE NOT EXISTS (SELECT 1 FROM deleted_clients WHERE client_id = $1)",
        )
            .bind(new.client_id)
            .bind(new.item.as_str())
            .bind(new.quantity)
            .bind(new.price.cents())
            .bind(new.status.as_str())
            .bind(now);
        let id = Exec::new(&self.db, tx)
            .insert(&insert)
            .instrument(db_span!(self.db, "INSERT", "orders"))
            .await?
            .ok_or_else(|| client_deleted(new.client_id))?;
        Ok(new.stored(id, now))
    }
    // ANCHOR_END: insert

    pub async fn get(&self, id: i64) -> Result<Option<Order>, ApiError> {
        let sql = format!("SELECT {COLUMNS} FROM orders WHERE id = $1");
        Ok(self
            .db
            .fetch_optional(&Query::new(sql).bind(id))
            .instrument(db_span!(self.db, "SELECT", "orders"))
            .await?)
    }

    async fn exists(&self, id: i64) -> Result<bool, ApiError> {
        Ok(self.get(id).await?.is_some())
    }

    pub async fn list(&self, page: Page, filter: OrderFilter) -> Result<Vec<Order>, ApiError> {
        let mut query = Query::new(format!("SELECT {COLUMNS} FROM orders WHERE id > "));
        query.push_bind(page.after);
        if let Some(client_id) = filter.client_id {
            query.push(" AND client_id = ").push_bind(client_id);
        }
        if let Some(status) = filter.status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        query
            .push(" ORDER BY id LIMIT ")
            .push_bind(page.rows_to_fetch());
        Ok(self
            .db
            .fetch_all(&query)
            .instrument(db_span!(self.db, "SELECT", "orders"))
            .await?)
    }

    // ANCHOR: update
    /// Replaces every writable field, if the order is at `expected`
    /// version (when given).
    pub async fn update(
        &self,
        id: i64,
        new: &NewOrder,
        expected: Option<i64>,
    ) -> Result<Written<Order>, ApiError> {
        let now = Utc::now().trunc_subsecs(6);
        let sql = format!(
            "UPDATE orders SET client_id = $1, item = $2, quantity = $3, price_cents = $4, \
             status = $5, updated_at = $6, version = version + 1 \
             WHERE id = $7 AND ($8 IS NULL OR version = $8) \
             AND NOT EXISTS (SELECT 1 FROM deleted_clients WHERE client_id = $1) \
             RETURNING {COLUMNS}"
        );
        let update = Query::new(sql)
            .bind(new.client_id)
            .bind(new.item.as_str())
            .bind(new.quantity)
            .bind(new.price.cents())
            .bind(new.status.as_str())
            .bind(now)
            .bind(id)
            .bind(expected);
        let updated: Option<Order> = self
            .db
            .fetch_all(&update)
            .instrument(db_span!(self.db, "UPDATE", "orders"))
            .await
            .map(db::returned)?;
        if updated.is_none() && self.is_deleted_client(new.client_id).await? {
            return Err(client_deleted(new.client_id));
        }
        Written::of(updated, self.exists(id)).await
    }
    // ANCHOR_END: update

    async fn is_deleted_client(&self, client_id: i64) -> Result<bool, ApiError> {
        let found: Option<i64> = self
            .db
            .fetch_optional(
                &Query::new("SELECT client_id FROM deleted_clients WHERE client_id = $1")
                    .bind(client_id),
            )
            .instrument(db_span!(self.db, "SELECT", "deleted_clients"))
            .await?;
        Ok(found.is_some())
    }

    /// Deletes the order, if it is at `expected` version (when given).
    pub async fn delete(&self, id: i64, expected: Option<i64>) -> Result<Written<()>, ApiError> {
        let delete =
            Query::new("DELETE FROM orders WHERE id = $1 AND ($2 IS NULL OR version = $2)")
                .bind(id)
                .bind(expected);
        let deleted = self
            .db
            .execute(&delete)
            .instrument(db_span!(self.db, "DELETE", "orders"))
            .await?;
        Written::of((deleted > 0).then_some(()), self.exists(id)).await
    }

    /// Deletes every order of a client, and records the client as
    /// deleted, so that no order can be created for it (or moved to it)
    /// from then on; returns how many orders there were. Done again, it
    /// deletes nothing more and succeeds.
    ///
    /// No create can slip in between: an insert checks for the record in
    /// the same statement. On SQLite writes take turns, so an insert runs
    /// wholly before this transaction (and its order is deleted here) or
    /// wholly after it (and is refused). On PostgreSQL this transaction
    /// first locks the orders table against writes (`SHARE ROW EXCLUSIVE`,
    /// which reads do not wait for): a create that inserted before waits
    /// to be committed and its order is deleted here, a create that comes
    /// later waits for this commit and then sees the record.
    pub async fn delete_by_client(&self, client_id: i64) -> Result<u64, ApiError> {
        let mut tx = self.db.begin().await?;
        if let Tx::Postgres(_) = &tx {
            tx.execute(&Query::new("LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE"))
                .instrument(db_span!(Db::POSTGRES, "LOCK", "orders"))
                .await?;
        }
        let now = Utc::now().trunc_subsecs(6);
        tx.execute(
            &Query::new(
                "INSERT INTO deleted_clients (client_id, deleted_at) VALUES ($1, $2) \
                 ON CONFLICT (client_id) DO NOTHING",
            )
            .bind(client_id)
            .bind(now),
        )
        .instrument(db_span!(self.db, "INSERT", "deleted_clients"))
        .await?;
        let deleted = tx
            .execute(&Query::new("DELETE FROM orders WHERE client_id = $1").bind(client_id))
            .instrument(db_span!(self.db, "DELETE", "orders"))
            .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}

/// The 422 of a write for a client that has been deleted.
fn client_deleted(client_id: i64) -> ApiError {
    ApiError::invalid("client_id", format!("client {client_id} has been deleted"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Price;

    async fn store() -> (tempfile::TempDir, Db, OrderStore) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}", dir.path().join("orders.db").display());
        let db = Db::connect(&url, &MIGRATIONS)
            .await
            .expect("the database opens");
        (dir, db.clone(), OrderStore::new(db))
    }

    fn new_order(client_id: i64) -> NewOrder {
        NewOrder {
            client_id,
            item: "Analytical Engine".into(),
            quantity: 2,
            price: Price::from_cents(1250).expect("a valid price"),
            status: OrderStatus::Paid,
        }
    }

    /// `insert` answers with the order it built from what it wrote, not
    /// with the row read back: that order must be the row, exactly.
    #[tokio::test]
    async fn an_inserted_order_is_the_stored_order() {
        let (_dir, db, store) = store().await;
        let alone = store.insert(None, &new_order(7)).await.expect("inserted");
        assert_eq!(
            store.get(alone.id).await.expect("read"),
            Some(alone.clone())
        );
        assert_eq!(alone.version, 1);

        let mut tx = db.begin().await.expect("a transaction");
        let in_tx = store
            .insert(Some(&mut tx), &new_order(8))
            .await
            .expect("inserted");
        tx.commit().await.expect("committed");
        assert_eq!(in_tx.id, alone.id + 1);
        assert_eq!(store.get(in_tx.id).await.expect("read"), Some(in_tx));
        db.close().await;
    }

    #[tokio::test]
    async fn no_order_is_inserted_for_a_deleted_client() {
        let (_dir, db, store) = store().await;
        store
            .delete_by_client(7)
            .await
            .expect("the client's orders deleted");
        let refused = store.insert(None, &new_order(7)).await;
        assert!(
            matches!(&refused, Err(ApiError::Validation(_))),
            "{refused:?}"
        );
        let page = Page::new(None, None).expect("the first page");
        let all = store
            .list(page, OrderFilter::default())
            .await
            .expect("listed");
        assert!(all.is_empty(), "{all:?}");
        db.close().await;
    }
}
