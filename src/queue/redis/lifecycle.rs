//! Where the Redis backend keeps what `inspect` reads: one list of attempt
//! records per event, `{events}:attempts:<event id>`, appended in the same
//! atomic settle as the outcome it records and expiring `EVENTS_RETENTION`
//! after the event's last attempt. One key per event makes the write one
//! `RPUSH` and `PEXPIRE` in the settle's round trip, the lookup one
//! `LRANGE`, and erasing an event one `DEL`; every key keeps the prefix's
//! hash tag, so all of it stays in one Cluster slot.

use std::collections::BTreeMap;

use redis::Value;

use super::{RedisQueue, raw_entries, raw_entry};
use crate::event::Event;
use crate::queue::entry::RawEntry;
use crate::queue::{AttemptRecord, Result, token_dest};

impl RedisQueue {
    pub(super) fn attempts_key(&self, event_id: &str) -> String {
        format!("{}:attempts:{event_id}", self.prefix)
    }

    /// Adds to `pipe` the appends of `records`, one list per event, and
    /// each list's expiry pushed back to a full retention from now.
    pub(super) fn record_attempts(&self, pipe: &mut redis::Pipeline, records: &[AttemptRecord]) {
        let mut by_event: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for record in records {
            by_event
                .entry(&record.event_id)
                .or_default()
                .push(serde_json::to_string(record).expect("a record serialises"));
        }
        let retention_ms = self.options.retention.as_millis().max(1) as u64;
        for (event_id, records) in by_event {
            let key = self.attempts_key(event_id);
            pipe.cmd("RPUSH").arg(&key).arg(records).ignore();
            pipe.cmd("PEXPIRE").arg(&key).arg(retention_ms).ignore();
        }
    }

    /// The attempt records of `event_id`, oldest first; a record that
    /// cannot be decoded (written by hand) is left out.
    pub(super) fn attempts_of(&mut self, event_id: &str) -> Result<Vec<AttemptRecord>> {
        let key = self.attempts_key(event_id);
        let stored: Vec<String> =
            self.with(|c| redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).query(c))?;
        Ok(stored
            .iter()
            .filter_map(|text| serde_json::from_str(text).ok())
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
