//! A tiny, fast HTTP sink for the benchmarks in `bench/run`.
//!
//! It exists so that `events work` can be measured against a local endpoint
//! that costs next to nothing: every request gets `200 ok`, and the sink only
//! counts what arrived, so the benchmark can check that every event was
//! delivered. A Segment or PostHog batch (`{…"batch":[…]}`) counts as the
//! length of its array, a Mixpanel import (`[…]`) as its records; any other
//! request counts as one event.
//!
//! ```text
//! cargo run --release --example sink -- --port 8099
//! curl -s http://127.0.0.1:8099/count     # the count so far, as the body
//! ```
//!
//! On SIGTERM or SIGINT it prints the event count to stdout (and the request
//! count to stderr) and exits.
//!
//! With `--latency`, it also records, for each request whose body carries a
//! `"sent_us":N` stamp (µs since the Unix epoch, as `examples/pace.rs`
//! writes), the time it arrived minus that stamp, and on exit prints one
//! more line to stdout: `latency_ms n=… p50=… p90=… p99=… max=…`.
//!
//! Why not `tiny_http`: its thread pool (0.12) can leave a new keep-alive
//! connection queued behind busy ones when several connect at once (a
//! notified idle thread still counts as idle, so a second connection is
//! queued instead of getting a thread), and a client with 16 connections then
//! hangs until its timeout. So this is plain `std::net`, one thread per
//! connection, HTTP/1.1 keep-alive, `Content-Length` or chunked bodies.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

static EVENTS: AtomicU64 = AtomicU64::new(0);
static REQUESTS: AtomicU64 = AtomicU64::new(0);
static RECORD: AtomicBool = AtomicBool::new(false);
/// Arrival minus stamp, µs, one per stamped request.
static LATENCIES: Mutex<Vec<u64>> = Mutex::new(Vec::new());

fn main() {
    let (port, record) = parse_args();
    RECORD.store(record, Relaxed);
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| fail(&e.to_string()));
    eprintln!(
        "sink: listening on {}",
        listener.local_addr().expect("bound")
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    let mut signals = Signals::new([SIGTERM, SIGINT]).unwrap_or_else(|e| fail(&e.to_string()));
    signals.forever().next();
    println!("{}", EVENTS.load(Relaxed));
    if record {
        println!(
            "{}",
            latency_summary(&mut LATENCIES.lock().expect("not poisoned"))
        );
    }
    eprintln!("sink: {} requests", REQUESTS.load(Relaxed));
}

/// `latency_ms n=… p50=… p90=… p99=… max=…` (nearest-rank percentiles).
fn latency_summary(us: &mut [u64]) -> String {
    us.sort_unstable();
    let rank = |p: f64| {
        let i = ((p / 100.0) * us.len() as f64).ceil() as usize;
        us.get(i.saturating_sub(1)).map_or(0, |&v| v)
    };
    let ms = |v: u64| format!("{:.2}", v as f64 / 1000.0);
    format!(
        "latency_ms n={} p50={} p90={} p99={} max={}",
        us.len(),
        ms(rank(50.0)),
        ms(rank(90.0)),
        ms(rank(99.0)),
        ms(us.last().copied().unwrap_or(0))
    )
}

/// Records arrival minus the body's `"sent_us":N` stamp, if it has one.
fn record_latency(body: &[u8]) {
    let Some(at) = find(body, b"\"sent_us\":") else {
        return;
    };
    let digits = &body[at..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    let Some(sent) = std::str::from_utf8(&digits[..end])
        .ok()
        .and_then(|d| d.parse::<u64>().ok())
    else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_micros() as u64;
    LATENCIES
        .lock()
        .expect("not poisoned")
        .push(now.saturating_sub(sent));
}

/// Where the bytes after `needle` start in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + needle.len())
}

/// Serves one connection until the client closes it (or asks to).
fn serve(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut out = stream.try_clone().expect("a socket can be cloned");
    let mut input = BufReader::new(stream);
    while let Ok(Some(request)) = read_request(&mut input, &mut out) {
        let body = if request.count_only {
            EVENTS.load(Relaxed).to_string()
        } else {
            if RECORD.load(Relaxed) {
                record_latency(&request.body);
            }
            EVENTS.fetch_add(events_in(&request.body), Relaxed);
            REQUESTS.fetch_add(1, Relaxed);
            "ok".to_owned()
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if out.write_all(response.as_bytes()).is_err() || request.close {
            return;
        }
    }
}

struct Request {
    /// `GET /count`: answer with the count.
    count_only: bool,
    /// The client asked to close the connection after this request.
    close: bool,
    body: Vec<u8>,
}

/// Reads one request; `None` when the client closed the connection.
fn read_request(
    input: &mut BufReader<TcpStream>,
    out: &mut TcpStream,
) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let count_only = line.starts_with("GET /count ");
    let mut close = line.trim_end().ends_with("HTTP/1.0");
    let (mut length, mut chunked) = (0, false);
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let (name, value) = (
            name.trim().to_ascii_lowercase(),
            value.trim().to_ascii_lowercase(),
        );
        match name.as_str() {
            "content-length" => length = value.parse().unwrap_or(0),
            "transfer-encoding" => chunked = value.contains("chunked"),
            "connection" => close = value == "close",
            "expect" if value == "100-continue" => {
                out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?
            }
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            input.read_line(&mut line)?;
            let size =
                usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16).unwrap_or(0);
            if size == 0 {
                // Trailers, if any, then the empty line.
                while input.read_line(&mut line)? > 2 {}
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            input.read_exact(&mut body[start..])?;
            input.read_line(&mut line)?; // the CRLF after the chunk
        }
    } else {
        body.resize(length, 0);
        input.read_exact(&mut body)?;
    }
    Ok(Some(Request {
        count_only,
        close,
        body,
    }))
}

/// A Segment or PostHog batch (`{…"batch":[…]}`) counts as its calls, a
/// Mixpanel import (`[…]`) as its records; anything else as one event.
fn events_in(body: &[u8]) -> u64 {
    if !(body.starts_with(b"{\"batch\"")
        || body.starts_with(b"{\"api_key\"")
        || body.starts_with(b"["))
    {
        return 1;
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| match v {
            serde_json::Value::Array(records) => Some(records.len() as u64),
            v => v.get("batch")?.as_array().map(|a| a.len() as u64),
        })
        .unwrap_or(1)
}

fn parse_args() -> (u16, bool) {
    let (mut port, mut record) = (None, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--latency" {
            record = true;
            continue;
        }
        let value = args
            .next()
            .unwrap_or_else(|| fail(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--port" => {
                port = Some(
                    value
                        .parse()
                        .unwrap_or_else(|_| fail("--port needs a number")),
                )
            }
            _ => fail(&format!("unknown argument {arg}")),
        }
    }
    let port = port.unwrap_or_else(|| fail("usage: sink --port N [--latency]"));
    (port, record)
}

fn fail(message: &str) -> ! {
    eprintln!("sink: {message}");
    std::process::exit(2)
}
