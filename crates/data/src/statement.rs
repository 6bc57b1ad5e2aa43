//! Statements, their parameters and the rows they read, written once for
//! both backends.
//!
//! - **One SQL text.** Placeholders are `$1`, `$2`, …: PostgreSQL's own,
//!   and on SQLite named parameters (`$NNN` is one of SQLite's parameter
//!   forms), which [`crate::sqlite`] binds by name. Nothing rewrites the
//!   text at run time. Where the backends need different text, the two are
//!   written side by side: an [`Insert`] tells the new row's id with
//!   `RETURNING id` on PostgreSQL and `last_insert_rowid()` on SQLite.
//! - **Parameters** go through the drivers' own traits: a [`Param`] is any
//!   value that is rusqlite's `ToSql` and sqlx's PostgreSQL `Encode`
//!   (`i64`, `&str`, `Option<i64>`, `NaiveDate`, …), and a type whose two
//!   forms differ says so by implementing both ([`Timestamp`]). Each
//!   parameter's type can be told from the text alone: where it cannot (a
//!   `$n IS NULL` that comes before any other use of `$n`), a
//!   `CAST($n AS BIGINT)` says it, so that PostgreSQL prepares every
//!   statement as it is written (tests/e2e/tests/statements_postgres.rs).
//! - **Rows** are read by one [`FromRow`] per record type, through
//!   [`Row::get`] for any [`Column`] (rusqlite's `FromSql` and sqlx's
//!   `Decode`).
//! - **Reads and writes** are told apart by the method that runs them
//!   (`Db::fetch_*` read, `Db::execute`, `insert` and `update_returning`
//!   write), never by looking at the text.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::StoreError;

/// A statement and the name of its span (OpenTelemetry's
/// `db.query.summary`, e.g. `SELECT clients`: the operation and the table,
/// never a value).
#[derive(Clone, Debug)]
pub struct Statement {
    pub(crate) summary: &'static str,
    pub(crate) sql: Cow<'static, str>,
}

impl Statement {
    pub const fn new(summary: &'static str, sql: &'static str) -> Self {
        Self {
            summary,
            sql: Cow::Borrowed(sql),
        }
    }

    pub fn summary(&self) -> &'static str {
        self.summary
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }
}

/// An `INSERT` of one row into a table keyed by an integer `id`, and how
/// each backend tells the new row's id: PostgreSQL with `RETURNING id`,
/// SQLite with `last_insert_rowid()` on the connection that ran it (a
/// `RETURNING` clause costs SQLite a temporary table: see the guide's
/// "Profiles"). Write it with [`insert!`](crate::insert).
#[derive(Clone, Copy, Debug)]
pub struct Insert {
    pub summary: &'static str,
    /// The statement without a `RETURNING` clause (SQLite's).
    pub sqlite: &'static str,
    /// The same with `RETURNING id` (PostgreSQL's).
    pub postgres: &'static str,
}

/// An [`Insert`] from one statement, `RETURNING id` added at compile time:
/// `insert!("INSERT orders", "INSERT INTO orders (…) VALUES ($1, …)")`.
#[macro_export]
macro_rules! insert {
    ($summary:literal, $sql:expr) => {
        $crate::Insert {
            summary: $summary,
            sqlite: $sql,
            postgres: concat!($sql, " RETURNING id"),
        }
    };
}

/// A statement put together from pieces (a filter that a request may or
/// may not have): static text and placeholders numbered in the order of
/// [`bind`](Self::bind).
pub struct Builder<'p> {
    summary: &'static str,
    sql: String,
    params: Vec<&'p dyn Param>,
}

impl<'p> Builder<'p> {
    pub fn new(summary: &'static str, sql: &str) -> Self {
        Self {
            summary,
            sql: sql.to_owned(),
            params: Vec::new(),
        }
    }

    /// Appends SQL text.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends the next placeholder (`$n`), bound to `value`.
    pub fn bind(&mut self, value: &'p dyn Param) -> &mut Self {
        self.params.push(value);
        self.sql.push('$');
        self.sql.push_str(&self.params.len().to_string());
        self
    }

    /// The statement and its parameters.
    pub fn build(self) -> (Statement, Vec<&'p dyn Param>) {
        let statement = Statement {
            summary: self.summary,
            sql: Cow::Owned(self.sql),
        };
        (statement, self.params)
    }
}

