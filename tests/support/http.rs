//! An in-process HTTP server standing in for Slack, Segment and webhook receivers. It records
//! every request and answers as the test programs it (scripted replies, a default reply, a
//! Slack-like rate limit, delays), so delivery, retry and back-off behaviour can be asserted
//! without the network.
//!
//! Served with `std::net`, one thread per connection, HTTP/1.1 keep-alive (the
//! worker reuses connections), `httparse` reading the request head: a pooled
//! server can leave a new keep-alive connection waiting behind a busy one,
//! which would turn into client timeouts and retries the tests would then
//! count as duplicates.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::hostile::Misbehaviour;

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
    /// Instead of a well-formed answer, a hostile one (see `hostile`).
    pub misbehaviour: Option<Misbehaviour>,
    /// Held back until this gate opens (other requests are served meanwhile).
    pub gate: Option<Gate>,
}

/// Holds the replies given it (`Reply::held`) until it is opened, so a
/// client stays in the middle of its request for as long as a test needs;
/// at most two minutes, so a test that never opens it cannot hang.
#[derive(Clone, Debug, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Lets every held reply go, and every later one at once.
    pub fn open(&self) {
        let (open, changed) = &*self.0;
        *open.lock().unwrap_or_else(|p| p.into_inner()) = true;
        changed.notify_all();
    }

    fn pass(&self) {
        let (open, changed) = &*self.0;
        let guard = open.lock().unwrap_or_else(|p| p.into_inner());
        let _ = changed.wait_timeout_while(guard, Duration::from_secs(120), |open| !*open);
    }
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
            misbehaviour: None,
            gate: None,
        }
    }

    /// Adds a response header (`Content-Type` defaults to `text/plain; charset=utf-8`).
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        // Checked here so a bad header fails the test, not the server thread.
        assert!(
            !name.is_empty() && !name.contains([':', '\r', '\n']) && !value.contains(['\r', '\n']),
            "invalid HTTP header {name:?}: {value:?}"
        );
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// Answered only once `gate` opens.
    pub fn held(mut self, gate: &Gate) -> Reply {
        self.gate = Some(gate.clone());
        self
    }

    /// The reply as HTTP/1.1 bytes.
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = self.head(self.body.len());
        bytes.extend_from_slice(self.body.as_bytes());
        bytes
    }

    /// The status line and headers, announcing a body of `length` bytes.
    pub(super) fn head(&self, length: usize) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Length: {}\r\n",
            self.status,
            if self.status < 400 { "OK" } else { "Error" },
            length
        );
        if !self
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            head.push_str("Content-Type: text/plain; charset=utf-8\r\n");
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }
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
    rule: Option<Rule>,
}

/// A reply chosen by what the request holds (a receiver refusing one event).
type Rule = Arc<dyn Fn(&Request) -> Option<Reply> + Send + Sync>;

impl State {
    fn decide(&mut self, request: &Request) -> Reply {
        let now = request.at;
        if let Some(reply) = self.rule.as_ref().and_then(|rule| rule(request)) {
            return reply;
        }
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

    /// Serves one connection until the client closes it.
    fn serve(&self, stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
        let Ok(mut writer) = stream.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(stream);
        while let Some((request, close)) = read_request(&mut reader) {
            let (index, reply) = {
                let mut state = self.lock();
                let reply = state.decide(&request);
                state.requests.push(request);
                (state.requests.len() - 1, reply)
            };
            self.changed.notify_all();
            if !reply.delay.is_zero() {
                thread::sleep(reply.delay);
            }
            if let Some(gate) = &reply.gate {
                gate.pass();
            }
            if let Some(misbehaviour) = &reply.misbehaviour {
                // A hostile answer never leaves the connection usable.
                misbehaviour.answer(&reply, reader, writer);
                return;
            }
            let written = writer
                .write_all(&reply.to_bytes())
                .and_then(|()| writer.flush())
                .is_ok();
            if written && (200..300).contains(&reply.status) {
                self.lock().accepted.push(index);
                self.changed.notify_all();
            }
            if !written || close {
                return;
            }
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

/// Reads one request (head through `httparse`, body by `Content-Length`);
/// `None` when the connection closed. The flag says the client asked to
/// close it after this request.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(Request, bool)> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let before = head.len();
        reader.read_until(b'\n', &mut head).ok()?;
        if head.len() == before {
            return None;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    parsed.parse(&head).ok()?;
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let value = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    };
    let length: usize = value("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let close = value("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let request = Request {
        method: parsed.method?.to_owned(),
        path: parsed.path?.to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    };
    Some((request, close))
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
    stop: Arc<AtomicBool>,
    port: u16,
    acceptor: Option<JoinHandle<()>>,
}

impl Sink {
    /// Listens on a free port of 127.0.0.1 and answers every request 200 `ok`, like Slack.
    pub fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|err| panic!("start the HTTP sink: {err}"));
        let port = listener.local_addr().expect("a bound socket").port();
        // Non-blocking accepts, so the acceptor notices a stop request.
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                requests: Vec::new(),
                accepted: Vec::new(),
                script: VecDeque::new(),
                default: Reply::ok(),
                bucket: None,
                rule: None,
            }),
            changed: Condvar::new(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name(format!("sink-{port}"))
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match listener.accept() {
                            Ok((stream, _)) => {
                                let _ = stream.set_nonblocking(false);
                                let shared = Arc::clone(&shared);
                                // One thread per connection: a delayed reply
                                // holds up only its own connection.
                                thread::spawn(move || shared.serve(stream));
                            }
                            Err(_) => thread::sleep(Duration::from_millis(2)),
                        }
                    }
                })
                .expect("spawn the sink's accept thread")
        };
        Sink {
            shared,
            stop,
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

    /// Requests for which `rule` returns a reply get it, ahead of the rate limit, the script and
    /// the default.
    pub fn rule(&self, rule: impl Fn(&Request) -> Option<Reply> + Send + Sync + 'static) {
        self.shared.lock().rule = Some(Arc::new(rule));
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
        self.stop.store(true, Ordering::Relaxed);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        // The listener closed with the acceptor. Connections still open end
        // when their clients close them (or after the read timeout).
    }
}
