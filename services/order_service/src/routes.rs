//! The HTTP API of order_service: `/order/…`.

use std::sync::Arc;

use axum::{
    Extension, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use kit_auth::Principal;
use kit_data::Written;
use kit_http::ApiError;
use kit_http::conditional::{Preconditions, Tagged, WrittenOr, changed_since, not_modified};
use kit_http::extract::{Body, Id, PatchBody, QueryParams, optional_whole_number, whole_number};
use kit_http::idempotency::{Created, IdempotencyKey, IdempotencyKeys};
use kit_http::pagination::{Listed, Page};
use kit_http::problem::{Problem, cause_chain};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::{
    clients::ClientService,
    domain::{
        ClientSummary, NewOrder, Order, OrderChanges, OrderInput, OrderPatch, OrderReplace,
        OrderStatus, OrderView,
    },
    schema::{
        BodyRejected, Deleted, Found, IdPath, IdempotencyKeyHeader, IfMatch, IfNoneMatch, Invalid,
        Malformed, NotFound, NotModified, Stale, Unavailable, Updated,
    },
    store::{ClientDeleted, OrderFilter, OrderStore},
};

/// What every handler gets (behind one `Arc`: a request clones one
/// reference count, not one per pool and client inside): the store, the client for client_service and the
/// idempotency keys.
#[derive(Clone, Debug)]
pub struct AppState {
    pub orders: OrderStore,
    pub clients: ClientService,
    pub keys: IdempotencyKeys,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/order/",
            get(list_orders)
                .post(create_order)
                .delete(delete_orders_of_client),
        )
        .route(
            "/order/{id}",
            get(get_order)
                .put(replace_order)
                .patch(patch_order)
                .delete(delete_order),
        )
        .with_state(Arc::new(state))
}

/// How often a PATCH without `If-Match` is applied again after losing a race.
const MAX_PATCH_ATTEMPTS: usize = 3;

// ANCHOR: existing_client
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
// ANCHOR_END: existing_client

/// The client of an order that is being read: `None` when client_service
/// cannot answer, so that the order itself is still returned.
async fn current_client(state: &AppState, client_id: i64) -> Option<ClientSummary> {
    match state.clients.get(client_id).await {
        Ok(client) => client,
        Err(err) => {
            tracing::warn!(error = %cause_chain(&err), "order returned without its client");
            None
        }
    }
}

// ANCHOR: create_order
/// With an `Idempotency-Key`, a retry of a create that succeeded gets the
/// same answer and creates nothing.
#[utoipa::path(post, path = "/order/", tag = "orders",
    params(IdempotencyKeyHeader),
    request_body(content = OrderInput, content_type = "application/json"),
    responses(
        (status = 201, description = "The order was created; `client` holds its client's details.", body = OrderView,
            headers(("Location" = String, description = "/order/{id}"), ("ETag" = String, description = "The version of the order"))),
        (status = 409, description = "A request with this Idempotency-Key is still running, or the order is being changed by others.", body = Problem, content_type = "application/problem+json"),
        Malformed, BodyRejected, Invalid, Unavailable
    )
)]
pub async fn create_order(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Principal>>,
    key: Option<IdempotencyKey>,
    body: Body<OrderInput>,
) -> Result<Response, ApiError> {
    let new = NewOrder::try_from(body.input)?;
    state
        .keys
        .create(
            &caller.caller(),
            key,
            "/order/",
            &body.json,
            async |keyed| {
                let client = existing_client(&state, new.client_id).await?;
                let respond = |order: &Order| {
                    let view = OrderView::new(order.clone(), Some(client.clone()));
                    Created::new(format!("/order/{}", order.id), &view)
                };
                let order = state
                    .orders
                    .insert(&new, keyed.alongside(&respond))
                    .await?
                    .map_err(|ClientDeleted| client_deleted(new.client_id))?;
                respond(&order)
            },
        )
        .await
}
// ANCHOR_END: create_order

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only the orders of this client.
    #[serde(default, deserialize_with = "optional_whole_number")]
    client_id: Option<i64>,
    /// Only orders in this status.
    #[param(inline)]
    status: Option<OrderStatus>,
    /// Page size: 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "optional_whole_number")]
    limit: Option<i64>,
    /// Only orders with a greater id (the last id of the previous page).
    #[param(minimum = 0)]
    #[serde(default, deserialize_with = "optional_whole_number")]
    after: Option<i64>,
}

