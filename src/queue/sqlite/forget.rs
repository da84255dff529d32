//! `forget` on SQLite. It reads what is the person's a page at a time (so
//! emits are never kept waiting on a long scan), then erases it in one
//! transaction, which also takes any retry or dead letter of those events
//! written since the reading and marks them in `forgotten`, so a settle of a
//! delivery in flight writes nothing back. Deleted content is overwritten
//! (`secure_delete`, on for every connection), the pages a version that
//! did not zero them left free are overwritten in the same transaction,
//! and the write-ahead log is emptied afterwards (`wal_checkpoint(TRUNCATE)`),
//! so nothing of the value stays in the files.

use std::collections::BTreeSet;

use rusqlite::{Transaction, params};

use super::{DEAD_PAGE, HISTORY_BATCH, Row, SqliteQueue, from_json, lifecycle, stored_letter};
use crate::event::now_ms;
use crate::queue::forget::{Erased, Person, stopped};
use crate::queue::{Delivery, QueueError, Result, entry};

/// What reading found: the person's events, the rows to remove by
/// position, and how far the dead letters were read.
#[derive(Default)]
struct Gathered {
    ids: BTreeSet<String>,
    /// Stream rows: the person's events and poison mentioning the value.
    stream: Vec<i64>,
    retries: u64,
    dead: Vec<i64>,
    dead_read_to: i64,
}

impl SqliteQueue {
    pub(super) fn forget_person(&mut self, person: &Person, dry_run: bool) -> Result<Erased> {
        // One transaction: until the checkpoint, a failure erased nothing.
        let g = self
            .gather(person)
            .map_err(|e| if dry_run { e } else { stopped(e, false) })?;
        if dry_run {
            return self.read(|tx| {
                let mut erased = Erased {
                    history: g.stream.len() as u64,
                    retries: g.retries,
                    dead_letters: g.dead.len() as u64,
                    ..Erased::default()
                };
                for id in &g.ids {
                    erased.attempts += count(tx, "attempts", id)?;
                    erased.idempotency_keys += count(tx, "idem", id)?;
                }
                Ok(erased)
            });
        }
        let erased = self
            .write(|tx| {
                let erased = erase(tx, &g, person)?;
                scrub_free_pages(tx)?;
                Ok(erased)
            })
            .map_err(|e| stopped(e, false))?;
        self.checkpoint()?;
        Ok(erased)
    }

    /// Empties the write-ahead log into the database and truncates it: the
    /// old copies of erased rows it holds go with it.
    fn checkpoint(&mut self) -> Result<()> {
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
            .map_err(|e| super::classify(&self.path, e))?;
        if busy != 0 {
            return Err(QueueError::Backend(format!(
                "the events were erased from {}, but its write-ahead log could not be \
                 emptied while another process reads the file: stop the workers and \
                 run forget again to leave nothing of them in {}-wal",
                self.path.display(),
                self.path.display()
            )));
        }
        Ok(())
    }

