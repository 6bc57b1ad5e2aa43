//! `auth_service init DIR`: what a development system needs, made once.
//! Nothing that exists is replaced, so a second `make run` keeps its keys
//! and clients (delete the files to start over).
//!
//! Beside the key, the clients file and the two `.env` files it writes each
//! service's own secret alone (`client_service.secret`,
//! `order_service.secret`, no final line break), the form that a container
//! reads through `SERVICE_CLIENT_SECRET_FILE` and a Kubernetes Secret holds:
//! compose's `init_secrets` and the dev overlay's Job take them from there.

use std::{
    fmt::Write as _,
    io::Write as _,
    path::{Path, PathBuf},
};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::{clients::hash_secret, keys::new_key};

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

pub const SIGNING_KEY: &str = "auth-signing-key.pem";
pub const CLIENTS_FILE: &str = "auth-clients";
/// The clients whose secret is also written alone, in `ID.secret`.
const SERVICE_CLIENTS: [&str; 2] = ["client_service", "order_service"];

/// Makes `dir`'s files; returns what it made.
pub fn init(dir: &Path) -> Result<Vec<PathBuf>, String> {
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
            "# auth_service's clients: CLIENT_ID ARGON2_HASH SCOPE...\n# Made by `auth_service init`; the secrets are in dev-clients.env and service-clients.env.\n",
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

    #[test]
    fn init_makes_a_working_setup_once() {
        let dir = tempfile::tempdir().unwrap();
        let made = init(dir.path()).unwrap();
        assert_eq!(made.len(), 6, "{made:?}");
        assert!(init(dir.path()).unwrap().is_empty());
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
                &value("READONLY_CLIENT_SECRET"),
            )
            .unwrap();
        assert_eq!(client.scopes, ["clients:read", "orders:read"]);
        assert!(
            clients
                .authenticate(&value("CLIENT_ID"), &value("CLIENT_SECRET"))
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
            assert_eq!(clients.authenticate(id, &alone).unwrap().id, id);
        }
    }
}
