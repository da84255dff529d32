//! A steady producer for the latency benchmark in `bench/run`.
//!
//! It sends `user.signup` events at a fixed rate, each stamped with the time
//! it was sent (`sent_us`, µs since the Unix epoch, in the payload), so that
//! the sink (`examples/sink.rs --latency`) can record how long each took to
//! arrive. Events are spaced evenly, not sent in bursts: the figure is the
//! latency of a steady stream, not of a backlog.
//!
//! ```text
//! # the measured path: XADD into the stream a worker reads
//! cargo run --release --example pace -- --redis redis://127.0.0.1:6379 --rate 1000 --seconds 20
//! # the floor: POST the same bodies straight to the sink
//! cargo run --release --example pace -- --post http://127.0.0.1:8099/hook --rate 1000 --seconds 20
//! # the embedded store: append to the SQLite file a worker reads
//! cargo run --release --example pace -- --sqlite /tmp/events.db --rate 1000 --seconds 20
//! # Postgres: one plain INSERT per transaction, as an application commits
//! cargo run --release --example pace -- --postgres postgres://127.0.0.1/app --schema events --rate 500 --seconds 20
//! ```
//!
//! The first `--warmup` seconds (default 1) send events without a stamp:
//! connections are opened and caches warmed before anything is recorded.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

enum Target {
    /// `XADD` to this stream.
    Redis {
        conn: redis::Connection,
        stream: String,
    },
    /// `POST` the event's JSON to this URL.
    Post { agent: ureq::Agent, url: String },
    /// Append to the SQLite store, as `events emit` does.
    Sqlite(Box<dyn events::queue::Queue>),
    /// `INSERT` one row into the schema's stream, committed on its own.
    Postgres {
        client: Box<postgres::Client>,
        insert: String,
    },
}

struct Args {
    target: Target,
    rate: f64,
    seconds: f64,
    warmup: f64,
}

fn main() {
    let Args {
        mut target,
        rate,
        seconds,
        warmup,
    } = parse_args();
    let gap = Duration::from_secs_f64(1.0 / rate);
    let stamped = (rate * seconds).round() as u64;
    let total = (rate * warmup).round() as u64 + stamped;
    let start = Instant::now();
    let mut late = Duration::ZERO;
    for i in 0..total {
        let due = start + gap.mul_f64(i as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else {
            late = late.max(now - due);
        }
        let stamp = (i >= total - stamped).then(now_us);
        send(&mut target, i, stamp);
    }
    eprintln!(
        "pace: sent {total} events ({stamped} stamped) in {:.2}s; at worst {:.2} ms behind schedule",
        start.elapsed().as_secs_f64(),
        late.as_secs_f64() * 1000.0
    );
}

fn send(target: &mut Target, i: u64, stamp: Option<u64>) {
    let mut payload = serde_json::json!({ "email": format!("user{i}@example.com") });
    if let Some(us) = stamp {
        payload["sent_us"] = us.into();
    }
    match target {
        Target::Redis { conn, stream } => {
            let _: String = redis::cmd("XADD")
                .arg(&*stream)
                .arg("*")
                .arg("type")
                .arg("user.signup")
                .arg("payload")
                .arg(payload.to_string())
                .query(conn)
                .unwrap_or_else(|e| fail(&format!("XADD failed: {e}")));
        }
        Target::Sqlite(queue) => {
            let payload = payload.as_object().cloned().unwrap_or_default();
            queue
                .append(&[events::Event::new("user.signup", payload)])
                .unwrap_or_else(|e| fail(&format!("append failed: {e}")));
        }
        Target::Postgres { client, insert } => {
            client
                .execute(insert.as_str(), &[&payload.to_string()])
                .unwrap_or_else(|e| fail(&format!("INSERT failed: {e}")));
        }
        Target::Post { agent, url } => {
            let body = serde_json::json!({
                "id": format!("01M8E5ZRP75JG2727K{i:08}"),
                "type": "user.signup",
                "ts": "2026-11-27T09:00:00.000Z",
                "payload": payload,
            });
            agent
                .post(url.as_str())
                .header("content-type", "application/json")
                .send(body.to_string())
                .unwrap_or_else(|e| fail(&format!("POST failed: {e}")));
        }
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_micros() as u64
}

fn parse_args() -> Args {
    let (mut redis_url, mut post, mut stream) = (None, None, "{events}:stream".to_owned());
    let (mut sqlite, mut pg, mut schema) = (None, None, "events".to_owned());
    let (mut rate, mut seconds, mut warmup) = (1000.0, 10.0, 1.0);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| fail(&format!("{arg} needs a value")));
        let number = || -> f64 {
            value
                .parse()
                .ok()
                .filter(|n: &f64| *n >= 0.0)
                .unwrap_or_else(|| fail(&format!("{arg} needs a number")))
        };
        match arg.as_str() {
            "--redis" => redis_url = Some(value),
            "--post" => post = Some(value),
            "--sqlite" => sqlite = Some(std::path::PathBuf::from(value)),
            "--postgres" => pg = Some(value),
            "--schema" => schema = value,
            "--stream" => stream = value,
            "--rate" => rate = number(),
            "--seconds" => seconds = number(),
            "--warmup" => warmup = number(),
            _ => fail(&format!("unknown argument {arg}")),
        }
    }
    if rate <= 0.0 {
        fail("--rate must be above 0");
    }
    if let Some(url) = pg {
        let client = postgres::Client::connect(&url, postgres::NoTls)
            .unwrap_or_else(|e| fail(&format!("cannot connect to --postgres: {e}")));
        let insert =
            format!("INSERT INTO {schema}.stream (type, payload) VALUES ('user.signup', $1)");
        return Args {
            target: Target::Postgres {
                client: Box::new(client),
                insert,
            },
            rate,
            seconds,
            warmup,
        };
    }
    let target = match (redis_url, post, sqlite) {
        (Some(url), None, None) => {
            let client = redis::Client::open(url.as_str())
                .unwrap_or_else(|e| fail(&format!("--redis {url}: {e}")));
            let conn = client
                .get_connection()
                .unwrap_or_else(|e| fail(&format!("cannot connect to {url}: {e}")));
            Target::Redis { conn, stream }
        }
        (None, Some(url), None) => Target::Post {
            agent: ureq::Agent::new_with_defaults(),
            url,
        },
        (None, None, Some(path)) => Target::Sqlite(Box::new(
            events::queue::sqlite::SqliteQueue::open(&path, Default::default())
                .unwrap_or_else(|e| fail(&format!("--sqlite {}: {e}", path.display()))),
        )),
        _ => fail(
            "usage: pace (--redis URL [--stream KEY] | --post URL | --sqlite PATH | --postgres URL [--schema NAME]) [--rate N] [--seconds S] [--warmup S]",
        ),
    };
    Args {
        target,
        rate,
        seconds,
        warmup,
    }
}

fn fail(message: &str) -> ! {
    eprintln!("pace: {message}");
    std::process::exit(2)
}
