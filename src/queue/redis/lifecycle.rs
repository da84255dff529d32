//! Where the Redis backend keeps what `inspect` reads: the attempt records
//! of each event in one string, `{events}:attempts:<event id>`, one JSON
//! document a line, appended in the same
//! atomic settle as the outcome it records and expiring `EVENTS_RETENTION`
//! after the event's first attempt (as its history entry goes that long
//! after it was written). One key per event makes the lookup one `GET`
//! and erasing an event one `DEL`; the appends of a whole settle are one
//! script call ([`RECORD`]), which also skips events `forget` erased while
//! they were in flight. Every key keeps the prefix's hash tag, so all of it
//! stays in one Cluster slot.

use std::collections::BTreeMap;

use redis::Value;

use super::reply::id_lt;
use super::{GROUP, RedisQueue, array, next_id, raw_entries, raw_entry, text};
use crate::event::Event;
use crate::queue::entry::RawEntry;
use crate::queue::forget::{Erased, Person};
use crate::queue::{AttemptRecord, Lifecycle, Result, token_dest};

/// Appends attempt records, grouped by event. `KEYS[1]`: the events
/// `forget` erased lately, whose records are not written. `ARGV`: the
/// retention (ms), the key prefix, then per event its id and its records
/// (one JSON document a line). A first attempt, by far the most common,
/// is one `SET` that creates the key with its expiry; a later one appends.
const RECORD: &str = include_str!("record.lua");

impl RedisQueue {
    pub(super) fn attempts_key(&self, event_id: &str) -> String {
        format!("{}:attempts:{event_id}", self.prefix)
    }

    /// Adds to `pipe` the appends of `records` (see [`RECORD`]).
    pub(super) fn record_attempts(&self, pipe: &mut redis::Pipeline, records: &[AttemptRecord]) {
        if records.is_empty() {
            return;
        }
        let mut by_event: BTreeMap<&str, String> = BTreeMap::new();
        for record in records {
            let lines = by_event.entry(&record.event_id).or_default();
            if !lines.is_empty() {
                lines.push('\n');
            }
            lines.push_str(&serde_json::to_string(record).expect("a record serialises"));
        }
        let retention_ms = self.options.retention.as_millis().max(1) as u64;
        pipe.cmd("EVAL")
            .arg(RECORD)
            .arg(1)
            .arg(self.forgotten_key())
            .arg(retention_ms)
            .arg(format!("{}:attempts:", self.prefix));
        for (event_id, lines) in by_event {
            pipe.arg(event_id).arg(lines);
        }
        pipe.ignore();
    }

    /// The attempt records of `event_id`, oldest first; a record that
    /// cannot be decoded (written by hand) is left out.
    pub(super) fn attempts_of(&mut self, event_id: &str) -> Result<Vec<AttemptRecord>> {
        let key = self.attempts_key(event_id);
        let stored: Option<String> = self.with(|c| redis::cmd("GET").arg(&key).query(c))?;
        Ok(stored
            .iter()
            .flat_map(|text| text.lines())
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect())
    }

    /// The event `event_id` in the history: at the stream entry `hint`
    /// when that holds it, else by reading the whole stream.
    pub(super) fn find_event(
        &mut self,
        event_id: &str,
        hint: Option<&str>,
    ) -> Result<Option<Event>> {
        let stream = self.stream.clone();
        if let Some(key) = hint {
            let reply: Value =
                self.with(|c| redis::cmd("XRANGE").arg(&stream).arg(key).arg(key).query(c))?;
            let found = raw_entries(reply)
                .into_iter()
                .map(|(key, fields)| raw_entry(key, fields))
                .find_map(|raw| decoded(raw).filter(|e| e.id == event_id));
            if found.is_some() {
                return Ok(found);
            }
        }
        let mut found = None;
        self.scan(&stream, "-".to_owned(), |page| {
            found = page
                .into_iter()
                .map(|(key, fields)| raw_entry(key, fields))
                .find_map(|raw| decoded(raw).filter(|e| e.id == event_id));
            found.is_none()
        })?;
        Ok(found)
    }

    /// When the delivery `token` is due in the retry set, if it is there.
    pub(super) fn due_of(&mut self, token: &str) -> Result<Option<i64>> {
        let key = self.retry_key(token_dest(token));
        let score: Option<f64> =
            self.with(|c| redis::cmd("ZSCORE").arg(&key).arg(token).query(c))?;
        Ok(score.map(|s| s as i64))
    }
}

fn decoded(raw: RawEntry) -> Option<Event> {
    crate::queue::StreamEntry::from(raw).event.ok()
}

impl Lifecycle for RedisQueue {
    fn trim(&mut self, before_ms: i64) -> Result<u64> {
        let Some(group) = self.group_info()? else {
            return Ok(0);
        };
        let mut floor = format!("{before_ms}-0");
        let last = group
            .get("last-delivered-id")
            .map(text)
            .unwrap_or_else(|| "0-0".into());
        if id_lt(&last, &floor) {
            // Entries after the last delivered one are unread: keep them.
            floor = next_id(&last);
        }
        let stream = self.stream.clone();
        let pending: Value =
            self.with(|c| redis::cmd("XPENDING").arg(&stream).arg(GROUP).query(c))?;
        if let Some(Value::BulkString(first)) = array(pending).get(1) {
            let first = String::from_utf8_lossy(first).into_owned();
            if id_lt(&first, &floor) {
                floor = first;
            }
        }
        let removed = self.with(|c| {
            redis::cmd("XTRIM")
                .arg(&stream)
                .arg("MINID")
                .arg(&floor)
                .query(c)
        })?;
        // The index of skewed entries goes with them (it is small: only the
        // exceptional entries are in it).
        let skewed = self.skewed.clone();
        let members: Vec<String> =
            self.with(|c| redis::cmd("ZRANGE").arg(&skewed).arg(0).arg(-1).query(c))?;
        let gone: Vec<&String> = members.iter().filter(|id| id_lt(id, &floor)).collect();
        for chunk in gone.chunks(1000) {
            self.with(|c| redis::cmd("ZREM").arg(&skewed).arg(chunk).exec(c))?;
        }
        Ok(removed)
    }

    fn attempts(&mut self, event_id: &str) -> Result<Vec<AttemptRecord>> {
        self.attempts_of(event_id)
    }

    fn forget(&mut self, person: &Person, dry_run: bool) -> Result<Erased> {
        self.forget_person(person, dry_run)
    }
}
