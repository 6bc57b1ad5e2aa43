//! The HTTP API of client_service: `/client/…`.

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
use kit_http::extract::{Body, Id, PatchBody, QueryParams, optional_whole_number};
use kit_http::idempotency::{Created, IdempotencyKey, IdempotencyKeys};
use kit_http::pagination::{Listed, Page};
use kit_http::problem::Problem;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::{
    domain::{Client, ClientChanges, ClientInput, ClientName, ClientPatch, NewClient},
    orders::OrderService,
    schema::{
        BodyRejected, Deleted, Found, IdPath, IdempotencyKeyHeader, IfMatch, IfNoneMatch, Invalid,
        Malformed, NotFound, NotModified, Stale, Unavailable, Updated,
    },
    store::{CardTaken, ClientFilter, ClientStore},
};

/// What every handler gets (behind one `Arc`: a request clones one
/// reference count, not one per pool and client inside): the store, the client for order_service and the
/// idempotency keys.
#[derive(Clone, Debug)]
pub struct AppState {
    pub clients: ClientStore,
    pub orders: OrderService,
    pub keys: IdempotencyKeys,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/client/", get(list_clients).post(create_client))
        .route(
            "/client/{id}",
            get(get_client)
                .put(replace_client)
                .patch(patch_client)
                .delete(delete_client),
        )
        .with_state(Arc::new(state))
}

/// The most ids one batch lookup may name.
const MAX_IDS: usize = 1000;

/// How often a PATCH without `If-Match` is applied again after losing a race.
const MAX_PATCH_ATTEMPTS: usize = 3;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size: 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "optional_whole_number")]
    limit: Option<i64>,
    /// Only clients with a greater id (the last id of the previous page).
    #[param(minimum = 0)]
    #[serde(default, deserialize_with = "optional_whole_number")]
    after: Option<i64>,
    /// A batch lookup: at most 1000 ids, separated by commas.
    #[param(
        pattern = r"^[1-9][0-9]{0,17}(,[1-9][0-9]{0,17}){0,999}$",
        example = "1,2,3"
    )]
    ids: Option<String>,
    /// Only names that start with this text, ignoring case.
    #[param(max_length = 200)]
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
#[utoipa::path(get, path = "/client/", tag = "clients",
    params(ListParams),
    responses(
        (status = 200, description = "A page of clients, ordered by id; `Link: <…>; rel=\"next\"` when there are more.", body = [Client],
            headers(("Link" = String, description = "The next page, when there is one"))),
        Malformed
    )
)]
pub async fn list_clients(
    State(state): State<Arc<AppState>>,
    QueryParams(params): QueryParams<ListParams>,
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
#[utoipa::path(post, path = "/client/", tag = "clients",
    params(IdempotencyKeyHeader),
    request_body(content = ClientInput, content_type = "application/json"),
    responses(
        (status = 201, description = "The client was created.", body = Client,
            headers(("Location" = String, description = "/client/{id}"), ("ETag" = String, description = "The version of the client"))),
        (status = 409, description = "The card number belongs to another client.", body = Problem, content_type = "application/problem+json"),
        Malformed, BodyRejected, Invalid
    )
)]
pub async fn create_client(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Principal>>,
    key: Option<IdempotencyKey>,
    body: Body<ClientInput>,
) -> Result<Response, ApiError> {
    let new = NewClient::try_from(body.input)?;
    state
        .keys
        .create(
            &caller.caller(),
            key,
            "/client/",
            &body.json,
            async |keyed| {
                let respond =
                    |client: &Client| Created::new(format!("/client/{}", client.id), client);
                let client = state
                    .clients
                    .insert(&new, keyed.alongside(&respond))
                    .await?
                    .map_err(|CardTaken| card_taken(&new))?;
                respond(&client)
            },
        )
        .await
}

