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

use super::wake::Wake;

use super::{Job, Origin, Report};
use crate::alert;
use crate::dest::{Answer, Attempt};
use crate::event::now_ms;
use crate::metrics::Metrics;
use crate::queue::{AttemptRecord, DeadLetter, Delivery, Outcome, Settlement, Settling, Tally};
use crate::retry::{Decision, decide};
use crate::route::{RouteId, Routes};
use crate::sanitize::escape;

/// One entry's outcomes, held until every destination of it is resolved.
#[derive(Default)]
pub struct EntryState {
    remaining: usize,
    retries: Vec<(Delivery, i64)>,
    dead: Vec<DeadLetter>,
    attempts: Vec<AttemptRecord>,
}

pub struct Settler {
    pub queue: Box<dyn Settling>,
    pub consumer: String,
    pub reports: Receiver<Report>,
    /// Every configured destination, for its name and retry policy: those
    /// in force, which a reload replaces.
    pub routes: super::routes::Shared,
    /// Entries and retries claimed but not yet settled; the reader stops
    /// claiming when it is full.
    pub inflight: Arc<AtomicUsize>,
    /// What the worker holds; settled claims leave it.
    pub held: Arc<super::held::Held>,
    /// How long a stopping worker keeps trying to reach a lost queue.
    pub give_up_after: Duration,
    /// Tells the reader of freed window slots and newly scheduled retries.
    pub wake: Arc<Wake>,
    /// Where each outcome is counted, when metrics are served.
    pub metrics: Option<Arc<Metrics>>,
    /// Whether dead letters raise `events.dead_letters` alerts.
    pub alerts: bool,
    /// At most one alert per destination in this long.
    pub alert_window: Duration,
    /// What the sends came to, for the destinations' breakers.
    pub breakers: super::breakers::Breakers,
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
                    self.recorded(&pending);
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

    /// What follows a settle that was written: its alerts, the breakers'
    /// counts, the claims it releases and the retries it scheduled.
    fn recorded(&mut self, pending: &Settlement) {
        if self.alerts {
            self.raise_alerts(&pending.dead);
        }
        let routes = self.routes.get();
        self.breakers
            .flush(self.queue.as_mut(), &routes, self.alerts);
        self.held.release(pending);
        for (delivery, due) in &pending.retries {
            self.wake.scheduled(&delivery.dest, *due);
        }
    }

    /// Counts the dead letters just written into their destinations' shared
    /// alert windows and appends an alert for each window this opens.
    /// Before the written claims leave the window, so a `--burst` worker
    /// still sees the alert to deliver. A failure costs an alert, never a
    /// delivery: it is logged and forgotten.
    fn raise_alerts(&mut self, dead: &[DeadLetter]) {
        for tally in alert::tally(dead) {
            let raised = self
                .queue
                .count_dead_for_alert(&tally.dest, tally.count, &tally.error, self.alert_window)
                .and_then(|report| match report {
                    Some(count) => {
                        self.queue
                            .append(&[alert::event(&tally.dest, count, &tally.error)])
                    }
                    None => Ok(()),
                });
            if let Err(e) = raised {
                log::warn!(
                    "cannot raise the dead-letter alert about {}: {e}",
                    escape(&tally.dest)
                );
            }
        }
    }

    /// Folds one report into the pending settlement; returns how many claimed
    /// units (entries or retries) it finished.
    fn apply(
        &mut self,
        report: Report,
        entries: &mut HashMap<String, EntryState>,
        pending: &mut Settlement,
    ) -> usize {
        let routes = self.routes.get();
        self.breakers.note(&routes, &report);
        fold(
            &routes,
            report,
            entries,
            pending,
            now_ms(),
            &mut fastrand::Rng::new(),
            self.metrics.as_deref(),
        )
    }
}

