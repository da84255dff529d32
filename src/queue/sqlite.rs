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
use rusqlite::{
    Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior, params,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::entry::{self, RawEntry};
use super::{
    Admin, AttemptRecord, Backlog, Consumer, ConsumerHeld, ConsumerStats, DeadFilter, DeadLetter,
    Delivery, Describe, Producer, QueueError, QueueOptions, Result, RetryClaim, Settlement, Stats,
    StoredDeadLetter, UnavailableReason,
};
use crate::alert;
use crate::event::{Event, now_ms};
use crate::rate::{self, Rate, Taken};

mod forget;
mod lifecycle;
mod retries;

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

/// Schema migrations, applied in order; `PRAGMA user_version` is how many ran.
/// Append only: a released migration is never edited.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "CREATE TABLE stream (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT,
        type TEXT NOT NULL,
        ts TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        ts_ms INTEGER,
        payload TEXT NOT NULL,
        -- 0 unread, 1 claimed (by consumer until lease_until), 2 acked.
        state INTEGER NOT NULL DEFAULT 0,
        consumer TEXT,
        lease_until INTEGER
    );
    -- Only unread and claimed rows are ever looked for by state; the acked
    -- history, by far the largest part, stays out of this index. Ordered by
    -- seq so a claim reads the oldest few and stops, whatever the backlog.
    CREATE INDEX stream_unsettled ON stream (seq, state, lease_until) WHERE state < 2;
    CREATE INDEX stream_ts ON stream (ts_ms);
    CREATE TABLE retry (
        token TEXT PRIMARY KEY,
        due_ms INTEGER NOT NULL,
        -- Copied out of the delivery so `--only` workers filter without
        -- decoding every retry.
        dest TEXT NOT NULL,
        delivery TEXT NOT NULL
    );
    CREATE INDEX retry_due ON retry (due_ms);
    CREATE TABLE dead (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        letter TEXT NOT NULL,
        dest TEXT NOT NULL,
        error TEXT NOT NULL,
        at_ms INTEGER NOT NULL
    );
    CREATE TABLE idem (
        key TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        expires_ms INTEGER NOT NULL
    );
    CREATE TABLE consumers (
        name TEXT PRIMARY KEY,
        seen_ms INTEGER NOT NULL
    );",
    // 2: consumer names held exclusively by a running worker, until expiry.
    "CREATE TABLE consumer_leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_ms INTEGER NOT NULL
    );",
    // 3: history is trimmed by the time each event was written (as on
    // Redis, by entry id), not by its `ts`: a backfilled event is kept for
    // the retention like any other. Rows written before this migration have
    // no write time; their `ts` is the best estimate there is.
    "ALTER TABLE stream ADD COLUMN written_ms INTEGER;
    UPDATE stream SET written_ms = ts_ms;
    CREATE INDEX stream_written ON stream (written_ms);",
    // 4: what `status` and the worker ask of the stream, retries and dead
    // letters costs the same however many there are: due retries are found
    // per destination, and entries (by state), retries and dead letters are
    // counted as they are written (by triggers, so every writer keeps the
    // counts, in its own transaction). An existing file is counted once here.
    "CREATE TABLE stream_counts (state NOT NULL PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO stream_counts (state, n) SELECT state, count(*) FROM stream GROUP BY state;
    CREATE TRIGGER stream_counted AFTER INSERT ON stream BEGIN
        INSERT INTO stream_counts (state, n) VALUES (new.state, 1)
        ON CONFLICT (state) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER stream_uncounted AFTER DELETE ON stream BEGIN
        UPDATE stream_counts SET n = n - 1 WHERE state = old.state;
    END;
    CREATE TRIGGER stream_recounted AFTER UPDATE OF state ON stream
    WHEN old.state IS NOT new.state BEGIN
        UPDATE stream_counts SET n = n - 1 WHERE state = old.state;
        INSERT INTO stream_counts (state, n) VALUES (new.state, 1)
        ON CONFLICT (state) DO UPDATE SET n = n + 1;
    END;
    CREATE INDEX retry_dest_due ON retry (dest, due_ms);
    CREATE TABLE retry_counts (dest TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO retry_counts (dest, n) SELECT dest, count(*) FROM retry GROUP BY dest;
    CREATE TRIGGER retry_counted AFTER INSERT ON retry BEGIN
        INSERT INTO retry_counts (dest, n) VALUES (new.dest, 1)
        ON CONFLICT (dest) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER retry_uncounted AFTER DELETE ON retry BEGIN
        UPDATE retry_counts SET n = n - 1 WHERE dest = old.dest;
        DELETE FROM retry_counts WHERE dest = old.dest AND n <= 0;
    END;
    CREATE TABLE dead_counts (
        dest TEXT NOT NULL,
        error TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (dest, error)
    ) WITHOUT ROWID;
    INSERT INTO dead_counts (dest, error, n) SELECT dest, error, count(*) FROM dead GROUP BY dest, error;
    CREATE TRIGGER dead_counted AFTER INSERT ON dead BEGIN
        INSERT INTO dead_counts (dest, error, n) VALUES (new.dest, new.error, 1)
        ON CONFLICT (dest, error) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER dead_uncounted AFTER DELETE ON dead BEGIN
        UPDATE dead_counts SET n = n - 1 WHERE dest = old.dest AND error = old.error;
        DELETE FROM dead_counts WHERE dest = old.dest AND error = old.error AND n <= 0;
    END;",
    // 5: each rate-limited destination's shared bucket: when its next send
    // is free, ms since the epoch.
    "CREATE TABLE rate_limits (
        dest TEXT PRIMARY KEY,
        next_free_ms INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 6: each destination's dead-letter alert window, shared by workers.
    "CREATE TABLE alert_windows (
        dest TEXT PRIMARY KEY,
        until_ms INTEGER NOT NULL,
        counted_between INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 7: each destination's running totals, for `status`.
    "CREATE TABLE tallies (
        dest TEXT PRIMARY KEY,
        delivered INTEGER NOT NULL DEFAULT 0,
        rate_limited INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;",
    // 8: the latest error counted into an alert window, reported with the
    // count when the window ends.
    "ALTER TABLE alert_windows ADD COLUMN last_error TEXT NOT NULL DEFAULT '';",
    // 9: every delivery attempt, for `inspect`, trimmed with the history;
    // and the events `forget` erased lately, which a settle of a delivery
    // in flight meanwhile must not write back.
    "CREATE TABLE attempts (
        event_id TEXT NOT NULL,
        dest TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        status INTEGER,
        error TEXT,
        duration_ms INTEGER NOT NULL,
        entry TEXT
    );
    -- Looked up by event; trimmed from the oldest row (rows are written
    -- in time order), which needs no index of its own.
    CREATE INDEX attempts_event ON attempts (event_id);
    CREATE TABLE forgotten (
        event_id TEXT PRIMARY KEY,
        at_ms INTEGER NOT NULL
    ) WITHOUT ROWID;",
];

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

    /// Counts, and removes when `remove` is set, the dead letters `filter`
    /// selects, a page of letters per transaction (the counts `status` shows
    /// follow by trigger). Time and destination are checked before a letter
    /// is decoded.
    fn dead_pass(&mut self, filter: &DeadFilter, remove: bool) -> Result<u64> {
        let before = filter.before_ms.unwrap_or(i64::MAX);
        let mut after = 0_i64;
        let mut selected = 0;
        loop {
            let (last, seqs) = self.read(|tx| {
                let mut last = None;
                let mut seqs = Vec::new();
                let mut stmt = tx.prepare_cached(
                    "SELECT seq, letter, dest, error, at_ms FROM dead
                     WHERE seq > ?1 AND at_ms < ?2 ORDER BY seq LIMIT ?3",
                )?;
                let mut rows = stmt.query(params![after, before, DEAD_PAGE])?;
                while let Some(row) = rows.next()? {
                    let seq: i64 = row.get(0)?;
                    last = Some(seq);
                    let (dest, at_ms): (String, i64) = (row.get(2)?, row.get(4)?);
                    if !filter.passes_over(&dest, at_ms)
                        && filter.matches(&stored_letter(row)?.letter)
                    {
                        seqs.push(seq);
                    }
                }
                Ok((last, seqs))
            })?;
            selected += seqs.len() as u64;
            if remove && !seqs.is_empty() {
                self.write(|tx| {
                    let mut delete = tx.prepare_cached("DELETE FROM dead WHERE seq = ?1")?;
                    seqs.iter()
                        .try_for_each(|seq| delete.execute([seq]).map(drop))
                })?;
            }
            match last {
                Some(last) => after = last,
                None => return Ok(selected),
            }
        }
    }

    /// Whether `claim` would find anything now.
    fn claimable(&mut self) -> Result<bool> {
        self.read(|tx| {
            tx.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM stream
                 WHERE state < 2 AND (state = 0 OR lease_until < ?1))",
            )?
            .query_row([now_ms()], |row| row.get(0))
        })
    }

    /// Claims up to `count` claimable entries for `consumer`, or with
    /// `recovering` re-leases every entry it already holds; oldest first.
    fn take(&mut self, consumer: &str, count: usize, recovering: bool) -> Result<Vec<RawEntry>> {
        let lease_ms = self.lease_ms;
        self.write(|tx| {
            let now = now_ms();
            let until = now.saturating_add(lease_ms);
            // Entries are claimed oldest first, so an expired claim is always
            // older than every unread entry: ordering by seq alone puts
            // taken-over entries first, as the contract asks.
            let sql = if recovering {
                "UPDATE stream SET lease_until = ?2
                 WHERE state < 2 AND state = 1 AND consumer = ?1
                 RETURNING seq, id, type, ts, ts_ms, payload, written_ms"
            } else {
                "UPDATE stream SET state = 1, consumer = ?1, lease_until = ?2
                 WHERE seq IN (
                     SELECT seq FROM stream
                     WHERE state < 2 AND (state = 0 OR lease_until < ?3)
                     ORDER BY seq LIMIT ?4)
                 RETURNING seq, id, type, ts, ts_ms, payload, written_ms"
            };
            let mut stmt = tx.prepare_cached(sql)?;
            let mut rows = if recovering {
                stmt.query(params![consumer, until])?
            } else {
                stmt.query(params![consumer, until, now, clamp(count)])?
            };
            let mut taken = Vec::new();
            while let Some(row) = rows.next()? {
                taken.push(Row::from_row(row)?);
            }
            drop(rows);
            touch(tx, consumer, now)?;
            // RETURNING gives rows in no promised order.
            taken.sort_by_key(|row| row.seq);
            Ok(taken.into_iter().map(|row| row.raw).collect())
        })
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

/// Brings the schema up to date. When it already is, this is a single read of
/// the file header.
fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let latest = MIGRATIONS.len() as i64;
    let fail = |e| classify(path, e);
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(fail)?;
    if version == latest {
        return Ok(());
    }
    if version > latest {
        return Err(newer_schema(path, version, latest));
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    // Another process may have migrated while we waited for the lock.
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(fail)?;
    if version > latest {
        return Err(newer_schema(path, version, latest));
    }
    if version == 0 {
        let tables: i64 = tx
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'",
                [],
                |row| row.get(0),
            )
            .map_err(fail)?;
        if tables > 0 {
            return Err(QueueError::Backend(format!(
                "{} is not an events database or is corrupt: it already holds \
                 {tables} other tables (is the path pointing at another program's database?)",
                path.display()
            )));
        }
    }
    for migration in &MIGRATIONS[version as usize..] {
        tx.execute_batch(migration).map_err(fail)?;
    }
    tx.pragma_update(None, "user_version", latest)
        .map_err(fail)?;
    tx.commit().map_err(fail)
}

