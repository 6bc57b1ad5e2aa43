//! The HTTP surface every service shares: errors as problem+json
//! ([`problem`]), extractors whose rejections are problems ([`extract`]),
//! field-by-field parsing of bodies ([`validate`]), keyset pages
//! ([`pagination`]), conditional requests ([`conditional`]), the OpenAPI
//! documents ([`api_doc`]) and the rules of a readable request target
//! ([`target`]). Depends on [`crate::observability`] (a problem
//! names its request id).

pub mod api_doc;
pub mod conditional;
pub mod extract;
pub mod pagination;
pub mod problem;
pub mod target;
pub mod validate;
