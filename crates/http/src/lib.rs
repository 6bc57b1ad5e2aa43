//! The HTTP surface every service shares: errors as problem+json, the
//! store's errors mapped once ([`problem`]), extractors whose rejections are
//! problems ([`extract`]), field-by-field parsing of bodies ([`validate`]),
//! keyset pages ([`pagination`]), conditional requests ([`conditional`]),
//! safe retries of creates ([`idempotency`]), the OpenAPI documents
//! ([`api_doc`]), the rules of a readable request target ([`target`]) and
//! the layers that make every error a problem ([`layers`]). Depends on
//! kit-observability (a problem names its request id) and on kit-data's
//! types (no database backend).

pub mod api_doc;
pub mod conditional;
pub mod extract;
pub mod idempotency;
pub mod layers;
pub mod pagination;
pub mod problem;
pub mod target;
pub mod validate;

pub use problem::{ApiError, FieldError};
