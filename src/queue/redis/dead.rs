//! The dead letters: the stream `{events}:dead`, counted in
//! `{events}:dead:counts`; listed, requeued, counted and purged.

use redis::Value;

use super::{Fields, PAGE, RedisQueue, SKEW_MS, parse_id, raw_entries};
use crate::event::Event;
use crate::queue::{DeadFilter, DeadLetter, DeadLetters, Delivery, Result, StoredDeadLetter};

impl RedisQueue {
    /// Counts, and removes when `remove` is set, the dead letters `filter`
    /// selects, a page at a time: each page's removals are one atomic
    /// pipeline of the remove script, which uncounts what it removes.
    fn dead_pass(&mut self, filter: &DeadFilter, remove: bool) -> Result<u64> {
        let dead = self.dead.clone();
        // A letter's id is when Redis wrote it, its `at` when the worker did:
        // letters `at` before the bound lie within the clocks' skew of it.
        let end = filter.before_ms.map_or("+".to_owned(), |before| {
            before.saturating_add(SKEW_MS).to_string()
        });
        let mut start = "-".to_owned();
        let mut selected = 0;
        loop {
            let reply: Value = self.with(|c| {
                redis::cmd("XRANGE")
                    .arg(&dead)
                    .arg(&start)
                    .arg(&end)
                    .arg("COUNT")
                    .arg(PAGE)
                    .query(c)
            })?;
            let entries = raw_entries(reply);
            let Some((last, _)) = entries.last() else {
                return Ok(selected);
            };
            start = format!("({last}");
            let more = entries.len() == PAGE;
            let keys: Vec<String> = entries
                .into_iter()
                .filter_map(|(key, fields)| {
                    let letter = dead_letter(&key, &fields?);
                    filter.matches(&letter).then_some(key)
                })
                .collect();
            selected += keys.len() as u64;
            if remove && !keys.is_empty() {
                let mut pipe = redis::pipe();
                pipe.atomic();
                for key in &keys {
                    self.remove_dead(&mut pipe, key);
                }
                self.with(|c| pipe.exec(c))?;
            }
            if !more {
                return Ok(selected);
            }
        }
    }
}

impl DeadLetters for RedisQueue {
    fn dead_letters(&mut self) -> Result<Vec<StoredDeadLetter>> {
        let dead = self.dead.clone();
        let mut out = Vec::new();
        self.scan(&dead, "-".to_owned(), |page| {
            out.extend(page.into_iter().filter_map(|(key, fields)| {
                Some(StoredDeadLetter {
                    letter: dead_letter(&key, &fields?),
                    key,
                })
            }));
            true
        })?;
        Ok(out)
    }

    fn dead_before(&mut self, before: Option<&str>, count: usize) -> Result<Vec<StoredDeadLetter>> {
        let dead = self.dead.clone();
        let end = before.map_or("+".to_owned(), |key| format!("({key}"));
        let reply: Value = self.with(|c| {
            redis::cmd("XREVRANGE")
                .arg(&dead)
                .arg(&end)
                .arg("-")
                .arg("COUNT")
                .arg(count)
                .query(c)
        })?;
        Ok(raw_entries(reply)
            .into_iter()
            .filter_map(|(key, fields)| {
                Some(StoredDeadLetter {
                    letter: dead_letter(&key, &fields?),
                    key,
                })
            })
            .collect())
    }

    fn requeue_dead(&mut self, letters: &[(String, Delivery)], due_ms: i64) -> Result<()> {
        // Atomic per chunk of about 500, never splitting one letter's
        // deliveries (a letter for every destination has several).
        for chunk in letters.chunk_by(|a, b| a.0 == b.0).fold(
            Vec::<Vec<&(String, Delivery)>>::new(),
            |mut chunks, group| {
                match chunks.last_mut() {
                    Some(last) if last.len() + group.len() <= 500 => last.extend(group),
                    _ => chunks.push(group.iter().collect()),
                }
                chunks
            },
        ) {
            let mut pipe = redis::pipe();
            let legacy = self.legacy_retries()?;
            self.requeue(&mut pipe, &chunk, due_ms, legacy);
            self.with(|c| pipe.exec(c))?;
        }
        Ok(())
    }

    fn count_dead(&mut self, filter: &DeadFilter) -> Result<u64> {
        self.dead_pass(filter, false)
    }

    fn purge_dead(&mut self, filter: &DeadFilter) -> Result<u64> {
        self.dead_pass(filter, true)
    }
}

/// The dead letter stored at `key`; one without its time (written by hand)
/// takes its entry id's.
pub(super) fn dead_letter(key: &str, fields: &Fields) -> DeadLetter {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let raw = get("event").to_owned();
    let event = if get("poison") == "1" {
        Err(raw)
    } else {
        serde_json::from_str::<Event>(&raw).map_err(|_| raw)
    };
    DeadLetter {
        event,
        dest: get("dest").to_owned(),
        attempts: get("attempts").parse().unwrap_or(0),
        error: get("error").to_owned(),
        at_ms: get("at").parse().unwrap_or_else(|_| parse_id(key).0 as i64),
    }
}
