//! How a store's work can fail, in the store's terms: [`StoreError`].
//! Nothing here knows HTTP; the HTTP layer maps each kind to its answer
//! once (kit-http's `problem`).

/// Why a statement, a transaction or the database as a whole did not do
/// what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write: `constraint` is what the
    /// database reports (PostgreSQL: the constraint's name; SQLite: its
    /// `table.column` list). See [`StoreError::is_duplicate_of`].
    #[error("a unique constraint refused the write: {constraint}")]
    Duplicate { constraint: String },
    /// The database cannot answer now (unreachable, shutting down, busy,
    /// every connection in use): a retry later may succeed.
    #[error("the database is unavailable")]
    Unavailable(#[source] Source),
    /// The database's storage (its disk or quota) is full: no write
    /// succeeds until space is freed; reads go on.
    #[error("the database's storage is full")]
    StorageFull(#[source] Source),
    /// Anything else: a bug, or data that breaks the code's assumptions
    /// (a column that does not decode).
    #[error("the database failed")]
    Failed(#[source] Source),
}

/// The cause of a [`StoreError`], for the logs.
pub type Source = Box<dyn std::error::Error + Send + Sync>;

impl StoreError {
    /// A failure that is a bug: `what` says which.
    pub fn failed(what: impl Into<Source>) -> Self {
        Self::Failed(what.into())
    }

    /// Whether this is the violation of one unique constraint, named as
    /// PostgreSQL names it (`postgres`) and as SQLite reports it
    /// (`sqlite_columns`, e.g. `clients.card_number`).
    pub fn is_duplicate_of(&self, postgres: &str, sqlite_columns: &str) -> bool {
        match self {
            Self::Duplicate { constraint } => {
                constraint == postgres || constraint.contains(sqlite_columns)
            }
            _ => false,
        }
    }
}
