//! The settler turns send results into queue writes: it holds each entry's
//! outcomes until every destination of the entry is resolved, then writes
//! the acknowledgement together with the entry's retries and dead letters in
//! one atomic settle, batching many entries per call. A settle that fails
//! (the queue went away) is kept and tried again: nothing is dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a stopping worker keeps trying at most to record outcomes in a
/// queue that went away (and never longer than the claim lease: after that,
/// other workers take its entries over anyway).
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);
/// How long the settler waits for more outcomes to write together, and
/// how many it writes at most in one settle.
const LINGER: Duration = Duration::from_millis(5);
const BATCH: usize = 1000;

use crossbeam_channel::{Receiver, select};

use super::retry::RetryPolicy;
use super::wake::Wake;
use super::{Job, Origin, Report};
use crate::dest::Attempt;
use crate::event::now_ms;
use crate::queue::{DeadLetter, Delivery, Queue, Settlement};
use crate::sanitize::escape;

/// Per destination: its name and retry policy.
pub struct DestPolicy {
    pub name: String,
    pub policy: RetryPolicy,
}

#[derive(Default)]
struct EntryState {
    remaining: usize,
    retries: Vec<(Delivery, i64)>,
    dead: Vec<DeadLetter>,
}

pub struct Settler {
    pub queue: Box<dyn Queue>,
    pub consumer: String,
    pub reports: Receiver<Report>,
    pub dests: Vec<DestPolicy>,
    /// Entries and retries claimed but not yet settled; the reader stops
    /// claiming when it is full.
    pub inflight: Arc<AtomicUsize>,
    /// What the worker holds; settled claims leave it.
    pub held: Arc<super::held::Held>,
    /// How long a stopping worker keeps trying to reach a lost queue.
    pub give_up_after: Duration,
    /// Tells the reader of freed window slots and newly scheduled retries.
    pub wake: Arc<Wake>,
}

/// `GIVE_UP_AFTER`, or the claim lease when that is shorter.
pub fn give_up_after(claim_lease: Duration) -> Duration {
    claim_lease.min(GIVE_UP_AFTER)
}

