//! The console's journeys in a real browser, written against its page
//! contract (the pages of issue 26): an admin's whole day with a client
//! and its orders, a conflicting edit from a second browser, the cascade
//! delete; a viewer who sees no write controls and whose forced write is
//! refused; an access token that expires and is renewed without a new
//! sign-in; the System page watching an instance go and come back; a name
//! made of markup shown as text. Every page visited is checked (no console
//! error, no CSP violation, no axe-core violation) and screenshot.

use std::time::Duration;

use browser::{Browser, ConsoleStack, bounded};
use reqwest::StatusCode;
use serde_json::json;
use test_kit::{Kind, Options};

/// The id at the end of the current path (`/console/clients/12` -> 12).
async fn id_in_path(browser: &Browser, prefix: &str) -> i64 {
    let path = browser.path().await;
    path.strip_prefix(prefix)
        .and_then(|rest| rest.parse().ok())
        .unwrap_or_else(|| panic!("not on {prefix}ID but on {path}"))
}

/// The notice of the page after an action: its text, after checking that
/// it names the request id of the API call.
async fn notice(browser: &Browser) -> String {
    let text = browser.text("#notice[role=status]").await;
    let id = browser.text("#notice code.request-id").await;
    assert!(!id.trim().is_empty(), "no request id in the notice: {text}");
    text
}

/// Creates a client through the "New client" form; returns its id.
async fn create_client(browser: &Browser, name: &str, card: &str, shot: &str) -> i64 {
    browser.goto("/console/clients").await;
    browser.click_link("New client").await;
    assert_eq!(browser.path().await, "/console/clients/new");
    browser.check_page(&format!("{shot}-form"), &[]).await;
    browser.fill("name", name).await;
    browser.fill("card_number", card).await;
    browser.set_value("card_issued_on", "2021-06-15").await;
    browser.click_button("Create client").await;
    let id = id_in_path(browser, "/console/clients/").await;
    assert!(notice(browser).await.contains("Client created"));
    browser.check_page(shot, &[]).await;
    id
}

/// Creates an order for the client found by `search` (the first letters
/// of its name) and chosen by its id; returns the order's id.
async fn create_order(
    browser: &Browser,
    search: &str,
    client_id: i64,
    (item, quantity, price): (&str, &str, &str),
    shot: &str,
) -> i64 {
    browser.goto("/console/orders/new").await;
    browser.fill("client_name", search).await;
    browser.click_button("Find").await;
    browser.choose("client_id", &client_id.to_string()).await;
    browser.check_page(&format!("{shot}-form"), &[]).await;
    browser.fill("item", item).await;
    browser.fill("quantity", quantity).await;
    browser.fill("price", price).await;
    browser.click_button("Create order").await;
    let id = id_in_path(browser, "/console/orders/").await;
    assert!(notice(browser).await.contains("Order created"));
    let text = browser.body_text().await;
    assert!(text.contains(item) && text.contains(price), "{text}");
    browser.check_page(shot, &[]).await;
    id
}

/// The write controls of the page: "New …" and "Edit" links, "Delete …"
/// buttons, forms posting to a delete.
async fn write_controls(browser: &Browser) -> Vec<String> {
    let mut found = Vec::new();
    for link in ["New client", "New order", "Edit"] {
        if !browser.links(link).await.is_empty() {
            found.push(format!("link \"{link}\""));
        }
    }
    for button in [
        "Delete client",
        "Delete order",
        "Delete client and its orders",
        "Save",
    ] {
        if !browser.buttons(button).await.is_empty() {
            found.push(format!("button \"{button}\""));
        }
    }
    if browser.exists("form[action$=\"/delete\"]").await {
        found.push("a form posting to …/delete".into());
    }
    found
}

