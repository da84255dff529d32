//! A worker's Prometheus metrics: what `events work --metrics-addr` serves.
//! Every series a destination has is created when the worker starts, so a
//! dashboard sees each destination and outcome at 0 before anything happens,
//! and the hot path only bumps handles it already holds (atomics; one
//! uncontended mutex per histogram observation), never looks a label up.
//!
//! The names are a public interface, documented in the README: change one
//! and every dashboard and alert built on it breaks.

pub mod serve;

use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::dest::Attempt;
use crate::event::Event;
use crate::queue::Stats;
use crate::retry::Decision;
use crate::route::{PerRoute, RouteId, Routes};

type Labels = Vec<(&'static str, String)>;

/// Seconds one request takes: from a loopback webhook to a slow endpoint.
const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Seconds from emit to delivery: from a loopback round trip to hours of
/// retries after an outage.
const LAG_BUCKETS: [f64; 16] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0,
    86400.0,
];

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn lag_histogram() -> Histogram {
    Histogram::new(LAG_BUCKETS)
}

/// The handles of one destination's series.
#[derive(Clone)]
pub struct RouteMetrics {
    delivered: Counter,
    retried: Counter,
    dead: Counter,
    duration: Histogram,
    lag: Histogram,
    inflight: Gauge,
    rate_limited: Counter,
    paused: Gauge,
    held: Gauge,
    breaker_open: Gauge,
}

impl RouteMetrics {
    /// A request carrying `items` deliveries starts; call
    /// [`sent`](Self::sent) when it ends.
    pub fn sending(&self, items: usize) {
        self.inflight.inc_by(items as i64);
    }

    /// A request of `items` deliveries ended in `attempt` after `elapsed`.
    pub fn sent(&self, items: usize, attempt: &Attempt, elapsed: Duration) {
        self.inflight.dec_by(items as i64);
        self.duration.observe(elapsed.as_secs_f64());
        if attempt.is_rate_limited() {
            self.rate_limited.inc();
        }
    }
}

/// The queue-wide backlog gauges and whether the queue answers.
struct QueueGauges {
    unread: Gauge,
    pending: Gauge,
    retry: Gauge,
    dead: Gauge,
    up: Gauge,
}

impl QueueGauges {
    /// Registers the queue's series, and the build's.
    fn register(registry: &mut Registry) -> QueueGauges {
        let backlog = Family::<Labels, Gauge>::default();
        let state = |s: &str| {
            backlog
                .get_or_create(&vec![("state", s.to_owned())])
                .clone()
        };
        let gauges = QueueGauges {
            unread: state("unread"),
            pending: state("pending"),
            retry: state("retry"),
            dead: state("dead"),
            up: Gauge::default(),
        };
        let build = Family::<Labels, Gauge>::default();
        build
            .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION").to_owned())])
            .set(1);
        registry.register(
            "events_backlog",
            "Queue-wide entries and deliveries, by state",
            backlog,
        );
        registry.register(
            "events_queue_up",
            "Whether the queue answers (1) or not (0)",
            gauges.up.clone(),
        );
        registry.register("events_build_info", "The running version", build);
        gauges
    }
}

pub struct Metrics {
    registry: Registry,
    routes: RwLock<PerRoute<RouteMetrics>>,
    /// For dead letters of no configured destination (poison, a
    /// destination removed from the config): rare, so looked up.
    deliveries: Family<Labels, Counter>,
    families: RouteFamilies,
    queue: QueueGauges,
}

/// The families every destination has a series in.
struct RouteFamilies {
    duration: Family<Labels, Histogram>,
    lag: Family<Labels, Histogram>,
    inflight: Family<Labels, Gauge>,
    rate_limited: Family<Labels, Counter>,
    paused: Family<Labels, Gauge>,
    held: Family<Labels, Gauge>,
    breaker_open: Family<Labels, Gauge>,
}

