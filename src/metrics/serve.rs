//! The HTTP side of `work --metrics-addr`: `/metrics`, `/healthz` and
//! `/readyz`, served from a thread of their own so a scrape never waits on
//! a delivery, and a second thread that asks the queue for its counts every
//! few seconds, which is both the backlog gauges and the readiness answer:
//! a scrape or a probe never touches the queue itself.

use std::net::{TcpListener, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tiny_http::{Header, Request, Response, Server};

use super::Metrics;
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

/// Why the queue is not ready; `None` while it answers.
type Readiness = Arc<Mutex<Option<String>>>;

/// Serves `metrics` on `listener` and keeps its backlog fresh from `queue`,
/// each on a thread that lives as long as the process.
pub fn start(listener: TcpListener, metrics: Arc<Metrics>, queue: Box<dyn Health>) {
    let readiness: Readiness = Arc::new(Mutex::new(Some("the queue was not asked yet".into())));
    let mut refresher = Refresher {
        queue,
        metrics: Arc::clone(&metrics),
        readiness: Arc::clone(&readiness),
    };
    refresher.refresh();
    std::thread::Builder::new()
        .name("metrics-refresh".into())
        .spawn(move || refresher.run())
        .expect("threads can be spawned");
    let server = Server::from_listener(listener, None).expect("a bound listener serves");
    std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                answer(request, &metrics, &readiness);
            }
        })
        .expect("threads can be spawned");
}

struct Refresher {
    queue: Box<dyn Health>,
    metrics: Arc<Metrics>,
    readiness: Readiness,
}

impl Refresher {
    fn run(mut self) {
        loop {
            std::thread::sleep(REFRESH);
            self.refresh();
        }
    }

    fn refresh(&mut self) {
        let state = match self.queue.stats() {
            Ok(stats) => {
                self.metrics.set_backlog(&stats);
                None
            }
            Err(e) => {
                self.metrics.set_queue_down();
                Some(format!("the queue does not answer: {e}"))
            }
        };
        *self.readiness.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }
}

/// What one request gets: a status and a body.
fn route(method: &str, path: &str, metrics: &Metrics, readiness: &Readiness) -> (u16, String) {
    let path = path.split('?').next().unwrap_or(path);
    if method != "GET" && method != "HEAD" {
        return (405, "only GET is served\n".into());
    }
    match path {
        "/metrics" => (200, metrics.render()),
        "/healthz" => (200, "ok\n".into()),
        "/readyz" => match &*readiness.lock().unwrap_or_else(|p| p.into_inner()) {
            None => (200, "ready\n".into()),
            Some(reason) => (503, format!("{}\n", escape(reason))),
        },
        _ => (404, "not found: try /metrics, /healthz or /readyz\n".into()),
    }
}

fn answer(request: Request, metrics: &Metrics, readiness: &Readiness) {
    let (status, body) = route(request.method().as_str(), request.url(), metrics, readiness);
    let kind = if status == 200 && request.url().starts_with("/metrics") {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let header = Header::from_bytes("Content-Type", kind).expect("a valid header");
    let response = Response::from_string(body)
        .with_status_code(status)
        .with_header(header);
    if let Err(e) = request.respond(response) {
        log::debug!("cannot answer a metrics request: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::Routes;

    #[test]
    fn each_path_gets_its_answer_and_anything_else_is_404() {
        let metrics = Metrics::new(&Routes::new(&[], None, Duration::from_secs(1)));
        let ready: Readiness = Arc::new(Mutex::new(None));
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
        *ready.lock().unwrap() = Some("the queue does not answer: refused".into());
        assert_eq!(
            route("GET", "/readyz?verbose", &metrics, &ready),
            (503, "the queue does not answer: refused\n".into())
        );
        assert_eq!(route("GET", "/healthz", &metrics, &ready).0, 200);
    }
}
