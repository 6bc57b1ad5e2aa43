//! What the OpenAPI documents of every service share: serving them, the
//! links between operations (for clients and for stateful API testing), and
//! the check that the committed document is the one the code generates.

use axum::{Json, Router, routing::get};
use utoipa::openapi::{
    OpenApi,
    link::{Link, LinkBuilder},
    path::Operation,
};

/// A route that serves `document` at `path`.
pub fn route(path: &str, document: &OpenApi) -> Router {
    let document = std::sync::Arc::new(to_json(document));
    Router::new().route(path, get(move || async move { Json((*document).clone()) }))
}

/// The document as JSON. utoipa 5 writes a Link's `operationId` as
/// `operation_id`; it is renamed here to what OpenAPI 3.1 says.
pub fn to_json(document: &OpenApi) -> serde_json::Value {
    let mut value = serde_json::to_value(document).unwrap_or_default();
    rename_link_keys(&mut value, false);
    value
}

fn rename_link_keys(value: &mut serde_json::Value, in_links: bool) {
    match value {
        serde_json::Value::Object(map) => {
            if in_links {
                for link in map.values_mut() {
                    if let Some(link) = link.as_object_mut()
                        && let Some(id) = link.remove("operation_id")
                    {
                        link.insert("operationId".into(), id);
                    }
                }
                return;
            }
            for (key, child) in map.iter_mut() {
                rename_link_keys(child, key == "links");
            }
        }
        serde_json::Value::Array(items) => {
            items.iter_mut().for_each(|v| rename_link_keys(v, false))
        }
        _ => {}
    }
}

/// The document as committed: pretty JSON with a final newline.
pub fn to_text(document: &OpenApi) -> String {
    let mut text = serde_json::to_string_pretty(&to_json(document)).unwrap_or_default();
    text.push('\n');
    text
}

/// Adds the link `name` to `operation_id`'s response `status`: the
/// operation it leads to, and that operation's parameters taken from the
/// response (runtime expressions such as `$response.body#/id`).
pub fn add_link(
    document: &mut OpenApi,
    from_operation: &str,
    status: &str,
    name: &str,
    to_operation: &str,
    parameters: &[(&str, &str)],
) {
    let mut link = LinkBuilder::new().operation_id(to_operation);
    for (parameter, expression) in parameters {
        link = link.parameter(*parameter, serde_json::Value::from(*expression));
    }
    let link: Link = link.build();
    for item in document.paths.paths.values_mut() {
        for operation in operations(item) {
            if operation.operation_id.as_deref() == Some(from_operation)
                && let Some(utoipa::openapi::RefOr::T(response)) =
                    operation.responses.responses.get_mut(status)
            {
                response
                    .links
                    .insert(name.to_owned(), utoipa::openapi::RefOr::T(link.clone()));
            }
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// Compares `document` with the committed file at `path`; with
/// `UPDATE_OPENAPI=1` in the environment, writes it instead. Returns a
/// message naming the difference, for a test to fail with.
pub fn check_committed(document: &OpenApi, path: &std::path::Path) -> Result<(), String> {
    let generated = to_text(document);
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        return std::fs::write(path, &generated).map_err(|e| e.to_string());
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    if committed == generated {
        return Ok(());
    }
    let line = committed
        .lines()
        .zip(generated.lines())
        .position(|(a, b)| a != b)
        .map_or(
            committed.lines().count().min(generated.lines().count()),
            |n| n,
        )
        + 1;
    Err(format!(
        "{} differs from the document the code generates (first at line {line}); \
         review the API change, then run `UPDATE_OPENAPI=1 cargo test` to update it",
        path.display()
    ))
}
