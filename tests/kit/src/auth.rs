//! The system's credentials as `make run` makes them: `auth_service init`
//! (a signing key, the clients file, the clients' env files), the values in
//! those files, and tokens from the token endpoint.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use reqwest::StatusCode;

use crate::{Reply, bin_dir};

/// The value of `name` in an env file `auth_service init` wrote.
pub fn env_file_value(file: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {}", file.display()))
        .to_owned()
}

/// Runs `auth_service init dir`: a signing key, the clients file and the
/// clients' env files, as `make run` makes them; the development users in
/// the database at `database_url` (`dev-users.env`), and the development
/// web client's redirect URIs on the gateway at `web_origin`.
pub fn auth_init(dir: &Path, database_url: &str, web_origin: &str) {
    let status = Command::new(bin_dir().join("auth_service"))
        .arg("init")
        .arg(dir)
        .arg("--database-url")
        .arg(database_url)
        .arg("--web-origin")
        .arg(web_origin)
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run auth_service init ({e})"));
    assert!(status.success(), "auth_service init failed");
}

/// Asks the token endpoint at `gateway` for a token of client `id`
/// (HTTP Basic), with `scope` when given; panics unless it gets one.
pub async fn token_at(
    http: &reqwest::Client,
    gateway: &str,
    id: &str,
    secret: &str,
    scope: Option<&str>,
) -> String {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let response = http
        .post(format!("{gateway}/auth/token"))
        .basic_auth(id, Some(secret))
        .form(&form)
        .send()
        .await
        .expect("the token endpoint");
    let reply = Reply::from(response).await;
    assert_eq!(reply.status, StatusCode::OK, "no token: {}", reply.text);
    reply.body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// An HTTP client that sends `Authorization: Bearer <token>` with every
/// request (a test may still set another Authorization on one request).
pub fn bearer_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("a header value"),
    );
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .default_headers(headers)
        .build()
        .expect("http client")
}
