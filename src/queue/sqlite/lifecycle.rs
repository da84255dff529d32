//! Where the SQLite backend keeps what `inspect` reads: the `attempts`
//! table of migration 7, one row per delivery attempt, written in the
//! settle's own transaction, looked up by the `event_id` index and trimmed
//! from the oldest row with the history. Events `forget` erased are listed in
//! `forgotten` for a day, so a settle of a delivery that was in flight
//! while they were erased writes nothing back about them.

use rusqlite::{OptionalExtension, Transaction, params};

use super::{Row, SqliteQueue, TRIM_CHUNK};
use crate::event::Event;
use crate::event::now_ms;
use crate::queue::forget::{Erased, Person};
use crate::queue::{AttemptRecord, Lifecycle, Outcome, Result, entry};

/// Whether any event was erased recently enough for a settle to mind.
pub(super) fn any_forgotten(tx: &Transaction) -> rusqlite::Result<bool> {
    tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM forgotten)")?
        .query_row([], |row| row.get(0))
}

/// Whether `event_id` was erased by `forget`.
pub(super) fn is_forgotten(tx: &Transaction, event_id: &str) -> rusqlite::Result<bool> {
    tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM forgotten WHERE event_id = ?1)")?
        .query_row([event_id], |row| row.get(0))
}

pub(super) fn insert_attempt(tx: &Transaction, record: &AttemptRecord) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO attempts (event_id, dest, at_ms, outcome, status, error, duration_ms, entry)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        record.event_id,
        record.dest,
        record.at_ms,
        record.outcome.as_str(),
        record.status,
        record.error,
        record.duration_ms as i64,
        record.entry
    ])?;
    Ok(())
}

/// The attempt records of `event_id`, oldest first.
pub(super) fn attempts_of(
    tx: &Transaction,
    event_id: &str,
) -> rusqlite::Result<Vec<AttemptRecord>> {
    let rows = tx
        .prepare_cached(
            "SELECT event_id, dest, at_ms, outcome, status, error, duration_ms, entry
             FROM attempts WHERE event_id = ?1 ORDER BY at_ms, rowid",
        )?
        .query_map([event_id], |row| {
            let outcome: String = row.get(3)?;
            Ok(Outcome::parse(&outcome).map(|outcome| AttemptRecord {
                event_id: row.get(0).unwrap_or_default(),
                dest: row.get(1).unwrap_or_default(),
                at_ms: row.get(2).unwrap_or_default(),
                outcome,
                status: row.get(4).unwrap_or_default(),
                error: row.get(5).unwrap_or_default(),
                duration_ms: row.get::<_, i64>(6).unwrap_or_default().max(0) as u64,
                entry: row.get(7).unwrap_or_default(),
            }))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows.into_iter().flatten().collect())
}

/// The event `event_id` in the history: at the row `hint` when that holds
/// it, else by looking through the whole stream.
pub(super) fn find_event(
    tx: &Transaction,
    event_id: &str,
    hint: Option<&str>,
) -> rusqlite::Result<Option<Event>> {
    const COLUMNS: &str = "SELECT seq, id, type, ts, ts_ms, payload, written_ms FROM stream";
    let decoded = |row: Option<Row>| {
        row.and_then(|row| entry::decode(&row.raw).ok())
            .filter(|event| event.id == event_id)
    };
    if let Some(seq) = hint.and_then(|key| key.parse::<i64>().ok()) {
        let row = tx
            .prepare_cached(&format!("{COLUMNS} WHERE seq = ?1"))?
            .query_row([seq], Row::from_row)
            .optional()?;
        if let Some(event) = decoded(row) {
            return Ok(Some(event));
        }
    }
    let row = tx
        .prepare_cached(&format!("{COLUMNS} WHERE id = ?1 LIMIT 1"))?
        .query_row([event_id], Row::from_row)
        .optional()?;
    Ok(decoded(row))
}

/// When the delivery `token` is due in the retry set, if it is there.
pub(super) fn due_of(tx: &Transaction, token: &str) -> rusqlite::Result<Option<i64>> {
    tx.prepare_cached("SELECT due_ms FROM retry WHERE token = ?1")?
        .query_row([token], |row| row.get(0))
        .optional()
}

/// Removes up to `chunk` attempt records settled before `before_ms`, and
/// the marks of events erased more than a day ago; returns how many
/// records went. Records are written in time order, so the old ones are the
/// first rows: the oldest `chunk` are read by rowid, and those up to the
/// first newer one removed, without an index on the time.
pub(super) fn trim(
    tx: &Transaction,
    before_ms: i64,
    now_ms: i64,
    chunk: i64,
) -> rusqlite::Result<usize> {
    tx.prepare_cached("DELETE FROM forgotten WHERE at_ms < ?1")?
        .execute([now_ms - FORGOTTEN_FOR_MS])?;
    let last_old: Option<i64> = tx
        .prepare_cached(
            "SELECT max(rowid) FROM (SELECT rowid, at_ms FROM attempts ORDER BY rowid LIMIT ?2)
             WHERE rowid < coalesce((SELECT min(rowid) FROM
                 (SELECT rowid, at_ms FROM attempts ORDER BY rowid LIMIT ?2)
                 WHERE at_ms >= ?1), 9223372036854775807)",
        )?
        .query_row(params![before_ms, chunk], |row| row.get(0))?;
    match last_old {
        Some(last) => tx
            .prepare_cached("DELETE FROM attempts WHERE rowid <= ?1")?
            .execute([last]),
        None => Ok(0),
    }
}

/// How long an erased event's id is remembered: far longer than any
/// delivery can stay in flight.
pub(super) const FORGOTTEN_FOR_MS: i64 = 24 * 3600 * 1000;

impl Lifecycle for SqliteQueue {
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
        while self.write(|tx| trim(tx, before_ms, now, TRIM_CHUNK))? as i64 == TRIM_CHUNK {}
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

    fn attempts(&mut self, event_id: &str) -> Result<Vec<AttemptRecord>> {
        self.read(|tx| attempts_of(tx, event_id))
    }

    fn forget(&mut self, person: &Person, dry_run: bool) -> Result<Erased> {
        self.forget_person(person, dry_run)
    }
}
