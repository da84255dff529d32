//! `events status`: the health of the pipeline at a glance, for on-call after
//! an outage: how much is waiting, who holds what, what is scheduled for
//! retry, what gave up and why, and where deliveries go. Read-only, and safe
//! to paste into a ticket: no password, webhook path, write key or signing
//! secret is ever printed.
//!
//! `--format json` prints one object whose keys are stable:
//!
//! - `backend`: `{"kind": "redis" | "sqlite", "where": TEXT}`, where the
//!   queue lives (password hidden);
//! - `stream`: `{"length", "lag", "oldest", "newest"}`: entries in the
//!   stream (history included), entries no worker has claimed yet, and the
//!   oldest and newest event as `{"id", "ts"}` (null when empty);
//! - `consumers`: `[{"name", "pending", "idle_ms"}]` by name, the workers
//!   of the consumer group and how long since each was last active;
//! - `pending`: entries claimed but not yet settled, all consumers together;
//! - `retries`: `{"scheduled", "next_due", "next_due_in_ms"}`: deliveries
//!   waiting for a retry, and when the earliest is due (RFC 3339, and ms from
//!   now, negative when overdue; both null when none);
//! - `dead`: `{"total", "by_destination": [{"destination", "error",
//!   "count"}]}`, most first (`destination` is `*` for an event that could
//!   not be delivered anywhere);
//! - `destinations`: `[{"name", "kind", "target", "events"}]`, with `target`
//!   redacted and `events` the routing globs;
//! - `destinations_error`: why the destinations cannot be used, or null.

use serde_json::{Value, json};

use super::{Context, print, table};
use crate::cli::{Format, StatusArgs};
use crate::config::{Backend, Config};
use crate::event::{format_ts_ms, now_ms};
use crate::queue::{self, Admin, Stats};
use crate::sanitize::escape;

/// A retry overdue by less than this is simply "due now".
const OVERDUE_MS: i64 = 5_000;

pub fn run(ctx: &Context, args: StatusArgs) -> anyhow::Result<()> {
    let config = ctx.config()?;
    let mut queue: Box<dyn Admin> = queue::open(config)?;
    let mut stats = queue.stats()?;
    stats.consumers.sort_by(|a, b| a.name.cmp(&b.name));
    let status = Status {
        location: queue.describe(),
        stats,
        now_ms: now_ms(),
        config,
    };
    match args.format {
        Format::Json => print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&status.json())?
        )),
        Format::Table => print(&status.table()),
    }
}

/// Everything `status` shows, read once.
struct Status<'a> {
    location: String,
    stats: Stats,
    now_ms: i64,
    config: &'a Config,
}

