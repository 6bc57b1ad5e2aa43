//! A statement and its parameters, and the rows it reads, the same for
//! both backends: the stores write each statement once ([`Query`]) and
//! read each row type once ([`FromRow`]); [`Db`](super::Db) runs them on
//! SQLite (rusqlite) or PostgreSQL (sqlx).
//!
//! Placeholders are PostgreSQL's, `$1`, `$2`, …, numbered in the order of
//! the [`bind`](Query::bind) calls; on SQLite they are run as `?1`, `?2`, …,
//! which mean the same.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

/// A value for a statement's parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Int(i64),
    /// A NULL where an integer could be (`$2 IS NULL OR version = $2`).
    NullInt,
    Text(String),
    Date(NaiveDate),
    Time(DateTime<Utc>),
}

impl From<i64> for Param {
    fn from(value: i64) -> Self {
        Param::Int(value)
    }
}

impl From<i32> for Param {
    fn from(value: i32) -> Self {
        Param::Int(value.into())
    }
}

impl From<Option<i64>> for Param {
    fn from(value: Option<i64>) -> Self {
        value.map_or(Param::NullInt, Param::Int)
    }
}

impl From<&str> for Param {
    fn from(value: &str) -> Self {
        Param::Text(value.to_owned())
    }
}

impl From<String> for Param {
    fn from(value: String) -> Self {
        Param::Text(value)
    }
}

impl From<&String> for Param {
    fn from(value: &String) -> Self {
        Param::Text(value.clone())
    }
}

impl From<NaiveDate> for Param {
    fn from(value: NaiveDate) -> Self {
        Param::Date(value)
    }
}

impl From<DateTime<Utc>> for Param {
    fn from(value: DateTime<Utc>) -> Self {
        Param::Time(value)
    }
}

/// How a time is stored in SQLite (as text): RFC 3339 with as many
/// fractional digits as it has, e.g. `2026-12-01T10:00:00.123456+00:00`,
/// the format sqlx wrote before this module existed, so that the files
/// made by earlier versions still compare and sort the same.
pub(super) fn sqlite_time(value: &DateTime<Utc>) -> String {
    value.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// A statement and its parameters. `Query::new("… WHERE id = $1").bind(id)`,
/// or built piece by piece with [`push`](Self::push) and
/// [`push_bind`](Self::push_bind) (which writes the next `$n` itself).
#[derive(Clone, Debug)]
pub struct Query {
    pub(super) sql: Cow<'static, str>,
    pub(super) params: Vec<Param>,
}

impl Query {
    pub fn new(sql: impl Into<Cow<'static, str>>) -> Self {
        Self {
            sql: sql.into(),
            params: Vec::new(),
        }
    }

    /// The value of the next placeholder (`$1` first).
    pub fn bind(mut self, value: impl Into<Param>) -> Self {
        self.params.push(value.into());
        self
    }

    /// Appends SQL text.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.to_mut().push_str(sql);
        self
    }

    /// Appends the next placeholder, bound to `value`.
    pub fn push_bind(&mut self, value: impl Into<Param>) -> &mut Self {
        self.params.push(value.into());
        let placeholder = format!("${}", self.params.len());
        self.sql.to_mut().push_str(&placeholder);
        self
    }

    /// Whether the statement only reads (`SELECT …`): on SQLite, the others
    /// take turns for the write lock.
    pub(super) fn is_read(&self) -> bool {
        self.sql
            .trim_start()
            .get(..6)
            .is_some_and(|word| word.eq_ignore_ascii_case("select"))
    }

    /// This `INSERT` with `RETURNING id` (PostgreSQL's way to tell the
    /// new row's id, see [`Exec::insert`](super::Exec::insert)).
    pub(super) fn returning_id(&self) -> Self {
        Self {
            sql: format!("{} RETURNING id", self.sql).into(),
            params: self.params.clone(),
        }
    }

    /// The text for SQLite: `$n` as `?n`. (No statement of ours holds a `$`
    /// in a string literal.)
    pub(super) fn sqlite_sql(&self) -> Cow<'_, str> {
        if self.sql.contains('$') {
            Cow::Owned(self.sql.replace('$', "?"))
        } else {
            Cow::Borrowed(&self.sql)
        }
    }
}

