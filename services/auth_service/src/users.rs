//! The people who sign in, in auth_service's own database (SQLite or
//! PostgreSQL, as the other services have theirs): every statement on the
//! `users` table, how a row becomes a [`User`], and what a user is made
//! of: a [`UserName`], a [`Role`] (which names its scopes) and a password,
//! of which only the argon2id hash is ever stored. A user is never
//! deleted, only disabled: its id is the `sub` of the tokens it was issued.
//!
//! Managed by `auth_service users …` (`cli.rs`) and made for development by
//! `auth_service init` (`init.rs`).

use std::sync::OnceLock;

use argon2::{
    Argon2, PasswordHash, PasswordVerifier,
    password_hash::rand_core::{OsRng, RngCore},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use kit_data::{
    Db, FromRow, Insert, Migrations, Row, Statement, StoreError, Timestamp, bad_column, insert,
};

use crate::clients::hash_secret;

pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &sqlx::migrate!("./migrations/sqlite"),
    postgres: &sqlx::migrate!("./migrations/postgres"),
};

/// The columns a [`User`] is read from, in every statement that reads one.
macro_rules! user_columns {
    () => {
        "id, name, password_hash, role, disabled, created_at, updated_at"
    };
}

const INSERT: Insert = insert!(
    "INSERT users",
    "INSERT INTO users (name, password_hash, role, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $4)"
);
const GET: Statement = Statement::new(
    "SELECT users",
    concat!("SELECT ", user_columns!(), " FROM users WHERE name = $1"),
);
const GET_BY_ID: Statement = Statement::new(
    "SELECT users",
    concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"),
);
const LIST: Statement = Statement::new(
    "SELECT users",
    concat!("SELECT ", user_columns!(), " FROM users ORDER BY name"),
);
const SET_DISABLED: Statement = Statement::new(
    "UPDATE users",
    concat!(
        "UPDATE users SET disabled = $2, updated_at = $3 WHERE name = $1 RETURNING ",
        user_columns!()
    ),
);
const SET_PASSWORD: Statement = Statement::new(
    "UPDATE users",
    concat!(
        "UPDATE users SET password_hash = $2, updated_at = $3 WHERE name = $1 RETURNING ",
        user_columns!()
    ),
);

/// Every statement of the store, for the test that prepares them all.
pub fn statements() -> Vec<Statement> {
    vec![
        Statement::new(INSERT.summary, INSERT.sqlite),
        Statement::new(INSERT.summary, INSERT.postgres),
        GET,
        GET_BY_ID,
        LIST,
        SET_DISABLED,
        SET_PASSWORD,
    ]
}

