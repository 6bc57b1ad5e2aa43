//! What the OpenAPI documents of every service share: the responses and
//! parameters that every resource has (declared once here, so that a
//! handler's annotation names them and says only what is particular to it),
//! serving the documents, the links between operations (for clients and
//! for stateful API testing), and the check that the committed document is
//! the one the code generates.
//!
//! A service describes its resource once ([`Resource`]) and names the
//! shared pieces after it, e.g. `type NotFound = api_doc::NotFound<Client>;`,
//! then `responses(Found, Malformed, NotFound)` in an annotation.

use std::{collections::BTreeMap, marker::PhantomData};

use axum::{Json, Router, routing::get};
use utoipa::{
    IntoParams, IntoResponses, ToSchema,
    openapi::{
        ContentBuilder, KnownFormat, ObjectBuilder, OpenApi, Ref, RefOr, Required, SchemaFormat,
        Type,
        header::HeaderBuilder,
        link::{Link, LinkBuilder},
        path::{Operation, Parameter, ParameterBuilder, ParameterIn},
        response::{Response, ResponseBuilder},
    },
};

use crate::problem::{PROBLEM_JSON, Problem};

/// How a service's resource is named in its document.
pub trait Resource {
    /// The resource's name in sentences: `client`.
    const NAME: &'static str;
    /// The description of the 422 answer: what an invalid write is.
    const INVALID: &'static str;
    /// The description of the 503 answer: what may be unavailable.
    const UNAVAILABLE: &'static str;
    /// The representation of one resource, as answered.
    type Body: ToSchema;
    /// The scope a caller needs to read (GET), e.g. `clients:read`.
    const READ_SCOPE: &'static str;
    /// The scope a caller needs for every other method, e.g. `clients:write`.
    const WRITE_SCOPE: &'static str;
}

/// The name of the OAuth2 security scheme in every document.
pub const OAUTH2_SCHEME: &str = "oauth2";

/// The token endpoint, as the documents name it: behind the gateway, on the
/// same origin as the documents (so the docs page's "Authorize" works).
pub const TOKEN_URL: &str = "/auth/token";

/// Declares the OAuth2 client-credentials scheme with `R`'s two scopes, and
/// on every operation the scope it needs (`R::READ_SCOPE` for GET, else
/// `R::WRITE_SCOPE`), its 401 and 403 answers, and what every operation may
/// be answered by the rate limits and the gateway ([`everywhere`]).
pub fn secure<R: Resource>(mut document: OpenApi) -> OpenApi {
    use utoipa::openapi::security::{
        ClientCredentials, Flow, OAuth2, Scopes, SecurityRequirement, SecurityScheme,
    };
    let scopes = Scopes::from_iter([
        (R::READ_SCOPE.to_owned(), format!("Read {}s", R::NAME)),
        (
            R::WRITE_SCOPE.to_owned(),
            format!("Create, change and delete {}s", R::NAME),
        ),
    ]);
    let flow = Flow::ClientCredentials(ClientCredentials::new(TOKEN_URL, scopes));
    let mut scheme = OAuth2::new([flow]);
    scheme.description = Some(
        "OAuth2 client credentials (RFC 6749 §4.4): POST the client id and secret to the token \
         endpoint, then send `Authorization: Bearer <access_token>`."
            .to_owned(),
    );
    document
        .components
        .get_or_insert_with(Default::default)
        .add_security_scheme(OAUTH2_SCHEME, SecurityScheme::OAuth2(scheme));
    let challenge = |description: &str| {
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(description))
            .build()
    };
    for item in document.paths.paths.values_mut() {
        let operations = [
            (item.get.as_mut(), R::READ_SCOPE),
            (item.put.as_mut(), R::WRITE_SCOPE),
            (item.post.as_mut(), R::WRITE_SCOPE),
            (item.delete.as_mut(), R::WRITE_SCOPE),
            (item.patch.as_mut(), R::WRITE_SCOPE),
        ];
        for (operation, scope) in operations {
            let Some(operation) = operation else { continue };
            operation.security = Some(vec![SecurityRequirement::new(OAUTH2_SCHEME, [scope])]);
            let responses = &mut operation.responses.responses;
            responses.insert(
                "401".to_owned(),
                RefOr::T(
                    problem("No access token, or one that is not valid here (malformed, expired, another issuer or audience).")
                        .header("WWW-Authenticate", challenge("`Bearer realm=…`, with `error=\"invalid_token\"` for a token that is not valid"))
                        .build(),
                ),
            );
            responses.extend(everywhere());
            responses.insert(
                "403".to_owned(),
                RefOr::T(
                    problem(&format!("The access token does not have the scope `{scope}`."))
                        .header("WWW-Authenticate", challenge("`Bearer realm=…, error=\"insufficient_scope\", scope=…`, naming the scope needed"))
                        .build(),
                ),
            );
        }
    }
    document
}