    fn gather(&mut self, person: &Person) -> Result<Gathered> {
        let mut g = Gathered::default();
        let mut after = i64::MIN;
        loop {
            let rows = self.read(|tx| {
                tx.prepare_cached(
                    "SELECT seq, id, type, ts, ts_ms, payload, written_ms FROM stream
                     WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )?
                .query_map(params![after, HISTORY_BATCH], Row::from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
            })?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            for row in rows {
                match entry::decode(&row.raw) {
                    Ok(event) if person.owns(&event) => {
                        g.ids.insert(event.id);
                        g.stream.push(row.seq);
                    }
                    Err(poison) if person.mentioned_in(&poison.raw) => g.stream.push(row.seq),
                    _ => {}
                }
            }
        }
        let bodies: Vec<String> = self.read(|tx| {
            tx.prepare("SELECT delivery FROM retry")?
                .query_map([], |row| row.get(0))?
                .collect()
        })?;
        for body in bodies {
            if let Ok(delivery) = from_json::<Delivery>(&body)
                && person.owns(&delivery.event)
            {
                g.ids.insert(delivery.event.id);
                g.retries += 1;
            }
        }
        self.gather_dead(person, &mut g)?;
        Ok(g)
    }

    fn gather_dead(&mut self, person: &Person, g: &mut Gathered) -> Result<()> {
        let mut after = i64::MIN;
        loop {
            let letters = self.read(|tx| {
                tx.prepare_cached(
                    "SELECT seq, letter, dest, error, at_ms FROM dead WHERE seq > ?1
                     ORDER BY seq LIMIT ?2",
                )?
                .query_map(params![after, DEAD_PAGE], stored_letter)?
                .collect::<rusqlite::Result<Vec<_>>>()
            })?;
            let Some(last) = letters.last() else {
                g.dead_read_to = after;
                return Ok(());
            };
            after = last.key.parse().unwrap_or(i64::MAX);
            for stored in letters {
                let seq = stored.key.parse().unwrap_or(0);
                match &stored.letter.event {
                    Ok(event) if person.owns(event) => {
                        g.ids.insert(event.id.clone());
                        g.dead.push(seq);
                    }
                    Err(raw) if person.mentioned_in(raw) => g.dead.push(seq),
                    _ => {}
                }
            }
        }
    }
}

/// Removes what `g` found, and what of its events was written since.
fn erase(tx: &Transaction, g: &Gathered, person: &Person) -> rusqlite::Result<Erased> {
    let mut erased = Erased::default();
    for seq in &g.stream {
        erased.history += tx
            .prepare_cached("DELETE FROM stream WHERE seq = ?1")?
            .execute([seq])? as u64;
    }
    let mut dead = g.dead.clone();
    // Letters written since the reading, of these events or mentioning the value.
    let late = tx
        .prepare("SELECT seq, letter, dest, error, at_ms FROM dead WHERE seq > ?1")?
        .query_map([g.dead_read_to], stored_letter)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for stored in late {
        let theirs = match &stored.letter.event {
            Ok(event) => g.ids.contains(&event.id) || person.owns(event),
            Err(raw) => person.mentioned_in(raw),
        };
        if theirs {
            dead.push(stored.key.parse().unwrap_or(0));
        }
    }
    for seq in dead {
        erased.dead_letters += tx
            .prepare_cached("DELETE FROM dead WHERE seq = ?1")?
            .execute([seq])? as u64;
    }
    let now = now_ms();
    for id in &g.ids {
        // Tokens are `<id>|<dest>`: the range of those starting `<id>|`
        // (`}` follows `|`).
        erased.retries += tx
            .prepare_cached("DELETE FROM retry WHERE token >= ?1 || '|' AND token < ?1 || '}'")?
            .execute([id])? as u64;
        erased.attempts += tx
            .prepare_cached("DELETE FROM attempts WHERE event_id = ?1")?
            .execute([id])? as u64;
        erased.idempotency_keys += tx
            .prepare_cached("DELETE FROM idem WHERE event_id = ?1")?
            .execute([id])? as u64;
        tx.prepare_cached(
            "INSERT INTO forgotten (event_id, at_ms) VALUES (?1, ?2)
             ON CONFLICT (event_id) DO UPDATE SET at_ms = excluded.at_ms",
        )?
        .execute(params![id, now])?;
    }
    tx.execute(
        "DELETE FROM forgotten WHERE at_ms < ?1",
        [now - lifecycle::FORGOTTEN_FOR_MS],
    )?;
    Ok(erased)
}

/// Bytes of zeros written per row while free pages are overwritten.
const SCRUB_ROW: i64 = 4 << 20;

/// Overwrites every free page of the file with zeros. Pages are zeroed as
/// they are freed (`secure_delete`), but a file written by an earlier
/// version, which zeroed only what cost no extra write, may keep a deleted
/// row's overflow pages as they were. Filling the free pages with zeros
/// and freeing them again costs one write of each, and nothing when there
/// are none.
fn scrub_free_pages(tx: &Transaction) -> rusqlite::Result<()> {
    let free: i64 = tx.query_row("PRAGMA freelist_count", [], |row| row.get(0))?;
    if free == 0 {
        return Ok(());
    }
    let page: i64 = tx.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    tx.execute_batch("CREATE TABLE forget_scrub (zeros BLOB NOT NULL)")?;
    let mut left = free * page;
    while left > 0 {
        let n = left.min(SCRUB_ROW);
        tx.execute(
            "INSERT INTO forget_scrub (zeros) VALUES (zeroblob(?1))",
            [n],
        )?;
        left -= n;
    }
    tx.execute_batch("DROP TABLE forget_scrub")
}

/// Rows of `table` (`attempts` or `idem`) about the event `id`.
fn count(tx: &Transaction, table: &str, id: &str) -> rusqlite::Result<u64> {
    tx.prepare_cached(&format!("SELECT count(*) FROM {table} WHERE event_id = ?1"))?
        .query_row([id], |row| row.get::<_, i64>(0))
        .map(|n| n.max(0) as u64)
}