impl Settler {
    /// Runs until every report sender is gone and everything is settled.
    /// Returns false when, after the reader stopped, the queue stayed
    /// unreachable past `give_up_after`: the unsettled entries stay claimed
    /// and come back to the next worker.
    ///
    /// Waits only on reports, and on a deadline while a failed settle waits
    /// to be tried again (outcomes arriving meanwhile join it).
    pub fn run(mut self) -> bool {
        let mut entries: HashMap<String, EntryState> = HashMap::new();
        let mut pending = Settlement::default();
        let mut settled_units = 0usize;
        let mut closed = false;
        let mut failing_since: Option<Instant> = None;
        let mut backoff = Duration::from_millis(100);
        // When a failed settle is tried again.
        let mut again_at: Option<Instant> = None;
        while !closed || !pending.is_empty() {
            if !closed {
                let again = again_at.map_or_else(crossbeam_channel::never, crossbeam_channel::at);
                select! {
                    recv(self.reports) -> report => match report {
                        Ok(report) => {
                            settled_units += self.apply(report, &mut entries, &mut pending);
                            // Linger a moment for more: one settle of hundreds
                            // of outcomes costs about what one of a few does.
                            let until = Instant::now() + LINGER;
                            while settled_units < BATCH {
                                let Ok(report) = self.reports.recv_deadline(until) else {
                                    break;
                                };
                                settled_units += self.apply(report, &mut entries, &mut pending);
                            }
                        }
                        Err(_) => closed = true,
                    },
                    recv(again) -> _ => {}
                }
            } else if let Some(at) = again_at {
                // Nothing more can arrive: only the failed settle is left.
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
            }
            if pending.is_empty() || again_at.is_some_and(|at| Instant::now() < at) {
                continue;
            }
            match self.queue.settle(&self.consumer, &pending) {
                Ok(()) => {
                    if let Some(since) = failing_since.take() {
                        log::info!(
                            "recorded the delivery outcomes that waited {}s for the queue",
                            since.elapsed().as_secs()
                        );
                    }
                    backoff = Duration::from_millis(100);
                    again_at = None;
                    self.held.release(&pending);
                    for (delivery, due) in &pending.retries {
                        self.wake.scheduled(&delivery.dest, *due);
                    }
                    pending = Settlement::default();
                    self.inflight.fetch_sub(settled_units, Ordering::SeqCst);
                    settled_units = 0;
                    self.wake.freed();
                }
                Err(e) => {
                    let since = *failing_since.get_or_insert_with(|| {
                        log::warn!(
                            "cannot record delivery outcomes, retrying until the queue is back: {e}"
                        );
                        Instant::now()
                    });
                    if closed && since.elapsed() > self.give_up_after {
                        log::error!(
                            "gave up recording {} delivery outcomes: their entries stay claimed and will be delivered again by the next worker",
                            pending.acks.len() + pending.done_retries.len()
                        );
                        return false;
                    }
                    again_at = Some(Instant::now() + backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        true
    }

    /// Folds one report into the pending settlement; returns how many claimed
    /// units (entries or retries) it finished.
    fn apply(
        &self,
        report: Report,
        entries: &mut HashMap<String, EntryState>,
        pending: &mut Settlement,
    ) -> usize {
        match report {
            Report::Entry { key, deliveries: 0 } => {
                pending.acks.push(key);
                1
            }
            Report::Entry { key, deliveries } => {
                entries.insert(
                    key,
                    EntryState {
                        remaining: deliveries,
                        ..Default::default()
                    },
                );
                0
            }
            Report::Poison { origin, letter } => {
                match origin {
                    Origin::Entry(key) => {
                        log::warn!(
                            "dead: entry {key} cannot be delivered: {}",
                            escape(&letter.error)
                        );
                        pending.acks.push(key);
                    }
                    Origin::Retry(token) => {
                        log::warn!(
                            "dead: a retry to {} cannot be delivered: {}",
                            escape(&letter.dest),
                            escape(&letter.error)
                        );
                        pending.done_retries.push(token);
                    }
                }
                pending.dead.push(letter);
                1
            }
            Report::Sent {
                dest,
                jobs,
                attempt,
                elapsed,
            } => {
                let mut finished = 0;
                for (index, job) in jobs.into_iter().enumerate() {
                    let attempt = attempt.of(index);
                    finished += self.resolve(dest, job, &attempt, elapsed, entries, pending);
                }
                finished
            }
        }
    }

    fn resolve(
        &self,
        dest: usize,
        job: Job,
        attempt: &Attempt,
        elapsed: Duration,
        entries: &mut HashMap<String, EntryState>,
        pending: &mut Settlement,
    ) -> usize {
        let DestPolicy { name, policy } = &self.dests[dest];
        let event = &job.item.event;
        // Type, id and error texts come from producers and remote servers:
        // escaped, so none can break or forge a log line.
        let what = format!("{} {} to {name}", escape(&event.kind), escape(&event.id));
        let shown = |error: &str| escape(error).into_owned();
        let delivery = |attempts: u32, error: &str| Delivery {
            event: (**event).clone(),
            dest: name.clone(),
            attempts,
            last_error: Some(error.to_owned()),
        };
        let dead = |attempts: u32, error: &str| DeadLetter {
            event: Ok((**event).clone()),
            dest: name.clone(),
            attempts,
            error: error.to_owned(),
            at_ms: now_ms(),
        };
        let (retry, letter) = match attempt {
            Attempt::Delivered => {
                log::info!("delivered {what} ({} ms)", elapsed.as_millis());
                (None, None)
            }
            Attempt::RetryAfter(wait, error) | Attempt::Deferred(wait, error) => {
                if matches!(attempt, Attempt::Deferred(..)) {
                    log::debug!("deferred {what}: {}", shown(error));
                } else {
                    log::info!(
                        "retry in {}: {what}: {} (no attempt spent)",
                        short(*wait),
                        shown(error)
                    );
                }
                (
                    Some((
                        delivery(job.attempts, error),
                        now_ms() + wait.as_millis() as i64,
                    )),
                    None,
                )
            }
            Attempt::Transient(error) if !policy.exhausted(job.attempts + 1) => {
                let attempts = job.attempts + 1;
                let wait = policy.delay(attempts);
                log::info!(
                    "retry in {}: {what}: {} (attempt {attempts} of {})",
                    short(wait),
                    shown(error),
                    policy.max_attempts
                );
                (
                    Some((
                        delivery(attempts, error),
                        now_ms() + wait.as_millis() as i64,
                    )),
                    None,
                )
            }
            // `Attempt::of` never yields `Each`; were it to, dead-lettering
            // keeps the delivery for `replay --dead`.
            Attempt::Each(_) => (
                None,
                Some(dead(job.attempts + 1, "no outcome was reported")),
            ),
            Attempt::Transient(error) | Attempt::Permanent(error) => {
                let attempts = job.attempts + 1;
                log::warn!(
                    "dead: {what}: {} (after {attempts} attempt{})",
                    shown(error),
                    if attempts == 1 { "" } else { "s" }
                );
                (None, Some(dead(attempts, error)))
            }
        };
        match job.origin {
            Origin::Retry(token) => {
                pending.done_retries.push(token);
                pending.retries.extend(retry);
                pending.dead.extend(letter);
                1
            }
            Origin::Entry(key) => {
                let Some(state) = entries.get_mut(&key) else {
                    return 0;
                };
                state.retries.extend(retry);
                state.dead.extend(letter);
                state.remaining -= 1;
                if state.remaining > 0 {
                    return 0;
                }
                let state = entries.remove(&key).expect("present above");
                pending.retries.extend(state.retries);
                pending.dead.extend(state.dead);
                pending.acks.push(key);
                1
            }
        }
    }
}

/// `1.5s`, `30s`, `2m`: a wait, short enough for a log line.
fn short(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d < Duration::from_secs(60) {
        format!("{:.1}s", d.as_secs_f64()).replace(".0s", "s")
    } else {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::queue::QueueOptions;
    use crate::queue::sqlite::SqliteQueue;

    #[test]
    fn a_written_settlement_frees_the_window_and_wakes_the_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let mut queue = SqliteQueue::open(&path, QueueOptions::default()).unwrap();
        queue
            .append(&[Event::new("user.signup", Default::default())])
            .unwrap();
        let key = queue.claim("w", 10, Duration::ZERO).unwrap()[0].key.clone();
        let (reports, report_rx) = crossbeam_channel::unbounded();
        let wake = Arc::new(Wake::new(&[]));
        let inflight = Arc::new(AtomicUsize::new(1));
        let settler = Settler {
            queue: Box::new(queue),
            consumer: "w".into(),
            reports: report_rx,
            dests: Vec::new(),
            inflight: Arc::clone(&inflight),
            held: Arc::default(),
            give_up_after: GIVE_UP_AFTER,
            wake: Arc::clone(&wake),
        };
        let running = std::thread::spawn(move || settler.run());
        // An entry no destination is routed to is acknowledged at once.
        reports
            .send(Report::Entry {
                key: key.clone(),
                deliveries: 0,
            })
            .unwrap();
        // Only a hang guard: the wake-up comes once the settle is written.
        wake.freed_signal()
            .recv_timeout(Duration::from_secs(60))
            .expect("the reader is woken");
        assert_eq!(inflight.load(Ordering::SeqCst), 0);
        drop(reports);
        assert!(running.join().unwrap(), "everything was recorded");
        let mut queue = SqliteQueue::open(&path, QueueOptions::default()).unwrap();
        assert!(
            queue.recover("w").unwrap().is_empty(),
            "{key} was acknowledged"
        );
    }
}
