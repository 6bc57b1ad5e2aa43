//! What the console's in-process tests share: a stand-in for the
//! authorization server on 127.0.0.1:0 (its metadata, token and revocation
//! endpoints, as auth_service answers them), a stand-in API, the console
//! itself, and the steps of a sign-in.
#![allow(dead_code)]

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Form, Json, Router,
    body::Body,
    extract::State,
    http::{HeaderMap, Request, StatusCode, header},
    response::Response,
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use console::{
    api::Api,
    cookie::Cookies,
    provider::Provider,
    routes::{outer, router},
    session::Store,
    state::{AppState, LOGIN_TTL},
};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

pub const CLIENT_ID: &str = "console";
pub const SECRET: &str = "a-secret-of-sixteen-or-more";
pub const ORIGIN: &str = "http://console.test";

/// A form's fields, in order.
pub type Fields = Vec<(String, String)>;

/// What the stand-in was sent, and how it answers.
#[derive(Clone, Default)]
pub struct Seen {
    pub token_forms: Arc<Mutex<Vec<Fields>>>,
    pub revoked: Arc<Mutex<Vec<String>>>,
    /// Tokens issued so far: the n-th access token's `jti` is n, and the
    /// n-th refresh token is `refresh-n` (rotated at every refresh).
    pub issued: Arc<AtomicU64>,
    /// The `expires_in` of the tokens (300 unless set).
    pub expires_in: Arc<AtomicU64>,
    /// The scopes of the tokens (every scope unless set).
    pub scope: Arc<Mutex<Option<String>>>,
    /// Refuse refresh tokens (`invalid_grant`).
    pub refuse_refresh: Arc<AtomicBool>,
}

/// The stand-in authorization server; returns its issuer.
pub async fn provider(seen: Seen, sub: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}/auth", listener.local_addr().unwrap());
    let metadata = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "end_session_endpoint": format!("{issuer}/logout"),
    });
    let app = Router::new()
        .route(
            "/.well-known/oauth-authorization-server/auth",
            get(move || async move { Json(metadata) }),
        )
        .route(
            "/auth/token",
            post(
                move |State(seen): State<Seen>, Form(form): Form<Fields>| async move {
                    let refreshing = form.contains(&("grant_type".into(), "refresh_token".into()));
                    seen.token_forms.lock().unwrap().push(form);
                    if refreshing && seen.refuse_refresh.load(Ordering::SeqCst) {
                        let error = json!({"error": "invalid_grant"});
                        return (StatusCode::BAD_REQUEST, Json(error));
                    }
                    let n = seen.issued.fetch_add(1, Ordering::SeqCst) + 1;
                    let scope = seen.scope.lock().unwrap().clone().unwrap_or_else(|| {
                        "clients:read clients:write orders:read orders:write".into()
                    });
                    let claims = json!({ "sub": sub, "scope": scope, "jti": n });
                    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
                    let expires_in = match seen.expires_in.load(Ordering::SeqCst) {
                        0 => 300,
                        secs => secs,
                    };
                    let body = json!({
                        "access_token": format!("e30.{claims}.c2ln"),
                        "token_type": "Bearer",
                        "expires_in": expires_in,
                        "refresh_token": format!("refresh-{n}"),
                    });
                    (StatusCode::OK, Json(body))
                },
            ),
        )
        .route(
            "/auth/revoke",
            post(
                |State(seen): State<Seen>, Form(form): Form<Fields>| async move {
                    let token = form.iter().find(|(k, _)| k == "token").unwrap().1.clone();
                    seen.revoked.lock().unwrap().push(token);
                },
            ),
        )
        .with_state(seen);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

pub fn console(issuer: &str, secure: bool, max_sessions: usize) -> Router {
    console_with_api(issuer, "http://127.0.0.1:9", secure, max_sessions)
}

/// The console, calling the API at `api`.
pub fn console_with_api(issuer: &str, api: &str, secure: bool, max_sessions: usize) -> Router {
    let state = state(issuer, api, secure, max_sessions);
    outer(router(state.clone()), state)
}

/// What the console's handlers share, for a provider at `issuer` and the
/// API at `api`.
pub fn state(issuer: &str, api: &str, secure: bool, max_sessions: usize) -> AppState {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let provider = Provider::new(
        issuer.into(),
        CLIENT_ID.into(),
        SECRET.into(),
        format!("{ORIGIN}/console/callback"),
        http,
    );
    let ttl = Duration::from_secs(3600);
    AppState {
        provider: Arc::new(provider),
        api: Api::new(reqwest::Client::new(), api),
        sessions: Arc::new(Store::new(ttl, max_sessions)),
        logins: Arc::new(Store::new(LOGIN_TTL, 100)),
        cookies: Cookies::new(secure),
        origin: ORIGIN.into(),
        session_ttl: ttl,
    }
}

pub async fn send(app: &Router, request: Request<Body>) -> (Response, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    (Response::from_parts(parts, Body::empty()), text)
}

pub fn get_with(uri: &str, cookie: Option<&str>) -> Request<Body> {
    let mut request = Request::get(uri);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.body(Body::empty()).unwrap()
}

/// The `name=value` of the `Set-Cookie` for `name`.
pub fn set_cookie(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no Set-Cookie for {name}: {headers:?}"))
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

pub fn location(response: &Response) -> String {
    response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

pub fn query_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    oauth2::url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name} in {url}"))
        .1
}

/// Signs in through the console; returns the session cookie (`name=value`).
/// The `jti` of an access token of the stand-in (which one it issued).
pub fn token_number(authorization: &str) -> u64 {
    let token = authorization.trim_start_matches("Bearer ");
    let claims = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    claims["jti"].as_u64().unwrap()
}

/// A stand-in API on 127.0.0.1:0 serving `app`; returns its base URL.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// The CSRF token in a page's forms.
pub fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned()
}

/// A form POST from the console's own origin.
pub fn post_form(uri: &str, cookie: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::COOKIE, cookie)
        .header(header::ORIGIN, ORIGIN)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

pub async fn sign_in(app: &Router, issuer: &str, old_session: Option<&str>) -> String {
    let (started, _) = send(app, get_with("/console/sign-in", old_session)).await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let authorize = location(&started);
    assert!(
        authorize.starts_with(&format!("{issuer}/authorize?")),
        "{authorize}"
    );
    assert_eq!(query_param(&authorize, "code_challenge_method"), "S256");
    assert_eq!(
        query_param(&authorize, "redirect_uri"),
        format!("{ORIGIN}/console/callback")
    );
    let state = query_param(&authorize, "state");
    let login = set_cookie(started.headers(), "console_login");
    let cookies = match old_session {
        Some(old) => format!("{login}; {old}"),
        None => login,
    };
    let callback = format!("/console/callback?code=c0de&state={state}&iss={issuer}");
    let (done, _) = send(app, get_with(&callback, Some(&cookies))).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER, "{done:?}");
    assert_eq!(location(&done), "/");
    assert_eq!(
        set_cookie(done.headers(), "console_login"),
        "console_login="
    );
    set_cookie(done.headers(), "console_session")
}
