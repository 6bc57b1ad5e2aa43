//! The orders' pages: the list (filtered by client and status, paged), an
//! order's page, the create form (the client chosen by a search on its
//! name, not by typing an id), the edit form (with `If-Match`, as the
//! clients' edits) and the delete. An order comes from the API with its
//! client's current details: order_service fetches them from
//! client_service, synchronously, in one batched call per page.

use axum::{
    Form, Router,
    extract::{Path, Query},
    http::{HeaderMap, Method, StatusCode},
    response::Response,
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};

use askama::Template;

use crate::{
    api::{Call, etag, query},
    forms::{Choice, Chooser, Field, FormPage, conflict, refused_form},
    pages::{Chrome, PageError, render},
    person::{Person, Writer},
    records::{Client, Order},
    session::random_id,
    state::AppState,
};

/// Orders per page of a list.
pub const PAGE_SIZE: u32 = 20;

/// An order's statuses, as the API names them.
pub const STATUSES: [&str; 5] = ["new", "paid", "shipped", "delivered", "cancelled"];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/orders", get(list).post(create))
        .route("/console/orders/new", get(new))
        .route("/console/orders/{id}", get(show))
        .route("/console/orders/{id}/edit", get(edit).post(update))
        .route("/console/orders/{id}/delete", post(delete))
}

#[derive(Template)]
#[template(path = "orders.html")]
struct OrdersPage {
    chrome: Chrome,
    can_write: bool,
    client_id: Option<u64>,
    status: String,
    statuses: [&'static str; 5],
    orders: Vec<Order>,
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    chrome: Chrome,
    can_write: bool,
    order: Order,
}

#[derive(Deserialize)]
struct ListQuery {
    client_id: Option<u64>,
    #[serde(default)]
    status: String,
    after: Option<u64>,
}

async fn list(person: Person, Query(q): Query<ListQuery>) -> Result<Response, Response> {
    let status = if STATUSES.contains(&q.status.as_str()) {
        q.status.clone()
    } else {
        String::new()
    };
    let mut filters = Vec::new();
    if let Some(id) = q.client_id {
        filters.push(("client_id", id.to_string()));
    }
    if !status.is_empty() {
        filters.push(("status", status.clone()));
    }
    let mut params = filters.clone();
    params.push(("limit", PAGE_SIZE.to_string()));
    if let Some(after) = q.after {
        params.push(("after", after.to_string()));
    }
    let path = format!("/order/?{}", query(&params));
    let answer = person.read(&path, "order_service", "This list").await?;
    let next = answer.next_after.as_ref().map(|after| {
        let mut next = filters.clone();
        next.push(("after", after.clone()));
        format!("/console/orders?{}", query(&next))
    });
    let page = OrdersPage {
        chrome: person.chrome(),
        can_write: person.session.can_write,
        client_id: q.client_id,
        status,
        statuses: STATUSES,
        orders: serde_json::from_value(answer.body).unwrap_or_default(),
        next,
    };
    Ok(render(StatusCode::OK, &page))
}

async fn show(person: Person, Path(id): Path<u64>) -> Result<Response, Response> {
    let page = OrderPage {
        chrome: person.chrome(),
        can_write: person.session.can_write,
        order: current(&person, id).await?,
    };
    Ok(render(StatusCode::OK, &page))
}

/// The order as it is now.
async fn current(person: &Person, id: u64) -> Result<Order, Response> {
    let answer = person
        .read(&format!("/order/{id}"), "order_service", "This order")
        .await?;
    answer
        .record()
        .ok_or_else(|| person.fail(PageError::unreadable(answer.request_id)))
}

/// The fields of an order's form.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct OrderForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    item: String,
    #[serde(default)]
    quantity: String,
    #[serde(default)]
    price: String,
    #[serde(default)]
    status: String,
}

impl OrderForm {
    fn of(order: &Order) -> Self {
        Self {
            version: order.version.to_string(),
            client_id: order.client_id.to_string(),
            item: order.item.clone(),
            quantity: order.quantity.to_string(),
            price: order.price.clone(),
            status: order.status.clone(),
            ..Self::default()
        }
    }

    fn fields(&self, editing: bool) -> Vec<Field> {
        let mut fields = vec![
            Field::new("item", "Item", "text", &self.item),
            Field::new("quantity", "Quantity", "number", &self.quantity),
            Field::new("price", "Price", "text", &self.price).hint("12.50"),
        ];
        if editing {
            fields.push(Field::new("status", "Status", "text", &self.status).select(&STATUSES));
        }
        fields
    }

    /// The JSON the API takes: numbers as numbers when they are (else as
    /// typed, for the API to say what is wrong with them).
    fn body(&self, editing: bool) -> Value {
        let number = |text: &str| {
            text.trim()
                .parse::<i64>()
                .map_or_else(|_| json!(text), |n| json!(n))
        };
        let mut body = json!({
            "client_id": number(&self.client_id),
            "item": self.item,
            "quantity": number(&self.quantity),
            "price": self.price.trim(),
        });
        if editing {
            body["status"] = json!(self.status);
        }
        body
    }
}

#[derive(Deserialize)]
struct NewQuery {
    #[serde(default)]
    client_name: String,
    client_id: Option<u64>,
}

