//! The storage of `Idempotency-Key`s (`caller_idempotency_keys`, in each
//! service's own database): a caller's key is claimed by the first request
//! that sends it (a row without an answer), and its answer is stored in the
//! same transaction as the record the request creates, so a key is answered
//! for exactly when its record exists. The HTTP side (the header, the
//! fingerprint of a request, the answer replayed) is kit-http's
//! `idempotency`.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use chrono::TimeDelta;

use crate::{
    Db, StoreError, Tx,
    statement::{FromRow, Row, Statement, Timestamp},
};

/// How long a key is remembered.
const KEY_TTL: TimeDelta = TimeDelta::hours(24);
/// A claim older than this without an answer belongs to a request that
/// died (its process was killed): a retry may take it over.
const CLAIM_LEASE: TimeDelta = TimeDelta::seconds(60);

const DELETE_EXPIRED: Statement = Statement::new(
    "DELETE caller_idempotency_keys",
    "DELETE FROM caller_idempotency_keys WHERE created_at < $1",
);
const CLAIM: Statement = Statement::new(
    "INSERT caller_idempotency_keys",
    "INSERT INTO caller_idempotency_keys (caller, key, fingerprint, created_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (caller, key) DO NOTHING",
);
const READ: Statement = Statement::new(
    "SELECT caller_idempotency_keys",
    "SELECT fingerprint, status, location, body, created_at \
     FROM caller_idempotency_keys WHERE caller = $1 AND key = $2",
);
const TAKE_OVER: Statement = Statement::new(
    "UPDATE caller_idempotency_keys",
    "UPDATE caller_idempotency_keys SET created_at = $3 \
     WHERE caller = $1 AND key = $2 AND status IS NULL AND created_at = $4",
);
const COMPLETE: Statement = Statement::new(
    "UPDATE caller_idempotency_keys",
    "UPDATE caller_idempotency_keys SET status = $3, location = $4, body = $5 \
     WHERE caller = $1 AND key = $2",
);
const RELEASE: Statement = Statement::new(
    "DELETE caller_idempotency_keys",
    "DELETE FROM caller_idempotency_keys WHERE caller = $1 AND key = $2 AND status IS NULL",
);

/// Every statement of this module, for the test that prepares them all.
pub const STATEMENTS: [&Statement; 6] = [
    &DELETE_EXPIRED,
    &CLAIM,
    &READ,
    &TAKE_OVER,
    &COMPLETE,
    &RELEASE,
];

/// How often the keys older than [`KEY_TTL`] are deleted: at most once
/// this often per process, on the way of a claim (not on every claim: that
/// would be a statement more in each keyed request, for rows that expire
/// by the day).
const SWEEP_EVERY: TimeDelta = TimeDelta::seconds(60);

/// The keys of one service.
#[derive(Clone, Debug)]
pub struct KeyStore {
    db: Db,
    /// When the expired keys were last deleted (Unix seconds; 0: never).
    last_sweep: Arc<AtomicI64>,
}

/// A caller's key, claimed: its request may go ahead, and must either
/// [`complete`](KeyStore::complete) it or [`release`](KeyStore::release) it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedKey {
    caller: String,
    key: String,
}

/// An answer stored for a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAnswer {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

/// What claiming a key found.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's now.
    Claimed(ClaimedKey),
    /// The request was done before: this is its answer.
    Answered(StoredAnswer),
    /// The caller used the key for another request (another fingerprint).
    UsedForAnother,
    /// A request with the key is still running.
    InProgress,
}

struct KeyRow {
    fingerprint: String,
    status: Option<i32>,
    location: Option<String>,
    body: Option<String>,
    created_at: Timestamp,
}

impl FromRow for KeyRow {
    fn from_row(row: &Row<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            fingerprint: row.get("fingerprint")?,
            status: row.get("status")?,
            location: row.get("location")?,
            body: row.get("body")?,
            created_at: row.get("created_at")?,
        })
    }
}

impl KeyStore {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            last_sweep: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Deletes the keys older than [`KEY_TTL`], unless that was done less
    /// than [`SWEEP_EVERY`] ago (by this process: each instance sweeps on
    /// its own, which is harmless).
    async fn sweep_expired(&self, now: Timestamp) -> Result<(), StoreError> {
        let (now_secs, last) = (now.0.timestamp(), self.last_sweep.load(Ordering::Relaxed));
        if now_secs - last < SWEEP_EVERY.num_seconds()
            || self
                .last_sweep
                .compare_exchange(last, now_secs, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return Ok(());
        }
        let expired = Timestamp(now.0 - KEY_TTL);
        self.db.execute(&DELETE_EXPIRED, &[&expired]).await?;
        Ok(())
    }

