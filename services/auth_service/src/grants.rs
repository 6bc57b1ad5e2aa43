//! What a person's sign-in leaves behind, in auth_service's database
//! (`migrations/*/0002_create_grants.sql`): sign-in sessions, authorization
//! codes and refresh tokens. Each is a random secret given out once
//! ([`new_secret`]: 256 bits, base64url) and stored only as its SHA-256
//! ([`hash`]), so a copy of the database redeems nothing.
//!
//! - A **code** is single-use: every redemption consumes it, and a second
//!   one revokes the refresh tokens of its family (RFC 6749 §4.1.2).
//! - A **refresh token** is rotated on every use (the old one marked used,
//!   a child issued in its family); the reuse of a used one revokes the
//!   whole family (RFC 9700 §4.14.2). It lives [`REFRESH_IDLE`] from its
//!   issue and never past its family's [`REFRESH_ABSOLUTE`].
//! - A **sign-in session** ends by itself after [`SESSION_TTL`], or at a
//!   sign-out, which revokes the refresh tokens and burns the codes issued
//!   in it.

use std::time::Duration;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use kit_data::{Db, FromRow, Row, Statement, StoreError, Timestamp};
use sha2::{Digest, Sha256};

/// How long a code may be redeemed (RFC 6749 §4.1.2: 10 minutes at most;
/// RFC 9700 and the issue: one minute).
pub const CODE_TTL: Duration = Duration::from_secs(60);
/// A refresh token unused this long is dead (each rotation gives a new one).
pub const REFRESH_IDLE: Duration = Duration::from_secs(60 * 60);
/// A family of refresh tokens dies this long after its code was redeemed,
/// however often it is rotated: then the person signs in again.
pub const REFRESH_ABSOLUTE: Duration = Duration::from_secs(12 * 60 * 60);
/// A sign-in session (no password asked again while it lives).
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 60 * 60);

/// A new random secret: 32 bytes from the OS, base64url without padding
/// (43 characters).
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// How a secret is stored: its SHA-256, lower-case hex.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn later(now: Timestamp, by: Duration) -> Timestamp {
    Timestamp(now.0 + chrono::Duration::from_std(by).unwrap_or(chrono::Duration::zero()))
}

const INSERT_SESSION: Statement = Statement::new(
    "INSERT sign_in_sessions",
    "INSERT INTO sign_in_sessions (id_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
);
const SESSION_USER: Statement = Statement::new(
    "SELECT sign_in_sessions",
    "SELECT user_id FROM sign_in_sessions WHERE id_hash = $1 AND expires_at > $2",
);
const DELETE_SESSION: Statement = Statement::new(
    "DELETE sign_in_sessions",
    "DELETE FROM sign_in_sessions WHERE id_hash = $1",
);
const INSERT_CODE: Statement = Statement::new(
    "INSERT authorization_codes",
    "INSERT INTO authorization_codes (code_hash, client_id, user_id, session_hash, redirect_uri, \
     scope, code_challenge, family_id, issued_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
);
const SELECT_CODE: Statement = Statement::new(
    "SELECT authorization_codes",
    "SELECT client_id, user_id, session_hash, redirect_uri, scope, code_challenge, family_id, \
     expires_at, used_at FROM authorization_codes WHERE code_hash = $1",
);
const USE_CODE: Statement = Statement::new(
    "UPDATE authorization_codes",
    "UPDATE authorization_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL",
);
const BURN_SESSION_CODES: Statement = Statement::new(
    "UPDATE authorization_codes",
    "UPDATE authorization_codes SET used_at = $2 WHERE session_hash = $1 AND used_at IS NULL",
);
const INSERT_REFRESH: Statement = Statement::new(
    "INSERT refresh_tokens",
    "INSERT INTO refresh_tokens (token_hash, family_id, parent_hash, user_id, client_id, scope, \
     session_hash, issued_at, expires_at, family_expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
);
const SELECT_REFRESH: Statement = Statement::new(
    "SELECT refresh_tokens",
    "SELECT t.family_id, t.user_id, t.client_id, t.scope, t.session_hash, t.expires_at, \
     t.family_expires_at, t.used_at, t.revoked_at, u.disabled \
     FROM refresh_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1",
);
const USE_REFRESH: Statement = Statement::new(
    "UPDATE refresh_tokens",
    "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL",
);
const REVOKE_FAMILY: Statement = Statement::new(
    "UPDATE refresh_tokens",
    "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
);
const REVOKE_SESSION_TOKENS: Statement = Statement::new(
    "UPDATE refresh_tokens",
    "UPDATE refresh_tokens SET revoked_at = $2 WHERE session_hash = $1 AND revoked_at IS NULL",
);
const FAMILY_OF: Statement = Statement::new(
    "SELECT refresh_tokens",
    "SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND client_id = $2",
);

/// Every statement of the store, for the test that prepares them all.
pub fn statements() -> Vec<Statement> {
    vec![
        INSERT_SESSION,
        SESSION_USER,
        DELETE_SESSION,
        INSERT_CODE,
        SELECT_CODE,
        USE_CODE,
        BURN_SESSION_CODES,
        INSERT_REFRESH,
        SELECT_REFRESH,
        USE_REFRESH,
        REVOKE_FAMILY,
        REVOKE_SESSION_TOKENS,
        FAMILY_OF,
    ]
}

