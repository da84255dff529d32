//! The embedded backend: the whole queue in one SQLite file, for a single
//! machine where running Redis would be overkill. `emit` processes (cron jobs,
//! scripts) write into the same file a long-running worker claims from, so
//! everything here is shaped by many short-lived writers sharing one file:
//! WAL mode so readers never block the writer, a busy timeout instead of
//! "database is locked", and `BEGIN IMMEDIATE` for every write so two
//! connections never both hold a read lock and then deadlock upgrading it.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::entry::RawEntry;
use super::{Describe, QueueError, QueueOptions, Result, UnavailableReason};

mod admin;
mod dead;
mod forget;
mod holds;
mod lifecycle;
mod limiter;
mod retries;
mod schema;
mod stream;

use dead::{insert_dead, stored_letter};
use retries::upsert_retry;
#[cfg(test)]
use schema::MIGRATIONS;
use schema::migrate;

/// How long a statement waits for another process's write to finish. Long
/// enough for any real transaction here (they take microseconds to
/// milliseconds), short enough that a wedged process is reported.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often `claim` looks again while blocking: SQLite cannot wake us when
/// another process appends. A look is `PRAGMA data_version`, which reads no
/// table (it changes when another connection commits), so it can be often:
/// a new event waits 2.5 ms on average for it. Rows are read only when it
/// changed.
const POLL_STEP: Duration = Duration::from_millis(5);

/// `history` reads in pages and lets go of the file between them, so a slow
/// visitor (replay sending HTTP requests) never pins an old WAL snapshot.
const HISTORY_BATCH: i64 = 1000;

/// `trim` deletes in chunks, each its own transaction, so a large cleanup
/// never holds the write lock long enough to make an `emit` time out.
const TRIM_CHUNK: i64 = 5000;
/// Dead letters looked at per transaction by a purge.
const DEAD_PAGE: i64 = 1000;

/// The queue in a SQLite file.
pub struct SqliteQueue {
    conn: Connection,
    path: PathBuf,
    lease_ms: i64,
    /// How long to wait for a lock another process holds.
    busy: Duration,
}

impl SqliteQueue {
    /// Opens the queue at `path`, creating the file, its parent directories
    /// and the schema when missing. Cheap when the schema is current: `emit`
    /// opens one per process.
    pub fn open(path: &Path, options: QueueOptions) -> Result<SqliteQueue> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                QueueError::unavailable(
                    UnavailableReason::Unreachable,
                    format!(
                        "cannot open the event store {}: cannot create {}: {e} (is the directory writable?)",
                        path.display(),
                        parent.display()
                    ),
                )
            })?;
        }
        let busy = options.timeout.unwrap_or(BUSY_TIMEOUT);
        let fail = |e| classify_within(path, e, busy);
        let mut conn = Connection::open(path).map_err(fail)?;
        configure(&mut conn, busy).map_err(fail)?;
        migrate(&mut conn, path)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(SqliteQueue {
            conn,
            path: path.to_path_buf(),
            lease_ms: duration_ms(options.claim_lease),
            busy,
        })
    }

    /// Runs `f` in a write transaction taken up front, so it waits for other
    /// writers at `BEGIN` rather than failing halfway on a lock upgrade.
    fn write<T>(&mut self, f: impl FnOnce(&Transaction) -> rusqlite::Result<T>) -> Result<T> {
        let run = || {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        };
        run().map_err(|e| classify_within(&self.path, e, self.busy))
    }

    /// Runs `f` in a read transaction: one consistent snapshot, no lock on
    /// writers.
    fn read<T>(&mut self, f: impl FnOnce(&Transaction) -> rusqlite::Result<T>) -> Result<T> {
        let run = || {
            let tx = self.conn.transaction()?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        };
        run().map_err(|e| classify_within(&self.path, e, self.busy))
    }

    /// A number that changes whenever another connection commits to the file.
    fn data_version(&mut self) -> Result<i64> {
        self.conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
            .map_err(|e| classify(&self.path, e))
    }
}

