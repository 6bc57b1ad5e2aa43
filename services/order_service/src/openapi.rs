//! order_service's OpenAPI 3.1 document, generated from the handlers'
//! annotations in `routes.rs` and the types below; served at
//! `GET /order/openapi.json` and committed as `openapi.json`.

use utoipa::{
    OpenApi, PartialSchema, ToSchema,
    openapi::{
        RefOr, Schema,
        schema::{ObjectBuilder, OneOfBuilder, SchemaType, Type},
    },
};

use crate::{
    domain::{ClientSummary, OrderStatus, OrderView},
    routes,
};
use shared::problem::{FieldError, Problem};

/// A price as accepted: a string like "12.50" or a number like 12.5.
pub struct PriceInput;

impl PartialSchema for PriceInput {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .pattern(Some(r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$"))
                    .examples(["12.50"]),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::Number))
                    .minimum(Some(0.0))
                    .maximum(Some(1_000_000_000.0))
                    .multiple_of(Some(0.01))
                    .examples([12.5]),
            )
            .description(Some(
                "A non-negative amount with at most 2 decimals, at most 1000000000.00; a string or a number.",
            ))
            .into()
    }
}

impl ToSchema for PriceInput {}

/// The body of POST: quantity and status have defaults.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"client_id": 1, "item": "Analytical Engine", "quantity": 1, "price": "12.50", "status": "new"}))]
pub struct OrderInput {
    /// The id of an existing client of client_service.
    #[schema(minimum = 1)]
    pub client_id: i64,
    /// 1 to 200 characters once trimmed; no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub item: String,
    /// 1 to 1000000; 1 when not given on POST.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: Option<i32>,
    #[schema(schema_with = PriceInput::schema)]
    pub price: String,
    /// `new` when not given on POST.
    pub status: Option<OrderStatus>,
    /// Read-only (as returned by GET): accepted and ignored.
    pub id: Option<serde_json::Value>,
    /// Read-only: accepted and ignored.
    pub created_at: Option<serde_json::Value>,
    /// Read-only: accepted and ignored.
    pub updated_at: Option<serde_json::Value>,
    /// Read-only: accepted and ignored.
    pub client: Option<serde_json::Value>,
}

/// The body of PUT: every writable field.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"client_id": 1, "item": "Difference Engine", "quantity": 2, "price": "99.90", "status": "paid"}))]
pub struct OrderReplace {
    #[schema(minimum = 1)]
    pub client_id: i64,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub item: String,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: i32,
    #[schema(schema_with = PriceInput::schema)]
    pub price: String,
    pub status: OrderStatus,
    /// Read-only (as returned by GET): accepted and ignored.
    pub id: Option<serde_json::Value>,
    /// Read-only: accepted and ignored.
    pub created_at: Option<serde_json::Value>,
    /// Read-only: accepted and ignored.
    pub updated_at: Option<serde_json::Value>,
    /// Read-only: accepted and ignored.
    pub client: Option<serde_json::Value>,
}

/// A JSON Merge Patch of an order: only the fields given change.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "paid"}))]
pub struct OrderPatch {
    #[schema(nullable = false, minimum = 1)]
    pub client_id: Option<i64>,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    #[schema(nullable = false)]
    pub item: Option<String>,
    #[schema(nullable = false, minimum = 1, maximum = 1_000_000)]
    pub quantity: Option<i32>,
    #[schema(nullable = false, schema_with = PriceInput::schema)]
    pub price: Option<String>,
    #[schema(nullable = false)]
    pub status: Option<OrderStatus>,
    /// Read-only (as returned by GET): accepted and ignored.
    pub id: Option<serde_json::Value>,
    /// Read-only: accepted and ignored.
    pub created_at: Option<serde_json::Value>,
    /// Read-only: accepted and ignored.
    pub updated_at: Option<serde_json::Value>,
    /// Read-only: accepted and ignored.
    pub client: Option<serde_json::Value>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "order_service",
        description = "Orders of the clients of client_service, with each client's current details. Errors are RFC 9457 problem+json.",
        version = env!("CARGO_PKG_VERSION"),
    ),
    paths(
        routes::list,
        routes::create,
        routes::remove_by_client,
        routes::show,
        routes::replace,
        routes::patch,
        routes::remove
    ),
    components(schemas(OrderView, ClientSummary, OrderStatus, OrderInput, OrderReplace, OrderPatch, Problem, FieldError)),
    tags((name = "orders", description = "Orders, each of one client"))
)]
struct ApiDoc;

/// The document, with the links between its operations.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    let id = [("id", "$response.body#/id")];
    for (name, target) in [
        ("GetOrder", "get_order"),
        ("ReplaceOrder", "replace_order"),
        ("PatchOrder", "patch_order"),
        ("DeleteOrder", "delete_order"),
    ] {
        shared::openapi::add_link(&mut document, "create_order", "201", name, target, &id);
    }
    document
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_document_is_the_generated_one() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
        if let Err(why) = shared::openapi::check_committed(&super::document(), &path) {
            panic!("{why}");
        }
    }
}
