//! What `status` and the metrics endpoint read: the stream's ends and lag,
//! the consumers, the retries and dead letters counted, and each
//! destination's running totals (`{events}:tallies`).

use std::collections::BTreeMap;

use redis::Value;

use super::{GROUP, RedisQueue, array, int, map, raw_entries, raw_entry, text};
use crate::queue::entry;
use crate::queue::{ConsumerStats, Health, Result, Stats, Tally};

/// A field of the tallies hash: `delivered:<destination>`.
const DELIVERED: &str = "delivered:";
/// A field of the tallies hash: `rate_limited:<destination>`.
const RATE_LIMITED: &str = "rate_limited:";

impl Health for RedisQueue {
    fn stats(&mut self) -> Result<Stats> {
        let stream = self.stream.clone();
        let (length, first, last): (u64, Value, Value) = self.with(|c| {
            redis::pipe()
                .cmd("XLEN")
                .arg(&stream)
                .cmd("XRANGE")
                .arg(&stream)
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(1)
                .cmd("XREVRANGE")
                .arg(&stream)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query(c)
        })?;
        let ends = |v: Value| {
            raw_entries(v)
                .into_iter()
                .next()
                .map(|(key, fields)| entry::identity(&raw_entry(key, fields)))
        };
        let mut stats = Stats {
            length,
            oldest: ends(first),
            newest: ends(last),
            ..Stats::default()
        };
        if let Some(group) = self.group_info()? {
            stats.lag = self.unread(&group)?;
            let consumers: Value = self.with(|c| {
                redis::cmd("XINFO")
                    .arg("CONSUMERS")
                    .arg(&stream)
                    .arg(GROUP)
                    .query(c)
            })?;
            stats.consumers = array(consumers)
                .into_iter()
                .map(map)
                .map(|c| ConsumerStats {
                    name: c.get("name").map(text).unwrap_or_default(),
                    pending: c.get("pending").map(int).unwrap_or(0),
                    idle_ms: c.get("idle").map(int).unwrap_or(0),
                })
                .collect();
        } else {
            stats.lag = length;
        }
        (stats.retries, stats.next_retry_ms) = self.retry_summary(&[])?;
        stats.dead = self.dead_counts()?;
        stats.tallies = self.tallies()?;
        Ok(stats)
    }
}

impl RedisQueue {
    fn tallies_key(&self) -> String {
        format!("{}:tallies", self.prefix)
    }

    /// Adds to `pipe` the increments of each destination's totals.
    pub(super) fn add_tallies(
        &self,
        pipe: &mut redis::Pipeline,
        tallies: &BTreeMap<String, Tally>,
    ) {
        let key = self.tallies_key();
        for (dest, tally) in tallies {
            for (field, n) in [
                (DELIVERED, tally.delivered),
                (RATE_LIMITED, tally.rate_limited),
            ] {
                if n > 0 {
                    pipe.cmd("HINCRBY")
                        .arg(&key)
                        .arg(format!("{field}{dest}"))
                        .arg(n)
                        .ignore();
                }
            }
        }
    }

    /// Every destination's totals: one small hash, whatever the traffic.
    fn tallies(&mut self) -> Result<BTreeMap<String, Tally>> {
        let key = self.tallies_key();
        let fields: Vec<(String, String)> =
            self.with(|c| redis::cmd("HGETALL").arg(&key).query(c))?;
        let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
        for (field, n) in fields {
            // Anyone who can reach Redis can write here: what is not a
            // count counts as none.
            let n = n.parse().unwrap_or(0);
            if let Some(dest) = field.strip_prefix(DELIVERED) {
                tallies.entry(dest.to_owned()).or_default().delivered = n;
            } else if let Some(dest) = field.strip_prefix(RATE_LIMITED) {
                tallies.entry(dest.to_owned()).or_default().rate_limited = n;
            }
        }
        Ok(tallies)
    }
}