/// What a user may do: each role is a fixed set of scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Reads and writes clients and orders.
    Admin,
    /// Reads clients and orders.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Admin, Role::Viewer];

    /// The role's name, as stored and as the command line takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == name)
    }

    /// The scopes a token of a user with this role may carry (a client
    /// may ask for fewer).
    pub fn scopes(self) -> &'static [&'static str] {
        match self {
            Role::Admin => &[
                "clients:read",
                "clients:write",
                "orders:read",
                "orders:write",
            ],
            Role::Viewer => &["clients:read", "orders:read"],
        }
    }

    /// Those of `scopes` that this role allows, in their order.
    pub fn allowed<'a>(self, scopes: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        scopes
            .into_iter()
            .filter(|scope| self.scopes().contains(scope))
            .map(str::to_owned)
            .collect()
    }

    /// [`Role::scopes`] as a `scope` value: space-separated.
    pub fn scope(self) -> String {
        self.scopes().join(" ")
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user's name: 1 to 64 characters, ASCII letters, digits, `.`, `_` and
/// `-` (the database checks the same).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(name: &str) -> Result<Self, String> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if name.is_empty() || name.len() > Self::MAX_CHARS || !name.chars().all(allowed) {
            return Err(format!(
                "`{name}` is not a user name: 1 to {} characters, letters A-Z and a-z, digits, `.`, `_` and `-`",
                Self::MAX_CHARS
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UserName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password a user may be given: at least [`Password::MIN_CHARS`]
/// characters, one line, at most [`Password::MAX_BYTES`] (argon2's work
/// grows with it). Never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 12;
    pub const MAX_BYTES: usize = 1024;

    pub fn parse(password: &str) -> Result<Self, String> {
        if password.is_empty() {
            return Err("the password is empty".into());
        }
        if password.contains(['\n', '\r']) {
            return Err("the password must be one line".into());
        }
        if password.chars().count() < Self::MIN_CHARS {
            return Err(format!(
                "the password is too short: at least {} characters",
                Self::MIN_CHARS
            ));
        }
        if password.len() > Self::MAX_BYTES {
            return Err(format!(
                "the password is too long: at most {} bytes",
                Self::MAX_BYTES
            ));
        }
        Ok(Self(password.to_owned()))
    }

    /// A new random password: 24 random bytes, base64url (32 characters,
    /// nothing to escape in a shell, a URL or an `.env` file).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 24];
        OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

/// A user, as stored. Its password hash is kept for [`UserStore::authenticate`]
/// only and never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    password_hash: String,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

impl FromRow for User {
    fn from_row(row: &Row<'_>) -> Result<Self, StoreError> {
        let role: String = row.get("role")?;
        Ok(Self {
            id: row.get("id")?,
            name: row.get("name")?,
            role: Role::parse(&role)
                .ok_or_else(|| bad_column("role", format!("`{role}` is no role")))?,
            disabled: row.get("disabled")?,
            created_at: row.get::<Timestamp>("created_at")?.0,
            updated_at: row.get::<Timestamp>("updated_at")?.0,
            password_hash: row.get("password_hash")?,
        })
    }
}

/// Why a user was not added although the database worked: its name is
/// another user's (the unique constraint on `name` decides, also under
/// concurrent writes).
#[derive(Debug, PartialEq, Eq)]
pub struct NameTaken;

/// Verified when the user name is unknown, so that an unknown user takes
/// as long to refuse as a wrong password: the hash of a random password,
/// made once, off the async threads, at start ([`prepare_decoy`]).
static DECOY: OnceLock<String> = OnceLock::new();

/// Makes the decoy hash, if it is not made yet. auth_service calls it at
/// start, so that no sign-in waits for it and a failure stops the start
/// rather than leave unknown names refused faster than known ones.
pub async fn prepare_decoy() -> Result<(), String> {
    if DECOY.get().is_none() {
        let hash = tokio::task::spawn_blocking(|| hash_secret(Password::generate().as_str()))
            .await
            .map_err(|e| format!("the decoy password hash did not finish: {e}"))??;
        let _ = DECOY.set(hash);
    }
    Ok(())
}

async fn decoy() -> Result<String, StoreError> {
    prepare_decoy().await.map_err(StoreError::failed)?;
    DECOY
        .get()
        .cloned()
        .ok_or_else(|| StoreError::failed("no decoy password hash"))
}

#[derive(Clone, Debug)]
pub struct UserStore {
    db: Db,
}

impl UserStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Adds a user, enabled, with `password` (hashed here: argon2id).
    pub async fn add(
        &self,
        name: &UserName,
        role: Role,
        password: &Password,
    ) -> Result<Result<User, NameTaken>, StoreError> {
        let hash = hash_off_thread(password).await?;
        let now = Timestamp::now();
        let inserted = self
            .db
            .insert(
                &INSERT,
                &[&name.as_str(), &hash.as_str(), &role.as_str(), &now],
            )
            .await;
        let id = match inserted {
            Ok(id) => id.ok_or_else(|| StoreError::failed("an INSERT … VALUES inserted no row"))?,
            Err(err) if err.is_duplicate_of("users_name_key", "users.name") => {
                return Ok(Err(NameTaken));
            }
            Err(err) => return Err(err),
        };
        Ok(Ok(User {
            id,
            name: name.as_str().to_owned(),
            role,
            disabled: false,
            created_at: now.0,
            updated_at: now.0,
            password_hash: hash,
        }))
    }

    pub async fn get(&self, name: &str) -> Result<Option<User>, StoreError> {
        self.db.fetch_optional(&GET, &[&name]).await
    }

    /// The user whose id is `id` (the `sub` of its tokens), disabled or not.
    pub async fn get_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.db.fetch_optional(&GET_BY_ID, &[&id]).await
    }

    /// Every user, by name.
    pub async fn list(&self) -> Result<Vec<User>, StoreError> {
        self.db.fetch_all(&LIST, &[]).await
    }

    /// Disables (or enables again) the user; `None`: there is no such user.
    pub async fn set_disabled(
        &self,
        name: &str,
        disabled: bool,
    ) -> Result<Option<User>, StoreError> {
        self.db
            .update_returning(&SET_DISABLED, &[&name, &disabled, &Timestamp::now()])
            .await
    }

    /// Gives the user a new password; `None`: there is no such user.
    pub async fn set_password(
        &self,
        name: &str,
        password: &Password,
    ) -> Result<Option<User>, StoreError> {
        let hash = hash_off_thread(password).await?;
        self.db
            .update_returning(&SET_PASSWORD, &[&name, &hash.as_str(), &Timestamp::now()])
            .await
    }

    /// The user `name` if `password` is its password and it is not
    /// disabled; `None` otherwise, after the same work whatever the reason
    /// (an unknown user's password is checked against a decoy hash), so
    /// that the time taken tells nothing. Argon2 runs off the async threads.
    pub async fn authenticate(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<User>, StoreError> {
        let user = self.get(name).await?;
        let hash = match &user {
            Some(user) => user.password_hash.clone(),
            None => decoy().await?,
        };
        let password = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || verify(&hash, &password))
            .await
            .map_err(|e| StoreError::failed(format!("the password check did not finish: {e}")))?;
        Ok(user.filter(|u| matches && !u.disabled))
    }
}

/// Whether `password` is the one `hash` (a PHC string) was made from.
fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The argon2id hash of `password`, computed off the async threads.
async fn hash_off_thread(password: &Password) -> Result<String, StoreError> {
    let password = password.clone();
    tokio::task::spawn_blocking(move || hash_secret(password.as_str()))
        .await
        .map_err(|e| StoreError::failed(format!("the password hashing did not finish: {e}")))?
        .map_err(StoreError::failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::audience_of;

    async fn store() -> (tempfile::TempDir, Db, UserStore) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}", dir.path().join("auth_service.db").display());
        let db = Db::connect(&url, &MIGRATIONS)
            .await
            .expect("the database opens");
        (dir, db.clone(), UserStore::new(db))
    }

    fn name(text: &str) -> UserName {
        UserName::parse(text).expect("a valid name")
    }

    fn password(text: &str) -> Password {
        Password::parse(text).expect("a valid password")
    }

    #[tokio::test]
    async fn a_user_is_added_once_and_read_back() {
        let (_dir, db, store) = store().await;
        let added = store
            .add(
                &name("ada"),
                Role::Admin,
                &password("correct horse battery"),
            )
            .await
            .expect("no failure")
            .expect("a new name");
        assert_eq!((added.name.as_str(), added.role), ("ada", Role::Admin));
        assert!(!added.disabled);
        assert!(added.password_hash.starts_with("$argon2id$"));
        assert!(!added.password_hash.contains("correct horse"));
        assert_eq!(store.get("ada").await.expect("read"), Some(added.clone()));
        let again = store
            .add(&name("ada"), Role::Viewer, &password("another password"))
            .await
            .expect("no failure");
        assert_eq!(again, Err(NameTaken));
        // Names are compared exactly.
        assert!(store.get("Ada").await.expect("read").is_none());
        store
            .add(&name("bob"), Role::Viewer, &password("bob's password"))
            .await
            .expect("no failure")
            .expect("a new name");
        let listed: Vec<_> = store
            .list()
            .await
            .expect("listed")
            .into_iter()
            .map(|u| (u.name, u.role))
            .collect();
        assert_eq!(
            listed,
            [
                ("ada".to_owned(), Role::Admin),
                ("bob".to_owned(), Role::Viewer)
            ]
        );
        db.close().await;
    }

    #[tokio::test]
    async fn only_the_right_password_of_an_enabled_user_authenticates() {
        let (_dir, db, store) = store().await;
        let ada = store
            .add(
                &name("ada"),
                Role::Viewer,
                &password("correct horse battery"),
            )
            .await
            .expect("no failure")
            .expect("a new name");
        let signed_in = store
            .authenticate("ada", "correct horse battery")
            .await
            .expect("no failure");
        assert_eq!(signed_in.map(|u| u.id), Some(ada.id));
        for (who, what) in [
            ("ada", "correct horse batterY"),
            ("ada", ""),
            ("nobody", "correct horse battery"),
            ("", "correct horse battery"),
        ] {
            assert!(
                store
                    .authenticate(who, what)
                    .await
                    .expect("no failure")
                    .is_none(),
                "{who} / {what}"
            );
        }

        let disabled = store
            .set_disabled("ada", true)
            .await
            .expect("no failure")
            .expect("ada exists");
        assert!(disabled.disabled);
        assert!(disabled.updated_at >= ada.updated_at);
        assert!(
            store
                .authenticate("ada", "correct horse battery")
                .await
                .expect("no failure")
                .is_none(),
            "a disabled user signs in"
        );
        let enabled = store.set_disabled("ada", false).await.expect("no failure");
        assert_eq!(enabled.map(|u| u.disabled), Some(false));
        assert!(
            store
                .authenticate("ada", "correct horse battery")
                .await
                .expect("no failure")
                .is_some()
        );
        assert!(
            store
                .set_disabled("nobody", true)
                .await
                .expect("no failure")
                .is_none()
        );
        db.close().await;
    }

    #[tokio::test]
    async fn a_new_password_replaces_the_old_one() {
        let (_dir, db, store) = store().await;
        store
            .add(&name("ada"), Role::Admin, &password("the first password"))
            .await
            .expect("no failure")
            .expect("a new name");
        let changed = store
            .set_password("ada", &password("the second password"))
            .await
            .expect("no failure");
        assert_eq!(changed.map(|u| u.name), Some("ada".to_owned()));
        assert!(
            store
                .authenticate("ada", "the first password")
                .await
                .expect("no failure")
                .is_none()
        );
        assert!(
            store
                .authenticate("ada", "the second password")
                .await
                .expect("no failure")
                .is_some()
        );
        assert!(
            store
                .set_password("nobody", &password("the second password"))
                .await
                .expect("no failure")
                .is_none()
        );
        db.close().await;
    }

    #[test]
    fn roles_map_to_their_scopes() {
        assert_eq!(
            Role::Admin.scope(),
            "clients:read clients:write orders:read orders:write"
        );
        assert_eq!(Role::Viewer.scope(), "clients:read orders:read");
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            for scope in role.scopes() {
                assert!(audience_of(scope).is_some(), "{role}: {scope}");
            }
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Role::parse("Admin"), None);
    }

    #[test]
    fn names_and_passwords_are_checked() {
        for good in ["a", "ada.lovelace", "A_1-b", &"x".repeat(64)] {
            assert!(UserName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "ada@example", "ü", "a/b", &"x".repeat(65)] {
            assert!(UserName::parse(bad).is_err(), "{bad}");
        }
        assert!(Password::parse("").unwrap_err().contains("empty"));
        assert!(
            Password::parse("11 chars ok")
                .unwrap_err()
                .contains("too short")
        );
        assert!(Password::parse("twelve chars").is_ok());
        assert!(
            Password::parse("twelve chars\nmore")
                .unwrap_err()
                .contains("one line")
        );
        assert!(
            Password::parse(&"x".repeat(1025))
                .unwrap_err()
                .contains("too long")
        );
        let generated = Password::generate();
        assert!(Password::parse(generated.as_str()).is_ok());
        assert!(generated.as_str().len() >= 20);
        assert_ne!(generated, Password::generate());
        assert_eq!(format!("{generated:?}"), "Password(…)");
    }

    /// Every statement prepares on SQLite; the store's tests ran them.
    #[tokio::test]
    async fn every_statement_prepares_on_sqlite() {
        let (dir, db, _) = store().await;
        db.close().await;
        let conn = rusqlite::Connection::open(dir.path().join("auth_service.db")).expect("opened");
        for statement in statements() {
            conn.prepare(statement.sql())
                .unwrap_or_else(|e| panic!("{}: {e}", statement.sql()));
        }
    }

    /// The database refuses what the types refuse, should a row be written
    /// some other way.
    #[tokio::test]
    async fn the_database_checks_names_roles_and_hashes() {
        let (dir, db, _) = store().await;
        db.close().await;
        let conn = rusqlite::Connection::open(dir.path().join("auth_service.db")).expect("opened");
        let insert = |name: &str, hash: &str, role: &str| {
            conn.execute(
                "INSERT INTO users (name, password_hash, role, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, 'now', 'now')",
                [name, hash, role],
            )
        };
        assert!(insert("ada", "$argon2id$v=19$x", "admin").is_ok());
        assert!(insert("a b", "$argon2id$v=19$x", "admin").is_err());
        assert!(insert("bob", "plain", "admin").is_err());
        assert!(insert("bob", "$argon2id$v=19$x", "root").is_err());
    }
}
