//! `forget` on Redis, safe while workers run. It first reads what is the
//! person's (stream, retry bodies, dead letters, idempotency keys), then
//! erases each of their events in one script: its entries, every retry of
//! it, its dead letters (with any written since the reading), its attempt
//! records and idempotency keys, and marks it in `{events}:forgotten`. A
//! worker delivering the event at that moment settles afterwards; its
//! settle carries [`GUARD`], which in the same transaction takes back the
//! retries and dead letters it wrote about an event marked there (its
//! attempt records are not written at all). So an event in flight is
//! either delivered or gone, never half-erased, and nothing brings it back.
//! A replay holds copies too: its history deliveries carry the same
//! [`GUARD`], and its dead letters go back only if each is still there
//! ([`REQUEUE`]), in the same script that takes it.

use std::collections::{BTreeMap, HashSet};

use super::retry::DEAD_HELPERS;
use super::{RedisQueue, dead_letter, raw_entry};
use crate::event::now_ms;
use crate::queue::entry;
use crate::queue::forget::{Erased, Person, stopped};
use crate::queue::{Delivery, QueueError, Result, Settlement, UnavailableReason};

/// How long an erased event's id stays marked: far longer than any
/// delivery can stay in flight.
const FORGOTTEN_FOR_MS: i64 = 24 * 3600 * 1000;
/// Events erased per round trip (each in its own script call).
const ERASE_BATCH: usize = 100;

/// The removals one event's erasure and a guarded settle share.
/// `retries_of`: every retry of `id` (by its tokens, in every destination's
/// set and the old single set) and its bodies. `letter_of`: the event id a
/// dead letter's fields are about, or nil. `dead_remove`: `DEAD_REMOVE`.
const ERASE_FNS: &str = include_str!("erase_fns.lua");

/// Erases one event. `KEYS`: stream, skewed index, deliveries, retry
/// destinations, dead, dead counts, dead counted, the event's attempts,
/// forgotten, the old retry set. `ARGV`: event id, now, retry key prefix,
/// where dead letters not read yet start, then a count and that many entry
/// ids, a count and that many dead letter ids, and the idempotency keys.
/// Returns what it removed: entries, retries, dead letters, attempt
/// records, idempotency keys.
const ERASE: &str = include_str!("erase.lua");

/// Part of every settle that writes about events: takes back, in the same
/// transaction, what it wrote about events erased meanwhile. `KEYS`:
/// forgotten, deliveries, retry destinations, dead, dead counts, dead
/// counted, the old retry set. `ARGV`: retry key prefix, attempts key
/// prefix, how many dead letters the settle added, then the event ids.
const GUARD: &str = include_str!("guard.lua");

/// Moves dead letters back into the retry set, each only if it is still
/// there: one erased (or purged, or replayed by another) since it was read
/// stays gone. `KEYS`: dead, dead counts, dead counted, deliveries, retry
/// destinations, the old retry set. `ARGV`: retry key prefix, due time,
/// whether the old set may hold tokens (`1`), then per letter its id, the
/// number of its deliveries and, for each, token, destination and body.
/// Returns how many letters it moved.
const REQUEUE: &str = include_str!("requeue.lua");

/// What reading found of one event of the person.
#[derive(Default)]
struct Found {
    entries: Vec<String>,
    retries: u64,
    dead: Vec<String>,
    idem: Vec<String>,
}

/// What reading found: the person's events, and the poison entries and
/// letters (no event to erase them with) that mention the value.
#[derive(Default)]
struct Gathered {
    events: BTreeMap<String, Found>,
    poison_entries: Vec<String>,
    poison_dead: Vec<String>,
    /// Where dead letters written after the reading start, as an XRANGE bound.
    dead_after: String,
}