/// What any operation may be answered, whatever it is: by the rate limits
/// (the caller's at the service, the address's at the gateway), and by the
/// gateway for a request it cannot pass on. Each a problem+json.
fn everywhere() -> BTreeMap<String, RefOr<Response>> {
    let retry_after = || {
        HeaderBuilder::new()
            .schema(int64(0))
            .description(Some("Seconds to wait before retrying"))
            .build()
    };
    let mut responses = one(
        429,
        problem(
            "Too many requests: the caller (its access token's client and subject) is over its \
             rate at the service, or its address over the gateway's; nothing was changed.",
        )
        .header("Retry-After", retry_after()),
    );
    for (status, description) in [
        (
            414,
            "The request line (path and query) is longer than 8 KiB (the gateway's limit).",
        ),
        (
            431,
            "The request's header fields are too large (8 KiB each at the gateway) or too many (100 at the service).",
        ),
    ] {
        responses.append(&mut one(status, problem(description)));
    }
    for (status, description) in [
        (
            502,
            "The gateway could not reach an instance of the service; nothing was changed when the method is not POST or PATCH.",
        ),
        (504, "The service did not answer the gateway in time."),
    ] {
        let response = problem(description).header("Retry-After", retry_after());
        responses.append(&mut one(status, response));
    }
    responses
}

/// The pattern of an entity-tag list (`If-Match`, `If-None-Match`): `*`, or
/// tags separated by commas, where (RFC 9110, 5.6.1.2) empty elements and
/// spaces or tabs around them are allowed. What `conditional` accepts,
/// exactly (its tests check the two agree).
pub const ENTITY_TAGS: &str =
    r#"^[ \t]*(\*|[ \t,]*((W/)?"[!#-~]*"([ \t]*,[ \t,]*(W/)?"[!#-~]*")*[ \t,]*)?)[ \t]*$"#;

/// A response with a problem+json body.
fn problem(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(Problem::name())))
            .build(),
    )
}

/// A response with `R`'s representation as JSON and its `ETag`.
fn tagged<R: Resource>(description: String) -> ResponseBuilder {
    with_etag::<R>(ResponseBuilder::new().description(description)).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(R::Body::name())))
            .build(),
    )
}

fn with_etag<R: Resource>(response: ResponseBuilder) -> ResponseBuilder {
    response.header(
        "ETag",
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(format!("The version of the {}", R::NAME)))
            .build(),
    )
}

fn one(status: u16, response: ResponseBuilder) -> BTreeMap<String, RefOr<Response>> {
    BTreeMap::from([(status.to_string(), RefOr::T(response.build()))])
}

fn int64(minimum: i64) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(minimum))
}

/// A header parameter that may be left out.
fn optional_header(name: &str, pattern: &str, description: String) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(pattern)),
        ))
        .build()
}

/// Declares a response or parameter type: a unit struct for one that is
/// the same everywhere, a marker generic over the [`Resource`] otherwise.
macro_rules! shared_doc {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;
    };
    ($(#[$doc:meta])* $name:ident<R>) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name<R>(PhantomData<R>);
    };
}

shared_doc!(
    /// 400: a malformed request.
    Malformed
);
shared_doc!(
    /// 413 and 415: a body too large, or not of the accepted media type.
    BodyRejected
);
shared_doc!(
    /// 200 with the resource and its `ETag`.
    Found<R>
);
shared_doc!(
    /// 200 with the updated resource and its `ETag`.
    Updated<R>
);
shared_doc!(
    /// 204: the resource was deleted.
    Deleted<R>
);
shared_doc!(
    /// 304 with the `ETag` named in `If-None-Match`.
    NotModified<R>
);
shared_doc!(
    /// 404: no such resource.
    NotFound<R>
);
shared_doc!(
    /// 412: the resource changed since the version named in `If-Match`.
    Stale<R>
);
shared_doc!(
    /// 422: invalid fields.
    Invalid<R>
);
shared_doc!(
    /// 503 with `Retry-After`: a dependency cannot answer now.
    Unavailable<R>
);
shared_doc!(
    /// The resource's id in the path.
    IdPath<R>
);
shared_doc!(
    /// `If-Match`: write only if the resource is still at this version.
    IfMatch<R>
);
shared_doc!(
    /// `If-None-Match`: answer 304 if the resource is still at this version.
    IfNoneMatch<R>
);
shared_doc!(
    /// `Idempotency-Key`: a retried create is answered, not done again.
    IdempotencyKeyHeader
);

impl IntoResponses for Malformed {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        one(
            400,
            problem(
                "A malformed request: a body that is not JSON or has a key twice in one object, \
                 a path that could be read two ways (an encoded slash, a dot segment, ...), \
                 or a bad query or header.",
            ),
        )
    }
}

