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
//! - Every token is narrowed, in the transaction that issues it, to what
//!   the person's role allows now; a disabled person gets none.
//!
//! **Concurrency.** On SQLite these transactions take turns. On PostgreSQL
//! (read committed) a statement sees what was committed when it began, so
//! a revocation could miss the token that a rotation of the same family is
//! inserting at that moment. So whatever rotates or revokes first locks
//! every token of the families it touches (`… FOR UPDATE`, in the order of
//! their hashes, so two never wait for each other), and reads and writes
//! after the lock: a revocation waits for the rotation in flight and then
//! sees its new token; a rotation waits for the revocation and then finds
//! its token revoked. Expired rows are deleted by [`GrantStore::purge`].

use std::time::Duration;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use kit_data::{Db, FromRow, Row, Statement, StoreError, Timestamp, Tx};
use sha2::{Digest, Sha256};

use crate::users::Role;

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
    "SELECT c.client_id, c.user_id, c.session_hash, c.redirect_uri, c.scope, c.code_challenge, \
     c.family_id, c.expires_at, c.used_at, u.role, u.disabled \
     FROM authorization_codes c JOIN users u ON u.id = c.user_id WHERE c.code_hash = $1",
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
     t.family_expires_at, t.used_at, t.revoked_at, u.role, u.disabled \
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
const BURN_USER_CODES: Statement = Statement::new(
    "UPDATE authorization_codes",
    "UPDATE authorization_codes SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL",
);
const DELETE_USER_SESSIONS: Statement = Statement::new(
    "DELETE sign_in_sessions",
    "DELETE FROM sign_in_sessions WHERE user_id = $1",
);
const REVOKE_USER_TOKENS: Statement = Statement::new(
    "UPDATE refresh_tokens",
    "UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
);

// PostgreSQL only (see "Concurrency" above): the tokens a transaction is
// about to rotate or revoke, locked in one order.
const LOCK_FAMILY: Statement = Statement::new(
    "SELECT refresh_tokens FOR UPDATE",
    "SELECT token_hash FROM refresh_tokens WHERE family_id = $1 ORDER BY token_hash FOR UPDATE",
);
const LOCK_SESSION_TOKENS: Statement = Statement::new(
    "SELECT refresh_tokens FOR UPDATE",
    "SELECT token_hash FROM refresh_tokens WHERE session_hash = $1 ORDER BY token_hash FOR UPDATE",
);
const LOCK_USER_TOKENS: Statement = Statement::new(
    "SELECT refresh_tokens FOR UPDATE",
    "SELECT token_hash FROM refresh_tokens WHERE user_id = $1 ORDER BY token_hash FOR UPDATE",
);

// The purge: rows no statement would accept any more. A code is kept as
// long as its family could live, so that its reuse is still recognised
// (and revokes the family) until then.
const PURGE_SESSIONS: Statement = Statement::new(
    "DELETE sign_in_sessions",
    "DELETE FROM sign_in_sessions WHERE expires_at <= $1",
);
const PURGE_CODES: Statement = Statement::new(
    "DELETE authorization_codes",
    "DELETE FROM authorization_codes WHERE issued_at <= $1",
);
const PURGE_FAMILIES: Statement = Statement::new(
    "DELETE refresh_tokens",
    "DELETE FROM refresh_tokens WHERE family_expires_at <= $1",
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
        BURN_USER_CODES,
        DELETE_USER_SESSIONS,
        REVOKE_USER_TOKENS,
        LOCK_FAMILY,
        LOCK_SESSION_TOKENS,
        LOCK_USER_TOKENS,
        PURGE_SESSIONS,
        PURGE_CODES,
        PURGE_FAMILIES,
    ]
}

/// Whether `statement` is PostgreSQL's only (a row lock), not run on SQLite.
pub fn is_postgres_only(statement: &Statement) -> bool {
    statement.sql().ends_with("FOR UPDATE")
}

/// On PostgreSQL, locks the rows `lock` selects (with `key`); on SQLite,
/// whose transactions take turns, nothing.
fn lock(tx: &mut Tx<'_>, lock: &Statement, key: &dyn kit_data::Param) -> Result<(), StoreError> {
    if tx.is_postgres() {
        tx.execute(lock, &[key])?;
    }
    Ok(())
}

