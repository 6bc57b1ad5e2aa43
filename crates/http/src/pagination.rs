//! Keyset pagination: a page of at most `limit` items after an id, and a
//! `Link: <…>; rel="next"` header to the next page.

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use axum::Json;

use crate::problem::ApiError;

/// Keyset pagination: at most `limit` items with an id greater than `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub after: i64,
}

impl Page {
    pub const DEFAULT_LIMIT: i64 = 100;
    pub const MAX_LIMIT: i64 = 1000;

    /// From the `limit` and `after` query parameters; out of range is a 400.
    pub fn new(limit: Option<i64>, after: Option<i64>) -> Result<Self, ApiError> {
        let limit = limit.unwrap_or(Self::DEFAULT_LIMIT);
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(ApiError::BadRequest(format!(
                "`limit` must be from 1 to {} (got {limit}).",
                Self::MAX_LIMIT
            )));
        }
        let after = after.unwrap_or(0);
        if after < 0 {
            return Err(ApiError::BadRequest(format!(
                "`after` must be an id, 0 or more (got {after})."
            )));
        }
        Ok(Self { limit, after })
    }

    /// How many rows to read: one more than the page, to know whether
    /// there is a next page without a second query.
    pub fn rows_to_fetch(&self) -> i64 {
        self.limit + 1
    }

    /// The page out of the rows read (see [`rows_to_fetch`](Self::rows_to_fetch)),
    /// with a `Link: <…>; rel="next"` to the next page when there is one.
    /// `path` and `filters` rebuild the same query for the next page.
    pub fn finish<T>(
        &self,
        mut rows: Vec<T>,
        id_of: impl Fn(&T) -> i64,
        path: &str,
        filters: &[(&str, String)],
    ) -> Listed<T> {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next = match (more, rows.last()) {
            (true, Some(last)) => {
                let mut query: Vec<(&str, String)> = filters.to_vec();
                query.push(("limit", self.limit.to_string()));
                query.push(("after", id_of(last).to_string()));
                serde_urlencoded::to_string(&query)
                    .ok()
                    .map(|q| format!("<{path}?{q}>; rel=\"next\""))
            }
            _ => None,
        };
        Listed { items: rows, next }
    }
}

/// One page of a list: a JSON array, and a `Link` to the next page.
pub struct Listed<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T: Serialize> IntoResponse for Listed<T> {
    fn into_response(self) -> Response {
        let mut response = Json(self.items).into_response();
        if let Some(link) = self.next.and_then(|l| HeaderValue::from_str(&l).ok()) {
            response.headers_mut().insert(header::LINK, link);
        }
        response
    }
}