impl Status<'_> {
    fn pending(&self) -> u64 {
        self.stats.consumers.iter().map(|c| c.pending).sum()
    }

    fn dead_total(&self) -> u64 {
        self.stats.dead.iter().map(|(_, _, n)| n).sum()
    }

    fn json(&self) -> Value {
        let s = &self.stats;
        let end = |e: &Option<(String, String)>| match e {
            Some((id, ts)) => json!({"id": id, "ts": ts}),
            None => Value::Null,
        };
        let (destinations, destinations_error) = match self.config.destinations() {
            Ok(dests) => (
                dests
                    .iter()
                    .map(|d| {
                        json!({
                            "name": d.name,
                            "kind": d.kind().as_str(),
                            "target": d.target(),
                            "events": d.events,
                        })
                    })
                    .collect(),
                Value::Null,
            ),
            Err(e) => (Vec::new(), json!(e.to_string())),
        };
        json!({
            "backend": {"kind": backend_kind(&self.config.backend), "where": self.location},
            "stream": {
                "length": s.length,
                "lag": s.lag,
                "oldest": end(&s.oldest),
                "newest": end(&s.newest),
            },
            "consumers": s.consumers.iter().map(|c| json!({
                "name": c.name,
                "pending": c.pending,
                "idle_ms": c.idle_ms,
            })).collect::<Vec<_>>(),
            "pending": self.pending(),
            "retries": {
                "scheduled": s.retries,
                "next_due": s.next_retry_ms.map(format_ts_ms),
                "next_due_in_ms": s.next_retry_ms.map(|due| due - self.now_ms),
            },
            "dead": {
                "total": self.dead_total(),
                "by_destination": s.dead.iter().map(|(dest, error, count)| json!({
                    "destination": dest,
                    "error": error,
                    "count": count,
                })).collect::<Vec<_>>(),
            },
            "destinations": destinations,
            "destinations_error": destinations_error,
        })
    }

    /// Small sections, each a heading line and, when it lists anything, a
    /// table.
    fn table(&self) -> String {
        let s = &self.stats;
        let mut out = format!("Queue: {}\n", self.location);

        let ends = [("oldest", &s.oldest), ("newest", &s.newest)];
        let ends = ends.iter().filter_map(|(label, end)| {
            let (id, ts) = end.as_ref()?;
            Some(vec![
                label.to_string(),
                escape(id).into(),
                escape(ts).into(),
            ])
        });
        let stream = match s.length {
            0 => "Stream: empty".to_owned(),
            n => format!("Stream: {n} events, {} unread", s.lag),
        };
        table::section(&mut out, stream, &["", "EVENT ID", "TIME"], ends.collect());

        let consumers = match s.consumers.len() {
            0 => "Consumers: none".to_owned(),
            n => format!("Consumers: {n}, {} pending", self.pending()),
        };
        let rows = s.consumers.iter().map(|c| {
            let name = escape(&c.name).into_owned();
            vec![name, c.pending.to_string(), human(c.idle_ms)]
        });
        table::section(
            &mut out,
            consumers,
            &["NAME", "PENDING", "IDLE"],
            rows.collect(),
        );

        let retries = match s.next_retry_ms {
            _ if s.retries == 0 => "Retries: none scheduled".to_owned(),
            None => format!("Retries: {} scheduled", s.retries),
            Some(due) => format!(
                "Retries: {} scheduled, {}",
                s.retries,
                next_retry(due - self.now_ms)
            ),
        };
        table::section(&mut out, retries, &[], Vec::new());

        let dead = match self.dead_total() {
            0 => "Dead letters: none".to_owned(),
            n => format!("Dead letters: {n}"),
        };
        let rows = s.dead.iter().map(|(dest, error, count)| {
            vec![escape(dest).into(), escape(error).into(), count.to_string()]
        });
        table::section(
            &mut out,
            dead,
            &["DESTINATION", "ERROR", "COUNT"],
            rows.collect(),
        );

        let (heading, rows) = match self.config.destinations() {
            Err(e) => (format!("Destinations: cannot be used: {e}"), Vec::new()),
            Ok(dests) => (
                format!("Destinations: {}", dests.len()),
                dests
                    .iter()
                    .map(|d| {
                        let kind = d.kind().as_str().to_owned();
                        vec![d.name.clone(), kind, d.target(), d.events.join(" ")]
                    })
                    .collect(),
            ),
        };
        table::section(
            &mut out,
            heading,
            &["NAME", "KIND", "TARGET", "EVENTS"],
            rows,
        );
        out
    }
}

fn backend_kind(backend: &Backend) -> &'static str {
    match backend {
        Backend::Redis { .. } => "redis",
        Backend::Sqlite { .. } => "sqlite",
        Backend::Sentinel { .. } => "redis",
    }
}

/// `next retry in 2m`, `next retry due now`, or overdue (no worker running?).
fn next_retry(in_ms: i64) -> String {
    if in_ms > 0 {
        format!("next retry in {}", human(in_ms.unsigned_abs()))
    } else if -in_ms < OVERDUE_MS {
        "next retry due now".to_owned()
    } else {
        format!(
            "next retry overdue by {} (is a worker running?)",
            human(in_ms.unsigned_abs())
        )
    }
}

/// A duration in its largest whole unit: `45s`, `3m`, `5h`, `12d`.
fn human(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..172_800 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_say_them() {
        assert_eq!(human(999), "0s");
        assert_eq!(human(3_000), "3s");
        assert_eq!(human(125_000), "2m");
        assert_eq!(human(3 * 3_600_000), "3h");
        assert_eq!(human(9 * 86_400_000), "9d");
        assert_eq!(next_retry(120_000), "next retry in 2m");
        assert_eq!(next_retry(-1_000), "next retry due now");
        assert!(next_retry(-600_000).starts_with("next retry overdue by 10m"));
    }
}
