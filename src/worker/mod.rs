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
//!
//! Nothing sleeps to wait for work, which would add its sleep to every
//! event's latency: the reader blocks in the queue's read while its window
//! has room (a new entry ends the wait at once) and otherwise waits for the
//! settler to free slots ([`wake`]); lanes and the settler wait on their
//! channels; a stop request wakes every one of them ([`stop`]).

pub mod held;
pub mod lane;
pub mod settings;
pub mod settler;
pub mod stop;
pub mod wake;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::alert;
use crate::catalog::Catalog;
use crate::dest::{self, Attempt, Destination, Item};
use crate::event::{Event, now_ms};
use crate::metrics::Metrics;
use crate::queue::{
    Backlog, DeadFilter, DeadLetter, Queue, QueueError, RetryClaim, StreamEntry, UnavailableReason,
};
use crate::route::{POISON_DEST, PerRoute, Route, RouteId, Routes};
use crate::sanitize::escape;
use crate::setup::Setup;
use crate::template::Style;
use settler::Settler;
pub use stop::Stop;
use wake::Wake;

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
        /// The HTTP status of the receiver's last answer, if it gave one.
        status: Option<u16>,
    },
    /// A lane's request was answered "too many requests" (and, when the
    /// wait was short, is being sent again): counted in the queue.
    RateLimited { dest: RouteId },
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
/// How often history and dead letters are trimmed to their retentions.
const TRIM_EVERY: Duration = Duration::from_secs(600);
/// How often alert windows that ended are asked for the dead letters they
/// counted, at most: an alert window's remainder is reported this long
/// after it ends at the latest (sooner for a short window).
const ALERTS_EVERY: Duration = Duration::from_secs(30);
/// How long one read waits for new entries at most: a stop request is
/// noticed within it (plus Redis's 100 ms timer tick, to which it rounds a
/// `BLOCK` up; an entry that arrives ends the wait at once).
const MAX_BLOCK: Duration = Duration::from_millis(500);
/// How often the retry set is looked at for retries this worker did not
/// schedule itself (a replay, another worker's `--only` leftovers); those
/// its settler schedules are claimed when due.
const RETRY_LOOK: Duration = Duration::from_millis(500);
/// How long a `--burst` worker waits before it looks again when entries
/// are unread or held by other workers.
const BURST_LOOK: Duration = Duration::from_millis(20);

pub struct Worker {
    config: Setup,
    options: Options,
    catalog: Catalog,
    /// Every configured destination: an event is routed to all of them,
    /// and its deliveries to those this worker does not serve wait for a
    /// worker that does.
    routes: Arc<Routes>,
    /// The routes this worker delivers to (`--only`; all when empty).
    only: Vec<RouteId>,
    /// Where outcomes, durations and lag are counted (`--metrics-addr`).
    metrics: Option<Arc<Metrics>>,
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
    pub fn new(config: &Setup, options: Options) -> Result<Worker, crate::Error> {
        let routes = config.routes()?;
        let only = routes.resolve("--only", &options.only)?;
        Ok(Worker {
            catalog: config.catalog.clone(),
            config: config.clone(),
            options,
            routes: Arc::new(routes),
            only,
            metrics: None,
        })
    }

