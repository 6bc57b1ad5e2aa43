//! People sign in, through the gateway, as a browser-less client would: the
//! authorization code grant with PKCE at auth_service (the development web
//! client `dev-web` and the development users that `auth_service init`
//! made), the token used on the API, refresh-token rotation and reuse,
//! sign-out; and the refusals that must never redirect. The client keeps
//! its cookies itself and follows no redirect: every step is checked.

use std::{collections::HashMap, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::{StatusCode, header};
use serde_json::Value;
use sha2::{Digest, Sha256};
use test_kit::{Options, Stack, env_file_value, json};

/// The development web client and users of a stack (`dev-clients.env`,
/// `dev-users.env`).
struct Dev {
    client_id: String,
    secret: String,
    redirect_uri: String,
    after_logout: String,
    users: HashMap<&'static str, String>,
}

impl Dev {
    fn of(stack: &Stack) -> Self {
        let clients = stack.auth_dir.join("dev-clients.env");
        let users_file = stack.auth_dir.join("dev-users.env");
        let user = |prefix: &str| {
            assert_eq!(
                env_file_value(&users_file, &format!("{prefix}_USER")),
                prefix.to_lowercase()
            );
            env_file_value(&users_file, &format!("{prefix}_PASSWORD"))
        };
        Self {
            client_id: env_file_value(&clients, "WEB_CLIENT_ID"),
            secret: env_file_value(&clients, "WEB_CLIENT_SECRET"),
            redirect_uri: env_file_value(&clients, "WEB_REDIRECT_URI"),
            after_logout: env_file_value(&clients, "WEB_POST_LOGOUT_REDIRECT_URI"),
            users: HashMap::from([("admin", user("ADMIN")), ("viewer", user("VIEWER"))]),
        }
    }
}

/// An HTTP client that follows no redirect and keeps no cookie.
fn browserless() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A PKCE pair: the verifier (64 characters) and its S256 challenge.
fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn authorize_url(
    stack: &Stack,
    dev: &Dev,
    redirect_uri: &str,
    challenge: &str,
    method: &str,
) -> String {
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", dev.client_id.as_str()),
        ("redirect_uri", redirect_uri),
        ("state", "st-e2e"),
        ("code_challenge", challenge),
        ("code_challenge_method", method),
    ])
    .unwrap();
    format!("{}/auth/authorize?{query}", stack.gateway)
}

/// `name=value` of the cookie `name` (or `…name`) a response sets.
fn cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .find(|pair| {
            pair.split('=')
                .next()
                .is_some_and(|cookie| cookie.ends_with(name))
        })
}