/// Revokes the refresh tokens of `family` (locked first).
fn revoke_family(tx: &mut Tx<'_>, family: &str, now: &Timestamp) -> Result<(), StoreError> {
    lock(tx, &LOCK_FAMILY, &family)?;
    tx.execute(&REVOKE_FAMILY, &[&family, now])?;
    Ok(())
}

/// The scopes of `scope` that `role` allows; none for a disabled user.
fn allowed(scope: &str, role: Role, disabled: bool) -> Vec<String> {
    if disabled {
        return Vec::new();
    }
    role.allowed(scope.split(' '))
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
    /// The user's role and whether the user is disabled, now.
    pub role: Role,
    pub user_disabled: bool,
}

fn role_column(row: &Row<'_>) -> Result<Role, StoreError> {
    let role: String = row.get("role")?;
    Role::parse(&role).ok_or_else(|| StoreError::failed(format!("`{role}` is no role")))
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
            role: role_column(row)?,
            user_disabled: row.get("disabled")?,
        })
    }
}

/// What a redemption found.
#[derive(Debug, PartialEq, Eq)]
pub enum Redeemed {
    /// Unused, alive and bound to what the caller checked: now used, with
    /// the scopes the user's role allows now (never empty), and the first
    /// refresh token of its family when one was asked for.
    Fresh {
        code: Box<Code>,
        scopes: Vec<String>,
        refresh_token: Option<String>,
    },
    /// No such code, or expired.
    Invalid,
    /// Bound to another client, redirect URI or verifier: now used up all
    /// the same.
    Refused,
    /// Used before: the refresh tokens of its family are now revoked.
    Reused,
    /// The user is disabled, or the role allows none of its scopes any
    /// more: now used up, and no token issued.
    NotAllowed,
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
    role: Role,
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
            role: role_column(row)?,
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
    /// The token was good: here is its successor, for this user, and the
    /// scopes (asked, or the token's) the user's role allows now (never
    /// empty).
    New {
        refresh_token: String,
        user_id: i64,
        scopes: Vec<String>,
    },
    /// Unknown, expired, revoked, another client's; or its user disabled,
    /// or allowed none of its scopes any more (then it is used up).
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

    /// Ends the session `id` (whether it lives or not): deletes it, burns
    /// its unredeemed codes and revokes the refresh tokens issued in it.
    /// (The codes first: a redemption in flight holds its code's row, and
    /// the tokens are read after it has committed its first token.)
    pub async fn end_session(&self, id: &str) -> Result<(), StoreError> {
        let id_hash = hash(id);
        let now = Timestamp::now();
        self.db
            .transaction(|tx| {
                tx.execute(&DELETE_SESSION, &[&id_hash])?;
                tx.execute(&BURN_SESSION_CODES, &[&id_hash, &now])?;
                lock(tx, &LOCK_SESSION_TOKENS, &id_hash)?;
                tx.execute(&REVOKE_SESSION_TOKENS, &[&id_hash, &now])?;
                Ok::<_, StoreError>(())
            })
            .await
    }

    /// Ends everything `user_id` signed in to: its sessions, its unredeemed
    /// codes, its refresh tokens (a new password, or the user disabled:
    /// whoever held the old one is out, also after an enable).
    pub async fn end_user(&self, user_id: i64) -> Result<(), StoreError> {
        let now = Timestamp::now();
        self.db
            .transaction(|tx| {
                tx.execute(&DELETE_USER_SESSIONS, &[&user_id])?;
                tx.execute(&BURN_USER_CODES, &[&user_id, &now])?;
                lock(tx, &LOCK_USER_TOKENS, &user_id)?;
                tx.execute(&REVOKE_USER_TOKENS, &[&user_id, &now])?;
                Ok::<_, StoreError>(())
            })
            .await
    }

