//! `events digest`: a cron job's daily report. Reads a window of history
//! (the read `replay --since` uses), sums it up per type
//! ([`crate::digest`]) and posts it to chat destinations through their own
//! sender — their escaping, joining and size limits — or prints it.
//!
//! It posts at once rather than through the queue: a report a cron job
//! asked for either arrives while the job runs or the job fails (exit 1)
//! and says why, retrying meanwhile as the destination's policy allows.
//! Each send is taken from the destination's rate limit that the workers
//! share, and all its waiting together ends at `--max-wait`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Context, print};
use crate::cli::DigestArgs;
use crate::dest::{self, Attempt, BatchLimit, Destination, Item};
use crate::digest::Digest;
use crate::error::Error;
use crate::event::{Event, Payload, now_ms};
use crate::replay::Source;
use crate::retry::RetryPolicy;
use crate::route::{Route, Routes};
use crate::setup::Setup;
use crate::template::Style;
use crate::worker::lane::Limiter;

pub fn run(ctx: &Context, args: DigestArgs) -> anyhow::Result<()> {
    let config = ctx.setup()?;
    let Source::History { from_ms, until_ms } = Source::new(
        false,
        Some(&args.since),
        args.until.as_deref(),
        None,
        now_ms(),
    )
    .map_err(Error::from)?
    else {
        return Err(Error::Usage("--since is required".into()).into());
    };
    let routes = config.routes().map_err(Error::from)?;
    let targets = targets(&routes, &args.to, args.dry_run)?;
    let mut digest = Digest::new(from_ms, until_ms);
    config
        .open_queue()?
        .history(from_ms, until_ms, &mut |events| {
            for event in &events {
                digest.add(event, &config.catalog);
            }
            true
        })?;
    if args.dry_run {
        let mut out = digest.lines(Style::Plain)?.join("\n");
        out.push('\n');
        return print(&out);
    }
    let deadline = Deadline {
        at: Instant::now() + args.max_wait,
        max_wait: args.max_wait,
    };
    let mut failed = Vec::new();
    for route in targets {
        if let Err(reason) = post(config, route, &digest, &deadline) {
            log::error!("the digest was not delivered to {}: {reason}", route.name());
            failed.push(route.name());
        } else if !ctx.quiet {
            log::info!(
                "sent the digest of {} events to {}",
                digest.total(),
                route.name()
            );
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("the digest was not delivered to {}", failed.join(", "))
    }
}

/// The chat destinations `--to` names, or every configured one.
fn targets<'r>(routes: &'r Routes, to: &[String], dry_run: bool) -> anyhow::Result<Vec<&'r Route>> {
    if to.is_empty() {
        let chat: Vec<&Route> = routes.iter().filter(|r| r.kind().is_chat()).collect();
        if chat.is_empty() && !dry_run {
            return Err(Error::Usage(
                "no chat destination (Slack, Discord, Teams) is configured to send the digest to; pass --dry-run to print it".into(),
            )
            .into());
        }
        return Ok(chat);
    }
    let ids = routes.resolve("--to", to).map_err(Error::from)?;
    ids.iter()
        .map(|&id| {
            let route = routes.get(id);
            if route.kind().is_chat() {
                Ok(route)
            } else {
                Err(Error::Usage(format!(
                    "--to {}: a digest goes to chat destinations (Slack, Discord, Teams), and this is a {} destination",
                    route.name(),
                    route.kind().name()
                ))
                .into())
            }
        })
        .collect()
}

/// Posts the digest to `route`, its lines escaped and joined as the
/// destination does for any message, in as many messages as its limit asks,
/// each taken from its rate limit as a worker's send is.
fn post(config: &Setup, route: &Route, digest: &Digest, deadline: &Deadline) -> Result<(), String> {
    let dest = dest::build(
        route.config(),
        &config.catalog,
        config.delivery.http_timeout,
    );
    let lines = digest.lines(dest.style()).map_err(|e| e.to_string())?;
    let event = Arc::new(Event::new("events.digest", Payload::new()));
    let items: Vec<Item> = lines
        .into_iter()
        .map(|body| Item {
            event: Arc::clone(&event),
            body,
        })
        .collect();
    let limiter = match route.rate() {
        Some(rate) => Some(Limiter::new(
            config.open_queue().map_err(|e| e.to_string())?,
            rate,
        )),
        None => None,
    };
    let mut poster = Poster {
        dest: dest.as_ref(),
        policy: route.policy(),
        limiter,
        deadline,
    };
    for batch in batches(&items, dest.batch_limit()) {
        poster.send(batch)?;
    }
    Ok(())
}

