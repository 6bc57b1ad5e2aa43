//! The clients' pages: the list (keyset paging, search by name), a
//! client's page with its orders, the create and edit forms (edits sent
//! with `If-Match`: a change made meanwhile by someone else is shown, not
//! overwritten) and the delete, with the cascade as a second, explicit step.
//! Every page is one or two API calls (a client's page: the client and its
//! orders, at once).

use askama::Template;
use axum::{
    Form, Router,
    extract::{Path, Query},
    http::{HeaderMap, Method, StatusCode},
    response::Response,
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::json;

use crate::{
    api::{Call, etag, query},
    forms::{Field, FormPage, conflict, refused_form},
    pages::{Chrome, Notice, PageError, render},
    person::{Person, Writer},
    records::{Client, Order},
    session::random_id,
    state::AppState,
};

/// Clients per page of the list.
pub const PAGE_SIZE: u32 = 20;

/// Orders on a client's page (a link leads to the rest).
pub const ORDERS_ON_A_CLIENT_PAGE: u32 = 20;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/clients", get(list).post(create))
        .route("/console/clients/new", get(new))
        .route("/console/clients/{id}", get(show))
        .route("/console/clients/{id}/edit", get(edit).post(update))
        .route("/console/clients/{id}/delete", post(delete))
}

#[derive(Template)]
#[template(path = "clients.html")]
struct ClientsPage {
    chrome: Chrome,
    can_write: bool,
    name: String,
    clients: Vec<Client>,
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "client.html")]
struct ClientPage {
    chrome: Chrome,
    can_write: bool,
    client: Client,
    orders: Vec<Order>,
    more_orders: bool,
}

/// A second, explicit step (the cascade delete).
#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    title: String,
    text: String,
    action: String,
    back: String,
    submit: &'static str,
    hidden: Vec<(&'static str, String)>,
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    name: String,
    after: Option<u64>,
}

async fn list(person: Person, Query(q): Query<ListQuery>) -> Result<Response, Response> {
    let name = q.name.trim().to_owned();
    let mut params = vec![("limit", PAGE_SIZE.to_string())];
    if !name.is_empty() {
        params.push(("name", name.clone()));
    }
    if let Some(after) = q.after {
        params.push(("after", after.to_string()));
    }
    let path = format!("/client/?{}", query(&params));
    let answer = person.read(&path, "client_service", "This list").await?;
    let clients: Vec<Client> = serde_json::from_value(answer.body.clone()).unwrap_or_default();
    let next = answer.next_after.as_ref().map(|after| {
        let mut next = vec![("after", after.clone())];
        if !name.is_empty() {
            next.push(("name", name.clone()));
        }
        format!("/console/clients?{}", query(&next))
    });
    let page = ClientsPage {
        chrome: person.chrome(),
        can_write: person.session.can_write,
        name,
        clients,
        next,
    };
    Ok(render(StatusCode::OK, &page))
}

async fn show(person: Person, Path(id): Path<u64>) -> Result<Response, Response> {
    let client_path = format!("/client/{id}");
    let orders_path = format!("/order/?client_id={id}&limit={ORDERS_ON_A_CLIENT_PAGE}");
    // The client and its orders at once: one page, two calls.
    let (client, orders) = tokio::join!(
        person.read(&client_path, "client_service", "This client"),
        person.read(&orders_path, "order_service", "Its orders"),
    );
    let (client, orders) = (client?, orders?);
    let client = client
        .record::<Client>()
        .ok_or_else(|| person.fail(PageError::unreadable(client.request_id.clone())))?;
    let more_orders = orders.next_after.is_some();
    let orders = serde_json::from_value(orders.body).unwrap_or_default();
    let page = ClientPage {
        chrome: person.chrome(),
        can_write: person.session.can_write,
        client,
        orders,
        more_orders,
    };
    Ok(render(StatusCode::OK, &page))
}

/// The fields of a client's form.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ClientForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    card_number: String,
    #[serde(default)]
    card_issued_on: String,
}

impl ClientForm {
    fn of(client: &Client) -> Self {
        Self {
            version: client.version.to_string(),
            name: client.name.clone(),
            card_number: client.card_number.clone(),
            card_issued_on: client.card_issued_on.clone(),
            ..Self::default()
        }
    }

    fn fields(&self) -> Vec<Field> {
        vec![
            Field::new("name", "Name", "text", &self.name),
            Field::new("card_number", "Card number", "text", &self.card_number),
            Field::new(
                "card_issued_on",
                "Card issued on",
                "date",
                &self.card_issued_on,
            )
            .hint("YYYY-MM-DD"),
        ]
    }

    fn body(&self) -> serde_json::Value {
        json!({
            "name": self.name,
            "card_number": self.card_number,
            "card_issued_on": self.card_issued_on,
        })
    }

    fn tried(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Name", self.name.clone()),
            ("Card number", self.card_number.clone()),
            ("Card issued on", self.card_issued_on.clone()),
        ]
    }
}