    /// Every configured destination, as the worker routes to them.
    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    /// Counts what the worker does in `metrics` (made for [`routes`](Self::routes)).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Worker {
        self.metrics = Some(metrics);
        self
    }

    /// Whether this worker delivers to `route`.
    fn serves(&self, route: &Route) -> bool {
        self.only.is_empty() || self.only.contains(&route.id())
    }

    /// Runs until a stop is requested (or, with `burst`, until there is
    /// nothing left to do).
    pub fn run(self, stop: Stop) -> Result<(), crate::Error> {
        let mut reader = self.config.open_queue()?;
        let settler_queue = self.config.open_queue()?;
        let inflight = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(held::Held::default());
        let wake = Arc::new(Wake::new(&self.options.only));
        let (report_tx, report_rx) = crossbeam_channel::unbounded();
        let (served, lanes) = self.start_lanes(&report_tx, &stop)?;
        let settler = Settler {
            queue: settler_queue,
            consumer: self.options.consumer.clone(),
            reports: report_rx,
            routes: Arc::clone(&self.routes),
            inflight: Arc::clone(&inflight),
            held: Arc::clone(&held),
            give_up_after: settler::give_up_after(self.config.delivery.claim_lease),
            wake: Arc::clone(&wake),
            metrics: self.metrics.clone(),
            alerts: self.config.delivery.alerts,
            alert_window: self.config.delivery.alert_window,
        };
        let settler = std::thread::Builder::new()
            .name("settler".into())
            .spawn(move || settler.run())
            .expect("threads can be spawned");
        let reader_loop = Reader {
            worker: &self,
            queue: reader.as_mut(),
            reports: report_tx,
            routes: served,
            inflight,
            held,
            stop: stop.clone(),
            wake,
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
        stop: &Stop,
    ) -> Result<(PerRoute<Served>, Vec<std::thread::JoinHandle<()>>), crate::Error> {
        let mut handles = Vec::new();
        let mut failed = None;
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
            let Some(dest) = &served.sender else {
                return served;
            };
            // A rate-limited destination asks the queue for each send, on a
            // connection of its own.
            let limiter = match route.rate().map(|rate| {
                self.config
                    .open_queue()
                    .map(|queue| lane::Limiter::new(queue, rate))
            }) {
                Some(Err(e)) => {
                    failed = Some(e);
                    return served;
                }
                limiter => limiter.and_then(Result::ok),
            };
            // A destination that joins deliveries (or is rate limited) sends
            // from one lane, in order; the others from `concurrency`.
            let lanes = if limiter.is_some() || dest.batch_limit().items > 1 {
                1
            } else {
                self.options.concurrency
            };
            let mut limiter = limiter;
            for n in 0..lanes {
                let lane = lane::Lane {
                    dest: Arc::clone(dest),
                    index: route.id(),
                    jobs: rx.clone(),
                    lag: Arc::clone(&served.lag),
                    reports: reports.clone(),
                    stop: stop.clone(),
                    limiter: limiter.take(),
                    metrics: self.metrics.as_ref().map(|m| m.route(route.id()).clone()),
                };
                handles.push(
                    std::thread::Builder::new()
                        .name(format!("{}-{n}", dest.name()))
                        .spawn(move || lane.run())
                        .expect("threads can be spawned"),
                );
            }
            served
        });
        match failed {
            Some(e) => Err(e.into()),
            None => Ok((served, handles)),
        }
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
    stop: Stop,
    /// What the settler tells the reader (freed slots, retries scheduled).
    wake: Arc<Wake>,
    unavailable_since: Option<Instant>,
}

