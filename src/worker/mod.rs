//! The worker: claims events from the queue, hands each to the lanes of the
//! destinations it is routed to, and lets the settler record every outcome.
//!
//! Three kinds of threads, so that no destination waits for another:
//! - the **reader** (this module) claims stream entries and due retries,
//!   dead-letters poison, and dispatches deliveries, keeping at most a
//!   window of claimed work in flight;
//! - one or more **lanes** per destination send ([`lane`]);
//! - the **settler** writes acknowledgements, retries and dead letters
//!   atomically ([`settler`]).
//!
//! Stopping (SIGINT/SIGTERM) stops the reader; lanes finish what they are
//! sending and hand back what they had not started; the settler writes it
//! all; then `run` returns.

pub mod held;
pub mod lane;
pub mod settler;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::dest::{self, Attempt, Destination, Item};
use crate::event::{Event, now_ms};
use crate::queue::{
    self, Backlog, DeadLetter, Queue, QueueError, RetryClaim, StreamEntry, UnavailableReason,
};
use crate::route::{POISON_DEST, PerRoute, Route, RouteId, Routes};
use crate::template::Style;
use settler::Settler;

/// Where a delivery came from, to settle it there.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A stream entry (its key); acknowledged once all its deliveries are.
    Entry(String),
    /// A claimed retry (its token).
    Retry(String),
}

/// One delivery on its way to a lane.
#[derive(Debug, Clone)]
pub struct Job {
    pub origin: Origin,
    pub item: Item,
    /// Attempts already spent on this delivery.
    pub attempts: u32,
    /// When it was handed to the lanes.
    pub queued_at: Instant,
}

/// What the reader and the lanes tell the settler.
pub enum Report {
    /// An entry was claimed and has this many deliveries to make.
    Entry { key: String, deliveries: usize },
    /// An entry (or a retry) that cannot be delivered anywhere.
    Poison { origin: Origin, letter: DeadLetter },
    /// A lane sent (or gave up on) these jobs.
    Sent {
        dest: RouteId,
        jobs: Vec<Job>,
        attempt: Attempt,
        elapsed: Duration,
    },
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub consumer: String,
    pub concurrency: usize,
    /// Exit once nothing is new, pending or due for retry within
    /// [`BURST_SOON`].
    pub burst: bool,
    /// Deliver only to these destinations (all when empty).
    pub only: Vec<String>,
}

/// Claimed entries and retries in flight at most.
const WINDOW: usize = 2000;
/// Entries claimed per read at most.
const CLAIM_BATCH: usize = 500;
/// How far behind a destination's lanes may fall before its new deliveries
/// wait in the retry set instead, so a slow destination (Slack working
/// through a burst at one message a second, a webhook timing out) never
/// fills the window and stalls the others.
const BEHIND: Duration = Duration::from_secs(5);
/// When a delivery parked for a destination that is behind comes back.
const DEFER_BEHIND: Duration = Duration::from_secs(1);
/// How far ahead `--burst` waits for a scheduled retry: backoffs and short
/// `Retry-After`s fall inside it, and a cron job still ends within seconds
/// when a destination asked for an hour's pause.
pub const BURST_SOON: Duration = Duration::from_secs(5);
/// How often history is trimmed to the retention.
const TRIM_EVERY: Duration = Duration::from_secs(600);

pub struct Worker {
    config: Config,
    options: Options,
    catalog: Catalog,
    /// Every configured destination: an event is routed to all of them,
    /// and its deliveries to those this worker does not serve wait for a
    /// worker that does.
    routes: Arc<Routes>,
    /// The routes this worker delivers to (`--only`; all when empty).
    only: Vec<RouteId>,
}

/// A route as this worker serves it: its sender, the channel to its lanes
/// and how far behind they are.
struct Served {
    route: Route,
    /// `None` when another worker delivers there (`--only`).
    sender: Option<Arc<dyn Destination>>,
    jobs: Sender<Job>,
    lag: Arc<lane::Lag>,
}

impl Worker {
    /// A worker for `config`'s destinations (or those `options.only` names).
    pub fn new(config: &Config, options: Options) -> Result<Worker, crate::Error> {
        let routes = Routes::from_config(config)?;
        let only = routes.resolve("--only", &options.only)?;
        Ok(Worker {
            catalog: config.catalog.clone(),
            config: config.clone(),
            options,
            routes: Arc::new(routes),
            only,
        })
    }