fn newer_schema(path: &Path, version: i64, latest: i64) -> QueueError {
    QueueError::Backend(format!(
        "{} was written by a newer version of events (schema version {version}, \
         this one knows up to {latest}); upgrade events to use it",
        path.display()
    ))
}

/// Records that `consumer` was active, for the idle time in `stats`.
fn touch(tx: &Transaction, consumer: &str, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO consumers (name, seen_ms) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET seen_ms = excluded.seen_ms",
    )?
    .execute(params![consumer, now])?;
    Ok(())
}

fn insert_event(tx: &Transaction, event: &Event) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO stream (id, type, ts, ts_ms, payload, written_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        event.id,
        event.kind,
        event.ts,
        event.ts_ms(),
        to_json(&event.payload)?,
        now_ms()
    ])?;
    Ok(())
}

/// Adds or replaces a retry: one delivery (event and destination) is in the
/// retry set at most once, whoever scheduled it.
fn upsert_retry(tx: &Transaction, delivery: &Delivery, due_ms: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO retry (token, due_ms, dest, delivery) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (token) DO UPDATE SET due_ms = excluded.due_ms, delivery = excluded.delivery",
    )?
    .execute(params![
        delivery.token(),
        due_ms,
        delivery.dest,
        to_json(delivery)?
    ])?;
    Ok(())
}