/// The base and parameters of a redirect's Location.
fn location(response: &reqwest::Response) -> (String, HashMap<String, String>) {
    let location = response
        .headers()
        .get(header::LOCATION)
        .unwrap_or_else(|| panic!("no Location: {response:?}"))
        .to_str()
        .unwrap();
    let (base, query) = location.split_once('?').unwrap_or((location, ""));
    let params = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .unwrap()
        .into_iter()
        .collect();
    (base.to_owned(), params)
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

/// Every Content-Security-Policy header of a response.
fn policies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(header::CONTENT_SECURITY_POLICY)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// authorize -> the sign-in form -> its POST with the CSRF token, from the
/// gateway's origin: the redirect with a code (checked: state, iss), and
/// the session cookie.
async fn sign_in(
    stack: &Stack,
    http: &reqwest::Client,
    dev: &Dev,
    user: &str,
    challenge: &str,
) -> (String, String) {
    let form = http
        .get(authorize_url(
            stack,
            dev,
            &dev.redirect_uri,
            challenge,
            "S256",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK, "{form:?}");
    // auth_service's own policy, alone: the gateway's stricter one would
    // forbid the page's style and its form's action.
    let csp = policies(&form);
    assert_eq!(csp.len(), 1, "one Content-Security-Policy: {csp:?}");
    assert!(
        csp[0].contains("style-src 'sha256-") && csp[0].contains("form-action 'self'"),
        "{csp:?}"
    );
    // The other security headers once each (the gateway's).
    for name in [
        "x-frame-options",
        "x-content-type-options",
        "referrer-policy",
        "cache-control",
    ] {
        assert_eq!(
            form.headers().get_all(name).iter().count(),
            1,
            "{name}: {form:?}"
        );
    }
    assert_eq!(form.headers()["x-frame-options"], "DENY");
    assert_eq!(form.headers()[header::CACHE_CONTROL], "no-store");
    let csrf = cookie(&form, "auth_csrf").expect("a CSRF cookie");
    let html = form.text().await.unwrap();
    let mut fields = hidden_fields(&html);
    assert!(!fields.is_empty(), "no hidden fields in:\n{html}");
    fields.push(("username".into(), user.into()));
    fields.push(("password".into(), dev.users[user].clone()));

    let answer = http
        .post(format!("{}/auth/sign-in", stack.gateway))
        .header(header::COOKIE, &csrf)
        .header(header::ORIGIN, &stack.gateway)
        .header("sec-fetch-site", "same-origin")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert!(
        answer.status() == StatusCode::SEE_OTHER || answer.status() == StatusCode::FOUND,
        "{user}: {answer:?}"
    );
    let session = cookie(&answer, "auth_session").expect("a session cookie");
    (code_of(stack, dev, &answer), session)
}

/// The code of a redirect to the client, after checking state and iss.
fn code_of(stack: &Stack, dev: &Dev, answer: &reqwest::Response) -> String {
    let (base, params) = location(answer);
    assert_eq!(base, dev.redirect_uri);
    assert_eq!(params["state"], "st-e2e");
    assert_eq!(params["iss"], format!("{}/auth", stack.gateway));
    assert!(!params.contains_key("error"), "{params:?}");
    params["code"].clone()
}

/// POST /auth/token as the web client: the status and the JSON body.
async fn token_request(
    stack: &Stack,
    http: &reqwest::Client,
    dev: &Dev,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let response = http
        .post(format!("{}/auth/token", stack.gateway))
        .basic_auth(&dev.client_id, Some(&dev.secret))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// The code, with its verifier, for tokens: (access, refresh).
async fn exchange(
    stack: &Stack,
    http: &reqwest::Client,
    dev: &Dev,
    code: &str,
    verifier: &str,
) -> (String, String) {
    let (status, body) = token_request(
        stack,
        http,
        dev,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &dev.redirect_uri),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    tokens_of(&body)
}

fn tokens_of(body: &Value) -> (String, String) {
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn refresh(
    stack: &Stack,
    http: &reqwest::Client,
    dev: &Dev,
    token: &str,
) -> (StatusCode, Value) {
    token_request(
        stack,
        http,
        dev,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

/// GET and POST /client/ with `token`: the two statuses.
async fn read_and_write(stack: &Stack, token: &str) -> (StatusCode, StatusCode) {
    let read = stack
        .anonymous
        .get(stack.url("/client/"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status();
    let write = stack
        .anonymous
        .post(stack.url("/client/"))
        .bearer_auth(token)
        .json(&json!({"name": "Signed In", "card_number": format!("SI-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]), "card_issued_on": "2021-06-15"}))
        .send()
        .await
        .unwrap()
        .status();
    (read, write)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_signs_in_through_the_gateway_uses_the_api_refreshes_and_signs_out() {
    let stack = Stack::start().await;
    let dev = Dev::of(&stack);
    let http = browserless();

    // The admin signs in; the code and its verifier make tokens.
    let (verifier, challenge) = pkce();
    let (code, session) = sign_in(&stack, &http, &dev, "admin", &challenge).await;
    let (access, first_refresh) = exchange(&stack, &http, &dev, &code, &verifier).await;
    assert_eq!(
        read_and_write(&stack, &access).await,
        (StatusCode::OK, StatusCode::CREATED),
        "the admin reads and writes"
    );
    // Refresh: a new pair, the old refresh token replaced.
    let (status, body) = refresh(&stack, &http, &dev, &first_refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (access_two, second_refresh) = tokens_of(&body);
    assert_ne!(second_refresh, first_refresh);
    assert_eq!(read_and_write(&stack, &access_two).await.0, StatusCode::OK);
    // The old one again: refused, and the family with it.
    let (status, body) = refresh(&stack, &http, &dev, &first_refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, body) = refresh(&stack, &http, &dev, &second_refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "the family outlived the reuse of its old token"
    );
    // A code is good once (and a second try revokes what it gave).
    let (status, body) = token_request(
        &stack,
        &http,
        &dev,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &dev.redirect_uri),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // While the session lives, authorizing asks for no password.
    let (verifier_two, challenge_two) = pkce();
    let again = http
        .get(authorize_url(
            &stack,
            &dev,
            &dev.redirect_uri,
            &challenge_two,
            "S256",
        ))
        .header(header::COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::FOUND, "{again:?}");
    let code = code_of(&stack, &dev, &again);
    let (_, session_refresh) = exchange(&stack, &http, &dev, &code, &verifier_two).await;

    // Sign-out: back to the registered address, the cookie cleared, the
    // session's refresh tokens revoked.
    let query = serde_urlencoded::to_string([
        ("client_id", dev.client_id.as_str()),
        ("post_logout_redirect_uri", dev.after_logout.as_str()),
        ("state", "bye"),
    ])
    .unwrap();
    let out = http
        .get(format!("{}/auth/logout?{query}", stack.gateway))
        .header(header::COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::FOUND, "{out:?}");
    assert_eq!(
        out.headers()[header::LOCATION],
        format!("{}?state=bye", dev.after_logout).as_str()
    );
    assert_eq!(
        cookie(&out, "auth_session").as_deref(),
        Some("auth_session=")
    );
    let (status, body) = refresh(&stack, &http, &dev, &session_refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "a refresh token outlived the sign-out"
    );
    // The old cookie signs nobody in: the form again.
    let (_, challenge_three) = pkce();
    let after = http
        .get(authorize_url(
            &stack,
            &dev,
            &dev.redirect_uri,
            &challenge_three,
            "S256",
        ))
        .header(header::COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.status(),
        StatusCode::OK,
        "the session outlived the sign-out"
    );

    // The viewer reads only: a write is 403.
    let (verifier, challenge) = pkce();
    let (code, _) = sign_in(&stack, &http, &dev, "viewer", &challenge).await;
    let (access, _) = exchange(&stack, &http, &dev, &code, &verifier).await;
    assert_eq!(
        read_and_write(&stack, &access).await,
        (StatusCode::OK, StatusCode::FORBIDDEN),
        "the viewer reads, and may not write"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_redirect_uri_is_a_page_and_plain_pkce_is_refused() {
    let stack = Stack::start().await;
    let dev = Dev::of(&stack);
    let http = browserless();
    let (_, challenge) = pkce();

    // Not registered: an error page, never a redirect (no open redirector).
    let page = http
        .get(authorize_url(
            &stack,
            &dev,
            "https://evil.example/cb",
            &challenge,
            "S256",
        ))
        .send()
        .await
        .unwrap();
    assert!(page.status().is_client_error(), "{page:?}");
    assert!(page.headers().get(header::LOCATION).is_none(), "{page:?}");
    assert!(
        page.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{page:?}"
    );
    assert_eq!(policies(&page).len(), 1, "{page:?}");
    assert!(!page.text().await.unwrap().contains("evil.example/cb?"));

    // PKCE's plain method: refused, back at the (registered) client with an
    // error and no code.
    let plain = http
        .get(authorize_url(
            &stack,
            &dev,
            &dev.redirect_uri,
            &challenge,
            "plain",
        ))
        .send()
        .await
        .unwrap();
    let (base, params) = location(&plain);
    assert_eq!(base, dev.redirect_uri);
    assert_eq!(params["error"], "invalid_request", "{params:?}");
    assert_eq!(params["state"], "st-e2e");
    assert!(!params.contains_key("code"), "{params:?}");

    // The gateway's own policy stays on everything else, e.g. the API.
    let api = stack
        .anonymous
        .get(stack.url("/client/"))
        .bearer_auth(&stack.token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        policies(&api),
        ["default-src 'none'; frame-ancestors 'none'"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_limits_the_sign_in_form_per_address() {
    let stack = Stack::start_with(Options {
        gateway_env: vec![
            ("GATEWAY_SIGN_IN_RATE".into(), "1r/m".into()),
            ("GATEWAY_SIGN_IN_BURST".into(), "2".into()),
        ],
        ..Options::default()
    })
    .await;
    let http = browserless();
    let post = || {
        http.post(format!("{}/auth/sign-in", stack.gateway))
            .header(header::ORIGIN, &stack.gateway)
            .form(&[("username", "admin"), ("password", "not the password")])
            .send()
    };
    // The first three (one, and the burst of two) reach auth_service, which
    // refuses the incomplete form itself; the next is the gateway's 429.
    for _ in 0..3 {
        let answer = post().await.unwrap();
        assert_ne!(answer.status(), StatusCode::TOO_MANY_REQUESTS, "{answer:?}");
    }
    let limited = post().await.unwrap();
    assert_eq!(
        limited.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "{limited:?}"
    );
    assert!(limited.headers().get(header::RETRY_AFTER).is_some());
    // A person at the form reads a page, not problem+json.
    assert!(
        limited.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{limited:?}"
    );
    assert!(
        limited
            .text()
            .await
            .unwrap()
            .contains("<h1>Too many sign-in attempts</h1>")
    );
    // Showing the form is not limited by it.
    let dev = Dev::of(&stack);
    let (_, challenge) = pkce();
    let form = http
        .get(authorize_url(
            &stack,
            &dev,
            &dev.redirect_uri,
            &challenge,
            "S256",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK);
}

/// The whole flow driven by a real OAuth 2.0 client library (the `oauth2`
/// crate), as a third party's application would drive it: the authorize
/// URL it builds (PKCE S256, its own CSRF state), the sign-in form filled
/// as a browser would (the hidden fields and the CSRF cookie, the Origin),
/// the code from the redirect, the library's code exchange with the
/// verifier, the API with the person's token, the library's refresh
/// (rotation: a new refresh token), its revocation (RFC 7009), and the
/// revoked refresh token refused.
#[tokio::test(flavor = "multi_thread")]
async fn an_oauth2_client_library_drives_the_whole_flow() {
    use oauth2::{
        AsyncHttpClient, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
        PkceCodeChallenge, RedirectUrl, RequestTokenError, RevocationUrl, Scope,
        StandardRevocableToken, TokenResponse, TokenUrl, basic::BasicClient,
        basic::BasicErrorResponseType,
    };

    let stack = Stack::start().await;
    let dev = Dev::of(&stack);
    let http = browserless();
    let endpoint = |path: &str| format!("{}/auth/{path}", stack.gateway);
    let client = BasicClient::new(ClientId::new(dev.client_id.clone()))
        .set_client_secret(ClientSecret::new(dev.secret.clone()))
        .set_auth_uri(AuthUrl::new(endpoint("authorize")).unwrap())
        .set_token_uri(TokenUrl::new(endpoint("token")).unwrap())
        // RFC 7009 (2): the client must check that the revocation endpoint is
        // HTTPS, and the library does. The test stack speaks plain HTTP (TLS
        // ends in front of the gateway in a deployment): the library gets
        // the https address, and `plain` below carries it over HTTP.
        .set_revocation_url(
            RevocationUrl::new(endpoint("revoke").replacen("http://", "https://", 1)).unwrap(),
        )
        .set_redirect_uri(RedirectUrl::new(dev.redirect_uri.clone()).unwrap());

    // authorize: the library's URL, with PKCE S256 and a random state.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("clients:read".into()))
        .add_scope(Scope::new("clients:write".into()))
        .set_pkce_challenge(challenge)
        .url();
    assert!(
        authorize.as_str().contains("code_challenge_method=S256"),
        "{authorize}"
    );

    // The sign-in form, as a browser shows it and submits it.
    let form = http.get(authorize.as_str()).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK, "{form:?}");
    let csrf = cookie(&form, "auth_csrf").expect("a CSRF cookie");
    let html = form.text().await.unwrap();
    assert!(
        html.contains("name=\"username\"") && html.contains("name=\"password\""),
        "the fields password managers expect:\n{html}"
    );
    let mut fields = hidden_fields(&html);
    assert!(
        fields.iter().any(|(name, _)| name == "csrf"),
        "no CSRF token in:\n{html}"
    );
    fields.push(("username".into(), "admin".into()));
    fields.push(("password".into(), dev.users["admin"].clone()));
    let answer = http
        .post(endpoint("sign-in"))
        .header(header::COOKIE, &csrf)
        .header(header::ORIGIN, &stack.gateway)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_redirection(), "{answer:?}");

    // The code, from the redirect's Location, for the state the library made.
    let (base, params) = location(&answer);
    assert_eq!(base, dev.redirect_uri);
    assert_eq!(&params["state"], state.secret());
    assert_eq!(params["iss"], endpoint("").trim_end_matches('/'));
    let code = AuthorizationCode::new(params["code"].clone());

    // The library's exchange, with the verifier.
    let tokens = client
        .exchange_code(code)
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let first_refresh = tokens.refresh_token().expect("a refresh token").clone();
    assert!(
        tokens
            .expires_in()
            .is_some_and(|ttl| ttl <= Duration::from_secs(300))
    );
    // The API, through the gateway, with the person's token.
    assert_eq!(
        read_and_write(&stack, tokens.access_token().secret()).await,
        (StatusCode::OK, StatusCode::CREATED),
        "the admin reads and writes"
    );

    // Refresh: a new pair; rotation gives a new refresh token.
    let refreshed = client
        .exchange_refresh_token(&first_refresh)
        .request_async(&http)
        .await
        .unwrap();
    let second_refresh = refreshed
        .refresh_token()
        .expect("a rotated refresh token")
        .clone();
    assert_ne!(second_refresh.secret(), first_refresh.secret());
    assert_eq!(
        read_and_write(&stack, refreshed.access_token().secret())
            .await
            .0,
        StatusCode::OK
    );

    // Revocation (RFC 7009) of the current refresh token, by the library.
    let plain = |mut request: oauth2::HttpRequest| {
        let uri = request.uri().to_string().replacen("https://", "http://", 1);
        *request.uri_mut() = uri.parse().unwrap();
        http.call(request)
    };
    client
        .revoke_token(StandardRevocableToken::RefreshToken(second_refresh.clone()))
        .unwrap()
        .request_async(&plain)
        .await
        .unwrap();
    // Refused afterwards: invalid_grant, as the library reads it.
    match client
        .exchange_refresh_token(&second_refresh)
        .request_async(&http)
        .await
    {
        Err(RequestTokenError::ServerResponse(error)) => {
            assert_eq!(*error.error(), BasicErrorResponseType::InvalidGrant)
        }
        other => panic!("a revoked refresh token was not refused: {other:?}"),
    }
}
