//! A person signs in: the authorization code grant with PKCE, refresh
//! tokens, revocation and sign-out, driven in process against auth_service's
//! router (its database a SQLite file in a temp folder), and each refusal.
//! The access tokens are checked by the verifier the services use
//! (kit-auth), against the JWKS served on an ephemeral port.

use std::{collections::HashMap, sync::Arc, time::Duration};

use auth_service::{
    AppState,
    clients::{Clients, hash_secret},
    grants::new_secret,
    keys::{Keys, new_key},
    users::{MIGRATIONS, Password, Role, UserName, UserStore},
};
use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
    response::Response,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use http_body_util::BodyExt;
use kit_data::Db;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tower::ServiceExt;

const ISSUER: &str = "http://127.0.0.1:8080/auth";
const ORIGIN: &str = "http://127.0.0.1:8080";
const WEB_SECRET: &str = "web-secret-0123456789";
const WEB_CB: &str = "http://127.0.0.1:8080/console/callback";
const WEB_BYE: &str = "http://127.0.0.1:8080/console/";
const OTHER_CB: &str = "https://other.example/cb";
const ADMIN_PASSWORD: &str = "admin password 1";
const VIEWER_PASSWORD: &str = "viewer password 1";

struct Setup {
    app: Router,
    issuer: String,
    origin: String,
    dir: tempfile::TempDir,
    users: UserStore,
    admin_id: i64,
    viewer_id: i64,
    /// The argon2 turns of the server (`AppState::hashing`).
    hashing: Arc<Semaphore>,
}

async fn setup_with(issuer: &str) -> Setup {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (pem, _) = new_key().expect("a key");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&key_file, pem).expect("written");
    let keys = Keys::load(&key_file, &[] as &[&std::path::Path]).expect("loaded");
    let web_hash = hash_secret(WEB_SECRET).expect("hashed");
    let service_hash = hash_secret("service-secret-0123456789").expect("hashed");
    let clients = Clients::parse(&format!(
        "web {web_hash} clients:read clients:write orders:read orders:write \
           grant_types=authorization_code,refresh_token redirect_uri={WEB_CB} \
           post_logout_redirect_uri={WEB_BYE}\n\
         other {web_hash} clients:read orders:read grant_types=authorization_code,refresh_token \
           redirect_uri={OTHER_CB}\n\
         spa - clients:read orders:read grant_types=authorization_code redirect_uri=https://spa.example/cb\n\
         service {service_hash} clients:read\n"
    ))
    .expect("clients");
    let url = format!("sqlite://{}", dir.path().join("auth_service.db").display());
    let db = Db::connect(&url, &MIGRATIONS).await.expect("db");
    let users = UserStore::new(db.clone());
    let add = |name: &str, role, password: &str| {
        let users = users.clone();
        let name = UserName::parse(name).expect("name");
        let password = Password::parse(password).expect("password");
        async move {
            users
                .add(&name, role, &password)
                .await
                .expect("no failure")
                .expect("new")
                .id
        }
    };
    let admin_id = add("admin", Role::Admin, ADMIN_PASSWORD).await;
    let viewer_id = add("viewer", Role::Viewer, VIEWER_PASSWORD).await;
    let state = AppState::new(issuer, keys, clients, Duration::from_secs(300), db);
    let hashing = state.hashing.clone();
    Setup {
        hashing,
        app: auth_service::router(state, issuer),
        issuer: issuer.to_owned(),
        origin: auth_service::clients::origin_of(issuer).to_owned(),
        dir,
        users,
        admin_id,
        viewer_id,
    }
}

async fn setup() -> Setup {
    setup_with(ISSUER).await
}

/// A PKCE pair: the verifier and its S256 challenge.
fn pkce() -> (String, String) {
    let verifier = new_secret();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn query(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).expect("encoded")
}

async fn text(response: Response) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

async fn json(response: Response) -> Value {
    serde_json::from_str(&text(response).await).expect("json")
}

/// The parameters of a redirect's `Location`.
fn location(response: &Response) -> (String, HashMap<String, String>) {
    let location = response
        .headers()
        .get(header::LOCATION)
        .expect("a Location")
        .to_str()
        .expect("text");
    let (base, query) = location.split_once('?').unwrap_or((location, ""));
    let params = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .expect("a query")
        .into_iter()
        .collect();
    (base.to_owned(), params)
}

/// The cookies a response sets: name -> the whole `Set-Cookie` value.
fn set_cookies(response: &Response) -> HashMap<String, String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("text").to_owned())
        .map(|v| {
            let name = v.split('=').next().unwrap_or_default().to_owned();
            (name, v)
        })
        .collect()
}

/// `name=value` of a `Set-Cookie` value.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or_default().to_owned()
}

/// The hidden fields of the sign-in form, unescaped.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let unescape = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .filter_map(|rest| {
            let name = rest.strip_prefix("name=\"")?.split('"').next()?;
            let value = rest.split("value=\"").nth(1)?.split('"').next()?;
            Some((unescape(name), unescape(value)))
        })
        .collect()
}

async fn send(app: &Router, request: Request<Body>) -> Response {
    app.clone().oneshot(request).await.expect("an answer")
}

async fn get(app: &Router, uri: &str, cookie: Option<&str>) -> Response {
    let mut request = Request::get(uri);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    send(app, request.body(Body::empty()).expect("request")).await
}

