//! The SQLite migrations, run with rusqlite: the files a service embeds with
//! `sqlx::migrate!` (the same macro, and the same bookkeeping, as for
//! PostgreSQL, whose migrations sqlx's own migrator runs), recorded in
//! `_sqlx_migrations` exactly as sqlx records them. So SQLite has one
//! driver, and a database file migrated by an earlier version of the
//! services (by sqlx's migrator) is recognised as it is.
//!
//! Each migration runs in a transaction with its record; one whose file
//! changed after it was applied (another checksum), or that is recorded
//! but no longer in the files, stops the start-up with an error naming it.

use rusqlite::{Connection, OptionalExtension, params};
use sqlx::migrate::Migrator;

/// Why the migrations could not run.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("migration {version} was applied but has changed since (its checksum differs)")]
    Changed { version: i64 },
    #[error("migration {version} was applied but is missing from this build")]
    Missing { version: i64 },
    #[error("migration {version} failed before: the database needs a look by hand")]
    Dirty { version: i64 },
    #[error("migration {version} failed")]
    Failed {
        version: i64,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the migrations' bookkeeping failed")]
    Bookkeeping(#[from] rusqlite::Error),
}

/// Applies the migrations of `migrator` that `conn`'s database lacks, in
/// order.
pub fn run(conn: &mut Connection, migrator: &Migrator) -> Result<(), MigrateError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL,
            execution_time BIGINT NOT NULL
        );",
    )?;
    let dirty: Option<i64> = conn
        .query_row(
            "SELECT version FROM _sqlx_migrations WHERE success = false ORDER BY version LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(version) = dirty {
        return Err(MigrateError::Dirty { version });
    }
    let applied: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let ups: Vec<_> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .collect();
    if let Some((version, _)) = applied
        .iter()
        .find(|(version, _)| !ups.iter().any(|m| m.version == *version))
    {
        return Err(MigrateError::Missing { version: *version });
    }
    for migration in ups {
        let version = migration.version;
        match applied.iter().find(|(v, _)| *v == version) {
            Some((_, checksum)) if checksum.as_slice() != &*migration.checksum => {
                return Err(MigrateError::Changed { version });
            }
            Some(_) => continue,
            None => {}
        }
        let started = std::time::Instant::now();
        let tx = conn.transaction()?;
        tx.execute_batch(&migration.sql)
            .map_err(|source| MigrateError::Failed { version, source })?;
        tx.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (?1, ?2, TRUE, ?3, ?4)",
            params![
                version,
                &*migration.description,
                &*migration.checksum,
                i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX),
            ],
        )?;
        tx.commit()?;
        tracing::info!(version, description = %migration.description, "migration applied");
    }
    Ok(())
}
