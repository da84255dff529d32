//! Dispatching what the reader claimed: each entry's deliveries to the
//! lanes of the destinations it is routed to, each retry to its own; poison
//! and undeliverable events to the settler as dead letters, and deliveries
//! for a destination that is held (but for its breaker's one probe), far
//! behind (or served by another worker) back to the retry set.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::gate::Step;
use super::reader::Reader;
use super::{Job, Origin, Report};
use crate::dest::{Attempt, Item};
use crate::event::{Event, now_ms};
use crate::queue::{DeadLetter, Poison, RetryClaim, StreamEntry};
use crate::route::{POISON_DEST, Route, RouteId};
use crate::template::Style;

/// How far behind a destination's lanes may fall before its new deliveries
/// wait in the retry set instead, so a slow destination (Slack working
/// through a burst at one message a second, a webhook timing out) never
/// fills the window and stalls the others.
const BEHIND: Duration = Duration::from_secs(5);
/// When a delivery parked for a destination that is behind comes back.
const DEFER_BEHIND: Duration = Duration::from_secs(1);

impl Reader<'_> {
    pub(super) fn dispatch_entries(&mut self, mut entries: Vec<StreamEntry>) {
        entries.retain(|e| self.held.claim_entry(&e.key));
        self.inflight.fetch_add(entries.len(), Ordering::SeqCst);
        for entry in entries {
            let key = entry.key;
            let event = match entry.event {
                Ok(event) => event,
                Err(poison) => {
                    self.report(Report::Poison {
                        origin: Origin::Entry(key),
                        letter: poison_letter(poison),
                    });
                    continue;
                }
            };
            if let Err(e) = self.current.catalog.render(&event, Style::Plain) {
                self.report(Report::Poison {
                    origin: Origin::Entry(key),
                    letter: unrenderable_letter(event, e.to_string()),
                });
                continue;
            }
            let targets: Vec<RouteId> = self.current.routes.of(&event).map(Route::id).collect();
            self.report(Report::Entry {
                key: key.clone(),
                deliveries: targets.len(),
            });
            let event = Arc::new(event);
            for route in targets {
                self.send_job(route, Origin::Entry(key.clone()), Arc::clone(&event), 0);
            }
        }
    }

    pub(super) fn dispatch_retries(&mut self, claims: Vec<RetryClaim>) {
        for RetryClaim { token, delivery } in claims {
            let Some(route) = self.current.routes.named(&delivery.dest).map(Route::id) else {
                // Only retries to configured destinations are claimed; one
                // that is not stays unsettled, held in the queue, and
                // falls due again when its claim runs out.
                log::debug!("{}: not configured, left in the queue", delivery.dest);
                continue;
            };
            self.inflight.fetch_add(1, Ordering::SeqCst);
            self.held.claim_retry(&token);
            let event = Arc::new(delivery.event);
            self.send_job(route, Origin::Retry(token), event, delivery.attempts);
        }
    }

    pub(super) fn send_job(
        &self,
        route: RouteId,
        origin: Origin,
        event: Arc<Event>,
        attempts: u32,
    ) {
        let served = &self.routes[route];
        let name = served.route.name();
        if let Some(closed) = self.gate.closed(name)
            && !(served.sender.is_some() && self.gate.take_probe(name, Step::Dispatch))
        {
            let item = Item {
                event,
                body: String::new(),
            };
            let job = Job {
                origin,
                item,
                attempts,
                queued_at: Instant::now(),
            };
            return self.report(Report::Held {
                dest: route,
                jobs: vec![job],
                closed,
            });
        }
        let Some(dest) = &served.sender else {
            // Another worker delivers there: leave it in the retry set, due now.
            let reason = "left for a worker that delivers there (--only)".into();
            return self.unsent(
                route,
                origin,
                event,
                attempts,
                Attempt::Deferred(Duration::ZERO, reason),
            );
        };
        if !served.jobs.is_empty() && served.lag.behind() > BEHIND {
            // This destination is far behind: park the delivery in the retry
            // set so the entry settles and the others' deliveries keep
            // flowing.
            let reason = format!("{} is behind", served.route.name());
            let wait = Attempt::Deferred(DEFER_BEHIND, reason);
            return self.unsent(route, origin, event, attempts, wait);
        }
        match dest.prepare(&event) {
            Ok(body) => {
                let job = Job {
                    origin,
                    item: Item { event, body },
                    attempts,
                    queued_at: Instant::now(),
                };
                let _ = served.jobs.send(job);
            }
            Err(e) => self.unsent(route, origin, event, attempts, Attempt::Permanent(e.0)),
        }
    }

    /// Settles a delivery that was never sent, with `attempt` as its outcome.
    pub(super) fn unsent(
        &self,
        dest: RouteId,
        origin: Origin,
        event: Arc<Event>,
        attempts: u32,
        attempt: Attempt,
    ) {
        let item = Item {
            event,
            body: String::new(),
        };
        self.report(Report::Sent {
            dest,
            jobs: vec![Job {
                origin,
                item,
                attempts,
                queued_at: Instant::now(),
            }],
            answer: attempt.into(),
            elapsed: Duration::ZERO,
        });
    }
}

/// The dead letter of an entry that does not decode: its raw text is kept.
fn poison_letter(poison: Poison) -> DeadLetter {
    DeadLetter {
        event: Err(poison.raw),
        dest: POISON_DEST.into(),
        attempts: 0,
        error: poison.reason,
        at_ms: now_ms(),
    }
}

/// The dead letter of an event the catalog cannot render.
fn unrenderable_letter(event: Event, reason: String) -> DeadLetter {
    DeadLetter {
        event: Ok(event),
        dest: POISON_DEST.into(),
        attempts: 0,
        error: reason,
        at_ms: now_ms(),
    }
}
