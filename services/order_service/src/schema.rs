//! What order_service's OpenAPI document says of its answers: the kit's
//! shared responses and parameters, named for orders. The handlers'
//! annotations in `routes.rs` use them, with the bodies' schemas (the body
//! types themselves, in `domain.rs`); `openapi.rs` assembles the document.

use kit_http::api_doc::{self, Resource};

use crate::domain::{Order, OrderView};

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
