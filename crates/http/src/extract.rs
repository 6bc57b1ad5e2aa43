//! Extractors whose rejections are [`ApiError`]s, so that a malformed body or
//! query is answered in problem+json like every other error.
//!
//! A JSON body that has the same key twice in one object, at any depth, is
//! a 400 naming the key ([`reject_duplicate_keys`]): RFC 8259 leaves it to
//! each reader which of the values counts (serde_json takes the last, many
//! proxies and loggers the first), so such a body can mean one thing to the
//! service and another to whatever read it on the way; I-JSON (RFC 7493)
//! forbids it.

use std::{borrow::Cow, collections::HashSet, fmt};

use axum::{
    body::Bytes,
    extract::{
        FromRequest, FromRequestParts, Request,
        rejection::{JsonRejection, PathRejection, QueryRejection},
    },
    http::{StatusCode, request::Parts},
};
use serde::{
    Deserialize, Deserializer,
    de::{DeserializeOwned, DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor},
};

use crate::problem::ApiError;

/// A request body of type `T`, a struct of [`Member`](crate::validate::Member)s
/// that is also the body's OpenAPI schema (`ToSchema`), and the JSON it was
/// read from. Read as `application/json`; for a JSON Merge Patch (RFC 7396)
/// see [`PatchBody`].
///
/// What is refused here, before a handler runs: another media type (415),
/// a body that is not JSON or has a key twice (400), one that is not an
/// object, and every member that is not a field of `T`'s schema, each
/// named (422). What the members hold is checked by the domain, field by
/// field (`validate::Checks`), so that one 422 lists every invalid field.
#[derive(Debug, Clone)]
pub struct Body<T> {
    pub input: T,
    pub json: serde_json::Value,
}

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned + utoipa::ToSchema + 'static,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_media_type(&req, &["application/json"])?;
        body_of(req, state).await
    }
}

/// A JSON Merge Patch body (`application/merge-patch+json`, or plain
/// `application/json`) of type `T`: as [`Body`], each member a field of
/// `T`'s schema.
#[derive(Debug, Clone)]
pub struct PatchBody<T>(pub T);

impl<T, S> FromRequest<S> for PatchBody<T>
where
    T: DeserializeOwned + utoipa::ToSchema + 'static,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_media_type(&req, &["application/merge-patch+json", "application/json"])?;
        body_of(req, state).await.map(|body| Self(body.input))
    }
}

async fn body_of<T, S>(req: Request, state: &S) -> Result<Body<T>, ApiError>
where
    T: DeserializeOwned + utoipa::ToSchema + 'static,
    S: Send + Sync,
{
    let json: serde_json::Value = json_body(req, state).await?;
    let serde_json::Value::Object(members) = &json else {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    };
    let known = schema_fields::<T>();
    let strangers: Vec<_> = members
        .keys()
        .filter(|key| !known.contains(key))
        .map(|key| crate::problem::FieldError::new(key.as_str(), "is not a field of this resource"))
        .collect();
    if !strangers.is_empty() {
        return Err(ApiError::Validation(strangers));
    }
    let input = T::deserialize(&json).map_err(|err| ApiError::invalid("body", err.to_string()))?;
    Ok(Body { input, json })
}

/// The names of the properties of `T`'s schema: the fields a body of `T`
/// may have. Worked out once per type.
fn schema_fields<T: utoipa::ToSchema + 'static>() -> std::sync::Arc<[String]> {
    use std::{
        any::TypeId,
        collections::HashMap,
        sync::{Arc, Mutex, OnceLock},
    };
    static FIELDS: OnceLock<Mutex<HashMap<TypeId, Arc<[String]>>>> = OnceLock::new();
    let cache = FIELDS.get_or_init(Default::default);
    let mut cache = cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    cache
        .entry(TypeId::of::<T>())
        .or_insert_with(|| {
            use utoipa::openapi::{RefOr, schema::Schema};
            match T::schema() {
                RefOr::T(Schema::Object(object)) => object.properties.keys().cloned().collect(),
                _ => Arc::from([]),
            }
        })
        .clone()
}

/// The body, read whole (413 beyond the body limit), checked for duplicate
/// keys (400), then parsed (400 if it is not JSON, 422 if it does not fit
/// `T`).
async fn json_body<T: DeserializeOwned, S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<T, ApiError> {
    let bytes = Bytes::from_request(req, state)
        .await
        .map_err(|rejection| json_rejection(rejection.into()))?;
    reject_duplicate_keys(&bytes)?;
    match axum::Json::<T>::from_bytes(&bytes) {
        Ok(axum::Json(value)) => Ok(value),
        Err(rejection) => Err(json_rejection(rejection)),
    }
}

/// A key found twice in one object of a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// The object's place in the document, as a JSON Pointer (RFC 6901):
    /// `""` for the top level, `/items/0` for the first item's object.
    pub pointer: String,
    /// The key, as its string reads once decoded (`"\u0061"` is `a`).
    pub key: String,
}