    /// Claims `caller`'s `key` for a request whose fingerprint is
    /// `fingerprint` (what makes two requests "the same"), forgetting the
    /// keys older than a day on the way (once a minute).
    pub async fn claim(
        &self,
        caller: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<Claim, StoreError> {
        let now = Timestamp::now();
        self.sweep_expired(now).await?;
        let claimed = ClaimedKey {
            caller: caller.to_owned(),
            key: key.to_owned(),
        };
        let inserted = self
            .db
            .execute(&CLAIM, &[&caller, &key, &fingerprint, &now])
            .await?;
        if inserted == 1 {
            return Ok(Claim::Claimed(claimed));
        }
        let Some(row) = self
            .db
            .fetch_optional::<KeyRow>(&READ, &[&caller, &key])
            .await?
        else {
            // Released between our insert and our read: the caller may retry.
            return Ok(Claim::InProgress);
        };
        if row.fingerprint != fingerprint {
            return Ok(Claim::UsedForAnother);
        }
        match (row.status, row.body) {
            (Some(status), Some(body)) => Ok(Claim::Answered(StoredAnswer {
                status: u16::try_from(status).unwrap_or(200),
                location: row.location,
                body,
            })),
            _ if row.created_at.0 < now.0 - CLAIM_LEASE => {
                // The first request died without an answer: take its claim over.
                let taken = self
                    .db
                    .execute(&TAKE_OVER, &[&caller, &key, &now, &row.created_at])
                    .await?;
                Ok(if taken == 1 {
                    Claim::Claimed(claimed)
                } else {
                    Claim::InProgress
                })
            }
            _ => Ok(Claim::InProgress),
        }
    }

    /// Stores `answer` for the claimed key, inside the transaction that
    /// creates the record: both are committed, or neither.
    pub fn complete(
        tx: &mut Tx<'_>,
        claimed: &ClaimedKey,
        answer: &StoredAnswer,
    ) -> Result<(), StoreError> {
        let status = i32::from(answer.status);
        tx.execute(
            &COMPLETE,
            &[
                &claimed.caller,
                &claimed.key,
                &status,
                &answer.location,
                &answer.body,
            ],
        )?;
        Ok(())
    }

    /// Releases a claimed key whose request failed, so that it can be
    /// retried with the key. A failure to release is logged: the key
    /// expires by itself.
    pub async fn release(&self, claimed: &ClaimedKey) {
        let released = self
            .db
            .execute(&RELEASE, &[&claimed.caller, &claimed.key])
            .await;
        if let Err(err) = released {
            tracing::warn!(error = %err, "could not release an idempotency key; it expires by itself");
        }
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    const KEY_AT: Statement = Statement::new(
        "INSERT caller_idempotency_keys",
        "INSERT INTO caller_idempotency_keys (caller, key, fingerprint, created_at) \
         VALUES ('c', $1, 'f', $2)",
    );
    const COUNT: Statement = Statement::new(
        "SELECT caller_idempotency_keys",
        "SELECT count(*) FROM caller_idempotency_keys WHERE key = $1",
    );

    /// A database with the keys' table (as the services' migrations make it).
    async fn keys() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let folder = dir.path().join("migrations");
        std::fs::create_dir(&folder).expect("a migrations folder");
        std::fs::write(
            folder.join("1_keys.sql"),
            "CREATE TABLE caller_idempotency_keys (caller TEXT NOT NULL, key TEXT NOT NULL, \
             fingerprint TEXT NOT NULL, status INTEGER, location TEXT, body TEXT, \
             created_at TEXT NOT NULL, PRIMARY KEY (caller, key));",
        )
        .expect("a migration");
        let migrator: &'static sqlx::migrate::Migrator = Box::leak(Box::new(
            sqlx::migrate::Migrator::new(folder.as_path())
                .await
                .expect("the migrations"),
        ));
        let url = format!("sqlite://{}", dir.path().join("keys.db").display());
        let migrations = crate::Migrations {
            sqlite: migrator,
            postgres: migrator,
        };
        let db = Db::connect(&url, &migrations).await.expect("opened");
        (dir, db)
    }

    async fn count(db: &Db, key: &str) -> i64 {
        db.fetch_optional(&COUNT, &[&key])
            .await
            .expect("counted")
            .expect("a row")
    }

    /// A key older than a day is forgotten by the first claim, and the
    /// claims of the next minute send no delete at all.
    #[tokio::test]
    async fn expired_keys_are_swept_once_a_minute() {
        let (_dir, db) = keys().await;
        let store = KeyStore::new(db.clone());
        let old = Timestamp(Timestamp::now().0 - KEY_TTL - TimeDelta::minutes(1));
        db.execute(&KEY_AT, &[&"old-1", &old])
            .await
            .expect("an old key");
        assert!(matches!(
            store.claim("c", "new-1", "f").await.expect("claimed"),
            Claim::Claimed(_)
        ));
        assert_eq!(count(&db, "old-1").await, 0, "swept by the first claim");

        db.execute(&KEY_AT, &[&"old-2", &old])
            .await
            .expect("an old key");
        store.claim("c", "new-2", "f").await.expect("claimed");
        assert_eq!(count(&db, "old-2").await, 1, "no sweep within the minute");

        store
            .last_sweep
            .fetch_sub(SWEEP_EVERY.num_seconds(), Ordering::Relaxed);
        store.claim("c", "new-3", "f").await.expect("claimed");
        assert_eq!(count(&db, "old-2").await, 0, "swept a minute later");
        db.close().await;
    }
}
