//! An in-process HTTP server standing in for Slack, Segment and webhook receivers. It records
//! every request and answers as the test programs it (scripted replies, a default reply, a
//! Slack-like rate limit, delays), so delivery, retry and back-off behaviour can be asserted
//! without the network.

use std::collections::VecDeque;
use std::io::Cursor;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// One request as the sink received it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The path including any query string, e.g. `/hook?x=1`.
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The body, decoded as UTF-8 (lossily).
    pub body: String,
    /// When the sink received it.
    pub at: Instant,
}

impl Request {
    /// The first header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body parsed as JSON; panics showing the body if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|err| {
            panic!(
                "{} {} has a body that is not JSON ({err}):\n{}",
                self.method, self.path, self.body
            )
        })
    }
}

/// How the sink answers a request.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    /// How long to wait before answering (other requests are served meanwhile).
    pub delay: Duration,
}

impl Reply {
    /// 200 with body `ok`, as Slack's incoming webhooks answer.
    pub fn ok() -> Reply {
        Reply::status(200, "ok")
    }

    pub fn status(code: u16, body: &str) -> Reply {
        Reply {
            status: code,
            body: body.to_owned(),
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// Adds a response header (`Content-Type` defaults to `text/plain; charset=utf-8`).
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        // Checked here so a bad header fails the test, not the server thread.
        tiny_http::Header::from_bytes(name, value)
            .unwrap_or_else(|()| panic!("invalid HTTP header {name:?}: {value:?}"));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    fn response(&self) -> tiny_http::Response<Cursor<Vec<u8>>> {
        let mut headers = Vec::new();
        if !self
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            headers.push(header("Content-Type", "text/plain; charset=utf-8"));
        }
        headers.extend(self.headers.iter().map(|(name, value)| header(name, value)));
        let body = self.body.clone().into_bytes();
        let length = body.len();
        tiny_http::Response::new(
            tiny_http::StatusCode(self.status),
            headers,
            Cursor::new(body),
            Some(length),
            None,
        )
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name, value).expect("header checked by Reply::header")
}

/// A token bucket: `burst` tokens at most, refilled at `per_second`.
struct Bucket {
    per_second: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct State {
    requests: Vec<Request>,
    /// Indices into `requests` of those answered 2xx, in the order the answers were written.
    accepted: Vec<usize>,
    script: VecDeque<Reply>,
    default: Reply,
    bucket: Option<Bucket>,
}

impl State {
    fn decide(&mut self, now: Instant) -> Reply {
        if let Some(bucket) = &mut self.bucket
            && !bucket.take(now)
        {
            return Reply::status(429, "rate_limited").header("Retry-After", "1");
        }
        self.script
            .pop_front()
            .unwrap_or_else(|| self.default.clone())
    }
}

struct Shared {
    state: Mutex<State>,
    /// Notified whenever a request is recorded or accepted.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the sink's data from the others.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn handle(&self, mut incoming: tiny_http::Request) {
        let mut body = Vec::new();
        let _ = incoming.as_reader().read_to_end(&mut body);
        let headers = incoming
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_owned(),
                    h.value.as_str().to_owned(),
                )
            })
            .collect();
        let (index, reply) = {
            let mut state = self.lock();
            let at = Instant::now();
            let reply = state.decide(at);
            state.requests.push(Request {
                method: incoming.method().as_str().to_owned(),
                path: incoming.url().to_owned(),
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
                at,
            });
            (state.requests.len() - 1, reply)
        };
        self.changed.notify_all();
        if !reply.delay.is_zero() {
            thread::sleep(reply.delay);
        }
        let written = incoming.respond(reply.response()).is_ok();
        if written && (200..300).contains(&reply.status) {
            self.lock().accepted.push(index);
            self.changed.notify_all();
        }
    }

    /// Blocks until `ready(state)` or the deadline, whichever comes first.
    fn wait_until(
        &self,
        timeout: Duration,
        ready: impl Fn(&State) -> bool,
    ) -> MutexGuard<'_, State> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            if ready(&state) || now >= deadline {
                return state;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

