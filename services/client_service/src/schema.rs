//! What client_service's OpenAPI document says of its bodies and answers:
//! the schemas of the request bodies, and the kit's shared responses and
//! parameters named for clients. The handlers' annotations in `routes.rs`
//! use them; `openapi.rs` assembles the document.

use service_kit::http::api_doc::{self, Resource};
use utoipa::ToSchema;

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

/// The writable fields of a client: the body of POST and PUT.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Ada Lovelace", "card_number": "AL-1815", "card_issued_on": "2020-02-29"}))]
pub struct ClientInput {
    /// 1 to 200 characters once trimmed (stored trimmed); no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// 1 to 32 of A-Z, a-z, 0-9 and `-`; unique among clients.
    #[schema(min_length = 1, max_length = 32, pattern = "^[A-Za-z0-9-]{1,32}$")]
    pub card_number: String,
    /// A real calendar date, from 1900-01-01, not in the future (UTC).
    #[schema(format = Date, pattern = r"^\d{4}-\d{2}-\d{2}$")]
    pub card_issued_on: String,
    /// Read-only (as returned by GET): accepted and ignored.
    pub id: Option<serde_json::Value>,
    /// Read-only: accepted and ignored.
    pub created_at: Option<serde_json::Value>,
    /// Read-only: accepted and ignored.
    pub updated_at: Option<serde_json::Value>,
}

/// A JSON Merge Patch of a client: only the fields given change.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Ada King"}))]
pub struct ClientPatch {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    #[schema(nullable = false)]
    pub name: Option<String>,
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 32,
        pattern = "^[A-Za-z0-9-]{1,32}$"
    )]
    pub card_number: Option<String>,
    #[schema(nullable = false, format = Date, pattern = r"^\d{4}-\d{2}-\d{2}$")]
    pub card_issued_on: Option<String>,
    /// Read-only (as returned by GET): accepted and ignored.
    pub id: Option<serde_json::Value>,
    /// Read-only: accepted and ignored.
    pub created_at: Option<serde_json::Value>,
    /// Read-only: accepted and ignored.
    pub updated_at: Option<serde_json::Value>,
}
