//! A lane sends one destination's deliveries, one request at a time: it
//! joins waiting deliveries into one request up to the destination's batch
//! limit (Slack lines into one message, Segment calls into one batch), takes
//! each send of a rate-limited destination from the limit every worker
//! shares (joining what arrives while it waits), and waits out a short
//! `Retry-After` itself. Slow lanes never hold up other destinations' lanes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::stop::Stop;
use super::{Job, Report};
use crate::breaker::Verdict;
use crate::dest::{Answer, Attempt, BatchLimit, Destination, Item};
use crate::metrics::RouteMetrics;
use crate::queue::RateLimit;
use crate::rate::Rate;

/// A `Retry-After` up to this long is waited out in the lane; a longer one
/// goes back to the retry set.
const INLINE_WAIT: Duration = Duration::from_secs(10);

/// How far behind a destination's lanes are, for the reader to park its
/// deliveries when it is too far behind: when the last delivery a lane took
/// had been queued. Shared by the destination's lanes.
pub struct Lag {
    epoch: Instant,
    /// Milliseconds after `epoch`.
    taken_queued_at: AtomicU64,
}

impl Default for Lag {
    fn default() -> Lag {
        Lag {
            epoch: Instant::now(),
            taken_queued_at: AtomicU64::new(0),
        }
    }
}

impl Lag {
    fn took(&self, job: &Job) {
        let at = job
            .queued_at
            .saturating_duration_since(self.epoch)
            .as_millis() as u64;
        self.taken_queued_at.fetch_max(at, Ordering::Relaxed);
    }

    /// How long ago the newest delivery the lanes have taken was queued:
    /// while deliveries wait, how far behind the lanes are.
    pub fn behind(&self) -> Duration {
        let taken = Duration::from_millis(self.taken_queued_at.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(taken)
    }
}

/// A destination's share of its rate limit: the queue every worker asks
/// for a send before it makes one.
pub struct Limiter {
    pub queue: Box<dyn RateLimit>,
    pub rate: Rate,
    /// Whether the last ask failed, to warn once per outage.
    failing: bool,
}

impl Limiter {
    pub fn new(queue: Box<dyn RateLimit>, rate: Rate) -> Limiter {
        Limiter {
            queue,
            rate,
            failing: false,
        }
    }

    /// `None` when a send is taken, else how long to wait before asking
    /// again. A queue that cannot be asked means waiting one interval: the
    /// limit is kept even then.
    pub fn take(&mut self, dest: &str) -> Option<Duration> {
        match self.queue.take_token(dest, self.rate) {
            Ok(wait) => {
                self.failing = false;
                wait
            }
            Err(e) => {
                if !std::mem::replace(&mut self.failing, true) {
                    log::warn!(
                        "cannot take a send from {dest}'s rate limit ({e}); waiting for the queue"
                    );
                }
                Some(self.rate.interval())
            }
        }
    }
}

/// The jobs one send carries, up to the destination's batch limit; the
/// first job that does not fit waits for the next send.
struct Batch {
    jobs: Vec<Job>,
    bytes: usize,
    limit: BatchLimit,
    carry: Option<Job>,
}

impl Batch {
    fn new(first: Job, limit: BatchLimit) -> Batch {
        Batch {
            bytes: first.item.body.len(),
            jobs: vec![first],
            limit,
            carry: None,
        }
    }

    fn full(&self) -> bool {
        self.jobs.len() >= self.limit.items || self.carry.is_some()
    }

    /// Joins `job`, or keeps it for the next send when it does not fit.
    /// Only offered while not [`Batch::full`], so no kept job is replaced.
    fn offer(&mut self, job: Job) {
        debug_assert!(self.carry.is_none(), "offered to a full batch");
        if self.jobs.len() >= self.limit.items
            || self.bytes + job.item.body.len() > self.limit.bytes
        {
            self.carry = Some(job);
        } else {
            self.bytes += job.item.body.len();
            self.jobs.push(job);
        }
    }
}

pub struct Lane {
    pub dest: Arc<dyn Destination>,
    /// The route it sends for, named in its reports.
    pub index: crate::route::RouteId,
    pub jobs: Receiver<Job>,
    pub lag: Arc<Lag>,
    pub reports: Sender<Report>,
    pub stop: Stop,
    /// The destinations held: a batch for one goes back unsent.
    pub gate: Arc<super::gate::Gate>,
    /// The destination's breaker, unless off: after this many transient
    /// failures in a row the lane stops sending (see [`super::gate::Gate::failed`]).
    pub breaker: Option<crate::breaker::Settings>,
    /// The destination's shared rate limit, if it has one.
    pub limiter: Option<Limiter>,
    /// This destination's series, when metrics are served.
    pub metrics: Option<RouteMetrics>,
}

impl Lane {
    /// Runs until the job channel closes. Waits only on its jobs and, when
    /// rate limited, on a deadline or the stop request.
    pub fn run(mut self) {
        let limit = self.dest.batch_limit();
        let mut carry: Option<Job> = None;
        loop {
            let first = match carry.take() {
                Some(job) => job,
                // The reader stops and drops the senders on a stop request:
                // this wakes to drain what is queued, then returns.
                None => match self.jobs.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                },
            };
            self.lag.took(&first);
            if self.stopping() {
                self.defer(vec![first]);
                continue;
            }
            let mut batch = Batch::new(first, limit);
            while !batch.full() {
                let Ok(job) = self.jobs.try_recv() else { break };
                self.lag.took(&job);
                batch.offer(job);
            }
            self.send_batch(&mut batch);
            carry = batch.carry;
        }
    }