async fn new(person: Writer, Query(q): Query<NewQuery>) -> Result<Response, Response> {
    let form = OrderForm {
        key: random_id(),
        client_id: q.client_id.map(|id| id.to_string()).unwrap_or_default(),
        quantity: "1".into(),
        ..OrderForm::default()
    };
    let page = create_page(&person, &form, q.client_name.trim()).await?;
    Ok(render(StatusCode::OK, &page))
}

/// The create form, its client chooser filled: the clients whose name
/// starts with `client_name`, or the one already chosen.
async fn create_page(
    person: &Person,
    form: &OrderForm,
    client_name: &str,
) -> Result<FormPage, Response> {
    let path = if !client_name.is_empty() {
        Some(format!(
            "/client/?{}",
            query(&[("name", client_name.to_owned()), ("limit", "20".into())])
        ))
    } else if let Ok(id) = form.client_id.parse::<u64>() {
        Some(format!("/client/?ids={id}"))
    } else {
        None
    };
    let mut clients: Vec<Client> = Vec::new();
    if let Some(path) = path {
        let answer = person.read(&path, "client_service", "This client").await?;
        clients = serde_json::from_value(answer.body).unwrap_or_default();
    }
    let chosen = form.client_id.parse::<i64>().ok();
    let only = clients.len() == 1;
    let chooser = Chooser {
        query: client_name.to_owned(),
        clients: clients
            .into_iter()
            .map(|c| Choice {
                chosen: Some(c.id) == chosen || only,
                id: c.id,
                name: c.name,
                card_number: c.card_number,
            })
            .collect(),
        error: None,
    };
    Ok(FormPage {
        chrome: person.chrome(),
        title: "New order".into(),
        action: "/console/orders".into(),
        back: "/console/orders".into(),
        submit: "Create order",
        hidden: vec![("key", form.key.clone())],
        fields: form.fields(false),
        tried: Vec::new(),
        chooser: Some(chooser),
    })
}

async fn create(
    person: Person,
    headers: HeaderMap,
    Form(form): Form<OrderForm>,
) -> Result<Response, Response> {
    let body = form.body(false);
    let call = Call::create(&body, &form.key);
    let answer = person
        .submit(&headers, &form.csrf, Method::POST, "/order/", call)
        .await?;
    if answer.is_success() {
        let id = answer.body.get("id").and_then(Value::as_i64).unwrap_or(0);
        let to = format!("/console/orders/{id}");
        return Ok(person.done(answer, "Order created.", &to));
    }
    let page = create_page(&person, &form, "").await?;
    Ok(refused_form(&person, page, answer, "order_service"))
}

fn edit_page(person: &Person, form: &OrderForm, id: u64) -> FormPage {
    FormPage {
        chrome: person.chrome(),
        title: format!("Edit order {id}"),
        action: format!("/console/orders/{id}/edit"),
        back: format!("/console/orders/{id}"),
        submit: "Save",
        hidden: vec![
            ("version", form.version.clone()),
            ("client_id", form.client_id.clone()),
        ],
        fields: form.fields(true),
        tried: Vec::new(),
        chooser: None,
    }
}

async fn edit(person: Writer, Path(id): Path<u64>) -> Result<Response, Response> {
    let order = current(&person, id).await?;
    Ok(render(
        StatusCode::OK,
        &edit_page(&person, &OrderForm::of(&order), id),
    ))
}

async fn update(
    person: Person,
    headers: HeaderMap,
    Path(id): Path<u64>,
    Form(form): Form<OrderForm>,
) -> Result<Response, Response> {
    let body = form.body(true);
    let version = etag(&form.version);
    let call = Call::update(&body, &version);
    let path = format!("/order/{id}");
    let answer = person
        .submit(&headers, &form.csrf, Method::PUT, &path, call)
        .await?;
    if answer.is_success() {
        let to = format!("/console/orders/{id}");
        return Ok(person.done(answer, "Order saved.", &to));
    }
    if answer.status == StatusCode::PRECONDITION_FAILED {
        let order = current(&person, id).await?;
        let mut page = edit_page(&person, &OrderForm::of(&order), id);
        page.tried = vec![
            ("Item", form.item.clone()),
            ("Quantity", form.quantity.clone()),
            ("Price", form.price.clone()),
            ("Status", form.status.clone()),
        ];
        page.chrome.problem = Some(conflict(&answer, order.version));
        return Ok(render(StatusCode::CONFLICT, &page));
    }
    let page = edit_page(&person, &form, id);
    Ok(refused_form(&person, page, answer, "order_service"))
}

#[derive(Deserialize)]
struct DeleteForm {
    #[serde(default)]
    csrf: String,
}

// ANCHOR: delete
async fn delete(
    person: Person,
    headers: HeaderMap,
    Path(id): Path<u64>,
    Form(form): Form<DeleteForm>,
) -> Result<Response, Response> {
    let path = format!("/order/{id}");
    let answer = person
        .submit(&headers, &form.csrf, Method::DELETE, &path, Call::default())
        .await?;
    if answer.is_success() {
        return Ok(person.done(answer, "Order deleted.", "/console/orders"));
    }
    Err(person.fail(PageError::of_answer(answer, "order_service", "This order")))
}
// ANCHOR_END: delete
