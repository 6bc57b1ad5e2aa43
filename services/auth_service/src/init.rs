//! `auth_service init DIR`: what a development system needs, made once.
//! Nothing that exists is replaced, so a second `make run` keeps its keys,
//! clients and users (delete the files to start over).
//!
//! Beside the key, the clients file and the two `.env` files it writes each
//! service's own secret alone (`client_service.secret`,
//! `order_service.secret`, no final line break), the form that a container
//! reads through `SERVICE_CLIENT_SECRET_FILE` and a Kubernetes Secret holds:
//! compose's `init_secrets` and the dev overlay's Job take them from there.
//!
//! In auth_service's database (`--database-url`/DATABASE_URL, else
//! `DIR/auth_service.db`: the service's own default when DIR is its
//! DATA_DIR, as with `make run`) it adds two development users, `admin` and
//! `viewer`, and writes their names and passwords to `dev-users.env`
//! (`ADMIN_USER`, `ADMIN_PASSWORD`, `VIEWER_USER`, `VIEWER_PASSWORD`, for
//! scripts to source). When that file exists its passwords are kept: a user
//! it names that the database lacks is added with its password, and no
//! password is ever changed. When it does not, and a user exists already,
//! init stops with a message and changes nothing: it never changes a
//! password it did not make (the database may be one where `admin` is a
//! real person's).

use std::{
    fmt::Write as _,
    io::Write as _,
    path::{Path, PathBuf},
};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::{
    cli,
    clients::hash_secret,
    config::sqlite_url,
    keys::new_key,
    users::{NameTaken, Password, Role, UserName, UserStore},
};

/// The clients `init` makes: id, `FILE:PREFIX` (its id and secret go to
/// FILE as PREFIX_ID and PREFIX_SECRET), and its scopes.
const CLIENTS: [(&str, &str, &str); 4] = [
    (
        "dev-client",
        "dev-clients.env:CLIENT",
        "clients:read clients:write orders:read orders:write",
    ),
    (
        "dev-readonly",
        "dev-clients.env:READONLY_CLIENT",
        "clients:read orders:read",
    ),
    // The services' own clients: each with the scopes of its calls only.
    (
        "client_service",
        "service-clients.env:CLIENT_SERVICE",
        "orders:read orders:write",
    ),
    (
        "order_service",
        "service-clients.env:ORDER_SERVICE",
        "clients:read",
    ),
];

/// The development client of the authorization code grant (a person
/// signs in to it): confidential, every scope (a person gets those of
/// their role), its redirect URIs on the gateway (the web console's). Its
/// id, secret and URIs go to `dev-clients.env` as `WEB_CLIENT_ID`,
/// `WEB_CLIENT_SECRET`, `WEB_REDIRECT_URI`, `WEB_POST_LOGOUT_REDIRECT_URI`.
const WEB_CLIENT: &str = "dev-web";
const WEB_CALLBACK: &str = "/console/callback";
const WEB_AFTER_LOGOUT: &str = "/console/";
/// Where the gateway is by default (`make run`): the web client's URIs.
/// (Defined beside `init`'s options, which config.rs reads without
/// importing this module.)
pub use crate::config::DEFAULT_WEB_ORIGIN;

pub const SIGNING_KEY: &str = "auth-signing-key.pem";
pub const CLIENTS_FILE: &str = "auth-clients";
/// The clients whose secret is also written alone, in `ID.secret`.
const SERVICE_CLIENTS: [&str; 2] = ["client_service", "order_service"];

pub const DEV_USERS_FILE: &str = "dev-users.env";
/// The development users: name, role, and the prefix of their lines in
/// `dev-users.env` (PREFIX_USER, PREFIX_PASSWORD).
const DEV_USERS: [(&str, Role, &str); 2] = [
    ("admin", Role::Admin, "ADMIN"),
    ("viewer", Role::Viewer, "VIEWER"),
];

/// What `init` did.
#[derive(Debug, Default)]
pub struct Made {
    /// The files it made.
    pub files: Vec<PathBuf>,
    /// What it did to the users, one line each.
    pub users: Vec<String>,
}

/// [`init_with`] for a gateway at [`DEFAULT_WEB_ORIGIN`].
pub async fn init(dir: &Path, database_url: Option<&str>) -> Result<Made, String> {
    init_with(dir, database_url, DEFAULT_WEB_ORIGIN).await
}

