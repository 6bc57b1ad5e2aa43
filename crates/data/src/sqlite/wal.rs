//! SQLite's write-ahead log, kept bounded (issue 14).
//!
//! In WAL mode a commit appends its pages to `<database>-wal`; a checkpoint
//! copies them back into the database file, and the next write starts the
//! log again from its beginning, if no reader is still using it. Three
//! things keep the log bounded:
//!
//! 1. `wal_autocheckpoint` = [`AUTOCHECKPOINT_PAGES`] on every connection
//!    (SQLite's default, set so that nothing else can change it): after a
//!    commit that leaves 1000 pages (4 MiB) in the log, a PASSIVE
//!    checkpoint. It never waits, so steady readers can keep the log from
//!    starting again, and it runs only from a statement that reached
//!    `SQLITE_DONE` (so a write with `RETURNING` is read to its end:
//!    `Db::update_returning`).
//! 2. `journal_size_limit` = [`JOURNAL_SIZE_LIMIT`]: when the log starts
//!    again, a file that grew larger is cut back to that size.
//! 3. A checkpointer per database, with a connection of its own (never one
//!    a request waits for): every [`LOOK_EVERY`] it looks at the log's
//!    size, and runs `PRAGMA wal_checkpoint(TRUNCATE)` when the log is over
//!    [`TRUNCATE_ABOVE`] or when nothing was written for [`IDLE_AFTER`].
//!    TRUNCATE takes the write lock, copies every page and waits for the
//!    readers of the moment to finish (new readers then read the database
//!    file, so they cannot hold it back as they can a PASSIVE checkpoint),
//!    and leaves an empty log. It waits at most [`CHECKPOINT_WAIT`] (a
//!    writer meanwhile waits too); after a checkpoint that could not finish,
//!    the next one waits for [`RETRY_AFTER`].
//!
//! So the log stays near 4 MiB under steady writes, under 32 MiB with
//! readers that keep it from starting again, and empty a second after the
//! last write. Past [`WARN_ABOVE`] something holds every checkpoint back
//! (a reader that never ends, e.g. another process with a transaction
//! open): a warning is logged, once until the log is back under half of
//! it. That threshold is a constant, not a setting: the log's size follows
//! from the constants above, not from the deployment; an operator alerts
//! on `db_wal_bytes` with a threshold of their own.

use std::{
    path::{Path, PathBuf},
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use rusqlite::Connection;

use crate::StoreError;

/// `PRAGMA wal_autocheckpoint`, in pages.
pub const AUTOCHECKPOINT_PAGES: u32 = 1000;
/// `PRAGMA journal_size_limit`, in bytes: twice the automatic checkpoint's
/// size.
pub const JOURNAL_SIZE_LIMIT: u64 = 8 * 1024 * 1024;
/// A log larger than this is checkpointed and truncated now.
pub const TRUNCATE_ABOVE: u64 = 16 * 1024 * 1024;
/// A log larger than this is logged as a warning.
pub const WARN_ABOVE: u64 = 64 * 1024 * 1024;
/// How often the checkpointer looks at the log's size.
pub const LOOK_EVERY: Duration = Duration::from_millis(250);
/// A log untouched for this long is checkpointed and truncated.
pub const IDLE_AFTER: Duration = Duration::from_secs(1);
/// How long a checkpoint waits for the write lock and for readers.
pub const CHECKPOINT_WAIT: Duration = Duration::from_millis(500);
/// After a checkpoint that could not finish, how long until the next one.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

// The thresholds in the order the module's documentation explains.
const _: () = {
    assert!(AUTOCHECKPOINT_PAGES as u64 * 4096 < JOURNAL_SIZE_LIMIT);
    assert!(JOURNAL_SIZE_LIMIT < TRUNCATE_ABOVE);
    assert!(TRUNCATE_ABOVE < WARN_ABOVE);
    assert!(LOOK_EVERY.as_millis() < IDLE_AFTER.as_millis());
    assert!(CHECKPOINT_WAIT.as_millis() < RETRY_AFTER.as_millis());
};

/// The result of `PRAGMA wal_checkpoint`: whether it was kept from
/// finishing, the frames in the log and those copied into the database
/// (both 0 after a TRUNCATE that finished).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub busy: bool,
    pub log_frames: i64,
    pub checkpointed_frames: i64,
}

