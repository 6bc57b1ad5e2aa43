//! The console's pages in-process, against stand-ins for the authorization
//! server and the API (see `support`): the tokens refreshed as they should
//! be, the API's answers shown as they should be.

mod support;

use std::{
    sync::{Arc, Mutex, atomic::Ordering},
    time::Duration,
};

use axum::{
    Json, Router,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use serde_json::json;
use support::*;

/// The `Authorization` headers the stand-in API was sent, in order.
type Calls = Arc<Mutex<Vec<String>>>;

/// A stand-in API with one client (id 1, no orders); a call whose token
/// is one of `refused` (by number) gets a 401.
async fn api(calls: Calls, refused: &'static [u64]) -> String {
    let client = json!({"id": 1, "name": "Ada", "card_number": "AL-1",
        "card_issued_on": "2020-02-29", "created_at": "t", "updated_at": "t"});
    let list = client.clone();
    let record = move |headers: HeaderMap| {
        let calls = calls.clone();
        let body = json!([list.clone()]);
        async move {
            let authorization = headers[header::AUTHORIZATION].to_str().unwrap().to_owned();
            let n = token_number(&authorization);
            calls.lock().unwrap().push(authorization);
            if refused.contains(&n) {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            Json(body).into_response()
        }
    };
    let app = Router::new()
        .route("/client/", get(record.clone()))
        .route("/order/", get(|| async { Json(json!([])) }))
        .route(
            "/client/1",
            get(move || async move { ([(header::ETAG, "\"3\"")], Json(client)) }),
        )
        .route(
            "/client/2",
            get(|| async {
                let problem = json!({"status": 503,
                    "detail": "client_service did not answer in time."});
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [
                        (header::RETRY_AFTER, "7"),
                        (header::CONTENT_TYPE, "application/problem+json"),
                    ],
                    Json(problem),
                )
            }),
        );
    serve(app).await
}

fn numbers(calls: &Calls) -> Vec<u64> {
    calls
        .lock()
        .unwrap()
        .iter()
        .map(|a| token_number(a))
        .collect()
}

#[tokio::test]
async fn a_token_about_to_expire_is_refreshed_once_however_many_pages_load_at_once() {
    let seen = Seen::default();
    // The sign-in's access token expires in 10 s: within the margin.
    seen.expires_in.store(10, Ordering::SeqCst);
    let issuer = provider(seen.clone(), "u1").await;
    let calls = Calls::default();
    let app = console_with_api(&issuer, &api(calls.clone(), &[]).await, false, 10);
    let session = sign_in(&app, &issuer, None).await;
    seen.expires_in.store(300, Ordering::SeqCst);

    let loads = (0..5).map(|_| send(&app, get_with("/console/clients", Some(&session))));
    let pages = tokio::time::timeout(Duration::from_secs(30), futures::future::join_all(loads));
    for (page, html) in pages.await.expect("the pages load within 30 s") {
        assert_eq!(page.status(), StatusCode::OK, "{html}");
        assert!(html.contains("Ada"), "{html}");
    }
    // One refresh, with the sign-in's refresh token; every call with its token.
    let refreshes: Vec<Fields> = seen
        .token_forms
        .lock()
        .unwrap()
        .iter()
        .filter(|form| form.contains(&("grant_type".into(), "refresh_token".into())))
        .cloned()
        .collect();
    assert_eq!(refreshes.len(), 1, "{refreshes:?}");
    assert!(refreshes[0].contains(&("refresh_token".into(), "refresh-1".into())));
    assert_eq!(numbers(&calls), [2, 2, 2, 2, 2]);
}

#[tokio::test]
async fn a_token_the_api_refuses_is_refreshed_and_the_call_made_again() {
    let seen = Seen::default();
    let issuer = provider(seen.clone(), "u1").await;
    let calls = Calls::default();
    let app = console_with_api(&issuer, &api(calls.clone(), &[1]).await, false, 10);
    let session = sign_in(&app, &issuer, None).await;
    let (page, html) = send(&app, get_with("/console/clients", Some(&session))).await;
    assert_eq!(page.status(), StatusCode::OK, "{html}");
    assert_eq!(numbers(&calls), [1, 2]);
}

#[tokio::test]
async fn a_refresh_refused_ends_the_session() {
    let seen = Seen::default();
    seen.expires_in.store(10, Ordering::SeqCst);
    seen.refuse_refresh.store(true, Ordering::SeqCst);
    let issuer = provider(seen.clone(), "u1").await;
    let calls = Calls::default();
    let app = console_with_api(&issuer, &api(calls.clone(), &[]).await, false, 10);
    let session = sign_in(&app, &issuer, None).await;
    let (page, _) = send(&app, get_with("/console/clients", Some(&session))).await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&page), "/console/sign-in");
    assert!(
        calls.lock().unwrap().is_empty(),
        "no call with a stale token"
    );
    let (_, html) = send(&app, get_with("/", Some(&session))).await;
    assert!(html.contains(">Sign in<"), "the session is over: {html}");
}

#[tokio::test]
async fn a_dependency_not_answering_is_named_with_the_time_to_wait() {
    let issuer = provider(Seen::default(), "u1").await;
    let app = console_with_api(&issuer, &api(Calls::default(), &[]).await, false, 10);
    let session = sign_in(&app, &issuer, None).await;
    let (page, html) = send(&app, get_with("/console/clients/2", Some(&session))).await;
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(page.headers()[header::RETRY_AFTER], "7");
    assert!(
        html.contains("client_service is not answering; try again in 7 s."),
        "{html}"
    );
}

#[tokio::test]
async fn a_viewer_sees_no_write_controls_and_an_admin_does() {
    for (scope, writes) in [
        ("clients:read orders:read", false),
        ("clients:read clients:write orders:read orders:write", true),
    ] {
        let seen = Seen::default();
        *seen.scope.lock().unwrap() = Some(scope.into());
        let issuer = provider(seen, "u1").await;
        let app = console_with_api(&issuer, &api(Calls::default(), &[]).await, false, 10);
        let session = sign_in(&app, &issuer, None).await;
        for (uri, control) in [
            ("/console/clients", "New client"),
            ("/console/clients/1", "Delete client"),
            ("/console/clients/1", "/console/clients/1/edit"),
            ("/console/orders", "New order"),
        ] {
            let (page, html) = send(&app, get_with(uri, Some(&session))).await;
            assert_eq!(page.status(), StatusCode::OK, "{uri}: {html}");
            assert_eq!(html.contains(control), writes, "{scope}, {uri}: {control}");
        }
        let (page, _) = send(&app, get_with("/console/clients/new", Some(&session))).await;
        let expected = if writes {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(page.status(), expected, "{scope}");
    }
}

#[tokio::test]
async fn a_client_page_shows_the_version_of_its_etag() {
    let issuer = provider(Seen::default(), "u1").await;
    let app = console_with_api(&issuer, &api(Calls::default(), &[]).await, false, 10);
    let session = sign_in(&app, &issuer, None).await;
    let (_, html) = send(&app, get_with("/console/clients/1/edit", Some(&session))).await;
    assert!(html.contains("name=\"version\" value=\"3\""), "{html}");
    let csrf = csrf_of(&html);
    // A form without the session's token is refused before any call.
    let body = format!("csrf=not-{csrf}&version=3&name=A&card_number=B&card_issued_on=2020-01-01");
    let (page, _) = send(&app, post_form("/console/clients/1/edit", &session, &body)).await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
}