fn form_page(person: &Person, form: &ClientForm, id: Option<i64>) -> FormPage {
    let (title, action, back, submit) = match id {
        None => (
            "New client".to_owned(),
            "/console/clients".to_owned(),
            "/console/clients".to_owned(),
            "Create client",
        ),
        Some(id) => (
            format!("Edit {}", form.name),
            format!("/console/clients/{id}/edit"),
            format!("/console/clients/{id}"),
            "Save",
        ),
    };
    let hidden = match id {
        // A create carries an Idempotency-Key made with the form: sent
        // twice (a double click, a reload), it creates one client.
        None => vec![("key", form.key.clone())],
        Some(_) => vec![("version", form.version.clone())],
    };
    FormPage {
        chrome: person.chrome(),
        title,
        action,
        back,
        submit,
        hidden,
        fields: form.fields(),
        tried: Vec::new(),
        chooser: None,
    }
}

async fn new(person: Writer) -> Result<Response, Response> {
    let form = ClientForm {
        key: random_id(),
        ..ClientForm::default()
    };
    Ok(render(StatusCode::OK, &form_page(&person, &form, None)))
}

async fn create(
    person: Person,
    headers: HeaderMap,
    Form(form): Form<ClientForm>,
) -> Result<Response, Response> {
    let body = form.body();
    let call = Call::create(&body, &form.key);
    let answer = person
        .submit(&headers, &form.csrf, Method::POST, "/client/", call)
        .await?;
    if answer.is_success() {
        let id = answer.body.get("id").and_then(|v| v.as_i64()).unwrap_or(0);
        let to = format!("/console/clients/{id}");
        return Ok(person.done(answer, "Client created.", &to));
    }
    let page = form_page(&person, &form, None);
    Ok(refused_form(&person, page, answer, "client_service"))
}

async fn edit(person: Writer, Path(id): Path<u64>) -> Result<Response, Response> {
    let client = current(&person, id).await?;
    let page = form_page(&person, &ClientForm::of(&client), Some(client.id));
    Ok(render(StatusCode::OK, &page))
}

/// The client as it is now.
async fn current(person: &Person, id: u64) -> Result<Client, Response> {
    let answer = person
        .read(&format!("/client/{id}"), "client_service", "This client")
        .await?;
    answer
        .record()
        .ok_or_else(|| person.fail(PageError::unreadable(answer.request_id)))
}

async fn update(
    person: Person,
    headers: HeaderMap,
    Path(id): Path<u64>,
    Form(form): Form<ClientForm>,
) -> Result<Response, Response> {
    let body = form.body();
    let version = etag(&form.version);
    let call = Call::update(&body, &version);
    let path = format!("/client/{id}");
    let answer = person
        .submit(&headers, &form.csrf, Method::PUT, &path, call)
        .await?;
    if answer.is_success() {
        let to = format!("/console/clients/{id}");
        return Ok(person.done(answer, "Client saved.", &to));
    }
    if answer.status == StatusCode::PRECONDITION_FAILED {
        // Someone else changed the client since the form was opened: the
        // form again, with the current values, and what this person tried.
        let client = current(&person, id).await?;
        let mut page = form_page(&person, &ClientForm::of(&client), Some(client.id));
        page.tried = form.tried();
        page.chrome.problem = Some(conflict(&answer, client.version));
        return Ok(render(StatusCode::CONFLICT, &page));
    }
    let page = form_page(&person, &form, Some(id as i64));
    Ok(refused_form(&person, page, answer, "client_service"))
}

#[derive(Deserialize)]
struct DeleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    cascade: bool,
}

async fn delete(
    person: Person,
    headers: HeaderMap,
    Path(id): Path<u64>,
    Form(form): Form<DeleteForm>,
) -> Result<Response, Response> {
    let path = if form.cascade {
        format!("/client/{id}?cascade=true")
    } else {
        format!("/client/{id}")
    };
    let answer = person
        .submit(&headers, &form.csrf, Method::DELETE, &path, Call::default())
        .await?;
    if answer.is_success() {
        let text = if form.cascade {
            "Client deleted, with its orders."
        } else {
            "Client deleted."
        };
        return Ok(person.done(answer, text, "/console/clients"));
    }
    if answer.status == StatusCode::CONFLICT && !form.cascade {
        let mut chrome = person.chrome();
        chrome.problem = Some(Notice::new(
            "This client still has orders, so it was not deleted: a client's orders \
             belong to it.",
            answer.request_id,
        ));
        let page = ConfirmPage {
            chrome,
            title: "Delete the client and its orders?".into(),
            text: "You can delete the client together with every one of its orders, in \
                   one step that cannot be undone, or go back."
                .into(),
            action: format!("/console/clients/{id}/delete"),
            back: format!("/console/clients/{id}"),
            submit: "Delete client and its orders",
            hidden: vec![("cascade", "true".into())],
        };
        return Ok(render(StatusCode::CONFLICT, &page));
    }
    Err(person.fail(PageError::of_answer(
        answer,
        "client_service",
        "This client",
    )))
}
