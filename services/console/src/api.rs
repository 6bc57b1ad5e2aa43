//! The console's calls to the API, through the gateway (`CONSOLE_API_URL`),
//! as any other client of it makes them: the person's access token in
//! `Authorization`, JSON in and out, `If-Match` on updates and an
//! `Idempotency-Key` on creates. Every answer is kept whole ([`Answer`]):
//! its status, its body (the resource, or an `application/problem+json`
//! problem), and the headers a page shows or acts on (`X-Request-ID`,
//! `ETag`, `Retry-After`, `Link`).

use axum::http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

/// The API's base URL and the HTTP client the calls share.
#[derive(Clone, Debug)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

/// One call: what to send besides the token.
#[derive(Clone, Copy, Debug, Default)]
pub struct Call<'a> {
    pub body: Option<&'a Value>,
    pub if_match: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
}

impl<'a> Call<'a> {
    /// A create: `body`, and the form's `Idempotency-Key` (none if empty).
    pub fn create(body: &'a Value, key: &'a str) -> Self {
        Self {
            body: Some(body),
            idempotency_key: Some(key).filter(|k| !k.is_empty()),
            ..Self::default()
        }
    }

    /// An update of the version the form was made from: `body`, with
    /// `If-Match: <etag>` (a quoted version, `"7"`).
    pub fn update(body: &'a Value, etag: &'a str) -> Self {
        Self {
            body: Some(body),
            if_match: Some(etag),
            ..Self::default()
        }
    }
}

/// The ETag of `version` (a form's hidden field), for `If-Match`.
pub fn etag(version: &str) -> String {
    format!("\"{version}\"")
}

/// The API's answer to one call.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: StatusCode,
    /// The body as JSON (`Null` when empty or not JSON).
    pub body: Value,
    /// The `X-Request-ID` of the call, shown with its outcome so that a
    /// person can find it in the logs and the traces.
    pub request_id: Option<String>,
    pub etag: Option<String>,
    /// `Retry-After`, in seconds, on a 503 or a 429.
    pub retry_after: Option<u64>,
    /// The `after` of the `Link: <…>; rel="next"` header, if any.
    pub next_after: Option<String>,
}

/// A record whose version travels in the `ETag`.
pub trait Versioned {
    fn set_version(&mut self, version: i64);
}

/// A field the API named in a problem's `errors`.
#[derive(Clone, Debug, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl Api {
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// `method path` with the person's `token`. An `Err` is a call that got
    /// no answer (the gateway down, a timeout).
    pub async fn send(
        &self,
        token: &str,
        method: Method,
        path_and_query: &str,
        call: Call<'_>,
    ) -> Result<Answer, reqwest::Error> {
        let mut request = self
            .http
            .request(method, format!("{}{path_and_query}", self.base))
            .bearer_auth(token)
            .header("accept", "application/json");
        if let Some(body) = call.body {
            request = request.json(body);
        }
        if let Some(version) = call.if_match {
            request = request.header("if-match", version);
        }
        if let Some(key) = call.idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await?;
        // What the page needs of the headers, read before the body takes
        // the response.
        let mut answer = Answer::new(response.status(), response.headers(), Value::Null);
        let bytes = response.bytes().await?;
        answer.body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(answer)
    }
}

impl Answer {
    fn new(status: StatusCode, headers: &HeaderMap, body: Value) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Self {
            status,
            request_id: text("x-request-id"),
            etag: text("etag"),
            retry_after: text("retry-after").and_then(|v| v.trim().parse().ok()),
            next_after: text("link").and_then(|link| next_after(&link)),
            body,
        }
    }

    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// The problem's `detail` (or `title`), in the API's words.
    pub fn detail(&self) -> String {
        ["detail", "title"]
            .iter()
            .find_map(|key| self.body.get(key).and_then(Value::as_str))
            .map_or_else(
                || format!("The API answered {}.", self.status),
                str::to_owned,
            )
    }

    /// The problem's `errors`: one per invalid field.
    pub fn field_errors(&self) -> Vec<FieldError> {
        self.body
            .get("errors")
            .and_then(|errors| serde_json::from_value(errors.clone()).ok())
            .unwrap_or_default()
    }

    /// The record's version: its `ETag` (`"7"`), which the API sends with
    /// one record (not in its body); 0 when there is none.
    pub fn version(&self) -> i64 {
        self.etag
            .as_deref()
            .map(|tag| tag.trim_start_matches("W/").trim_matches('"'))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// The body as a `T`, with `version` from the `ETag`.
    pub fn record<T: serde::de::DeserializeOwned + Versioned>(&self) -> Option<T> {
        let mut record: T = serde_json::from_value(self.body.clone()).ok()?;
        record.set_version(self.version());
        Some(record)
    }
}

/// The `after` parameter of the next page's link in a `Link` header.
fn next_after(link: &str) -> Option<String> {
    link.split(',')
        .find(|part| part.contains("rel=\"next\""))
        .and_then(|part| part.split_once('<'))
        .and_then(|(_, rest)| rest.split_once('>'))
        .and_then(|(url, _)| url.split_once('?'))
        .and_then(|(_, query)| {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| *key == "after")
                .map(|(_, value)| value.to_owned())
        })
}

/// A query string of `pairs`, each value escaped.
pub fn query(pairs: &[(&str, String)]) -> String {
    oauth2::url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_pages_after_is_read_from_the_link_header() {
        assert_eq!(
            next_after("</client/?limit=20&after=41>; rel=\"next\"").as_deref(),
            Some("41")
        );
        assert_eq!(next_after("</client/?after=3>; rel=\"prev\""), None);
    }

    #[test]
    fn a_problem_gives_its_detail_and_its_fields() {
        let body = serde_json::json!({
            "title": "Invalid", "detail": "2 fields are invalid.",
            "errors": [{"field": "name", "message": "must not be empty"},
                       {"field": "card_number", "message": "is taken"}]
        });
        let answer = Answer::new(StatusCode::UNPROCESSABLE_ENTITY, &HeaderMap::new(), body);
        assert_eq!(answer.detail(), "2 fields are invalid.");
        let fields: Vec<String> = answer.field_errors().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["name", "card_number"]);
        let mut headers = HeaderMap::new();
        headers.insert("etag", "\"7\"".parse().unwrap());
        assert_eq!(
            Answer::new(StatusCode::OK, &headers, Value::Null).version(),
            7
        );
    }
}
