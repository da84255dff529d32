//! The HTTP side of `work --metrics-addr`: `/metrics`, `/healthz` and
//! `/readyz`, served from threads of their own so a scrape never waits on
//! a delivery, and a second thread that asks the queue for its counts every
//! few seconds, which is both the backlog gauges and the readiness answer:
//! a scrape or a probe never touches the queue itself, and a check the queue
//! leaves unanswered for [`ANSWER_WITHIN`] counts as the queue being away.

use std::net::{TcpListener, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Metrics;
use crate::http_server::{self as http, Answer, Request};
use crate::queue::Health;
use crate::sanitize::escape;

/// How often the queue's counts are refreshed: `/readyz` turns 503 within
/// about this long of the queue going away.
pub const REFRESH: Duration = Duration::from_secs(2);

/// `--metrics-addr` could not be used: a usage error (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("--metrics-addr {addr}: not a host:port address to listen on")]
    BadAddress { addr: String },
    #[error("--metrics-addr {addr}: cannot listen there: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// Listens on `addr` (`127.0.0.1:9464`, `[::]:9464`, `localhost:9464`).
pub fn bind(addr: &str) -> Result<TcpListener, MetricsError> {
    let addrs: Vec<_> = addr
        .to_socket_addrs()
        .map_err(|_| MetricsError::BadAddress { addr: addr.into() })?
        .collect();
    TcpListener::bind(&addrs[..]).map_err(|source| MetricsError::Bind {
        addr: addr.into(),
        source,
    })
}

/// How long the queue has to answer a check: one still under way after
/// this long makes the queue not ready, whatever the client's own timeouts.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// The last check's verdict (why the queue is not ready, `None` when it
/// answered) and when the check under way, if any, began.
struct Check {
    failed: Option<String>,
    asked_at: Option<Instant>,
}

#[derive(Clone)]
struct Readiness(Arc<Mutex<Check>>);

impl Readiness {
    fn new(failed: Option<String>) -> Readiness {
        Readiness(Arc::new(Mutex::new(Check {
            failed,
            asked_at: None,
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Check> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why the queue is not ready, `None` when it is; a check overdue
    /// marks the queue down in `metrics` too.
    fn judge(&self, metrics: &Metrics) -> Option<String> {
        let check = self.lock();
        match check.asked_at {
            Some(at) if at.elapsed() > ANSWER_WITHIN => {
                metrics.set_queue_down();
                let secs = ANSWER_WITHIN.as_secs();
                Some(format!(
                    "the queue does not answer: no reply within {secs}s"
                ))
            }
            _ => check.failed.clone(),
        }
    }
}

/// Serves `metrics` on `listener` and keeps its backlog fresh from `queue`,
/// each on threads that live as long as the process.
pub fn start(listener: TcpListener, metrics: Arc<Metrics>, queue: Box<dyn Health>) {
    let readiness = Readiness::new(Some("the queue was not asked yet".into()));
    let refresher = Refresher {
        queue,
        metrics: Arc::clone(&metrics),
        readiness: readiness.clone(),
    };
    std::thread::Builder::new()
        .name("metrics-refresh".into())
        .spawn(move || refresher.run())
        .expect("threads can be spawned");
    let handler =
        move |request: &Request| answer(&request.method, &request.path, &metrics, &readiness);
    http::serve(listener, "metrics", Arc::new(handler)).expect("threads can be spawned");
}

struct Refresher {
    queue: Box<dyn Health>,
    metrics: Arc<Metrics>,
    readiness: Readiness,
}

impl Refresher {
    /// Checks at once, then every [`REFRESH`]; the probes are served
    /// meanwhile, even while the first check hangs.
    fn run(mut self) {
        loop {
            self.refresh();
            std::thread::sleep(REFRESH);
        }
    }

    /// Asks the queue for its counts; while it has not answered, the probes
    /// see how long it has been asked.
    fn refresh(&mut self) {
        self.readiness.lock().asked_at = Some(Instant::now());
        let stats = self.queue.stats();
        let mut check = self.readiness.lock();
        check.failed = match stats {
            Ok(stats) => {
                self.metrics.set_backlog(&stats);
                None
            }
            Err(e) => {
                self.metrics.set_queue_down();
                Some(format!("the queue does not answer: {e}"))
            }
        };
        check.asked_at = None;
    }
}

/// What one request gets: a status and a body.
fn route(method: &str, path: &str, metrics: &Metrics, readiness: &Readiness) -> (u16, String) {
    let path = path.split('?').next().unwrap_or(path);
    if method != "GET" && method != "HEAD" {
        return (405, "only GET is served\n".into());
    }
    match path {
        "/metrics" => {
            readiness.judge(metrics);
            (200, metrics.render())
        }
        "/healthz" => (200, "ok\n".into()),
        "/readyz" => match readiness.judge(metrics) {
            None => (200, "ready\n".into()),
            Some(reason) => (503, format!("{}\n", escape(&reason))),
        },
        _ => (404, "not found: try /metrics, /healthz or /readyz\n".into()),
    }
}

fn answer(method: &str, path: &str, metrics: &Metrics, readiness: &Readiness) -> Answer {
    let (status, body) = route(method, path, metrics, readiness);
    let mut answer = Answer::plain(status, body);
    if status == 200 && path.starts_with("/metrics") {
        answer.content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::Routes;

    #[test]
    fn each_path_gets_its_answer_and_anything_else_is_404() {
        let metrics = Metrics::new(&Routes::new(&[], None, Duration::from_secs(1)));
        let ready = Readiness::new(None);
        assert_eq!(route("GET", "/healthz", &metrics, &ready).0, 200);
        assert_eq!(
            route("GET", "/readyz", &metrics, &ready),
            (200, "ready\n".into())
        );
        let (status, body) = route("GET", "/metrics", &metrics, &ready);
        assert_eq!(status, 200);
        assert!(body.contains("events_build_info{version=\""), "{body}");
        assert_eq!(route("GET", "/", &metrics, &ready).0, 404);
        assert_eq!(route("GET", "/metrics/x", &metrics, &ready).0, 404);
        assert_eq!(route("POST", "/metrics", &metrics, &ready).0, 405);
        ready.lock().failed = Some("the queue does not answer: refused".into());
        assert_eq!(
            route("GET", "/readyz?verbose", &metrics, &ready),
            (503, "the queue does not answer: refused\n".into())
        );
        assert_eq!(route("GET", "/healthz", &metrics, &ready).0, 200);
    }

    #[test]
    fn a_check_left_unanswered_too_long_is_not_ready_and_the_queue_down() {
        let metrics = Metrics::new(&Routes::new(&[], None, Duration::from_secs(1)));
        let ready = Readiness::new(None);
        metrics.set_backlog(&Default::default());
        ready.lock().asked_at = Some(Instant::now());
        assert_eq!(route("GET", "/readyz", &metrics, &ready).0, 200);
        ready.lock().asked_at = Instant::now().checked_sub(ANSWER_WITHIN * 2);
        let (status, body) = route("GET", "/readyz", &metrics, &ready);
        assert_eq!(status, 503);
        assert_eq!(body, "the queue does not answer: no reply within 2s\n");
        let (_, scrape) = route("GET", "/metrics", &metrics, &ready);
        assert!(scrape.contains("events_queue_up 0\n"), "{scrape}");
    }
}
