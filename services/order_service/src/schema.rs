//! What order_service's OpenAPI document says of its bodies and answers:
//! the schemas of the request bodies, and the kit's shared responses and
//! parameters named for orders. The handlers' annotations in `routes.rs`
//! use them; `openapi.rs` assembles the document.

use service_kit::http::api_doc::{self, Resource};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        RefOr, Schema,
        schema::{ObjectBuilder, OneOfBuilder, SchemaType, Type},
    },
};

use crate::domain::{Order, OrderStatus, OrderView};

impl Resource for Order {
    const NAME: &'static str = "order";
    const INVALID: &'static str = "Invalid fields, each listed in `errors` (including a client that does not exist); nothing was changed.";
    const UNAVAILABLE: &'static str = "client_service or the database cannot answer now, or the database's storage is full; nothing was changed. Retry after `Retry-After` seconds.";
    const READ_SCOPE: &'static str = "orders:read";
    const WRITE_SCOPE: &'static str = "orders:write";
    type Body = OrderView;
}

pub type Found = api_doc::Found<Order>;
pub type Updated = api_doc::Updated<Order>;
pub type Deleted = api_doc::Deleted<Order>;
pub type NotModified = api_doc::NotModified<Order>;
pub type NotFound = api_doc::NotFound<Order>;
pub type Stale = api_doc::Stale<Order>;
pub type Invalid = api_doc::Invalid<Order>;
pub type Unavailable = api_doc::Unavailable<Order>;
pub type IdPath = api_doc::IdPath<Order>;
pub type IfMatch = api_doc::IfMatch<Order>;
pub type IfNoneMatch = api_doc::IfNoneMatch<Order>;
pub use api_doc::{BodyRejected, IdempotencyKeyHeader, Malformed};

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

// ANCHOR: order_input
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
// ANCHOR_END: order_input

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
