//! The settler's side of the destinations' breakers (see
//! [`crate::breaker`]): what this worker's sends came to, noted per
//! destination as reports arrive and told to the queue after each settle —
//! one read and one compare-and-swap per destination that failed (or that
//! has failures counted), never one per delivery. The worker whose swap
//! opens a breaker raises its one alert; the one whose probe answers closes
//! it and says so once.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Report;
use super::gate::{Closed, Gate};
use crate::alert;
use crate::breaker::{self, Change, Seen, Settings, Verdict};
use crate::event::{format_ts_ms, now_ms};
use crate::queue::{Hold, HoldKind, RawHold, Result, Settling};
use crate::route::Routes;
use crate::sanitize::escape;

/// How many times a swap lost to another worker is read and tried again.
const TRIES: usize = 8;

/// What this worker saw of each destination since it last told the queue.
pub struct Breakers {
    /// The held destinations: an open breaker closes it here at once.
    pub gate: Arc<Gate>,
    /// This worker, as a probe names it.
    pub me: String,
    seen: BTreeMap<String, Seen>,
}

impl Breakers {
    pub fn new(gate: Arc<Gate>, me: String) -> Breakers {
        Breakers {
            gate,
            me,
            seen: BTreeMap::new(),
        }
    }

    /// Notes what a lane's send says of its destination's health.
    pub fn note(&mut self, routes: &Routes, report: &Report) {
        let Report::Sent {
            dest, jobs, answer, ..
        } = report
        else {
            return;
        };
        let route = routes.get(*dest);
        if jobs.is_empty() || route.breaker().is_none() {
            return;
        }
        match breaker::verdict(answer) {
            Verdict::Unsent => {}
            verdict => self
                .seen
                .entry(route.name().to_owned())
                .or_default()
                .note(verdict),
        }
    }

    /// Tells the queue what was seen; raises the alert of a breaker this
    /// opened (unless `alerts` is off). A failure costs an update, never a
    /// delivery: it is logged and forgotten.
    pub fn flush(&mut self, queue: &mut dyn Settling, routes: &Routes, alerts: bool) {
        for (dest, seen) in std::mem::take(&mut self.seen) {
            let Some(settings) = routes.named(&dest).and_then(|r| r.breaker()) else {
                continue;
            };
            // A delivered send changes nothing where nothing is counted.
            if !seen.has_failures()
                && !self.gate.counting(&dest)
                && self.gate.closed(&dest).is_none()
            {
                continue;
            }
            match self.record(queue, &dest, &seen, settings) {
                Ok((stored, change)) => self.announce(queue, &dest, stored, change, alerts),
                Err(e) => log::warn!(
                    "cannot tell the breaker of {} what its sends came to: {e}",
                    escape(&dest)
                ),
            }
        }
    }

    /// Applies `seen` to `dest`'s stored breaker by compare-and-swap: the
    /// breaker as it then stands, and what this worker changed.
    fn record(
        &self,
        queue: &mut dyn Settling,
        dest: &str,
        seen: &Seen,
        settings: Settings,
    ) -> Result<(Option<Hold>, Option<Change>)> {
        for _ in 0..TRIES {
            let raw = queue.hold_raw(dest, HoldKind::Breaker)?;
            // One that cannot be read is replaced.
            let current = raw.as_ref().and_then(|json| {
                let raw = RawHold {
                    dest: dest.to_owned(),
                    kind: HoldKind::Breaker.as_str().to_owned(),
                    json: json.clone(),
                };
                Hold::decode(&raw).ok().map(|(_, hold)| hold)
            });
            let Some(next) =
                breaker::after_sends(current.as_ref(), seen, settings, &self.me, now_ms())
            else {
                return Ok((current, None));
            };
            if queue.swap_hold(dest, HoldKind::Breaker, raw.as_deref(), next.hold.as_ref())? {
                return Ok((next.hold, next.change));
            }
        }
        Ok((None, None))
    }

    /// Holds `dest` here at once when its breaker holds it, and says what
    /// this worker changed.
    fn announce(
        &self,
        queue: &mut dyn Settling,
        dest: &str,
        stored: Option<Hold>,
        change: Option<Change>,
        alerts: bool,
    ) {
        let Some(hold) = stored.filter(|h| h.in_force(now_ms())) else {
            if change == Some(Change::Closed) {
                log::info!(
                    "{}: the probe was answered, breaker closed: sending what waited",
                    escape(dest)
                );
            }
            return;
        };
        let why = hold.why();
        self.gate.close_now(
            dest,
            Closed {
                due_ms: hold.since_ms,
                why: format!("held: {why}"),
                probe: None,
            },
        );
        let Some(breaker) = hold.breaker() else {
            return;
        };
        match change {
            Some(Change::Opened) => {
                log::warn!(
                    "{}: {}; its deliveries wait, no attempt spent",
                    escape(dest),
                    escape(&why)
                );
                if alerts {
                    let down = alert::down(dest, &breaker.error, hold.since_ms);
                    if let Err(e) = queue.append(&[down]) {
                        log::warn!("cannot raise the alert that {} is down: {e}", escape(dest));
                    }
                }
            }
            Some(Change::Reopened) => log::warn!(
                "{}: the probe failed ({}); breaker open again until {}",
                escape(dest),
                escape(&breaker.error),
                format_ts_ms(breaker.probe_at_ms)
            ),
            _ => {}
        }
    }
}
