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
//!   now, negative when overdue; both null when none), and `held`: how
//!   many of them are for a destination not in the config, which no
//!   worker with this config claims (null under `--watch`);
//! - `dead`: `{"total", "by_destination": [{"destination", "error",
//!   "count"}]}`, most first (`destination` is `*` for an event that could
//!   not be delivered anywhere);
//! - `destinations`: `[{"name", "kind", "target", "events"}]`, with `target`
//!   redacted and `events` the routing globs;
//! - `destinations_error`: why the destinations cannot be used, or null;
//! - `held`: `[{"destination", "reason", "by", "since", "until",
//!   "waiting"}]`, the destinations held now (`reason` is `paused` or
//!   `breaker`; `until` null until resumed; `by` null for a breaker) and
//!   how many deliveries wait for each;
//! - `breakers`: `[{"destination", "state", "since", "until", "failures",
//!   "error", "waiting"}]`, every breaker not closed with a clean count:
//!   `state` is `open` (until `until`, then a probe), `probing` or `closed`
//!   (with `failures` consecutive failures counted so far);
//! - with `--watch`, the same object once a second, one per line (JSON
//!   Lines), each destination's `per_second` filled in from the second on.
//!
//! Each destination also has `rate` (its limit, such as `"1/s"`, or null for
//! unlimited), `delivered` and `rate_limited` (requests answered "too many
//! requests"): running totals of every worker, kept by the queue. Its
//! `per_second` is null except under `--watch`.

mod text;
mod watch;

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Context, print};
use crate::cli::{Format, StatusArgs};
use crate::event::{format_ts_ms, now_ms};
use crate::queue::hold::{self, HoldReason};
use crate::queue::{Hold, Queue};
use crate::queue::{Stats, Tally};
use crate::setup::Setup;

pub fn run(ctx: &Context, args: StatusArgs) -> anyhow::Result<()> {
    let config = ctx.setup()?;
    let mut queue = config.open_queue()?;
    if args.watch {
        return watch::run(queue.as_mut(), config, args.format);
    }
    let stats = queue.stats()?;
    let unconfigured = unconfigured(queue.as_mut(), config, stats.retries)?;
    let held = read_held(queue.as_mut())?;
    let mut status = Status::new(stats, queue.describe(), config, None).with_held(held);
    status.unconfigured = unconfigured;
    match args.format {
        Format::Json => print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&status.json())?
        )),
        Format::Table => print(&status.table()),
    }
}

/// A hold on a destination, with how many deliveries wait for it.
struct Held {
    dest: String,
    hold: Hold,
    waiting: u64,
}

/// The holds in force now, and every breaker that counted failures.
#[derive(Default)]
struct Holding {
    held: Vec<Held>,
    /// Breakers stored (open, probing, or closed with failures counted),
    /// each with what waits while it holds its destination.
    breakers: Vec<Held>,
}

/// The holds in force now, each with what waits for its destination, and
/// the breakers stored.
fn read_held(queue: &mut dyn Queue) -> Result<Holding, crate::queue::QueueError> {
    let now = now_ms();
    let stored = queue.holds()?;
    let mut holding = Holding::default();
    for (dest, hold) in &stored {
        if hold.breaker().is_some() {
            let waiting = match hold.in_force(now) {
                true => queue.waiting(dest)?,
                false => 0,
            };
            holding.breakers.push(Held {
                dest: dest.clone(),
                hold: hold.clone(),
                waiting,
            });
        }
    }
    for (dest, holds) in hold::in_force(stored, now) {
        let waiting = queue.waiting(&dest)?;
        for hold in holds {
            holding.held.push(Held {
                dest: dest.clone(),
                hold,
                waiting,
            });
        }
    }
    Ok(holding)
}

/// Everything `status` shows, read once.
struct Status<'a> {
    location: String,
    stats: Stats,
    now_ms: i64,
    config: &'a Setup,
    /// Deliveries a second by destination since the previous reading, under
    /// `--watch`.
    rates: Option<BTreeMap<String, f64>>,
    /// Retries for destinations not in the config, when counted.
    unconfigured: Option<u64>,
    /// The holds in force (a paused destination, an open breaker).
    held: Vec<Held>,
    /// The breakers stored (see [`Holding`]).
    breakers: Vec<Held>,
}

