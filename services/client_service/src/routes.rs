//! The HTTP API of client_service: `/client/…`.

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
    domain::{Client, NewClient},
    orders::OrderService,
    store::{ClientFilter, ClientStore},
};

/// What every handler gets: the store, the client for order_service and the
/// idempotency keys.
#[derive(Clone, Debug)]
pub struct AppState {
    pub clients: ClientStore,
    pub orders: OrderService,
    pub keys: IdempotencyKeys,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/client/", get(list).post(create))
        .route("/client/{id}", get(show).put(replace).delete(remove))
        .with_state(state)
}

/// The most ids one batch lookup may name.
const MAX_IDS: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    limit: Option<i64>,
    after: Option<i64>,
    /// A batch lookup: `ids=1,2,3`.
    ids: Option<String>,
}

fn parse_ids(raw: &str) -> Result<Vec<i64>, ApiError> {
    let ids = raw
        .split(',')
        .map(|part| match part.trim().parse::<i64>() {
            Ok(id) if id > 0 => Ok(id),
            _ => Err(ApiError::BadRequest(format!(
                "`ids` must be positive integers separated by commas (`{part}` is not one)."
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ids.len() > MAX_IDS {
        return Err(ApiError::BadRequest(format!(
            "`ids` may name at most {MAX_IDS} clients (got {}).",
            ids.len()
        )));
    }
    Ok(ids)
}

async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Json<Vec<Client>>, ApiError> {
    let page = Page::new(params.limit, params.after)?;
    let filter = ClientFilter {
        ids: params.ids.as_deref().map(parse_ids).transpose()?,
    };
    Ok(Json(state.clients.list(page, &filter).await?))
}

/// With an `Idempotency-Key`, a retry of a create that succeeded gets the
/// same answer and creates nothing.
async fn create(
    State(state): State<AppState>,
    key: Option<IdempotencyKey>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let new = NewClient::parse(&body)?;
    let claim = match state
        .keys
        .claim(key, &fingerprint("POST", "/client/", &body))
        .await?
    {
        Claimed::Replay(response) => return Ok(response),
        Claimed::Fresh(claim) => claim,
    };
    let outcome = async {
        let mut tx = state.clients.begin().await?;
        let client = state.clients.insert(&mut tx, &new).await?;
        let created = Created::new(format!("/client/{}", client.id), &client)?;
        claim.complete(&mut tx, &created).await?;
        tx.commit().await.map_err(ApiError::from)?;
        Ok(created.into_response())
    }
    .await;
    claim.release_unless(outcome.is_ok()).await;
    outcome
}

async fn show(State(state): State<AppState>, Id(id): Id) -> Result<Json<Client>, ApiError> {
    state
        .clients
        .get(id)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(id))
}

async fn replace(
    State(state): State<AppState>,
    Id(id): Id,
    Json(body): Json<Value>,
) -> Result<Json<Client>, ApiError> {
    let new = NewClient::parse(&body)?;
    state
        .clients
        .update(id, &new)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(id))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteParams {
    #[serde(default)]
    cascade: bool,
}

/// A client with orders is deleted only with `?cascade=true`, which deletes
/// its orders first (through order_service), then the client.
async fn remove(
    State(state): State<AppState>,
    Id(id): Id,
    Query(params): Query<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    if state.clients.get(id).await?.is_none() {
        return Err(not_found(id));
    }
    if params.cascade {
        state.orders.delete_orders_of(id).await?;
    } else if state.orders.has_orders(id).await? {
        return Err(ApiError::Conflict(format!(
            "Client {id} still has orders: delete them first, or use `?cascade=true`."
        )));
    }
    match state.clients.delete(id).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(not_found(id)),
    }
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("There is no client {id}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_positive_and_bounded() {
        assert_eq!(parse_ids("1, 2,3").unwrap(), [1, 2, 3]);
        assert!(parse_ids("1,,2").is_err());
        assert!(parse_ids("0").is_err());
        assert!(parse_ids("x").is_err());
        let many = (1..=1001)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert!(parse_ids(&many).is_err());
    }
}
