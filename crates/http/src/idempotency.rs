//! Safe retries of creates: the `Idempotency-Key` request header (IETF
//! httpapi draft "The Idempotency-Key HTTP Header Field"), its HTTP half.
//! The keys are stored by kit-data's `idempotency` ([`KeyStore`]).
//!
//! A key belongs to its caller (the client and subject of its access
//! token): the same key from two callers is two keys, and no caller can
//! replay another's answer or learn that another used a key. The first
//! request with a key claims it; its answer is stored in the same
//! transaction as the record it creates, so a key is answered for exactly
//! when its record exists. A later request with the key and the same body
//! gets that answer again (marked `Idempotent-Replayed: true`) and creates
//! nothing; with another body it gets 422; while the first is still running
//! it gets 409. A request that fails releases its claim, so it can be
//! retried with the same key. Keys expire after 24 hours.
//!
//! [`IdempotencyKeys::create`] is the whole flow of a create, in one place.

use axum::{
    extract::OptionalFromRequestParts,
    http::{HeaderName, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use kit_data::{
    Db, StoreError, Tx,
    idempotency::{Claim, ClaimedKey, KeyStore, StoredAnswer},
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{conditional, problem::ApiError};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

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

/// A `201 Created` with `Location` and a JSON body, as stored for replays.
#[derive(Debug, Clone)]
pub struct Created {
    location: String,
    body: String,
}

impl Created {
    pub fn new(location: String, body: &impl Serialize) -> Result<Self, ApiError> {
        let body = serde_json::to_string(body).map_err(ApiError::internal)?;
        Ok(Self { location, body })
    }

    fn stored(&self) -> StoredAnswer {
        StoredAnswer {
            status: StatusCode::CREATED.as_u16(),
            location: Some(self.location.clone()),
            body: self.body.clone(),
        }
    }
}

/// An answer as sent: `201` (or what was stored) with `Location`, the
/// JSON body, and the `ETag` of a new record (every record is created at
/// version 1, see [`conditional`]).
fn answer(status: StatusCode, location: Option<&str>, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    headers.insert(header::ETAG, conditional::etag(1));
    response
}

impl IntoResponse for Created {
    fn into_response(self) -> Response {
        answer(StatusCode::CREATED, Some(&self.location), self.body)
    }
}

/// The keys of one service, and the flow of a keyed create.
#[derive(Clone, Debug)]
pub struct IdempotencyKeys {
    store: KeyStore,
}

/// What a create's write is given: the key it answers for, if any. See
/// [`alongside`](Self::alongside).
#[derive(Debug)]
pub struct Keyed {
    claimed: Option<ClaimedKey>,
}

/// A step of a write's transaction that a store runs with the record it
/// has just written (`None` for a request without a key: the store then
/// needs no transaction, and writes with one statement).
pub type Alongside<'a, T> =
    Option<Box<dyn FnOnce(&mut Tx<'_>, &T) -> Result<(), StoreError> + Send + 'a>>;

impl Keyed {
    /// Stores the answer `respond` makes of the record, for the key, in
    /// the record's own transaction: for the store's write.
    pub fn alongside<'a, T>(
        &'a self,
        respond: &'a (dyn Fn(&T) -> Result<Created, ApiError> + Sync),
    ) -> Alongside<'a, T> {
        let claimed = self.claimed.as_ref()?;
        Some(Box::new(move |tx, record| {
            let created = respond(record).map_err(StoreError::failed)?;
            KeyStore::complete(tx, claimed, &created.stored())
        }))
    }
}

impl IdempotencyKeys {
    pub fn new(db: Db) -> Self {
        Self {
            store: KeyStore::new(db),
        }
    }

    // ANCHOR: create
    /// Runs the create of a `POST path` with this JSON `body`, as `caller`
    /// (see `Principal::caller`), under its `Idempotency-Key` if it has
    /// one: a replay is answered from the stored answer and `create` does
    /// not run; otherwise `create` checks what it must (it may call other
    /// services), writes the record with [`Keyed::alongside`] (which stores
    /// the answer in the same transaction) and returns the answer. When
    /// anything fails, the key is released so that the request can be
    /// retried with it.
    pub async fn create(
        &self,
        caller: &str,
        key: Option<IdempotencyKey>,
        path: &str,
        body: &serde_json::Value,
        create: impl AsyncFnOnce(&Keyed) -> Result<Created, ApiError>,
    ) -> Result<Response, ApiError> {
        let claimed = match key {
            None => None,
            Some(IdempotencyKey(key)) => {
                let fingerprint = fingerprint("POST", path, body);
                match self.store.claim(caller, &key, &fingerprint).await? {
                    Claim::Claimed(claimed) => Some(claimed),
                    Claim::Answered(stored) => return Ok(replay(stored)),
                    Claim::UsedForAnother => {
                        return Err(ApiError::invalid(
                            "Idempotency-Key",
                            "this key was already used for a different request",
                        ));
                    }
                    Claim::InProgress => return Err(in_progress()),
                }
            }
        };
        let keyed = Keyed { claimed };
        let outcome = create(&keyed).await;
        if let (Err(_), Some(claimed)) = (&outcome, &keyed.claimed) {
            self.store.release(claimed).await;
        }
        outcome.map(IntoResponse::into_response)
    }
    // ANCHOR_END: create
}

/// The stored answer, sent again.
fn replay(stored: StoredAnswer) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = answer(status, stored.location.as_deref(), stored.body);
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

fn in_progress() -> ApiError {
    ApiError::Conflict(
        "A request with this Idempotency-Key is still being processed; retry later.".into(),
    )
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