/// A page of orders with their clients, fetched in one batched call, and a
/// `Link` to the next page.
#[utoipa::path(get, path = "/order/", tag = "orders",
    params(ListParams),
    responses(
        (status = 200, description = "A page of orders, ordered by id; `Link: <…>; rel=\"next\"` when there are more.", body = [OrderView],
            headers(("Link" = String, description = "The next page, when there is one"))),
        Malformed, Unavailable
    )
)]
pub async fn list_orders(
    State(state): State<Arc<AppState>>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Listed<OrderView>, ApiError> {
    let page = Page::new(params.limit, params.after)?;
    let filter = OrderFilter {
        client_id: params.client_id,
        status: params.status,
    };
    let rows = state.orders.list(page, filter).await?;
    let mut kept: Vec<(&str, String)> = Vec::new();
    if let Some(client_id) = params.client_id {
        kept.push(("client_id", client_id.to_string()));
    }
    if let Some(status) = params.status {
        kept.push(("status", status.as_str().to_owned()));
    }
    let listed = page.finish(rows, |o| o.id, "/order/", &kept);
    let ids: Vec<i64> = listed.items.iter().map(|o| o.client_id).collect();
    let clients = match ids.is_empty() {
        true => Default::default(),
        false => state.clients.get_many(&ids).await.unwrap_or_else(|err| {
            tracing::warn!(error = %cause_chain(&err), "orders returned without their clients");
            Default::default()
        }),
    };
    let items = listed
        .items
        .into_iter()
        .map(|order| {
            let client = clients.get(&order.client_id).cloned();
            OrderView::new(order, client)
        })
        .collect();
    Ok(Listed {
        items,
        next: listed.next,
    })
}

/// One order with its client's current details and its `ETag`; 304 when
/// `If-None-Match` names it (without asking client_service).
#[utoipa::path(
    get,
    path = "/order/{id}",
    tag = "orders",
    params(IdPath, IfNoneMatch),
    responses(Found, NotModified, Malformed, NotFound, Unavailable)
)]
pub async fn get_order(
    State(state): State<Arc<AppState>>,
    Id(id): Id,
    preconditions: Preconditions,
) -> Result<Response, ApiError> {
    let order = state.orders.get(id).await?.ok_or_else(|| not_found(id))?;
    if preconditions.not_modified(order.version) {
        return Ok(not_modified(order.version));
    }
    let client = current_client(&state, order.client_id).await;
    Ok(Tagged::ok(order.version, OrderView::new(order, client)).into_response())
}

/// Replaces the whole order; its client is checked again. A failed PUT
/// changes nothing; with `If-Match`, only if unchanged.
#[utoipa::path(put, path = "/order/{id}", tag = "orders",
    params(IdPath, IfMatch),
    request_body(content = OrderReplace, content_type = "application/json"),
    responses(
        Updated, Malformed, NotFound, Stale, BodyRejected, Invalid, Unavailable
    )
)]
pub async fn replace_order(
    State(state): State<Arc<AppState>>,
    Id(id): Id,
    preconditions: Preconditions,
    body: Body<OrderReplace>,
) -> Result<Tagged<OrderView>, ApiError> {
    let new = NewOrder::try_from(body.input)?;
    let current = state.orders.get(id).await?.ok_or_else(|| not_found(id))?;
    let expected = preconditions.expected_version(current.version)?;
    let client = existing_client(&state, new.client_id).await?;
    let order = state
        .orders
        .update(id, &new, expected)
        .await?
        .map_err(|ClientDeleted| client_deleted(new.client_id))?
        .done(|| not_found(id))?;
    Ok(Tagged::ok(
        order.version,
        OrderView::new(order, Some(client)),
    ))
}

