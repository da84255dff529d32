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