async fn post_form(app: &Router, uri: &str, body: String, headers: &[(&str, &str)]) -> Response {
    let mut request =
        Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(app, request.body(Body::from(body)).expect("request")).await
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn authorize_uri(client: &str, redirect: &str, challenge: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", redirect),
        ("state", "st-123"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    pairs.extend_from_slice(extra);
    format!("/auth/authorize?{}", query(&pairs))
}

/// The sign-in form of an authorization request: the page, its hidden
/// fields and the CSRF cookie (`name=value`).
async fn sign_in_page(setup: &Setup, uri: &str) -> (Response, Vec<(String, String)>, String) {
    let page = get(&setup.app, uri, None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = set_cookies(&page)
        .into_iter()
        .find(|(name, _)| name.ends_with("auth_csrf"))
        .map(|(_, v)| cookie_pair(&v))
        .expect("a CSRF cookie");
    let (parts, body) = page.into_parts();
    let html = text(Response::from_parts(parts.clone(), body)).await;
    let fields = hidden_fields(&html);
    (Response::from_parts(parts, Body::from(html)), fields, csrf)
}

/// Posts the sign-in form with `fields` and the credentials, from the
/// issuer's own origin.
async fn post_sign_in(
    setup: &Setup,
    fields: &[(String, String)],
    cookie: &str,
    username: &str,
    password: &str,
) -> Response {
    post_sign_in_to(
        &setup.app,
        &setup.origin,
        fields,
        cookie,
        username,
        password,
    )
    .await
}

/// [`post_sign_in`] to `app`, whose origin is `origin`.
async fn post_sign_in_to(
    app: &Router,
    origin: &str,
    fields: &[(String, String)],
    cookie: &str,
    username: &str,
    password: &str,
) -> Response {
    let mut pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    pairs.push(("username", username));
    pairs.push(("password", password));
    post_form(
        app,
        "/auth/sign-in",
        query(&pairs),
        &[
            ("cookie", cookie),
            ("origin", origin),
            ("sec-fetch-site", "same-origin"),
        ],
    )
    .await
}

/// Signs `username` in for `client` and returns the code's redirect and
/// the session cookie (`name=value`).
async fn sign_in(
    setup: &Setup,
    client: &str,
    redirect: &str,
    challenge: &str,
    username: &str,
    password: &str,
    extra: &[(&str, &str)],
) -> (Response, String) {
    let uri = authorize_uri(client, redirect, challenge, extra);
    let (_, fields, csrf) = sign_in_page(setup, &uri).await;
    let answer = post_sign_in(setup, &fields, &csrf, username, password).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER, "{username}");
    let session = set_cookies(&answer)
        .into_iter()
        .find(|(name, _)| name.ends_with("auth_session"))
        .map(|(_, v)| cookie_pair(&v))
        .expect("a session cookie");
    (answer, session)
}

/// The code of a redirect, after checking its `state` and `iss`.
fn code_of(setup: &Setup, response: &Response, redirect: &str) -> String {
    let (base, params) = location(response);
    assert_eq!(base, redirect);
    assert_eq!(params.get("state").map(String::as_str), Some("st-123"));
    assert_eq!(
        params.get("iss").map(String::as_str),
        Some(setup.issuer.as_str())
    );
    assert!(!params.contains_key("error"), "{params:?}");
    params.get("code").expect("a code").clone()
}

async fn exchange(
    app: &Router,
    code: &str,
    redirect: &str,
    verifier: &str,
    auth: Option<(&str, &str)>,
) -> Response {
    let body = query(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect),
        ("code_verifier", verifier),
    ]);
    match auth {
        Some((id, secret)) => {
            post_form(
                app,
                "/auth/token",
                body,
                &[("authorization", &basic(id, secret))],
            )
            .await
        }
        None => post_form(app, "/auth/token", format!("{body}&client_id=spa"), &[]).await,
    }
}

async fn refresh(app: &Router, token: &str, client: (&str, &str)) -> Response {
    post_form(
        app,
        "/auth/token",
        query(&[("grant_type", "refresh_token"), ("refresh_token", token)]),
        &[("authorization", &basic(client.0, client.1))],
    )
    .await
}