/// How many of the `retries` scheduled are for a destination not in the
/// config: a worker claims none of them (they wait, held, for a worker
/// configured with it, or a reload that puts it back).
fn unconfigured(
    queue: &mut dyn Queue,
    config: &Setup,
    retries: u64,
) -> anyhow::Result<Option<u64>> {
    let Ok(dests) = config.destinations() else {
        return Ok(None);
    };
    let names: Vec<String> = dests.iter().map(|d| d.name.clone()).collect();
    if names.is_empty() {
        return Ok(None);
    }
    let configured = queue.backlog(&names)?.retries;
    Ok(Some(retries.saturating_sub(configured)))
}

impl<'a> Status<'a> {
    fn new(
        mut stats: Stats,
        location: String,
        config: &'a Setup,
        rates: Option<BTreeMap<String, f64>>,
    ) -> Status<'a> {
        stats.consumers.sort_by(|a, b| a.name.cmp(&b.name));
        Status {
            location,
            stats,
            now_ms: now_ms(),
            config,
            rates,
            unconfigured: None,
            held: Vec::new(),
            breakers: Vec::new(),
        }
    }

    fn with_held(mut self, holding: Holding) -> Status<'a> {
        self.held = holding.held;
        self.breakers = holding.breakers;
        self
    }
}

impl Status<'_> {
    fn pending(&self) -> u64 {
        self.stats.consumers.iter().map(|c| c.pending).sum()
    }

    fn dead_total(&self) -> u64 {
        self.stats.dead.iter().map(|(_, _, n)| n).sum()
    }

    pub(super) fn json(&self) -> Value {
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
                        let tally = self.tally(&d.name);
                        json!({
                            "name": d.name,
                            "kind": d.kind().name(),
                            "target": d.target(),
                            "events": d.events,
                            "rate": d.rate_limit().map(|r| r.to_string()),
                            "delivered": tally.delivered,
                            "rate_limited": tally.rate_limited,
                            "per_second": self.per_second(&d.name),
                        })
                    })
                    .collect(),
                Value::Null,
            ),
            Err(e) => (Vec::new(), json!(e.to_string())),
        };
        json!({
            "backend": {"kind": self.config.backend().kind_name(), "where": self.location},
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
                "not_configured": self.unconfigured,
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
            "held": self.held.iter().map(held_json).collect::<Vec<_>>(),
            "breakers": self.breakers.iter().filter_map(breaker_json).collect::<Vec<_>>(),
        })
    }

    fn tally(&self, dest: &str) -> Tally {
        self.stats.tallies.get(dest).copied().unwrap_or_default()
    }

    /// Deliveries a second to `dest` since the previous refresh of
    /// `status --watch`; `None` otherwise, or before a second reading.
    fn per_second(&self, dest: &str) -> Option<f64> {
        self.rates.as_ref()?.get(dest).copied()
    }
}

fn held_json(held: &Held) -> Value {
    let (reason, by) = match &held.hold.reason {
        HoldReason::Paused { by } => ("paused", Some(by)),
        HoldReason::Breaker(_) => ("breaker", None),
    };
    json!({
        "destination": held.dest,
        "reason": reason,
        "by": by,
        "since": format_ts_ms(held.hold.since_ms),
        "until": held.hold.until_ms.map(format_ts_ms),
        "waiting": held.waiting,
    })
}

/// A breaker as `status --format json` shows it: its state, until when it
/// is open (before its probe), the consecutive failures and the latest
/// error, and how many deliveries it holds.
fn breaker_json(held: &Held) -> Option<Value> {
    let breaker = held.hold.breaker()?;
    let open = breaker.state == crate::breaker::State::Open;
    Some(json!({
        "destination": held.dest,
        "state": breaker.state_name(),
        "since": breaker.holds().then(|| format_ts_ms(held.hold.since_ms)),
        "until": open.then(|| format_ts_ms(breaker.probe_at_ms)),
        "failures": breaker.failures,
        "error": breaker.error,
        "waiting": held.waiting,
    }))
}
