//! The reader: claims stream entries and due retries while its window has
//! room, blocking in the queue's read (a new entry ends the wait at once),
//! and between reads does its chores on their timers ([`super::housekeeping`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::wake::Wake;
use super::{Report, Served, Stop, Worker, gate, held, routes};
use crate::catalog::Catalog;
use crate::event::now_ms;
use crate::queue::{Queue, QueueError, UnavailableReason};
use crate::route::{PerRoute, Routes};
use crate::setup::Setup;

/// Claimed entries and retries in flight at most.
const WINDOW: usize = 2000;
/// Entries claimed per read at most.
const CLAIM_BATCH: usize = 500;
/// How long one read waits for new entries at most: a stop request is
/// noticed within it (plus Redis's 100 ms timer tick, to which it rounds a
/// `BLOCK` up; an entry that arrives ends the wait at once).
const MAX_BLOCK: Duration = Duration::from_millis(500);
/// How often the retry set is looked at for retries this worker did not
/// schedule itself (a replay, another worker's `--only` leftovers); those
/// its settler schedules are claimed when due.
const RETRY_LOOK: Duration = Duration::from_millis(500);

pub(super) struct Reader<'a> {
    pub(super) worker: &'a Worker,
    pub(super) queue: &'a mut dyn Queue,
    pub(super) reports: Sender<Report>,
    /// Each route's sender, lanes and lag.
    pub(super) routes: PerRoute<Served>,
    pub(super) inflight: Arc<AtomicUsize>,
    /// What this worker holds, to renew and never dispatch twice.
    pub(super) held: Arc<held::Held>,
    /// The destinations held, as last read from the queue.
    pub(super) gate: Arc<gate::Gate>,
    pub(super) stop: Stop,
    /// What the settler tells the reader (freed slots, retries scheduled).
    pub(super) wake: Arc<Wake>,
    pub(super) unavailable_since: Option<Instant>,
    /// This process's name on the consumer name's lease.
    pub(super) holder: String,
    /// The configuration in force, which a reload replaces.
    pub(super) current: Current<'a>,
}

/// The configuration the reader claims and routes by: the one the worker
/// started with, or the last that reloaded.
pub(super) struct Current<'a> {
    pub(super) setup: Setup,
    pub(super) routes: Arc<Routes>,
    pub(super) catalog: Catalog,
    /// The destinations whose retries the reader claims.
    pub(super) claims: Vec<String>,
    /// `routes`, shared with the settler.
    pub(super) shared: routes::Shared,
    /// Every lane started, to be joined when the worker stops.
    pub(super) lanes: &'a mut Vec<std::thread::JoinHandle<()>>,
    /// The settings last said to need a restart, to say so once.
    pub(super) restart_noted: Vec<&'static str>,
}

