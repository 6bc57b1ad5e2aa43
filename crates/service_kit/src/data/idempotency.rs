//! Safe retries of creates: the `Idempotency-Key` request header (IETF
//! httpapi draft "The Idempotency-Key HTTP Header Field").
//!
//! The first request with a key *claims* it (a row without a response),
//! then stores its response in the same transaction as the record it
//! creates, so a key is answered for exactly when its record exists. A
//! later request with the key and the same body gets that response again
//! (marked `Idempotent-Replayed: true`) and creates nothing; with another
//! body it gets 422; while the first is still running it gets 409. A request
//! that fails releases its claim, so it can be retried with the same key.
//! Keys live in the service's database: they survive restarts and are shared
//! by replicas. They expire after 24 hours. A key belongs to its caller
//! (the client and subject of its access token): the same key from two
//! callers is two keys, and no caller can replay another's answer or learn
//! that another used a key.
//!
//! [`IdempotencyKeys::create`] is the whole flow of a create, in one place:
//! claim the key, open the transaction, insert, store the answer, commit,
//! and release the claim when anything failed.

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    http::{HeaderName, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::{
    data::db::{Db, FromRow, Query, Row, Tx},
    db_span,
    http::{conditional, problem::ApiError},
};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// How long a key is remembered.
const KEY_TTL: TimeDelta = TimeDelta::hours(24);
/// A claim older than this without a response belongs to a request that
/// died (its process was killed): a retry may take it over.
const CLAIM_LEASE: TimeDelta = TimeDelta::seconds(60);

/// A well-formed `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(value: &HeaderValue) -> Result<Self, ApiError> {
        // Taken as it is: quotes, if any, are part of the key.
        let text = value.to_str().unwrap_or_default();
        if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::BadRequest(
                "`Idempotency-Key` must be 1 to 255 visible ASCII characters.".into(),
            ));
        }
        Ok(Self(text.to_owned()))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, ApiError> {
        parts
            .headers
            .get(IDEMPOTENCY_KEY)
            .map(Self::parse)
            .transpose()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        <Self as OptionalFromRequestParts<S>>::from_request_parts(parts, state)
            .await?
            .ok_or_else(|| ApiError::BadRequest("`Idempotency-Key` is required.".into()))
    }
}

/// What identifies "the same request": method, path and the JSON body with
/// its keys in a fixed order (so formatting does not matter).
pub fn fingerprint(method: &str, path: &str, body: &serde_json::Value) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_bytes());
    hash.update(b" ");
    hash.update(path.as_bytes());
    hash.update(b"\n");
    hash.update(body.to_string().as_bytes());
    hex::encode(hash.finalize())
}

/// The keys of one service, in its database.
#[derive(Clone, Debug)]
pub struct IdempotencyKeys {
    db: Db,
}

/// The outcome of claiming a key.
enum Claimed {
    /// Go ahead; store the response with [`Claim::complete`].
    Fresh(Claim),
    /// The request was done before: answer this.
    Replay(Response),
}

/// The right to answer for a caller's key (or nothing, when the request
/// had none).
#[derive(Debug)]
struct Claim {
    key: Option<String>,
    caller: String,
    keys: IdempotencyKeys,
}

/// What a create runs in: [`tx`](Self::tx) gives the transaction its insert
/// must join when the answer is to be stored with the record.
pub struct Creation {
    db: Db,
    keyed: bool,
    tx: Option<Tx>,
}

impl Creation {
    /// The transaction for the insert when the request has a key (opened
    /// at the first call, so that whatever the create checks first holds no
    /// transaction); else `None`: a single statement needs none, and holds
    /// SQLite's write lock for less time.
    pub async fn tx(&mut self) -> Result<Option<&mut Tx>, ApiError> {
        if self.keyed && self.tx.is_none() {
            self.tx = Some(self.db.begin().await?);
        }
        Ok(self.tx.as_mut())
    }
}

struct KeyRow {
    fingerprint: String,
    status: Option<i32>,
    location: Option<String>,
    body: Option<String>,
    created_at: DateTime<Utc>,
}

impl FromRow for KeyRow {
    fn from_row(row: &Row<'_>) -> Result<Self, sqlx::Error> {
        Ok(Self {
            fingerprint: row.get("fingerprint")?,
            status: row.get("status")?,
            location: row.get("location")?,
            body: row.get("body")?,
            created_at: row.time("created_at")?,
        })
    }
}

