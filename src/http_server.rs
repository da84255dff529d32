//! The small HTTP server behind `--metrics-addr` and `events dashboard`,
//! built so that no client can hold it up for another: one request per
//! connection, each connection on a thread of its own with [`DEADLINE`] to
//! send its request and take its answer, a request head of at most
//! [`MAX_HEAD`] bytes and a body of at most [`MAX_BODY`], and at most
//! [`MAX_CONNECTIONS`] open at once, the oldest dropped to admit a new one.
//! A probe or a page load sends its request as it connects and is gone in
//! milliseconds, so the connection dropped is one that sat idle, trickled or
//! did not read.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many connections are served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a connection has to send its request and read the answer.
pub const DEADLINE: Duration = Duration::from_secs(5);
/// The largest request head (request line and headers) read, in bytes.
pub const MAX_HEAD: usize = 8 * 1024;
/// The largest request body read (a submitted form), in bytes.
pub const MAX_BODY: usize = 16 * 1024;
/// How much of what a client sends after its request is read (and
/// dropped) before the connection closes, so that the answer is not cut
/// off by a reset.
const MAX_DRAIN: usize = 64 * 1024;
const STACK: usize = 256 * 1024;

/// One request as read: its head, and its body when it declared one.
pub struct Request {
    pub method: String,
    /// The request target, query string included.
    pub path: String,
    /// The headers, names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The address the client connected to.
    pub local: Option<SocketAddr>,
}

