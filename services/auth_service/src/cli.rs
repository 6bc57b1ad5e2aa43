//! `auth_service users …`: the people who sign in, managed from the
//! command line, on the database the service uses (DATABASE_URL, else
//! `DATA_DIR/auth_service.db`; migrated first). Every refusal is a message
//! and a non-zero exit (`main.rs`).

use std::io::Read;

use chrono::SecondsFormat;
use kit_data::Db;

use crate::{
    config::{Database, UsersCommand},
    grants::GrantStore,
    users::{MIGRATIONS, NameTaken, Password, UserStore},
};

/// Opens the database at `url` (running the migrations).
pub async fn open(url: &str) -> Result<Db, String> {
    Db::connect(url, &MIGRATIONS).await.map_err(|e| {
        format!(
            "cannot open the database {}: {}",
            kit_config::redact_url(url),
            chain(&e)
        )
    })
}

/// An error and its causes, on one line.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Where a new password comes from: standard input when it is not a
/// terminal and has something to read; `None` (make one) otherwise.
pub fn read_password(mut input: impl Read, is_terminal: bool) -> Result<Option<Password>, String> {
    if is_terminal {
        return Ok(None);
    }
    let mut text = String::new();
    input
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    if text.is_empty() {
        return Ok(None);
    }
    let line = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    Password::parse(line).map(Some)
}

/// Runs `command` on `database`; returns what to print. `password` is
/// read only by the commands that set one ([`read_password`]).
pub async fn users(
    database: &Database,
    command: UsersCommand,
    password: impl FnOnce() -> Result<Option<Password>, String>,
) -> Result<String, String> {
    let url = database.url()?;
    let db = open(&url).await?;
    let outcome = run(
        &UserStore::new(db.clone()),
        &GrantStore::new(db.clone()),
        command,
        password,
    )
    .await;
    db.close().await;
    outcome
}

/// A new password and a disabled user also end everything the user was
/// signed in to ([`GrantStore::end_user`]): whoever held the old password
/// is out at once, and stays out after an `enable`.
async fn run(
    store: &UserStore,
    grants: &GrantStore,
    command: UsersCommand,
    password: impl FnOnce() -> Result<Option<Password>, String>,
) -> Result<String, String> {
    let failed = |e: kit_data::StoreError| chain(&e);
    let unknown =
        |name: &str| format!("there is no user `{name}` (`auth_service users list` lists them)");
    match command {
        UsersCommand::Add { name, role } => {
            let (password, made) = given_or_made(password)?;
            match store.add(&name, role, &password).await.map_err(failed)? {
                Ok(user) => Ok(format!(
                    "added user {} ({})\n{}",
                    user.name,
                    user.role,
                    shown(&password, made)
                )),
                Err(NameTaken) => Err(format!("a user named `{name}` exists already")),
            }
        }
        UsersCommand::List => {
            let users = store.list().await.map_err(failed)?;
            let width = users.iter().map(|u| u.name.len()).max().unwrap_or(0).max(4);
            // ID: the `sub` of the user's tokens, which the services log.
            let id_width = users
                .iter()
                .map(|u| u.id.to_string().len())
                .max()
                .unwrap_or(0)
                .max(2);
            let mut text = format!(
                "{:>id_width$}  {:width$}  {:6}  {:8}  CREATED\n",
                "ID", "NAME", "ROLE", "DISABLED"
            );
            for user in users {
                text.push_str(&format!(
                    "{:>id_width$}  {:width$}  {:6}  {:8}  {}\n",
                    user.id,
                    user.name,
                    user.role.as_str(),
                    if user.disabled { "yes" } else { "no" },
                    user.created_at.to_rfc3339_opts(SecondsFormat::Secs, true)
                ));
            }
            Ok(text.trim_end().to_owned())
        }
        UsersCommand::Disable { name } => {
            match store
                .set_disabled(name.as_str(), true)
                .await
                .map_err(failed)?
            {
                Some(user) => {
                    grants.end_user(user.id).await.map_err(failed)?;
                    Ok(format!(
                        "disabled user {} (signed out of every session)",
                        user.name
                    ))
                }
                None => Err(unknown(name.as_str())),
            }
        }
        UsersCommand::Enable { name } => {
            match store
                .set_disabled(name.as_str(), false)
                .await
                .map_err(failed)?
            {
                Some(user) => Ok(format!("enabled user {}", user.name)),
                None => Err(unknown(name.as_str())),
            }
        }
        UsersCommand::SetPassword { name } => {
            if store.get(name.as_str()).await.map_err(failed)?.is_none() {
                return Err(unknown(name.as_str()));
            }
            let (password, made) = given_or_made(password)?;
            match store
                .set_password(name.as_str(), &password)
                .await
                .map_err(failed)?
            {
                Some(user) => {
                    grants.end_user(user.id).await.map_err(failed)?;
                    Ok(format!(
                        "new password for user {} (signed out of every session)\n{}",
                        user.name,
                        shown(&password, made)
                    ))
                }
                None => Err(unknown(name.as_str())),
            }
        }
    }
}

/// The password given, or a new one (`true`: made here, to be shown).
fn given_or_made(
    password: impl FnOnce() -> Result<Option<Password>, String>,
) -> Result<(Password, bool), String> {
    Ok(match password()? {
        Some(given) => (given, false),
        None => (Password::generate(), true),
    })
}

