//! client_service's OpenAPI 3.1 document, generated from the handlers'
//! annotations in `routes.rs` and the types below; served at
//! `GET /client/openapi.json` and committed as `openapi.json`.

use utoipa::{OpenApi, ToSchema};

use crate::{domain::Client, routes};
use shared::problem::{FieldError, Problem};

/// The regex of a name: no control characters, not only white space.
pub const NAME_PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";

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

#[derive(OpenApi)]
#[openapi(
    info(
        title = "client_service",
        description = "Clients and their membership cards. Errors are RFC 9457 problem+json.",
        version = env!("CARGO_PKG_VERSION"),
    ),
    paths(
        routes::list,
        routes::create,
        routes::show,
        routes::replace,
        routes::patch,
        routes::remove
    ),
    components(schemas(Client, ClientInput, ClientPatch, Problem, FieldError)),
    tags((name = "clients", description = "Clients and their membership cards"))
)]
struct ApiDoc;

/// The document, with the links between its operations.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    let id = [("id", "$response.body#/id")];
    for (name, target) in [
        ("GetClient", "get_client"),
        ("ReplaceClient", "replace_client"),
        ("PatchClient", "patch_client"),
        ("DeleteClient", "delete_client"),
    ] {
        shared::openapi::add_link(&mut document, "create_client", "201", name, target, &id);
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