#[tokio::test]
async fn admin_creates_a_client_and_its_orders_edits_resolves_a_conflict_deletes_and_signs_out() {
    bounded(360, async {
        let console = ConsoleStack::start().await;
        let a = console.browser().await;
        console.sign_in(&a, "admin", "admin-sign-in").await;
        a.goto("/console/clients").await;
        a.check_page("clients-empty", &[]).await;

        // A client, and two orders for it, the client chosen by search.
        let client = create_client(&a, "Ada Lovelace", "4111111111111111", "client-created").await;
        let tea = create_order(&a, "Ada", client, ("Tea", "2", "3.50"), "order-created").await;
        let cake = create_order(&a, "Ada L", client, ("Cake", "1", "12.50"), "order-2").await;
        assert_ne!(tea, cake);

        // One edited.
        a.goto(&format!("/console/orders/{cake}")).await;
        a.click_link("Edit").await;
        assert_eq!(a.path().await, format!("/console/orders/{cake}/edit"));
        a.check_page("order-edit", &[]).await;
        a.fill("quantity", "3").await;
        a.click_button("Save").await;
        assert_eq!(a.path().await, format!("/console/orders/{cake}"));
        notice(&a).await;
        let order = console.stack.get(&format!("/order/{cake}")).await;
        assert_eq!(order.body["quantity"], 3, "{}", order.body);

        // Both on the client's page, and in the orders filtered by client.
        a.goto(&format!("/console/clients/{client}")).await;
        assert_eq!(a.text("h1").await, "Ada Lovelace");
        let orders = a.text("table#orders").await;
        assert!(
            orders.contains("Tea") && orders.contains("Cake"),
            "{orders}"
        );
        a.check_page("client", &[]).await;
        a.goto(&format!("/console/orders?client_id={client}")).await;
        let orders = a.text("table#orders").await;
        assert!(
            orders.contains("Tea") && orders.contains("Cake"),
            "{orders}"
        );
        a.check_page("orders", &[]).await;
        // The list, searched by name.
        a.goto("/console/clients").await;
        a.fill("name", "Ada").await;
        a.click_button("Search").await;
        assert!(a.path().await.starts_with("/console/clients?"));
        assert!(!a.links("Ada Lovelace").await.is_empty());
        a.check_page("clients", &[]).await;

        // A conflicting edit: A opens the form, B saves first, A saves.
        let b = console.browser().await;
        console.sign_in(&b, "admin", "admin-sign-in-b").await;
        let edit = format!("/console/clients/{client}/edit");
        a.goto(&edit).await;
        a.check_page("client-edit", &[]).await;
        b.goto(&edit).await;
        b.fill("name", "Ada King").await;
        b.click_button("Save").await;
        assert!(notice(&b).await.contains("Client saved"));
        a.fill("name", "Ada Byron").await;
        a.click_button("Save").await;
        let problem = a.text("#problem[role=alert]").await;
        assert!(problem.contains("changed by someone else"), "{problem}");
        let current = a
            .find("input[name=name]")
            .await
            .prop("value")
            .await
            .unwrap();
        assert_eq!(
            current.as_deref(),
            Some("Ada King"),
            "not the current values"
        );
        assert!(
            a.body_text().await.contains("Ada Byron"),
            "the tried values are not listed"
        );
        a.check_page("client-conflict", &[409]).await;
        b.close().await;

        // Deleting the client: its orders first explained, then the cascade.
        a.goto(&format!("/console/clients/{client}")).await;
        a.click_button("Delete client").await;
        let problem = a.text("#problem[role=alert]").await;
        assert!(!problem.is_empty());
        assert!(
            a.exists("input[type=hidden][name=cascade][value=true]")
                .await
        );
        a.check_page("client-delete-has-orders", &[409]).await;
        a.click_button("Delete client and its orders").await;
        assert_eq!(a.path().await, "/console/clients");
        assert!(notice(&a).await.contains("Client deleted"));
        a.check_page("clients-after-delete", &[]).await;
        let gone = console.stack.get(&format!("/client/{client}")).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND);
        let gone = console.stack.get(&format!("/order/{tea}")).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND);

        // Signed out, the back button shows nothing private.
        a.goto(&format!("/console/orders?client_id={client}")).await;
        console.sign_out(&a).await;
        a.client().back().await.expect("back");
        a.wait_loaded().await;
        let text = a.body_text().await;
        assert!(
            !text.contains("Ada"),
            "after signing out, back shows:\n{text}"
        );
        a.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_viewer_sees_no_write_controls_and_a_forced_write_is_refused() {
    bounded(240, async {
        let console = ConsoleStack::start().await;
        let client = console
            .stack
            .create_client("Grace Hopper", "5500000000000004")
            .await;
        let client_id = client["id"].as_i64().expect("an id");
        let order = console.stack.create_order(client_id, "Compiler").await;
        let b = console.browser().await;
        console.sign_in(&b, "viewer", "viewer-sign-in").await;
        for (path, shot) in [
            ("/console/clients".to_owned(), "viewer-clients"),
            (format!("/console/clients/{client_id}"), "viewer-client"),
            ("/console/orders".to_owned(), "viewer-orders"),
            (format!("/console/orders/{}", order["id"]), "viewer-order"),
        ] {
            b.goto(&path).await;
            assert!(b.body_text().await.contains("Grace Hopper") || path.contains("orders"));
            let controls = write_controls(&b).await;
            assert!(controls.is_empty(), "{path} shows a viewer {controls:?}");
            b.check_page(shot, &[]).await;
        }
        // A write forced anyway: a form built in the page (WebDriver's
        // script is not held to the page's CSP), with the session's CSRF
        // token, sent from the console's own origin.
        let csrf = console.csrf(&b).await;
        b.execute(
            "const f = document.createElement('form');
             f.method = 'post'; f.action = '/console/clients';
             for (const [k, v] of Object.entries(arguments[0])) {
                 const i = document.createElement('input');
                 i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
             }
             document.body.appendChild(f); f.submit();",
            vec![
                json!({"csrf": csrf, "name": "Forced", "card_number": "4111111111111111",
                        "card_issued_on": "2021-06-15"}),
            ],
        )
        .await;
        b.wait_until(
            "the forced write answered",
            Duration::from_secs(10),
            false,
            async |b: &Browser| b.exists("#problem").await,
        )
        .await;
        let problem = b.text("#problem[role=alert]").await;
        assert!(problem.contains("may not"), "{problem}");
        b.check_page("viewer-forced-write", &[403]).await;
        let names: Vec<_> = console
            .stack
            .all_clients()
            .await
            .iter()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(names, ["Grace Hopper"]);
        b.close().await;
    })
    .await;
}

/// Access tokens live 60 s here (AUTH_TOKEN_TTL_SECS' minimum; the
/// services allow 10 s of clock leeway past it): after 72 s the console
/// must have renewed it with its refresh token (a new POST /auth/token in
/// the gateway's log) and show the page, not the sign-in form.
#[tokio::test]
async fn an_expired_access_token_is_renewed_without_a_new_sign_in() {
    bounded(240, async {
        let console = ConsoleStack::start_with(Options {
            token_ttl_secs: Some(60),
            ..Options::default()
        })
        .await;
        console
            .stack
            .create_client("Katherine Johnson", "4111111111111111")
            .await;
        let b = console.browser().await;
        console.sign_in(&b, "admin", "expiry-sign-in").await;
        b.goto("/console/clients").await;
        assert!(!b.links("Katherine Johnson").await.is_empty());
        let token_posts = |stack: &test_kit::Stack| {
            stack
                .access_log()
                .iter()
                .filter(|l| l["method"] == "POST" && l["uri"] == "/auth/token")
                .count()
        };
        let before = token_posts(&console.stack);
        tokio::time::sleep(Duration::from_secs(72)).await;
        b.goto("/console/clients").await;
        assert_eq!(b.path().await, "/console/clients", "sent to sign in again");
        assert!(!b.links("Katherine Johnson").await.is_empty());
        b.check_page("clients-after-renewal", &[]).await;
        assert!(
            token_posts(&console.stack) > before,
            "no new token was asked for: the expired one cannot have worked"
        );
        b.close().await;
    })
    .await;
}

#[tokio::test]
async fn the_system_page_shows_an_instance_go_down_and_come_back() {
    bounded(240, async {
        let mut console = ConsoleStack::start().await;
        let b = console.browser().await;
        console.sign_in(&b, "admin", "system-sign-in").await;
        b.goto("/console/system").await;
        assert_eq!(b.text("h1").await, "System");
        let port = console.stack.client_service().port;
        let row = format!(
            "table#instances tr[data-service=client_service][data-instance=\"127.0.0.1:{port}\"]"
        );
        let health = async |b: &Browser| -> String {
            match b.find_all(&format!("{row} td.health")).await.first() {
                Some(cell) => cell.text().await.unwrap_or_default(),
                None => String::new(),
            }
        };
        // Every instance read as up (the console may have polled one before
        // it started), for the screenshot.
        b.wait_until(
            "every instance up",
            Duration::from_secs(15),
            true,
            async |b: &Browser| {
                let cells = b.find_all("table#instances td.health").await;
                let mut all_up = !cells.is_empty();
                for cell in cells {
                    all_up &= cell.text().await.unwrap_or_default() == "up";
                }
                all_up
            },
        )
        .await;
        assert_eq!(health(&b).await, "up");
        for service in ["order_service", "auth_service"] {
            assert!(
                b.exists(&format!("tr[data-service={service}]")).await,
                "no {service} row"
            );
        }
        b.check_page("system", &[]).await;

        console.stack.kill_replica(Kind::Client, 0);
        // system.js replaces the table every 3 s: no reload.
        b.wait_until(
            "client_service down",
            Duration::from_secs(15),
            false,
            async |b| health(b).await == "down",
        )
        .await;
        b.check_page("system-instance-down", &[]).await;

        console.stack.start_replica(Kind::Client, 0).await;
        b.wait_until(
            "client_service up again",
            Duration::from_secs(15),
            false,
            async |b| health(b).await == "up",
        )
        .await;
        // And without JavaScript's help: a reload shows the same.
        b.client().refresh().await.expect("reload");
        b.wait_loaded().await;
        assert_eq!(health(&b).await, "up");
        b.check_page("system-instance-back", &[]).await;
        b.close().await;
    })
    .await;
}

/// A client named with markup and quotes: shown as text on the list and on
/// its page (no element made of it, no script run, no CSP violation).
#[tokio::test]
async fn a_name_made_of_markup_is_shown_as_text() {
    bounded(180, async {
        let console = ConsoleStack::start().await;
        let hostile = "<script>alert(1)</script>\" onmouseover=\"x";
        let b = console.browser().await;
        console.sign_in(&b, "admin", "hostile-sign-in").await;
        let id = create_client(&b, hostile, "4111111111111111", "client-hostile").await;
        assert_eq!(b.text("h1").await, hostile);
        b.goto("/console/clients").await;
        b.check_page("clients-hostile", &[]).await;
        let link = b.find(&format!("a[href=\"/console/clients/{id}\"]")).await;
        assert_eq!(link.text().await.unwrap(), hostile);
        assert_eq!(link.attr("onmouseover").await.unwrap(), None);
        assert!(!b.source().await.contains("<script>alert(1)"));
        assert!(
            b.client().get_alert_text().await.is_err(),
            "an alert is open"
        );
        b.close().await;
    })
    .await;
}
