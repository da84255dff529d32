//! The stream and its claims: appending events, claiming them with
//! `FOR UPDATE SKIP LOCKED` (workers never wait on each other's rows),
//! settling what the worker did, and reading the history.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use postgres::Transaction;
use postgres::types::{ToSql, Type};

use super::outbox::{self, EventRow};
use super::{
    HISTORY_BATCH, PostgresQueue, Row, STREAM_COLUMNS, clamp, insert_dead, lifecycle, parse_key,
    retries,
};
use crate::event::{Event, now_ms};
use crate::queue::entry::{self, RawEntry};
use crate::queue::{Backlog, Claims, History, Producer, Result, RetryClaim, Settle, Settlement};

type PgResult<T> = std::result::Result<T, postgres::Error>;

/// Events written by one statement at most: a batch of any size is one
/// round trip a chunk, in one transaction.
const APPEND_CHUNK: usize = 5000;

impl PostgresQueue {
    /// Whether `claim` would find anything now.
    fn claimable(&mut self) -> Result<bool> {
        let now = now_ms();
        // One statement reads one snapshot: no transaction around it.
        self.single(|client| {
            client
                .query_typed_one(
                    "SELECT EXISTS (SELECT 1 FROM stream
                     WHERE state < 2 AND (state = 0 OR lease_until < $1))",
                    &[(&now, Type::INT8)],
                )
                .map(|row| row.get(0))
        })
    }

    /// Claims up to `count` claimable entries for `consumer`, or with
    /// `recovering` re-leases every entry it already holds; oldest first.
    fn take(&mut self, consumer: &str, count: usize, recovering: bool) -> Result<Vec<RawEntry>> {
        if !recovering {
            return self.claim_new(consumer, count);
        }
        let lease_ms = self.lease_ms;
        self.write(|tx| {
            let now = now_ms();
            let until = now.saturating_add(lease_ms);
            let rows = tx.query(
                &format!(
                    "UPDATE stream SET lease_until = $2
                     WHERE state < 2 AND state = 1 AND consumer = $1
                     RETURNING {STREAM_COLUMNS}"
                ),
                &[&consumer, &until],
            )?;
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

impl PostgresQueue {
    /// Claims up to `count` unread or abandoned entries for `consumer` in
    /// ONE statement (atomic on its own, no `BEGIN`/`COMMIT` around it, its
    /// parameters typed so it is not prepared first): on the path from a
    /// commit to its delivery, every round trip counts.
    fn claim_new(&mut self, consumer: &str, count: usize) -> Result<Vec<RawEntry>> {
        let now = now_ms();
        let until = now.saturating_add(self.lease_ms);
        let sql = format!(
            "WITH taken AS (
                 UPDATE stream SET state = 1, consumer = $1, lease_until = $2
                 WHERE seq IN (
                     SELECT seq FROM stream
                     WHERE state < 2 AND (state = 0 OR lease_until < $3)
                     ORDER BY seq LIMIT $4
                     FOR UPDATE SKIP LOCKED)
                 RETURNING {STREAM_COLUMNS}),
             seen AS (
                 INSERT INTO consumers (name, seen_ms) VALUES ($1, $3)
                 ON CONFLICT (name) DO UPDATE SET seen_ms = excluded.seen_ms)
             SELECT * FROM taken"
        );
        let params: [(&(dyn ToSql + Sync), Type); 4] = [
            (&consumer, Type::TEXT),
            (&until, Type::INT8),
            (&now, Type::INT8),
            (&clamp(count), Type::INT8),
        ];
        let mut taken = self.single(|client| {
            let rows = client.query_typed(&sql, &params)?;
            rows.iter().map(Row::from_row).collect::<PgResult<Vec<_>>>()
        })?;
        taken.sort_by_key(|row| row.seq);
        Ok(taken.into_iter().map(|row| row.raw).collect())
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
        let now = now_ms();
        let rows: Vec<EventRow> = events
            .iter()
            .map(|event| EventRow::new(event, None, Duration::ZERO, now))
            .collect();
        self.write(|tx| {
            rows.chunks(APPEND_CHUNK)
                .try_for_each(|chunk| outbox::write_many(tx, &schema, chunk).map(drop))
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
            if !block.is_zero() {
                self.listen();
            }
            // After a look that took all it could see, the next waits for a
            // commit to be notified (or for the fallback) before looking.
            if block.is_zero() || !self.caught_up() {
                let entries = self.take(consumer, count, false)?;
                if !block.is_zero() {
                    self.note_look(entries.len() < count);
                }
                if !entries.is_empty() {
                    return Ok(entries);
                }
            }
            // Woken by a commit, or looking after the fallback wait (a lost
            // notification, another worker's lease ending); looks only read.
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Vec::new());
                }
                if self.wait_for_insert(left) {
                    break;
                }
                if Instant::now() >= deadline {
                    // The caller claims again at once: no look needed.
                    return Ok(Vec::new());
                }
                if self.claimable()? {
                    self.note_look(false);
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
        let until = now_ms.saturating_add(self.lease_ms);
        let count = clamp(count);
        let due = self.single(|client| retries::claim_due(client, now_ms, until, count, only))?;
        let mut claims = Vec::with_capacity(due.len());
        let mut broken = Vec::new();
        for (token, _dest, json) in due {
            match entry::decode_retry(Some(&json)) {
                Ok(delivery) => claims.push(RetryClaim { token, delivery }),
                Err(why) => {
                    let letter = entry::broken_retry_letter(&token, Some(&json), &why, now_ms);
                    broken.push((token, letter));
                }
            }
        }
        if !broken.is_empty() {
            // Leased above: should this fail, they fall due again.
            self.write(|tx| {
                broken.iter().try_for_each(|(token, letter)| {
                    insert_dead(tx, letter)?;
                    tx.execute("DELETE FROM retry WHERE token = $1", &[token])
                        .map(drop)
                })
            })?;
        }
        Ok(claims)
    }

    fn renew(&mut self, consumer: &str, entries: &[String], retries: &[String]) -> Result<()> {
        let seqs = entries
            .iter()
            .map(|key| parse_key(&self.shown, "stream entry", key))
            .collect::<Result<Vec<_>>>()?;
        let lease_until = now_ms() + self.lease_ms;
        self.single(|client| {
            client
                .execute_typed(
                    "WITH held AS (
                         UPDATE stream SET lease_until = $1
                         WHERE seq = ANY($2) AND state = 1 AND consumer = $3),
                     retried AS (UPDATE retry SET due_ms = $1 WHERE token = ANY($4))
                     INSERT INTO consumers (name, seen_ms) VALUES ($3, $5)
                     ON CONFLICT (name) DO UPDATE SET seen_ms = excluded.seen_ms",
                    &[
                        (&lease_until, Type::INT8),
                        (&seqs, Type::INT8_ARRAY),
                        (&consumer, Type::TEXT),
                        (&retries, Type::TEXT_ARRAY),
                        (&now_ms(), Type::INT8),
                    ],
                )
                .map(drop)
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
        self.single(|client| {
            super::settle::settle(client, consumer, &acks, settlement, now_ms()).map(drop)
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
        let from = parse_key(&self.shown, "stream position", after)?;
        let mut following = match self.following.take() {
            Some(f) if f.cursor == after => f,
            _ => Following::at(from),
        };
        let deadline = Instant::now() + block;
        loop {
            if !block.is_zero() {
                self.listen();
            }
            let (entries, snapshot) = match self.read(|tx| following.look(tx, count)) {
                Ok(read) => read,
                Err(e) => {
                    self.following = Some(following);
                    return Err(e);
                }
            };
            following.advance(&entries, snapshot, entries.len() < count);
            if let Some(last) = entries.last() {
                following.cursor = last.key.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if !entries.is_empty() || left.is_zero() {
                self.following = Some(following);
                return Ok(entries);
            }
            self.wait_for_insert(left);
        }
    }

    fn event(&mut self, event_id: &str, hint: Option<&str>) -> Result<Option<Event>> {
        self.read(|tx| lifecycle::find_event(tx, event_id, hint))
    }
}

/// How long a look at the stream is kept in mind before the rows it could
/// not see are taken as settled: beyond the transactions it saw running, a
/// row's transaction may have drawn its `seq` a moment before it got a
/// transaction id.
const FOLLOW_GRACE: Duration = Duration::from_secs(1);

/// Where `follow` is. A row's `seq` is drawn when it is inserted, not when
/// its transaction commits, so a row may appear below one already seen.
/// Every row above `low` is looked at again, skipping those `seen`, until
/// each transaction running when a higher row was seen has ended (its
/// snapshot's `xmin` passed that look's `xmax`).
pub(super) struct Following {
    /// The position the caller passes back for this state to apply.
    cursor: String,
    /// No row at or below it can still appear.
    low: i64,
    /// Rows above `low` already returned.
    seen: BTreeSet<i64>,
    /// Earlier looks: the `xmax` of their snapshot, the highest `seq` they
    /// saw, and when.
    looks: VecDeque<Look>,
}

struct Look {
    xmax: i64,
    top: i64,
    at: Instant,
}

/// What one look's snapshot says: the oldest transaction still running
/// (`xmin`), the first not yet started (`xmax`), the highest visible `seq`.
pub(super) struct Snapshot {
    xmin: i64,
    xmax: i64,
    top: i64,
}

impl Following {
    fn at(low: i64) -> Following {
        Following {
            cursor: low.to_string(),
            low,
            seen: BTreeSet::new(),
            looks: VecDeque::new(),
        }
    }

    /// Up to `count` rows above `low` not yet returned, in `seq` order, and
    /// what the snapshot they were read in says.
    fn look(&self, tx: &mut Transaction, count: usize) -> PgResult<(Vec<RawEntry>, Snapshot)> {
        let row = tx.query_one(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint,
                    pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
                    coalesce((SELECT max(seq) FROM stream), 0)",
            &[],
        )?;
        let snapshot = Snapshot {
            xmin: row.get(0),
            xmax: row.get(1),
            top: row.get(2),
        };
        let seen: Vec<i64> = self.seen.iter().copied().collect();
        let entries = tx
            .query(
                &format!(
                    "SELECT {STREAM_COLUMNS} FROM stream
                     WHERE seq > $1 AND NOT (seq = ANY($2)) ORDER BY seq LIMIT $3"
                ),
                &[&self.low, &seen, &clamp(count)],
            )?
            .iter()
            .map(|row| Ok(Row::from_row(row)?.raw))
            .collect::<PgResult<Vec<_>>>()?;
        Ok((entries, snapshot))
    }

    /// Notes what a look returned. When it returned every row it could see
    /// (`complete`), the rows up to an earlier look's highest are all seen
    /// once every transaction running at that look has ended.
    fn advance(&mut self, entries: &[RawEntry], snapshot: Snapshot, complete: bool) {
        self.seen.extend(entries.iter().map(|raw| raw.seq as i64));
        let last_top = self.looks.back().map_or(self.low, |look| look.top);
        if snapshot.top > last_top {
            self.looks.push_back(Look {
                xmax: snapshot.xmax,
                top: snapshot.top,
                at: Instant::now(),
            });
        }
        while complete
            && let Some(look) = self.looks.front()
            && snapshot.xmin >= look.xmax
            && look.at.elapsed() >= FOLLOW_GRACE
        {
            self.low = self.low.max(look.top);
            self.looks.pop_front();
        }
        let low = self.low;
        self.seen.retain(|seq| *seq > low);
    }
}