/// A code to issue: what it is bound to.
#[derive(Clone, Debug)]
pub struct NewCode<'a> {
    pub client_id: &'a str,
    pub user_id: i64,
    pub session_hash: Option<&'a str>,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
    pub code_challenge: &'a str,
}

/// A code, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Code {
    pub client_id: String,
    pub user_id: i64,
    pub session_hash: Option<String>,
    pub redirect_uri: String,
    pub scope: String,
    pub code_challenge: String,
    pub family_id: String,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

impl FromRow for Code {
    fn from_row(row: &Row<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            client_id: row.get("client_id")?,
            user_id: row.get("user_id")?,
            session_hash: row.get("session_hash")?,
            redirect_uri: row.get("redirect_uri")?,
            scope: row.get("scope")?,
            code_challenge: row.get("code_challenge")?,
            family_id: row.get("family_id")?,
            expires_at: row.get("expires_at")?,
            used_at: row.get("used_at")?,
        })
    }
}

/// What a redemption found.
#[derive(Debug, PartialEq, Eq)]
pub enum Redeemed {
    /// Unused, alive and bound to what the caller checked: now used, with
    /// the first refresh token of its family when one was asked for.
    Fresh {
        code: Code,
        refresh_token: Option<String>,
    },
    /// No such code, or expired.
    Invalid,
    /// Bound to another client, redirect URI or verifier: now used up all
    /// the same.
    Refused,
    /// Used before: the refresh tokens of its family are now revoked.
    Reused,
}

#[derive(Debug)]
struct Refresh {
    family_id: String,
    user_id: i64,
    client_id: String,
    scope: String,
    session_hash: Option<String>,
    expires_at: Timestamp,
    family_expires_at: Timestamp,
    used_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
    user_disabled: bool,
}

impl FromRow for Refresh {
    fn from_row(row: &Row<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            family_id: row.get("family_id")?,
            user_id: row.get("user_id")?,
            client_id: row.get("client_id")?,
            scope: row.get("scope")?,
            session_hash: row.get("session_hash")?,
            expires_at: row.get("expires_at")?,
            family_expires_at: row.get("family_expires_at")?,
            used_at: row.get("used_at")?,
            revoked_at: row.get("revoked_at")?,
            user_disabled: row.get("disabled")?,
        })
    }
}

struct FamilyId(String);

impl FromRow for FamilyId {
    fn from_row(row: &Row<'_>) -> Result<Self, StoreError> {
        row.first().map(Self)
    }
}

/// What a rotation found.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotated {
    /// The token was good: here is its successor, for this user and scope.
    New {
        refresh_token: String,
        user_id: i64,
        scope: String,
    },
    /// Unknown, expired, revoked, another client's, or its user disabled.
    Invalid,
    /// Used before: its whole family is now revoked.
    Reused,
    /// The client asked for more than the token's scope (the token is
    /// left as it was).
    BadScope,
}

#[derive(Clone, Debug)]
pub struct GrantStore {
    db: Db,
}

