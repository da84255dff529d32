//! One exchange with a server the sentinel lookup asks (a sentinel, or the
//! primary it names): connecting, asking and reading the answers, all
//! within one deadline and a bound on what is read. A server that trickles
//! its answer a byte at a time, or answers megabytes, is given up on like
//! one that never answers: the redis crate's connections time out each
//! read, not the whole answer, and read an answer of any length.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{Parser, RedisResult, Value};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// The most read from one server in one exchange: its answers are an
/// address or a role, a few hundred bytes.
pub const MAX_ANSWER: u64 = 64 * 1024;

/// The instant an exchange must be over by.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Instant,
    limit: Duration,
}

impl Deadline {
    /// `limit` from now.
    pub fn after(limit: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + limit,
            limit,
        }
    }

    /// The time left, or a timeout once there is none.
    pub fn left(&self) -> io::Result<Duration> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let limit = match self.limit.subsec_millis() {
                0 => format!("{} s", self.limit.as_secs()),
                _ => format!("{} ms", self.limit.as_millis()),
            };
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("did not answer within {limit}"),
            ));
        }
        Ok(left)
    }
}

/// Plain TCP, or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => &tls.sock,
        }
    }
}

/// A connection whose every read and write ends by the deadline, and whose
/// reads stop at [`MAX_ANSWER`] bytes.
struct Bounded {
    stream: Stream,
    deadline: Deadline,
    read: u64,
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.left()?;
        let room = MAX_ANSWER - self.read;
        if room == 0 {
            return Err(too_long());
        }
        self.stream.tcp().set_read_timeout(Some(left))?;
        let max = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = match &mut self.stream {
            Stream::Plain(tcp) => tcp.read(&mut buf[..max]),
            Stream::Tls(tls) => tls.read(&mut buf[..max]),
        }
        .map_err(|e| self.timed_out(e))?;
        self.read += n as u64;
        Ok(n)
    }
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.deadline.left()?;
        self.stream.tcp().set_write_timeout(Some(left))?;
        match &mut self.stream {
            Stream::Plain(tcp) => tcp.write(buf),
            Stream::Tls(tls) => tls.write(buf),
        }
        .map_err(|e| self.timed_out(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.stream {
            Stream::Plain(tcp) => tcp.flush(),
            Stream::Tls(tls) => tls.flush(),
        }
        .map_err(|e| self.timed_out(e))
    }
}

impl Bounded {
    /// A socket timeout (`WouldBlock` on Unix) is the deadline passing.
    fn timed_out(&self, e: io::Error) -> io::Error {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => self
                .deadline
                .left()
                .err()
                .unwrap_or_else(|| io::Error::new(io::ErrorKind::TimedOut, e.to_string())),
            _ => e,
        }
    }
}

fn too_long() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "sent more than {} KiB without finishing its answer",
            MAX_ANSWER / 1024
        ),
    )
}

/// Questions and answers with one server, by one deadline.
pub struct Exchange {
    conn: Bounded,
    parser: Parser,
}