/// Folds one report into `pending`, holding an entry's outcomes in
/// `entries` until all its deliveries are resolved, so that its
/// acknowledgement, retries and dead letters go into one settlement.
/// Returns how many claimed units (entries or retries) it finished. No
/// queue, no thread: what the settler writes is decided here alone.
pub fn fold(
    routes: &Routes,
    report: Report,
    entries: &mut HashMap<String, EntryState>,
    pending: &mut Settlement,
    now_ms: i64,
    rng: &mut fastrand::Rng,
    metrics: Option<&Metrics>,
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
        Report::Poison { origin, letter } => fold_poison(origin, letter, pending, metrics),
        Report::RateLimited { dest } => {
            tally(pending, routes, dest).rate_limited += 1;
            0
        }
        Report::Held { dest, jobs, closed } => jobs
            .into_iter()
            .map(|job| fold_held(routes, dest, job, &closed, entries, pending))
            .sum(),
        Report::Sent {
            dest,
            jobs,
            answer,
            elapsed,
        } => jobs
            .into_iter()
            .enumerate()
            .map(|(index, job)| {
                let Answer {
                    attempt: outcome,
                    status,
                } = answer.of(index);
                let sent = SentJob {
                    dest,
                    outcome,
                    job,
                    status,
                    elapsed,
                };
                fold_sent(routes, sent, now_ms, rng, metrics, entries, pending)
            })
            .sum(),
    }
}

/// Dead-letters a delivery that could not be sent at all, finishing its
/// claim at once. Returns how many claimed units it finished: one.
fn fold_poison(
    origin: Origin,
    letter: DeadLetter,
    pending: &mut Settlement,
    metrics: Option<&Metrics>,
) -> usize {
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
    if let Some(metrics) = metrics {
        metrics.dead_unsent(&letter.dest);
    }
    pending.attempts.extend(unsent_record(&letter));
    pending.dead.push(letter);
    1
}

/// Parks a job for a held destination: back in the retry set, due at the
/// hold's start (so held deliveries come back in event order), with no
/// attempt spent and none recorded. Returns how many claims it finished.
fn fold_held(
    routes: &Routes,
    dest: RouteId,
    job: Job,
    closed: &super::gate::Closed,
    entries: &mut HashMap<String, EntryState>,
    pending: &mut Settlement,
) -> usize {
    let name = routes.get(dest).name();
    let event = &job.item.event;
    log::debug!(
        "{} {} to {name} waits: {}",
        escape(&event.kind),
        escape(&event.id),
        escape(&closed.why)
    );
    let delivery = Delivery {
        event: (**event).clone(),
        dest: name.to_owned(),
        attempts: job.attempts,
        last_error: Some(closed.why.clone()),
    };
    let outcomes = Outcomes {
        retry: Some((delivery, closed.due_ms)),
        letter: None,
        record: None,
    };
    settle_job(job.origin, outcomes, entries, pending)
}

/// One job of a send, with what came of it.
struct SentJob {
    dest: RouteId,
    job: Job,
    outcome: Attempt,
    status: Option<u16>,
    elapsed: Duration,
}

/// Decides what one sent job comes to (delivered, a retry, a dead letter),
/// counts and records it, and adds it to its claim's settlement. Returns
/// how many claimed units it finished.
fn fold_sent(
    routes: &Routes,
    sent: SentJob,
    now_ms: i64,
    rng: &mut fastrand::Rng,
    metrics: Option<&Metrics>,
    entries: &mut HashMap<String, EntryState>,
    pending: &mut Settlement,
) -> usize {
    let SentJob {
        dest,
        job,
        outcome,
        status,
        elapsed,
    } = sent;
    let decision = decide(&outcome, job.attempts, routes.get(dest).policy(), rng);
    if let Some(metrics) = metrics {
        metrics.decided(dest, &decision, &outcome, &job.item.event, now_ms);
    }
    if decision == Decision::Delivered {
        tally(pending, routes, dest).delivered += 1;
    }
    let record = (!matches!(outcome, Attempt::Deferred(..))).then(|| {
        record(
            routes.get(dest).name(),
            &job,
            &decision,
            status,
            elapsed,
            now_ms,
        )
    });
    let (retry, letter) = resolve(routes, dest, &job, &outcome, decision, elapsed, now_ms);
    let outcomes = Outcomes {
        retry,
        letter,
        record,
    };
    settle_job(job.origin, outcomes, entries, pending)
}

