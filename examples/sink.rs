//! A tiny, fast HTTP sink for the benchmarks in `bench/run`.
//!
//! It exists so that `events work` can be measured against a local endpoint
//! that costs next to nothing: every request gets `200 ok`, and the sink only
//! counts what arrived, so the benchmark can check that every event was
//! delivered. A Segment batch (`{"batch":[…]}`) counts as the length of its
//! array; any other request counts as one event.
//!
//! ```text
//! cargo run --release --example sink -- --port 8099 [--threads 4]
//! curl -s http://127.0.0.1:8099/count     # the count so far, as the body
//! ```
//!
//! On SIGTERM or SIGINT it prints the event count to stdout (and the request
//! count to stderr) and exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tiny_http::{Method, Response, Server};

static EVENTS: AtomicU64 = AtomicU64::new(0);
static REQUESTS: AtomicU64 = AtomicU64::new(0);

fn main() {
    let (port, threads) = parse_args();
    let server =
        Arc::new(Server::http(("127.0.0.1", port)).unwrap_or_else(|e| fail(&e.to_string())));
    eprintln!(
        "sink: listening on {} with {threads} threads",
        server.server_addr()
    );

    for _ in 0..threads {
        let server = Arc::clone(&server);
        std::thread::spawn(move || {
            for request in server.incoming_requests() {
                serve(request);
            }
        });
    }

    let mut signals = Signals::new([SIGTERM, SIGINT]).unwrap_or_else(|e| fail(&e.to_string()));
    signals.forever().next();
    println!("{}", EVENTS.load(Relaxed));
    eprintln!("sink: {} requests", REQUESTS.load(Relaxed));
}

fn serve(mut request: tiny_http::Request) {
    if *request.method() == Method::Get && request.url() == "/count" {
        let _ = request.respond(Response::from_string(EVENTS.load(Relaxed).to_string()));
        return;
    }
    let mut body = Vec::new();
    let _ = request.as_reader().read_to_end(&mut body);
    EVENTS.fetch_add(events_in(&body), Relaxed);
    REQUESTS.fetch_add(1, Relaxed);
    let _ = request.respond(Response::from_string("ok"));
}

/// A Segment batch counts as its calls; anything else as one event.
fn events_in(body: &[u8]) -> u64 {
    if !body.starts_with(b"{\"batch\"") {
        return 1;
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("batch")?.as_array().map(|a| a.len() as u64))
        .unwrap_or(1)
}

fn parse_args() -> (u16, usize) {
    let (mut port, mut threads) = (None, 4);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| fail(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--port" => port = value.parse().ok(),
            "--threads" => {
                threads = value
                    .parse()
                    .unwrap_or_else(|_| fail("--threads needs a number"))
            }
            _ => fail(&format!("unknown argument {arg}")),
        }
    }
    (
        port.unwrap_or_else(|| fail("usage: sink --port N [--threads 4]")),
        threads.max(1),
    )
}

fn fail(message: &str) -> ! {
    eprintln!("sink: {message}");
    std::process::exit(2)
}
