//! `events digest`: a cron job's daily report. Reads a window of history
//! (the read `replay --since` uses), sums it up per type
//! ([`crate::digest`]) and posts it to chat destinations through their own
//! sender — their escaping, joining and size limits — or prints it.
//!
//! It posts at once rather than through the queue: a report a cron job
//! asked for either arrives while the job runs or the job fails (exit 1)
//! and says why, retrying meanwhile as the destination's policy allows.
//! The lines are joined and posted by the chat family ([`chat::messages`],
//! the destination's own sender); what an answer means is decided as for
//! any delivery ([`retry::decide`]); only the waiting is the command's.
//! Each send is taken from the destination's rate limit that the workers
//! share, and all its waiting together ends at `--max-wait`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Context, print};
use crate::cli::DigestArgs;
use crate::dest::{self, Destination, Item, chat};
use crate::digest::Digest;
use crate::error::Error;
use crate::event::{Event, Payload, now_ms};
use crate::queue::QueueError;
use crate::replay::Source;
use crate::retry::{self, Decision, RetryPolicy};
use crate::route::{Route, Routes};
use crate::setup::Setup;
use crate::template::{RenderError, Style};
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

/// Why the digest did not reach one destination.
#[derive(Debug, thiserror::Error)]
enum PostError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The destination refused it for good, or failed as often as its
    /// retry policy allows: its last answer.
    #[error("{0}")]
    Refused(String),
    #[error(
        "still refused after waiting as long as --max-wait {max_wait} allows; the last answer: {last}"
    )]
    StillRefused { max_wait: String, last: String },
    #[error("its rate limit had no send free within --max-wait {max_wait}")]
    NoSendFree { max_wait: String },
}

/// Posts the digest to `route`, its lines escaped and joined as the
/// destination does for any message ([`chat::messages`]), in as many
/// messages as its limit asks, each taken from its rate limit as a
/// worker's send is.
fn post(
    config: &Setup,
    route: &Route,
    digest: &Digest,
    deadline: &Deadline,
) -> Result<(), PostError> {
    let dest = dest::build(
        route.config(),
        &config.catalog,
        config.delivery.http_timeout,
    );
    let event = Arc::new(Event::new("events.digest", Payload::new()));
    let items: Vec<Item> = digest
        .lines(dest.style())?
        .into_iter()
        .map(|body| Item {
            event: Arc::clone(&event),
            body,
        })
        .collect();
    let limiter = match route.rate() {
        Some(rate) => Some(Limiter::new(config.open_queue()?, rate)),
        None => None,
    };
    let mut poster = Poster {
        dest: dest.as_ref(),
        policy: route.policy(),
        limiter,
        deadline,
    };
    for message in chat::messages(&items, dest.batch_limit()) {
        poster.send(message)?;
    }
    Ok(())
}

/// When the digest stops waiting: `--max-wait` after it started.
struct Deadline {
    at: Instant,
    max_wait: Duration,
}

impl Deadline {
    /// Sleeps `wait`, unless that would end past the deadline: then gives
    /// up at once, with the destination's `last` answer if it gave one.
    fn sleep(&self, wait: Duration, last: Option<&str>) -> Result<(), PostError> {
        let ends = Instant::now().checked_add(wait);
        if ends.is_none_or(|ends| ends > self.at) {
            let max_wait = humantime::format_duration(self.max_wait).to_string();
            return Err(match last {
                Some(last) => PostError::StillRefused {
                    max_wait,
                    last: last.to_owned(),
                },
                None => PostError::NoSendFree { max_wait },
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
    /// what becomes of it decided as for any delivery ([`retry::decide`]):
    /// a `Retry-After` waited out, a transient failure retried within the
    /// destination's attempt budget, until the deadline.
    fn send(&mut self, items: &[Item]) -> Result<(), PostError> {
        let mut rng = fastrand::Rng::new();
        let mut attempts = 0;
        let mut last: Option<String> = None;
        loop {
            self.take_send(last.as_deref())?;
            let answer = self.dest.send(items).of(0);
            let wait = match retry::decide(&answer.attempt, attempts, self.policy, &mut rng) {
                Decision::Delivered => return Ok(()),
                Decision::Dead { error, .. } => return Err(PostError::Refused(error)),
                Decision::Retry {
                    attempts: spent,
                    wait,
                    spent: counted,
                    error,
                } => {
                    if counted {
                        log::debug!("{}: {error}; trying again", self.dest.name());
                    }
                    attempts = spent;
                    last = Some(error);
                    wait
                }
            };
            self.deadline.sleep(wait, last.as_deref())?;
        }
    }

    /// Takes a send from the rate limit, if there is one, waiting for it.
    fn take_send(&mut self, last: Option<&str>) -> Result<(), PostError> {
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
    fn a_wait_past_the_deadline_gives_up_at_once_saying_why() {
        let deadline = Deadline {
            at: Instant::now(),
            max_wait: Duration::from_secs(2),
        };
        let started = Instant::now();
        let long = Duration::from_secs(60);
        assert_eq!(
            deadline.sleep(long, None).unwrap_err().to_string(),
            "its rate limit had no send free within --max-wait 2s"
        );
        assert_eq!(
            deadline
                .sleep(long, Some("HTTP 429 slow down"))
                .unwrap_err()
                .to_string(),
            "still refused after waiting as long as --max-wait 2s allows; the last answer: HTTP 429 slow down"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
