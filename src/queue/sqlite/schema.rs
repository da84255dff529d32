//! The file's schema and its migrations, applied in order when a queue
//! opens the file.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::classify;

use crate::queue::{QueueError, Result};

/// Schema migrations, applied in order; `PRAGMA user_version` is how many ran.
/// Append only: a released migration is never edited.
pub(super) const MIGRATIONS: &[&str] = &[
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
    // 10: destinations held (`events pause`), one row per hold; and due
    // retries read in (due, token) order from the indexes alone, so the
    // deliveries a hold parked together are released in event order.
    "CREATE TABLE holds (
        dest TEXT NOT NULL,
        kind TEXT NOT NULL,
        hold TEXT NOT NULL,
        PRIMARY KEY (dest, kind)
    ) WITHOUT ROWID;
    DROP INDEX retry_due;
    CREATE INDEX retry_due ON retry (due_ms, token);
    DROP INDEX retry_dest_due;
    CREATE INDEX retry_dest_due ON retry (dest, due_ms, token);",
];

/// Brings the schema up to date. When it already is, this is a single read of
/// the file header.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
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
