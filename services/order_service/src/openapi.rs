//! order_service's OpenAPI 3.1 document, generated from the handlers'
//! annotations in `routes.rs` and the bodies' types in `domain.rs`; served at
//! `GET /order/openapi.json` and committed as `openapi.json`.

use kit_http::problem::{FieldError, Problem};
use utoipa::OpenApi;

use crate::{
    domain::{ClientSummary, Order, OrderInput, OrderPatch, OrderReplace, OrderStatus, OrderView},
    routes,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "order_service",
        description = "Orders of the clients of client_service, with each client's current details. Errors are RFC 9457 problem+json.",
        version = env!("CARGO_PKG_VERSION"),
    ),
    paths(
        routes::list_orders,
        routes::create_order,
        routes::delete_orders_of_client,
        routes::get_order,
        routes::replace_order,
        routes::patch_order,
        routes::delete_order
    ),
    components(schemas(OrderView, ClientSummary, OrderStatus, OrderInput, OrderReplace, OrderPatch, Problem, FieldError)),
    tags((name = "orders", description = "Orders, each of one client"))
)]
struct ApiDoc;

kit_http::api_document!(ApiDoc, Order);
