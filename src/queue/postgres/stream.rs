//! The stream and its claims: appending events, claiming them with
//! `FOR UPDATE SKIP LOCKED` (workers never wait on each other's rows),
//! settling what the worker did, and reading the history.

use std::time::{Duration, Instant};

use postgres::Transaction;

use super::outbox::{self, EventRow};
use super::{
    HISTORY_BATCH, PostgresQueue, Row, STREAM_COLUMNS, clamp, insert_dead, lifecycle, parse_key,
    retries, upsert_retry,
};
use crate::event::{Event, now_ms};
use crate::queue::entry::{self, RawEntry};
use crate::queue::{Backlog, Claims, History, Producer, Result, RetryClaim, Settle, Settlement};

type PgResult<T> = std::result::Result<T, postgres::Error>;

impl PostgresQueue {
    /// Whether `claim` would find anything now.
    fn claimable(&mut self) -> Result<bool> {
        let now = now_ms();
        self.read(|tx| {
            tx.query_one(
                "SELECT EXISTS (SELECT 1 FROM stream
                 WHERE state < 2 AND (state = 0 OR lease_until < $1))",
                &[&now],
            )
            .map(|row| row.get(0))
        })
    }

    /// Claims up to `count` claimable entries for `consumer`, or with
    /// `recovering` re-leases every entry it already holds; oldest first.
    fn take(&mut self, consumer: &str, count: usize, recovering: bool) -> Result<Vec<RawEntry>> {
        let lease_ms = self.lease_ms;
        self.write(|tx| {
            let now = now_ms();
            let until = now.saturating_add(lease_ms);
            let rows = if recovering {
                tx.query(
                    &format!(
                        "UPDATE stream SET lease_until = $2
                         WHERE state < 2 AND state = 1 AND consumer = $1
                         RETURNING {STREAM_COLUMNS}"
                    ),
                    &[&consumer, &until],
                )?
            } else {
                tx.query(
                    &format!(
                        "UPDATE stream SET state = 1, consumer = $1, lease_until = $2
                         WHERE seq IN (
                             SELECT seq FROM stream
                             WHERE state < 2 AND (state = 0 OR lease_until < $3)
                             ORDER BY seq LIMIT $4
                             FOR UPDATE SKIP LOCKED)
                         RETURNING {STREAM_COLUMNS}"
                    ),
                    &[&consumer, &until, &now, &clamp(count)],
                )?
            };
            let mut taken = rows
                .iter()
                .map(Row::from_row)
                .collect::<PgResult<Vec<_>>>()?;
            touch(tx, consumer, now)?;
            taken.sort_by_key(|row| row.seq);
            Ok(taken.into_iter().map(|row| row.raw).collect())
        })
    }
}

/// Records that `consumer` was active, for the idle time in `stats`.
pub(super) fn touch(tx: &mut Transaction, consumer: &str, now: i64) -> PgResult<()> {
    tx.execute(
        "INSERT INTO consumers (name, seen_ms) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET seen_ms = excluded.seen_ms",
        &[&consumer, &now],
    )?;
    Ok(())
}

impl Producer for PostgresQueue {
    fn append(&mut self, events: &[Event]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let schema = self.schema.clone();
        self.write(|tx| {
            events.iter().try_for_each(|event| {
                let row = EventRow::new(event, None, Duration::ZERO, now_ms());
                outbox::write(tx, &schema, &row).map(drop)
            })
        })
    }

    fn append_idempotent(
        &mut self,
        key: &str,
        event: &Event,
        ttl: Duration,
    ) -> Result<Option<String>> {
        let schema = self.schema.clone();
        self.write(|tx| outbox::write(tx, &schema, &EventRow::new(event, Some(key), ttl, now_ms())))
    }
}