    /// Whether this worker delivers to `route`.
    fn serves(&self, route: &Route) -> bool {
        self.only.is_empty() || self.only.contains(&route.id())
    }

    /// Runs until `stop` is set (or, with `burst`, until there is nothing
    /// left to do).
    pub fn run(self, stop: Arc<AtomicBool>) -> Result<(), crate::Error> {
        let mut reader = queue::open(&self.config)?;
        let settler_queue = queue::open(&self.config)?;
        let inflight = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(held::Held::default());
        let (report_tx, report_rx) = crossbeam_channel::unbounded();
        let settler = Settler {
            queue: settler_queue,
            consumer: self.options.consumer.clone(),
            reports: report_rx,
            routes: Arc::clone(&self.routes),
            inflight: Arc::clone(&inflight),
            held: Arc::clone(&held),
            give_up_after: settler::give_up_after(self.config.delivery.claim_lease),
        };
        let settler = std::thread::Builder::new()
            .name("settler".into())
            .spawn(move || settler.run())
            .expect("threads can be spawned");
        let (served, lanes) = self.start_lanes(&report_tx, &stop);
        let reader_loop = Reader {
            worker: &self,
            queue: reader.as_mut(),
            reports: report_tx,
            routes: served,
            inflight,
            held,
            stop: &stop,
            unavailable_since: None,
        };
        let result = reader_loop.run();
        let consumer = self.options.consumer.clone();
        let holder = holder();
        // Lanes drain and exit once the job senders (owned by the reader) are
        // gone; the settler exits once every report sender is gone.
        for lane in lanes {
            let _ = lane.join();
        }
        let settled = settler.join().unwrap_or(false);
        // Another worker may take the name from now on. Only ours is
        // removed, whatever happened above.
        if let Err(e) = reader.release_consumer(&consumer, &holder) {
            log::debug!("cannot release the consumer name {consumer}: {e}");
        }
        result?;
        if settled && let Err(e) = reader.leave(&consumer) {
            log::debug!("cannot remove consumer {consumer} from the group: {e}");
        }
        if !settled {
            return Err(QueueError::unavailable(
                UnavailableReason::Unreachable,
                "the queue stayed unreachable while the worker stopped; unrecorded deliveries will be made again",
            )
            .into());
        }
        Ok(())
    }

    /// Builds the sender of each route this worker serves and starts its
    /// lanes.
    fn start_lanes(
        &self,
        reports: &Sender<Report>,
        stop: &Arc<AtomicBool>,
    ) -> (PerRoute<Served>, Vec<std::thread::JoinHandle<()>>) {
        let mut handles = Vec::new();
        let served = self.routes.each(|route| {
            let (jobs, rx) = crossbeam_channel::unbounded();
            let served = Served {
                route: route.clone(),
                sender: self.serves(route).then(|| {
                    let delivery = &self.config.delivery;
                    dest::build(route.config(), &self.catalog, delivery.http_timeout)
                }),
                jobs,
                lag: Arc::new(lane::Lag::default()),
            };
            if let Some(dest) = &served.sender {
                // A destination that joins deliveries (or is paced) sends
                // from one lane, in order; the others from `concurrency`.
                let lanes = if dest.pacing().is_some() || dest.batch_limit().items > 1 {
                    1
                } else {
                    self.options.concurrency
                };
                for n in 0..lanes {
                    let lane = lane::Lane {
                        dest: Arc::clone(dest),
                        index: route.id(),
                        jobs: rx.clone(),
                        lag: Arc::clone(&served.lag),
                        reports: reports.clone(),
                        stop: Arc::clone(stop),
                    };
                    handles.push(
                        std::thread::Builder::new()
                            .name(format!("{}-{n}", dest.name()))
                            .spawn(move || lane.run())
                            .expect("threads can be spawned"),
                    );
                }
            }
            served
        });
        (served, handles)
    }
}

struct Reader<'a> {
    worker: &'a Worker,
    queue: &'a mut dyn Queue,
    reports: Sender<Report>,
    /// Each route's sender, lanes and lag.
    routes: PerRoute<Served>,
    inflight: Arc<AtomicUsize>,
    /// What this worker holds, to renew and never dispatch twice.
    held: Arc<held::Held>,
    stop: &'a AtomicBool,
    unavailable_since: Option<Instant>,
}

