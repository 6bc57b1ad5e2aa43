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
    conditional::{Preconditions, Tagged, changed_since, not_modified},
    db::Written,
    extract::{Id, Json, Listed, MergePatch, Page, Query},
    idempotency::{Claimed, Created, IdempotencyKey, IdempotencyKeys, fingerprint},
};

use crate::{
    domain::{Client, ClientName, NewClient},
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
        .route(
            "/client/{id}",
            get(show).put(replace).patch(patch).delete(remove),
        )
        .with_state(state)
}

/// The most ids one batch lookup may name.
const MAX_IDS: usize = 1000;

/// How often a PATCH without `If-Match` is applied again after losing a race.
const MAX_PATCH_ATTEMPTS: usize = 3;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    limit: Option<i64>,
    after: Option<i64>,
    /// A batch lookup: `ids=1,2,3`.
    ids: Option<String>,
    /// Names that start with this, ignoring case.
    name: Option<String>,
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

/// A page of clients, ordered by id, with a `Link` to the next page.
async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Listed<Client>, ApiError> {
    let page = Page::new(params.limit, params.after)?;
    if params
        .name
        .as_deref()
        .is_some_and(|n| n.chars().count() > ClientName::MAX_CHARS)
    {
        return Err(ApiError::BadRequest(
            "`name` is longer than any name.".into(),
        ));
    }
    let filter = ClientFilter {
        ids: params.ids.as_deref().map(parse_ids).transpose()?,
        name_prefix: params.name.clone(),
    };
    let rows = state.clients.list(page, &filter).await?;
    let mut kept: Vec<(&str, String)> = Vec::new();
    if let Some(ids) = params.ids {
        kept.push(("ids", ids));
    }
    if let Some(name) = params.name {
        kept.push(("name", name));
    }
    Ok(page.finish(rows, |c| c.id, "/client/", &kept))
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

/// One client, with its `ETag`; 304 when `If-None-Match` names it.
async fn show(
    State(state): State<AppState>,
    Id(id): Id,
    preconditions: Preconditions,
) -> Result<Response, ApiError> {
    let client = state.clients.get(id).await?.ok_or_else(|| not_found(id))?;
    if preconditions.not_modified(client.version) {
        return Ok(not_modified(client.version));
    }
    Ok(Tagged::ok(client.version, client).into_response())
}

/// Replaces every writable field; with `If-Match`, only if unchanged.
async fn replace(
    State(state): State<AppState>,
    Id(id): Id,
    preconditions: Preconditions,
    Json(body): Json<Value>,
) -> Result<Tagged<Client>, ApiError> {
    let new = NewClient::parse(&body)?;
    let current = state.clients.get(id).await?.ok_or_else(|| not_found(id))?;
    let expected = preconditions.expected_version(current.version)?;
    match state.clients.update(id, &new, expected).await? {
        Written::Done(client) => Ok(Tagged::ok(client.version, client)),
        Written::Stale => Err(changed_since()),
        Written::Missing => Err(not_found(id)),
    }
}

/// JSON Merge Patch: only the fields given change, with the rules of PUT.
/// Without `If-Match` a concurrent write is not lost either: the patch is
/// applied again to the newer version.
async fn patch(
    State(state): State<AppState>,
    Id(id): Id,
    preconditions: Preconditions,
    patch: MergePatch,
) -> Result<Tagged<Client>, ApiError> {
    for _ in 0..MAX_PATCH_ATTEMPTS {
        let current = state.clients.get(id).await?.ok_or_else(|| not_found(id))?;
        preconditions.expected_version(current.version)?;
        let mut fields = current.writable_fields();
        patch.apply_to(&mut fields);
        let new = NewClient::parse(&Value::Object(fields))?;
        match state
            .clients
            .update(id, &new, Some(current.version))
            .await?
        {
            Written::Done(client) => return Ok(Tagged::ok(client.version, client)),
            Written::Missing => return Err(not_found(id)),
            Written::Stale if preconditions.has_if_match() => return Err(changed_since()),
            Written::Stale => continue,
        }
    }
    Err(ApiError::Conflict(format!(
        "Client {id} is being changed by others; retry the patch."
    )))
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
    preconditions: Preconditions,
    Query(params): Query<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    let current = state.clients.get(id).await?.ok_or_else(|| not_found(id))?;
    let expected = preconditions.expected_version(current.version)?;
    if params.cascade {
        state.orders.delete_orders_of(id).await?;
    } else if state.orders.has_orders(id).await? {
        return Err(ApiError::Conflict(format!(
            "Client {id} still has orders: delete them first, or use `?cascade=true`."
        )));
    }
    match state.clients.delete(id, expected).await? {
        Written::Done(()) => Ok(StatusCode::NO_CONTENT),
        Written::Stale => Err(changed_since()),
        Written::Missing => Err(not_found(id)),
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