fn accepted_of(state: &State) -> Vec<Request> {
    let mut indices = state.accepted.clone();
    indices.sort_unstable();
    indices
        .into_iter()
        .map(|index| state.requests[index].clone())
        .collect()
}

/// The in-process HTTP server; dropping it shuts the server down.
pub struct Sink {
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    port: u16,
    acceptor: Option<JoinHandle<()>>,
}

impl Sink {
    /// Listens on a free port of 127.0.0.1 and answers every request 200 `ok`, like Slack.
    pub fn start() -> Sink {
        let server = Arc::new(
            tiny_http::Server::http("127.0.0.1:0")
                .unwrap_or_else(|err| panic!("start the HTTP sink: {err}")),
        );
        let port = server
            .server_addr()
            .to_ip()
            .expect("the sink listens on TCP")
            .port();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                requests: Vec::new(),
                accepted: Vec::new(),
                script: VecDeque::new(),
                default: Reply::ok(),
                bucket: None,
            }),
            changed: Condvar::new(),
        });
        let acceptor = {
            let server = Arc::clone(&server);
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("sink-{port}"))
                .spawn(move || {
                    // `recv` fails once `unblock` is called from Drop.
                    while let Ok(incoming) = server.recv() {
                        let shared = Arc::clone(&shared);
                        // One thread per request, so a delayed reply does not hold up others.
                        thread::spawn(move || shared.handle(incoming));
                    }
                })
                .expect("spawn the sink's accept thread")
        };
        Sink {
            shared,
            server,
            port,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT/hook`; every path is served the same way, so callers may append.
    pub fn url(&self) -> String {
        format!("{}/hook", self.base_url())
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The next `replies.len()` requests (that pass the rate limit, if any) get these replies in
    /// order; after that, the default reply again. Appends to any script not yet used up.
    pub fn script(&self, replies: Vec<Reply>) {
        self.shared.lock().script.extend(replies);
    }

    /// The reply for requests without a scripted one, e.g. `Reply::status(404,
    /// "channel_not_found")`. Initially `Reply::ok()`.
    pub fn set_default(&self, reply: Reply) {
        self.shared.lock().default = reply;
    }

    /// A token bucket of `burst` requests, refilled at `per_second`, starting full: requests
    /// beyond it get 429 `rate_limited` with `Retry-After: 1`, like Slack; those within it get the
    /// scripted or default reply. Rejected requests are recorded but take no token or script
    /// entry.
    pub fn rate_limit(&self, per_second: u32, burst: u32) {
        let burst = f64::from(burst.max(1));
        self.shared.lock().bucket = Some(Bucket {
            per_second: f64::from(per_second),
            burst,
            tokens: burst,
            refilled: Instant::now(),
        });
    }

    /// Removes the rate limit.
    pub fn no_rate_limit(&self) {
        self.shared.lock().bucket = None;
    }

    /// Every request received so far, in arrival order, including rejected ones.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().requests.clone()
    }

    /// The requests answered 2xx so far, in arrival order. A request counts once its reply has
    /// been written, so one with a delay counts only after the delay.
    pub fn accepted(&self) -> Vec<Request> {
        accepted_of(&self.shared.lock())
    }

    pub fn request_count(&self) -> usize {
        self.shared.lock().requests.len()
    }

    pub fn accepted_count(&self) -> usize {
        self.shared.lock().accepted.len()
    }

    /// Blocks until at least `n` requests have been accepted or `timeout` passes, then returns the
    /// accepted requests: callers assert on what they got.
    pub fn wait_accepted(&self, n: usize, timeout: Duration) -> Vec<Request> {
        accepted_of(
            &self
                .shared
                .wait_until(timeout, |state| state.accepted.len() >= n),
        )
    }

    /// Blocks until at least `n` requests (accepted or not) have arrived or `timeout` passes, then
    /// returns all requests received.
    pub fn wait_requests(&self, n: usize, timeout: Duration) -> Vec<Request> {
        self.shared
            .wait_until(timeout, |state| state.requests.len() >= n)
            .requests
            .clone()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        // Dropping the last `Arc<Server>` (here) closes the listening socket. Requests still
        // sleeping through a delay finish on their own threads.
    }
}
