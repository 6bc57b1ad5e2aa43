//! The orders' pages: the list (filtered by client and status, paged), an
//! order's page, the create form (the client chosen by a search on its
//! name, not by typing an id), the edit form (with `If-Match`, as the
//! clients' edits) and the delete. An order comes from the API with its
//! client's current details: order_service fetches them from
//! client_service, synchronously, in one batched call per page.

use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, Method, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};

use askama::Template;

use crate::{
    api::{Call, query},
    forms::{self, Choice, Chooser, Field, FormPage, conflict, fail, refused_form, unreadable},
    pages::{Chrome, Notice, PageError, render},
    person::Person,
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

async fn list(person: Person, Query(q): Query<ListQuery>) -> Response {
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
    let answer = match person.call(Method::GET, &path, Call::default()).await {
        Ok(answer) if answer.is_success() => answer,
        Ok(answer) => {
            return fail(
                &person,
                forms::failure(answer, "order_service", "This list"),
            );
        }
        Err(err) => return fail(&person, err),
    };
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
    render(StatusCode::OK, &page)
}

async fn show(person: Person, Path(id): Path<u64>) -> Response {
    match current(&person, id).await {
        Ok(order) => render(
            StatusCode::OK,
            &OrderPage {
                chrome: person.chrome(),
                can_write: person.session.can_write,
                order,
            },
        ),
        Err(err) => fail(&person, err),
    }
}

async fn current(person: &Person, id: u64) -> Result<Order, PageError> {
    let answer = person
        .call(Method::GET, &format!("/order/{id}"), Call::default())
        .await?;
    if !answer.is_success() {
        return Err(forms::failure(answer, "order_service", "This order"));
    }
    answer.record().ok_or_else(|| unreadable(answer.request_id))
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

async fn new(person: Person, Query(q): Query<NewQuery>) -> Response {
    if !person.session.can_write {
        return fail(&person, PageError::Forbidden { request_id: None });
    }
    let form = OrderForm {
        key: random_id(),
        client_id: q.client_id.map(|id| id.to_string()).unwrap_or_default(),
        quantity: "1".into(),
        ..OrderForm::default()
    };
    match create_page(&person, &form, q.client_name.trim()).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(err) => fail(&person, err),
    }
}

/// The create form, its client chooser filled: the clients whose name
/// starts with `client_name`, or the one already chosen.
async fn create_page(
    person: &Person,
    form: &OrderForm,
    client_name: &str,
) -> Result<FormPage, PageError> {
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
        let answer = person.call(Method::GET, &path, Call::default()).await?;
        if !answer.is_success() {
            return Err(forms::failure(answer, "client_service", "This client"));
        }
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
    State(state): State<AppState>,
    person: Person,
    headers: HeaderMap,
    Form(form): Form<OrderForm>,
) -> Response {
    if let Err(err) = forms::check(&headers, &state.origin, &person, &form.csrf) {
        return fail(&person, err);
    }
    let body = form.body(false);
    let call = Call {
        body: Some(&body),
        idempotency_key: Some(form.key.as_str()).filter(|k| !k.is_empty()),
        ..Call::default()
    };
    let answer = match person.call(Method::POST, "/order/", call).await {
        Ok(answer) => answer,
        Err(err) => return fail(&person, err),
    };
    if answer.is_success() {
        let id = answer.body.get("id").and_then(Value::as_i64).unwrap_or(0);
        person.tell(Notice::new("Order created.", answer.request_id));
        return Redirect::to(&format!("/console/orders/{id}")).into_response();
    }
    let page = match create_page(&person, &form, "").await {
        Ok(page) => page,
        Err(err) => return fail(&person, err),
    };
    refused_form(&person, page, answer, "order_service")
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

async fn edit(person: Person, Path(id): Path<u64>) -> Response {
    if !person.session.can_write {
        return fail(&person, PageError::Forbidden { request_id: None });
    }
    match current(&person, id).await {
        Ok(order) => render(
            StatusCode::OK,
            &edit_page(&person, &OrderForm::of(&order), id),
        ),
        Err(err) => fail(&person, err),
    }
}

async fn update(
    State(state): State<AppState>,
    person: Person,
    headers: HeaderMap,
    Path(id): Path<u64>,
    Form(form): Form<OrderForm>,
) -> Response {
    if let Err(err) = forms::check(&headers, &state.origin, &person, &form.csrf) {
        return fail(&person, err);
    }
    let body = form.body(true);
    let version = format!("\"{}\"", form.version);
    let call = Call {
        body: Some(&body),
        if_match: Some(&version),
        ..Call::default()
    };
    let answer = match person
        .call(Method::PUT, &format!("/order/{id}"), call)
        .await
    {
        Ok(answer) => answer,
        Err(err) => return fail(&person, err),
    };
    if answer.is_success() {
        person.tell(Notice::new("Order saved.", answer.request_id));
        return Redirect::to(&format!("/console/orders/{id}")).into_response();
    }
    if answer.status == StatusCode::PRECONDITION_FAILED {
        let order = match current(&person, id).await {
            Ok(order) => order,
            Err(err) => return fail(&person, err),
        };
        let mut page = edit_page(&person, &OrderForm::of(&order), id);
        page.tried = vec![
            ("Item", form.item.clone()),
            ("Quantity", form.quantity.clone()),
            ("Price", form.price.clone()),
            ("Status", form.status.clone()),
        ];
        page.chrome.problem = Some(conflict(&answer, order.version));
        return render(StatusCode::CONFLICT, &page);
    }
    refused_form(
        &person,
        edit_page(&person, &form, id),
        answer,
        "order_service",
    )
}

#[derive(Deserialize)]
struct DeleteForm {
    #[serde(default)]
    csrf: String,
}

async fn delete(
    State(state): State<AppState>,
    person: Person,
    headers: HeaderMap,
    Path(id): Path<u64>,
    Form(form): Form<DeleteForm>,
) -> Response {
    if let Err(err) = forms::check(&headers, &state.origin, &person, &form.csrf) {
        return fail(&person, err);
    }
    let answer = match person
        .call(Method::DELETE, &format!("/order/{id}"), Call::default())
        .await
    {
        Ok(answer) => answer,
        Err(err) => return fail(&person, err),
    };
    if answer.is_success() {
        person.tell(Notice::new("Order deleted.", answer.request_id));
        return Redirect::to("/console/orders").into_response();
    }
    fail(
        &person,
        forms::failure(answer, "order_service", "This order"),
    )
}