impl Request {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What one request gets.
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// Headers besides the content type and length.
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    pub fn plain(status: u16, body: impl Into<String>) -> Answer {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
            headers: Vec::new(),
        }
    }

    fn to_bytes(&self, with_body: bool) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.headers {
            // A value never spans lines: a header cannot be smuggled in.
            let value: String = value.chars().filter(|c| !c.is_control()).collect();
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if with_body {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        303 => "See Other",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Answers one request.
pub type Handler = dyn Fn(&Request) -> Answer + Send + Sync;

/// Serves `listener` from a thread that lives as long as the process; its
/// threads are named after `name`.
pub fn serve(listener: TcpListener, name: &str, handler: Arc<Handler>) -> io::Result<()> {
    let open = Arc::new(Open::default());
    std::thread::Builder::new()
        .name(format!("{name}-http"))
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => admit(stream, &open, &handler),
                    Err(e) => {
                        // Out of descriptors, say: let connections close.
                        log::debug!("cannot accept a connection: {e}");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        })
        .map(drop)
}

fn admit(stream: TcpStream, open: &Arc<Open>, handler: &Arc<Handler>) {
    let Some(id) = open.enter(&stream) else {
        return;
    };
    let (open, handler) = (Arc::clone(open), Arc::clone(handler));
    let spawned = std::thread::Builder::new()
        .name("http-conn".into())
        .stack_size(STACK)
        .spawn(move || {
            answer(stream, &*handler);
            open.leave(id);
        });
    if let Err(e) = spawned {
        log::debug!("cannot serve a connection: {e}");
    }
}

/// The connections being served, oldest first, each by a handle that can
/// shut it down.
#[derive(Default)]
struct Open {
    conns: Mutex<(u64, BTreeMap<u64, TcpStream>)>,
}

impl Open {
    /// Registers `stream`, shutting down the oldest connection when
    /// [`MAX_CONNECTIONS`] are open; its id.
    fn enter(&self, stream: &TcpStream) -> Option<u64> {
        let handle = stream.try_clone().ok()?;
        let mut guard = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let (next, conns) = &mut *guard;
        if conns.len() >= MAX_CONNECTIONS
            && let Some((_, oldest)) = conns.pop_first()
        {
            let _ = oldest.shutdown(Shutdown::Both);
        }
        let id = *next;
        *next += 1;
        conns.insert(id, handle);
        Some(id)
    }

    fn leave(&self, id: u64) {
        let mut guard = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        guard.1.remove(&id);
    }
}

/// Reads one request from `stream`, answers it and closes, all within
/// [`DEADLINE`].
fn answer(mut stream: TcpStream, handler: &Handler) {
    let deadline = Instant::now() + DEADLINE;
    let (answer, with_body) = match read_request(&mut stream, deadline) {
        Ok(Head::Request(request)) => (handler(&request), request.method != "HEAD"),
        Ok(Head::Refused(status, why)) => (Answer::plain(status, why), true),
        Err(e) => {
            log::debug!("connection dropped before its request: {e}");
            return;
        }
    };
    if let Err(e) = write_within(&mut stream, &answer.to_bytes(with_body), deadline) {
        log::debug!("connection dropped before its answer: {e}");
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    drain(&mut stream, deadline);
}

enum Head {
    Request(Request),
    Refused(u16, &'static str),
}

/// Reads the head, then the body it declares.
fn read_request(stream: &mut TcpStream, deadline: Instant) -> io::Result<Head> {
    let (mut request, mut body) = match read_head(stream, deadline)? {
        Parsed::Head(request, rest) => (request, rest),
        Parsed::Refused(status, why) => return Ok(Head::Refused(status, why)),
    };
    if request.header("transfer-encoding").is_some() {
        return Ok(Head::Refused(411, "send the body with a Content-Length\n"));
    }
    let length = match request.header("content-length").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) if n <= MAX_BODY => n,
        Some(Ok(_)) => return Ok(Head::Refused(413, "request body too large\n")),
        Some(Err(_)) => return Ok(Head::Refused(400, "bad Content-Length\n")),
    };
    let mut chunk = [0; 1024];
    while body.len() < length {
        stream.set_read_timeout(Some(left(deadline)?))?;
        let n = stream.read(&mut chunk[..(length - body.len()).min(1024)])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    request.body = body;
    request.local = stream.local_addr().ok();
    Ok(Head::Request(request))
}

/// A request head, and what was read after it; or why it is refused.
enum Parsed {
    Head(Request, Vec<u8>),
    Refused(u16, &'static str),
}

fn read_head(stream: &mut TcpStream, deadline: Instant) -> io::Result<Parsed> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0; 1024];
    loop {
        let room = (MAX_HEAD - buf.len()).min(chunk.len());
        if room == 0 {
            return Ok(Parsed::Refused(431, "request head too large\n"));
        }
        stream.set_read_timeout(Some(left(deadline)?))?;
        let n = stream.read(&mut chunk[..room])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Complete(end)) => {
                let headers = request
                    .headers
                    .iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value).into_owned();
                        (h.name.to_ascii_lowercase(), value)
                    })
                    .collect();
                let request = Request {
                    method: request.method.unwrap_or_default().into(),
                    path: request.path.unwrap_or_default().into(),
                    headers,
                    body: Vec::new(),
                    local: None,
                };
                return Ok(Parsed::Head(request, buf[end..].to_vec()));
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Ok(Parsed::Refused(431, "too many request headers\n"));
            }
            Err(_) => return Ok(Parsed::Refused(400, "not an HTTP request\n")),
        }
    }
}

/// The time left before `deadline`; a timeout error once it has passed.
fn left(deadline: Instant) -> io::Result<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| io::ErrorKind::TimedOut.into())
}

fn write_within(stream: &mut TcpStream, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.set_write_timeout(Some(left(deadline)?))?;
        match stream.write(bytes)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => bytes = &bytes[n..],
        }
    }
    Ok(())
}

/// Reads what the client still sends (up to [`MAX_DRAIN`] bytes, until it
/// closes or the deadline), so that closing does not reset the connection
/// before the client has read its answer.
fn drain(stream: &mut TcpStream, deadline: Instant) {
    let mut scratch = [0; 4096];
    let mut drained = 0;
    while drained < MAX_DRAIN {
        let Ok(timeout) = left(deadline) else {
            return;
        };
        if stream.set_read_timeout(Some(timeout)).is_err() {
            return;
        }
        match stream.read(&mut scratch) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}