impl Claims for PostgresQueue {
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
            let entries = self.take(consumer, count, false)?;
            if !entries.is_empty() {
                return Ok(entries);
            }
            // Polls only read: an idle worker writes nothing.
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Vec::new());
                }
                PostgresQueue::pause(left);
                if self.claimable()? {
                    break;
                }
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
                        tx.execute(
                            "UPDATE retry SET due_ms = $2 WHERE token = $1",
                            &[&token, &now_ms.saturating_add(lease_ms)],
                        )?;
                        claims.push(RetryClaim { token, delivery });
                    }
                    Err(why) => {
                        let letter = entry::broken_retry_letter(&token, Some(&json), &why, now_ms);
                        insert_dead(tx, &letter)?;
                        tx.execute("DELETE FROM retry WHERE token = $1", &[&token])?;
                    }
                }
            }
            Ok(claims)
        })
    }

    fn renew(&mut self, consumer: &str, entries: &[String], retries: &[String]) -> Result<()> {
        let seqs = entries
            .iter()
            .map(|key| parse_key(&self.shown, "stream entry", key))
            .collect::<Result<Vec<_>>>()?;
        let lease_until = now_ms() + self.lease_ms;
        self.write(|tx| {
            tx.execute(
                "UPDATE stream SET lease_until = $1
                 WHERE seq = ANY($2) AND state = 1 AND consumer = $3",
                &[&lease_until, &seqs, &consumer],
            )?;
            tx.execute(
                "UPDATE retry SET due_ms = $1 WHERE token = ANY($2)",
                &[&lease_until, &retries],
            )?;
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

impl Settle for PostgresQueue {
    fn settle(&mut self, consumer: &str, settlement: &Settlement) -> Result<()> {
        let acks = settlement
            .acks
            .iter()
            .map(|key| parse_key(&self.shown, "stream entry", key))
            .collect::<Result<Vec<_>>>()?;
        self.write(|tx| {
            tx.execute(
                "UPDATE stream SET state = 2, lease_until = NULL WHERE seq = ANY($1)",
                &[&acks],
            )?;
            // Removed before the new retries go in: a rescheduled retry has
            // the same token as the claim it replaces.
            tx.execute(
                "DELETE FROM retry WHERE token = ANY($1)",
                &[&settlement.done_retries],
            )?;
            // An event erased while it was being delivered stays erased.
            let guard = lifecycle::any_forgotten(tx)?;
            let gone = |tx: &mut Transaction, id: &str| -> PgResult<bool> {
                Ok(guard && lifecycle::is_forgotten(tx, id)?)
            };
            for (delivery, due_ms) in &settlement.retries {
                if !gone(tx, &delivery.event.id)? {
                    upsert_retry(tx, delivery, *due_ms)?;
                }
            }
            for letter in &settlement.dead {
                let erased = match &letter.event {
                    Ok(event) => gone(tx, &event.id)?,
                    Err(_) => false,
                };
                if !erased {
                    insert_dead(tx, letter)?;
                }
            }
            for record in &settlement.attempts {
                if !gone(tx, &record.event_id)? {
                    lifecycle::insert_attempt(tx, record)?;
                }
            }
            retries::add_tallies(tx, &settlement.tallies)?;
            touch(tx, consumer, now_ms())
        })
    }
}

impl History for PostgresQueue {
    fn history(
        &mut self,
        from_ms: i64,
        until_ms: i64,
        visit: &mut dyn FnMut(Vec<Event>) -> bool,
    ) -> Result<()> {
        let mut after = (i64::MIN, i64::MIN);
        loop {
            let rows = self.read(|tx| {
                tx.query(
                    &format!(
                        "SELECT {STREAM_COLUMNS} FROM stream
                         WHERE ts_ms >= $1 AND ts_ms < $2 AND (ts_ms, seq) > ($3, $4)
                         ORDER BY ts_ms, seq LIMIT $5"
                    ),
                    &[&from_ms, &until_ms, &after.0, &after.1, &HISTORY_BATCH],
                )?
                .iter()
                .map(Row::from_row)
                .collect::<PgResult<Vec<_>>>()
            })?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            let full = rows.len() as i64 == HISTORY_BATCH;
            after = (last.ts_ms.unwrap_or(i64::MAX), last.seq);
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
        let seq: i64 = self.read(|tx| {
            let row = match from_ms {
                None => tx.query_one("SELECT coalesce(max(seq), 0) FROM stream", &[])?,
                Some(from_ms) => tx.query_one(
                    "SELECT coalesce(
                         (SELECT min(seq) FROM stream WHERE written_ms >= $1) - 1,
                         (SELECT max(seq) FROM stream), 0)",
                    &[&from_ms],
                )?,
            };
            Ok(row.get(0))
        })?;
        Ok(seq.to_string())
    }

    fn follow(&mut self, after: &str, count: usize, block: Duration) -> Result<Vec<RawEntry>> {
        let after = parse_key(&self.shown, "stream position", after)?;
        let deadline = Instant::now() + block;
        loop {
            let entries = self.read(|tx| {
                tx.query(
                    &format!(
                        "SELECT {STREAM_COLUMNS} FROM stream
                         WHERE seq > $1 ORDER BY seq LIMIT $2"
                    ),
                    &[&after, &clamp(count)],
                )?
                .iter()
                .map(|row| Ok(Row::from_row(row)?.raw))
                .collect::<PgResult<Vec<_>>>()
            })?;
            if !entries.is_empty() {
                return Ok(entries);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Vec::new());
            }
            PostgresQueue::pause(left);
        }
    }

    fn event(&mut self, event_id: &str, hint: Option<&str>) -> Result<Option<Event>> {
        self.read(|tx| lifecycle::find_event(tx, event_id, hint))
    }
}