/// The running totals of `dest` this settlement adds to.
/// Allocates the name only for the first outcome of a destination in a
/// settlement: this runs once per delivery.
fn tally<'a>(pending: &'a mut Settlement, routes: &Routes, dest: RouteId) -> &'a mut Tally {
    let name = routes.get(dest).name();
    if !pending.tallies.contains_key(name) {
        pending.tallies.insert(name.to_owned(), Tally::default());
    }
    pending.tallies.get_mut(name).expect("inserted above")
}

/// The record of a delivery dead-lettered without being sent (it cannot
/// be rendered, its destination is gone), when it is an event's.
fn unsent_record(letter: &DeadLetter) -> Option<AttemptRecord> {
    let event = letter.event.as_ref().ok()?;
    Some(AttemptRecord {
        event_id: event.id.clone(),
        dest: letter.dest.clone(),
        at_ms: letter.at_ms,
        outcome: Outcome::Dead,
        status: None,
        error: Some(letter.error.clone()),
        duration_ms: 0,
        entry: None,
    })
}

/// The attempt record of one sent job: what `inspect` shows of it.
fn record(
    dest: &str,
    job: &Job,
    decision: &Decision,
    status: Option<u16>,
    elapsed: Duration,
    now_ms: i64,
) -> AttemptRecord {
    let (outcome, error) = match decision {
        Decision::Delivered => (Outcome::Delivered, None),
        Decision::Retry { error, .. } => (Outcome::Retrying, Some(error.clone())),
        Decision::Dead { error, .. } => (Outcome::Dead, Some(error.clone())),
    };
    AttemptRecord {
        event_id: job.item.event.id.clone(),
        dest: dest.to_owned(),
        at_ms: now_ms,
        outcome,
        status,
        error,
        duration_ms: elapsed.as_millis() as u64,
        entry: match &job.origin {
            Origin::Entry(key) => Some(key.clone()),
            Origin::Retry(_) => None,
        },
    }
}

/// The retry or dead letter (or neither, once delivered) one sent job
/// comes to, logged.
fn resolve(
    routes: &Routes,
    dest: RouteId,
    job: &Job,
    attempt: &Attempt,
    decision: Decision,
    elapsed: Duration,
    now_ms: i64,
) -> (Option<(Delivery, i64)>, Option<DeadLetter>) {
    let route = routes.get(dest);
    let (name, policy) = (route.name(), route.policy());
    let event = &job.item.event;
    // Type, id and error texts come from producers and remote servers:
    // escaped, so none can break or forge a log line.
    let what = format!("{} {} to {name}", escape(&event.kind), escape(&event.id));
    match decision {
        Decision::Delivered => {
            log::info!("delivered {what} ({} ms)", elapsed.as_millis());
            (None, None)
        }
        Decision::Retry {
            attempts,
            wait,
            spent,
            error,
        } => {
            let shown = escape(&error);
            if matches!(attempt, Attempt::Deferred(..)) {
                log::debug!("deferred {what}: {shown}");
            } else if spent {
                log::info!(
                    "retry in {}: {what}: {shown} (attempt {attempts} of {})",
                    short(wait),
                    policy.max_attempts
                );
            } else {
                log::info!(
                    "retry in {}: {what}: {shown} (no attempt spent)",
                    short(wait)
                );
            }
            let delivery = Delivery {
                event: (**event).clone(),
                dest: name.to_owned(),
                attempts,
                last_error: Some(error),
            };
            (Some((delivery, now_ms + wait.as_millis() as i64)), None)
        }
        Decision::Dead { attempts, error } => {
            log::warn!(
                "dead: {what}: {} (after {attempts} attempt{})",
                escape(&error),
                if attempts == 1 { "" } else { "s" }
            );
            let letter = DeadLetter {
                event: Ok((**event).clone()),
                dest: name.to_owned(),
                attempts,
                error,
                at_ms: now_ms,
            };
            (None, Some(letter))
        }
    }
}

