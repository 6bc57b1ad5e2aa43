//! Orders in the service's own database (SQLite or PostgreSQL): every
//! statement of the service, and how a row becomes an [`Order`]. What a
//! store returns is a record or a [`StoreError`]; the routes say what the
//! caller is answered.

use kit_data::{
    Builder, Db, FromRow, Insert, Migrations, Row, Statement, StoreError, Timestamp, Written,
    bad_column, insert,
};
use kit_http::{idempotency::Alongside, pagination::Page};

use crate::domain::{NewOrder, Order, OrderStatus, Price};

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &sqlx::migrate!("./migrations/sqlite"),
    postgres: &sqlx::migrate!("./migrations/postgres"),
};

// ANCHOR: statements
/// The order is inserted only while its client is not recorded as deleted,
/// in the same statement: see [`OrderStore::delete_by_client`].
const INSERT: Insert = insert!(
    "INSERT orders",
    "INSERT INTO orders (client_id, item, quantity, price_cents, status, created_at, updated_at) \
     SELECT $1, $2, $3, $4, $5, $6, $6 \
     WHERE NOT EXISTS (SELECT 1 FROM deleted_clients WHERE client_id = $1)"
);
const GET: Statement = Statement::new(
    "SELECT orders",
    "SELECT id, client_id, item, quantity, price_cents, status, created_at, updated_at, version \
     FROM orders WHERE id = $1",
);
// ANCHOR_END: statements
const LIST: &str = "SELECT id, client_id, item, quantity, price_cents, status, created_at, \
     updated_at, version FROM orders WHERE id > ";
// ANCHOR: update
const UPDATE: Statement = Statement::new(
    "UPDATE orders",
    "UPDATE orders SET client_id = $1, item = $2, quantity = $3, price_cents = $4, \
     status = $5, updated_at = $6, version = version + 1 \
     WHERE id = $7 AND (CAST($8 AS BIGINT) IS NULL OR version = $8) \
     AND NOT EXISTS (SELECT 1 FROM deleted_clients WHERE client_id = $1) \
     RETURNING id, client_id, item, quantity, price_cents, status, created_at, updated_at, version",
);
// ANCHOR_END: update
const IS_DELETED_CLIENT: Statement = Statement::new(
    "SELECT deleted_clients",
    "SELECT client_id FROM deleted_clients WHERE client_id = $1",
);
const DELETE: Statement = Statement::new(
    "DELETE orders",
    "DELETE FROM orders WHERE id = $1 AND (CAST($2 AS BIGINT) IS NULL OR version = $2)",
);
const LOCK_ORDERS: Statement = Statement::new(
    "LOCK orders",
    "LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE",
);
const RECORD_DELETED_CLIENT: Statement = Statement::new(
    "INSERT deleted_clients",
    "INSERT INTO deleted_clients (client_id, deleted_at) VALUES ($1, $2) \
     ON CONFLICT (client_id) DO NOTHING",
);
const DELETE_OF_CLIENT: Statement =
    Statement::new("DELETE orders", "DELETE FROM orders WHERE client_id = $1");

/// Every statement of the store but the list (built per filter, see
/// [`OrderStore::list_statement`]), for the test that prepares them all on
/// each backend.
pub fn statements() -> Vec<Statement> {
    vec![
        Statement::new(INSERT.summary, INSERT.sqlite),
        Statement::new(INSERT.summary, INSERT.postgres),
        GET,
        UPDATE,
        IS_DELETED_CLIENT,
        DELETE,
        RECORD_DELETED_CLIENT,
        DELETE_OF_CLIENT,
    ]
}

// ANCHOR: from_row
impl FromRow for Order {
    fn from_row(row: &Row<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.get("id")?,
            client_id: row.get("client_id")?,
            item: row.get("item")?,
            quantity: row.get("quantity")?,
            price: Price::try_from(row.get::<i64>("price_cents")?)
                .map_err(|err| bad_column("price_cents", err))?,
            status: OrderStatus::try_from(row.get::<String>("status")?)
                .map_err(|err| bad_column("status", err))?,
            created_at: row.get::<Timestamp>("created_at")?.0,
            updated_at: row.get::<Timestamp>("updated_at")?.0,
            version: row.get("version")?,
        })
    }
}
// ANCHOR_END: from_row

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