/// JSON Merge Patch: only the fields given change, with the rules of PUT;
/// the client is checked again when `client_id` changes.
#[utoipa::path(patch, path = "/order/{id}", tag = "orders",
    params(IdPath, IfMatch),
    request_body(content = OrderPatch, content_type = "application/merge-patch+json"),
    responses(
        (status = 409, description = "A request with this Idempotency-Key is still running, or the order is being changed by others.", body = Problem, content_type = "application/problem+json"),
        Updated, Malformed, NotFound, Stale, BodyRejected, Invalid, Unavailable
    )
)]
pub async fn patch_order(
    State(state): State<Arc<AppState>>,
    Id(id): Id,
    preconditions: Preconditions,
    PatchBody(patch): PatchBody<OrderPatch>,
) -> Result<Tagged<OrderView>, ApiError> {
    let changes = OrderChanges::try_from(patch)?;
    for _ in 0..MAX_PATCH_ATTEMPTS {
        let current = state.orders.get(id).await?.ok_or_else(|| not_found(id))?;
        preconditions.expected_version(current.version)?;
        let new = changes.applied_to(&current);
        let client = if new.client_id != current.client_id {
            Some(existing_client(&state, new.client_id).await?)
        } else {
            current_client(&state, new.client_id).await
        };
        let written = state
            .orders
            .update(id, &new, Some(current.version))
            .await?
            .map_err(|ClientDeleted| client_deleted(new.client_id))?;
        match written {
            Written::Done(order) => {
                return Ok(Tagged::ok(order.version, OrderView::new(order, client)));
            }
            Written::Missing => return Err(not_found(id)),
            Written::Stale if preconditions.has_if_match() => return Err(changed_since()),
            Written::Stale => continue,
        }
    }
    Err(ApiError::Conflict(format!(
        "Order {id} is being changed by others; retry the patch."
    )))
}

/// Deletes one order; with `If-Match`, only if unchanged.
#[utoipa::path(
    delete,
    path = "/order/{id}",
    tag = "orders",
    params(IdPath, IfMatch),
    responses(Deleted, Malformed, NotFound, Stale, Unavailable)
)]
pub async fn delete_order(
    State(state): State<Arc<AppState>>,
    Id(id): Id,
    preconditions: Preconditions,
) -> Result<StatusCode, ApiError> {
    let current = state.orders.get(id).await?.ok_or_else(|| not_found(id))?;
    let expected = preconditions.expected_version(current.version)?;
    state
        .orders
        .delete(id, expected)
        .await?
        .done(|| not_found(id))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// Whose orders to delete.
    #[param(minimum = 1)]
    #[serde(deserialize_with = "whole_number")]
    client_id: i64,
}

/// `DELETE /order/?client_id=N`: every order of one client, and no order for
/// it from now on (client_service calls this when it deletes a client).
#[utoipa::path(delete, path = "/order/", tag = "orders",
    params(DeleteParams),
    responses(
        (status = 204, description = "Every order of the client was deleted (there may have been none), and none can be created for it from now on."),
        Malformed, Unavailable
    )
)]
pub async fn delete_orders_of_client(
    State(state): State<Arc<AppState>>,
    QueryParams(params): QueryParams<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    let client_id = params.client_id;
    if client_id < 1 {
        return Err(ApiError::BadRequest(format!(
            "`client_id` must be a client's id, 1 or more (got {client_id})."
        )));
    }
    let deleted = state.orders.delete_by_client(client_id).await?;
    tracing::info!(client_id, deleted, "deleted the orders of a client");
    Ok(StatusCode::NO_CONTENT)
}

/// The 422 of a write for a client that has been deleted.
fn client_deleted(client_id: i64) -> ApiError {
    ApiError::invalid("client_id", format!("client {client_id} has been deleted"))
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("There is no order {id}."))
}
