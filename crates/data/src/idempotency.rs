//! The storage of `Idempotency-Key`s (`caller_idempotency_keys`, in each
//! service's own database): a caller's key is claimed by the first request
//! that sends it (a row without an answer), and its answer is stored in the
//! same transaction as the record the request creates, so a key is answered
//! for exactly when its record exists. The HTTP side (the header, the
//! fingerprint of a request, the answer replayed) is kit-http's
//! `idempotency`.

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

/// The keys of one service.
#[derive(Clone, Debug)]
pub struct KeyStore {
    db: Db,
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
        Self { db }
    }

    /// Claims `caller`'s `key` for a request whose fingerprint is
    /// `fingerprint` (what makes two requests "the same"), forgetting the
    /// keys older than a day on the way.
    pub async fn claim(
        &self,
        caller: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<Claim, StoreError> {
        let now = Timestamp::now();
        let expired = Timestamp(now.0 - KEY_TTL);
        self.db.execute(&DELETE_EXPIRED, &[&expired]).await?;
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