fn insert_dead(tx: &Transaction, letter: &DeadLetter) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO dead (letter, dest, error, at_ms) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![
            to_json(letter)?,
            letter.dest,
            letter.error,
            letter.at_ms
        ])?;
    Ok(())
}

/// A stream row as stored: every column kept as whatever SQLite holds, so
/// a row written by other means decodes into poison instead of failing the
/// whole claim.
struct Row {
    seq: i64,
    /// As stored (a hand-written row may hold a REAL): `history` pages by it.
    ts_ms: Value,
    raw: RawEntry,
}

impl Row {
    /// Reads the columns `seq, id, type, ts, ts_ms, payload, written_ms`.
    fn from_row(row: &rusqlite::Row) -> rusqlite::Result<Row> {
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

/// A column as text when it is not NULL; bytes that are not UTF-8 are
/// replaced, as Redis replies are.
/// A dead letter as listed. One that no longer decodes is still listed,
/// with its text as the event, so it can be inspected and purged.
fn stored_letter(row: &rusqlite::Row) -> rusqlite::Result<StoredDeadLetter> {
    let seq: i64 = row.get(0)?;
    let json: String = row.get(1)?;
    let letter = from_json::<DeadLetter>(&json).unwrap_or_else(|_| DeadLetter {
        event: Err(json.clone()),
        dest: row.get(2).unwrap_or_default(),
        attempts: 0,
        error: row.get(3).unwrap_or_default(),
        at_ms: row.get(4).unwrap_or_default(),
    });
    Ok(StoredDeadLetter {
        key: seq.to_string(),
        letter,
    })
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::Text(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Real(f) => Some(f.to_string()),
        Value::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Null => None,
    }
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn from_json<T: DeserializeOwned>(text: &str) -> std::result::Result<T, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// Parses a key this backend handed out (a row number).
fn parse_key(path: &Path, what: &str, key: &str) -> Result<i64> {
    key.parse().map_err(|_| {
        QueueError::Backend(format!(
            "{key:?} is not a {what} key of the event store {}",
            path.display()
        ))
    })
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn clamp(count: usize) -> i64 {
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

impl Producer for SqliteQueue {
    fn append(&mut self, events: &[Event]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.write(|tx| events.iter().try_for_each(|event| insert_event(tx, event)))
    }

    fn append_idempotent(
        &mut self,
        key: &str,
        event: &Event,
        ttl: Duration,
    ) -> Result<Option<String>> {
        self.write(|tx| {
            let now = now_ms();
            let existing: Option<String> = tx
                .prepare_cached("SELECT event_id FROM idem WHERE key = ?1 AND expires_ms > ?2")?
                .query_row(params![key, now], |row| row.get(0))
                .optional()?;
            if existing.is_some() {
                return Ok(existing);
            }
            tx.prepare_cached(
                "INSERT OR REPLACE INTO idem (key, event_id, expires_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![key, event.id, now.saturating_add(duration_ms(ttl))])?;
            insert_event(tx, event)?;
            Ok(None)
        })
    }
}

impl Consumer for SqliteQueue {
    fn recover_raw(&mut self, consumer: &str) -> Result<Vec<RawEntry>> {
        self.take(consumer, usize::MAX, true)
    }

    fn claim_raw(
        &mut self,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<RawEntry>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + block;
        loop {
            // Read before taking, so a commit landing in between is noticed.
            let mut version = self.data_version()?;
            let entries = self.take(consumer, count, false)?;
            if !entries.is_empty() {
                return Ok(entries);
            }
            // Polls only read: an idle worker must not write to the file (and
            // take the write lock from `emit`) two hundred times a second.
            // A claim whose lease ran out needs no commit to become
            // claimable: the next call's `take` finds it.
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Vec::new());
                }
                thread::sleep(left.min(POLL_STEP));
                let now = self.data_version()?;
                if now != version && self.claimable()? {
                    break;
                }
                version = now;
            }
        }
    }

    fn claim_retries(
        &mut self,
        now_ms: i64,
        count: usize,
        only: &[String],
    ) -> Result<Vec<RetryClaim>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let lease_ms = self.lease_ms;
        self.write(|tx| {
            let due = retries::due(tx, now_ms, clamp(count), only)?;
            let mut claims = Vec::with_capacity(due.len());
            for (token, _dest, json) in due {
                match entry::decode_retry(Some(&json)) {
                    Ok(delivery) => {
                        // The lease is the due time: if this claim is never
                        // settled the retry simply falls due again.
                        tx.prepare_cached("UPDATE retry SET due_ms = ?2 WHERE token = ?1")?
                            .execute(params![token, now_ms.saturating_add(lease_ms)])?;
                        claims.push(RetryClaim { token, delivery });
                    }
                    Err(why) => {
                        // A retry nobody can decode would otherwise come back
                        // forever; it goes where undeliverable things go.
                        let letter = entry::broken_retry_letter(&token, Some(&json), &why, now_ms);
                        insert_dead(tx, &letter)?;
                        tx.prepare_cached("DELETE FROM retry WHERE token = ?1")?
                            .execute([&token])?;
                    }
                }
            }
            Ok(claims)
        })
    }

    fn settle(&mut self, consumer: &str, settlement: &Settlement) -> Result<()> {
        let acks = settlement
            .acks
            .iter()
            .map(|key| parse_key(&self.path, "stream entry", key))
            .collect::<Result<Vec<_>>>()?;
        self.write(|tx| {
            for seq in acks {
                tx.prepare_cached(
                    "UPDATE stream SET state = 2, lease_until = NULL WHERE seq = ?1",
                )?
                .execute([seq])?;
            }
            // Removed before the new retries go in: a rescheduled retry has
            // the same token as the claim it replaces.
            for token in &settlement.done_retries {
                tx.prepare_cached("DELETE FROM retry WHERE token = ?1")?
                    .execute([token])?;
            }
            // An event erased while it was being delivered stays erased.
            let guard = lifecycle::any_forgotten(tx)?;
            let gone = |id: &str| -> rusqlite::Result<bool> {
                Ok(guard && lifecycle::is_forgotten(tx, id)?)
            };
            for (delivery, due_ms) in &settlement.retries {
                if !gone(&delivery.event.id)? {
                    upsert_retry(tx, delivery, *due_ms)?;
                }
            }
            for letter in &settlement.dead {
                let erased = match &letter.event {
                    Ok(event) => gone(&event.id)?,
                    Err(_) => false,
                };
                if !erased {
                    insert_dead(tx, letter)?;
                }
            }
            for record in &settlement.attempts {
                if !gone(&record.event_id)? {
                    lifecycle::insert_attempt(tx, record)?;
                }
            }
            retries::add_tallies(tx, &settlement.tallies)?;
            touch(tx, consumer, now_ms())
        })
    }

    fn renew(&mut self, consumer: &str, entries: &[String], retries: &[String]) -> Result<()> {
        let seqs = entries
            .iter()
            .map(|key| parse_key(&self.path, "stream entry", key))
            .collect::<Result<Vec<_>>>()?;
        let lease_until = now_ms() + self.lease_ms;
        self.write(|tx| {
            for seq in seqs {
                tx.prepare_cached(
                    "UPDATE stream SET lease_until = ?1 WHERE seq = ?2 AND state = 1 AND consumer = ?3",
                )?
                .execute(rusqlite::params![lease_until, seq, consumer])?;
            }
            for token in retries {
                tx.prepare_cached("UPDATE retry SET due_ms = ?1 WHERE token = ?2")?
                    .execute(rusqlite::params![lease_until, token])?;
            }
            touch(tx, consumer, now_ms())
        })
    }

    fn hold_consumer(&mut self, consumer: &str, holder: &str, lease: Duration) -> Result<()> {
        let lease_ms = duration_ms(lease);
        let held = self.write(|tx| {
            let now = now_ms();
            // Taken when free, expired, or already ours (a renewal).
            let taken = tx
                .prepare_cached(
                    "INSERT INTO consumer_leases (name, holder, expires_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE
                     SET holder = excluded.holder, expires_ms = excluded.expires_ms
                     WHERE holder = excluded.holder OR expires_ms <= ?4",
                )?
                .execute(params![consumer, holder, now.saturating_add(lease_ms), now])?;
            if taken > 0 {
                return Ok(None);
            }
            tx.prepare_cached("SELECT holder, expires_ms FROM consumer_leases WHERE name = ?1")?
                .query_row([consumer], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })?;
        match held {
            None => Ok(()),
            Some((holder, until_ms)) => Err(ConsumerHeld {
                name: consumer.to_owned(),
                holder,
                until_ms,
            }
            .into()),
        }
    }

    fn release_consumer(&mut self, consumer: &str, holder: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM consumer_leases WHERE name = ?1 AND holder = ?2",
                params![consumer, holder],
            )
            .map(|_| ())
        })
    }