/// A row read by a statement, on either backend.
pub enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r sqlx::postgres::PgRow),
}

/// A type that a column can be read as, on both backends.
pub trait Column:
    rusqlite::types::FromSql + for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>
{
}

impl<T> Column for T where
    T: rusqlite::types::FromSql
        + for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
{
}

impl Row<'_> {
    /// The column named `name`, read as `T`.
    pub fn get<T: Column>(&self, name: &str) -> Result<T, sqlx::Error> {
        match self {
            Row::Sqlite(row) => row.get(name).map_err(|err| invalid_column(name, err)),
            Row::Postgres(row) => sqlx::Row::try_get(*row, name),
        }
    }

    /// The time in the column named `name`. On SQLite (text) it is read as
    /// RFC 3339, the format it is written in, without the format-string
    /// parser that rusqlite's own reading goes through; other text falls
    /// back to that.
    pub fn time(&self, name: &str) -> Result<DateTime<Utc>, sqlx::Error> {
        if let Row::Sqlite(row) = self
            && let Ok(rusqlite::types::ValueRef::Text(text)) = row.get_ref(name)
            && let Ok(time) = std::str::from_utf8(text)
                .map_err(drop)
                .and_then(|text| DateTime::parse_from_rfc3339(text).map_err(drop))
        {
            return Ok(time.with_timezone(&Utc));
        }
        self.get(name)
    }
}

/// A type that a row can be read as: one implementation for both backends.
pub trait FromRow: Sized {
    fn from_row(row: &Row<'_>) -> Result<Self, sqlx::Error>;
}

/// A single column, e.g. `SELECT count(*) …` read as `i64`.
impl FromRow for i64 {
    fn from_row(row: &Row<'_>) -> Result<Self, sqlx::Error> {
        match row {
            Row::Sqlite(row) => row.get(0).map_err(|err| invalid_column("0", err)),
            Row::Postgres(row) => sqlx::Row::try_get(*row, 0),
        }
    }
}

/// A column that does not decode as what it should be (e.g. a status that
/// the code does not know).
pub fn invalid_column(
    name: &str,
    err: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: name.to_owned(),
        source: err.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_bind_order() {
        let mut query = Query::new("SELECT id FROM t WHERE id > ");
        query.push_bind(5).push(" AND name = ").push_bind("x");
        assert_eq!(query.sql, "SELECT id FROM t WHERE id > $1 AND name = $2");
        assert_eq!(query.params, vec![Param::Int(5), Param::Text("x".into())]);
        assert_eq!(
            query.sqlite_sql(),
            "SELECT id FROM t WHERE id > ?1 AND name = ?2"
        );
    }

    #[test]
    fn only_selects_are_reads() {
        assert!(Query::new("  select 1").is_read());
        assert!(!Query::new("INSERT INTO t VALUES ($1)").is_read());
        assert!(!Query::new("UPDATE t SET a = 1 RETURNING a").is_read());
        assert!(!Query::new("DEL").is_read());
    }

    #[test]
    fn times_are_read_back_as_written_in_either_format() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let time = DateTime::parse_from_rfc3339("2026-12-01T10:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        for text in [
            sqlite_time(&time),
            "2026-12-01 10:00:00.123456+00:00".to_owned(),
        ] {
            let read = conn
                .query_row("SELECT ?1 AS t", [&text], |row| {
                    Ok(Row::Sqlite(row).time("t"))
                })
                .unwrap();
            assert_eq!(read.unwrap(), time, "{text}");
        }
    }

    #[test]
    fn times_are_stored_as_sqlx_stored_them() {
        let time = DateTime::parse_from_rfc3339("2026-12-01T10:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(sqlite_time(&time), "2026-12-01T10:00:00.123456+00:00");
    }
}