impl Exchange {
    /// Connects to `host:port` (TLS, verifying its certificate, if `tls`)
    /// before `deadline`. Each error's text reads after the server's name:
    /// `cannot be reached: …`, `did not answer within 2 s`.
    pub fn open(host: &str, port: u16, tls: bool, deadline: Deadline) -> io::Result<Exchange> {
        let unreachable = |e: io::Error| match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                deadline.left().err().unwrap_or(e)
            }
            kind => io::Error::new(kind, format!("cannot be reached: {e}")),
        };
        let mut failed = None;
        let mut connected = None;
        for addr in (host, port).to_socket_addrs().map_err(unreachable)? {
            match TcpStream::connect_timeout(&addr, deadline.left()?) {
                Ok(tcp) => {
                    connected = Some(tcp);
                    break;
                }
                Err(e) => failed = Some(unreachable(e)),
            }
        }
        let tcp = connected.ok_or_else(|| {
            failed.unwrap_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "cannot be reached: no address")
            })
        })?;
        tcp.set_nodelay(true)?;
        let stream = if tls {
            Stream::Tls(Box::new(StreamOwned::new(tls_client(host)?, tcp)))
        } else {
            Stream::Plain(tcp)
        };
        Ok(Exchange {
            conn: Bounded {
                stream,
                deadline,
                read: 0,
            },
            parser: Parser::new(),
        })
    }

    /// Sends `cmd` and reads its answer. A server's error answer is an
    /// `Err` with its code; any other failure is an I/O error whose text
    /// reads after the server's name, and never echoes what it sent.
    pub fn ask(&mut self, cmd: &redis::Cmd) -> RedisResult<Value> {
        let sent = self
            .conn
            .write_all(&cmd.get_packed_command())
            .and_then(|()| self.conn.flush());
        let answer = match sent {
            Ok(()) => self.parser.parse_value(&mut self.conn),
            Err(e) => Err(e.into()),
        };
        match answer {
            Ok(value) => value.extract_error(),
            Err(e) => {
                // The deadline or the bound, if either is why it failed.
                self.conn.deadline.left()?;
                if self.conn.read >= MAX_ANSWER {
                    return Err(too_long().into());
                }
                let why = if e.is_io_error() {
                    format!("broke off the exchange: {e}")
                } else {
                    "answered in something other than Redis's protocol".to_owned()
                };
                Err(io::Error::new(io::ErrorKind::InvalidData, why).into())
            }
        }
    }
}

/// A TLS session with `host`, verified against the system's certificates
/// (as the redis crate's own TLS connections are).
fn tls_client(host: &str) -> io::Result<ClientConnection> {
    let mut roots = RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned()).map_err(io::Error::other)?;
    ClientConnection::new(Arc::new(config), name).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// A server on 127.0.0.1 that reads the question and answers `answer`
    /// one byte every `pace`.
    fn server(answer: &'static [u8], pace: Duration) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let _ = stream.read(&mut [0; 1024]);
            if pace.is_zero() {
                let _ = stream.write_all(answer);
            }
            for byte in answer.iter().filter(|_| !pace.is_zero()) {
                if stream.write_all(&[*byte]).is_err() {
                    return;
                }
                thread::sleep(pace);
            }
            let _ = stream.read(&mut [0; 1024]);
        });
        port
    }

    fn ask(port: u16, deadline: Deadline) -> RedisResult<Value> {
        Exchange::open("127.0.0.1", port, false, deadline)?.ask(&redis::cmd("PING"))
    }

    #[test]
    fn an_answer_within_the_deadline_is_read() {
        let port = server(b"+PONG\r\n", Duration::ZERO);
        let answer = ask(port, Deadline::after(Duration::from_secs(10)));
        assert_eq!(answer.unwrap(), Value::SimpleString("PONG".into()));
    }

    /// Every read of a trickled answer is quick; their sum is not, and the
    /// deadline bounds the sum.
    #[test]
    fn a_trickled_answer_fails_at_the_deadline_of_the_whole_exchange() {
        let port = server(b"+PONG PONG PONG PONG PONG\r\n", Duration::from_millis(100));
        let start = Instant::now();
        let err = ask(port, Deadline::after(Duration::from_millis(500))).unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert_eq!(err.to_string(), "did not answer within 500 ms");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    /// Connecting takes from the same deadline as the answer.
    #[test]
    fn a_deadline_spent_before_connecting_fails_without_asking() {
        let deadline = Deadline::after(Duration::ZERO);
        let err = Exchange::open("127.0.0.1", 1, false, deadline)
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn an_answer_past_the_bound_is_cut_short() {
        static HUGE: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
            let mut huge = b"-ERR ".to_vec();
            huge.resize(4 << 20, b'x');
            huge
        });
        let port = server(&HUGE, Duration::ZERO);
        let err = ask(port, Deadline::after(Duration::from_secs(10))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sent more than 64 KiB without finishing its answer"
        );
    }

    #[test]
    fn what_is_not_redis_protocol_says_so_and_echoes_nothing() {
        let port = server(b"HTTP/1.1 400 Bad Request\r\n\r\n", Duration::ZERO);
        let err = ask(port, Deadline::after(Duration::from_secs(10))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "answered in something other than Redis's protocol"
        );
    }
}