impl Reader<'_> {
    fn run(mut self) -> Result<(), crate::Error> {
        let consumer = self.worker.options.consumer.clone();
        let holder = holder();
        if !self.take_name(&consumer, &holder)? {
            return Ok(());
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
        let now = Instant::now();
        let mut timers = Timers {
            renewal: now + self.renew_every(),
            trim: now,
            retries: now,
            alerts: now + self.alerts_every(),
        };
        let only = self.worker.options.only.clone();
        let burst = self.worker.options.burst;
        while !self.stopping() {
            let now = Instant::now();
            if now >= timers.renewal {
                self.renew(&consumer, &holder)?;
                timers.renewal = now + self.renew_every();
            }
            if now >= timers.trim {
                self.trim();
                timers.trim = now + TRIM_EVERY;
            }
            if now >= timers.alerts {
                self.raise_owed_alerts();
                timers.alerts = now + self.alerts_every();
            }
            if let Some(due) = self.wake.take_next_due() {
                timers.retries = timers.retries.min(due_instant(now, now_ms(), due));
            }
            let mut got_retries = 0;
            let room = self.room();
            if room > 0 && Instant::now() >= timers.retries {
                let asked = room.min(CLAIM_BATCH);
                let claimed = self.until_available(|q| q.claim_retries(now_ms(), asked, &only))?;
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

    /// Takes the consumer name: it is ours alone while we run, as two
    /// workers under one name would each take over what the other is
    /// delivering. False when stopped first.
    fn take_name(&mut self, consumer: &str, holder: &str) -> Result<bool, crate::Error> {
        let lease = self.worker.config.delivery.claim_lease;
        while !self.stopping() {
            let taken = self.until_available(|q| {
                match q.hold_consumer(consumer, holder, lease) {
                    // Killed on this very host (SIGKILL, OOM) and restarted
                    // under its name: the holder is gone, no need to wait
                    // out its lease.
                    Err(QueueError::ConsumerHeld(held)) if died_here(&held.holder) => {
                        log::info!(
                            "taking over the consumer name {consumer} from {}, which is no longer running",
                            held.holder
                        );
                        q.release_consumer(consumer, &held.holder).map(|()| false)
                    }
                    other => other.map(|()| true),
                }
            })?;
            if taken == Some(true) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn stopping(&self) -> bool {
        self.stop.requested()
    }

    fn room(&self) -> usize {
        WINDOW.saturating_sub(self.inflight.load(Ordering::SeqCst))
    }

    /// Waits for the settler to free window slots, for `deadline` (the next
    /// chore), or for a stop request, whichever comes first.
    fn wait_for_room(&self, deadline: Instant) {
        crossbeam_channel::select! {
            recv(self.wake.freed_signal()) -> _ => {}
            recv(self.stop.channel()) -> _ => {}
            recv(crossbeam_channel::at(deadline)) -> _ => {}
        }
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
                self.stop.wait_until(Instant::now() + wait);
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
            BurstVerdict::Busy => {
                // Another worker holds entries, or some came in just now.
                self.stop.wait_until(Instant::now() + BURST_LOOK);
                Ok(false)
            }
            BurstVerdict::WaitFor(wait) => {
                self.stop.wait_until(Instant::now() + wait);
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

    /// Renews the consumer name's lease and the claims still in flight.
    fn renew(&mut self, consumer: &str, holder: &str) -> Result<(), crate::Error> {
        let lease = self.worker.config.delivery.claim_lease;
        match self.queue.hold_consumer(consumer, holder, lease) {
            Ok(()) => {}
            // Out of reach for longer than the lease, another worker
            // took the name: carrying on would deliver twice.
            Err(e @ QueueError::ConsumerHeld(_)) => return Err(e.into()),
            Err(e) => log::warn!("cannot renew the consumer name {consumer}: {e}"),
        }
        self.renew_claims();
        Ok(())
    }

    fn renew_claims(&mut self) {
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

    /// How often to look for alerts owed: a tenth of the window, at most
    /// [`ALERTS_EVERY`]; never, in effect, with alerts off.
    fn alerts_every(&self) -> Duration {
        let delivery = &self.worker.config.delivery;
        if delivery.alerts {
            (delivery.alert_window / 10).clamp(Duration::from_millis(100), ALERTS_EVERY)
        } else {
            Duration::from_secs(86_400 * 365)
        }
    }

    /// Raises the alerts that windows ended owing: the dead letters counted
    /// while a window was open, when no later one came to carry them.
    fn raise_owed_alerts(&mut self) {
        let window = self.worker.config.delivery.alert_window;
        let owed = match self.queue.alerts_due(window) {
            Ok(owed) => owed,
            Err(e) => return log::warn!("cannot look for dead-letter alerts owed: {e}"),
        };
        for tally in owed {
            let alert = alert::event(&tally.dest, tally.count, &tally.error);
            if let Err(e) = self.queue.append(&[alert]) {
                log::warn!(
                    "cannot raise the dead-letter alert about {}: {e}",
                    escape(&tally.dest)
                );
            }
        }
    }

    fn trim(&mut self) {
        let before = now_ms() - self.worker.config.delivery.retention.as_millis() as i64;
        match self.queue.trim(before) {
            Ok(0) => {}
            Ok(n) => log::info!("trimmed {n} delivered events older than the retention"),
            Err(e) => log::warn!("cannot trim history: {e}"),
        }
        let before = now_ms() - self.worker.config.delivery.dead_retention.as_millis() as i64;
        match self.queue.purge_dead(&DeadFilter::before(before)) {
            Ok(0) => {}
            Ok(n) => log::info!("removed {n} dead letters older than EVENTS_DEAD_RETENTION"),
            Err(e) => log::warn!("cannot remove old dead letters: {e}"),
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
            let targets: Vec<RouteId> = self.worker.routes.of(&event).map(Route::id).collect();
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
            status: None,
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

/// When the reader next has something to do besides reading new entries.
struct Timers {
    /// Renew the consumer name and the claims in flight.
    renewal: Instant,
    trim: Instant,
    /// Look for due retries.
    retries: Instant,
    /// Look for dead-letter alerts owed by windows that ended.
    alerts: Instant,
}

impl Timers {
    /// The next chore; due retries count only with `room` to claim them
    /// (otherwise a full window would spin on a retry look it cannot make).
    fn next(&self, room: bool) -> Instant {
        let next = self.renewal.min(self.trim).min(self.alerts);
        if room { next.min(self.retries) } else { next }
    }
}

/// How long the next read may wait for new entries (an entry that arrives
/// ends the wait at once): until the next chore, and never longer than
/// [`MAX_BLOCK`]. A `--burst` worker does not wait for new entries, only
/// looks: a timed-out `BLOCK` costs Redis's 100 ms tick however short.
fn read_wait(now: Instant, next_chore: Instant, burst: bool) -> Duration {
    if burst {
        Duration::ZERO
    } else {
        next_chore.saturating_duration_since(now).min(MAX_BLOCK)
    }
}

/// When to look for due retries again after a claim that asked for `asked`
/// and got `got`: at once when it got all it asked for (more may be due),
/// else after [`RETRY_LOOK`].
fn next_retry_look(now: Instant, got: usize, asked: usize) -> Instant {
    if got >= asked { now } else { now + RETRY_LOOK }
}

/// The instant of `due_ms` (ms since the epoch), given that `now` is
/// `now_ms`; now for a time already past.
fn due_instant(now: Instant, now_ms: i64, due_ms: i64) -> Instant {
    now + Duration::from_millis(due_ms.saturating_sub(now_ms).max(0) as u64)
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
        };
        assert_eq!(timers.next(true), now + Duration::from_millis(300));
        assert_eq!(timers.next(false), now + Duration::from_secs(20));
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