impl Reader<'_> {
    pub(super) fn run(mut self) -> Result<(), crate::Error> {
        let consumer = self.worker.options.consumer.clone();
        let holder = self.holder.clone();
        if !self.take_name(&consumer, &holder)? {
            return Ok(());
        }
        // Nothing is sent to a held destination, from the first delivery.
        self.look_at_holds();
        // A restarted worker first finishes what it had claimed.
        while !self.stopping() {
            if let Some(entries) = self.until_available(|q| q.recover(&consumer))? {
                if !entries.is_empty() {
                    log::info!(
                        "finishing {} entries this consumer claimed before it stopped",
                        entries.len()
                    );
                }
                self.dispatch_entries(entries);
                break;
            }
        }
        let now = Instant::now();
        let mut timers = Timers {
            renewal: now + self.renew_every(),
            trim: now,
            retries: now,
            alerts: now + self.alerts_every(),
            holds: now + gate::LOOK,
        };
        let burst = self.worker.options.burst;
        while !self.stopping() {
            self.reload_if_asked();
            self.chores(&mut timers, &consumer, &holder)?;
            let now = Instant::now();
            if let Some(due) = self.wake.take_next_due() {
                timers.retries = timers.retries.min(due_instant(now, now_ms(), due));
            }
            let mut got_retries = 0;
            let room = self.room();
            if room > 0 && Instant::now() >= timers.retries && !self.current.claims.is_empty() {
                let asked = room.min(CLAIM_BATCH);
                let claimed = match self.retry_filter() {
                    Some(only) => {
                        self.until_available(|q| q.claim_retries(now_ms(), asked, &only))?
                    }
                    None => Some(Vec::new()),
                };
                let Some(claims) = claimed else { continue };
                got_retries = claims.len();
                self.dispatch_retries(claims);
                timers.retries = next_retry_look(Instant::now(), got_retries, asked);
            }
            let room = self.room();
            if room == 0 {
                self.wait_for_room(timers.next(false));
                continue;
            }
            let busy = self.inflight.load(Ordering::SeqCst) > 0;
            let block = read_wait(Instant::now(), timers.next(true), burst);
            let entries =
                self.until_available(|q| q.claim(&consumer, room.min(CLAIM_BATCH), block))?;
            let Some(entries) = entries else { continue };
            let claimed = entries.len();
            self.dispatch_entries(entries);
            if !burst || claimed > 0 || got_retries > 0 {
                continue;
            }
            if busy {
                // Nothing new: what is left is in flight.
                self.wait_for_room(timers.next(true));
            } else if self.finished()? {
                log::debug!("nothing new, pending or scheduled for retry: stopping (--burst)");
                break;
            }
        }
        Ok(())
    }

    pub(super) fn stopping(&self) -> bool {
        self.stop.requested()
    }

    /// The destinations to claim retries for (all when empty): this
    /// worker's, less those held; `None` when every one it serves is held.
    pub(super) fn retry_filter(&self) -> Option<Vec<String>> {
        gate::claimable(&self.current.claims, &self.gate.names())
    }

    pub(super) fn room(&self) -> usize {
        WINDOW.saturating_sub(self.inflight.load(Ordering::SeqCst))
    }

    /// Waits for the settler to free window slots, for `deadline` (the next
    /// chore), or for a stop request, whichever comes first.
    pub(super) fn wait_for_room(&self, deadline: Instant) {
        crossbeam_channel::select! {
            recv(self.wake.freed_signal()) -> _ => {}
            recv(self.stop.channel()) -> _ => {}
            recv(crossbeam_channel::at(deadline)) -> _ => {}
        }
    }

    /// Runs a queue operation; while the queue is unreachable, logs once,
    /// backs off and returns `None`, so the loop can notice a stop request.
    pub(super) fn until_available<T>(
        &mut self,
        op: impl Fn(&mut dyn Queue) -> Result<T, QueueError>,
    ) -> Result<Option<T>, crate::Error> {
        match op(self.queue) {
            Ok(value) => {
                if let Some(since) = self.unavailable_since.take() {
                    log::info!(
                        "the queue is reachable again after {}s: resuming",
                        since.elapsed().as_secs()
                    );
                }
                Ok(Some(value))
            }
            Err(QueueError::Unavailable { reason, message })
                if reason == UnavailableReason::Interrupted || self.stopping() =>
            {
                // A signal (our own stop, most likely) cut a blocked read
                // short: a normal stop, not an outage.
                log::debug!("{message}");
                Ok(None)
            }
            Err(QueueError::Unavailable { message, .. }) => {
                let since = *self.unavailable_since.get_or_insert_with(|| {
                    log::warn!("{message}; waiting for it and retrying");
                    Instant::now()
                });
                let wait =
                    (since.elapsed() / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
                self.stop.wait_until(Instant::now() + wait);
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) fn report(&self, report: Report) {
        let _ = self.reports.send(report);
    }
}

/// When the reader next has something to do besides reading new entries.
pub(super) struct Timers {
    /// Renew the consumer name and the claims in flight.
    pub(super) renewal: Instant,
    pub(super) trim: Instant,
    /// Look for due retries.
    pub(super) retries: Instant,
    /// Look for dead-letter alerts owed by windows that ended.
    pub(super) alerts: Instant,
    /// Read which destinations are held.
    pub(super) holds: Instant,
}

impl Timers {
    /// The next chore; due retries count only with `room` to claim them
    /// (otherwise a full window would spin on a retry look it cannot make).
    fn next(&self, room: bool) -> Instant {
        let next = self.renewal.min(self.trim).min(self.alerts).min(self.holds);
        if room { next.min(self.retries) } else { next }
    }
}

/// How long the next read may wait for new entries (an entry that arrives
/// ends the wait at once): until the next chore, and never longer than
/// [`MAX_BLOCK`]. A `--burst` worker does not wait for new entries, only
/// looks: a timed-out `BLOCK` costs Redis's 100 ms tick however short.
pub(super) fn read_wait(now: Instant, next_chore: Instant, burst: bool) -> Duration {
    if burst {
        Duration::ZERO
    } else {
        next_chore.saturating_duration_since(now).min(MAX_BLOCK)
    }
}

/// When to look for due retries again after a claim that asked for `asked`
/// and got `got`: at once when it got all it asked for (more may be due),
/// else after [`RETRY_LOOK`].
pub(super) fn next_retry_look(now: Instant, got: usize, asked: usize) -> Instant {
    if got >= asked { now } else { now + RETRY_LOOK }
}

/// The instant of `due_ms` (ms since the epoch), given that `now` is
/// `now_ms`; now for a time already past.
pub(super) fn due_instant(now: Instant, now_ms: i64, due_ms: i64) -> Instant {
    now + Duration::from_millis(due_ms.saturating_sub(now_ms).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_waits_until_the_next_chore_and_never_past_the_cap() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        // Working or idle, a long-running worker blocks in the read: an
        // entry ends the wait at once.
        assert_eq!(read_wait(now, now + ms(120), false), ms(120));
        assert_eq!(read_wait(now, now + ms(60_000), false), MAX_BLOCK);
        // A chore already due: only look.
        assert_eq!(read_wait(now + ms(5), now, false), Duration::ZERO);
        // A burst only looks: it waits for the settler, or checks it is done.
        assert_eq!(read_wait(now, now + ms(400), true), Duration::ZERO);
    }

    #[test]
    fn retries_are_looked_for_at_once_while_claims_come_back_full() {
        let now = Instant::now();
        assert_eq!(next_retry_look(now, 500, 500), now);
        assert_eq!(next_retry_look(now, 499, 500), now + RETRY_LOOK);
        assert_eq!(next_retry_look(now, 0, 500), now + RETRY_LOOK);
    }

    #[test]
    fn a_due_time_becomes_an_instant_never_in_the_past() {
        let now = Instant::now();
        assert_eq!(
            due_instant(now, 10_000, 10_250),
            now + Duration::from_millis(250)
        );
        assert_eq!(due_instant(now, 10_000, 9_000), now);
        let timers = Timers {
            renewal: now + Duration::from_secs(20),
            trim: now + Duration::from_secs(600),
            retries: now + Duration::from_millis(300),
            alerts: now + Duration::from_secs(30),
            holds: now + Duration::from_secs(1),
        };
        assert_eq!(timers.next(true), now + Duration::from_millis(300));
        assert_eq!(timers.next(false), now + Duration::from_secs(1));
    }
}