#[cfg(feature = "sqlite")]
mod sqlite_traits {
    /// A value rusqlite can bind.
    pub trait SqliteParam: rusqlite::ToSql {}
    impl<T: rusqlite::ToSql + ?Sized> SqliteParam for T {}
    /// A value rusqlite can read.
    pub trait SqliteColumn: rusqlite::types::FromSql {}
    impl<T: rusqlite::types::FromSql> SqliteColumn for T {}
}
#[cfg(not(feature = "sqlite"))]
mod sqlite_traits {
    pub trait SqliteParam {}
    impl<T: ?Sized> SqliteParam for T {}
    pub trait SqliteColumn {}
    impl<T> SqliteColumn for T {}
}

#[cfg(feature = "postgres")]
mod postgres_traits {
    use sqlx::{Postgres, postgres::PgArguments};

    /// A value sqlx can bind for PostgreSQL, added to a statement's
    /// arguments through sqlx's own `Encode`.
    pub trait PostgresParam {
        fn add_to(&self, arguments: &mut PgArguments) -> Result<(), sqlx::error::BoxDynError>;
    }
    impl<T> PostgresParam for T
    where
        T: for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>,
    {
        fn add_to(&self, arguments: &mut PgArguments) -> Result<(), sqlx::error::BoxDynError> {
            sqlx::Arguments::add(arguments, self)
        }
    }
    /// A value sqlx can read from PostgreSQL.
    pub trait PostgresColumn: for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres> {}
    impl<T: for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>> PostgresColumn for T {}
}
#[cfg(not(feature = "postgres"))]
mod postgres_traits {
    pub trait PostgresParam {}
    impl<T> PostgresParam for T {}
    pub trait PostgresColumn {}
    impl<T> PostgresColumn for T {}
}

#[cfg(feature = "postgres")]
pub(crate) use postgres_traits::PostgresParam;

/// A statement's parameter: a value both drivers can bind (their own
/// traits, rusqlite's `ToSql` and sqlx's `Encode` for PostgreSQL).
pub trait Param: sqlite_traits::SqliteParam + postgres_traits::PostgresParam + Sync {}
impl<T> Param for T where T: sqlite_traits::SqliteParam + postgres_traits::PostgresParam + Sync {}

/// A type a column can be read as, on both backends.
pub trait Column: sqlite_traits::SqliteColumn + postgres_traits::PostgresColumn {}
impl<T> Column for T where T: sqlite_traits::SqliteColumn + postgres_traits::PostgresColumn {}

/// A row read by a statement, on either backend.
pub enum Row<'r> {
    #[cfg(feature = "sqlite")]
    Sqlite(&'r rusqlite::Row<'r>),
    #[cfg(feature = "postgres")]
    Postgres(&'r sqlx::postgres::PgRow),
    #[doc(hidden)]
    _Unused(std::marker::PhantomData<&'r ()>),
}

impl Row<'_> {
    /// The column named `name`, read as `T`.
    pub fn get<T: Column>(&self, name: &str) -> Result<T, StoreError> {
        match self {
            #[cfg(feature = "sqlite")]
            Row::Sqlite(row) => row.get(name).map_err(|err| bad_column(name, err)),
            #[cfg(feature = "postgres")]
            Row::Postgres(row) => {
                sqlx::Row::try_get(*row, name).map_err(|err| bad_column(name, err))
            }
            Row::_Unused(_) => Err(StoreError::failed("a row of no backend")),
        }
    }

    /// The first column, read as `T` (`SELECT count(*) …`).
    pub fn first<T: Column>(&self) -> Result<T, StoreError> {
        match self {
            #[cfg(feature = "sqlite")]
            Row::Sqlite(row) => row.get(0).map_err(|err| bad_column("0", err)),
            #[cfg(feature = "postgres")]
            Row::Postgres(row) => sqlx::Row::try_get(*row, 0).map_err(|err| bad_column("0", err)),
            Row::_Unused(_) => Err(StoreError::failed("a row of no backend")),
        }
    }
}