    fn leave(&mut self, consumer: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM consumers WHERE name = ?1
                 AND NOT EXISTS (SELECT 1 FROM stream WHERE state = 1 AND consumer = ?1)",
                [consumer],
            )
            .map(|_| ())
        })
    }

    fn take_token(&mut self, dest: &str, rate: Rate) -> Result<Option<Duration>> {
        // Every worker on this file runs on this machine: they share its clock.
        let (wait, reset) = self.write(|tx| {
            let found: Option<Value> = tx
                .query_row(
                    "SELECT next_free_ms FROM rate_limits WHERE dest = ?1",
                    [dest],
                    |row| row.get(0),
                )
                .optional()?;
            let text = match &found {
                Some(Value::Integer(ms)) => Some(ms.to_string()),
                Some(Value::Real(ms)) => Some(ms.to_string()),
                Some(Value::Text(text)) => Some(text.clone()),
                _ => None,
            };
            let stored = match (&found, &text) {
                (None, _) => rate::Stored::Nothing,
                (_, Some(text)) => rate::Stored::Text(text),
                (Some(_), None) => rate::Stored::Unreadable("neither a number nor text"),
            };
            let (next_free_ms, reset) = match rate::take(stored, now_ms(), rate) {
                Taken::Wait(wait) => return Ok((Some(wait), None)),
                Taken::Granted { next_free_ms } => (next_free_ms, None),
                Taken::Reset { next_free_ms, why } => (next_free_ms, Some(why)),
            };
            tx.execute(
                "INSERT INTO rate_limits (dest, next_free_ms) VALUES (?1, ?2)
                 ON CONFLICT (dest) DO UPDATE SET next_free_ms = excluded.next_free_ms",
                params![dest, next_free_ms],
            )?;
            Ok((None, reset))
        })?;
        if let Some(why) = reset {
            log::warn!(
                "the rate limit state at row {dest:?} of rate_limits in {} could not be read ({why}); reset",
                self.path.display()
            );
        }
        Ok(wait)
    }

    fn count_dead_for_alert(
        &mut self,
        dest: &str,
        count: u64,
        error: &str,
        window: Duration,
    ) -> Result<Option<u64>> {
        self.write(|tx| {
            let before = tx
                .query_row(
                    "SELECT until_ms, counted_between FROM alert_windows WHERE dest = ?1",
                    [dest],
                    |row| {
                        Ok(alert::Window {
                            until_ms: Some(row.get(0)?),
                            between: row.get::<_, i64>(1)?.max(0) as u64,
                        })
                    },
                )
                .optional()?
                .unwrap_or_default();
            let (after, report) = alert::count_into(before, count, now_ms(), window);
            tx.execute(
                "INSERT INTO alert_windows (dest, until_ms, counted_between, last_error)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (dest) DO UPDATE SET until_ms = excluded.until_ms,
                 counted_between = excluded.counted_between, last_error = excluded.last_error",
                params![dest, after.until_ms, after.between as i64, error],
            )?;
            Ok(report)
        })
    }

    fn alerts_due(&mut self, window: Duration) -> Result<Vec<alert::Tally>> {
        self.write(|tx| {
            let now = now_ms();
            let owing = tx
                .prepare_cached(
                    "SELECT dest, until_ms, counted_between, last_error FROM alert_windows
                     WHERE counted_between > 0 AND until_ms <= ?1",
                )?
                .query_map([now], |row| {
                    let window = alert::Window {
                        until_ms: Some(row.get(1)?),
                        between: row.get::<_, i64>(2)?.max(0) as u64,
                    };
                    Ok((row.get::<_, String>(0)?, window, row.get::<_, String>(3)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut due = Vec::new();
            for (dest, before, error) in owing {
                let (after, owed) = alert::due(before, now, window);
                let Some(count) = owed else { continue };
                tx.execute(
                    "UPDATE alert_windows SET until_ms = ?2, counted_between = 0 WHERE dest = ?1",
                    params![dest, after.until_ms],
                )?;
                due.push(alert::Tally { dest, count, error });
            }
            Ok(due)
        })
    }

    fn backlog(&mut self, only: &[String]) -> Result<Backlog> {
        self.read(|tx| {
            let (_, unread, pending) = retries::stream_counts(tx)?;
            let (retries, next_retry_ms) = retries::summary(tx, only)?;
            Ok(Backlog {
                unread,
                pending,
                retries,
                next_retry_ms,
            })
        })
    }
}

impl Admin for SqliteQueue {
    fn history(
        &mut self,
        from_ms: i64,
        until_ms: i64,
        visit: &mut dyn FnMut(Vec<Event>) -> bool,
    ) -> Result<()> {
        // The position after the last row seen, as stored: a hand-written
        // REAL time compares exactly and the pages still always advance.
        let mut after = (Value::Integer(i64::MIN), i64::MIN);
        loop {
            let rows = self.read(|tx| {
                tx.prepare_cached(
                    "SELECT seq, id, type, ts, ts_ms, payload, written_ms FROM stream
                     WHERE ts_ms >= ?1 AND ts_ms < ?2 AND (ts_ms, seq) > (?3, ?4)
                     ORDER BY ts_ms, seq LIMIT ?5",
                )?
                .query_map(
                    params![from_ms, until_ms, &after.0, after.1, HISTORY_BATCH],
                    Row::from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()
            })?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            let full = rows.len() as i64 == HISTORY_BATCH;
            after = (last.ts_ms.clone(), last.seq);
            // Poison cannot be replayed; claim already dead-lettered it.
            let events: Vec<Event> = rows
                .into_iter()
                .filter_map(|row| entry::decode(&row.raw).ok())
                .collect();
            if !events.is_empty() && !visit(events) {
                return Ok(());
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn enqueue(&mut self, deliveries: &[Delivery], due_ms: i64) -> Result<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            // A replay read these events before they may have been erased.
            let guard = lifecycle::any_forgotten(tx)?;
            for delivery in deliveries {
                if !(guard && lifecycle::is_forgotten(tx, &delivery.event.id)?) {
                    upsert_retry(tx, delivery, due_ms)?;
                }
            }
            Ok(())
        })
    }

    fn dead_letters(&mut self) -> Result<Vec<StoredDeadLetter>> {
        self.read(|tx| {
            tx.prepare_cached("SELECT seq, letter, dest, error, at_ms FROM dead ORDER BY seq")?
                .query_map([], stored_letter)?
                .collect()
        })
    }

    fn follow_from(&mut self, from_ms: Option<i64>) -> Result<String> {
        let seq: i64 = self.read(|tx| match from_ms {
            None => tx.query_row("SELECT coalesce(max(seq), 0) FROM stream", [], |row| {
                row.get(0)
            }),
            Some(from_ms) => tx.query_row(
                "SELECT coalesce(
                     (SELECT min(seq) FROM stream WHERE written_ms >= ?1) - 1,
                     (SELECT max(seq) FROM stream), 0)",
                [from_ms],
                |row| row.get(0),
            ),
        })?;
        Ok(seq.to_string())
    }

    fn follow(&mut self, after: &str, count: usize, block: Duration) -> Result<Vec<RawEntry>> {
        let after = parse_key(&self.path, "stream position", after)?;
        let deadline = Instant::now() + block;
        loop {
            // Read the version first, so a commit landing in between is seen.
            let version = self.data_version()?;
            let entries = self.read(|tx| {
                tx.prepare_cached(
                    "SELECT seq, id, type, ts, ts_ms, payload, written_ms FROM stream
                     WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )?
                .query_map(params![after, clamp(count)], |row| {
                    Ok(Row::from_row(row)?.raw)
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })?;
            if !entries.is_empty() {
                return Ok(entries);
            }
            // Polls only read, and only look again once another connection
            // committed something.
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Vec::new());
                }
                thread::sleep(left.min(POLL_STEP));
                if self.data_version()? != version {
                    break;
                }
            }
        }
    }

    fn count_dead(&mut self, filter: &DeadFilter) -> Result<u64> {
        self.dead_pass(filter, false)
    }

    fn purge_dead(&mut self, filter: &DeadFilter) -> Result<u64> {
        self.dead_pass(filter, true)
    }

    fn requeue_dead(&mut self, letters: &[(String, Delivery)], due_ms: i64) -> Result<()> {
        let letters = letters
            .iter()
            .map(|(key, delivery)| Ok((parse_key(&self.path, "dead letter", key)?, delivery)))
            .collect::<Result<Vec<_>>>()?;
        if letters.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            // Only a letter still there goes back: one erased (or purged, or
            // replayed by another) since it was read stays gone. A letter's
            // deliveries are side by side.
            let mut taken = None;
            for (seq, delivery) in letters {
                if taken.is_none_or(|(last, _)| last != seq) {
                    let removed = tx
                        .prepare_cached("DELETE FROM dead WHERE seq = ?1")?
                        .execute([seq])?;
                    taken = Some((seq, removed > 0));
                }
                if taken.is_some_and(|(_, there)| there) {
                    upsert_retry(tx, delivery, due_ms)?;
                }
            }
            Ok(())
        })
    }

    fn stats(&mut self) -> Result<Stats> {
        self.read(|tx| {
            let now = now_ms();
            let (length, lag, _) = retries::stream_counts(tx)?;
            let end = |order: &str| {
                tx.query_row(
                    &format!(
                        "SELECT seq, id, type, ts, ts_ms, payload, written_ms FROM stream
                         ORDER BY seq {order} LIMIT 1"
                    ),
                    [],
                    |row| Ok(entry::identity(&Row::from_row(row)?.raw)),
                )
                .optional()
            };
            let oldest = end("ASC")?;
            let newest = end("DESC")?;
            // Consumers that hold entries are listed even if they never
            // touched the consumers table (rows claimed by other means).
            let consumers = tx
                .prepare(
                    "WITH held AS (
                         SELECT consumer AS name, count(*) AS pending FROM stream
                         WHERE state < 2 AND state = 1 AND consumer IS NOT NULL
                         GROUP BY consumer)
                     SELECT c.name, coalesce(h.pending, 0), c.seen_ms
                     FROM consumers c LEFT JOIN held h ON h.name = c.name
                     UNION ALL
                     SELECT h.name, h.pending, NULL FROM held h
                     WHERE h.name NOT IN (SELECT name FROM consumers)
                     ORDER BY 1",
                )?
                .query_map([], |row| {
                    let seen: Option<i64> = row.get(2)?;
                    Ok(ConsumerStats {
                        name: row.get(0)?,
                        pending: row.get::<_, i64>(1)? as u64,
                        idle_ms: seen.map_or(0, |seen| now.saturating_sub(seen).max(0) as u64),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let (retries, next_retry_ms) = retries::summary(tx, &[])?;
            let dead = retries::dead_counts(tx)?;
            let tallies = retries::tallies(tx)?;
            Ok(Stats {
                length,
                oldest,
                newest,
                lag,
                consumers,
                retries,
                next_retry_ms,
                dead,
                tallies,
            })
        })
    }

    fn attempts(&mut self, event_id: &str) -> Result<Vec<AttemptRecord>> {
        self.read(|tx| lifecycle::attempts_of(tx, event_id))
    }

    fn event(&mut self, event_id: &str, hint: Option<&str>) -> Result<Option<Event>> {
        self.read(|tx| lifecycle::find_event(tx, event_id, hint))
    }

    fn retry_due(&mut self, token: &str) -> Result<Option<i64>> {
        self.read(|tx| lifecycle::due_of(tx, token))
    }

    fn forget(
        &mut self,
        person: &super::forget::Person,
        dry_run: bool,
    ) -> Result<super::forget::Erased> {
        self.forget_person(person, dry_run)
    }

    fn trim(&mut self, before_ms: i64) -> Result<u64> {
        let mut removed = 0;
        loop {
            // By write time, as Redis trims by entry id, and never past the
            // first entry not yet settled. A row without a write time
            // (inserted by other means) is removed with the old history.
            let n = self.write(|tx| {
                tx.prepare_cached(
                    "DELETE FROM stream WHERE seq IN (
                         SELECT seq FROM stream
                         WHERE state = 2 AND (written_ms < ?1 OR written_ms IS NULL)
                           AND seq < coalesce(
                               (SELECT min(seq) FROM stream WHERE state < 2), 9223372036854775807)
                         LIMIT ?2)",
                )?
                .execute(params![before_ms, TRIM_CHUNK])
            })?;
            removed += n as u64;
            if (n as i64) < TRIM_CHUNK {
                break;
            }
        }
        // Attempt records go with the history they are about.
        let now = now_ms();
        while self.write(|tx| lifecycle::trim(tx, before_ms, now, TRIM_CHUNK))? as i64 == TRIM_CHUNK
        {
        }
        // Housekeeping nobody else does: expired idempotency keys, and
        // workers gone since before the window that hold nothing.
        self.write(|tx| {
            tx.execute("DELETE FROM idem WHERE expires_ms <= ?1", [now_ms()])?;
            tx.execute(
                "DELETE FROM consumers WHERE seen_ms < ?1 AND name NOT IN (
                     SELECT consumer FROM stream
                     WHERE state < 2 AND state = 1 AND consumer IS NOT NULL)",
                [before_ms],
            )?;
            Ok(())
        })?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::StreamEntry;

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
        let retries = plan("SELECT token FROM retry WHERE due_ms <= 5 ORDER BY due_ms LIMIT 10");
        assert!(retries.contains("retry_due"), "{retries}");
        assert!(!retries.contains("TEMP B-TREE"), "{retries}");
        // With --only: one range of the (dest, due_ms) index per destination,
        // never a walk over the deliveries parked for the others.
        let only = plan(
            "SELECT due_ms, token, dest, delivery FROM retry
             WHERE dest = 'slack' AND due_ms <= 5 ORDER BY due_ms LIMIT 10",
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
        // The lease is zero: another consumer takes them over (state stays 1).
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
