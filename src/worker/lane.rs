//! A lane sends one destination's deliveries, one request at a time: it
//! joins waiting deliveries into one request up to the destination's batch
//! limit (Slack lines into one message, Segment calls into one batch), keeps
//! a paced destination to its rate, and waits out a short `Retry-After`
//! itself. Slow lanes never hold up other destinations' lanes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::stop::Stop;
use super::{Job, Report};
use crate::dest::{Attempt, Destination, Item};
use crate::metrics::RouteMetrics;

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

pub struct Lane {
    pub dest: Arc<dyn Destination>,
    /// The route it sends for, named in its reports.
    pub index: crate::route::RouteId,
    pub jobs: Receiver<Job>,
    pub lag: Arc<Lag>,
    pub reports: Sender<Report>,
    pub stop: Stop,
    /// This destination's series, when metrics are served.
    pub metrics: Option<RouteMetrics>,
}

impl Lane {
    /// Runs until the job channel closes. Waits only on its jobs and, when
    /// pacing or rate limited, on a deadline or the stop request.
    pub fn run(self) {
        let limit = self.dest.batch_limit();
        let mut carry: Option<Job> = None;
        let mut last_send: Option<Instant> = None;
        loop {
            if let (Some(pace), Some(last)) = (self.dest.pacing(), last_send) {
                self.sleep_until(last + pace);
            }
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
            let mut bytes = first.item.body.len();
            let mut batch = vec![first];
            while batch.len() < limit.items {
                let Ok(job) = self.jobs.try_recv() else { break };
                self.lag.took(&job);
                if bytes + job.item.body.len() > limit.bytes {
                    carry = Some(job);
                    break;
                }
                bytes += job.item.body.len();
                batch.push(job);
            }
            let items: Vec<Item> = batch.iter().map(|j| j.item.clone()).collect();
            let started = Instant::now();
            let mut attempt = self.send(&items);
            while let Attempt::RetryAfter(wait, _) = &attempt {
                if *wait > INLINE_WAIT || self.stopping() {
                    break;
                }
                log::debug!(
                    "{} is rate limited: waiting {} before sending again",
                    self.dest.name(),
                    humantime::format_duration(*wait)
                );
                self.sleep_until(Instant::now() + *wait);
                if self.stopping() {
                    break;
                }
                attempt = self.send(&items);
            }
            last_send = Some(Instant::now());
            let _ = self.reports.send(Report::Sent {
                dest: self.index,
                jobs: batch,
                attempt,
                elapsed: started.elapsed(),
            });
        }
    }

    /// Sends; a bug that panics in a destination becomes a failed attempt
    /// (retried, then dead-lettered) instead of a lane that never reports.
    fn send(&self, items: &[Item]) -> Attempt {
        let Some(metrics) = &self.metrics else {
            return self.send_unmeasured(items);
        };
        metrics.sending(items.len());
        let started = Instant::now();
        let attempt = self.send_unmeasured(items);
        metrics.sent(items.len(), &attempt, started.elapsed());
        attempt
    }

    fn send_unmeasured(&self, items: &[Item]) -> Attempt {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.dest.send(items)))
            .unwrap_or_else(|_| {
                Attempt::Transient("internal error while sending (see the log)".into())
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
            attempt: Attempt::Deferred(Duration::ZERO, "the worker stopped before sending".into()),
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
    use crate::worker::Origin;

    /// Delivers everything, then asks for an hour between sends.
    struct Paced;

    impl Destination for Paced {
        fn name(&self) -> &str {
            "paced"
        }
        fn prepare(&self, _: &Event) -> Result<String, String> {
            Ok(String::new())
        }
        fn pacing(&self) -> Option<Duration> {
            Some(Duration::from_secs(3600))
        }
        fn send(&self, _: &[Item]) -> Attempt {
            Attempt::Delivered
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

    #[test]
    fn a_stop_wakes_a_pacing_lane_which_hands_back_what_it_had_not_sent() {
        let (job_tx, jobs) = crossbeam_channel::unbounded();
        let (reports, report_rx) = crossbeam_channel::unbounded();
        let stop = Stop::default();
        let routes = crate::route::Routes::new(
            &[crate::config::DestConfig {
                name: "paced".into(),
                settings: crate::config::DestSettings::Console,
                events: vec!["*".into()],
            }],
            None,
            Duration::from_secs(1),
        );
        let lane = Lane {
            dest: Arc::new(Paced),
            index: routes.named("paced").unwrap().id(),
            jobs,
            lag: Arc::new(Lag::default()),
            reports,
            stop: stop.clone(),
            metrics: None,
        };
        let running = std::thread::spawn(move || lane.run());
        job_tx.send(job("1-0")).unwrap();
        job_tx.send(job("2-0")).unwrap();
        // Only a hang guard: the lane now waits out its hour of pacing.
        let guard = Duration::from_secs(60);
        let Ok(Report::Sent { attempt, .. }) = report_rx.recv_timeout(guard) else {
            panic!("the first job is sent");
        };
        assert!(matches!(attempt, Attempt::Delivered));
        stop.request();
        drop(job_tx);
        let Ok(Report::Sent { jobs, attempt, .. }) = report_rx.recv_timeout(guard) else {
            panic!("the stop ends the pacing wait");
        };
        assert!(matches!(&jobs[0].origin, Origin::Entry(key) if key == "2-0"));
        assert!(
            matches!(&attempt, Attempt::Deferred(wait, _) if wait.is_zero()),
            "handed back, due now, no attempt spent"
        );
        running.join().unwrap();
    }
}