    /// Sends `batch` once its rate limit allows, joining what arrives while
    /// it waits (for a send, or out a short `Retry-After`), and reports the
    /// outcome; hands it back unsent when the worker stops first.
    fn send_batch(&mut self, batch: &mut Batch) {
        let mut probing = false;
        loop {
            if !self.wait_for_send(batch) {
                return self.defer(std::mem::take(&mut batch.jobs));
            }
            if !probing && !self.pass_gate(batch, &mut probing) {
                return;
            }
            let items: Vec<Item> = batch.jobs.iter().map(|j| j.item.clone()).collect();
            let started = Instant::now();
            let answer = self.send_counted(&items);
            if let Attempt::RetryAfter(wait, _) = &answer.attempt
                && *wait <= INLINE_WAIT
                && !self.stopping()
            {
                log::debug!(
                    "{} is rate limited: waiting {} before sending again",
                    self.dest.name(),
                    humantime::format_duration(*wait)
                );
                self.gather_until(batch, Instant::now() + *wait);
                if !self.stopping() {
                    continue;
                }
            }
            let _ = self.reports.send(Report::Sent {
                dest: self.index,
                jobs: std::mem::take(&mut batch.jobs),
                answer,
                elapsed: started.elapsed(),
            });
            return;
        }
    }

    /// Whether `batch` may be sent: when its destination is held, it goes
    /// back unsent — but for its first job, sent alone, when it is the
    /// breaker's probe this worker holds (`probing` then says so).
    fn pass_gate(&self, batch: &mut Batch, probing: &mut bool) -> bool {
        let name = self.dest.name();
        let Some(closed) = self.gate.closed(name) else {
            return true;
        };
        *probing = self.gate.take_probe(name, super::gate::Step::Send);
        let keep = usize::from(*probing).min(batch.jobs.len());
        let jobs = batch.jobs.split_off(keep);
        if !jobs.is_empty() {
            // Held since the reader dispatched them: parked, not sent.
            let _ = self.reports.send(Report::Held {
                dest: self.index,
                jobs,
                closed,
            });
        }
        !batch.jobs.is_empty()
    }

    /// Takes a send from the shared rate limit, if any, joining the jobs
    /// that arrive meanwhile into `batch`. False when the worker stops first.
    fn wait_for_send(&mut self, batch: &mut Batch) -> bool {
        loop {
            if self.stopping() {
                return false;
            }
            let name = self.dest.name().to_owned();
            let Some(wait) = self.limiter.as_mut().and_then(|l| l.take(&name)) else {
                return true;
            };
            self.gather_until(batch, Instant::now() + wait);
        }
    }

    /// Joins the jobs that arrive into `batch` until `deadline` or a stop.
    fn gather_until(&self, batch: &mut Batch, deadline: Instant) {
        while !batch.full() {
            crossbeam_channel::select! {
                recv(self.jobs) -> job => match job {
                    Ok(job) => {
                        self.lag.took(&job);
                        batch.offer(job);
                    }
                    // Closed: the worker is stopping.
                    Err(_) => return,
                },
                recv(self.stop.channel()) -> _ => return,
                recv(crossbeam_channel::at(deadline)) -> _ => return,
            }
        }
        self.sleep_until(deadline);
    }

    /// Sends; a bug that panics in a destination becomes a failed attempt
    /// (retried, then dead-lettered) instead of a lane that never reports.
    fn send(&self, items: &[Item]) -> Answer {
        let Some(metrics) = &self.metrics else {
            return self.send_unmeasured(items);
        };
        metrics.sending(items.len());
        let started = Instant::now();
        let answer = self.send_unmeasured(items);
        metrics.sent(items.len(), &answer.attempt, started.elapsed());
        answer
    }

