//! What client_service's OpenAPI document says of its answers: the kit's
//! shared responses and parameters, named for clients. The handlers'
//! annotations in `routes.rs` use them, with the bodies' schemas (the body
//! types themselves, in `domain.rs`); `openapi.rs` assembles the document.

use kit_http::api_doc::{self, Resource};

use crate::domain::Client;

impl Resource for Client {
    const NAME: &'static str = "client";
    const INVALID: &'static str = "Invalid fields, each listed in `errors`; nothing was changed.";
    const UNAVAILABLE: &'static str = "A dependency (order_service, the database) cannot answer now, or the database's storage is full; nothing was changed. Retry after `Retry-After` seconds.";
    const READ_SCOPE: &'static str = "clients:read";
    const WRITE_SCOPE: &'static str = "clients:write";
    type Body = Client;
}

pub type Found = api_doc::Found<Client>;
pub type Updated = api_doc::Updated<Client>;
pub type Deleted = api_doc::Deleted<Client>;
pub type NotModified = api_doc::NotModified<Client>;
pub type NotFound = api_doc::NotFound<Client>;
pub type Stale = api_doc::Stale<Client>;
pub type Invalid = api_doc::Invalid<Client>;
pub type Unavailable = api_doc::Unavailable<Client>;
pub type IdPath = api_doc::IdPath<Client>;
pub type IfMatch = api_doc::IfMatch<Client>;
pub type IfNoneMatch = api_doc::IfNoneMatch<Client>;
pub use api_doc::{BodyRejected, IdempotencyKeyHeader, Malformed};