/// Makes `dir`'s files (the web client's URIs at `web_origin`, the
/// gateway's address) and the development users (in the database at
/// `database_url`, else `dir/auth_service.db`); returns what it made.
pub async fn init_with(
    dir: &Path,
    database_url: Option<&str>,
    web_origin: &str,
) -> Result<Made, String> {
    let mut files = make_files(dir, web_origin)?;
    let url = database_url.map_or_else(|| sqlite_url(dir), str::to_owned);
    let db = cli::open(&url).await?;
    let outcome = dev_users(dir, &UserStore::new(db.clone())).await;
    db.close().await;
    let (file, users) = outcome?;
    files.extend(file);
    Ok(Made { files, users })
}

/// Why init stops when the database has a development user's name but
/// `dev-users.env` (the only copy of its password) is missing.
fn existing_user_without_file(name: &str, file: &Path) -> String {
    format!(
        "the database has a user `{name}` already, and {} is missing: init changes no \
         password it did not make. Start over with a new database (for `make run`: delete \
         DATA_DIR/auth_service.db), or give {name} a password with `auth_service users \
         set-password {name}` and write {} yourself (ADMIN_USER=…, ADMIN_PASSWORD=…, \
         VIEWER_USER=…, VIEWER_PASSWORD=…)",
        file.display(),
        file.display()
    )
}

/// The development users and `dev-users.env` (see the module's comment).
async fn dev_users(
    dir: &Path,
    store: &UserStore,
) -> Result<(Option<PathBuf>, Vec<String>), String> {
    let failed = |e: kit_data::StoreError| cli::chain(&e);
    let path = dir.join(DEV_USERS_FILE);
    let mut said = Vec::new();
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let value = |key: String| {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("{key}=")))
                .ok_or_else(|| {
                    format!(
                        "{}: no line {key}=… (delete the file to make a new one)",
                        path.display()
                    )
                })
        };
        for (_, role, prefix) in DEV_USERS {
            let name = UserName::parse(value(format!("{prefix}_USER"))?)
                .map_err(|e| format!("{}: {prefix}_USER: {e}", path.display()))?;
            let password = Password::parse(value(format!("{prefix}_PASSWORD"))?)
                .map_err(|e| format!("{}: {prefix}_PASSWORD: {e}", path.display()))?;
            if store.get(name.as_str()).await.map_err(failed)?.is_none() {
                // Taken meanwhile: someone else added it; kept as it is.
                if store
                    .add(&name, role, &password)
                    .await
                    .map_err(failed)?
                    .is_ok()
                {
                    said.push(format!(
                        "added user {name} ({role}), its password from {DEV_USERS_FILE}"
                    ));
                }
            }
        }
        return Ok((None, said));
    }
    for (name, _, _) in DEV_USERS {
        if store.get(name).await.map_err(failed)?.is_some() {
            return Err(existing_user_without_file(name, &path));
        }
    }
    let mut lines = String::new();
    for (name, role, prefix) in DEV_USERS {
        let user = UserName::parse(name)?;
        let password = Password::generate();
        match store.add(&user, role, &password).await.map_err(failed)? {
            Ok(_) => said.push(format!("added user {name} ({role})")),
            // Added meanwhile by someone else: its password is not ours.
            Err(NameTaken) => return Err(existing_user_without_file(name, &path)),
        }
        writeln!(
            lines,
            "{prefix}_USER={name}\n{prefix}_PASSWORD={}",
            password.as_str()
        )
        .map_err(|e| e.to_string())?;
    }
    write_private(&path, &lines)?;
    Ok((Some(path), said))
}