/// Why an order was not written although the database worked: its client
/// has been deleted (see [`OrderStore::delete_by_client`]).
#[derive(Debug, PartialEq, Eq)]
pub struct ClientDeleted;

impl OrderStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    // ANCHOR: insert
    /// Inserts the order, unless its client has been deleted (the check and
    /// the insert are one statement: see [`delete_by_client`](Self::delete_by_client)
    /// for why no delete can slip in between). `alongside`, when given,
    /// runs in the same transaction with the stored order (the answer to an
    /// `Idempotency-Key` is stored so); without it the insert is a
    /// statement of its own.
    pub async fn insert(
        &self,
        new: &NewOrder,
        alongside: Alongside<'_, Order>,
    ) -> Result<Result<Order, ClientDeleted>, StoreError> {
        let now = Timestamp::now();
        let (quantity, cents) = (i64::from(new.quantity), new.price.cents());
        let status = new.status.as_str();
        let params: [&dyn kit_data::Param; 6] =
            [&new.client_id, &new.item, &quantity, &cents, &status, &now];
        let id = match alongside {
            None => self.db.insert(&INSERT, &params).await?,
            Some(alongside) => {
                self.db
                    .transaction(|tx| {
                        let id = tx.insert(&INSERT, &params)?;
                        if let Some(id) = id {
                            alongside(tx, &new.stored(id, now.0))?;
                        }
                        Ok::<_, StoreError>(id)
                    })
                    .await?
            }
        };
        Ok(id.map(|id| new.stored(id, now.0)).ok_or(ClientDeleted))
    }
    // ANCHOR_END: insert

    pub async fn get(&self, id: i64) -> Result<Option<Order>, StoreError> {
        self.db.fetch_optional(&GET, &[&id]).await
    }

    async fn exists(&self, id: i64) -> Result<bool, StoreError> {
        Ok(self.get(id).await?.is_some())
    }

    /// The statement of a page of orders with `filter`, and its parameters.
    pub fn list_statement<'p>(
        page: &'p Page,
        filter: &'p OrderFilter,
        status: &'p Option<&'static str>,
        rows: &'p i64,
    ) -> (Statement, Vec<&'p dyn kit_data::Param>) {
        let mut list = Builder::new("SELECT orders", LIST);
        list.bind(&page.after);
        if let Some(client_id) = &filter.client_id {
            list.push(" AND client_id = ").bind(client_id);
        }
        if let Some(status) = status {
            list.push(" AND status = ").bind(status);
        }
        list.push(" ORDER BY id LIMIT ").bind(rows);
        list.build()
    }

    pub async fn list(&self, page: Page, filter: OrderFilter) -> Result<Vec<Order>, StoreError> {
        let status = filter.status.map(OrderStatus::as_str);
        let rows = page.rows_to_fetch();
        let (statement, params) = Self::list_statement(&page, &filter, &status, &rows);
        self.db.fetch_all(&statement, &params).await
    }

    /// Replaces every writable field, if the order is at `expected`
    /// version (when given) and its (new) client is not deleted.
    pub async fn update(
        &self,
        id: i64,
        new: &NewOrder,
        expected: Option<i64>,
    ) -> Result<Result<Written<Order>, ClientDeleted>, StoreError> {
        let now = Timestamp::now();
        let (quantity, cents) = (i64::from(new.quantity), new.price.cents());
        let status = new.status.as_str();
        let updated: Option<Order> = self
            .db
            .update_returning(
                &UPDATE,
                &[
                    &new.client_id,
                    &new.item,
                    &quantity,
                    &cents,
                    &status,
                    &now,
                    &id,
                    &expected,
                ],
            )
            .await?;
        if updated.is_none() && self.is_deleted_client(new.client_id).await? {
            return Ok(Err(ClientDeleted));
        }
        Written::from_outcome(updated, self.exists(id))
            .await
            .map(Ok)
    }

    async fn is_deleted_client(&self, client_id: i64) -> Result<bool, StoreError> {
        let found: Option<i64> = self
            .db
            .fetch_optional(&IS_DELETED_CLIENT, &[&client_id])
            .await?;
        Ok(found.is_some())
    }

    /// Deletes the order, if it is at `expected` version (when given).
    pub async fn delete(&self, id: i64, expected: Option<i64>) -> Result<Written<()>, StoreError> {
        let deleted = self.db.execute(&DELETE, &[&id, &expected]).await?;
        Written::from_outcome((deleted > 0).then_some(()), self.exists(id)).await
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
    pub async fn delete_by_client(&self, client_id: i64) -> Result<u64, StoreError> {
        let now = Timestamp::now();
        self.db
            .transaction(|tx| {
                if tx.is_postgres() {
                    tx.execute(&LOCK_ORDERS, &[])?;
                }
                tx.execute(&RECORD_DELETED_CLIENT, &[&client_id, &now])?;
                tx.execute(&DELETE_OF_CLIENT, &[&client_id])
            })
            .await
    }
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
    /// with the row read back: that order must be the row, exactly, alone
    /// and inside a transaction with a step alongside.
    #[tokio::test]
    async fn an_inserted_order_is_the_stored_order() {
        let (_dir, db, store) = store().await;
        let alone = store
            .insert(&new_order(7), None)
            .await
            .expect("inserted")
            .expect("its client is not deleted");
        assert_eq!(
            store.get(alone.id).await.expect("read"),
            Some(alone.clone())
        );
        assert_eq!(alone.version, 1);

        let seen = std::sync::Mutex::new(None);
        let in_tx = store
            .insert(
                &new_order(8),
                Some(Box::new(|_tx, order: &Order| {
                    *seen.lock().unwrap() = Some(order.clone());
                    Ok(())
                })),
            )
            .await
            .expect("inserted")
            .expect("its client is not deleted");
        assert_eq!(in_tx.id, alone.id + 1);
        assert_eq!(seen.into_inner().unwrap(), Some(in_tx.clone()));
        assert_eq!(store.get(in_tx.id).await.expect("read"), Some(in_tx));

        // A step alongside that fails takes the order with it.
        let failed = store
            .insert(
                &new_order(9),
                Some(Box::new(|_tx, _: &Order| Err(StoreError::failed("no")))),
            )
            .await;
        assert!(failed.is_err());
        assert_eq!(store.get(alone.id + 2).await.expect("read"), None);
        db.close().await;
    }

    #[tokio::test]
    async fn no_order_is_inserted_for_a_deleted_client() {
        let (_dir, db, store) = store().await;
        store
            .delete_by_client(7)
            .await
            .expect("the client's orders deleted");
        let refused = store.insert(&new_order(7), None).await.expect("no failure");
        assert_eq!(refused, Err(ClientDeleted));
        let page = Page::new(None, None).expect("the first page");
        let all = store
            .list(page, OrderFilter::default())
            .await
            .expect("listed");
        assert!(all.is_empty(), "{all:?}");
        db.close().await;
    }

    /// Every statement prepares on SQLite, with the parameters it names;
    /// the end-to-end tests prepare them on PostgreSQL.
    #[tokio::test]
    async fn every_statement_prepares_on_sqlite() {
        let (dir, db, _) = store().await;
        db.close().await;
        let conn = rusqlite::Connection::open(dir.path().join("orders.db")).expect("opened");
        for statement in statements() {
            if statement.sql().starts_with("LOCK") {
                continue;
            }
            conn.prepare(statement.sql())
                .unwrap_or_else(|e| panic!("{}: {e}", statement.sql()));
        }
    }
}