/// A column that does not decode as what it should be (e.g. a status the
/// code does not know): a bug or bad data, never the caller's fault.
pub fn bad_column(
    name: &str,
    err: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> StoreError {
    StoreError::Failed(format!("column `{name}`: {}", err.into()).into())
}

/// A type that a row can be read as: one implementation for both backends.
pub trait FromRow: Sized {
    fn from_row(row: &Row<'_>) -> Result<Self, StoreError>;
}

/// A single column, e.g. `SELECT count(*) …` read as `i64`.
impl FromRow for i64 {
    fn from_row(row: &Row<'_>) -> Result<Self, StoreError> {
        row.first()
    }
}

/// A point in time, stored as PostgreSQL's `TIMESTAMPTZ` and, in SQLite
/// (which has no time type), as RFC 3339 text with as many fractional
/// digits as it has, e.g. `2026-12-01T10:00:00.123456+00:00`: the format
/// the services have always written, so that old files still compare and
/// sort the same. (rusqlite's own `DateTime` writes a space instead of the
/// `T`, which sorts differently.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// Now, to the microsecond (what PostgreSQL keeps).
    pub fn now() -> Self {
        use chrono::SubsecRound;
        Self(Utc::now().trunc_subsecs(6))
    }

    /// The SQLite text of this time.
    pub fn to_sqlite_text(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::AutoSi, false)
    }
}

#[cfg(feature = "sqlite")]
impl rusqlite::ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.to_sqlite_text().into())
    }
}

#[cfg(feature = "sqlite")]
impl rusqlite::types::FromSql for Timestamp {
    /// RFC 3339 (the format written), without the format-string parser
    /// that rusqlite's own reading goes through; other text falls back to
    /// it.
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        if let rusqlite::types::ValueRef::Text(text) = value
            && let Ok(time) = std::str::from_utf8(text)
                .map_err(drop)
                .and_then(|text| DateTime::parse_from_rfc3339(text).map_err(drop))
        {
            return Ok(Self(time.with_timezone(&Utc)));
        }
        DateTime::<Utc>::column_result(value).map(Self)
    }
}

#[cfg(feature = "postgres")]
impl sqlx::Type<sqlx::Postgres> for Timestamp {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <DateTime<Utc> as sqlx::Type<sqlx::Postgres>>::type_info()
    }
}

#[cfg(feature = "postgres")]
impl<'q> sqlx::Encode<'q, sqlx::Postgres> for Timestamp {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <DateTime<Utc> as sqlx::Encode<'q, sqlx::Postgres>>::encode_by_ref(&self.0, buf)
    }
}

#[cfg(feature = "postgres")]
impl<'r> sqlx::Decode<'r, sqlx::Postgres> for Timestamp {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        <DateTime<Utc> as sqlx::Decode<'r, sqlx::Postgres>>::decode(value).map(Self)
    }
}

/// The OpenTelemetry `db.system.name` of each backend.
pub const SQLITE: &str = "sqlite";
pub const POSTGRES: &str = "postgresql";

/// The span of one statement on `system`, named by its summary (`SELECT
/// clients`: the operation and the table, never a value), so spans group
/// well in a trace viewer and carry nothing of the data. At info level
/// while traces are exported, at debug level otherwise: without an
/// exporter, the default log level does not pay for them.
pub fn statement_span(system: &'static str, summary: &'static str) -> tracing::Span {
    if kit_observability::telemetry::otel_enabled() {
        tracing::info_span!(
            "db",
            otel.kind = "client",
            otel.name = summary,
            db.system.name = system,
            db.query.summary = summary,
        )
    } else {
        tracing::debug_span!("db", db.system.name = system, db.query.summary = summary)
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    #[test]
    fn a_builder_numbers_its_placeholders_in_bind_order() {
        let (after, name) = (5_i64, "x");
        let mut builder = Builder::new("SELECT t", "SELECT id FROM t WHERE id > ");
        builder.bind(&after).push(" AND name = ").bind(&name);
        let (statement, params) = builder.build();
        assert_eq!(
            statement.sql(),
            "SELECT id FROM t WHERE id > $1 AND name = $2"
        );
        assert_eq!(params.len(), 2);
    }

    #[test]
    fn times_are_stored_as_they_always_were_and_read_in_either_format() {
        let time = DateTime::parse_from_rfc3339("2026-12-01T10:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            Timestamp(time).to_sqlite_text(),
            "2026-12-01T10:00:00.123456+00:00"
        );
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for text in [
            Timestamp(time).to_sqlite_text(),
            "2026-12-01 10:00:00.123456+00:00".to_owned(),
        ] {
            let read: Timestamp = conn
                .query_row("SELECT ?1", [&text], |row| row.get(0))
                .unwrap();
            assert_eq!(read.0, time, "{text}");
        }
    }
}
