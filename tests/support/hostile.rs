//! Hostile answers for the in-process HTTP server (`http::Sink`): receivers
//! that redirect, hang, hang up, send half a response, a body or a header
//! far too large, or absurd `Retry-After` values. A destination must come out
//! of each with a clear outcome, bounded time and bounded memory, and never
//! count as delivered what the receiver did not accept.

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::http::Reply;

/// How a hostile reply departs from a well-formed one.
#[derive(Clone, Debug)]
pub enum Misbehaviour {
    /// Reads the request and never answers, until the client gives up.
    Hang,
    /// Closes the connection without a word.
    Close,
    /// Sends the head, announcing the whole body, then only its first
    /// `sent` bytes, then closes.
    Truncate { sent: usize },
    /// Sends the body followed by `filler` more bytes (all announced); how
    /// many bytes the client took before it hung up is counted in `written`.
    HugeBody {
        filler: usize,
        written: Arc<AtomicUsize>,
    },
    /// Adds one header `bytes` long.
    HugeHeader(usize),
}

impl Reply {
    /// A redirect to `location`, as a receiver that moved (or a hostile one) answers.
    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::status(status, "").header("Location", location)
    }

    /// Reads the request and never answers.
    pub fn hang() -> Reply {
        Reply::ok().misbehave(Misbehaviour::Hang)
    }

    /// Closes the connection after reading the request.
    pub fn hang_up() -> Reply {
        Reply::ok().misbehave(Misbehaviour::Close)
    }

    pub fn misbehave(mut self, misbehaviour: Misbehaviour) -> Reply {
        self.misbehaviour = Some(misbehaviour);
        self
    }
}

impl Misbehaviour {
    /// A body of `filler` bytes after the reply's own, counting what was written.
    pub fn huge_body(filler: usize) -> (Misbehaviour, Arc<AtomicUsize>) {
        let written = Arc::new(AtomicUsize::new(0));
        (
            Misbehaviour::HugeBody {
                filler,
                written: Arc::clone(&written),
            },
            written,
        )
    }

    /// Answers `reply` this way on a connection, which it then ends.
    pub(super) fn answer(
        &self,
        reply: &Reply,
        mut reader: BufReader<TcpStream>,
        mut writer: TcpStream,
    ) {
        match self {
            Misbehaviour::Hang => {
                // Until the client closes (or the server's read timeout).
                let mut buf = [0; 1024];
                while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
            }
            Misbehaviour::Close => {}
            Misbehaviour::Truncate { sent } => {
                let mut bytes = reply.head(reply.body.len());
                bytes.extend_from_slice(&reply.body.as_bytes()[..(*sent).min(reply.body.len())]);
                let _ = writer.write_all(&bytes).and_then(|()| writer.flush());
            }
            Misbehaviour::HugeBody { filler, written } => {
                let mut bytes = reply.head(reply.body.len() + filler);
                bytes.extend_from_slice(reply.body.as_bytes());
                if writer.write_all(&bytes).is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                let mut left = *filler;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if writer.write_all(&chunk[..n]).is_err() {
                        break;
                    }
                    written.fetch_add(n, Ordering::SeqCst);
                    left -= n;
                }
            }
            Misbehaviour::HugeHeader(bytes) => {
                let reply = reply.clone().header("X-Filler", &"a".repeat(*bytes));
                let _ = writer.write_all(&reply.to_bytes());
            }
        }
        let _ = writer.shutdown(Shutdown::Both);
    }
}

// Hostile clients, for a server the product runs (`work --metrics-addr`).

/// Connects to `addr` and sends `requests` copies of `GET path`, pipelined,
/// never reading an answer; gives up writing after 2 s (a server that stops
/// reading). The connection stays open for as long as the stream is kept.
pub fn pipeline_unread(addr: &str, path: &str, requests: usize) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect to the server");
    stream
        .set_write_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let one = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let _ = stream.write_all(one.repeat(requests).as_bytes());
    stream
}

/// `n` connections to `addr` that never send a byte.
pub fn idle_connections(addr: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| TcpStream::connect(addr).expect("connect to the server"))
        .collect()
}

/// A connection to `addr` that sends a request head one byte every
/// `interval`, never ending it, until the server closes the connection (or
/// `give_up` passes); returns how long the server put up with it.
pub fn trickle(
    addr: &str,
    interval: std::time::Duration,
    give_up: std::time::Duration,
) -> std::thread::JoinHandle<std::time::Duration> {
    let mut stream = TcpStream::connect(addr).expect("connect to the server");
    std::thread::spawn(move || {
        let start = std::time::Instant::now();
        let head = b"GET /metrics HTTP/1.1\r\nX-Slow: "
            .iter()
            .chain(std::iter::repeat(&b'a'));
        for byte in head {
            if stream.write_all(&[*byte]).is_err() || start.elapsed() > give_up {
                break;
            }
            std::thread::sleep(interval);
        }
        start.elapsed()
    })
}

/// Sends `GET path` with one header `bytes` long and returns whatever the
/// server answers before it closes (or 5 s pass).
pub fn oversized_head(addr: &str, path: &str, bytes: usize) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the server");
    let timeout = Some(std::time::Duration::from_secs(5));
    stream.set_write_timeout(timeout).unwrap();
    stream.set_read_timeout(timeout).unwrap();
    let filler = "a".repeat(bytes);
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nX-Filler: {filler}\r\n\r\n");
    let _ = stream.write_all(head.as_bytes());
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}
