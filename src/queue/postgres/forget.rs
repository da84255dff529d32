//! `forget` on Postgres. It reads what is the person's a page at a time
//! (so emits are never kept waiting on a long scan), then erases it in one
//! transaction, which also takes any dead letter of those events written
//! since the reading and marks them in `forgotten`, so a settle of a
//! delivery in flight writes nothing back. The rows are deleted; Postgres
//! reclaims their space at its next vacuum of the tables.

use std::collections::BTreeSet;

use postgres::Transaction;

use super::dead::DEAD_COLUMNS;
use super::{
    DEAD_PAGE, HISTORY_BATCH, PostgresQueue, Row, STREAM_COLUMNS, from_json, lifecycle,
    stored_letter,
};
use crate::event::now_ms;
use crate::queue::forget::{Erased, Person, stopped};
use crate::queue::{Delivery, Result, entry};

type PgResult<T> = std::result::Result<T, postgres::Error>;

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

impl PostgresQueue {
    pub(super) fn forget_person(&mut self, person: &Person, dry_run: bool) -> Result<Erased> {
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
                let ids: Vec<&String> = g.ids.iter().collect();
                erased.attempts = count(tx, "attempts", &ids)?;
                erased.idempotency_keys = count(tx, "idem", &ids)?;
                Ok(erased)
            });
        }
        self.write(|tx| erase(tx, &g, person))
            .map_err(|e| stopped(e, false))
    }

    fn gather(&mut self, person: &Person) -> Result<Gathered> {
        let mut g = Gathered::default();
        let mut after = i64::MIN;
        loop {
            let rows = self.read(|tx| {
                tx.query(
                    &format!(
                        "SELECT {STREAM_COLUMNS} FROM stream WHERE seq > $1 ORDER BY seq LIMIT $2"
                    ),
                    &[&after, &HISTORY_BATCH],
                )?
                .iter()
                .map(Row::from_row)
                .collect::<PgResult<Vec<_>>>()
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
            Ok(tx
                .query("SELECT delivery FROM retry", &[])?
                .iter()
                .map(|row| row.get(0))
                .collect())
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
                Ok(tx
                    .query(
                        &format!(
                            "SELECT {DEAD_COLUMNS} FROM dead WHERE seq > $1 ORDER BY seq LIMIT $2"
                        ),
                        &[&after, &DEAD_PAGE],
                    )?
                    .iter()
                    .map(stored_letter)
                    .collect::<Vec<_>>())
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
fn erase(tx: &mut Transaction, g: &Gathered, person: &Person) -> PgResult<Erased> {
    let mut erased = Erased {
        history: tx.execute("DELETE FROM stream WHERE seq = ANY($1)", &[&g.stream])?,
        ..Erased::default()
    };
    let mut dead = g.dead.clone();
    // Letters written since the reading, of these events or mentioning the value.
    let late = tx.query(
        &format!("SELECT {DEAD_COLUMNS} FROM dead WHERE seq > $1"),
        &[&g.dead_read_to],
    )?;
    for stored in late.iter().map(stored_letter) {
        let theirs = match &stored.letter.event {
            Ok(event) => g.ids.contains(&event.id) || person.owns(event),
            Err(raw) => person.mentioned_in(raw),
        };
        if theirs {
            dead.push(stored.key.parse().unwrap_or(0));
        }
    }
    erased.dead_letters = tx.execute("DELETE FROM dead WHERE seq = ANY($1)", &[&dead])?;
    let now = now_ms();
    for id in &g.ids {
        let prefix = format!("{id}|");
        erased.retries += tx.execute(
            "DELETE FROM retry WHERE left(token, length($1)) = $1",
            &[&prefix],
        )?;
        erased.attempts += tx.execute("DELETE FROM attempts WHERE event_id = $1", &[id])?;
        erased.idempotency_keys += tx.execute("DELETE FROM idem WHERE event_id = $1", &[id])?;
        tx.execute(
            "INSERT INTO forgotten (event_id, at_ms) VALUES ($1, $2)
             ON CONFLICT (event_id) DO UPDATE SET at_ms = excluded.at_ms",
            &[id, &now],
        )?;
    }
    tx.execute(
        "DELETE FROM forgotten WHERE at_ms < $1",
        &[&(now - lifecycle::FORGOTTEN_FOR_MS)],
    )?;
    Ok(erased)
}

/// Rows of `table` (`attempts` or `idem`) about the events `ids`.
fn count(tx: &mut Transaction, table: &str, ids: &[&String]) -> PgResult<u64> {
    let n: i64 = tx
        .query_one(
            &format!("SELECT count(*) FROM {table} WHERE event_id = ANY($1)"),
            &[&ids],
        )?
        .get(0);
    Ok(n.max(0) as u64)
}