impl RouteFamilies {
    /// The series of each of `routes`: created at 0, or those it has.
    fn series(
        &self,
        deliveries: &Family<Labels, Counter>,
        routes: &Routes,
    ) -> PerRoute<RouteMetrics> {
        let dest = |name: &str| vec![("destination", name.to_owned())];
        let outcome = |name: &str, outcome: &str| {
            let mut labels = dest(name);
            labels.push(("outcome", outcome.to_owned()));
            deliveries.get_or_create(&labels).clone()
        };
        routes.each(|route| {
            let name = route.name();
            RouteMetrics {
                delivered: outcome(name, "delivered"),
                retried: outcome(name, "retried"),
                dead: outcome(name, "dead"),
                duration: self.duration.get_or_create(&dest(name)).clone(),
                lag: self.lag.get_or_create(&dest(name)).clone(),
                inflight: self.inflight.get_or_create(&dest(name)).clone(),
                rate_limited: self.rate_limited.get_or_create(&dest(name)).clone(),
                paused: self.paused.get_or_create(&dest(name)).clone(),
                held: self.held.get_or_create(&dest(name)).clone(),
                breaker_open: self.breaker_open.get_or_create(&dest(name)).clone(),
            }
        })
    }
}

impl Metrics {
    /// Every series of `routes`, registered at 0.
    pub fn new(routes: &Routes) -> Metrics {
        let mut registry = Registry::default();
        let deliveries = Family::<Labels, Counter>::default();
        let families = RouteFamilies {
            duration: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            lag: Family::new_with_constructor(lag_histogram as fn() -> Histogram),
            inflight: Family::default(),
            rate_limited: Family::default(),
            paused: Family::default(),
            held: Family::default(),
            breaker_open: Family::default(),
        };
        registry.register(
            "events_deliveries",
            "Deliveries settled, by destination and outcome",
            deliveries.clone(),
        );
        registry.register(
            "events_delivery_duration_seconds",
            "Seconds one request to a destination took",
            families.duration.clone(),
        );
        registry.register(
            "events_delivery_lag_seconds",
            "Seconds from an event's ts to its delivery",
            families.lag.clone(),
        );
        registry.register(
            "events_inflight",
            "Deliveries in a request right now",
            families.inflight.clone(),
        );
        registry.register(
            "events_rate_limited",
            "Requests a destination answered 429",
            families.rate_limited.clone(),
        );
        registry.register(
            "events_paused",
            "Whether the destination is paused (1) or not (0)",
            families.paused.clone(),
        );
        registry.register(
            "events_held",
            "Deliveries waiting for a held destination",
            families.held.clone(),
        );
        registry.register(
            "events_breaker_open",
            "Whether the destination's circuit breaker holds it, open or probing (1), or not (0)",
            families.breaker_open.clone(),
        );
        let queue = QueueGauges::register(&mut registry);
        Metrics {
            registry,
            routes: RwLock::new(families.series(&deliveries, routes)),
            deliveries,
            families,
            queue,
        }
    }

    /// Every series of `routes` (the worker's, after a reload), a new
    /// destination's registered at 0; the others keep their counts.
    pub fn set_routes(&self, routes: &Routes) {
        let per_route = self.families.series(&self.deliveries, routes);
        *self.routes.write().unwrap_or_else(PoisonError::into_inner) = per_route;
    }

    /// The handles of route `id`'s series.
    pub fn route(&self, id: RouteId) -> RouteMetrics {
        self.routes.read().unwrap_or_else(PoisonError::into_inner)[id].clone()
    }