/// `items` cut into runs that each fit `limit` (one item at least).
fn batches(items: &[Item], limit: BatchLimit) -> Vec<&[Item]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let full = i - start >= limit.items || bytes + item.body.len() > limit.bytes;
        if i > start && full {
            out.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += item.body.len();
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

/// When the digest stops waiting: `--max-wait` after it started.
struct Deadline {
    at: Instant,
    max_wait: Duration,
}

impl Deadline {
    /// Sleeps `wait`, unless that would end past the deadline: then gives
    /// up at once, with the destination's `last` answer if it gave one.
    fn sleep(&self, wait: Duration, last: Option<&str>) -> Result<(), String> {
        let ends = Instant::now().checked_add(wait);
        if ends.is_none_or(|ends| ends > self.at) {
            let max_wait = humantime::format_duration(self.max_wait);
            return Err(match last {
                Some(answer) => format!(
                    "still refused after waiting as long as --max-wait {max_wait} allows; the last answer: {answer}"
                ),
                None => format!("its rate limit had no send free within --max-wait {max_wait}"),
            });
        }
        std::thread::sleep(wait);
        Ok(())
    }
}

/// Sends one destination's messages.
struct Poster<'a> {
    dest: &'a dyn Destination,
    policy: &'a RetryPolicy,
    /// The destination's rate limit, shared with every worker.
    limiter: Option<Limiter>,
    deadline: &'a Deadline,
}

impl Poster<'_> {
    /// Sends one message, each attempt a send taken from the rate limit,
    /// waiting out `Retry-After` and retrying transient failures within the
    /// destination's attempt budget, until the deadline.
    fn send(&mut self, items: &[Item]) -> Result<(), String> {
        let mut attempts = 0;
        let mut last: Option<String> = None;
        loop {
            self.take_send(last.as_deref())?;
            let wait = match self.dest.send(items).of(0).attempt {
                Attempt::Delivered => return Ok(()),
                Attempt::RetryAfter(wait, reason) | Attempt::Deferred(wait, reason) => {
                    last = Some(reason);
                    wait
                }
                Attempt::Transient(reason) => {
                    attempts += 1;
                    if self.policy.exhausted(attempts) {
                        return Err(reason);
                    }
                    log::debug!("{}: {reason}; trying again", self.dest.name());
                    last = Some(reason);
                    self.policy.delay(attempts)
                }
                Attempt::Permanent(reason) => return Err(reason),
                // `of` never gives `Each`.
                Attempt::Each(_) => return Err("the destination gave no outcome".into()),
            };
            self.deadline.sleep(wait, last.as_deref())?;
        }
    }

    /// Takes a send from the rate limit, if there is one, waiting for it.
    fn take_send(&mut self, last: Option<&str>) -> Result<(), String> {
        let Some(limiter) = &mut self.limiter else {
            return Ok(());
        };
        while let Some(wait) = limiter.take(self.dest.name()) {
            self.deadline.sleep(wait, last)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_to_the_item_and_byte_limits() {
        let event = Arc::new(Event::new("events.digest", Payload::new()));
        let items: Vec<Item> = [5, 5, 5, 20, 1]
            .iter()
            .map(|&n| Item {
                event: Arc::clone(&event),
                body: "x".repeat(n),
            })
            .collect();
        let sizes =
            |limit| -> Vec<usize> { batches(&items, limit).iter().map(|b| b.len()).collect() };
        assert_eq!(
            sizes(BatchLimit {
                items: 2,
                bytes: 100
            }),
            [2, 2, 1]
        );
        assert_eq!(
            sizes(BatchLimit {
                items: 10,
                bytes: 15
            }),
            [3, 1, 1]
        );
        assert_eq!(
            sizes(BatchLimit {
                items: 10,
                bytes: 1000
            }),
            [5]
        );
    }
}
