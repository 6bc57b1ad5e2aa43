//! Security, end to end: every API call needs a token of auth_service with
//! the operation's scope; the token endpoint answers as RFC 6749 says; the
//! keys are published and can be rotated without a failed request; a
//! service calls another with its own token, never the caller's; the
//! gateway limits rates, sets the security headers and shows no version.
//! Every refused write changes nothing.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{SigningKey, pkcs8::DecodePrivateKey, pkcs8::EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use test_kit::{
    DelayProxy, Load, Options, Reply, Stack, assert_no_failures, bin_dir, json, raw_get,
    raw_request,
};

/// The claims of a token as auth_service would issue it to the development
/// client, for `aud`, expiring in `ttl` seconds (negative: expired).
fn claims(stack: &Stack, aud: &str, scope: &str, ttl: i64) -> Value {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    json!({
        "iss": format!("{}/auth", stack.gateway), "sub": "dev-client", "client_id": "dev-client",
        "aud": aud, "scope": scope, "iat": now.min(now + ttl - 1), "exp": now + ttl,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

/// The stack's signing key (the file auth_service reads) and its kid.
async fn signing_key(stack: &Stack) -> (SigningKey, String) {
    let pem = std::fs::read_to_string(stack.auth_dir.join("auth-signing-key.pem")).unwrap();
    let key = SigningKey::from_pkcs8_pem(&pem).unwrap();
    let jwks = stack.get("/auth/jwks.json").await;
    let kid = jwks.body["keys"][0]["kid"].as_str().unwrap().to_owned();
    (key, kid)
}

fn sign(key: &SigningKey, kid: &str, claims: &Value) -> String {
    let der = key.to_pkcs8_der().unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap()
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// A 401 for an invalid token: problem+json and the Bearer challenge.
#[track_caller]
fn assert_invalid_token(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "{what}: {}",
        reply.text
    );
    reply.assert_problem(StatusCode::UNAUTHORIZED);
    let challenge = reply.header("www-authenticate");
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
        "{what}: {challenge}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_a_valid_token_is_401_and_changes_nothing() {
    let stack = Stack::start().await;
    let body = json!({"name": "Eve", "card_number": "E-1", "card_issued_on": "2021-06-15"});

    // No token: a challenge without an error.
    for path in ["/client/", "/order/"] {
        let reply = stack.send_as(None, Method::POST, path, Some(&body)).await;
        reply.assert_problem(StatusCode::UNAUTHORIZED);
        let challenge = reply.header("www-authenticate");
        assert!(challenge.starts_with("Bearer realm="), "{challenge}");
        assert!(!challenge.contains("error="), "{challenge}");
    }

    let (key, kid) = signing_key(&stack).await;
    let valid = claims(&stack, "client_service", "clients:read clients:write", 300);
    let public = key.verifying_key().to_bytes();
    let hs256 = jsonwebtoken::encode(
        &Header {
            kid: Some(kid.clone()),
            ..Header::new(Algorithm::HS256)
        },
        &valid,
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    let unsigned = |header: Value| {
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(valid.to_string())
        )
    };
    let mut other_issuer = valid.clone();
    other_issuer["iss"] = json!("https://issuer.elsewhere.test/auth");
    let signed = sign(&key, &kid, &valid);
    let mut more = valid.clone();
    more["sub"] = json!("someone-else");
    let parts: Vec<&str> = signed.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(more.to_string()),
        parts[2]
    );
    let stranger = SigningKey::from_bytes(&[42; 32]);
    let cases = [
        ("a malformed token", "Bearer not-a-token".to_owned()),
        ("another scheme", format!("Basic {signed}")),
        (
            "alg none",
            format!("Bearer {}", unsigned(json!({"alg": "none", "kid": kid}))),
        ),
        (
            "HS256 with the public key as its secret",
            format!("Bearer {hs256}"),
        ),
        (
            "an expired token",
            format!(
                "Bearer {}",
                sign(
                    &key,
                    &kid,
                    &claims(&stack, "client_service", "clients:write", -120)
                )
            ),
        ),
        (
            "another issuer",
            format!("Bearer {}", sign(&key, &kid, &other_issuer)),
        ),
        (
            "another audience",
            format!(
                "Bearer {}",
                sign(
                    &key,
                    &kid,
                    &claims(&stack, "order_service", "clients:write", 300)
                )
            ),
        ),
        (
            "an unknown kid",
            format!("Bearer {}", sign(&stranger, "unknown-kid", &valid)),
        ),
        ("a tampered payload", format!("Bearer {tampered}")),
        (
            "a 6 KiB token",
            format!("Bearer {signed}{}", "A".repeat(6 * 1024)),
        ),
    ];
    for (what, authorization) in &cases {
        let reply = stack
            .send_as(Some(authorization), Method::POST, "/client/", Some(&body))
            .await;
        assert_invalid_token(&reply, what);
    }
    // An 8 KiB token, to the service itself (the gateway refuses a header
    // line that long on its own, with a 431).
    let huge = format!("Bearer {signed}{}", "A".repeat(8 * 1024));
    let direct = stack
        .anonymous
        .post(format!("{}/client/", stack.client_service().url()))
        .header("authorization", &huge)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_invalid_token(&Reply::from(direct).await, "an 8 KiB token");
    // The signed token itself is fine: the cases above fail for their flaw.
    let ok = stack
        .send_as(
            Some(&format!("Bearer {signed}")),
            Method::GET,
            "/client/",
            None,
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    // A header a caller could pose with is no identity.
    let posing = stack
        .anonymous
        .get(stack.url("/client/"))
        .header("x-forwarded-for", "10.0.0.1")
        .header("x-client-id", "dev-client")
        .header("x-forwarded-user", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(posing.status(), StatusCode::UNAUTHORIZED);
    assert!(
        stack.all_clients().await.is_empty(),
        "a refused write stored a client"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_client_reads_but_cannot_write_403_names_the_scope() {
    let stack = Stack::start().await;
    let client = stack.create_client("Ada", "A-1").await;
    let id = client["id"].as_i64().unwrap();
    stack.create_order(id, "Tea").await;
    let reader = format!("Bearer {}", stack.readonly_token().await);
    for path in [format!("/client/{id}"), "/client/".into(), "/order/".into()] {
        let reply = stack.send_as(Some(&reader), Method::GET, &path, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
    }
    let writes = [
        (
            Method::POST,
            "/client/".to_owned(),
            Some(json!({"name": "B", "card_number": "B-1", "card_issued_on": "2021-06-15"})),
            "clients:write",
        ),
        (
            Method::DELETE,
            format!("/client/{id}"),
            None,
            "clients:write",
        ),
        (
            Method::POST,
            "/order/".to_owned(),
            Some(json!({"client_id": id, "item": "Jam", "price": "1.00"})),
            "orders:write",
        ),
    ];
    for (method, path, body, scope) in writes {
        let reply = stack
            .send_as(Some(&reader), method.clone(), &path, body.as_ref())
            .await;
        let problem = reply.assert_problem(StatusCode::FORBIDDEN);
        assert!(
            problem["detail"].as_str().unwrap().contains(scope),
            "{}",
            reply.text
        );
        let challenge = reply.header("www-authenticate");
        assert!(
            challenge.contains("error=\"insufficient_scope\"")
                && challenge.contains(&format!("scope=\"{scope}\"")),
            "{method} {path}: {challenge}"
        );
    }
    // A token asked for with one scope only has that one, and is only for
    // the service of that scope.
    let clients_only = format!("Bearer {}", stack.token(Some("clients:read")).await);
    let reply = stack
        .send_as(Some(&clients_only), Method::GET, "/client/", None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let reply = stack
        .send_as(
            Some(&clients_only),
            Method::DELETE,
            &format!("/client/{id}"),
            None,
        )
        .await;
    reply.assert_problem(StatusCode::FORBIDDEN);
    let reply = stack
        .send_as(Some(&clients_only), Method::GET, "/order/", None)
        .await;
    assert_invalid_token(&reply, "a token for client_service only, at order_service");
    // Nothing changed.
    assert_eq!(stack.all_clients().await.len(), 1);
    assert_eq!(stack.all_orders().await.len(), 1);
}

/// POST /auth/token with a form; `basic`: HTTP Basic credentials.
async fn token_request(stack: &Stack, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> Reply {
    let mut request = stack.anonymous.post(stack.url("/auth/token")).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    Reply::from(request.send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_answers_as_rfc_6749_says() {
    let stack = Stack::start().await;
    let (id, secret) = stack.credentials("CLIENT");
    let (reader, reader_secret) = stack.credentials("READONLY_CLIENT");
    let grant = [("grant_type", "client_credentials")];

    // A token, in the body's credentials too (client_secret_post).
    let reply = token_request(
        &stack,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.header("cache-control"), "no-store");
    let expires_in = reply.body["expires_in"].as_u64().unwrap();
    assert!((1..=600).contains(&expires_in), "{expires_in}");
    let claims = payload(reply.body["access_token"].as_str().unwrap());
    assert_eq!(claims["iss"], format!("{}/auth", stack.gateway));
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["aud"], json!(["client_service", "order_service"]));
    assert_eq!(
        claims["scope"],
        "clients:read clients:write orders:read orders:write"
    );
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        expires_in
    );
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(
                reply.body["access_token"]
                    .as_str()
                    .unwrap()
                    .split('.')
                    .next()
                    .unwrap(),
            )
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    assert!(header["kid"].is_string());

    // invalid_client: a wrong secret and an unknown client get the same
    // answer, with no hint of which part was wrong.
    let wrong_secret =
        token_request(&stack, Some((&id, "wrong-secret-wrong-secret")), &grant).await;
    let unknown = token_request(&stack, Some(("nobody", &secret)), &grant).await;
    let missing = token_request(&stack, None, &grant).await;
    for reply in [&wrong_secret, &unknown, &missing] {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
        assert_eq!(reply.body["error"], "invalid_client", "{}", reply.text);
        assert!(
            reply.header("www-authenticate").starts_with("Basic"),
            "{reply:?}"
        );
        assert_eq!(reply.header("cache-control"), "no-store");
    }
    assert_eq!(wrong_secret.text, unknown.text);

    // invalid_scope: a scope the client may not have, or one that does not exist.
    for scope in ["clients:write", "admin"] {
        let reply = token_request(
            &stack,
            Some((&reader, &reader_secret)),
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
        assert_eq!(reply.body["error"], "invalid_scope", "{}", reply.text);
    }
    // unsupported_grant_type, and invalid_request.
    let reply = token_request(
        &stack,
        Some((&id, &secret)),
        &[
            ("grant_type", "password"),
            ("username", "a"),
            ("password", "b"),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body["error"], "unsupported_grant_type",
        "{}",
        reply.text
    );
    let reply = token_request(&stack, Some((&id, &secret)), &[("scope", "clients:read")]).await;
    assert_eq!(reply.body["error"], "invalid_request", "{}", reply.text);
    let json_body = stack
        .anonymous
        .post(stack.url("/auth/token"))
        .basic_auth(&id, Some(&secret))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    let reply = Reply::from(json_body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["error"], "invalid_request", "{}", reply.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issuer_publishes_its_metadata_and_public_keys_only() {
    let stack = Stack::start().await;
    let issuer = format!("{}/auth", stack.gateway);
    for path in [
        "/.well-known/oauth-authorization-server/auth",
        "/auth/.well-known/oauth-authorization-server",
    ] {
        let reply = stack.anonymous.get(stack.url(path)).send().await.unwrap();
        let reply = Reply::from(reply).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
        let metadata = &reply.body;
        assert_eq!(metadata["issuer"], issuer.as_str());
        assert_eq!(metadata["token_endpoint"], format!("{issuer}/token"));
        assert_eq!(metadata["jwks_uri"], format!("{issuer}/jwks.json"));
        assert_eq!(
            metadata["grant_types_supported"],
            json!(["client_credentials", "authorization_code", "refresh_token"])
        );
        assert_eq!(
            metadata["authorization_endpoint"],
            format!("{issuer}/authorize")
        );
        assert!(
            metadata["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("orders:write"))
        );
    }
    let jwks = Reply::from(
        stack
            .anonymous
            .get(format!("{issuer}/jwks.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let keys = jwks.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{}", jwks.text);
    let key = &keys[0];
    assert_eq!(
        (&key["kty"], &key["crv"], &key["alg"], &key["use"]),
        (
            &json!("OKP"),
            &json!("Ed25519"),
            &json!("EdDSA"),
            &json!("sig")
        )
    );
    assert!(key["kid"].is_string() && key["x"].is_string());
    assert!(
        key.get("d").is_none(),
        "the private key is published: {key}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_rotated_with_two_published_keys_and_no_request_fails() {
    let mut stack = Stack::start().await;
    let old_key = stack.auth_dir.join("auth-signing-key.pem");
    let new_key = stack.auth_dir.join("next-signing-key.pem");
    let made = std::process::Command::new(bin_dir().join("auth_service"))
        .arg("new-key")
        .arg(&new_key)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let new_kid = String::from_utf8(made.stdout).unwrap().trim().to_owned();

    let id = stack.create_client("Ada", "A-1").await["id"]
        .as_i64()
        .unwrap();
    stack.create_order(id, "Jam").await;
    let paths = vec![format!("/client/{id}"), "/order/".to_owned()];
    // Reads go on all along with the token issued before the rotation.
    let load = Load::start(&stack, paths, 4);

    // 1. The next key is published beside the one that signs.
    stack
        .restart_auth_service(vec![(
            "AUTH_PUBLISHED_KEY_FILES".into(),
            new_key.display().to_string(),
        )])
        .await;
    let jwks = stack.get("/auth/jwks.json").await;
    assert_eq!(
        jwks.body["keys"].as_array().unwrap().len(),
        2,
        "{}",
        jwks.text
    );
    let before = stack.token(None).await;
    // 2. It signs, and the old one stays published until the last token it
    //    signed has expired.
    stack
        .restart_auth_service(vec![
            (
                "AUTH_SIGNING_KEY_FILE".into(),
                new_key.display().to_string(),
            ),
            (
                "AUTH_PUBLISHED_KEY_FILES".into(),
                old_key.display().to_string(),
            ),
        ])
        .await;
    let after = stack.token(None).await;
    let kid = |token: &str| -> String {
        let header = URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap();
        serde_json::from_slice::<Value>(&header).unwrap()["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(kid(&after), new_kid);
    assert_ne!(kid(&before), new_kid);
    for token in [&before, &after, &stack.token] {
        let authorization = format!("Bearer {token}");
        let reply = stack
            .send_as(
                Some(&authorization),
                Method::GET,
                &format!("/client/{id}"),
                None,
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "token of kid {}: {}\nclient_service's log:\n{}",
            kid(token),
            reply.text,
            stack.client_service().log()
        );
    }
    // A write that makes order_service call client_service with its own
    // token (issued before the rotation) works too.
    let order = json!({"client_id": id, "item": "Tea", "price": "1.00"});
    let reply = stack
        .send_as(
            Some(&format!("Bearer {after}")),
            Method::POST,
            "/order/",
            Some(&order),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);

    let (sent, failures) = load.stop().await;
    assert_no_failures(sent, &failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_service_calls_client_service_with_its_own_token_never_the_callers() {
    let proxy = DelayProxy::start().await;
    let stack = Stack::start_with(Options {
        client_service_url: Some(proxy.url()),
        ..Options::default()
    })
    .await;
    proxy.set_target(stack.client_service().port);
    let id = stack.create_client("Ada", "A-1").await["id"]
        .as_i64()
        .unwrap();
    stack.create_order(id, "Tea").await;
    let listed = stack.get("/order/").await;
    assert_eq!(listed.status, StatusCode::OK);

    let sent = proxy.sent();
    assert!(
        !sent.contains(&stack.token),
        "the caller's token was passed on:\n{sent}"
    );
    let tokens: Vec<&str> = sent
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("authorization")
                .then(|| value.trim())
        })
        .collect();
    assert!(tokens.len() >= 2, "{sent}");
    for token in tokens {
        let token = token.strip_prefix("Bearer ").expect("a bearer token");
        let claims = payload(token);
        assert_eq!(claims["client_id"], "order_service", "{claims}");
        assert_eq!(claims["aud"], "client_service", "{claims}");
        assert_eq!(claims["scope"], "clients:read", "{claims}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_token_issuer_a_call_that_needs_a_token_or_a_key_is_503() {
    let mut stack = Stack::start().await;
    let id = stack.create_client("Ada", "A-1").await["id"]
        .as_i64()
        .unwrap();
    // order_service has checked a token (it has the keys), but has not
    // called client_service yet (it has no token of its own).
    assert_eq!(stack.get("/order/").await.status, StatusCode::OK);
    stack.kill_auth_service();

    let order = json!({"client_id": id, "item": "Tea", "price": "1.00"});
    let reply = stack.post("/order/", &order).await;
    reply.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
    assert!(!reply.header("retry-after").is_empty(), "{reply:?}");

    // A token signed by a key the services do not know: the JWKS cannot be
    // fetched, so it cannot be checked: 503, not 401.
    // (Past the second within which an unknown kid does not fetch again.)
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let stranger = SigningKey::from_bytes(&[43; 32]);
    let token = sign(
        &stranger,
        "rotated-in-kid",
        &claims(&stack, "client_service", "clients:read", 300),
    );
    let reply = stack
        .send_as(
            Some(&format!("Bearer {token}")),
            Method::GET,
            "/client/",
            None,
        )
        .await;
    reply.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
    assert!(!reply.header("retry-after").is_empty(), "{reply:?}");
    // Known tokens are still served.
    assert_eq!(
        stack.get(&format!("/client/{id}")).await.status,
        StatusCode::OK
    );
    assert!(stack.all_orders().await.is_empty());
}

/// The statuses of `count` requests, each checked: a 429 is a problem with
/// the request id and a `Retry-After` of at least a second.
async fn statuses_of(count: usize, mut send: impl AsyncFnMut() -> Reply) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..count {
        let reply = send().await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            reply.assert_problem_with_id(StatusCode::TOO_MANY_REQUESTS);
            assert!(
                reply
                    .header("retry-after")
                    .parse::<u64>()
                    .is_ok_and(|s| s >= 1),
                "{reply:?}"
            );
        }
        statuses.push(reply.status.as_u16());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_limits_rates_per_address_with_a_429_problem_and_retry_after() {
    let stack = Stack::start_with(Options {
        gateway_env: vec![
            ("GATEWAY_AUTH_RATE".into(), "1r/m".into()),
            ("GATEWAY_AUTH_BURST".into(), "3".into()),
            ("GATEWAY_ANONYMOUS_RATE".into(), "1r/m".into()),
            ("GATEWAY_ANONYMOUS_BURST".into(), "4".into()),
        ],
        ..Options::default()
    })
    .await;
    // The token endpoint: guessing secrets is cut short (starting the
    // stack took one request of the burst: its own token).
    let guesses = statuses_of(8, async || {
        token_request(
            &stack,
            Some(("dev-client", "guess-guess-guess-guess")),
            &[("grant_type", "client_credentials")],
        )
        .await
    })
    .await;
    assert_eq!(guesses[..3], [401, 401, 401], "{guesses:?}");
    assert!(guesses[3..].iter().all(|&s| s == 429), "{guesses:?}");
    // The API without a token (none, or garbage that is no token's shape):
    // per address, whatever the header says.
    let anonymous = statuses_of(8, async || {
        let garbage = format!("Bearer {}", uuid::Uuid::new_v4());
        stack
            .send_as(Some(&garbage), Method::GET, "/client/", None)
            .await
    })
    .await;
    assert_eq!(anonymous[..5], [401, 401, 401, 401, 401], "{anonymous:?}");
    assert!(anonymous[5..].iter().all(|&s| s == 429), "{anonymous:?}");
    // A caller with a token is not limited by the gateway's anonymous rate.
    let with_token = statuses_of(8, async || stack.get("/client/").await).await;
    assert!(with_token.iter().all(|&s| s == 200), "{with_token:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_limits_every_request_of_one_address() {
    let stack = Stack::start_with(Options {
        gateway_env: vec![
            ("GATEWAY_ADDRESS_RATE".into(), "1r/m".into()),
            ("GATEWAY_ADDRESS_BURST".into(), "5".into()),
        ],
        ..Options::default()
    })
    .await;
    // Whatever the requests carry (a valid token, a forged one of a token's
    // shape, which only the service can refuse), one address is one bucket.
    // (Starting the stack took one request of the burst: its own token.)
    let forged = "Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl".to_owned();
    let mut sent = 0;
    let statuses = statuses_of(8, async || {
        sent += 1;
        let authorization = match sent % 2 {
            0 => format!("Bearer {}", stack.token),
            _ => forged.clone(),
        };
        stack
            .send_as(Some(&authorization), Method::GET, "/client/", None)
            .await
    })
    .await;
    assert!(
        statuses[..4].iter().all(|&s| s == 200 || s == 401),
        "{statuses:?}"
    );
    assert!(statuses[6..].iter().all(|&s| s == 429), "{statuses:?}");
}

/// Each caller has its own rate at the service, keyed by who the token says
/// it is: one client over its limit is refused (a new token does not help)
/// while another client is served, and the calls between the services
/// (their own clients, exempt) go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_over_its_rate_is_refused_while_another_is_served() {
    let limited = vec![
        ("RATE_LIMIT_PER_SECOND".to_owned(), "1".to_owned()),
        ("RATE_LIMIT_BURST".to_owned(), "5".to_owned()),
    ];
    let stack = Stack::start_with(Options {
        client_env: limited.clone(),
        order_env: limited,
        ..Options::default()
    })
    .await;
    // One request of the development client at each service.
    let client = stack.create_client("Ada", "A-1").await["id"]
        .as_i64()
        .unwrap();
    let order = stack.create_order(client, "tea").await["id"]
        .as_i64()
        .unwrap();
    // Its four others at client_service, then refused (a request a second
    // comes back: at most one more may pass on a slow machine).
    let statuses = statuses_of(10, async || stack.get("/client/").await).await;
    assert_eq!(statuses[..4], [200, 200, 200, 200], "{statuses:?}");
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert!(
        refused >= 5 && refused + 4 >= statuses.len() - 1,
        "{statuses:?}"
    );
    // A new token of the same client is the same caller.
    let fresh = stack.token(None).await;
    let again = stack
        .send_as(
            Some(&format!("Bearer {fresh}")),
            Method::GET,
            "/client/",
            None,
        )
        .await;
    again.assert_problem_with_id(StatusCode::TOO_MANY_REQUESTS);
    assert!(
        again.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("dev-client"),
        "{}",
        again.text
    );
    // Another client is served; order_service's own call to client_service
    // for the order's client is not limited: with the create's, these are
    // six calls of order_service, over the burst of five.
    let other = format!("Bearer {}", stack.readonly_token().await);
    let served = stack
        .send_as(
            Some(&other),
            Method::GET,
            &format!("/client/{client}"),
            None,
        )
        .await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.text);
    for _ in 0..5 {
        let one = stack
            .send_as(Some(&other), Method::GET, &format!("/order/{order}"), None)
            .await;
        assert_eq!(one.status, StatusCode::OK, "{}", one.text);
        assert_eq!(one.body["client"]["name"], "Ada", "{}", one.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_has_the_security_headers_and_no_hop_shows_a_version() {
    let stack = Stack::start().await;
    let id = stack.create_client("Ada", "A-1").await["id"]
        .as_i64()
        .unwrap();
    let answers = [
        ("an API answer", stack.get(&format!("/client/{id}")).await),
        (
            "a 401",
            stack.send_as(None, Method::GET, "/order/", None).await,
        ),
        ("the gateway's 404", stack.get("/nowhere").await),
        ("the token endpoint", token_request(&stack, None, &[]).await),
        (
            "a refused target",
            stack.raw(&raw_get(b"/client/%2E%2E/order/1", b"")).await,
        ),
    ];
    for (what, reply) in &answers {
        assert_eq!(
            reply.header("x-content-type-options"),
            "nosniff",
            "{what}: {reply:?}"
        );
        assert_eq!(reply.header("x-frame-options"), "DENY", "{what}");
        assert_eq!(reply.header("referrer-policy"), "no-referrer", "{what}");
        assert!(
            reply
                .header("content-security-policy")
                .contains("frame-ancestors 'none'"),
            "{what}"
        );
        assert_eq!(reply.header("cache-control"), "no-store", "{what}");
        let server = reply.header("server");
        assert!(
            server.is_empty() || server == "nginx",
            "{what}: Server: {server}"
        );
        assert!(reply.headers.get("x-powered-by").is_none(), "{what}");
    }
    let docs = stack
        .anonymous
        .get(stack.url("/docs/"))
        .send()
        .await
        .unwrap();
    let csp = docs.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(docs.headers()["x-content-type-options"], "nosniff");
    // The services and auth_service themselves send no banner either.
    for port in [
        stack.client_service().port,
        stack.order_service().port,
        stack.auth_service.port,
    ] {
        let reply = raw_request(port, &raw_get(b"/healthz", b"")).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            reply.headers.get("server").is_none(),
            "port {port}: {reply:?}"
        );
    }
    // The documents stay open, and declare the scheme and each operation's scope.
    let document = stack
        .send_as(None, Method::GET, "/order/openapi.json", None)
        .await;
    assert_eq!(document.status, StatusCode::OK);
    let scheme = &document.body["components"]["securitySchemes"]["oauth2"];
    assert_eq!(
        scheme["flows"]["clientCredentials"]["tokenUrl"],
        "/auth/token"
    );
    assert_eq!(
        document.body["paths"]["/order/"]["post"]["security"],
        json!([{"oauth2": ["orders:write"]}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_overwrites_or_removes_the_headers_a_caller_could_pose_with() {
    // The gateway sends /client/ through a proxy that records what it passes.
    let proxy = DelayProxy::start().await;
    let stack = Stack::start_with(Options {
        gateway_client_upstream: Some(format!("127.0.0.1:{}", proxy.port)),
        ..Options::default()
    })
    .await;
    proxy.set_target(stack.client_service().port);
    let reply = stack
        .http
        .get(stack.url("/client/"))
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-host", "bank.example")
        .header("x-forwarded-proto", "https")
        .header("forwarded", "for=203.0.113.9;host=bank.example")
        .header("x-real-ip", "203.0.113.9")
        .header("x-client-id", "dev-client")
        .header("x-user", "admin")
        .header("x-original-url", "/order/")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let sent = proxy.sent().to_ascii_lowercase();
    let header = |name: &str| -> Vec<String> {
        sent.lines()
            .filter_map(|line| line.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_owned())
            .collect()
    };
    assert_eq!(header("x-forwarded-for"), ["127.0.0.1"], "{sent}");
    assert_eq!(header("x-real-ip"), ["127.0.0.1"], "{sent}");
    assert_eq!(header("x-forwarded-proto"), ["http"], "{sent}");
    for gone in [
        "x-forwarded-host",
        "forwarded",
        "x-client-id",
        "x-user",
        "x-original-url",
    ] {
        assert!(header(gone).is_empty(), "{gone} was passed on:\n{sent}");
    }
    assert!(
        !sent.contains("203.0.113.9") && !sent.contains("bank.example"),
        "{sent}"
    );
}