/// The log of one database: its size and the checkpointer's results.
#[derive(Debug)]
pub struct Wal {
    path: PathBuf,
    last: Mutex<Option<Checkpoint>>,
    complete: AtomicU64,
    busy: AtomicU64,
    failed: AtomicU64,
    warned: AtomicBool,
    stop: tokio::sync::Notify,
}

/// What `/metrics` shows of a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalStats {
    pub bytes: u64,
    pub last: Option<Checkpoint>,
    /// The checkpointer's checkpoints: finished, kept from finishing, failed.
    pub complete: u64,
    pub busy: u64,
    pub failed: u64,
}

impl Wal {
    /// The log of the database file `database`.
    pub fn new(database: &Path) -> Self {
        let mut path = database.as_os_str().to_owned();
        path.push("-wal");
        Self {
            path: path.into(),
            last: Mutex::new(None),
            complete: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            warned: AtomicBool::new(false),
            stop: tokio::sync::Notify::new(),
        }
    }

    /// The log file's size and modification time (0 bytes when there is
    /// none: no write yet, or an in-memory database).
    fn log_size_and_mtime(&self) -> (u64, Option<SystemTime>) {
        match std::fs::metadata(&self.path) {
            Ok(meta) => (meta.len(), meta.modified().ok()),
            Err(_) => (0, None),
        }
    }