async fn error_of(response: Response) -> (StatusCode, String) {
    let status = response.status();
    let body = json(response).await;
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

/// A verifier of the services (kit-auth), against this auth_service's JWKS
/// served on an ephemeral port.
async fn verifier(
    setup: &Setup,
    audience: &str,
) -> (kit_auth::Verifier, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bound");
    let addr = listener.local_addr().expect("an address");
    let app = setup.app.clone();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let config = kit_config::AuthConfig {
        issuer: setup.issuer.clone(),
        jwks_url: format!("http://{addr}/auth/jwks.json"),
        audience: Some(audience.to_owned()),
        jwks_max_age: Duration::from_secs(300),
        token_url: format!("http://{addr}/auth/token"),
        client_id: "unused".to_owned(),
        client_secret: Some("unused-secret-0123456789".to_owned()),
        client_secret_file: None,
    };
    (
        kit_auth::Verifier::new(&config, audience).expect("a verifier"),
        task,
    )
}

const WEB: (&str, &str) = ("web", WEB_SECRET);

#[tokio::test(flavor = "multi_thread")]
async fn a_person_signs_in_refreshes_revokes_and_signs_out() {
    let setup = setup().await;
    let app = &setup.app;
    let (verifier_code, challenge) = pkce();

    // authorize -> the sign-in page -> credentials -> a code.
    let (answer, session) = sign_in(
        &setup,
        "web",
        WEB_CB,
        &challenge,
        "admin",
        ADMIN_PASSWORD,
        &[],
    )
    .await;
    let code = code_of(&setup, &answer, WEB_CB);

    // The code, with its verifier, for tokens.
    let tokens = exchange(app, &code, WEB_CB, &verifier_code, Some(WEB)).await;
    assert_eq!(tokens.status(), StatusCode::OK);
    assert_eq!(tokens.headers()[header::CACHE_CONTROL], "no-store");
    let tokens = json(tokens).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(
        tokens["scope"],
        "clients:read clients:write orders:read orders:write"
    );
    assert!(tokens["expires_in"].as_u64().is_some_and(|s| s <= 300));
    let access = tokens["access_token"].as_str().expect("an access token");
    let first_refresh = tokens["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();

    // The services' verifier takes it: the person is the subject.
    let (verifier, server) = verifier(&setup, "client_service").await;
    let principal = verifier.check(access).await.expect("a valid token");
    assert_eq!(principal.subject, setup.admin_id.to_string());
    assert_eq!(principal.client_id, "web");
    assert!(principal.has_scope("clients:write") && principal.has_scope("orders:read"));

    // Refresh: rotated.
    let rotated = refresh(app, &first_refresh, WEB).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated = json(rotated).await;
    let second_refresh = rotated["refresh_token"]
        .as_str()
        .expect("a new refresh token")
        .to_owned();
    assert_ne!(second_refresh, first_refresh);
    let principal = verifier
        .check(rotated["access_token"].as_str().expect("an access token"))
        .await
        .expect("valid");
    assert_eq!(principal.subject, setup.admin_id.to_string());
    server.abort();

    // The old one again: refused, and the whole family with it.
    assert_eq!(
        error_of(refresh(app, &first_refresh, WEB).await).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".to_owned())
    );
    assert_eq!(
        error_of(refresh(app, &second_refresh, WEB).await).await.1,
        "invalid_grant",
        "the family survived the reuse of its old token"
    );

    // A second authorization while the session lives: no password, a code at once.
    let (verifier_two, challenge_two) = pkce();
    let again = get(
        app,
        &authorize_uri("web", WEB_CB, &challenge_two, &[]),
        Some(&session),
    )
    .await;
    assert_eq!(again.status(), StatusCode::FOUND);
    let code = code_of(&setup, &again, WEB_CB);
    let tokens = json(exchange(app, &code, WEB_CB, &verifier_two, Some(WEB)).await).await;
    let refresh_two = tokens["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();

    // Revocation (RFC 7009): 200, and the token is dead; unknown tokens too are 200.
    let revoked = post_form(
        app,
        "/auth/revoke",
        query(&[("token", &refresh_two)]),
        &[("authorization", &basic("web", WEB_SECRET))],
    )
    .await;
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(
        error_of(refresh(app, &refresh_two, WEB).await).await.1,
        "invalid_grant"
    );
    let unknown = post_form(
        app,
        "/auth/revoke",
        query(&[("token", "no-such-token")]),
        &[("authorization", &basic("web", WEB_SECRET))],
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::OK);
    let unauthenticated = post_form(
        app,
        "/auth/revoke",
        query(&[("token", "x")]),
        &[("authorization", &basic("web", "wrong"))],
    )
    .await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);

    // One more token in this session, then sign out: it is revoked, the
    // cookie cleared, and the browser sent to the registered address.
    let (verifier_three, challenge_three) = pkce();
    let third = get(
        app,
        &authorize_uri("web", WEB_CB, &challenge_three, &[]),
        Some(&session),
    )
    .await;
    let code = code_of(&setup, &third, WEB_CB);
    let tokens = json(exchange(app, &code, WEB_CB, &verifier_three, Some(WEB)).await).await;
    let refresh_three = tokens["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    let out = get(
        app,
        &format!(
            "/auth/logout?{}",
            query(&[
                ("client_id", "web"),
                ("post_logout_redirect_uri", WEB_BYE),
                ("state", "bye")
            ])
        ),
        Some(&session),
    )
    .await;
    assert_eq!(out.status(), StatusCode::FOUND);
    assert_eq!(
        out.headers()[header::LOCATION],
        format!("{WEB_BYE}?state=bye")
    );
    let cleared = set_cookies(&out)
        .remove("auth_session")
        .expect("the cookie cleared");
    assert!(
        cleared.starts_with("auth_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_eq!(
        error_of(refresh(app, &refresh_three, WEB).await).await.1,
        "invalid_grant"
    );
    // The old cookie signs nobody in any more.
    let after = get(
        app,
        &authorize_uri("web", WEB_CB, &challenge_three, &[]),
        Some(&session),
    )
    .await;
    assert_eq!(
        after.status(),
        StatusCode::OK,
        "the session outlived the sign-out"
    );

    // A post-logout address that is not registered: a page, no redirect.
    let elsewhere = get(
        app,
        &format!(
            "/auth/logout?{}",
            query(&[
                ("client_id", "web"),
                ("post_logout_redirect_uri", "https://evil.example/")
            ])
        ),
        None,
    )
    .await;
    assert_eq!(elsewhere.status(), StatusCode::OK);
    assert!(!elsewhere.headers().contains_key(header::LOCATION));
    assert!(text(elsewhere).await.contains("signed out"));
}

/// The headers every page of auth_service has.
fn assert_page_headers(response: &Response, what: &str) {
    let headers = response.headers();
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{what}"
    );
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    for part in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(part), "{what}: {csp} lacks {part}");
    }
    assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{what}");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{what}");
    assert_eq!(headers[header::REFERRER_POLICY], "no-referrer", "{what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_client_or_redirect_uri_is_a_page_never_a_redirect() {
    let setup = setup().await;
    let (_, challenge) = pkce();
    for (uri, what) in [
        (
            authorize_uri("nobody", WEB_CB, &challenge, &[]),
            "unknown client",
        ),
        (
            authorize_uri(
                "web",
                "http://127.0.0.1:8080/console/callback/",
                &challenge,
                &[],
            ),
            "another redirect_uri",
        ),
        (
            authorize_uri("web", OTHER_CB, &challenge, &[]),
            "another client's redirect_uri",
        ),
        (
            authorize_uri("service", WEB_CB, &challenge, &[]),
            "a client-credentials client",
        ),
        (
            format!(
                "/auth/authorize?{}",
                query(&[
                    ("response_type", "code"),
                    ("client_id", "web"),
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256")
                ])
            ),
            "no redirect_uri",
        ),
        (
            format!("/auth/authorize?{}", query(&[("redirect_uri", WEB_CB)])),
            "no client_id",
        ),
        (
            format!(
                "{}&client_id=web",
                authorize_uri("web", WEB_CB, &challenge, &[])
            ),
            "client_id twice",
        ),
    ] {
        let answer = get(&setup.app, &uri, None).await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{what}");
        assert!(!answer.headers().contains_key(header::LOCATION), "{what}");
        assert_page_headers(&answer, what);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn other_refusals_go_back_with_error_state_and_iss() {
    let setup = setup().await;
    let (_, challenge) = pkce();
    let without = |name: &str| {
        let pairs: Vec<(&str, &str)> = [
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", WEB_CB),
            ("state", "st-123"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]
        .into_iter()
        .filter(|(n, _)| *n != name)
        .collect();
        format!("/auth/authorize?{}", query(&pairs))
    };
    let plain = authorize_uri("web", WEB_CB, &challenge, &[]).replace("S256", "plain");
    for (uri, error, what) in [
        (
            without("code_challenge_method"),
            "invalid_request",
            "no PKCE method",
        ),
        (plain, "invalid_request", "plain PKCE"),
        (without("code_challenge"), "invalid_request", "no challenge"),
        (
            authorize_uri("web", WEB_CB, "too-short", &[]),
            "invalid_request",
            "a challenge that is no S256 hash",
        ),
        (
            without("response_type"),
            "invalid_request",
            "no response_type",
        ),
        (
            authorize_uri("web", WEB_CB, &challenge, &[])
                .replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
            "the implicit grant",
        ),
        (
            authorize_uri("web", WEB_CB, &challenge, &[("scope", "admin")]),
            "invalid_scope",
            "an unknown scope",
        ),
        (
            authorize_uri("web", WEB_CB, &challenge, &[("state", "again")]),
            "invalid_request",
            "a parameter twice",
        ),
    ] {
        let answer = get(&setup.app, &uri, None).await;
        assert_eq!(answer.status(), StatusCode::FOUND, "{what}");
        let (base, params) = location(&answer);
        assert_eq!(base, WEB_CB, "{what}");
        assert_eq!(
            params.get("error").map(String::as_str),
            Some(error),
            "{what}"
        );
        assert!(params.contains_key("error_description"), "{what}");
        assert!(
            params
                .get("state")
                .is_some_and(|s| s.starts_with("st-123") || s == "again"),
            "{what}"
        );
        assert_eq!(
            params.get("iss").map(String::as_str),
            Some(ISSUER),
            "{what}"
        );
        assert!(!params.contains_key("code"), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_is_bound_to_its_verifier_client_and_redirect_uri_and_used_once() {
    let setup = setup().await;
    let app = &setup.app;
    let code_for = |challenge: String| {
        let setup = &setup;
        async move {
            let (answer, _) = sign_in(
                setup,
                "web",
                WEB_CB,
                &challenge,
                "admin",
                ADMIN_PASSWORD,
                &[],
            )
            .await;
            code_of(setup, &answer, WEB_CB)
        }
    };
    // Each refusal consumes the code: the right request after it fails too.
    let (verifier, challenge) = pkce();
    let code = code_for(challenge.clone()).await;
    let (other_verifier, _) = pkce();
    assert_eq!(
        error_of(exchange(app, &code, WEB_CB, &other_verifier, Some(WEB)).await)
            .await
            .1,
        "invalid_grant"
    );
    assert_eq!(
        error_of(exchange(app, &code, WEB_CB, &verifier, Some(WEB)).await)
            .await
            .1,
        "invalid_grant"
    );

    let code = code_for(challenge.clone()).await;
    assert_eq!(
        error_of(exchange(app, &code, OTHER_CB, &verifier, Some(("other", WEB_SECRET))).await)
            .await
            .1,
        "invalid_grant",
        "another client redeemed the code"
    );
    let code = code_for(challenge.clone()).await;
    assert_eq!(
        error_of(
            exchange(
                app,
                &code,
                "http://127.0.0.1:8080/elsewhere",
                &verifier,
                Some(WEB)
            )
            .await
        )
        .await
        .1,
        "invalid_grant",
        "the code was redeemed with another redirect_uri"
    );
    let code = code_for(challenge.clone()).await;
    assert_eq!(
        error_of(exchange(app, &code, WEB_CB, &verifier, Some(("web", "wrong"))).await).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".to_owned())
    );

    // Used twice: refused, and the tokens of the first use revoked.
    let code = code_for(challenge.clone()).await;
    let first = json(exchange(app, &code, WEB_CB, &verifier, Some(WEB)).await).await;
    let refresh_token = first["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    assert_eq!(
        error_of(exchange(app, &code, WEB_CB, &verifier, Some(WEB)).await)
            .await
            .1,
        "invalid_grant"
    );
    assert_eq!(
        error_of(refresh(app, &refresh_token, WEB).await).await.1,
        "invalid_grant",
        "the tokens of a code used twice live on"
    );

    // Expired (made so in the database: 60 s are not waited for).
    let code = code_for(challenge.clone()).await;
    let conn =
        rusqlite::Connection::open(setup.dir.path().join("auth_service.db")).expect("opened");
    conn.execute(
        "UPDATE authorization_codes SET issued_at = '2000-01-01T00:00:00+00:00', expires_at = '2000-01-01T00:01:00+00:00' WHERE used_at IS NULL",
        [],
    )
    .expect("updated");
    assert_eq!(
        error_of(exchange(app, &code, WEB_CB, &verifier, Some(WEB)).await)
            .await
            .1,
        "invalid_grant"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_tokens_are_bound_to_their_client_and_die_idle_or_with_their_user() {
    let setup = setup().await;
    let app = &setup.app;
    let (verifier, challenge) = pkce();
    let tokens = |user: &'static str, password: &'static str| {
        let setup = &setup;
        let (verifier, challenge) = (verifier.clone(), challenge.clone());
        async move {
            let (answer, _) = sign_in(setup, "web", WEB_CB, &challenge, user, password, &[]).await;
            let code = code_of(setup, &answer, WEB_CB);
            json(exchange(&setup.app, &code, WEB_CB, &verifier, Some(WEB)).await).await["refresh_token"]
                .as_str()
                .expect("a refresh token")
                .to_owned()
        }
    };
    // Another client's: refused, and left alive for its own client.
    let token = tokens("admin", ADMIN_PASSWORD).await;
    assert_eq!(
        error_of(refresh(app, &token, ("other", WEB_SECRET)).await)
            .await
            .1,
        "invalid_grant"
    );
    let rotated = refresh(app, &token, WEB).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    // Asking for more than it has: invalid_scope, the token left as it was.
    let token = json(rotated).await["refresh_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let more = post_form(
        app,
        "/auth/token",
        query(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &token),
            ("scope", "clients:read admin"),
        ]),
        &[("authorization", &basic("web", WEB_SECRET))],
    )
    .await;
    assert_eq!(error_of(more).await.1, "invalid_scope");
    let narrowed = post_form(
        app,
        "/auth/token",
        query(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &token),
            ("scope", "orders:read"),
        ]),
        &[("authorization", &basic("web", WEB_SECRET))],
    )
    .await;
    assert_eq!(narrowed.status(), StatusCode::OK);
    assert_eq!(json(narrowed).await["scope"], "orders:read");

    // Idle for longer than its lifetime (made so in the database).
    let token = tokens("admin", ADMIN_PASSWORD).await;
    let conn =
        rusqlite::Connection::open(setup.dir.path().join("auth_service.db")).expect("opened");
    conn.execute(
        "UPDATE refresh_tokens SET issued_at = '2000-01-01T00:00:00+00:00', expires_at = '2000-01-01T01:00:00+00:00' WHERE used_at IS NULL AND revoked_at IS NULL",
        [],
    )
    .expect("updated");
    assert_eq!(
        error_of(refresh(app, &token, WEB).await).await.1,
        "invalid_grant"
    );

    // A disabled user's refresh fails at once; its session signs it in no more.
    let (answer, session) = sign_in(
        &setup,
        "web",
        WEB_CB,
        &challenge,
        "viewer",
        VIEWER_PASSWORD,
        &[],
    )
    .await;
    let code = code_of(&setup, &answer, WEB_CB);
    let token =
        json(exchange(app, &code, WEB_CB, &verifier, Some(WEB)).await).await["refresh_token"]
            .as_str()
            .expect("a token")
            .to_owned();
    setup
        .users
        .set_disabled("viewer", true)
        .await
        .expect("no failure")
        .expect("viewer exists");
    assert_eq!(
        error_of(refresh(app, &token, WEB).await).await.1,
        "invalid_grant"
    );
    let again = get(
        app,
        &authorize_uri("web", WEB_CB, &challenge, &[]),
        Some(&session),
    )
    .await;
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "a disabled user's session still signs in"
    );
    setup
        .users
        .set_disabled("viewer", false)
        .await
        .expect("no failure");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_gets_the_read_scopes_only() {
    let setup = setup().await;
    let (verifier, challenge) = pkce();
    let (answer, _) = sign_in(
        &setup,
        "web",
        WEB_CB,
        &challenge,
        "viewer",
        VIEWER_PASSWORD,
        &[],
    )
    .await;
    let code = code_of(&setup, &answer, WEB_CB);
    let tokens = json(exchange(&setup.app, &code, WEB_CB, &verifier, Some(WEB)).await).await;
    assert_eq!(tokens["scope"], "clients:read orders:read");
    let (verifier_check, server) = verifier_for(&setup).await;
    let principal = verifier_check
        .check(tokens["access_token"].as_str().expect("a token"))
        .await
        .expect("valid");
    assert_eq!(principal.subject, setup.viewer_id.to_string());
    assert!(!principal.has_scope("clients:write"));
    server.abort();

    // Asking for a read and a write scope: the read scope only.
    let (answer, session) = sign_in(
        &setup,
        "web",
        WEB_CB,
        &challenge,
        "viewer",
        VIEWER_PASSWORD,
        &[("scope", "clients:read clients:write")],
    )
    .await;
    let code = code_of(&setup, &answer, WEB_CB);
    let tokens = json(exchange(&setup.app, &code, WEB_CB, &verifier, Some(WEB)).await).await;
    assert_eq!(tokens["scope"], "clients:read");

    // Asking for write scopes only: invalid_scope, back at the client.
    let answer = get(
        &setup.app,
        &authorize_uri(
            "web",
            WEB_CB,
            &challenge,
            &[("scope", "clients:write orders:write")],
        ),
        Some(&session),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::FOUND);
    let (base, params) = location(&answer);
    assert_eq!(base, WEB_CB);
    assert_eq!(
        params.get("error").map(String::as_str),
        Some("invalid_scope")
    );
    assert!(params.contains_key("error_description"));
    assert_eq!(params.get("state").map(String::as_str), Some("st-123"));
    assert_eq!(params.get("iss").map(String::as_str), Some(ISSUER));
    assert!(!params.contains_key("code"));
}

async fn verifier_for(setup: &Setup) -> (kit_auth::Verifier, tokio::task::JoinHandle<()>) {
    verifier(setup, "client_service").await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_public_client_redeems_with_its_id_and_verifier_only() {
    let setup = setup().await;
    let (verifier, challenge) = pkce();
    let redirect = "https://spa.example/cb";
    let (answer, _) = sign_in(
        &setup,
        "spa",
        redirect,
        &challenge,
        "admin",
        ADMIN_PASSWORD,
        &[],
    )
    .await;
    let code = code_of(&setup, &answer, redirect);
    let tokens = exchange(&setup.app, &code, redirect, &verifier, None).await;
    assert_eq!(tokens.status(), StatusCode::OK);
    let tokens = json(tokens).await;
    // The client's scopes, which the admin has all of; no refresh grant registered.
    assert_eq!(tokens["scope"], "clients:read orders:read");
    assert!(tokens.get("refresh_token").is_none());
    // A public client may not use client credentials.
    let cc = post_form(
        &setup.app,
        "/auth/token",
        "grant_type=client_credentials&client_id=spa".into(),
        &[],
    )
    .await;
    assert_eq!(error_of(cc).await.1, "unauthorized_client");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sign_in_form_refuses_a_missing_csrf_token_and_a_foreign_origin() {
    let setup = setup().await;
    let (_, challenge) = pkce();
    let uri = authorize_uri("web", WEB_CB, &challenge, &[]);
    let (_, fields, csrf) = sign_in_page(&setup, &uri).await;
    let without_token: Vec<(String, String)> = fields
        .iter()
        .filter(|(n, _)| n != "csrf")
        .cloned()
        .collect();
    let with_other_token: Vec<(String, String)> = fields
        .iter()
        .map(|(n, v)| {
            if n == "csrf" {
                (n.clone(), new_secret())
            } else {
                (n.clone(), v.clone())
            }
        })
        .collect();
    let form = |fields: &[(String, String)]| {
        let mut pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        pairs.push(("username", "admin"));
        pairs.push(("password", ADMIN_PASSWORD));
        query(&pairs)
    };
    for (body, headers, what) in [
        (
            form(&without_token),
            vec![("cookie", csrf.as_str()), ("origin", ORIGIN)],
            "no token in the form",
        ),
        (
            form(&with_other_token),
            vec![("cookie", csrf.as_str()), ("origin", ORIGIN)],
            "another token",
        ),
        (form(&fields), vec![("origin", ORIGIN)], "no CSRF cookie"),
        (
            form(&fields),
            vec![
                ("cookie", csrf.as_str()),
                ("origin", "https://evil.example"),
            ],
            "a foreign Origin",
        ),
        (
            form(&fields),
            vec![("cookie", csrf.as_str()), ("origin", "null")],
            "an opaque Origin",
        ),
        (
            form(&fields),
            vec![("cookie", csrf.as_str()), ("sec-fetch-site", "cross-site")],
            "a cross-site fetch",
        ),
        (
            form(&fields),
            vec![("cookie", csrf.as_str()), ("sec-fetch-site", "same-site")],
            "a same-site fetch",
        ),
    ] {
        let answer = post_form(&setup.app, "/auth/sign-in", body, &headers).await;
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{what}");
        assert!(!answer.headers().contains_key(header::LOCATION), "{what}");
        assert!(!set_cookies(&answer).contains_key("auth_session"), "{what}");
        assert_page_headers(&answer, what);
    }
    // The same form, rightly sent, signs in.
    let answer = post_form(
        &setup.app,
        "/auth/sign-in",
        form(&fields),
        &[
            ("cookie", &csrf),
            ("origin", ORIGIN),
            ("sec-fetch-site", "same-origin"),
        ],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_user_and_a_wrong_password_get_the_same_page() {
    let setup = setup().await;
    let (_, challenge) = pkce();
    let uri = authorize_uri("web", WEB_CB, &challenge, &[]);
    let (_, fields, csrf) = sign_in_page(&setup, &uri).await;
    let mut bodies = Vec::new();
    for (user, password) in [("admin", "wrong password!"), ("nobody", ADMIN_PASSWORD)] {
        let answer = post_sign_in(&setup, &fields, &csrf, user, password).await;
        assert_eq!(answer.status(), StatusCode::OK, "{user}");
        assert!(!set_cookies(&answer).contains_key("auth_session"));
        assert_page_headers(&answer, user);
        let body = text(answer).await;
        assert!(
            body.contains("The user name or the password is wrong."),
            "{body}"
        );
        // The form again, with the same request.
        assert_eq!(hidden_fields(&body), fields);
        bodies.push(body.replace(&format!("value=\"{user}\""), "value=\"…\""));
    }
    assert_eq!(bodies[0], bodies[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_has_its_headers_and_escapes_what_it_is_sent() {
    let setup = setup().await;
    let (_, challenge) = pkce();
    let evil = "\"><script>alert(1)</script>";
    let uri = authorize_uri("web", WEB_CB, &challenge, &[])
        .replace("state=st-123", &query(&[("state", evil)]));
    let (page, fields, csrf) = sign_in_page(&setup, &uri).await;
    assert_page_headers(&page, "the sign-in page");
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains(&format!("form-action 'self' {ORIGIN};")),
        "{csp}"
    );
    let html = text(page).await;
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(html.contains("name=\"username\"") && html.contains("name=\"password\""));
    // And it comes back whole in the redirect.
    let answer = post_sign_in(&setup, &fields, &csrf, "nobody<b>", "x").await;
    let html = text(answer).await;
    assert!(html.contains("value=\"nobody&lt;b&gt;\""), "{html}");
    assert!(!html.contains("nobody<b>"));
    let answer = post_sign_in(&setup, &fields, &csrf, "admin", ADMIN_PASSWORD).await;
    let (_, params) = location(&answer);
    assert_eq!(params.get("state").map(String::as_str), Some(evil));

    let error = get(
        &setup.app,
        &authorize_uri("nobody", WEB_CB, &challenge, &[]),
        None,
    )
    .await;
    assert_page_headers(&error, "the error page");
    let out = get(&setup.app, "/auth/logout", None).await;
    assert_page_headers(&out, "the signed-out page");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cookies_are_http_only_lax_and_host_prefixed_over_https() {
    // Over plain HTTP (development): no prefix, kept to /auth.
    let setup = setup().await;
    let (_, challenge) = pkce();
    let uri = authorize_uri("web", WEB_CB, &challenge, &[]);
    let page = get(&setup.app, &uri, None).await;
    let csrf = set_cookies(&page)
        .remove("auth_csrf")
        .expect("a CSRF cookie");
    for attribute in ["Path=/auth", "HttpOnly", "SameSite=Lax"] {
        assert!(csrf.contains(attribute), "{csrf}");
    }
    assert!(!csrf.contains("Secure"), "{csrf}");
    let (answer, _) = sign_in(
        &setup,
        "web",
        WEB_CB,
        &challenge,
        "admin",
        ADMIN_PASSWORD,
        &[],
    )
    .await;
    let session = set_cookies(&answer)
        .remove("auth_session")
        .expect("a session cookie");
    for attribute in ["Path=/auth", "HttpOnly", "SameSite=Lax", "Max-Age="] {
        assert!(session.contains(attribute), "{session}");
    }
    // A new session id at every sign-in.
    let (again, _) = sign_in(
        &setup,
        "web",
        WEB_CB,
        &challenge,
        "admin",
        ADMIN_PASSWORD,
        &[],
    )
    .await;
    assert_ne!(
        cookie_pair(&set_cookies(&again)["auth_session"]),
        cookie_pair(&session)
    );

    // Over HTTPS: __Host-, Secure, Path=/.
    let setup = setup_with("https://auth.example/auth").await;
    let page = get(&setup.app, &uri, None).await;
    let csrf = set_cookies(&page)
        .remove("__Host-auth_csrf")
        .expect("a __Host- CSRF cookie");
    assert!(
        csrf.contains("; Path=/;") && csrf.contains("Secure"),
        "{csrf}"
    );
    let (answer, _) = sign_in(
        &setup,
        "web",
        WEB_CB,
        &challenge,
        "admin",
        ADMIN_PASSWORD,
        &[],
    )
    .await;
    let session = set_cookies(&answer)
        .remove("__Host-auth_session")
        .expect("a __Host- session cookie");
    for attribute in ["; Path=/;", "HttpOnly", "SameSite=Lax", "Secure"] {
        assert!(session.contains(attribute), "{session}");
    }
    let (_, params) = location(&answer);
    assert_eq!(
        params.get("iss").map(String::as_str),
        Some("https://auth.example/auth")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metadata_lists_the_endpoints_and_what_they_take() {
    let setup = setup().await;
    let metadata = json(
        get(
            &setup.app,
            "/auth/.well-known/oauth-authorization-server",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        metadata["authorization_endpoint"],
        format!("{ISSUER}/authorize")
    );
    assert_eq!(metadata["token_endpoint"], format!("{ISSUER}/token"));
    assert_eq!(metadata["revocation_endpoint"], format!("{ISSUER}/revoke"));
    assert_eq!(
        metadata["grant_types_supported"],
        serde_json::json!(["client_credentials", "authorization_code", "refresh_token"])
    );
    assert_eq!(
        metadata["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"],
        true
    );
    assert!(
        metadata["token_endpoint_auth_methods_supported"]
            .as_array()
            .is_some_and(|m| m.contains(&serde_json::json!("client_secret_basic")))
    );
}

/// Every statement of the grants store prepares on SQLite.
#[tokio::test(flavor = "multi_thread")]
async fn every_grant_statement_prepares_on_sqlite() {
    let setup = setup().await;
    let conn =
        rusqlite::Connection::open(setup.dir.path().join("auth_service.db")).expect("opened");
    for statement in auth_service::grants::statements() {
        if auth_service::grants::is_postgres_only(&statement) {
            continue;
        }
        conn.prepare(statement.sql())
            .unwrap_or_else(|e| panic!("{}: {e}", statement.sql()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_name_is_locked_after_repeated_failures() {
    let setup = setup().await;
    let (_, challenge) = pkce();
    let uri = authorize_uri("web", WEB_CB, &challenge, &[]);
    let (_, fields, csrf) = sign_in_page(&setup, &uri).await;
    for _ in 0..auth_service::attempts::MAX_FAILURES {
        let answer = post_sign_in(&setup, &fields, &csrf, "admin", "wrong password!").await;
        assert_eq!(answer.status(), StatusCode::OK);
    }
    // Now even the right password is refused, with a page that says why.
    let answer = post_sign_in(&setup, &fields, &csrf, "admin", ADMIN_PASSWORD).await;
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = answer.headers()[header::RETRY_AFTER]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    let lock = auth_service::attempts::LOCK.as_secs();
    assert!((lock - 60..=lock).contains(&retry_after), "{retry_after}");
    assert!(!answer.headers().contains_key(header::LOCATION));
    assert!(!set_cookies(&answer).contains_key("auth_session"));
    assert_page_headers(&answer, "the locked page");
    assert!(text(answer).await.contains("Too many failed sign-ins"));
    // Another name is not locked; an unknown name locks the same way.
    let answer = post_sign_in(&setup, &fields, &csrf, "viewer", VIEWER_PASSWORD).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    for _ in 0..auth_service::attempts::MAX_FAILURES {
        post_sign_in(&setup, &fields, &csrf, "nobody", "wrong password!").await;
    }
    let answer = post_sign_in(&setup, &fields, &csrf, "nobody", "wrong password!").await;
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_passwords_sent_at_once_check_no_more_passwords_than_the_lock_allows() {
    let setup = setup().await;
    let (_, challenge) = pkce();
    let uri = authorize_uri("web", WEB_CB, &challenge, &[]);
    let (_, fields, csrf) = sign_in_page(&setup, &uri).await;
    let max = auth_service::attempts::MAX_FAILURES as usize;
    let mut answers = tokio::task::JoinSet::new();
    for _ in 0..2 * max {
        let (app, origin, fields, csrf) = (
            setup.app.clone(),
            setup.origin.clone(),
            fields.clone(),
            csrf.clone(),
        );
        answers.spawn(async move {
            post_sign_in_to(&app, &origin, &fields, &csrf, "admin", "wrong password!")
                .await
                .status()
        });
    }
    let statuses = answers.join_all().await;
    let checked = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((checked, refused), (max, max), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_is_checked_only_in_a_hashing_turn() {
    let setup = setup().await;
    let (_, challenge) = pkce();
    let uri = authorize_uri("web", WEB_CB, &challenge, &[]);
    let (_, fields, csrf) = sign_in_page(&setup, &uri).await;
    let every_turn = u32::try_from(setup.hashing.available_permits()).expect("a few");
    let taken = setup
        .hashing
        .clone()
        .acquire_many_owned(every_turn)
        .await
        .expect("the turns");
    let waiting = tokio::time::timeout(
        Duration::from_millis(500),
        post_sign_in(&setup, &fields, &csrf, "admin", ADMIN_PASSWORD),
    )
    .await;
    assert!(
        waiting.is_err(),
        "a password was checked while every hashing turn was taken"
    );
    drop(taken);
    let answer = post_sign_in(&setup, &fields, &csrf, "admin", ADMIN_PASSWORD).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
}

/// `error=server_error` back at the client, with `state` and `iss`.
fn assert_server_error_back(response: &Response, status: StatusCode, what: &str) {
    assert_eq!(response.status(), status, "{what}");
    let (base, params) = location(response);
    assert_eq!(base, WEB_CB, "{what}");
    assert_eq!(
        params.get("error").map(String::as_str),
        Some("server_error"),
        "{what}"
    );
    assert!(params.contains_key("error_description"), "{what}");
    assert_eq!(
        params.get("state").map(String::as_str),
        Some("st-123"),
        "{what}"
    );
    assert_eq!(
        params.get("iss").map(String::as_str),
        Some(ISSUER),
        "{what}"
    );
    assert!(!params.contains_key("code"), "{what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_failure_after_the_client_is_checked_goes_back_as_server_error() {
    let setup = setup().await;
    let (_, challenge) = pkce();
    let uri = authorize_uri("web", WEB_CB, &challenge, &[]);
    let (_, fields, csrf) = sign_in_page(&setup, &uri).await;
    rusqlite::Connection::open(setup.dir.path().join("auth_service.db"))
        .expect("opened")
        .execute_batch("DROP TABLE sign_in_sessions")
        .expect("dropped");

    let authorize = get(&setup.app, &uri, Some("auth_session=some-session")).await;
    assert_server_error_back(&authorize, StatusCode::FOUND, "reading the session");
    let sign_in = post_sign_in(&setup, &fields, &csrf, "admin", ADMIN_PASSWORD).await;
    assert_server_error_back(&sign_in, StatusCode::SEE_OTHER, "starting a session");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_ends_the_session_it_replaces() {
    let setup = setup().await;
    let (_, challenge) = pkce();
    let (_, old_session) = sign_in(
        &setup,
        "web",
        WEB_CB,
        &challenge,
        "viewer",
        VIEWER_PASSWORD,
        &[],
    )
    .await;
    // A form shown before (or in another tab), sent with the old session's cookie.
    let uri = authorize_uri("web", WEB_CB, &challenge, &[]);
    let (_, fields, csrf) = sign_in_page(&setup, &uri).await;
    let answer = post_sign_in(
        &setup,
        &fields,
        &format!("{csrf}; {old_session}"),
        "admin",
        ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let new_session = set_cookies(&answer)
        .remove("auth_session")
        .map(|v| cookie_pair(&v))
        .expect("a session cookie");
    assert_ne!(new_session, old_session);

    let with_old = get(&setup.app, &uri, Some(&old_session)).await;
    assert_eq!(
        with_old.status(),
        StatusCode::OK,
        "the replaced session still skips the password"
    );
    let with_new = get(&setup.app, &uri, Some(&new_session)).await;
    assert_eq!(with_new.status(), StatusCode::FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_csrf_cookie_is_set_again_with_each_form() {
    let setup = setup().await;
    let (_, challenge) = pkce();
    let uri = authorize_uri("web", WEB_CB, &challenge, &[]);
    let (_, _, csrf) = sign_in_page(&setup, &uri).await;
    let again = get(&setup.app, &uri, Some(&csrf)).await;
    let renewed = set_cookies(&again)
        .remove("auth_csrf")
        .expect("the CSRF cookie set again");
    assert_eq!(cookie_pair(&renewed), csrf, "another token");
    assert!(renewed.contains("Max-Age=3600"), "{renewed}");
    let html = text(again).await;
    let (_, token) = csrf.split_once('=').expect("name=value");
    assert!(
        hidden_fields(&html).contains(&("csrf".to_owned(), token.to_owned())),
        "{html}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_posted_sign_out_is_answered_see_other() {
    let setup = setup().await;
    let (_, challenge) = pkce();
    let (_, session) = sign_in(
        &setup,
        "web",
        WEB_CB,
        &challenge,
        "admin",
        ADMIN_PASSWORD,
        &[],
    )
    .await;
    let out = post_form(
        &setup.app,
        "/auth/logout",
        query(&[
            ("client_id", "web"),
            ("post_logout_redirect_uri", WEB_BYE),
            ("state", "bye"),
        ]),
        &[("cookie", &session)],
    )
    .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        out.headers()[header::LOCATION],
        format!("{WEB_BYE}?state=bye")
    );
    assert!(set_cookies(&out).contains_key("auth_session"));
    let after = get(
        &setup.app,
        &authorize_uri("web", WEB_CB, &challenge, &[]),
        Some(&session),
    )
    .await;
    assert_eq!(
        after.status(),
        StatusCode::OK,
        "the session outlived the sign-out"
    );
}
