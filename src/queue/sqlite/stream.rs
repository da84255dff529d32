//! The stream and its claims: appending events, claiming them, settling
//! what the worker did, and reading the history.

use std::thread;
use std::time::{Duration, Instant};

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Transaction, params};

use super::{
    HISTORY_BATCH, POLL_STEP, Row, SqliteQueue, clamp, duration_ms, insert_dead, lifecycle,
    parse_key, retries, to_json, upsert_retry,
};
use crate::event::{Event, now_ms};
use crate::queue::entry::{self, RawEntry};
use crate::queue::{Backlog, Claims, History, Producer, Result, RetryClaim, Settle, Settlement};

impl SqliteQueue {
    /// Whether `claim` would find anything now.
    pub(super) fn claimable(&mut self) -> Result<bool> {
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
    pub(super) fn take(
        &mut self,
        consumer: &str,
        count: usize,
        recovering: bool,
    ) -> Result<Vec<RawEntry>> {
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

/// Records that `consumer` was active, for the idle time in `stats`.
pub(super) fn touch(tx: &Transaction, consumer: &str, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO consumers (name, seen_ms) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET seen_ms = excluded.seen_ms",
    )?
    .execute(params![consumer, now])?;
    Ok(())
}

pub(super) fn insert_event(tx: &Transaction, event: &Event) -> rusqlite::Result<()> {
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

impl Claims for SqliteQueue {
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

impl Settle for SqliteQueue {
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
}

impl History for SqliteQueue {
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

    fn event(&mut self, event_id: &str, hint: Option<&str>) -> Result<Option<Event>> {
        self.read(|tx| lifecycle::find_event(tx, event_id, hint))
    }
}