/// A `201 Created` with `Location` and a JSON body, as stored for replays.
pub struct Created {
    location: String,
    body: String,
}

impl Created {
    pub fn new(location: String, body: &impl Serialize) -> Result<Self, ApiError> {
        let body = serde_json::to_string(body).map_err(ApiError::internal)?;
        Ok(Self { location, body })
    }

    fn response(status: StatusCode, location: Option<&str>, body: String) -> Response {
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(location) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
            headers.insert(header::LOCATION, location);
        }
        // Every resource is created at version 1 (see `conditional`).
        headers.insert(header::ETAG, conditional::etag(1));
        response
    }
}

impl IntoResponse for Created {
    fn into_response(self) -> Response {
        Created::response(StatusCode::CREATED, Some(&self.location), self.body)
    }
}

impl IdempotencyKeys {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    // ANCHOR: create
    /// Runs the create of a `POST path` with this JSON `body` under its
    /// `Idempotency-Key` (if the request has one) as `caller`'s key (see
    /// `Principal::caller`): a replay is answered
    /// from the stored response and `create` does not run; otherwise
    /// `create` inserts the record (inside [`Creation::tx`]) and returns the
    /// answer, which is stored with the record and committed with it. When
    /// anything fails, the key is released so that the request can be
    /// retried with it.
    pub async fn create<F>(
        &self,
        caller: &str,
        key: Option<IdempotencyKey>,
        path: &str,
        body: &serde_json::Value,
        create: F,
    ) -> Result<Response, ApiError>
    where
        F: AsyncFnOnce(&mut Creation) -> Result<Created, ApiError>,
    {
        let claim = match self.claim(caller, key, path, body).await? {
            Claimed::Replay(response) => return Ok(response),
            Claimed::Fresh(claim) => claim,
        };
        let mut creation = Creation {
            db: self.db.clone(),
            keyed: claim.key.is_some(),
            tx: None,
        };
        let outcome = async {
            let created = create(&mut creation).await?;
            claim.complete(creation.tx.as_mut(), &created).await?;
            if let Some(tx) = creation.tx.take() {
                tx.commit().await?;
            }
            Ok(created.into_response())
        }
        .await;
        // A transaction left open (the create failed) rolls back before the
        // key is released: on SQLite it holds the turn to write.
        drop(creation);
        claim.release_unless(outcome.is_ok()).await;
        outcome
    }
    // ANCHOR_END: create