impl fmt::Display for DuplicateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = if self.pointer.is_empty() {
            "the top-level object".to_owned()
        } else {
            format!("the object at `{}`", self.pointer)
        };
        write!(
            f,
            "The body has the key `{}` more than once in {place}: the keys of a JSON object must be unique (RFC 7493), or readers disagree on its value.",
            self.key
        )
    }
}

impl From<DuplicateKey> for ApiError {
    fn from(duplicate: DuplicateKey) -> Self {
        ApiError::BadRequest(duplicate.to_string())
    }
}

/// Finds the first key that appears twice in one object of `json`, at any
/// depth. One pass of serde_json's own parser over the bytes with a visitor
/// that keeps only the keys of the objects it is inside (borrowed from the
/// bytes unless they hold escapes); nothing else is built, and the place of
/// the object is put together only once a duplicate is found, on the way
/// out. A document that is not JSON passes: parsing it afterwards reports
/// the syntax error.
pub fn reject_duplicate_keys(json: &[u8]) -> Result<(), DuplicateKey> {
    let mut found = Found::default();
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    if Node(&mut found).deserialize(&mut deserializer).is_ok() {
        return Ok(());
    }
    match found.key {
        Some(key) => {
            let pointer = found.steps.iter().rev().fold(String::new(), |mut p, step| {
                p.push('/');
                p.push_str(step);
                p
            });
            Err(DuplicateKey { pointer, key })
        }
        None => Ok(()),
    }
}

/// The duplicate key, once found, and the steps from its object up to the
/// top (innermost first), collected as the visitors return.
#[derive(Default)]
struct Found {
    key: Option<String>,
    steps: Vec<String>,
}

impl Found {
    /// After a member or item failed: if it failed on a duplicate, the
    /// member's key (as a JSON Pointer token, RFC 6901) or the item's index
    /// is one more step of the way to it.
    fn step_out(&mut self, step: impl FnOnce() -> String) {
        if self.key.is_some() {
            self.steps.push(step());
        }
    }
}

/// One value of the document: its objects' keys are checked, everything
/// else is passed over.
struct Node<'f>(&'f mut Found);

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Objects of up to this many keys are checked by comparing each new key
/// with the earlier ones, kept in an array on the stack (no hashing, no
/// allocation); larger ones with a hash set, so that a body of many keys
/// stays linear.
const SMALL_OBJECT: usize = 16;

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            match items.next_element_seed(Node(&mut *self.0)) {
                Ok(Some(())) => index += 1,
                Ok(None) => return Ok(()),
                Err(err) => {
                    self.0.step_out(|| index.to_string());
                    return Err(err);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<(), A::Error> {
        let mut small: [Cow<'de, str>; SMALL_OBJECT] = Default::default();
        let mut count = 0;
        let mut large: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(key) = members.next_key_seed(Key)? {
            let repeated = if count < SMALL_OBJECT {
                let repeated = small[..count].contains(&key);
                small[count] = key.clone();
                repeated
            } else {
                if large.is_empty() {
                    large.extend(small.iter().cloned());
                }
                !large.insert(key.clone())
            };
            count += 1;
            if repeated {
                self.0.key = Some(key.into_owned());
                return Err(A::Error::custom("duplicate key"));
            }
            if let Err(err) = members.next_value_seed(Node(&mut *self.0)) {
                self.0
                    .step_out(|| key.replace('~', "~0").replace('/', "~1"));
                return Err(err);
            }
        }
        Ok(())
    }
}

/// A key, borrowed from the document when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_owned()))
    }
}

/// A 415 unless the request's `Content-Type` is one of `allowed`.
fn require_media_type(req: &Request, allowed: &[&str]) -> Result<(), ApiError> {
    let essence = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    match essence {
        Some(essence) if allowed.contains(&essence.as_str()) => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "The request body must be sent with `Content-Type: {}`.",
            allowed.join("` or `")
        ))),
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
            "The request body must be JSON, sent with `Content-Type: application/json`.".into(),
        ),
        JsonRejection::JsonSyntaxError(err) => {
            ApiError::BadRequest(format!("The body is not valid JSON: {}", inner(&err)))
        }
        JsonRejection::JsonDataError(err) => ApiError::invalid("body", inner(&err)),
        JsonRejection::BytesRejection(err) if err.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge
        }
        other => ApiError::BadRequest(other.body_text()),
    }
}

/// The innermost message of a rejection: serde's own words, with the position.
fn inner(err: &dyn std::error::Error) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

/// A query string; a value of the wrong type is a 400 that names it.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueryParams<T>(pub T);

impl<T, S> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|err: QueryRejection| {
                ApiError::BadRequest(format!("Invalid query string: {}", inner(&err)))
            })
    }
}