/// Per-connection settings, and WAL once per file (it is stored in the file).
fn configure(conn: &mut Connection, busy: Duration) -> rusqlite::Result<()> {
    conn.busy_timeout(busy)?;
    let deadline = Instant::now() + busy;
    loop {
        // Switching a new file to WAL takes an exclusive lock without
        // consulting the busy handler, so when several processes create the
        // file at once the losers get BUSY at once and must try again.
        match conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
        {
            // Any mode is accepted: a file we may only read keeps its own,
            // and writes to it then report it as read-only.
            Ok(_) => break,
            Err(e) if is_busy(&e) && Instant::now() < deadline => thread::sleep(POLL_STEP),
            Err(e) => return Err(e),
        }
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // What any row deleted or rewritten held is overwritten with zeros:
    // the space it took in its page, and every page it frees (a row over a
    // page long keeps the rest of itself on pages of its own), so nothing
    // of a person is left in the file once `forget` erased their events.
    conn.pragma_update(None, "secure_delete", "ON")
}

/// A stream row as stored: every column kept as whatever SQLite holds, so
/// a row written by other means decodes into poison instead of failing the
/// whole claim.
pub(super) struct Row {
    seq: i64,
    /// As stored (a hand-written row may hold a REAL): `history` pages by it.
    ts_ms: Value,
    raw: RawEntry,
}

impl Row {
    /// Reads the columns `seq, id, type, ts, ts_ms, payload, written_ms`.
    pub(super) fn from_row(row: &rusqlite::Row) -> rusqlite::Result<Row> {
        let seq: i64 = row.get(0)?;
        let ts_ms: Value = row.get(4)?;
        let written: Value = row.get(6)?;
        let mut fields = Vec::with_capacity(4);
        for (name, column) in [("id", 1), ("type", 2), ("ts", 3), ("payload", 5)] {
            if let Some(text) = text(&row.get::<_, Value>(column)?) {
                fields.push((name.to_owned(), text));
            }
        }
        // A row inserted by hand may lack its write time; its `ts` is the
        // best estimate there is.
        let written_ms = [&written, &ts_ms]
            .into_iter()
            .find_map(|v| match v {
                Value::Integer(ms) => Some(*ms),
                Value::Real(ms) => Some(*ms as i64),
                _ => None,
            })
            .unwrap_or(0);
        Ok(Row {
            seq,
            ts_ms,
            raw: RawEntry {
                key: seq.to_string(),
                written_ms: written_ms.max(0) as u64,
                seq: seq.max(0) as u64,
                fields: Some(fields),
            },
        })
    }
}

pub(super) fn text(value: &Value) -> Option<String> {
    match value {
        Value::Text(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Real(f) => Some(f.to_string()),
        Value::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Null => None,
    }
}

pub(super) fn to_json<T: Serialize + ?Sized>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

pub(super) fn from_json<T: DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    serde_json::from_str(text)
}

/// Parses a key this backend handed out (a row number).
pub(super) fn parse_key(path: &Path, what: &str, key: &str) -> Result<i64> {
    key.parse().map_err(|_| {
        QueueError::Backend(format!(
            "{key:?} is not a {what} key of the event store {}",
            path.display()
        ))
    })
}

pub(super) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(super) fn clamp(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Turns a SQLite error into a sentence naming the file, sorted by whether
/// trying again later can help.
fn classify(path: &Path, e: rusqlite::Error) -> QueueError {
    classify_within(path, e, BUSY_TIMEOUT)
}

/// `classify`, for a connection that waits `busy` for a lock.
fn classify_within(path: &Path, e: rusqlite::Error, busy: Duration) -> QueueError {
    let path = path.display();
    let waited = super::shown_timeout(busy);
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => QueueError::unavailable(
            UnavailableReason::Locked,
            format!("{path} stayed locked by another process for more than {waited}"),
        ),
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => QueueError::unavailable(
            UnavailableReason::Unreachable,
            format!("cannot open the event store {path}: {e} (is the directory writable?)"),
        ),
        Some(ErrorCode::ReadOnly) => QueueError::NotWritable(format!(
            "the store {path} cannot be written: {e} (are the file and its directory writable?)"
        )),
        Some(ErrorCode::DiskFull) => QueueError::unavailable(
            UnavailableReason::Unreachable,
            format!("cannot write to the event store {path}: {e}"),
        ),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => QueueError::Backend(format!(
            "{path} is not an events database or is corrupt: {e}"
        )),
        _ => QueueError::Backend(format!("the event store {path} failed: {e}")),
    }
}

impl Describe for SqliteQueue {
    fn describe(&self) -> String {
        format!("sqlite {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::params;

    use super::*;
    use crate::event::{Event, now_ms};
    use crate::queue::prelude::*;
    use crate::queue::{Delivery, Settlement, StreamEntry};

    /// A database of the first schema is migrated in place: its rows take
    /// their `ts` as their write time (the best estimate there is), new rows
    /// the time they are written, and trimming goes by that.
    #[test]
    fn a_first_schema_database_is_migrated_and_trimmed_by_write_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let day = 86_400_000;
        let now = now_ms();
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO stream (id, type, ts, ts_ms, payload, state) VALUES
                 ('old', 'user.signup', '', ?1, '{\"email\":\"a@b.c\"}', 2),
                 ('recent', 'user.signup', '', ?2, '{\"email\":\"a@b.c\"}', 2)",
                params![now - 40 * day, now - day],
            )
            .unwrap();
        }
        let mut queue = SqliteQueue::open(&path, QueueOptions::default()).unwrap();
        let version: i64 = queue
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let mut backfilled = crate::event::Event::new("user.signup", Default::default());
        backfilled.ts = crate::event::format_ts_ms(now - 90 * day);
        queue.append(&[backfilled]).unwrap();
        queue
            .conn
            .execute("UPDATE stream SET state = 2", [])
            .unwrap();
        assert_eq!(queue.trim(now - 30 * day).unwrap(), 1, "only 'old'");
        let left: Vec<String> = queue
            .conn
            .prepare("SELECT id FROM stream ORDER BY seq")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(left.len(), 2);
        assert_eq!(left[0], "recent");
        let trim = queue
            .conn
            .prepare("EXPLAIN QUERY PLAN SELECT seq FROM stream WHERE state = 2 AND written_ms < 5")
            .unwrap()
            .query_map([], |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap()
            .join("\n");
        assert!(trim.contains("stream_written"), "{trim}");
    }

    /// A claim that fell back to scanning or sorting the whole table would
    /// still pass every behavioural test, just slower with each event kept.
    #[test]
    fn claims_read_only_what_they_need() {
        let dir = tempfile::tempdir().unwrap();
        let queue = SqliteQueue::open(&dir.path().join("q.db"), QueueOptions::default()).unwrap();
        let plan = |sql: &str| {
            let mut stmt = queue
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let rows = stmt
                .query_map([], |row| row.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<Vec<_>>>()
                .unwrap();
            rows.join("\n")
        };
        let claim = plan(
            "SELECT seq FROM stream WHERE state < 2 AND (state = 0 OR lease_until < 5)
             ORDER BY seq LIMIT 10",
        );
        assert!(claim.contains("stream_unsettled"), "{claim}");
        assert!(!claim.contains("TEMP B-TREE"), "{claim}");
        let lag = plan("SELECT count(*) FROM stream WHERE state < 2 AND state = 0");
        assert!(lag.contains("stream_unsettled"), "{lag}");
        let retries =
            plan("SELECT token FROM retry WHERE due_ms <= 5 ORDER BY due_ms, token LIMIT 10");
        assert!(retries.contains("retry_due"), "{retries}");
        assert!(!retries.contains("TEMP B-TREE"), "{retries}");
        // With --only: one range of the (dest, due_ms) index per destination,
        // never a walk over the deliveries parked for the others.
        let only = plan(
            "SELECT due_ms, token, dest, delivery FROM retry
             WHERE dest = 'slack' AND due_ms <= 5 ORDER BY due_ms, token LIMIT 10",
        );
        assert!(
            only.contains("retry_dest_due (dest=? AND due_ms<?)"),
            "{only}"
        );
        assert!(!only.contains("TEMP B-TREE"), "{only}");
        let first = plan("SELECT due_ms FROM retry WHERE dest = 'slack' ORDER BY due_ms LIMIT 1");
        assert!(first.contains("retry_dest_due (dest=?)"), "{first}");
        assert!(!first.contains("TEMP B-TREE"), "{first}");
        let earliest = plan("SELECT min(due_ms) FROM retry");
        assert!(earliest.contains("retry_due"), "{earliest}");
        // Counting reads the counts the triggers keep, not the rows.
        let dead =
            plan("SELECT dest, error, n FROM dead_counts WHERE n > 0 ORDER BY n DESC, dest, error");
        assert!(!dead.contains(" dead "), "{dead}");
    }

    /// The counts the triggers keep must be what counting the rows says,
    /// whoever wrote them and however they moved.
    #[test]
    fn the_kept_counts_are_the_counted_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut queue = SqliteQueue::open(
            &dir.path().join("q.db"),
            QueueOptions {
                claim_lease: Duration::ZERO,
                ..QueueOptions::default()
            },
        )
        .unwrap();
        let check = |queue: &mut SqliteQueue| {
            let counted = |sql: &str| -> u64 {
                queue
                    .conn
                    .query_row(sql, [], |row| row.get::<_, i64>(0))
                    .unwrap() as u64
            };
            let rows = (
                counted("SELECT count(*) FROM stream"),
                counted("SELECT count(*) FROM stream WHERE state = 0"),
                counted("SELECT count(*) FROM stream WHERE state = 1"),
                counted("SELECT count(*) FROM retry"),
            );
            let stats = queue.stats().unwrap();
            let backlog = queue.backlog(&[]).unwrap();
            assert_eq!(
                (stats.length, stats.lag, backlog.pending, stats.retries),
                rows
            );
            assert_eq!(backlog.unread, rows.1);
        };
        let events: Vec<Event> = (0..5)
            .map(|_| Event::new("user.signup", Default::default()))
            .collect();
        queue.append(&events).unwrap();
        queue
            .conn
            .execute(
                "INSERT INTO stream (id, type, ts, ts_ms, payload) VALUES ('x', 't', '', 1, '{}')",
                [],
            )
            .unwrap();
        check(&mut queue);
        let claimed = queue.claim("a", 3, Duration::ZERO).unwrap();
        check(&mut queue);
        // The lease is zero: another consumer takes them over (state stays 1)
        // once a millisecond has passed, the clock's grain.
        std::thread::sleep(Duration::from_millis(2));
        let again = queue.claim("b", 3, Duration::ZERO).unwrap();
        assert_eq!(keys(&again), keys(&claimed));
        check(&mut queue);
        let delivery = Delivery {
            event: events[0].clone(),
            dest: "slack".into(),
            attempts: 1,
            last_error: None,
        };
        let settlement = Settlement {
            acks: keys(&again),
            retries: vec![(delivery.clone(), 5)],
            ..Settlement::default()
        };
        queue.settle("b", &settlement).unwrap();
        queue.settle("b", &settlement).unwrap();
        check(&mut queue);
        queue.trim(i64::MAX).unwrap();
        check(&mut queue);
        assert_eq!(queue.stats().unwrap().length, 3);
    }

    fn keys(entries: &[StreamEntry]) -> Vec<String> {
        entries.iter().map(|e| e.key.clone()).collect()
    }

    /// A blocked claim looks at `PRAGMA data_version` only, which moves
    /// when another connection (an `emit`, the settler) commits and not on
    /// this connection's own writes.
    #[test]
    fn a_blocked_claim_wakes_on_another_connections_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut worker = SqliteQueue::open(&path, QueueOptions::default()).unwrap();
        let mut emitter = SqliteQueue::open(&path, QueueOptions::default()).unwrap();
        let before = worker.data_version().unwrap();
        emitter
            .append(&[Event::new("user.signup", Default::default())])
            .unwrap();
        let after = worker.data_version().unwrap();
        assert_ne!(before, after, "another connection committed");
        assert_eq!(worker.claim("w", 10, Duration::ZERO).unwrap().len(), 1);
        assert_eq!(
            worker.data_version().unwrap(),
            after,
            "own writes do not count"
        );

        let appending = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            emitter
                .append(&[Event::new("user.signup", Default::default())])
                .unwrap();
        });
        // A long block (a hang guard only): the append ends it.
        let claimed = worker.claim("w", 10, Duration::from_secs(60)).unwrap();
        assert_eq!(claimed.len(), 1);
        appending.join().unwrap();
    }

    #[test]
    fn read_only_store_is_not_writable_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut queue = SqliteQueue::open(&path, QueueOptions::default()).unwrap();
        // Root ignores file modes; SQLite's own switch fails for everyone.
        queue.conn.pragma_update(None, "query_only", true).unwrap();
        let err = queue
            .append(&[Event::new("user.signup", Default::default())])
            .unwrap_err();
        assert!(matches!(err, QueueError::NotWritable(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("the store {} cannot be written", path.display())),
            "{text}"
        );
    }

    #[test]
    fn history_pages_past_rows_with_a_real_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut queue =
            SqliteQueue::open(&dir.path().join("q.db"), QueueOptions::default()).unwrap();
        let mut stmt = queue
            .conn
            .prepare(
                "INSERT INTO stream (id, type, ts, ts_ms, payload) VALUES (?1, 'x', '2026-01-01T00:00:00Z', ?2, '{}')",
            )
            .unwrap();
        for n in 0..HISTORY_BATCH + 5 {
            stmt.execute(params![n.to_string(), 10.5 + n as f64])
                .unwrap();
        }
        drop(stmt);
        let mut seen = 0;
        queue
            .history(0, i64::MAX, &mut |batch| {
                seen += batch.len();
                true
            })
            .unwrap();
        assert_eq!(seen as i64, HISTORY_BATCH + 5);
    }
}