/// What one sent job comes to: a retry or a dead letter (or neither, once
/// delivered), and the record of the attempt (none for a deferral).
struct Outcomes {
    retry: Option<(Delivery, i64)>,
    letter: Option<DeadLetter>,
    record: Option<AttemptRecord>,
}

/// Adds one job's outcomes to what its claim writes: at once for a retry,
/// with the entry's acknowledgement once the entry's last delivery is
/// resolved. Returns how many claims it finished.
fn settle_job(
    origin: Origin,
    outcomes: Outcomes,
    entries: &mut HashMap<String, EntryState>,
    pending: &mut Settlement,
) -> usize {
    match origin {
        Origin::Retry(token) => {
            pending.done_retries.push(token);
            pending.retries.extend(outcomes.retry);
            pending.dead.extend(outcomes.letter);
            pending.attempts.extend(outcomes.record);
            1
        }
        Origin::Entry(key) => {
            let Some(state) = entries.get_mut(&key) else {
                return 0;
            };
            state.retries.extend(outcomes.retry);
            state.dead.extend(outcomes.letter);
            state.attempts.extend(outcomes.record);
            state.remaining -= 1;
            if state.remaining > 0 {
                return 0;
            }
            let state = entries.remove(&key).expect("present above");
            pending.retries.extend(state.retries);
            pending.dead.extend(state.dead);
            pending.attempts.extend(state.attempts);
            pending.acks.push(key);
            1
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
    use std::time::Instant;

    use super::*;
    use crate::dest::DestConfig;
    use crate::dest::Item;
    use crate::event::Event;
    use crate::queue::QueueOptions;
    use crate::queue::prelude::*;
    use crate::queue::sqlite::SqliteQueue;
    use crate::worker::breakers::Breakers;

    const NOW: i64 = 1_800_000_000_000;

    fn routes() -> Routes {
        let console = |name: &str| DestConfig {
            name: name.into(),
            events: vec!["*".into()],
            ..DestConfig::console("")
        };
        Routes::new(
            &[console("a"), console("b")],
            Some(3),
            Duration::from_secs(1),
        )
    }

    fn id(routes: &Routes, name: &str) -> RouteId {
        routes.named(name).unwrap().id()
    }

    fn job(origin: Origin, event: &Arc<Event>, attempts: u32) -> Job {
        Job {
            origin,
            item: Item {
                event: Arc::clone(event),
                body: String::new(),
            },
            attempts,
            queued_at: Instant::now(),
        }
    }

    fn sent(dest: RouteId, jobs: Vec<Job>, attempt: Attempt) -> Report {
        Report::Sent {
            dest,
            jobs,
            answer: attempt.into(),
            elapsed: Duration::ZERO,
        }
    }

    /// Folds reports as the settler does, without a queue or a thread.
    #[derive(Default)]
    struct Settling {
        entries: HashMap<String, EntryState>,
        pending: Settlement,
    }

    impl Settling {
        fn apply(&mut self, routes: &Routes, report: Report) -> usize {
            let mut rng = fastrand::Rng::with_seed(1);
            fold(
                routes,
                report,
                &mut self.entries,
                &mut self.pending,
                NOW,
                &mut rng,
                None,
            )
        }
    }

    fn event() -> Arc<Event> {
        Arc::new(Event::new("user.signup", Default::default()))
    }

    #[test]
    fn an_entry_settles_once_all_its_destinations_are_resolved_in_one_settlement() {
        let routes = routes();
        let event = event();
        let entry = || Origin::Entry("1-0".into());
        let mut s = Settling::default();
        assert_eq!(
            s.apply(
                &routes,
                Report::Entry {
                    key: "1-0".into(),
                    deliveries: 2
                }
            ),
            0
        );
        let a = sent(
            id(&routes, "a"),
            vec![job(entry(), &event, 0)],
            Attempt::Transient("HTTP 503".into()),
        );
        assert_eq!(s.apply(&routes, a), 0, "b is not resolved yet");
        assert!(s.pending.is_empty(), "nothing is written before");
        let b = sent(
            id(&routes, "b"),
            vec![job(entry(), &event, 0)],
            Attempt::Permanent("HTTP 400".into()),
        );
        assert_eq!(s.apply(&routes, b), 1);
        let pending = std::mem::take(&mut s.pending);
        assert_eq!(pending.acks, ["1-0"]);
        assert_eq!(pending.retries.len(), 1);
        let (retry, due) = &pending.retries[0];
        assert_eq!(
            (
                retry.dest.as_str(),
                retry.attempts,
                retry.last_error.as_deref()
            ),
            ("a", 1, Some("HTTP 503"))
        );
        assert!((NOW + 500..=NOW + 1000).contains(due), "{due}");
        assert_eq!(pending.dead.len(), 1);
        let dead = &pending.dead[0];
        assert_eq!(
            (
                dead.dest.as_str(),
                dead.attempts,
                dead.error.as_str(),
                dead.at_ms
            ),
            ("b", 1, "HTTP 400", NOW)
        );
        assert_eq!(dead.event.as_ref().unwrap().id, event.id);
        assert!(s.entries.is_empty());
    }

    #[test]
    fn a_retry_settles_alone_and_at_once() {
        let routes = routes();
        let event = event();
        let mut s = Settling::default();
        let report = sent(
            id(&routes, "b"),
            vec![job(Origin::Retry("t".into()), &event, 2)],
            Attempt::Transient("timed out".into()),
        );
        assert_eq!(s.apply(&routes, report), 1);
        assert_eq!(s.pending.done_retries, ["t"]);
        assert!(s.pending.retries.is_empty());
        assert_eq!(s.pending.dead[0].attempts, 3, "the budget of 3 is spent");
    }

    #[test]
    fn each_item_of_a_batch_settles_by_its_own_outcome() {
        let routes = routes();
        let (one, two) = (event(), event());
        let mut s = Settling::default();
        for key in ["1-0", "2-0"] {
            s.apply(
                &routes,
                Report::Entry {
                    key: key.into(),
                    deliveries: 1,
                },
            );
        }
        let report = sent(
            id(&routes, "a"),
            vec![
                job(Origin::Entry("1-0".into()), &one, 0),
                job(Origin::Entry("2-0".into()), &two, 0),
            ],
            Attempt::Each(vec![
                Attempt::Delivered.into(),
                Attempt::RetryAfter(Duration::from_secs(60), "HTTP 429".into()).into(),
            ]),
        );
        assert_eq!(s.apply(&routes, report), 2);
        assert_eq!(s.pending.acks, ["1-0", "2-0"]);
        assert!(s.pending.dead.is_empty());
        let (retry, due) = &s.pending.retries[0];
        assert_eq!(
            (retry.event.id.as_str(), retry.attempts),
            (two.id.as_str(), 0)
        );
        assert_eq!(*due, NOW + 60_000);
    }

    #[test]
    fn every_send_is_recorded_with_its_status_and_a_deferral_is_not() {
        let routes = routes();
        let event = event();
        let mut s = Settling::default();
        s.apply(
            &routes,
            Report::Entry {
                key: "1-0".into(),
                deliveries: 1,
            },
        );
        let report = Report::Sent {
            dest: id(&routes, "a"),
            jobs: vec![job(Origin::Entry("1-0".into()), &event, 0)],
            answer: Answer {
                attempt: Attempt::Transient("HTTP 503 busy".into()),
                status: Some(503),
            },
            elapsed: Duration::from_millis(42),
        };
        s.apply(&routes, report);
        let deferred = sent(
            id(&routes, "b"),
            vec![job(Origin::Retry("t".into()), &event, 1)],
            Attempt::Deferred(Duration::ZERO, "the worker stopped before sending".into()),
        );
        s.apply(&routes, deferred);
        assert_eq!(
            s.pending.attempts,
            [AttemptRecord {
                event_id: event.id.clone(),
                dest: "a".into(),
                at_ms: NOW,
                outcome: Outcome::Retrying,
                status: Some(503),
                error: Some("HTTP 503 busy".into()),
                duration_ms: 42,
                entry: Some("1-0".into()),
            }]
        );
    }

    #[test]
    fn poison_and_entries_routed_nowhere_settle_at_once() {
        let routes = routes();
        let mut s = Settling::default();
        let letter = DeadLetter {
            event: Err("garbage".into()),
            dest: crate::route::POISON_DEST.into(),
            attempts: 0,
            error: "'payload' is not valid JSON".into(),
            at_ms: NOW,
        };
        let poison = Report::Poison {
            origin: Origin::Entry("1-0".into()),
            letter: letter.clone(),
        };
        assert_eq!(s.apply(&routes, poison), 1);
        let nowhere = Report::Entry {
            key: "2-0".into(),
            deliveries: 0,
        };
        assert_eq!(s.apply(&routes, nowhere), 1);
        assert_eq!(s.pending.acks, ["1-0", "2-0"]);
        assert_eq!(s.pending.dead, [letter]);
    }

    /// Runs a settler on the SQLite queue at `path` over one entry whose
    /// only delivery, to `a`, is refused; returns what the stream then holds
    /// for another consumer to claim.
    fn settle_one_dead_letter(path: &std::path::Path, alerts: bool) -> Vec<Event> {
        let mut queue = SqliteQueue::open(path, QueueOptions::default()).unwrap();
        let event = Arc::new(Event::new("user.signup", Default::default()));
        queue.append(&[(*event).clone()]).unwrap();
        let key = queue.claim("w", 10, Duration::ZERO).unwrap()[0].key.clone();
        let routes = Arc::new(routes());
        let (reports, report_rx) = crossbeam_channel::unbounded();
        let settler = Settler {
            queue: Box::new(queue),
            consumer: "w".into(),
            reports: report_rx,
            routes: crate::worker::routes::Shared::new(Arc::clone(&routes)),
            inflight: Arc::new(AtomicUsize::new(1)),
            held: Arc::default(),
            give_up_after: GIVE_UP_AFTER,
            wake: Arc::new(Wake::new(&[])),
            metrics: None,
            alerts,
            alert_window: alert::WINDOW,
            breakers: Breakers::new(Arc::default(), "w".into()),
        };
        let running = std::thread::spawn(move || settler.run());
        reports
            .send(Report::Entry {
                key: key.clone(),
                deliveries: 1,
            })
            .unwrap();
        reports
            .send(sent(
                id(&routes, "a"),
                vec![job(Origin::Entry(key), &event, 0)],
                Attempt::Permanent("HTTP 401".into()),
            ))
            .unwrap();
        drop(reports);
        assert!(running.join().unwrap());
        let mut queue = SqliteQueue::open(path, QueueOptions::default()).unwrap();
        queue
            .claim("other", 10, Duration::ZERO)
            .unwrap()
            .into_iter()
            .map(|entry| entry.event.unwrap())
            .collect()
    }

    #[test]
    fn a_written_dead_letter_appends_one_alert_unless_alerts_are_off() {
        let dir = tempfile::tempdir().unwrap();
        let appended = settle_one_dead_letter(&dir.path().join("on.db"), true);
        assert_eq!(appended.len(), 1, "{appended:?}");
        let alert = &appended[0];
        assert_eq!(alert.kind, alert::ALERT_TYPE);
        assert_eq!(
            serde_json::Value::Object(alert.payload.clone()),
            serde_json::json!({"dest": "a", "count": 1, "error": "HTTP 401"})
        );
        let off = settle_one_dead_letter(&dir.path().join("off.db"), false);
        assert!(off.is_empty(), "{off:?}");
    }

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
            routes: crate::worker::routes::Shared::new(Arc::new(routes())),
            inflight: Arc::clone(&inflight),
            held: Arc::default(),
            give_up_after: GIVE_UP_AFTER,
            wake: Arc::clone(&wake),
            metrics: None,
            alerts: true,
            alert_window: alert::WINDOW,
            breakers: Breakers::new(Arc::default(), "w".into()),
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
