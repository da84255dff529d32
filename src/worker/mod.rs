//! The worker: claims events from the queue, hands each to the lanes of the
//! destinations it is routed to, and lets the settler record every outcome.
//!
//! Three kinds of threads, so that no destination waits for another:
//! - the **reader** ([`reader`]) claims stream entries and due retries,
//!   dead-letters poison, and dispatches deliveries ([`dispatch`]), keeping
//!   at most a window of claimed work in flight; between reads it renews
//!   its claims, raises alerts owed, trims history and reads which
//!   destinations are held ([`housekeeping`], [`gate`]),
//!   and a `--burst` worker decides when it is done ([`burst`]);
//! - one or more **lanes** per destination send ([`lane`]);
//! - the **settler** writes acknowledgements, retries and dead letters
//!   atomically ([`settler`]), and tells the destinations' breakers what
//!   the sends came to ([`breakers`]).
//!
//! Reloading (SIGHUP) is the reader's: between reads it loads the
//! configuration again and starts new lanes for what it claims from then on
//! ([`reload`]).
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

pub mod breakers;
mod burst;
mod dispatch;
pub mod gate;
pub mod held;
mod housekeeping;
pub mod lane;
mod reader;
pub mod reload;
pub mod routes;
pub mod settings;
pub mod settler;
pub mod stop;
pub mod wake;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::catalog::Catalog;
use crate::dest::{self, Answer, Destination, Item};
use crate::metrics::Metrics;
use crate::queue::{DeadLetter, QueueError, UnavailableReason};
use crate::route::{PerRoute, Route, RouteId, Routes};
use crate::setup::Setup;
use housekeeping::holder;
use reader::Reader;
pub use reload::Reload;
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
        /// The outcome and the receiver's HTTP status, per job when they
        /// fared differently.
        answer: Answer,
        elapsed: Duration,
    },
    /// A lane's request was answered "too many requests" (and, when the
    /// wait was short, is being sent again): counted in the queue.
    RateLimited { dest: RouteId },
    /// Jobs not sent because their destination is held: parked in the
    /// retry set, due at the hold's start, no attempt spent.
    Held {
        dest: RouteId,
        jobs: Vec<Job>,
        closed: gate::Closed,
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

/// How far ahead `--burst` waits for a scheduled retry: backoffs and short
/// `Retry-After`s fall inside it, and a cron job still ends within seconds
/// when a destination asked for an hour's pause.
pub const BURST_SOON: Duration = Duration::from_secs(5);

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
    /// How to reload the configuration when asked (`SIGHUP`), if at all.
    reload: Option<Reload>,
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
            reload: None,
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

    /// Reloads the configuration when `reload` is asked for.
    pub fn with_reload(mut self, reload: Reload) -> Worker {
        self.reload = Some(reload);
        self
    }

    /// This worker, as a breaker's probe names it: its consumer name and
    /// process.
    fn me(&self) -> String {
        format!("{} on {}", self.options.consumer, holder())
    }

    /// Whether this worker delivers to `route`.
    fn serves(&self, route: &Route) -> bool {
        !route.is_retired() && (self.only.is_empty() || self.only.contains(&route.id()))
    }

    /// The destinations whose retries this worker claims: those `--only`
    /// names, else every one configured. Retries for a destination no
    /// longer configured stay in the queue, held, for a worker configured
    /// with it.
    fn claims_for(&self, routes: &Routes) -> Vec<String> {
        if self.options.only.is_empty() {
            routes.iter().map(|r| r.name().to_owned()).collect()
        } else {
            self.options.only.clone()
        }
    }

    /// Runs until a stop is requested (or, with `burst`, until there is
    /// nothing left to do).
    pub fn run(self, stop: Stop) -> Result<(), crate::Error> {
        let mut reader = self.config.open_queue()?;
        let settler_queue = self.config.open_queue()?;
        let inflight = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(held::Held::default());
        let wake = Arc::new(Wake::new(&self.options.only));
        let gate = Arc::new(gate::Gate::default());
        let (report_tx, report_rx) = crossbeam_channel::unbounded();
        let (served, mut lanes) =
            self.start_lanes(&self.routes, &self.catalog, &report_tx, &stop, &gate)?;
        let routes = routes::Shared::new(Arc::clone(&self.routes));
        let settler = Settler {
            queue: settler_queue,
            consumer: self.options.consumer.clone(),
            reports: report_rx,
            routes: routes.clone(),
            inflight: Arc::clone(&inflight),
            held: Arc::clone(&held),
            give_up_after: settler::give_up_after(self.config.delivery.claim_lease),
            wake: Arc::clone(&wake),
            metrics: self.metrics.clone(),
            alerts: self.config.delivery.alerts,
            alert_window: self.config.delivery.alert_window,
            breakers: breakers::Breakers::new(Arc::clone(&gate), self.me()),
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
            gate,
            stop: stop.clone(),
            wake,
            unavailable_since: None,
            holder: holder(),
            current: reader::Current {
                claims: self.claims_for(&self.routes),
                routes: Arc::clone(&self.routes),
                catalog: self.catalog.clone(),
                setup: self.config.clone(),
                shared: routes,
                lanes: &mut lanes,
                restart_noted: Vec::new(),
            },
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

    /// Builds the sender of each of `routes` this worker serves, with the
    /// messages of `catalog`, and starts its lanes.
    fn start_lanes(
        &self,
        routes: &Routes,
        catalog: &Catalog,
        reports: &Sender<Report>,
        stop: &Stop,
        gate: &Arc<gate::Gate>,
    ) -> Result<(PerRoute<Served>, Vec<JoinHandle<()>>), crate::Error> {
        let mut handles = Vec::new();
        let mut failed = None;
        let served = routes.each(|route| {
            let (jobs, rx) = crossbeam_channel::unbounded();
            let served = Served {
                route: route.clone(),
                sender: self.serves(route).then(|| {
                    let delivery = &self.config.delivery;
                    dest::build(route.config(), catalog, delivery.http_timeout)
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
                    gate: Arc::clone(gate),
                    breaker: route.breaker(),
                    limiter: limiter.take(),
                    metrics: self.metrics.as_ref().map(|m| m.route(route.id())),
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