/// For `#[serde(deserialize_with = "whole_number")]` on an integer query
/// parameter: a whole number, written `196` or `196.0` or `1.96e2` (JSON
/// Schema's `integer` allows each, so the documents and the service agree),
/// else an error that names the value.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    parse_whole_number(&text)
        .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a whole number")))
}

/// As [`whole_number`], for an optional parameter (with `#[serde(default)]`).
pub fn optional_whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    whole_number(deserializer).map(Some)
}

fn parse_whole_number(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().or_else(|| {
        // As for integers in bodies (validate::integer_in): exactly whole,
        // and small enough that a float holds it exactly.
        text.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

/// A resource id in the path: a positive 64-bit integer, else 404 (no such
/// resource can exist at that path).
#[derive(Debug, Clone, Copy)]
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|err: PathRejection| ApiError::BadRequest(err.body_text()))?;
        match raw.parse::<i64>() {
            Ok(id) if id > 0 => Ok(Self(id)),
            _ => Err(ApiError::NotFound(format!(
                "`{raw}` is not an id: ids are positive integers."
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_numbers_may_be_written_as_json_schema_integers() {
        assert_eq!(parse_whole_number("196"), Some(196));
        assert_eq!(parse_whole_number("196.0"), Some(196));
        assert_eq!(parse_whole_number("1.96e2"), Some(196));
        assert_eq!(parse_whole_number("-3"), Some(-3));
        for bad in ["196.5", "", "x", "1e20", "NaN", "inf", "0x10"] {
            assert_eq!(parse_whole_number(bad), None, "{bad}");
        }
    }

    fn duplicate(json: &str) -> Option<(String, String)> {
        reject_duplicate_keys(json.as_bytes())
            .err()
            .map(|d| (d.pointer, d.key))
    }

    #[test]
    fn a_key_twice_in_one_object_is_found_at_any_depth() {
        let found = |pointer: &str, key: &str| Some((pointer.to_owned(), key.to_owned()));
        assert_eq!(duplicate(r#"{"name":"A","name":"B"}"#), found("", "name"));
        assert_eq!(
            duplicate(r#"{"a":{"b":[1,{"c":1,"d":2,"c":3}]}}"#),
            found("/a/b/1", "c")
        );
        assert_eq!(duplicate(r#"[{"x":1},{"x":1,"x":2}]"#), found("/1", "x"));
        // The same key once decoded, whatever its spelling.
        assert_eq!(duplicate(r#"{"a":1,"\u0061":2}"#), found("", "a"));
        // Pointer escapes (RFC 6901) in the place of the object.
        assert_eq!(
            duplicate(r#"{"a/b~":{"k":1,"k":2}}"#),
            found("/a~1b~0", "k")
        );
        // Past the small-object list: the hash set.
        let many: Vec<String> = (0..40).map(|i| format!(r#""k{i}":{i}"#)).collect();
        let json = format!("{{{},\"k33\":0}}", many.join(","));
        assert_eq!(duplicate(&json), found("", "k33"));
    }

    #[test]
    fn unique_keys_and_documents_that_are_not_json_pass() {
        for json in [
            r#"{"name":"A","card_number":"B","nested":{"name":"C"}}"#,
            r#"[{"x":1},{"x":1}]"#,
            r#"{"a":{"a":{"a":1}}}"#,
            r#"{"":1," ":2}"#,
            r#""just a string""#,
            "[]",
            "12",
            // Not JSON: left to the parser that follows.
            "{",
            r#"{"a":1,"b""#,
            "not json",
            "",
        ] {
            assert_eq!(duplicate(json), None, "{json}");
        }
    }

    #[derive(serde::Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    struct Named {
        #[serde(default)]
        #[schema(value_type = String)]
        name: crate::validate::Member,
    }

    /// A body is refused, before its handler, when it is no object or has
    /// members its schema lacks (each named); otherwise its members are
    /// read as sent.
    #[tokio::test]
    async fn a_body_names_every_member_its_schema_lacks() {
        use axum::body::Body as AxumBody;
        let request = |body: &str| {
            Request::post("/")
                .header("content-type", "application/json")
                .body(AxumBody::from(body.to_owned()))
                .unwrap()
        };
        let read = Body::<Named>::from_request(request(r#"{"name": 7}"#), &())
            .await
            .unwrap();
        assert_eq!(read.input.name, crate::validate::Member::Sent(json!(7)));
        let Err(ApiError::Validation(errors)) =
            Body::<Named>::from_request(request(r#"{"nmae": "x", "id": 1}"#), &()).await
        else {
            panic!("expected a 422");
        };
        let named: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(named, ["id", "nmae"]);
        assert!(matches!(
            Body::<Named>::from_request(request("[1]"), &()).await,
            Err(ApiError::Validation(_))
        ));
        let Err(ApiError::UnsupportedMediaType(_)) = Body::<Named>::from_request(
            Request::post("/").body(AxumBody::from("{}")).unwrap(),
            &(),
        )
        .await
        else {
            panic!("expected a 415");
        };
    }
}
