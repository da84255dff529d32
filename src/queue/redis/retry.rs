//! Where the Redis backend keeps retries and dead-letter counts, so that
//! what the worker and `status` ask costs the same however much is parked:
//!
//! - `{events}:retry:<dest>`: one sorted set per destination of delivery
//!   tokens (`<event id>|<dest>`) scored by due time, so a claim (with or
//!   without `--only`) reads one range per destination, O(log n + k), and
//!   never walks deliveries parked for another destination;
//! - `{events}:retry-dests`: the destinations that may have retries, for a
//!   worker without `--only` (a destination whose set is empty is dropped
//!   from it by the next claim);
//! - `{events}:dead:counts`: dead letters counted by `<dest>\n<error>`,
//!   changed in the same script as the letter is added or removed;
//!   `{events}:dead:counted` says how far the counts are complete: `all`, or
//!   the id of the last letter counted while the counts of a dead stream
//!   written by an older version are being built, a bounded page at a time.
//!
//! A retry set written by an older version (`{events}:retry`, all
//! destinations in one) keeps working: each claim first moves a bounded page
//! of it into the per-destination sets, and a worker moves all of it before
//! it counts its backlog.

use std::collections::{BTreeMap, HashMap};

use redis::Value;

use super::{RedisQueue, array, text};
use crate::queue::{
    DeadLetter, Delivery, Result, Retries, RetryClaim, Settle, Settlement, entry, token_dest,
};

/// Tokens moved out of the old single retry set per script call, and dead
/// letters counted per script call: each call stays around a millisecond.
const CHUNK: usize = 1000;

/// `broken(body)`: why a stored delivery cannot be decoded, or nil. The rule
/// and the words of `entry::decode_retry`, for a claim script to
/// dead-letter such a retry in the claim itself. Prepended to the claim script.
const BROKEN_RETRY: &str = include_str!("broken_retry.lua");

/// Moves up to `ARGV[2]` tokens from the old single retry set `KEYS[1]`
/// into the per-destination sets (key prefix `ARGV[1]`), naming each
/// destination in `KEYS[2]`. Shared by the scripts below.
const MIGRATE: &str = include_str!("migrate.lua");

/// `KEYS`: the old retry set, the destinations set. `ARGV`: the
/// per-destination key prefix, the chunk. Returns how many are left.
const MIGRATE_CHUNK: &str = "return migrate(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]))";

/// Leases up to `ARGV[3]` retries due at `ARGV[2]` by moving their score to
/// `ARGV[4]`, earliest first across the destinations `ARGV[5..]` (every
/// destination in `KEYS[3]` when none is named); returns each token with its
/// delivery JSON from `KEYS[2]`. `KEYS[1]`, the old single retry set, is
/// first moved a page at a time. A retry whose delivery cannot be decoded
/// (`broken`) is dead-lettered in the same call (`KEYS[4..6]`: the dead
/// stream and its counts), so it never comes back and no crash can separate
/// the two writes.
const CLAIM: &str = include_str!("claim.lua");

/// Ids `ms-seq` compared as numbers, and the counts' field of an entry.
pub(super) const DEAD_HELPERS: &str = include_str!("dead_helpers.lua");

/// `dead_add(...)`: adds a dead letter to `dead` and counts it in `counts`
/// when the counts are complete (`counted` is `all`); counting starts
/// complete on an empty dead stream. Prepended to the scripts that write
/// dead letters.
const DEAD_ADD_FN: &str = include_str!("dead_add_fn.lua");

/// Adds a dead letter (`ARGV`: event, poison, dest, attempts, error, at) to
/// `KEYS[1]`, counted in `KEYS[2]` as `dead_add` says.
const DEAD_ADD: &str = include_str!("dead_add.lua");

/// Removes the dead letter `ARGV[1]`, uncounting it if it was counted.
const DEAD_REMOVE: &str = include_str!("dead_remove.lua");

/// Counts up to `ARGV[1]` more letters of a dead stream whose counts are
/// not complete; returns 1 once they are.
const DEAD_COUNT: &str = include_str!("dead_count.lua");

fn script(parts: &[&str]) -> redis::Script {
    redis::Script::new(&parts.concat())
}

impl RedisQueue {
    /// The sorted set of retries to `dest`.
    pub(super) fn retry_key(&self, dest: &str) -> String {
        format!("{}{dest}", self.retry_prefix())
    }

