//! The console's sign-in in-process (`oneshot`), against a stand-in for the
//! authorization server (see `support`).

mod support;

use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use console::provider::{Provider, ProviderError};
use support::*;

#[tokio::test]
async fn a_sign_in_opens_a_session_under_a_fresh_id_and_the_page_names_the_person() {
    let seen = Seen::default();
    let issuer = provider(seen.clone(), "<script>alert(1)</script>").await;
    let app = console(&issuer, false, 10);

    let (page, html) = send(&app, get_with("/", None)).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(html.contains("href=\"/console/sign-in\""), "{html}");

    let session = sign_in(&app, &issuer, None).await;
    // The exchange sent the code and a PKCE verifier.
    let forms = seen.token_forms.lock().unwrap().clone();
    assert!(
        forms[0].contains(&("code".into(), "c0de".into())),
        "{forms:?}"
    );
    assert!(
        forms[0].iter().any(|(k, _)| k == "code_verifier"),
        "{forms:?}"
    );

    let (page, html) = send(&app, get_with("/", Some(&session))).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        !html.contains("refresh-1") && !html.contains("e30."),
        "no token in a page"
    );

    // Signing in again, with the old cookie: a new id; the old one is ended.
    let again = sign_in(&app, &issuer, Some(&session)).await;
    assert_ne!(again, session);
    let (_, html) = send(&app, get_with("/", Some(&session))).await;
    assert!(html.contains("Sign in"), "the old session is over: {html}");
}

#[tokio::test]
async fn a_callback_with_another_state_or_without_its_cookie_is_refused() {
    let issuer = provider(Seen::default(), "u1").await;
    let app = console(&issuer, false, 10);
    let (started, _) = send(&app, get_with("/console/sign-in", None)).await;
    let login = set_cookie(started.headers(), "console_login");

    let (refused, html) = send(
        &app,
        get_with("/console/callback?code=c&state=forged", Some(&login)),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        html.contains("not for the sign-in this browser started"),
        "{html}"
    );

    // The sign-in under way was used up by that attempt.
    let state = query_param(&location(&started), "state");
    let uri = format!("/console/callback?code=c&state={state}");
    let (refused, html) = send(&app, get_with(&uri, Some(&login))).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(html.contains("expired"), "{html}");
}

#[tokio::test]
async fn sign_out_needs_the_same_origin_and_the_token_and_revokes_the_refresh_token() {
    let seen = Seen::default();
    let issuer = provider(seen.clone(), "u1").await;
    let app = console(&issuer, false, 10);
    let session = sign_in(&app, &issuer, None).await;
    let (_, html) = send(&app, get_with("/", Some(&session))).await;
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();

    let post = |origin: &str, csrf: &str| {
        Request::post("/console/sign-out")
            .header(header::COOKIE, &session)
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf={csrf}")))
            .unwrap()
    };
    let (refused, _) = send(&app, post("http://evil.test", &csrf)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let (refused, _) = send(&app, post(ORIGIN, "wrong")).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(seen.revoked.lock().unwrap().is_empty());

    let (out, _) = send(&app, post(ORIGIN, &csrf)).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&out).starts_with(&format!("{issuer}/logout?client_id=console&")),
        "{}",
        location(&out)
    );
    assert_eq!(
        set_cookie(out.headers(), "console_session"),
        "console_session="
    );
    assert_eq!(*seen.revoked.lock().unwrap(), ["refresh-1"]);
    let (_, html) = send(&app, get_with("/", Some(&session))).await;
    assert!(html.contains("Sign in"), "{html}");
}

#[tokio::test]
async fn over_https_the_session_cookie_is_host_prefixed_and_secure() {
    let issuer = provider(Seen::default(), "u1").await;
    let app = console(&issuer, true, 10);
    let (started, _) = send(&app, get_with("/console/sign-in", None)).await;
    let set = started.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with("__Host-console_login="), "{set}");
    assert!(
        set.ends_with("; Path=/; Max-Age=600; HttpOnly; SameSite=Lax; Secure"),
        "{set}"
    );
}

#[tokio::test]
async fn every_answer_has_the_security_headers() {
    // A provider that does not answer: a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = console(&format!("http://127.0.0.1:{port}/auth"), false, 10);
    // A page, and an error page (the provider does not answer).
    for uri in ["/", "/console/sign-in"] {
        let (response, _) = send(&app, get_with(uri, None)).await;
        let headers = response.headers();
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains(&format!("form-action 'self' http://127.0.0.1:{port};")),
            "{csp}"
        );
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(headers[header::REFERRER_POLICY], "same-origin");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{uri}: {headers:?}"
        );
    }
    let (down, html) = send(&app, get_with("/console/sign-in", None)).await;
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(html.contains("not answering"), "{html}");
}

#[tokio::test]
async fn metadata_naming_another_issuer_is_refused() {
    let issuer = provider(Seen::default(), "u1").await;
    // The same server, asked for under another issuer identifier: its
    // metadata names the first one (RFC 8414 §3.3).
    let other = issuer.replace("127.0.0.1", "localhost");
    let http = reqwest::Client::new();
    let provider = Provider::new(other, CLIENT_ID.into(), SECRET.into(), ORIGIN.into(), http);
    match provider.authorize().await {
        Err(ProviderError::WrongIssuer { found, .. }) => assert_eq!(found, issuer),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("another issuer's metadata was used"),
    }
}