    pub fn stats(&self) -> WalStats {
        WalStats {
            bytes: self.log_size_and_mtime().0,
            last: *self.last.lock().unwrap_or_else(|e| e.into_inner()),
            complete: self.complete.load(Ordering::Relaxed),
            busy: self.busy.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    /// Sets the log's gauges and counters to their state now (at each
    /// scrape).
    pub fn record_metrics(&self) {
        use kit_observability::metrics as names;
        let stats = self.stats();
        // u64 to f64: exact below 2^53 bytes and frames.
        metrics::gauge!(names::DB_WAL_BYTES).set(stats.bytes as f64);
        for (outcome, count) in [
            ("complete", stats.complete),
            ("busy", stats.busy),
            ("error", stats.failed),
        ] {
            metrics::counter!(names::DB_WAL_CHECKPOINTS, "outcome" => outcome).absolute(count);
        }
        if let Some(last) = stats.last {
            metrics::gauge!(names::DB_WAL_LAST_BUSY).set(f64::from(u8::from(last.busy)));
            metrics::gauge!(names::DB_WAL_LAST_FRAMES, "state" => "log")
                .set(last.log_frames as f64);
            metrics::gauge!(names::DB_WAL_LAST_FRAMES, "state" => "checkpointed")
                .set(last.checkpointed_frames as f64);
        }
    }

    /// Ends the checkpointer (at its next look).
    pub fn stop(&self) {
        self.stop.notify_one();
    }

    fn record(&self, result: &Result<Checkpoint, StoreError>) {
        match result {
            Ok(checkpoint) => {
                *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(*checkpoint);
                let counter = if checkpoint.busy {
                    &self.busy
                } else {
                    &self.complete
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Logs a warning when the log passes [`WARN_ABOVE`]; once, until it
    /// is back under half of it. True when it warned now.
    fn warn_if_large(&self, bytes: u64) -> bool {
        if bytes > WARN_ABOVE && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                wal = %self.path.display(),
                wal_bytes = bytes,
                threshold_bytes = WARN_ABOVE,
                last_checkpoint = ?self.stats().last,
                "the SQLite write-ahead log is past its threshold: something keeps checkpoints from finishing (a long transaction?)"
            );
            return true;
        }
        if bytes < WARN_ABOVE / 2 && self.warned.swap(false, Ordering::Relaxed) {
            tracing::info!(
                wal_bytes = bytes,
                "the SQLite write-ahead log is back under its threshold"
            );
        }
        false
    }
}

/// Runs the checkpointer of the database file `path`, on a connection of
/// its own, until [`Wal::stop`]. A checkpoint waits for `turn`, the turn
/// of the process's writes, so that none of them waits for it on a thread
/// (see [`super`]); the checkpoint itself may wait for readers (up to
/// [`CHECKPOINT_WAIT`]), so it runs on a blocking thread.
pub async fn checkpointer(path: PathBuf, wal: std::sync::Arc<Wal>, turn: super::WriteTurn) {
    let mut conn: Option<Connection> = None;
    let mut ticker = tokio::time::interval(LOOK_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = wal.log_size_and_mtime();
    let mut unchanged = Duration::ZERO;
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = wal.stop.notified() => break,
        }
        let now = wal.log_size_and_mtime();
        unchanged = if now == seen {
            unchanged + LOOK_EVERY
        } else {
            Duration::ZERO
        };
        seen = now;
        wait = wait.saturating_sub(LOOK_EVERY);
        let bytes = now.0;
        wal.warn_if_large(bytes);
        let due = bytes > TRUNCATE_ABOVE || (bytes > 0 && unchanged >= IDLE_AFTER);
        if !due || !wait.is_zero() {
            continue;
        }
        let (kept, result) = {
            let _turn = turn.lock().await;
            let path = path.clone();
            let taken = conn.take();
            match tokio::task::spawn_blocking(move || truncate(taken, &path)).await {
                Ok(done) => done,
                Err(err) => (None, Err(StoreError::failed(err))),
            }
        };
        conn = kept;
        wal.record(&result);
        match result {
            Ok(Checkpoint { busy: false, .. }) => {}
            Ok(checkpoint) => {
                tracing::debug!(
                    ?checkpoint,
                    "checkpoint kept from finishing; retrying later"
                );
                wait = RETRY_AFTER;
            }
            Err(err) => {
                tracing::warn!(error = %err, "SQLite checkpoint failed; retrying later");
                wait = RETRY_AFTER;
            }
        }
        seen = wal.log_size_and_mtime();
        unchanged = Duration::ZERO;
    }
}

/// `PRAGMA wal_checkpoint(TRUNCATE)` on the checkpointer's own connection,
/// opened first if need be; the connection is handed back to be used
/// again, unless the checkpoint failed (a new one next time).
fn truncate(
    conn: Option<Connection>,
    path: &Path,
) -> (Option<Connection>, Result<Checkpoint, StoreError>) {
    let conn = match conn {
        Some(conn) => conn,
        None => match super::open(path)
            .and_then(|conn| conn.busy_timeout(CHECKPOINT_WAIT).map(|()| conn))
            .map_err(super::error)
        {
            Ok(conn) => conn,
            Err(err) => return (None, Err(err)),
        },
    };
    // Read to its end: the statement's one row.
    let checkpoint = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
        Ok(Checkpoint {
            busy: row.get::<_, i64>(0)? != 0,
            log_frames: row.get(1)?,
            checkpointed_frames: row.get(2)?,
        })
    });
    match checkpoint {
        Ok(checkpoint) => (Some(conn), Ok(checkpoint)),
        Err(err) => (None, Err(super::error(err))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_the_database_file_with_wal_appended() {
        let wal = Wal::new(Path::new("/data/order_service.db"));
        assert_eq!(wal.path, Path::new("/data/order_service.db-wal"));
        assert_eq!(wal.stats().bytes, 0, "no such file: an empty log");
    }

    #[test]
    fn checkpoints_are_counted_by_outcome() {
        let wal = Wal::new(Path::new("/nonexistent/x.db"));
        let busy = Checkpoint {
            busy: true,
            log_frames: 10,
            checkpointed_frames: 4,
        };
        wal.record(&Ok(busy));
        wal.record(&Err(StoreError::failed("closed")));
        let done = Checkpoint {
            busy: false,
            log_frames: 0,
            checkpointed_frames: 0,
        };
        wal.record(&Ok(done));
        let stats = wal.stats();
        assert_eq!((stats.complete, stats.busy, stats.failed), (1, 1, 1));
        assert_eq!(stats.last, Some(done), "the last result is kept");
    }

    #[test]
    fn a_large_log_is_warned_about_once_until_it_shrinks() {
        let wal = Wal::new(Path::new("/nonexistent/x.db"));
        assert!(
            !wal.warn_if_large(WARN_ABOVE),
            "at the threshold: no warning"
        );
        assert!(wal.warn_if_large(WARN_ABOVE + 1), "past it: a warning");
        assert!(
            !wal.warn_if_large(2 * WARN_ABOVE),
            "still past it: no second one"
        );
        assert!(
            !wal.warn_if_large(WARN_ABOVE / 2 + 1),
            "not back under half yet"
        );
        assert!(!wal.warn_if_large(WARN_ABOVE + 1), "so not warned again");
        assert!(!wal.warn_if_large(WARN_ABOVE / 2 - 1), "back under half");
        assert!(
            wal.warn_if_large(WARN_ABOVE + 1),
            "past it again: a warning"
        );
    }
}
