//! client_service's OpenAPI 3.1 document, generated from the handlers'
//! annotations in `routes.rs` and the schemas in `schema.rs`; served at
//! `GET /client/openapi.json` and committed as `openapi.json`.

use kit_http::problem::{FieldError, Problem};
use utoipa::OpenApi;

use crate::{
    domain::{Client, ClientInput, ClientPatch},
    routes,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "client_service",
        description = "Clients and their membership cards. Errors are RFC 9457 problem+json.",
        version = env!("CARGO_PKG_VERSION"),
    ),
    paths(
        routes::list_clients,
        routes::create_client,
        routes::get_client,
        routes::replace_client,
        routes::patch_client,
        routes::delete_client
    ),
    components(schemas(Client, ClientInput, ClientPatch, Problem, FieldError)),
    tags((name = "clients", description = "Clients and their membership cards"))
)]
struct ApiDoc;

kit_http::api_document!(ApiDoc, Client);