    fn retry_prefix(&self) -> String {
        format!("{}:retry:", self.prefix)
    }

    fn retry_dests(&self) -> String {
        format!("{}:retry-dests", self.prefix)
    }

    fn dead_counts_key(&self) -> String {
        format!("{}:dead:counts", self.prefix)
    }

    fn dead_counted_key(&self) -> String {
        format!("{}:dead:counted", self.prefix)
    }

    /// Whether the retry set of version 0.1 may still hold tokens. Once it
    /// is gone it is not asked again: no writer of this version recreates it.
    pub(super) fn legacy_retries(&mut self) -> Result<bool> {
        if self.legacy_retries_gone {
            return Ok(false);
        }
        let legacy = self.retry.clone();
        let exists: bool = self.with(|c| redis::cmd("EXISTS").arg(&legacy).query(c))?;
        self.legacy_retries_gone = !exists;
        Ok(exists)
    }

    /// Adds to `pipe` the writes that schedule each token (with its
    /// delivery JSON) at its due time, replacing any earlier schedule of it;
    /// with `legacy`, also out of the retry set of version 0.1.
    pub(super) fn schedule_tokens(
        &self,
        pipe: &mut redis::Pipeline,
        scheduled: &[(String, String, i64)],
        legacy: bool,
    ) {
        if scheduled.is_empty() {
            return;
        }
        // One ZADD per destination and one HSET for all: a command per
        // delivery costs Redis several times more (each is queued in the
        // transaction and answered on its own). Within a command the pairs
        // apply in order, so a token given twice ends as it would have.
        let mut by_dest: BTreeMap<&str, redis::Cmd> = BTreeMap::new();
        let mut bodies = redis::cmd("HSET");
        bodies.arg(&self.deliveries);
        for (token, body, due_ms) in scheduled {
            let dest = token_dest(token);
            by_dest
                .entry(dest)
                .or_insert_with(|| {
                    let mut zadd = redis::cmd("ZADD");
                    zadd.arg(self.retry_key(dest));
                    zadd
                })
                .arg(due_ms)
                .arg(token);
            bodies.arg(token).arg(body);
        }
        let dests: Vec<&str> = by_dest.keys().copied().collect();
        for zadd in by_dest.into_values() {
            pipe.add_command(zadd).ignore();
        }
        pipe.add_command(bodies).ignore();
        pipe.cmd("SADD").arg(self.retry_dests()).arg(dests).ignore();
        let tokens: Vec<&String> = scheduled.iter().map(|(token, _, _)| token).collect();
        if legacy {
            // A delivery still in the old single set is now in its own.
            pipe.cmd("ZREM").arg(&self.retry).arg(tokens).ignore();
        }
    }

    /// Adds to `pipe` the writes that finish with these retry tokens (with
    /// `legacy`, also in the retry set of version 0.1, which a token can
    /// still be in while that set is being moved).
    pub(super) fn unschedule_tokens(
        &self,
        pipe: &mut redis::Pipeline,
        tokens: &[String],
        legacy: bool,
    ) {
        if tokens.is_empty() {
            return;
        }
        let mut by_dest: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
        for token in tokens {
            by_dest.entry(token_dest(token)).or_default().push(token);
        }
        for (dest, tokens) in by_dest {
            pipe.cmd("ZREM")
                .arg(self.retry_key(dest))
                .arg(tokens)
                .ignore();
        }
        if legacy {
            pipe.cmd("ZREM").arg(&self.retry).arg(tokens).ignore();
        }
        pipe.cmd("HDEL").arg(&self.deliveries).arg(tokens).ignore();
    }

    /// Adds to `pipe` the write that extends the lease on a claimed retry.
    pub(super) fn lease_token(&self, pipe: &mut redis::Pipeline, token: &str, until_ms: i64) {
        pipe.cmd("ZADD")
            .arg(self.retry_key(token_dest(token)))
            .arg("XX")
            .arg(until_ms)
            .arg(token)
            .ignore();
    }

    /// Adds to `pipe` a dead letter, counted with it.
    pub(super) fn add_dead(&self, pipe: &mut redis::Pipeline, letter: &DeadLetter) {
        let event = match &letter.event {
            Ok(event) => event.to_json_line(),
            Err(raw) => raw.clone(),
        };
        pipe.cmd("EVAL")
            .arg([DEAD_ADD_FN, DEAD_ADD].concat())
            .arg(3)
            .arg(&self.dead)
            .arg(self.dead_counts_key())
            .arg(self.dead_counted_key())
            .arg(event)
            .arg(u8::from(letter.event.is_err()))
            .arg(&letter.dest)
            .arg(letter.attempts)
            .arg(&letter.error)
            .arg(letter.at_ms)
            .ignore();
    }