impl RedisQueue {
    pub(super) fn forget_person(&mut self, person: &Person, dry_run: bool) -> Result<Erased> {
        let gathered = self
            .gather(person)
            .map_err(|e| if dry_run { e } else { stopped(e, false) })?;
        if dry_run {
            return self.count(&gathered);
        }
        let mut erased = Erased::default();
        let events: Vec<(&String, &Found)> = gathered.events.iter().collect();
        for (done, batch) in events.chunks(ERASE_BATCH).enumerate() {
            let mut pipe = redis::pipe();
            for (id, found) in batch {
                self.erase(&mut pipe, id, found, &gathered.dead_after);
            }
            // A batch that failed may have erased some of its events,
            // unless the server refused every write (a replica).
            let removed: Vec<Vec<u64>> = self.with(|c| pipe.query(c)).map_err(|e| {
                let refused = matches!(&e, QueueError::Unavailable { reason, .. }
                    if *reason == UnavailableReason::ReadOnly);
                stopped(e, done > 0 || !refused)
            })?;
            for counts in removed {
                let n = |i: usize| counts.get(i).copied().unwrap_or(0);
                erased.add(Erased {
                    history: n(0),
                    retries: n(1),
                    dead_letters: n(2),
                    attempts: n(3),
                    idempotency_keys: n(4),
                });
            }
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for key in &gathered.poison_entries {
            pipe.cmd("XDEL").arg(&self.stream).arg(key);
        }
        for key in &gathered.poison_dead {
            self.remove_dead_counted(&mut pipe, key);
        }
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(self.forgotten_key())
            .arg("-inf")
            .arg(now_ms() - FORGOTTEN_FOR_MS)
            .ignore();
        let removed: Vec<u64> = self.with(|c| pipe.query(c)).map_err(|e| stopped(e, true))?;
        let (entries, letters) = removed.split_at(gathered.poison_entries.len());
        erased.history += entries.iter().sum::<u64>();
        erased.dead_letters += letters.iter().sum::<u64>();
        Ok(erased)
    }

    pub(super) fn forgotten_key(&self) -> String {
        format!("{}:forgotten", self.prefix)
    }

    /// Adds to `pipe` the erasure of the event `id` (see [`ERASE`]).
    fn erase(&self, pipe: &mut redis::Pipeline, id: &str, found: &Found, dead_after: &str) {
        pipe.cmd("EVAL")
            .arg([DEAD_HELPERS, ERASE_FNS, ERASE].concat())
            .arg(10)
            .arg(&self.stream)
            .arg(&self.skewed)
            .arg(&self.deliveries)
            .arg(format!("{}:retry-dests", self.prefix))
            .arg(&self.dead)
            .arg(format!("{}:dead:counts", self.prefix))
            .arg(format!("{}:dead:counted", self.prefix))
            .arg(self.attempts_key(id))
            .arg(self.forgotten_key())
            .arg(&self.retry)
            .arg(id)
            .arg(now_ms())
            .arg(format!("{}:retry:", self.prefix))
            .arg(dead_after)
            .arg(found.entries.len())
            .arg(&found.entries)
            .arg(found.dead.len())
            .arg(&found.dead)
            .arg(&found.idem);
    }

    /// Adds to `pipe` the removal of one dead letter, uncounted, replying
    /// 1 if it was there.
    fn remove_dead_counted(&self, pipe: &mut redis::Pipeline, key: &str) {
        pipe.cmd("EVAL")
            .arg(
                [
                    DEAD_HELPERS,
                    ERASE_FNS,
                    "return dead_remove(KEYS[1], KEYS[2], KEYS[3], ARGV[1])",
                ]
                .concat(),
            )
            .arg(3)
            .arg(&self.dead)
            .arg(format!("{}:dead:counts", self.prefix))
            .arg(format!("{}:dead:counted", self.prefix))
            .arg(key);
    }

    /// Adds to `pipe` the [`GUARD`] of a settlement that schedules retries
    /// or writes dead letters (its attempt records guard themselves).
    pub(super) fn guard(&self, pipe: &mut redis::Pipeline, s: &Settlement) {
        let mut ids: Vec<&str> = s.retries.iter().map(|(d, _)| d.event.id.as_str()).collect();
        ids.extend(
            s.dead
                .iter()
                .filter_map(|l| l.event.as_ref().ok())
                .map(|e| e.id.as_str()),
        );
        self.guard_ids(pipe, ids, s.dead.len());
    }

    /// Adds to `pipe` the [`GUARD`] of deliveries a replay schedules.
    pub(super) fn guard_deliveries(&self, pipe: &mut redis::Pipeline, deliveries: &[Delivery]) {
        let ids = deliveries.iter().map(|d| d.event.id.as_str()).collect();
        self.guard_ids(pipe, ids, 0);
    }

    /// The [`GUARD`] of writes about the events `ids`, after `dead` new
    /// dead letters.
    fn guard_ids(&self, pipe: &mut redis::Pipeline, mut ids: Vec<&str>, dead: usize) {
        if ids.is_empty() {
            return;
        }
        ids.sort_unstable();
        ids.dedup();
        pipe.cmd("EVAL")
            .arg([DEAD_HELPERS, ERASE_FNS, GUARD].concat())
            .arg(7)
            .arg(self.forgotten_key())
            .arg(&self.deliveries)
            .arg(format!("{}:retry-dests", self.prefix))
            .arg(&self.dead)
            .arg(format!("{}:dead:counts", self.prefix))
            .arg(format!("{}:dead:counted", self.prefix))
            .arg(&self.retry)
            .arg(format!("{}:retry:", self.prefix))
            .arg(format!("{}:attempts:", self.prefix))
            .arg(dead)
            .arg(ids)
            .ignore();
    }

    /// Adds to `pipe` the [`REQUEUE`] of these dead letters (each key's
    /// deliveries side by side), due at `due_ms`.
    pub(super) fn requeue(
        &self,
        pipe: &mut redis::Pipeline,
        letters: &[&(String, Delivery)],
        due_ms: i64,
        legacy: bool,
    ) {
        let cmd = pipe
            .cmd("EVAL")
            .arg([DEAD_HELPERS, ERASE_FNS, REQUEUE].concat())
            .arg(6)
            .arg(&self.dead)
            .arg(format!("{}:dead:counts", self.prefix))
            .arg(format!("{}:dead:counted", self.prefix))
            .arg(&self.deliveries)
            .arg(format!("{}:retry-dests", self.prefix))
            .arg(&self.retry)
            .arg(format!("{}:retry:", self.prefix))
            .arg(due_ms)
            .arg(u8::from(legacy));
        for group in letters.chunk_by(|a, b| a.0 == b.0) {
            cmd.arg(&group[0].0).arg(group.len());
            for (_, delivery) in group {
                let body = serde_json::to_string(delivery).expect("a delivery serialises");
                cmd.arg(delivery.token()).arg(&delivery.dest).arg(body);
            }
        }
        cmd.ignore();
    }

    /// Reads everything of the person's: the stream, the retry bodies and
    /// the dead letters a page at a time, then the idempotency keys.
    fn gather(&mut self, person: &Person) -> Result<Gathered> {
        let mut g = Gathered::default();
        let stream = self.stream.clone();
        self.scan(&stream, "-".to_owned(), |page| {
            for (key, fields) in page {
                match entry::decode(&raw_entry(key.clone(), fields)) {
                    Ok(event) if person.owns(&event) => {
                        g.events.entry(event.id).or_default().entries.push(key);
                    }
                    Err(poison) if person.mentioned_in(&poison.raw) => g.poison_entries.push(key),
                    _ => {}
                }
            }
            true
        })?;
        let deliveries = self.deliveries.clone();
        let mut cursor = 0u64;
        loop {
            let (next, pairs): (u64, Vec<(String, String)>) = self.with(|c| {
                redis::cmd("HSCAN")
                    .arg(&deliveries)
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(1000)
                    .query(c)
            })?;
            for (_, body) in pairs {
                if let Ok(delivery) = serde_json::from_str::<Delivery>(&body)
                    && person.owns(&delivery.event)
                {
                    g.events.entry(delivery.event.id).or_default().retries += 1;
                }
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        let dead = self.dead.clone();
        let mut last = None;
        self.scan(&dead, "-".to_owned(), |page| {
            for (key, fields) in page {
                last = Some(key.clone());
                let Some(fields) = fields else { continue };
                match dead_letter(&key, &fields).event {
                    Ok(event) if person.owns(&event) => {
                        g.events.entry(event.id).or_default().dead.push(key);
                    }
                    Err(raw) if person.mentioned_in(&raw) => g.poison_dead.push(key),
                    _ => {}
                }
            }
            true
        })?;
        g.dead_after = last.map_or_else(|| "-".to_owned(), |key| format!("({key}"));
        self.gather_idem(&mut g)?;
        Ok(g)
    }

    /// The idempotency keys that point at the person's events.
    fn gather_idem(&mut self, g: &mut Gathered) -> Result<()> {
        if g.events.is_empty() {
            return Ok(());
        }
        let pattern = format!("{}:idem:*", glob_escape(&self.prefix));
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = self.with(|c| {
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query(c)
            })?;
            if !keys.is_empty() {
                let ids: Vec<Option<String>> =
                    self.with(|c| redis::cmd("MGET").arg(&keys).query(c))?;
                for (key, id) in keys.into_iter().zip(ids) {
                    if let Some(found) = id.and_then(|id| g.events.get_mut(&id)) {
                        found.idem.push(key);
                    }
                }
            }
            cursor = next;
            if cursor == 0 {
                return Ok(());
            }
        }
    }

    /// What erasing `g` would remove, removing nothing.
    fn count(&mut self, g: &Gathered) -> Result<Erased> {
        let mut erased = Erased {
            history: g.poison_entries.len() as u64,
            dead_letters: g.poison_dead.len() as u64,
            ..Erased::default()
        };
        let mut pipe = redis::pipe();
        for (id, found) in &g.events {
            erased.history += found.entries.len() as u64;
            erased.retries += found.retries;
            erased.dead_letters += found.dead.len() as u64;
            erased.idempotency_keys += found.idem.len() as u64;
            pipe.cmd("GET").arg(self.attempts_key(id));
        }
        if !g.events.is_empty() {
            let records: Vec<Option<String>> = self.with(|c| pipe.query(c))?;
            erased.attempts = records
                .iter()
                .flatten()
                .map(|r| r.lines().count() as u64)
                .sum();
        }
        Ok(erased)
    }
}

/// `text` with Redis glob characters escaped, for `SCAN MATCH`.
fn glob_escape(text: &str) -> String {
    let specials: HashSet<char> = ['*', '?', '[', ']', '\\'].into_iter().collect();
    text.chars()
        .flat_map(|c| {
            let escape = specials.contains(&c).then_some('\\');
            escape.into_iter().chain([c])
        })
        .collect()
}