    /// Counts the settler's `decision` for one delivery to route `id` whose
    /// attempt was `attempt`. A deferral (never sent) is no retry.
    pub fn decided(
        &self,
        id: RouteId,
        decision: &Decision,
        attempt: &Attempt,
        event: &Event,
        now_ms: i64,
    ) {
        let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner);
        let route = &routes[id];
        match decision {
            Decision::Delivered => {
                route.delivered.inc();
                if let Some(ts) = event.ts_ms() {
                    route
                        .lag
                        .observe(now_ms.saturating_sub(ts).max(0) as f64 / 1000.0);
                }
            }
            Decision::Retry { .. } if matches!(attempt, Attempt::Deferred(..)) => {}
            Decision::Retry { .. } => {
                route.retried.inc();
            }
            Decision::Dead { .. } => {
                route.dead.inc();
            }
        }
    }

    /// Records whether route `id` is paused and how many of its deliveries
    /// wait while it is held.
    pub fn set_held(&self, id: RouteId, paused: bool, waiting: u64) {
        let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner);
        let route = &routes[id];
        route.paused.set(i64::from(paused));
        route.held.set(i64::try_from(waiting).unwrap_or(i64::MAX));
    }

    /// Records whether route `id`'s breaker holds it (open or probing).
    pub fn set_breaker_open(&self, id: RouteId, open: bool) {
        self.route(id).breaker_open.set(i64::from(open));
    }

    /// Counts a dead letter that no send decided (poison, a destination
    /// no longer configured) under the destination it names.
    pub fn dead_unsent(&self, dest: &str) {
        let labels = vec![
            ("destination", dest.to_owned()),
            ("outcome", "dead".to_owned()),
        ];
        self.deliveries.get_or_create(&labels).inc();
    }

    /// Records the queue's counts, and that it answered.
    pub fn set_backlog(&self, stats: &Stats) {
        let pending: u64 = stats.consumers.iter().map(|c| c.pending).sum();
        let dead: u64 = stats.dead.iter().map(|(_, _, n)| n).sum();
        let gauge = |g: &Gauge, n: u64| g.set(i64::try_from(n).unwrap_or(i64::MAX));
        gauge(&self.queue.unread, stats.lag);
        gauge(&self.queue.pending, pending);
        gauge(&self.queue.retry, stats.retries);
        gauge(&self.queue.dead, dead);
        self.queue.up.set(1);
    }

    /// Records that the queue did not answer; the backlog keeps its last
    /// known values.
    pub fn set_queue_down(&self) {
        self.queue.up.set(0);
    }

    /// The Prometheus (OpenMetrics) text exposition of every series.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dest::DestConfig;

    fn routes() -> Routes {
        let console = DestConfig {
            name: "hooks".into(),
            events: vec!["*".into()],
            ..DestConfig::console("")
        };
        Routes::new(&[console], None, Duration::from_secs(1))
    }

    fn series(metrics: &Metrics, name: &str) -> Option<String> {
        let scrape = metrics.render();
        scrape
            .lines()
            .find_map(|l| Some(l.strip_prefix(name)?.strip_prefix(' ')?.to_owned()))
    }

    #[test]
    fn a_deferral_is_no_retry_and_poison_is_dead_under_its_own_name() {
        let routes = routes();
        let metrics = Metrics::new(&routes);
        let id = routes.named("hooks").unwrap().id();
        let event = Event::new("user.signup", Default::default());
        let retry = Decision::Retry {
            attempts: 0,
            wait: Duration::ZERO,
            spent: false,
            error: "left for another worker".into(),
        };
        let deferred = Attempt::Deferred(Duration::ZERO, "left".into());
        metrics.decided(id, &retry, &deferred, &event, 0);
        let limited = Attempt::RetryAfter(Duration::from_secs(60), "HTTP 429".into());
        metrics.decided(id, &retry, &limited, &event, 0);
        let now = event.ts_ms().unwrap() + 1500;
        metrics.decided(id, &Decision::Delivered, &Attempt::Delivered, &event, now);
        metrics.dead_unsent(crate::route::POISON_DEST);
        let hooks = |outcome: &str| {
            series(
                &metrics,
                &format!("events_deliveries_total{{destination=\"hooks\",outcome=\"{outcome}\"}}"),
            )
        };
        assert_eq!(hooks("retried").as_deref(), Some("1"));
        assert_eq!(hooks("delivered").as_deref(), Some("1"));
        assert_eq!(hooks("dead").as_deref(), Some("0"));
        let lag = "events_delivery_lag_seconds_sum{destination=\"hooks\"}";
        assert_eq!(series(&metrics, lag).as_deref(), Some("1.5"));
        let poison = "events_deliveries_total{destination=\"*\",outcome=\"dead\"}";
        assert_eq!(series(&metrics, poison).as_deref(), Some("1"));
    }

    #[test]
    fn a_request_answered_429_counts_as_rate_limited_and_leaves_nothing_in_flight() {
        let routes = routes();
        let metrics = Metrics::new(&routes);
        let hooks = metrics.route(routes.named("hooks").unwrap().id());
        hooks.sending(3);
        assert_eq!(
            series(&metrics, "events_inflight{destination=\"hooks\"}").as_deref(),
            Some("3")
        );
        let limited = Attempt::Each(vec![
            Attempt::Delivered.into(),
            Attempt::RetryAfter(Duration::from_secs(1), "HTTP 429".into()).into(),
        ]);
        hooks.sent(3, &limited, Duration::from_millis(20));
        let count = |name: &str| series(&metrics, &format!("{name}{{destination=\"hooks\"}}"));
        assert_eq!(count("events_inflight").as_deref(), Some("0"));
        assert_eq!(count("events_rate_limited_total").as_deref(), Some("1"));
        assert_eq!(
            count("events_delivery_duration_seconds_count").as_deref(),
            Some("1")
        );
    }
}