/// One client, with its `ETag`; 304 when `If-None-Match` names it.
#[utoipa::path(
    get,
    path = "/client/{id}",
    tag = "clients",
    params(IdPath, IfNoneMatch),
    responses(Found, NotModified, Malformed, NotFound)
)]
pub async fn get_client(
    State(state): State<Arc<AppState>>,
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
#[utoipa::path(put, path = "/client/{id}", tag = "clients",
    params(IdPath, IfMatch),
    request_body(content = ClientInput, content_type = "application/json"),
    responses(
        (status = 409, description = "The card number belongs to another client.", body = Problem, content_type = "application/problem+json"),
        Updated, Malformed, NotFound, Stale, BodyRejected, Invalid
    )
)]
pub async fn replace_client(
    State(state): State<Arc<AppState>>,
    Id(id): Id,
    preconditions: Preconditions,
    body: Body<ClientInput>,
) -> Result<Tagged<Client>, ApiError> {
    let new = NewClient::try_from(body.input)?;
    let current = state.clients.get(id).await?.ok_or_else(|| not_found(id))?;
    let expected = preconditions.expected_version(current.version)?;
    let client = state
        .clients
        .update(id, &new, expected)
        .await?
        .map_err(|CardTaken| card_taken(&new))?
        .done(|| not_found(id))?;
    Ok(Tagged::ok(client.version, client))
}

/// JSON Merge Patch: only the fields given change, with the rules of PUT.
/// Without `If-Match` a concurrent write is not lost either: the patch is
/// applied again to the newer version.
#[utoipa::path(patch, path = "/client/{id}", tag = "clients",
    params(IdPath, IfMatch),
    request_body(content = ClientPatch, content_type = "application/merge-patch+json"),
    responses(
        (status = 409, description = "The card number belongs to another client.", body = Problem, content_type = "application/problem+json"),
        Updated, Malformed, NotFound, Stale, BodyRejected, Invalid
    )
)]
pub async fn patch_client(
    State(state): State<Arc<AppState>>,
    Id(id): Id,
    preconditions: Preconditions,
    PatchBody(patch): PatchBody<ClientPatch>,
) -> Result<Tagged<Client>, ApiError> {
    let changes = ClientChanges::try_from(patch)?;
    for _ in 0..MAX_PATCH_ATTEMPTS {
        let current = state.clients.get(id).await?.ok_or_else(|| not_found(id))?;
        preconditions.expected_version(current.version)?;
        let new = changes.applied_to(&current);
        let written = state
            .clients
            .update(id, &new, Some(current.version))
            .await?
            .map_err(|CardTaken| card_taken(&new))?;
        match written {
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// Delete the client's orders first (through order_service).
    #[serde(default)]
    cascade: bool,
}

/// A client with orders is deleted only with `?cascade=true`, which deletes
/// its orders first (through order_service), then the client. Either way
/// order_service records the client as deleted before the client goes, so
/// that no order created meanwhile outlives it (see the README).
#[utoipa::path(delete, path = "/client/{id}", tag = "clients",
    params(IdPath, DeleteParams, IfMatch),
    responses(
        (status = 409, description = "The client still has orders (use `?cascade=true`).", body = Problem, content_type = "application/problem+json"),
        Deleted, Malformed, NotFound, Stale, Unavailable
    )
)]
pub async fn delete_client(
    State(state): State<Arc<AppState>>,
    Id(id): Id,
    preconditions: Preconditions,
    QueryParams(params): QueryParams<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    let current = state.clients.get(id).await?.ok_or_else(|| not_found(id))?;
    let expected = preconditions.expected_version(current.version)?;
    if !params.cascade && state.orders.has_orders(id).await? {
        return Err(ApiError::Conflict(format!(
            "Client {id} still has orders: delete them first, or use `?cascade=true`."
        )));
    }
    // From here order_service takes no order for the client, and deletes
    // those it has: with the cascade, all of them; without, any created
    // since the check above. If this fails, the client stays, takes no new
    // order, and the next DELETE finishes.
    state.orders.delete_orders_of(id).await?;
    state
        .clients
        .delete(id, expected)
        .await?
        .done(|| not_found(id))?;
    Ok(StatusCode::NO_CONTENT)
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("There is no client {id}."))
}

/// The 409 of a card number that another client has.
fn card_taken(new: &NewClient) -> ApiError {
    ApiError::Conflict(format!(
        "A client with card number `{}` already exists.",
        new.card_number.as_str()
    ))
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