impl Reader<'_> {
    fn run(mut self) -> Result<(), crate::Error> {
        let consumer = self.worker.options.consumer.clone();
        let holder = holder();
        let lease = self.worker.config.delivery.claim_lease;
        // The name is ours alone while we run: two workers under one name
        // would each take over what the other is delivering.
        while !self.stopping() {
            let taken = self.until_available(|q| {
                match q.hold_consumer(&consumer, &holder, lease) {
                    // Killed on this very host (SIGKILL, OOM) and restarted
                    // under its name: the holder is gone, no need to wait
                    // out its lease.
                    Err(QueueError::ConsumerHeld(held)) if died_here(&held.holder) => {
                        log::info!(
                            "taking over the consumer name {consumer} from {}, which is no longer running",
                            held.holder
                        );
                        q.release_consumer(&consumer, &held.holder).map(|()| false)
                    }
                    other => other.map(|()| true),
                }
            })?;
            if taken == Some(true) {
                break;
            }
        }
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
        let mut next_trim = Instant::now();
        let mut next_renewal = Instant::now() + self.renew_every();
        let mut next_retry_poll = Instant::now();
        while !self.stopping() {
            if Instant::now() >= next_renewal {
                match self.queue.hold_consumer(&consumer, &holder, lease) {
                    Ok(()) => {}
                    // Out of reach for longer than the lease, another worker
                    // took the name: carrying on would deliver twice.
                    Err(e @ QueueError::ConsumerHeld(_)) => return Err(e.into()),
                    Err(e) => log::warn!("cannot renew the consumer name {consumer}: {e}"),
                }
                self.renew();
                next_renewal = Instant::now() + self.renew_every();
            }
            if Instant::now() >= next_trim {
                self.trim();
                next_trim = Instant::now() + TRIM_EVERY;
            }
            let mut got_retries = 0;
            if Instant::now() >= next_retry_poll {
                let room = self.room();
                if room > 0 {
                    let only = self.worker.options.only.clone();
                    let claims = self.until_available(|q| {
                        q.claim_retries(now_ms(), room.min(CLAIM_BATCH), &only)
                    })?;
                    got_retries = claims.as_ref().map_or(0, Vec::len);
                    self.dispatch_retries(claims.unwrap_or_default());
                    if got_retries == 0 {
                        // Nothing due: look again in a moment.
                        next_retry_poll = Instant::now() + Duration::from_millis(200);
                    }
                }
            }
            let room = self.room();
            if room == 0 {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            let busy = self.inflight.load(Ordering::SeqCst) > 0;
            // Busy, only look (Redis rounds a blocking wait up to its 100 ms
            // tick, which would throttle the retries); idle, wait for new
            // events, briefly when a burst is about to check it is done.
            let block =
                Duration::from_millis(match (busy || got_retries > 0, self.worker.options.burst) {
                    (true, _) => 0,
                    (false, true) => 20,
                    (false, false) => 500,
                });
            let entries =
                self.until_available(|q| q.claim(&consumer, room.min(CLAIM_BATCH), block))?;
            let Some(entries) = entries else { continue };
            let claimed = entries.len();
            self.dispatch_entries(entries);
            if claimed == 0 && got_retries == 0 && busy {
                // Waiting for sends to finish: do not spin.
                std::thread::sleep(Duration::from_millis(5));
            }
            if self.worker.options.burst
                && claimed == 0
                && got_retries == 0
                && !busy
                && self.finished()?
            {
                log::debug!("nothing new, pending or scheduled for retry: stopping (--burst)");
                break;
            }
        }
        Ok(())
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn room(&self) -> usize {
        WINDOW.saturating_sub(self.inflight.load(Ordering::SeqCst))
    }

    /// Runs a queue operation; while the queue is unreachable, logs once,
    /// backs off and returns `None`, so the loop can notice a stop request.
    fn until_available<T>(
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
                let deadline = Instant::now() + wait;
                while Instant::now() < deadline && !self.stopping() {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// With `--burst`: nothing unread, nothing pending anywhere, and no
    /// retry due within [`BURST_SOON`]. Waits a little for one due sooner;
    /// says what it leaves scheduled for later.
    fn finished(&mut self) -> Result<bool, crate::Error> {
        let only = self.worker.options.only.clone();
        let Some(backlog) = self.until_available(|q| q.backlog(&only))? else {
            return Ok(false);
        };
        match burst_verdict(&backlog, now_ms()) {
            BurstVerdict::Busy => Ok(false),
            BurstVerdict::WaitFor(wait) => {
                std::thread::sleep(wait);
                Ok(false)
            }
            BurstVerdict::Done => Ok(true),
            BurstVerdict::DoneLeaving { retries, next_in } => {
                log::info!(
                    "leaving {retries} {} scheduled, the next due in {}",
                    if retries == 1 { "retry" } else { "retries" },
                    rounded(next_in)
                );
                Ok(true)
            }
        }
    }

    /// Claims are renewed when a third of the lease has passed, so a slow
    /// delivery never lets its lease run out.
    fn renew_every(&self) -> Duration {
        self.worker.config.delivery.claim_lease / 3
    }

    fn renew(&mut self) {
        let (entries, retries) = self.held.to_renew(self.renew_every());
        if entries.is_empty() && retries.is_empty() {
            return;
        }
        let consumer = &self.worker.options.consumer;
        match self.queue.renew(consumer, &entries, &retries) {
            Ok(()) => log::debug!(
                "renewed the claims on {} entries and {} retries still in flight",
                entries.len(),
                retries.len()
            ),
            Err(e) => log::warn!("cannot renew the claims still in flight: {e}"),
        }
    }

    fn trim(&mut self) {
        let before = now_ms() - self.worker.config.delivery.retention.as_millis() as i64;
        match self.queue.trim(before) {
            Ok(0) => {}
            Ok(n) => log::info!("trimmed {n} delivered events older than the retention"),
            Err(e) => log::warn!("cannot trim history: {e}"),
        }
    }

    fn report(&self, report: Report) {
        let _ = self.reports.send(report);
    }

    fn dispatch_entries(&mut self, mut entries: Vec<StreamEntry>) {
        entries.retain(|e| self.held.claim_entry(&e.key));
        self.inflight.fetch_add(entries.len(), Ordering::SeqCst);
        for entry in entries {
            let key = entry.key;
            let event = match entry.event {
                Ok(event) => event,
                Err(poison) => {
                    self.report(Report::Poison {
                        origin: Origin::Entry(key),
                        letter: poison_letter(Err(poison.raw), poison.reason),
                    });
                    continue;
                }
            };
            if let Err(e) = self.worker.catalog.render(&event, Style::Plain) {
                self.report(Report::Poison {
                    origin: Origin::Entry(key),
                    letter: poison_letter(Ok(event), e.to_string()),
                });
                continue;
            }
            let targets: Vec<RouteId> = self.worker.routes.of(&event.kind).map(Route::id).collect();
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

    fn dispatch_retries(&mut self, claims: Vec<RetryClaim>) {
        self.inflight.fetch_add(claims.len(), Ordering::SeqCst);
        for RetryClaim { token, delivery } in claims {
            self.held.claim_retry(&token);
            let origin = Origin::Retry(token);
            let event = Arc::new(delivery.event);
            match self.worker.routes.named(&delivery.dest).map(Route::id) {
                Some(route) => self.send_job(route, origin, event, delivery.attempts),
                None => {
                    // Claimed without --only, so no destination of this
                    // name is configured any more.
                    let letter = DeadLetter {
                        event: Ok((*event).clone()),
                        dest: delivery.dest.clone(),
                        attempts: delivery.attempts,
                        error: format!("destination '{}' is not configured", delivery.dest),
                        at_ms: now_ms(),
                    };
                    self.report(Report::Poison { origin, letter });
                }
            }
        }
    }

    fn send_job(&self, route: RouteId, origin: Origin, event: Arc<Event>, attempts: u32) {
        let served = &self.routes[route];
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
            Err(e) => self.unsent(route, origin, event, attempts, Attempt::Permanent(e)),
        }
    }

    /// Settles a delivery that was never sent, with `attempt` as its outcome.
    fn unsent(
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
            attempt,
            elapsed: Duration::ZERO,
        });
    }
}

/// The stable name of this process, for the consumer name's lease.
fn holder() -> String {
    format!("{} pid {}", host(), std::process::id())
}

fn host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Whether `holder` (see [`holder`]) was a process of this host that no
/// longer runs.
fn died_here(holder: &str) -> bool {
    holder_pid_on(holder, &host()).is_some_and(|pid| !process_alive(pid))
}

/// The pid in `holder` when it names a process on `host`.
fn holder_pid_on(holder: &str, host: &str) -> Option<u32> {
    let (their_host, pid) = holder.rsplit_once(" pid ")?;
    (their_host == host).then(|| pid.parse().ok()).flatten()
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // Signal 0 checks for the process without touching it; EPERM means it
    // exists under another user.
    // SAFETY: kill with signal 0 sends nothing and has no memory effects.
    let found = unsafe { libc::kill(pid, 0) } == 0;
    found || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    true
}

/// What a `--burst` worker with nothing in hand does next.
#[derive(Debug, PartialEq, Eq)]
enum BurstVerdict {
    /// Entries are unread or pending somewhere.
    Busy,
    /// A retry is due soon: look again after this.
    WaitFor(Duration),
    /// Nothing left at all.
    Done,
    /// Only retries due later than [`BURST_SOON`] are left.
    DoneLeaving { retries: u64, next_in: Duration },
}

fn burst_verdict(backlog: &Backlog, now_ms: i64) -> BurstVerdict {
    if backlog.unread > 0 || backlog.pending > 0 {
        return BurstVerdict::Busy;
    }
    let Some(due) = backlog.next_retry_ms.filter(|_| backlog.retries > 0) else {
        return BurstVerdict::Done;
    };
    let next_in = Duration::from_millis(due.saturating_sub(now_ms).max(0) as u64);
    if next_in <= BURST_SOON {
        BurstVerdict::WaitFor(next_in.min(Duration::from_secs(1)))
    } else {
        BurstVerdict::DoneLeaving {
            retries: backlog.retries,
            next_in,
        }
    }
}

/// `59m`, `2h 5m`, `12s`: precise enough to plan by.
fn rounded(d: Duration) -> String {
    let secs = d.as_secs();
    let secs = if secs >= 60 { secs / 60 * 60 } else { secs };
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

fn poison_letter(event: Result<Event, String>, reason: String) -> DeadLetter {
    DeadLetter {
        event,
        dest: POISON_DEST.into(),
        attempts: 0,
        error: reason,
        at_ms: now_ms(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backlog(unread: u64, pending: u64, retries: u64, next: Option<i64>) -> Backlog {
        Backlog {
            unread,
            pending,
            retries,
            next_retry_ms: next,
        }
    }

    #[test]
    fn a_burst_waits_for_retries_due_soon_and_leaves_later_ones() {
        let now = 1_000_000;
        assert_eq!(
            burst_verdict(&backlog(1, 0, 0, None), now),
            BurstVerdict::Busy
        );
        assert_eq!(
            burst_verdict(&backlog(0, 2, 1, Some(now)), now),
            BurstVerdict::Busy
        );
        assert_eq!(
            burst_verdict(&backlog(0, 0, 0, None), now),
            BurstVerdict::Done
        );
        assert_eq!(
            burst_verdict(&backlog(0, 0, 1, Some(now + 300)), now),
            BurstVerdict::WaitFor(Duration::from_millis(300))
        );
        assert_eq!(
            burst_verdict(&backlog(0, 0, 1, Some(now + 4_000)), now),
            BurstVerdict::WaitFor(Duration::from_secs(1))
        );
        assert_eq!(
            burst_verdict(&backlog(0, 0, 3, Some(now + 3_599_000)), now),
            BurstVerdict::DoneLeaving {
                retries: 3,
                next_in: Duration::from_millis(3_599_000)
            }
        );
    }

    #[test]
    fn only_a_holder_of_this_host_that_is_gone_is_taken_over() {
        assert_eq!(holder_pid_on("vm-1 pid 42", "vm-1"), Some(42));
        assert_eq!(holder_pid_on("vm-1 pid 42", "vm-2"), None);
        assert_eq!(holder_pid_on("a pid b pid 7", "a pid b"), Some(7));
        assert_eq!(holder_pid_on("garbage", "vm-1"), None);
        assert!(process_alive(std::process::id()));
        assert!(!died_here(&holder()), "this process is alive");
    }

    #[test]
    fn the_time_left_reads_in_whole_minutes() {
        assert_eq!(rounded(Duration::from_millis(3_599_000)), "59m");
        assert_eq!(rounded(Duration::from_secs(7_500)), "2h 5m");
        assert_eq!(rounded(Duration::from_millis(12_400)), "12s");
    }
}