impl GrantStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Starts a sign-in session for `user_id`; returns its id (for the
    /// cookie; only its hash is stored).
    pub async fn start_session(&self, user_id: i64) -> Result<String, StoreError> {
        let id = new_secret();
        let now = Timestamp::now();
        self.db
            .execute(
                &INSERT_SESSION,
                &[&hash(&id), &user_id, &now, &later(now, SESSION_TTL)],
            )
            .await?;
        Ok(id)
    }

    /// The user of the live session `id`, and the session's hash.
    pub async fn session_user(&self, id: &str) -> Result<Option<(i64, String)>, StoreError> {
        let id_hash = hash(id);
        let user: Option<i64> = self
            .db
            .fetch_optional(&SESSION_USER, &[&id_hash, &Timestamp::now()])
            .await?;
        Ok(user.map(|user| (user, id_hash)))
    }

    /// Ends the session `id` (whether it lives or not): deletes it, revokes
    /// the refresh tokens issued in it and burns its unredeemed codes.
    pub async fn end_session(&self, id: &str) -> Result<(), StoreError> {
        let id_hash = hash(id);
        let now = Timestamp::now();
        self.db
            .transaction(|tx| {
                tx.execute(&DELETE_SESSION, &[&id_hash])?;
                tx.execute(&REVOKE_SESSION_TOKENS, &[&id_hash, &now])?;
                tx.execute(&BURN_SESSION_CODES, &[&id_hash, &now])?;
                Ok::<_, StoreError>(())
            })
            .await
    }

    /// Issues a code (its family id new); returns it.
    pub async fn new_code(&self, code: &NewCode<'_>) -> Result<String, StoreError> {
        let raw = new_secret();
        let family = uuid::Uuid::new_v4().simple().to_string();
        let session_hash = code.session_hash.map(str::to_owned);
        let now = Timestamp::now();
        self.db
            .execute(
                &INSERT_CODE,
                &[
                    &hash(&raw),
                    &code.client_id,
                    &code.user_id,
                    &session_hash,
                    &code.redirect_uri,
                    &code.scope,
                    &code.code_challenge,
                    &family.as_str(),
                    &now,
                    &later(now, CODE_TTL),
                ],
            )
            .await?;
        Ok(raw)
    }

    /// Redeems `code`: used up at once, whatever follows. When it is
    /// alive and `bound` accepts it (the client, the redirect URI and the
    /// PKCE verifier it was issued for), it answers the code and, with
    /// `with_refresh`, the first refresh token of its family, inserted in
    /// the same transaction: a second redemption, which revokes the family,
    /// waits for this one (the code's row is locked) and so revokes that
    /// token too (RFC 9700 §4.14). A code redeemed twice revokes its family.
    pub async fn redeem_code(
        &self,
        code: &str,
        bound: impl FnOnce(&Code) -> bool + Send,
        with_refresh: bool,
    ) -> Result<Redeemed, StoreError> {
        let code_hash = hash(code);
        let now = Timestamp::now();
        self.db
            .transaction(|tx| {
                let Some(found) = tx.fetch_optional::<Code>(&SELECT_CODE, &[&code_hash])? else {
                    return Ok(Redeemed::Invalid);
                };
                let first =
                    found.used_at.is_none() && tx.execute(&USE_CODE, &[&code_hash, &now])? == 1;
                if !first {
                    tx.execute(&REVOKE_FAMILY, &[&found.family_id, &now])?;
                    return Ok(Redeemed::Reused);
                }
                if found.expires_at <= now {
                    return Ok(Redeemed::Invalid);
                }
                if !bound(&found) {
                    return Ok(Redeemed::Refused);
                }
                let refresh_token = if with_refresh {
                    let raw = new_secret();
                    let family_expires = later(now, REFRESH_ABSOLUTE);
                    tx.execute(
                        &INSERT_REFRESH,
                        &[
                            &hash(&raw),
                            &found.family_id,
                            &None::<String>,
                            &found.user_id,
                            &found.client_id,
                            &found.scope,
                            &found.session_hash,
                            &now,
                            &later(now, REFRESH_IDLE).min(family_expires),
                            &family_expires,
                        ],
                    )?;
                    Some(raw)
                } else {
                    None
                };
                Ok::<_, StoreError>(Redeemed::Fresh {
                    code: found,
                    refresh_token,
                })
            })
            .await
    }

    /// Rotates the refresh token `token` presented by `client_id`, which
    /// may ask for less than its scope (`asked`: RFC 6749 §6); the new
    /// token keeps the whole scope of the old.
    pub async fn rotate(
        &self,
        token: &str,
        client_id: &str,
        asked: Option<&[String]>,
    ) -> Result<Rotated, StoreError> {
        let old_hash = hash(token);
        let now = Timestamp::now();
        let raw = new_secret();
        let new_hash = hash(&raw);
        self.db
            .transaction(|tx| {
                let Some(found) = tx.fetch_optional::<Refresh>(&SELECT_REFRESH, &[&old_hash])?
                else {
                    return Ok(Rotated::Invalid);
                };
                if found.revoked_at.is_some() || found.client_id != client_id {
                    return Ok(Rotated::Invalid);
                }
                if let Some(asked) = asked
                    && (asked.is_empty()
                        || asked
                            .iter()
                            .any(|s| !found.scope.split(' ').any(|has| has == s)))
                {
                    return Ok(Rotated::BadScope);
                }
                let first =
                    found.used_at.is_none() && tx.execute(&USE_REFRESH, &[&old_hash, &now])? == 1;
                if !first {
                    tx.execute(&REVOKE_FAMILY, &[&found.family_id, &now])?;
                    return Ok(Rotated::Reused);
                }
                if found.expires_at <= now || found.family_expires_at <= now || found.user_disabled
                {
                    return Ok(Rotated::Invalid);
                }
                tx.execute(
                    &INSERT_REFRESH,
                    &[
                        &new_hash,
                        &found.family_id,
                        &Some(old_hash.clone()),
                        &found.user_id,
                        &found.client_id,
                        &found.scope,
                        &found.session_hash,
                        &now,
                        &later(now, REFRESH_IDLE).min(found.family_expires_at),
                        &found.family_expires_at,
                    ],
                )?;
                Ok::<_, StoreError>(Rotated::New {
                    refresh_token: raw,
                    user_id: found.user_id,
                    scope: found.scope,
                })
            })
            .await
    }

    /// Revokes the family of the refresh token `token` if it is one of
    /// `client_id`'s; does nothing otherwise (RFC 7009: an unknown token is
    /// no error).
    pub async fn revoke(&self, token: &str, client_id: &str) -> Result<(), StoreError> {
        let token_hash = hash(token);
        let now = Timestamp::now();
        self.db
            .transaction(|tx| {
                if let Some(FamilyId(family)) =
                    tx.fetch_optional(&FAMILY_OF, &[&token_hash, &client_id])?
                {
                    tx.execute(&REVOKE_FAMILY, &[&family, &now])?;
                }
                Ok::<_, StoreError>(())
            })
            .await
    }
}