/// What is said of the password: a made one is shown, once.
fn shown(password: &Password, made: bool) -> String {
    if made {
        format!("password (shown only this once): {}", password.as_str())
    } else {
        "password: the one read from standard input".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::Role;

    fn database(dir: &tempfile::TempDir) -> Database {
        Database {
            database_url: None,
            data_dir: dir.path().join("data"),
        }
    }

    fn name(text: &str) -> crate::users::UserName {
        crate::users::UserName::parse(text).expect("a valid name")
    }

    fn given(text: &str) -> impl FnOnce() -> Result<Option<Password>, String> {
        let password = Password::parse(text);
        move || password.map(Some)
    }

    fn none() -> Result<Option<Password>, String> {
        Ok(None)
    }

    #[test]
    fn the_password_is_read_from_standard_input_unless_it_is_a_terminal_or_empty() {
        let read = |text: &str, terminal: bool| read_password(text.as_bytes(), terminal);
        assert_eq!(
            read("a long password\n", false),
            Ok(Some(Password::parse("a long password").expect("valid")))
        );
        assert_eq!(
            read("a long password\r\n", false),
            Ok(Some(Password::parse("a long password").expect("valid")))
        );
        assert_eq!(read("a long password\n", true), Ok(None));
        assert_eq!(read("", false), Ok(None));
        assert!(read("\n", false).unwrap_err().contains("empty"));
        assert!(read("short\n", false).unwrap_err().contains("too short"));
        assert!(
            read("a long password\nand more\n", false)
                .unwrap_err()
                .contains("one line")
        );
    }

    #[tokio::test]
    async fn the_commands_manage_users_and_refuse_plainly() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let db = database(&dir);
        let add = |who: &str, role| UsersCommand::Add {
            name: name(who),
            role,
        };

        let said = users(&db, add("ada", Role::Admin), none)
            .await
            .expect("added");
        let made = said
            .lines()
            .find_map(|l| l.strip_prefix("password (shown only this once): "))
            .expect("the made password is shown")
            .to_owned();
        assert!(made.len() >= 20, "{made}");
        let said = users(&db, add("bob", Role::Viewer), given("bob's password"))
            .await
            .expect("added");
        assert!(!said.contains("bob's password"), "{said}");

        let taken = users(&db, add("ada", Role::Viewer), none)
            .await
            .unwrap_err();
        assert!(taken.contains("`ada` exists already"), "{taken}");
        let short = users(&db, add("carl", Role::Viewer), given("short"))
            .await
            .unwrap_err();
        assert!(short.contains("too short"), "{short}");

        let listed = users(&db, UsersCommand::List, none).await.expect("listed");
        let rows: Vec<Vec<&str>> = listed
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows[0], ["ID", "NAME", "ROLE", "DISABLED", "CREATED"]);
        assert_eq!(rows[1][1..4], ["ada", "admin", "no"]);
        assert_eq!(rows[2][1..4], ["bob", "viewer", "no"]);
        let ids: Vec<i64> = rows[1..].iter().map(|r| r[0].parse().unwrap()).collect();
        assert!(ids[0] > 0 && ids[0] != ids[1], "{listed}");
        assert_eq!(rows.len(), 3, "{listed}");

        let disabled = users(&db, UsersCommand::Disable { name: name("bob") }, none).await;
        assert_eq!(
            disabled,
            Ok("disabled user bob (signed out of every session)".to_owned())
        );
        let listed = users(&db, UsersCommand::List, none).await.expect("listed");
        assert!(
            listed.lines().any(|l| l
                .split_whitespace()
                .skip(1)
                .take(3)
                .eq(["bob", "viewer", "yes"])),
            "{listed}"
        );

        for command in [
            UsersCommand::Disable {
                name: name("nobody"),
            },
            UsersCommand::Enable {
                name: name("nobody"),
            },
            UsersCommand::SetPassword {
                name: name("nobody"),
            },
        ] {
            let unknown = users(&db, command, none).await.unwrap_err();
            assert!(unknown.contains("no user `nobody`"), "{unknown}");
        }

        // A session of ada's, from before the new password.
        let store_db = open(&db.url().expect("a url")).await.expect("opened");
        let store = UserStore::new(store_db.clone());
        let grants = GrantStore::new(store_db.clone());
        let ada = store.get("ada").await.expect("no failure").expect("ada");
        let session = grants.start_session(ada.id).await.expect("a session");
        assert!(grants.session_user(&session).await.expect("read").is_some());
        let said = users(
            &db,
            UsersCommand::SetPassword { name: name("ada") },
            given("ada's new password"),
        )
        .await
        .expect("changed");
        assert!(said.starts_with("new password for user ada"), "{said}");
        assert!(
            grants.session_user(&session).await.expect("read").is_none(),
            "a new password ends the sessions of the old one"
        );
        assert!(
            store
                .authenticate("ada", "ada's new password")
                .await
                .expect("no failure")
                .is_some()
        );
        assert!(
            store
                .authenticate("ada", &made)
                .await
                .expect("no failure")
                .is_none()
        );
        // Disabling bob ends his session, also for after an enable.
        let bob = store.get("bob").await.expect("no failure").expect("bob");
        let session = grants.start_session(bob.id).await.expect("a session");
        users(&db, UsersCommand::Disable { name: name("bob") }, none)
            .await
            .expect("disabled");
        users(&db, UsersCommand::Enable { name: name("bob") }, none)
            .await
            .expect("enabled");
        assert!(grants.session_user(&session).await.expect("read").is_none());
        store_db.close().await;
    }
}