impl IntoResponses for BodyRejected {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = one(413, problem("The body is larger than 1 MiB."));
        responses.append(&mut one(
            415,
            problem("The body is not in the accepted media type."),
        ));
        responses
    }
}

impl<R: Resource> IntoResponses for Found<R> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        one(200, tagged::<R>(format!("The {}.", R::NAME)))
    }
}

impl<R: Resource> IntoResponses for Updated<R> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        one(200, tagged::<R>(format!("The updated {}.", R::NAME)))
    }
}

impl<R: Resource> IntoResponses for Deleted<R> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let description = format!("The {} was deleted.", R::NAME);
        one(204, ResponseBuilder::new().description(description))
    }
}

impl<R: Resource> IntoResponses for NotModified<R> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let description = format!(
            "The {} is still at the ETag given in If-None-Match.",
            R::NAME
        );
        one(
            304,
            with_etag::<R>(ResponseBuilder::new().description(description)),
        )
    }
}

impl<R: Resource> IntoResponses for NotFound<R> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        one(404, problem(&format!("There is no such {}.", R::NAME)))
    }
}

impl<R: Resource> IntoResponses for Stale<R> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let description = format!(
            "The {} changed since the version named in If-Match; nothing was changed.",
            R::NAME
        );
        one(412, problem(&description))
    }
}

impl<R: Resource> IntoResponses for Invalid<R> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        one(422, problem(R::INVALID))
    }
}

impl<R: Resource> IntoResponses for Unavailable<R> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let retry_after = HeaderBuilder::new()
            .schema(int64(0))
            .description(Some("Seconds to wait before retrying"))
            .build();
        one(
            503,
            problem(R::UNAVAILABLE).header("Retry-After", retry_after),
        )
    }
}

impl<R: Resource> IntoParams for IdPath<R> {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            ParameterBuilder::new()
                .name("id")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(format!("The {}'s id", R::NAME)))
                .schema(Some(int64(1)))
                .build(),
        ]
    }
}

impl<R: Resource> IntoParams for IfMatch<R> {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let description = format!(
            "Write only if the {} is still at this ETag (else 412)",
            R::NAME
        );
        vec![optional_header("If-Match", ENTITY_TAGS, description)]
    }
}

impl<R: Resource> IntoParams for IfNoneMatch<R> {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let description = format!("Answer 304 if the {} is still at this ETag", R::NAME);
        vec![optional_header("If-None-Match", ENTITY_TAGS, description)]
    }
}

impl IntoParams for IdempotencyKeyHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![optional_header(
            "Idempotency-Key",
            "^[!-~]{1,255}$",
            "Makes a retried create safe: the same key and body answer the first response again"
                .to_owned(),
        )]
    }
}

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

/// Links the `201` of `create_{name}` to the operations on what it created
/// (`get_`, `replace_`, `patch_` and `delete_{name}`, named `GetName`, …),
/// each taking the new resource's `id` from the response body.
pub fn link_create_to_item<R: Resource>(mut document: OpenApi) -> OpenApi {
    let name = R::NAME;
    let create = format!("create_{name}");
    for verb in ["get", "replace", "patch", "delete"] {
        let link = capitalized(verb) + &capitalized(name);
        let target = format!("{verb}_{name}");
        let id = [("id", "$response.body#/id")];
        add_link(&mut document, &create, "201", &link, &target, &id);
    }
    document
}

/// `word` with its first letter in upper case.
fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A service's `document()` (its `#[derive(OpenApi)]` type's document, with
/// the links from the create of `$resource` to what it created) and the
/// test that the committed `openapi.json` beside its `Cargo.toml` is that
/// document: `kit_http::api_document!(ApiDoc, Client);` in `openapi.rs`.
#[macro_export]
macro_rules! api_document {
    ($doc:ty, $resource:ty) => {
        /// The document, with the links from a create to what it created.
        pub fn document() -> utoipa::openapi::OpenApi {
            $crate::api_doc::secure::<$resource>($crate::api_doc::link_create_to_item::<$resource>(
                <$doc as utoipa::OpenApi>::openapi(),
            ))
        }

        #[cfg(test)]
        mod tests {
            #[test]
            fn the_committed_document_is_the_generated_one() {
                let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
                $crate::api_doc::assert_committed(&super::document(), path);
            }
        }
    };
}

/// For a service's test: panics, naming the first difference, unless the
/// committed document at `path` is `document` (see [`check_committed`]).
pub fn assert_committed(document: &OpenApi, path: impl AsRef<std::path::Path>) {
    if let Err(why) = check_committed(document, path.as_ref()) {
        panic!("{why}");
    }
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