    /// Adds to `pipe` the removal of the dead letter `key`, uncounted with it.
    pub(super) fn remove_dead(&self, pipe: &mut redis::Pipeline, key: &str) {
        pipe.cmd("EVAL")
            .arg([DEAD_HELPERS, DEAD_REMOVE].concat())
            .arg(3)
            .arg(&self.dead)
            .arg(self.dead_counts_key())
            .arg(self.dead_counted_key())
            .arg(key)
            .ignore();
    }

    /// Claims up to `count` due retries (see [`CLAIM`]): token and delivery
    /// JSON, if any.
    pub(super) fn claim_tokens(
        &mut self,
        now_ms: i64,
        count: usize,
        lease_until: i64,
        only: &[String],
    ) -> Result<Vec<Option<String>>> {
        let script = script(&[MIGRATE, BROKEN_RETRY, DEAD_ADD_FN, CLAIM]);
        let keys = [
            self.retry.clone(),
            self.deliveries.clone(),
            self.retry_dests(),
            self.dead.clone(),
            self.dead_counts_key(),
            self.dead_counted_key(),
        ];
        let prefix = self.retry_prefix();
        self.with(|c| {
            script
                .key(&keys[..])
                .arg(prefix)
                .arg(now_ms)
                .arg(count)
                .arg(lease_until)
                .arg(only)
                .invoke(c)
        })
    }

    /// Moves every retry of the old single set into the per-destination
    /// sets, a bounded page per call.
    fn migrate_retries(&mut self) -> Result<()> {
        let script = script(&[MIGRATE, MIGRATE_CHUNK]);
        let (legacy, dests, prefix) = (self.retry.clone(), self.retry_dests(), self.retry_prefix());
        loop {
            let left: u64 = self.with(|c| {
                script
                    .key(&legacy)
                    .key(&dests)
                    .arg(&prefix)
                    .arg(CHUNK)
                    .invoke(c)
            })?;
            if left == 0 {
                self.legacy_retries_gone = true;
                return Ok(());
            }
        }
    }

    /// How many retries are scheduled and when the earliest is due; only
    /// those to `only` when it is not empty. Two round trips, each O(log n)
    /// per destination.
    pub(super) fn retry_summary(&mut self, only: &[String]) -> Result<(u64, Option<i64>)> {
        let (legacy, dests_key) = (self.retry.clone(), self.retry_dests());
        let (mut count, legacy_first, dests): (u64, Vec<(String, f64)>, Vec<String>) =
            self.with(|c| {
                redis::pipe()
                    .cmd("ZCARD")
                    .arg(&legacy)
                    .cmd("ZRANGE")
                    .arg(&legacy)
                    .arg(0)
                    .arg(0)
                    .arg("WITHSCORES")
                    .cmd("SMEMBERS")
                    .arg(&dests_key)
                    .query(c)
            })?;
        let mut first = legacy_first.first().map(|(_, score)| *score as i64);
        if !only.is_empty() && count > 0 {
            // Left by an older version: counting it for some destinations
            // only would mean walking it, so move it first, once.
            self.migrate_retries()?;
            (count, first) = (0, None);
        }
        let names = if only.is_empty() { &dests[..] } else { only };
        if names.is_empty() {
            return Ok((count, first));
        }
        let mut pipe = redis::pipe();
        for name in names {
            let key = self.retry_key(name);
            pipe.cmd("ZCARD").arg(&key);
            pipe.cmd("ZRANGE").arg(&key).arg(0).arg(0).arg("WITHSCORES");
        }
        let replies: Vec<Value> = self.with(|c| pipe.query(c))?;
        for pair in replies.chunks(2) {
            count += pair.first().map_or(0, |v| text(v).parse().unwrap_or(0));
            let due = pair.get(1).cloned().map(array).unwrap_or_default();
            if let Some(score) = due.get(1).and_then(|v| text(v).parse::<f64>().ok()) {
                let score = score as i64;
                first = Some(first.map_or(score, |f| f.min(score)));
            }
        }
        Ok((count, first))
    }