    /// Claims `key` for a `POST path` with this body; without a key every
    /// request is fresh (and nothing is fingerprinted).
    async fn claim(
        &self,
        caller: &str,
        key: Option<IdempotencyKey>,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Claimed, ApiError> {
        let Some(IdempotencyKey(key)) = key else {
            return Ok(Claimed::Fresh(Claim {
                key: None,
                caller: caller.to_owned(),
                keys: self.clone(),
            }));
        };
        let fingerprint = fingerprint("POST", path, body);
        let fingerprint = fingerprint.as_str();
        let now = Utc::now().trunc_subsecs(6);
        self.db
            .execute(
                &Query::new("DELETE FROM caller_idempotency_keys WHERE created_at < $1")
                    .bind(now - KEY_TTL),
            )
            .instrument(db_span!(self.db, "DELETE", "caller_idempotency_keys"))
            .await?;
        let inserted = self
            .db
            .execute(
                &Query::new(
                    "INSERT INTO caller_idempotency_keys (caller, key, fingerprint, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (caller, key) DO NOTHING",
                )
                .bind(caller)
                .bind(&key)
                .bind(fingerprint)
                .bind(now),
            )
            .instrument(db_span!(self.db, "INSERT", "caller_idempotency_keys"))
            .await?;
        let fresh = Claimed::Fresh(Claim {
            key: Some(key.clone()),
            caller: caller.to_owned(),
            keys: self.clone(),
        });
        if inserted == 1 {
            return Ok(fresh);
        }
        let row: Option<KeyRow> = self
            .db
            .fetch_optional(
                &Query::new(
                    "SELECT fingerprint, status, location, body, created_at \
                     FROM caller_idempotency_keys WHERE caller = $1 AND key = $2",
                )
                .bind(caller)
                .bind(&key),
            )
            .instrument(db_span!(self.db, "SELECT", "caller_idempotency_keys"))
            .await?;
        let Some(row) = row else {
            // Released between our insert and our read: the caller may retry.
            return Err(in_progress());
        };
        if row.fingerprint != fingerprint {
            return Err(ApiError::invalid(
                "Idempotency-Key",
                "this key was already used for a different request",
            ));
        }
        match (row.status, row.body) {
            (Some(status), Some(body)) => {
                let status = u16::try_from(status)
                    .ok()
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .unwrap_or(StatusCode::OK);
                let mut response = Created::response(status, row.location.as_deref(), body);
                response
                    .headers_mut()
                    .insert(REPLAYED, HeaderValue::from_static("true"));
                Ok(Claimed::Replay(response))
            }
            _ if row.created_at < now - CLAIM_LEASE => {
                // The first request died without an answer: take its claim over.
                let taken = self
                    .db
                    .execute(
                        &Query::new(
                            "UPDATE caller_idempotency_keys SET created_at = $3 \
                             WHERE caller = $1 AND key = $2 AND status IS NULL AND created_at = $4",
                        )
                        .bind(caller)
                        .bind(&key)
                        .bind(now)
                        .bind(row.created_at),
                    )
                    .instrument(db_span!(self.db, "UPDATE", "caller_idempotency_keys"))
                    .await?;
                if taken == 1 {
                    Ok(fresh)
                } else {
                    Err(in_progress())
                }
            }
            _ => Err(in_progress()),
        }
    }
}

fn in_progress() -> ApiError {
    ApiError::Conflict(
        "A request with this Idempotency-Key is still being processed; retry later.".into(),
    )
}

impl Claim {
    /// Stores the response for the key, inside the transaction that creates
    /// the record: both are committed, or neither.
    async fn complete(&self, tx: Option<&mut Tx>, created: &Created) -> Result<(), ApiError> {
        let Some(key) = &self.key else {
            return Ok(());
        };
        let Some(tx) = tx else {
            return Err(ApiError::internal(
                "a keyed create must run in a transaction",
            ));
        };
        tx.execute(
            &Query::new(
                "UPDATE caller_idempotency_keys SET status = $3, location = $4, body = $5 \
                 WHERE caller = $1 AND key = $2",
            )
            .bind(&self.caller)
            .bind(key)
            .bind(i32::from(StatusCode::CREATED.as_u16()))
            .bind(&created.location)
            .bind(&created.body),
        )
        .instrument(db_span!(self.keys.db, "UPDATE", "caller_idempotency_keys"))
        .await?;
        Ok(())
    }

    /// Releases the key unless the request succeeded, so that a failed
    /// request can be retried with the same key.
    async fn release_unless(self, succeeded: bool) {
        let (false, Some(key)) = (succeeded, &self.key) else {
            return;
        };
        let released = self
            .keys
            .db
            .execute(
                &Query::new(
                    "DELETE FROM caller_idempotency_keys \
                     WHERE caller = $1 AND key = $2 AND status IS NULL",
                )
                .bind(&self.caller)
                .bind(key),
            )
            .instrument(db_span!(self.keys.db, "DELETE", "caller_idempotency_keys"))
            .await;
        if let Err(err) = released {
            tracing::warn!(error = %err, "could not release an idempotency key; it expires by itself");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_visible_ascii() {
        let parse = |s: &str| IdempotencyKey::parse(&HeaderValue::from_str(s).unwrap());
        assert_eq!(parse("abc-123").unwrap(), IdempotencyKey("abc-123".into()));
        assert_eq!(parse("\"abc\"").unwrap(), IdempotencyKey("\"abc\"".into()));
        assert!(parse("").is_err());
        assert!(parse("a b").is_err());
        assert!(parse(&"k".repeat(256)).is_err());
    }

    #[test]
    fn fingerprints_ignore_key_order_but_not_values() {
        let a = serde_json::json!({"a": 1, "b": [1, 2]});
        let b: serde_json::Value = serde_json::from_str(r#"{ "b": [1,2], "a": 1 }"#).unwrap();
        assert_eq!(
            fingerprint("POST", "/x/", &a),
            fingerprint("POST", "/x/", &b)
        );
        let c = serde_json::json!({"a": 2, "b": [1, 2]});
        assert_ne!(
            fingerprint("POST", "/x/", &a),
            fingerprint("POST", "/x/", &c)
        );
        assert_ne!(
            fingerprint("POST", "/x/", &a),
            fingerprint("POST", "/y/", &a)
        );
    }
}