    /// Deletes what has expired for good: sessions past their end, codes
    /// and refresh-token families older than a family can live. Returns
    /// how many rows went.
    pub async fn purge(&self) -> Result<u64, StoreError> {
        let now = Timestamp::now();
        let family_born_before = Timestamp(
            now.0
                - chrono::Duration::from_std(REFRESH_ABSOLUTE).unwrap_or(chrono::Duration::zero()),
        );
        self.db
            .transaction(|tx| {
                Ok::<_, StoreError>(
                    tx.execute(&PURGE_SESSIONS, &[&now])?
                        + tx.execute(&PURGE_CODES, &[&family_born_before])?
                        + tx.execute(&PURGE_FAMILIES, &[&now])?,
                )
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
                    revoke_family(tx, &found.family_id, &now)?;
                    return Ok(Redeemed::Reused);
                }
                if found.expires_at <= now {
                    return Ok(Redeemed::Invalid);
                }
                if !bound(&found) {
                    return Ok(Redeemed::Refused);
                }
                let scopes = allowed(&found.scope, found.role, found.user_disabled);
                if scopes.is_empty() {
                    return Ok(Redeemed::NotAllowed);
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
                    code: Box::new(found),
                    scopes,
                    refresh_token,
                })
            })
            .await
    }

    /// Rotates the refresh token `token` presented by `client_id`, which
    /// may ask for less than its scope (`asked`: RFC 6749 §6); the new
    /// token keeps the whole scope of the old, the access token gets what
    /// was asked as far as the role allows it now.
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
                let Some(mut found) =
                    tx.fetch_optional::<Refresh>(&SELECT_REFRESH, &[&old_hash])?
                else {
                    return Ok(Rotated::Invalid);
                };
                if tx.is_postgres() {
                    // Locked, then read again: as it is after whatever
                    // rotated or revoked this family meanwhile.
                    lock(tx, &LOCK_FAMILY, &found.family_id)?;
                    match tx.fetch_optional::<Refresh>(&SELECT_REFRESH, &[&old_hash])? {
                        Some(again) => found = again,
                        None => return Ok(Rotated::Invalid),
                    }
                }
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
                    revoke_family(tx, &found.family_id, &now)?;
                    return Ok(Rotated::Reused);
                }
                if found.expires_at <= now || found.family_expires_at <= now {
                    return Ok(Rotated::Invalid);
                }
                let scopes = allowed(
                    &asked.map_or_else(|| found.scope.clone(), |asked| asked.join(" ")),
                    found.role,
                    found.user_disabled,
                );
                if scopes.is_empty() {
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
                    scopes,
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
                    revoke_family(tx, &family, &now)?;
                }
                Ok::<_, StoreError>(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::{MIGRATIONS, Password, UserName, UserStore};

    const SET_ROLE: Statement = Statement::new(
        "UPDATE users",
        "UPDATE users SET role = $2, disabled = $3 WHERE id = $1",
    );
    const COUNT_TOKENS: Statement = Statement::new(
        "SELECT refresh_tokens",
        "SELECT count(*) FROM refresh_tokens",
    );

    /// A store on a new SQLite file, with the admin `ada`; ada's id.
    async fn store() -> (tempfile::TempDir, Db, GrantStore, i64) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}", dir.path().join("auth_service.db").display());
        let db = Db::connect(&url, &MIGRATIONS).await.expect("opened");
        let ada = UserStore::new(db.clone())
            .add(
                &UserName::parse("ada").expect("a name"),
                Role::Admin,
                &Password::parse("correct horse battery").expect("a password"),
            )
            .await
            .expect("no failure")
            .expect("added");
        (dir, db.clone(), GrantStore::new(db), ada.id)
    }

    async fn code_for(grants: &GrantStore, user_id: i64, scope: &str) -> String {
        grants
            .new_code(&NewCode {
                client_id: "web",
                user_id,
                session_hash: None,
                redirect_uri: "http://127.0.0.1/cb",
                scope,
                code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            })
            .await
            .expect("a code")
    }

    /// The token's scopes are what the role allows when it is issued, not
    /// when the code was: a role narrowed meanwhile narrows them, a user
    /// disabled meanwhile gets no token at all (and no refresh token is
    /// stored for nobody), in the transaction that redeems the code.
    #[tokio::test]
    async fn a_code_gives_what_the_role_allows_at_redemption() {
        let (_dir, db, grants, ada) = store().await;
        let code = code_for(&grants, ada, "clients:read clients:write").await;
        db.execute(&SET_ROLE, &[&ada, &"viewer", &false])
            .await
            .expect("the role changed");
        match grants.redeem_code(&code, |_| true, true).await {
            Ok(Redeemed::Fresh { scopes, .. }) => assert_eq!(scopes, ["clients:read"]),
            other => panic!("{other:?}"),
        }

        let code = code_for(&grants, ada, "clients:read").await;
        db.execute(&SET_ROLE, &[&ada, &"viewer", &true])
            .await
            .expect("disabled");
        let tokens: Option<i64> = db.fetch_optional(&COUNT_TOKENS, &[]).await.expect("read");
        assert_eq!(
            grants
                .redeem_code(&code, |_| true, true)
                .await
                .expect("no failure"),
            Redeemed::NotAllowed
        );
        let after: Option<i64> = db.fetch_optional(&COUNT_TOKENS, &[]).await.expect("read");
        assert_eq!(after, tokens, "no refresh token for a disabled user");
    }

    /// A refresh gives what was asked as far as the role allows it now;
    /// when the role allows none of it, the token is refused.
    #[tokio::test]
    async fn a_refresh_gives_what_the_role_allows_now() {
        let (_dir, db, grants, ada) = store().await;
        let code = code_for(&grants, ada, "clients:read clients:write").await;
        let Ok(Redeemed::Fresh {
            refresh_token: Some(refresh),
            ..
        }) = grants.redeem_code(&code, |_| true, true).await
        else {
            panic!("the code is redeemed");
        };
        db.execute(&SET_ROLE, &[&ada, &"viewer", &false])
            .await
            .expect("the role changed");
        let refresh = match grants.rotate(&refresh, "web", None).await {
            Ok(Rotated::New {
                scopes,
                refresh_token,
                ..
            }) => {
                assert_eq!(scopes, ["clients:read"]);
                refresh_token
            }
            other => panic!("{other:?}"),
        };
        let write = ["clients:write".to_owned()];
        assert_eq!(
            grants
                .rotate(&refresh, "web", Some(&write))
                .await
                .expect("no failure"),
            Rotated::Invalid
        );
    }

    /// The purge deletes the sessions past their end, and the codes and
    /// families older than a family lives; nothing alive.
    #[tokio::test]
    async fn the_purge_deletes_only_what_has_expired_for_good() {
        let (_dir, db, grants, ada) = store().await;
        let live_session = grants.start_session(ada).await.expect("a session");
        let live_code = code_for(&grants, ada, "clients:read").await;
        let Ok(Redeemed::Fresh {
            refresh_token: Some(live_refresh),
            ..
        }) = grants
            .redeem_code(
                &code_for(&grants, ada, "clients:read").await,
                |_| true,
                true,
            )
            .await
        else {
            panic!("the code is redeemed");
        };

        let long_ago = |by: Duration| {
            Timestamp(Timestamp::now().0 - chrono::Duration::from_std(by).expect("a duration"))
        };
        let (born, ended) = (long_ago(REFRESH_ABSOLUTE * 2), long_ago(REFRESH_ABSOLUTE));
        db.execute(
            &INSERT_SESSION,
            &[&hash("old session"), &ada, &born, &ended],
        )
        .await
        .expect("an old session");
        db.execute(
            &INSERT_CODE,
            &[
                &hash("old code"),
                &"web",
                &ada,
                &None::<String>,
                &"http://127.0.0.1/cb",
                &"clients:read",
                &"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                &"old family",
                &born,
                &later(born, CODE_TTL),
            ],
        )
        .await
        .expect("an old code");
        for (token, parent) in [("old 1", None), ("old 2", Some(hash("old 1")))] {
            db.execute(
                &INSERT_REFRESH,
                &[
                    &hash(token),
                    &"old family",
                    &parent,
                    &ada,
                    &"web",
                    &"clients:read",
                    &None::<String>,
                    &born,
                    &later(born, REFRESH_IDLE),
                    &ended,
                ],
            )
            .await
            .expect("an old refresh token");
        }

        assert_eq!(grants.purge().await.expect("purged"), 4);
        assert_eq!(grants.purge().await.expect("purged"), 0);
        assert!(
            grants
                .session_user(&live_session)
                .await
                .expect("read")
                .is_some()
        );
        assert!(matches!(
            grants.redeem_code(&live_code, |_| true, false).await,
            Ok(Redeemed::Fresh { .. })
        ));
        assert!(matches!(
            grants.rotate(&live_refresh, "web", None).await,
            Ok(Rotated::New { .. })
        ));
    }
}