    /// Dead letters counted by (destination, error), most first. Counts a
    /// dead stream written by an older version once, a page per call.
    pub(super) fn dead_counts(&mut self) -> Result<Vec<(String, String, u64)>> {
        let script = script(&[DEAD_HELPERS, DEAD_COUNT]);
        let keys = [
            self.dead.clone(),
            self.dead_counts_key(),
            self.dead_counted_key(),
        ];
        loop {
            let done: i64 = self.with(|c| script.key(&keys[..]).arg(CHUNK).invoke(c))?;
            if done == 1 {
                break;
            }
        }
        let counts: HashMap<String, i64> =
            self.with(|c| redis::cmd("HGETALL").arg(&keys[1]).query(c))?;
        Ok(sorted_counts(counts))
    }
}

/// The counts hash as `status` shows it: by (destination, error), most first.
fn sorted_counts(counts: HashMap<String, i64>) -> Vec<(String, String, u64)> {
    let mut out: Vec<(String, String, u64)> = counts
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(field, n)| {
            let (dest, error) = field.split_once('\n').unwrap_or((&field, ""));
            (dest.to_owned(), error.to_owned(), n as u64)
        })
        .collect();
    out.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));
    out
}

impl RedisQueue {
    /// Claims up to `count` retries due at `now_ms` (see
    /// [`Claims::claim_retries`]); one the claim script cannot decode is
    /// dead-lettered by it, and what only serde refuses is settled dead here.
    pub(super) fn claim_due(
        &mut self,
        now_ms: i64,
        count: usize,
        only: &[String],
    ) -> Result<Vec<RetryClaim>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let lease_until = now_ms + self.options.claim_lease.as_millis() as i64;
        let flat = self.claim_tokens(now_ms, count, lease_until, only)?;
        let mut claims = Vec::new();
        let mut broken = Settlement::default();
        for pair in flat.chunks(2) {
            let (Some(token), body) = (pair[0].clone(), pair.get(1).cloned().flatten()) else {
                continue;
            };
            match entry::decode_retry(body.as_deref()) {
                Ok(delivery) => claims.push(RetryClaim { token, delivery }),
                // Only what the script's check lets through and serde still
                // refuses (a fractional attempt count) lands here.
                Err(why) => {
                    let letter = entry::broken_retry_letter(&token, body.as_deref(), &why, now_ms);
                    broken.dead.push(letter);
                    broken.done_retries.push(token);
                }
            }
        }
        if !broken.is_empty() {
            self.settle("", &broken)?;
        }
        Ok(claims)
    }

    /// Adds to `pipe` the writes that schedule each delivery at its due
    /// time, replacing any delivery of the same event to the same destination.
    pub(super) fn schedule<'a>(
        &self,
        pipe: &mut redis::Pipeline,
        deliveries: impl IntoIterator<Item = (&'a Delivery, i64)>,
        legacy: bool,
    ) {
        let scheduled: Vec<(String, String, i64)> = deliveries
            .into_iter()
            .map(|(delivery, due_ms)| {
                let body = serde_json::to_string(delivery).expect("a delivery serialises");
                (delivery.token(), body, due_ms)
            })
            .collect();
        self.schedule_tokens(pipe, &scheduled, legacy);
    }
}

impl Retries for RedisQueue {
    fn enqueue(&mut self, deliveries: &[Delivery], due_ms: i64) -> Result<()> {
        for chunk in deliveries.chunks(1000) {
            let mut pipe = redis::pipe();
            pipe.atomic();
            let legacy = self.legacy_retries()?;
            self.schedule(&mut pipe, chunk.iter().map(|d| (d, due_ms)), legacy);
            // A replay read these events before they may have been erased.
            self.guard_deliveries(&mut pipe, chunk);
            self.with(|c| pipe.exec(c))?;
        }
        Ok(())
    }

    fn retry_due(&mut self, token: &str) -> Result<Option<i64>> {
        self.due_of(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_split_at_the_first_newline_and_sorted_most_first() {
        let counts = HashMap::from([
            ("slack\nHTTP 404\nnot found".to_owned(), 2),
            ("webhook\ntimed out".to_owned(), 5),
            ("segment\nHTTP 500".to_owned(), 2),
            ("gone\nall requeued".to_owned(), 0),
        ]);
        assert_eq!(
            sorted_counts(counts),
            [
                ("webhook".into(), "timed out".into(), 5),
                ("segment".into(), "HTTP 500".into(), 2),
                ("slack".into(), "HTTP 404\nnot found".into(), 2),
            ]
        );
    }
}
