//! The HTTP API of order_service: `/order/…`.

use axum::{
    Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;
use serde_json::Value;
use shared::{
    ApiError,
    extract::{Id, Json, Page, Query},
    idempotency::{Claimed, Created, IdempotencyKey, IdempotencyKeys, fingerprint},
};

use crate::{
    clients::ClientService,
    domain::{ClientSummary, NewOrder, Order, OrderStatus, OrderView},
    store::{OrderFilter, OrderStore},
};

/// What every handler gets: the store, the client for client_service and the
/// idempotency keys.
#[derive(Clone, Debug)]
pub struct AppState {
    pub orders: OrderStore,
    pub clients: ClientService,
    pub keys: IdempotencyKeys,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/order/", get(list).post(create).delete(remove_by_client))
        .route("/order/{id}", get(show).put(replace).delete(remove))
        .with_state(state)
}

/// The client of an order that is being written: it must exist. When
/// client_service cannot answer, the write is refused with a 503 and
/// nothing is stored.
async fn existing_client(state: &AppState, client_id: i64) -> Result<ClientSummary, ApiError> {
    state
        .clients
        .get(client_id)
        .await?
        .ok_or_else(|| ApiError::invalid("client_id", format!("there is no client {client_id}")))
}

/// The client of an order that is being read: `None` when client_service
/// cannot answer, so that the order itself is still returned.
async fn current_client(state: &AppState, client_id: i64) -> Option<ClientSummary> {
    match state.clients.get(client_id).await {
        Ok(client) => client,
        Err(err) => {
            tracing::warn!(error = %shared::problem::cause_chain(&err), "order returned without its client");
            None
        }
    }
}

/// With an `Idempotency-Key`, a retry of a create that succeeded gets the
/// same answer and creates nothing.
async fn create(
    State(state): State<AppState>,
    key: Option<IdempotencyKey>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let new = NewOrder::parse_create(&body)?;
    let claim = match state
        .keys
        .claim(key, &fingerprint("POST", "/order/", &body))
        .await?
    {
        Claimed::Replay(response) => return Ok(response),
        Claimed::Fresh(claim) => claim,
    };
    let outcome = async {
        let client = existing_client(&state, new.client_id).await?;
        let mut tx = state.orders.begin().await?;
        let order = state.orders.insert(&mut tx, &new).await?;
        let location = format!("/order/{}", order.id);
        let created = Created::new(location, &OrderView::new(order, Some(client)))?;
        claim.complete(&mut tx, &created).await?;
        tx.commit().await.map_err(ApiError::from)?;
        Ok(created.into_response())
    }
    .await;
    claim.release_unless(outcome.is_ok()).await;
    outcome
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    client_id: Option<i64>,
    status: Option<OrderStatus>,
    limit: Option<i64>,
    after: Option<i64>,
}

/// Orders with their clients, fetched in one batched call.
async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Json<Vec<OrderView>>, ApiError> {
    let page = Page::new(params.limit, params.after)?;
    let filter = OrderFilter {
        client_id: params.client_id,
        status: params.status,
    };
    let orders = state.orders.list(page, filter).await?;
    let ids: Vec<i64> = orders.iter().map(|o| o.client_id).collect();
    let clients = match ids.is_empty() {
        true => Default::default(),
        false => state.clients.get_many(&ids).await.unwrap_or_else(|err| {
            tracing::warn!(error = %shared::problem::cause_chain(&err), "orders returned without their clients");
            Default::default()
        }),
    };
    let views = orders
        .into_iter()
        .map(|order| {
            let client = clients.get(&order.client_id).cloned();
            OrderView::new(order, client)
        })
        .collect();
    Ok(Json(views))
}

async fn show(State(state): State<AppState>, Id(id): Id) -> Result<Json<OrderView>, ApiError> {
    let order = state.orders.get(id).await?.ok_or_else(|| not_found(id))?;
    Ok(Json(with_client(&state, order).await))
}

async fn with_client(state: &AppState, order: Order) -> OrderView {
    let client = current_client(state, order.client_id).await;
    OrderView::new(order, client)
}

/// Replaces the whole order; its client is checked again. A failed PUT
/// changes nothing.
async fn replace(
    State(state): State<AppState>,
    Id(id): Id,
    Json(body): Json<Value>,
) -> Result<Json<OrderView>, ApiError> {
    let new = NewOrder::parse_replace(&body)?;
    if state.orders.get(id).await?.is_none() {
        return Err(not_found(id));
    }
    let client = existing_client(&state, new.client_id).await?;
    let order = state
        .orders
        .update(id, &new)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(Json(OrderView::new(order, Some(client))))
}

async fn remove(State(state): State<AppState>, Id(id): Id) -> Result<StatusCode, ApiError> {
    match state.orders.delete(id).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(not_found(id)),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteParams {
    client_id: Option<i64>,
}

/// `DELETE /order/?client_id=N`: every order of one client (client_service
/// calls this when it deletes a client with `?cascade=true`).
async fn remove_by_client(
    State(state): State<AppState>,
    Query(params): Query<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    let Some(client_id) = params.client_id else {
        return Err(ApiError::BadRequest(
            "`DELETE /order/` needs `?client_id=`: it deletes every order of one client.".into(),
        ));
    };
    let deleted = state.orders.delete_by_client(client_id).await?;
    tracing::info!(client_id, deleted, "deleted the orders of a client");
    Ok(StatusCode::NO_CONTENT)
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("There is no order {id}."))
}