/// Makes `dir`'s files (the key, the clients); returns what it made.
fn make_files(dir: &Path, web_origin: &str) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut made = Vec::new();
    let key = dir.join(SIGNING_KEY);
    if !key.exists() {
        let (pem, _) = new_key()?;
        write_private(&key, &pem)?;
        made.push(key);
    }
    let clients = dir.join(CLIENTS_FILE);
    if !clients.exists() {
        let mut lines = String::from(
            "# auth_service's clients: CLIENT_ID ARGON2_HASH|- SCOPE... [grant_types=...] [redirect_uri=URI]... [post_logout_redirect_uri=URI]...\n# Made by `auth_service init`; the secrets are in dev-clients.env and service-clients.env.\n",
        );
        let mut envs: Vec<(&str, String)> = Vec::new();
        for (id, env, scopes) in CLIENTS {
            let secret = new_secret();
            writeln!(lines, "{id} {} {scopes}", hash_secret(&secret)?)
                .map_err(|e| e.to_string())?;
            let (file, prefix) = env.split_once(':').unwrap_or((env, ""));
            let text = format!("{prefix}_ID={id}\n{prefix}_SECRET={secret}\n");
            match envs.iter_mut().find(|(f, _)| *f == file) {
                Some((_, all)) => all.push_str(&text),
                None => envs.push((file, text)),
            }
            if SERVICE_CLIENTS.contains(&id) {
                let path = dir.join(format!("{id}.secret"));
                write_private(&path, &secret)?;
                made.push(path);
            }
        }
        let secret = new_secret();
        let callback = format!("{web_origin}{WEB_CALLBACK}");
        let after = format!("{web_origin}{WEB_AFTER_LOGOUT}");
        writeln!(
            lines,
            "{WEB_CLIENT} {} clients:read clients:write orders:read orders:write \
             grant_types=authorization_code,refresh_token redirect_uri={callback} \
             post_logout_redirect_uri={after}",
            hash_secret(&secret)?
        )
        .map_err(|e| e.to_string())?;
        let web = format!(
            "WEB_CLIENT_ID={WEB_CLIENT}\nWEB_CLIENT_SECRET={secret}\nWEB_REDIRECT_URI={callback}\nWEB_POST_LOGOUT_REDIRECT_URI={after}\n"
        );
        match envs.iter_mut().find(|(f, _)| *f == "dev-clients.env") {
            Some((_, all)) => all.push_str(&web),
            None => envs.push(("dev-clients.env", web)),
        }
        for (file, text) in envs {
            let path = dir.join(file);
            write_private(&path, &text)?;
            made.push(path);
        }
        write_private(&clients, &lines)?;
        made.push(clients);
    }
    Ok(made)
}