    /// Sends, and tells the settler when the receiver said "too many
    /// requests", so `status` counts it for every worker together.
    fn send_counted(&self, items: &[Item]) -> Answer {
        let answer = self.send(items);
        if answer.attempt.is_rate_limited() {
            let _ = self.reports.send(Report::RateLimited { dest: self.index });
        }
        if let Some(breaker) = &self.breaker {
            let name = self.dest.name();
            match crate::breaker::verdict(&answer) {
                Verdict::Failed(error) => self.gate.failed(name, breaker.after, &error),
                Verdict::Delivered => self.gate.delivered(name),
                Verdict::Answered | Verdict::Unsent => {}
            }
        }
        answer
    }

    fn send_unmeasured(&self, items: &[Item]) -> Answer {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.dest.send(items)))
            .unwrap_or_else(|_| {
                Attempt::Transient("internal error while sending (see the log)".into()).into()
            })
    }

    fn stopping(&self) -> bool {
        self.stop.requested()
    }

    /// Deliveries not started when the worker stops go back to the retry set,
    /// due now and without spending an attempt: the next worker sends them.
    fn defer(&self, jobs: Vec<Job>) {
        let _ = self.reports.send(Report::Sent {
            dest: self.index,
            jobs,
            answer: Attempt::Deferred(Duration::ZERO, "the worker stopped before sending".into())
                .into(),
            elapsed: Duration::ZERO,
        });
    }

    fn sleep_until(&self, deadline: Instant) {
        self.stop.wait_until(deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::queue::QueueOptions;
    use crate::queue::sqlite::SqliteQueue;
    use crate::worker::Origin;

    /// Delivers everything, joining up to 40 items a send.
    struct Joining;

    impl Destination for Joining {
        fn name(&self) -> &str {
            "joining"
        }
        fn prepare(&self, _: &Event) -> Result<String, crate::dest::Unsendable> {
            Ok(String::new())
        }
        fn batch_limit(&self) -> BatchLimit {
            BatchLimit {
                items: 40,
                bytes: usize::MAX,
            }
        }
        fn send(&self, _: &[Item]) -> Answer {
            Attempt::Delivered.into()
        }
    }

    fn job(key: &str) -> Job {
        Job {
            origin: Origin::Entry(key.into()),
            item: Item {
                event: Arc::new(Event::new("user.signup", Default::default())),
                body: String::new(),
            },
            attempts: 0,
            queued_at: Instant::now(),
        }
    }

    fn keys(jobs: &[Job]) -> Vec<&str> {
        jobs.iter()
            .map(|j| match &j.origin {
                Origin::Entry(key) | Origin::Retry(key) => key.as_str(),
            })
            .collect()
    }

    #[test]
    fn a_lane_waiting_for_its_rate_joins_what_arrives_and_a_stop_hands_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let queue = SqliteQueue::open(&dir.path().join("events.db"), QueueOptions::default());
        let limiter = Limiter::new(Box::new(queue.unwrap()), Rate::parse("1/h").unwrap());
        let (job_tx, jobs) = crossbeam_channel::unbounded();
        let (reports, report_rx) = crossbeam_channel::unbounded();
        let stop = Stop::default();
        let routes = crate::route::Routes::new(
            &[crate::dest::DestConfig {
                name: "joining".into(),
                events: vec!["*".into()],
                ..crate::dest::DestConfig::console("")
            }],
            None,
            Duration::from_secs(1),
        );
        let lane = Lane {
            dest: Arc::new(Joining),
            index: routes.named("joining").unwrap().id(),
            jobs,
            lag: Arc::new(Lag::default()),
            reports,
            stop: stop.clone(),
            gate: Arc::default(),
            breaker: None,
            limiter: Some(limiter),
            metrics: None,
        };
        let running = std::thread::spawn(move || lane.run());
        job_tx.send(job("1-0")).unwrap();
        // Only a hang guard: the lane now waits an hour for its next send.
        let guard = Duration::from_secs(60);
        let Ok(Report::Sent { answer, jobs, .. }) = report_rx.recv_timeout(guard) else {
            panic!("the first job is sent");
        };
        assert!(matches!(answer.attempt, Attempt::Delivered));
        assert_eq!(keys(&jobs), ["1-0"]);
        // These arrive while the hour's one send is spent.
        job_tx.send(job("2-0")).unwrap();
        job_tx.send(job("3-0")).unwrap();
        assert!(
            report_rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "nothing is sent before the rate allows"
        );
        stop.request();
        drop(job_tx);
        let Ok(Report::Sent { jobs, answer, .. }) = report_rx.recv_timeout(guard) else {
            panic!("the stop ends the wait");
        };
        assert_eq!(keys(&jobs), ["2-0", "3-0"], "joined while waiting");
        assert!(
            matches!(&answer.attempt, Attempt::Deferred(wait, _) if wait.is_zero()),
            "handed back, due now, no attempt spent"
        );
        running.join().unwrap();
    }
}
