//! HTTP as the tests speak it: a response read whole ([`Reply`], with the
//! assertions of the API's problem answers), a raw HTTP/1.1 client for what
//! a client library would refuse to send or would tidy up, and a few
//! requests every test makes the same way.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Whether `url` answers a GET with a 2xx within a second.
pub async fn answers(http: &reqwest::Client, url: &str) -> bool {
    matches!(
        http.get(url).timeout(Duration::from_secs(1)).send().await,
        Ok(r) if r.status().is_success()
    )
}

/// `GET target HTTP/1.1` with a Host, `Connection: close`, and `headers`
/// (each line ending in CRLF), as bytes for [`Stack::raw`](crate::Stack::raw).
pub fn raw_get(target: &[u8], headers: &[u8]) -> Vec<u8> {
    raw_request_bytes(b"GET", target, headers, b"")
}

/// A request of `method` with `headers` (each line ending in CRLF) and
/// `body`, sent as they are (no Content-Length added).
pub fn raw_request_bytes(method: &[u8], target: &[u8], headers: &[u8], body: &[u8]) -> Vec<u8> {
    let mut request = Vec::new();
    for part in [
        method,
        b" ",
        target,
        b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n",
        headers,
        b"\r\n",
        body,
    ] {
        request.extend_from_slice(part);
    }
    request
}

/// Sends `request` as it is to 127.0.0.1:`port` and reads the answer up to
/// the end of the connection (the request should say `Connection: close`);
/// for at most 30 s. An answer that never came is a `Reply` with status 0
/// ([`Reply::NO_ANSWER`]).
pub async fn raw_request(port: u16, request: &[u8]) -> Reply {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        // A server that answers before it has read the whole request (a
        // header too large) may close the connection while it is still being
        // written, or reset it after its answer: what it answered counts.
        let written = stream.write_all(request).await;
        let mut answer = Vec::new();
        if let Err(err) = stream.read_to_end(&mut answer).await.and(written)
            && answer.is_empty()
        {
            return Err(err);
        }
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .expect("no end of the answer within 30 s")
        .unwrap_or_default();
    Reply::parse(&answer)
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    /// The status as sent: [`Reply::NO_ANSWER`] when none was.
    pub raw_status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            raw_status: status.as_u16(),
            headers,
            body,
            text,
        }
    }

    /// The status of an answer that never came: the connection was closed
    /// without a byte.
    pub const NO_ANSWER: u16 = 0;

    /// Reads a raw HTTP/1.1 answer (status line, headers, body whole or
    /// chunked). Empty input: status 0.
    pub fn parse(answer: &[u8]) -> Self {
        use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(answer.len());
        let head = String::from_utf8_lossy(&answer[..split]).into_owned();
        let mut body = answer.get(split + 4..).unwrap_or_default().to_vec();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse::<u16>().ok())
            .unwrap_or(Self::NO_ANSWER);
        let mut headers = HeaderMap::new();
        for line in lines {
            if let Some((name, value)) = line.split_once(':')
                && let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.trim().as_bytes()),
                    HeaderValue::from_str(value.trim()),
                )
            {
                headers.append(name, value);
            }
        }
        if headers
            .get("transfer-encoding")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"))
        {
            body = dechunk(&body);
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        Self {
            // No answer (0) is no status code: 999, which no server sends;
            // `raw_status` keeps the 0.
            status: StatusCode::from_u16(status)
                .or_else(|_| StatusCode::from_u16(999))
                .unwrap_or_default(),
            raw_status: status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Asserts an RFC 9457 problem with this status, and returns its body.
    #[track_caller]
    pub fn assert_problem(&self, status: StatusCode) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(
            self.header("content-type"),
            "application/problem+json",
            "body: {}",
            self.text
        );
        for field in ["type", "title", "status", "detail"] {
            assert!(!self.body[field].is_null(), "no `{field}` in {}", self.text);
        }
        assert_eq!(self.body["status"], status.as_u16(), "{}", self.text);
        &self.body
    }

    /// Asserts a problem with this status that names its request: the
    /// body's `request_id` is the `X-Request-ID` header, which is not empty.
    #[track_caller]
    pub fn assert_problem_with_id(&self, status: StatusCode) -> &Value {
        let body = self.assert_problem(status);
        let id = self.header("x-request-id");
        assert!(!id.is_empty(), "no X-Request-ID: {self:?}");
        assert_eq!(body["request_id"], id, "{}", self.text);
        assert_eq!(
            self.headers.get_all("x-request-id").iter().count(),
            1,
            "X-Request-ID more than once: {:?}",
            self.headers
        );
        body
    }

    /// Asserts a 422 naming `field` among its invalid fields.
    #[track_caller]
    pub fn assert_invalid(&self, field: &str) {
        let body = self.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
            .unwrap_or_default();
        assert!(fields.contains(&field), "`{field}` not in {}", self.text);
    }
}

/// The body of a chunked answer, put together.
fn dechunk(mut chunked: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(end) = chunked.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&chunked[..end])
            .ok()
            .and_then(|line| usize::from_str_radix(line.split(';').next()?.trim(), 16).ok())
            .unwrap_or(0);
        let start = end + 2;
        if size == 0 || chunked.len() < start + size {
            break;
        }
        body.extend_from_slice(&chunked[start..start + size]);
        chunked = chunked.get(start + size + 2..).unwrap_or_default();
    }
    body
}

/// `POST url` with an `Idempotency-Key`, retried with the same key until it
/// is answered 201 (for at most 30 s): what a careful client does. Returns
/// the answer and the number of attempts.
pub async fn create_with_retries(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    body: &Value,
) -> (Reply, usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let sent = http
            .post(url)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await;
        let last = match sent {
            Ok(response) => {
                let reply = Reply::from(response).await;
                if reply.status == StatusCode::CREATED {
                    return (reply, attempts);
                }
                format!("{}: {}", reply.status, reply.text)
            }
            Err(err) => err.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "{url} with key {key} never succeeded: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_answer_is_read_with_its_headers_and_its_chunked_body() {
        let reply = Reply::parse(
            b"HTTP/1.1 404 Not Found\r\n\
              Content-Type: application/problem+json\r\n\
              Transfer-Encoding: chunked\r\n\
              X-Request-ID: abc\r\n\r\n\
              7\r\n{\"statu\r\n\
              14;ext=1\r\ns\": 404, \"title\": 1}\r\n\
              0\r\n\r\n",
        );
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.header("x-request-id"), "abc");
        assert_eq!(reply.text, r#"{"status": 404, "title": 1}"#);
        assert_eq!(reply.body["status"], 404);
    }

    #[test]
    fn no_answer_is_status_0() {
        let reply = Reply::parse(b"");
        assert_eq!(reply.raw_status, Reply::NO_ANSWER);
        assert!(reply.text.is_empty());
    }

    #[test]
    fn a_raw_request_is_sent_as_written() {
        assert_eq!(
            raw_request_bytes(b"POST", b"/a b", b"X-A: 1\r\n", b"{}"),
            b"POST /a b HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-A: 1\r\n\r\n{}"
        );
    }
}