/// 32 random bytes, base64url: a secret nobody guesses.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Writes a file only its owner can read.
pub fn write_private(path: &Path, text: &str) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{clients::Clients, keys::Keys};

    #[tokio::test]
    async fn init_makes_a_working_setup_once() {
        let dir = tempfile::tempdir().unwrap();
        let made = init(dir.path(), None).await.unwrap();
        assert_eq!(made.files.len(), 7, "{made:?}");
        let again = init(dir.path(), None).await.unwrap();
        assert!(
            again.files.is_empty() && again.users.is_empty(),
            "{again:?}"
        );
        Keys::load(&dir.path().join(SIGNING_KEY), &[] as &[PathBuf]).unwrap();
        let clients = Clients::load(&dir.path().join(CLIENTS_FILE)).unwrap();
        let env = std::fs::read_to_string(dir.path().join("dev-clients.env")).unwrap();
        let value = |name: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap()
                .to_owned()
        };
        let client = clients
            .authenticate(
                &value("READONLY_CLIENT_ID"),
                Some(&value("READONLY_CLIENT_SECRET")),
            )
            .unwrap();
        assert_eq!(client.scopes, ["clients:read", "orders:read"]);
        // The client people sign in to, its URIs on the gateway.
        let web = clients
            .authenticate(&value("WEB_CLIENT_ID"), Some(&value("WEB_CLIENT_SECRET")))
            .unwrap();
        assert_eq!(
            web.grants,
            [
                crate::clients::Grant::AuthorizationCode,
                crate::clients::Grant::RefreshToken
            ]
        );
        assert_eq!(web.redirect_uris, [value("WEB_REDIRECT_URI")]);
        assert_eq!(
            value("WEB_REDIRECT_URI"),
            "http://localhost:8080/console/callback"
        );
        assert_eq!(
            web.post_logout_redirect_uris,
            [value("WEB_POST_LOGOUT_REDIRECT_URI")]
        );
        assert!(
            clients
                .authenticate(&value("CLIENT_ID"), Some(&value("CLIENT_SECRET")))
                .is_some()
        );
        // Each service's secret alone, without a line break, is the one of
        // service-clients.env, and authenticates that service's client.
        let services = std::fs::read_to_string(dir.path().join("service-clients.env")).unwrap();
        for (id, prefix) in [
            ("client_service", "CLIENT_SERVICE"),
            ("order_service", "ORDER_SERVICE"),
        ] {
            let alone = std::fs::read_to_string(dir.path().join(format!("{id}.secret"))).unwrap();
            assert!(
                services.contains(&format!("{prefix}_SECRET={alone}\n")),
                "{id}"
            );
            assert!(!alone.contains('\n'), "{id}");
            assert_eq!(clients.authenticate(id, Some(&alone)).unwrap().id, id);
        }
    }

    /// The value of `key` in `text` (KEY=VALUE lines).
    fn value_of(text: &str, key: &str) -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {text}"))
            .to_owned()
    }

    async fn users_of(dir: &Path) -> (kit_data::Db, UserStore) {
        let db = cli::open(&sqlite_url(dir)).await.unwrap();
        (db.clone(), UserStore::new(db))
    }

    #[tokio::test]
    async fn init_makes_the_development_users_and_their_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let made = init(dir.path(), None).await.unwrap();
        let path = dir.path().join(DEV_USERS_FILE);
        assert!(made.files.contains(&path), "{made:?}");
        assert_eq!(
            made.users,
            ["added user admin (admin)", "added user viewer (viewer)"]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let keys: Vec<&str> = text.lines().map(|l| l.split_once('=').unwrap().0).collect();
        assert_eq!(
            keys,
            [
                "ADMIN_USER",
                "ADMIN_PASSWORD",
                "VIEWER_USER",
                "VIEWER_PASSWORD"
            ]
        );
        assert_eq!(value_of(&text, "ADMIN_USER"), "admin");
        assert_eq!(value_of(&text, "VIEWER_USER"), "viewer");
        let (admin, viewer) = (
            value_of(&text, "ADMIN_PASSWORD"),
            value_of(&text, "VIEWER_PASSWORD"),
        );
        assert!(admin.len() >= 20 && viewer.len() >= 20 && admin != viewer);

        // A second init changes nothing: the same file, the same passwords.
        let again = init(dir.path(), None).await.unwrap();
        assert!(
            again.files.is_empty() && again.users.is_empty(),
            "{again:?}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

        let (db, store) = users_of(dir.path()).await;
        let signed_in = store.authenticate("admin", &admin).await.unwrap().unwrap();
        assert_eq!(signed_in.role, Role::Admin);
        let signed_in = store
            .authenticate("viewer", &viewer)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(signed_in.role, Role::Viewer);
        assert!(
            store
                .authenticate("viewer", &admin)
                .await
                .unwrap()
                .is_none()
        );
        db.close().await;
    }

    /// The file is the development passwords' only copy: a new database
    /// gets its users with them, and a lost file gives the users new ones.
    #[tokio::test]
    async fn init_keeps_the_file_and_the_database_in_step() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), None).await.unwrap();
        let path = dir.path().join(DEV_USERS_FILE);
        let text = std::fs::read_to_string(&path).unwrap();

        // Another database, the same file: the users are added with its passwords.
        let other = tempfile::tempdir().unwrap();
        let url = sqlite_url(other.path());
        let made = init(dir.path(), Some(&url)).await.unwrap();
        assert_eq!(made.users.len(), 2, "{made:?}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        let (db, store) = users_of(other.path()).await;
        let admin = value_of(&text, "ADMIN_PASSWORD");
        assert!(store.authenticate("admin", &admin).await.unwrap().is_some());
        db.close().await;

        // The file lost: init stops, says why, and changes no password.
        std::fs::remove_file(&path).unwrap();
        let refused = init(dir.path(), None).await.unwrap_err();
        assert!(
            refused.contains("a user `admin` already") && refused.contains("set-password admin"),
            "{refused}"
        );
        assert!(!path.exists());
        let (db, store) = users_of(dir.path()).await;
        assert!(store.authenticate("admin", &admin).await.unwrap().is_some());
        db.close().await;
        std::fs::write(&path, &text).unwrap();

        // A file that lacks a line is named, not guessed at.
        std::fs::write(&path, "ADMIN_USER=admin\n").unwrap();
        let refused = init(dir.path(), None).await.unwrap_err();
        assert!(
            refused.contains("ADMIN_PASSWORD") && refused.contains(DEV_USERS_FILE),
            "{refused}"
        );
    }
}
