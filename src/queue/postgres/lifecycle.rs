//! What `inspect` reads and what is kept for how long: the `attempts`
//! table, one row per delivery attempt written in the settle's own
//! transaction and trimmed with the history; and the events `forget` erased
//! lately (`forgotten`, kept a day), which a settle of a delivery in flight
//! meanwhile must not write back.

use postgres::Transaction;

use super::{PostgresQueue, Row, STREAM_COLUMNS, TRIM_CHUNK};
use crate::event::{Event, now_ms};
use crate::queue::forget::{Erased, Person};
use crate::queue::{AttemptRecord, Lifecycle, Outcome, Result, entry};

type PgResult<T> = std::result::Result<T, postgres::Error>;

/// How long an erased event's id is remembered: far longer than any
/// delivery can stay in flight.
pub(super) const FORGOTTEN_FOR_MS: i64 = 24 * 3600 * 1000;

/// The attempt records of `event_id`, oldest first.
fn attempts_of(tx: &mut Transaction, event_id: &str) -> PgResult<Vec<AttemptRecord>> {
    let rows = tx.query(
        "SELECT event_id, dest, at_ms, outcome, status, error, duration_ms, entry
         FROM attempts WHERE event_id = $1 ORDER BY at_ms, seq",
        &[&event_id],
    )?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let outcome: String = row.get(3);
            Outcome::parse(&outcome).map(|outcome| AttemptRecord {
                event_id: row.get(0),
                dest: row.get(1),
                at_ms: row.get(2),
                outcome,
                status: row
                    .get::<_, Option<i32>>(4)
                    .and_then(|s| u16::try_from(s).ok()),
                error: row.get(5),
                duration_ms: row.get::<_, i64>(6).max(0) as u64,
                entry: row.get(7),
            })
        })
        .collect())
}

/// The event `event_id` in the history: at the row `hint` when that holds
/// it, else by looking it up by id.
pub(super) fn find_event(
    tx: &mut Transaction,
    event_id: &str,
    hint: Option<&str>,
) -> PgResult<Option<Event>> {
    let decoded = |row: Option<Row>| {
        row.and_then(|row| entry::decode(&row.raw).ok())
            .filter(|event| event.id == event_id)
    };
    if let Some(seq) = hint.and_then(|key| key.parse::<i64>().ok()) {
        let row = tx.query_opt(
            &format!("SELECT {STREAM_COLUMNS} FROM stream WHERE seq = $1"),
            &[&seq],
        )?;
        if let Some(event) = decoded(row.as_ref().map(Row::from_row).transpose()?) {
            return Ok(Some(event));
        }
    }
    let row = tx.query_opt(
        &format!("SELECT {STREAM_COLUMNS} FROM stream WHERE id = $1 ORDER BY seq LIMIT 1"),
        &[&event_id],
    )?;
    Ok(decoded(row.as_ref().map(Row::from_row).transpose()?))
}

/// When the delivery `token` is due in the retry set, if it is there.
pub(super) fn due_of(tx: &mut Transaction, token: &str) -> PgResult<Option<i64>> {
    Ok(tx
        .query_opt("SELECT due_ms FROM retry WHERE token = $1", &[&token])?
        .map(|row| row.get(0)))
}

impl Lifecycle for PostgresQueue {
    fn trim(&mut self, before_ms: i64) -> Result<u64> {
        let mut removed = 0;
        loop {
            // By write time, and never past the first entry not yet settled.
            let n = self.write(|tx| {
                tx.execute(
                    "DELETE FROM stream WHERE seq IN (
                         SELECT seq FROM stream
                         WHERE state = 2 AND (written_ms < $1 OR written_ms IS NULL)
                           AND seq < coalesce(
                               (SELECT min(seq) FROM stream WHERE state < 2), 9223372036854775807)
                         LIMIT $2)",
                    &[&before_ms, &TRIM_CHUNK],
                )
            })?;
            removed += n;
            if (n as i64) < TRIM_CHUNK {
                break;
            }
        }
        let now = now_ms();
        // Attempt records go with the history they are about; then the
        // housekeeping nobody else does.
        self.write(|tx| {
            tx.execute("DELETE FROM attempts WHERE at_ms < $1", &[&before_ms])?;
            tx.execute(
                "DELETE FROM forgotten WHERE at_ms < $1",
                &[&(now - FORGOTTEN_FOR_MS)],
            )?;
            tx.execute("DELETE FROM idem WHERE expires_ms <= $1", &[&now])?;
            tx.execute(
                "DELETE FROM consumers WHERE seen_ms < $1 AND name NOT IN (
                     SELECT consumer FROM stream
                     WHERE state < 2 AND state = 1 AND consumer IS NOT NULL)",
                &[&before_ms],
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
