//! One rate limit per destination, shared by every worker: several
//! `events work` processes on one queue and one Slack webhook send at most
//! one message a second between them, joining what waits, so a receiver
//! that refuses anything faster never has to answer `429`.

use std::cell::RefCell;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use events::rate::{Rate, Stored, Taken, take};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

use crate::support::{Events, LONG, RedisServer, Running, Sink, signups, slack_lines};

/// The lines `n` signups make, sorted.
fn expected_lines(n: usize) -> Vec<String> {
    let mut lines: Vec<String> = (0..n)
        .map(|i| format!("New signup: user{i}@example.com"))
        .collect();
    lines.sort();
    lines
}

/// Waits until the sink has accepted `n` lines, or [`LONG`] passes.
fn wait_for_lines(sink: &Sink, n: usize) {
    let deadline = Instant::now() + LONG;
    while slack_lines(sink).len() < n && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
}

/// Stops every worker and says how many of them delivered something.
fn stop_all(workers: Vec<Running>) -> usize {
    let mut delivering = 0;
    for worker in workers {
        worker.signal("TERM");
        let out = worker.wait(LONG).success();
        delivering += usize::from(out.stderr.contains("delivered"));
    }
    delivering
}

/// Zero `429`s, and every line exactly once.
fn assert_every_line_once_without_a_429(sink: &Sink, n: usize) {
    let refused = sink.request_count() - sink.accepted_count();
    assert_eq!(refused, 0, "{refused} requests were answered 429");
    let mut lines = slack_lines(sink);
    lines.sort();
    assert_eq!(lines, expected_lines(n), "every line exactly once");
}

#[test]
fn three_workers_on_one_slack_webhook_share_one_message_a_second() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    // Slack's way: one message a second, a burst of two, then 429.
    sink.rate_limit(1, 2);
    let events = || {
        Events::new()
            .env("REDIS_URL", redis.url())
            .env("SLACK_WEBHOOK_URL", sink.url())
            .env("EVENTS_RETRY_BASE_MS", "10")
    };
    let workers: Vec<_> = (0..3)
        .map(|i| {
            events()
                .args(["work", "--consumer", &format!("w{i}")])
                .spawn()
        })
        .collect();
    // Events arrive while all three wait for them, so each takes a share.
    for batch in 0..9 {
        events()
            .args(["emit", "--stdin"])
            .stdin(signups(batch * 10..batch * 10 + 10))
            .run()
            .success();
    }
    wait_for_lines(&sink, 90);
    let delivering = stop_all(workers);
    assert_every_line_once_without_a_429(&sink, 90);
    assert!(delivering >= 2, "the work was shared");
    // The shared limit lives in the queue, under the hash tag.
    let ttl: i64 = redis
        .cli(&["PTTL", "{events}:rate:slack"])
        .trim()
        .parse()
        .unwrap();
    assert!(ttl <= 1000, "the limiter's state expires once free: {ttl}");
}

#[test]
fn two_workers_on_one_sqlite_file_share_the_limit_too() {
    let home = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    sink.rate_limit(1, 2);
    let events = |home: &Path| {
        Events::new()
            .home(home)
            .env("SLACK_WEBHOOK_URL", sink.url())
            .env("EVENTS_RETRY_BASE_MS", "10")
    };
    let workers: Vec<_> = (0..2)
        .map(|i| {
            events(home.path())
                .args(["work", "--consumer", &format!("w{i}")])
                .spawn()
        })
        .collect();
    for batch in 0..6 {
        events(home.path())
            .args(["emit", "--stdin"])
            .stdin(signups(batch * 10..batch * 10 + 10))
            .run()
            .success();
    }
    wait_for_lines(&sink, 60);
    stop_all(workers);
    assert_every_line_once_without_a_429(&sink, 60);
}

#[test]
fn a_configured_rate_paces_a_webhook_and_joins_nothing() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    // Two a second, a burst of two: anything faster is refused.
    sink.rate_limit(2, 2);
    std::fs::write(
        home.path().join("events.toml"),
        "[[destination]]\nname = \"hook\"\nkind = \"webhook\"\nrate = \"2/s\"\n",
    )
    .unwrap();
    let events = || {
        Events::new()
            .home(home.path())
            .current_dir(home.path())
            .env("REDIS_URL", redis.url())
            .env("EVENTS_WEBHOOK_URL", sink.url())
            .env("EVENTS_WEBHOOK_SECRET", crate::support::WEBHOOK_SECRET)
    };
    events()
        .args(["emit", "--stdin"])
        .stdin(signups(0..6))
        .run()
        .success();
    events()
        .args(["work", "--burst", "--concurrency", "8"])
        .run()
        .success();
    assert_eq!(sink.accepted_count(), 6, "one request per event");
    assert_eq!(sink.request_count(), 6, "none refused");
}

/// States the limiter never writes, as a hand edit or a bad migration
/// leaves them: `(redis-cli arguments that write it, what it is)`.
fn corrupt_redis_states(key: &str, now_ms: i64) -> Vec<(Vec<String>, &'static str)> {
    let set = |value: &str| vec!["SET".to_owned(), key.to_owned(), value.to_owned()];
    let ten_years_on = (now_ms + 10 * 365 * 86_400_000).to_string();
    vec![
        (set("abc"), "text"),
        (set("nan"), "nan"),
        (set("inf"), "inf"),
        (set("1e300"), "a huge float"),
        (set("99999999999999999999"), "a huge whole number"),
        (set("12.5"), "a fraction"),
        (set(&ten_years_on), "a far-future time"),
        (
            vec!["RPUSH".to_owned(), key.to_owned(), "1".to_owned()],
            "a list",
        ),
    ]
}

#[test]
fn a_corrupt_shared_limit_on_redis_is_reset_and_said_never_a_stall() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    let key = "{events}:rate:slack";
    let now_ms = events::event::now_ms();
    for (round, (write, what)) in corrupt_redis_states(key, now_ms).into_iter().enumerate() {
        let write: Vec<&str> = write.iter().map(String::as_str).collect();
        redis.cli(&["DEL", key]);
        redis.cli(&write);
        let events = || {
            Events::new()
                .env("REDIS_URL", redis.url())
                .env("SLACK_WEBHOOK_URL", sink.url())
        };
        events()
            .args(["emit", "--stdin"])
            .stdin(signups(round * 3..round * 3 + 3))
            .run()
            .success();
        // It used to wait for ever; a burst that answers at all sent them.
        let out = events()
            .args(["work", "--burst"])
            .timeout(Duration::from_secs(20))
            .run()
            .success();
        assert_eq!(
            slack_lines(&sink).len(),
            round * 3 + 3,
            "{what}: every event sent"
        );
        let said = out
            .stderr
            .matches(&format!("warning: the rate limit state at {key}"))
            .count();
        assert_eq!(said, 1, "{what}: said once, naming the key: {}", out.stderr);
        assert!(out.stderr.contains("reset"), "{what}: {}", out.stderr);
        // Replaced by one the limiter wrote: it expires once free.
        let ttl: i64 = redis.cli(&["PTTL", key]).trim().parse().unwrap();
        assert!(ttl != -1 && ttl <= 1000, "{what}: the state expires: {ttl}");
    }
}

/// What a generated case finds under the key before it asks.
#[derive(Debug, Clone)]
enum Found {
    Nothing,
    Text(String),
    /// A key of another type: `RPUSH`, `HSET` or `SADD`.
    OtherType(&'static str),
}

fn found_strategy() -> impl Strategy<Value = (Found, i64)> {
    // `now` stays a time the Redis clock gives (before 2096); the state
    // lands near it, anywhere, or is no number at all.
    (1_000_000_000_000i64..4_000_000_000_000).prop_flat_map(|now| {
        let near = (-5_000i64..5_000).prop_map(move |d| Found::Text((now + d).to_string()));
        let text = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|x| x.to_string()),
            "-?[0-9]{14,17}",
            "\\PC{0,12}",
            Just("nan".to_owned()),
            Just("-inf".to_owned()),
            Just("1e300".to_owned()),
        ]
        .prop_map(Found::Text);
        let state = prop_oneof![
            Just(Found::Nothing),
            near,
            text,
            prop_oneof![Just("RPUSH"), Just("HSET"), Just("SADD")].prop_map(Found::OtherType),
        ];
        (state, Just(now))
    })
}

/// The script's answer and the state it leaves: `(wait ms, why reset,
/// stored text, ttl ms)`.
type Answer = (u64, Option<String>, Option<String>, i64);

fn ask_script(con: &mut redis::Connection, found: &Found, now: i64, interval: i64) -> Answer {
    let key = "{events}:rate:slack";
    let script = redis::Script::new(&format!(
        "local now = tonumber(ARGV[2])\n{}",
        events::queue::redis::TAKE_TOKEN_RULE
    ));
    let _: () = redis::cmd("DEL").arg(key).query(con).unwrap();
    match found {
        Found::Nothing => {}
        Found::Text(text) => redis::cmd("SET").arg(key).arg(text).query(con).unwrap(),
        Found::OtherType(write) => {
            let mut cmd = redis::cmd(write);
            cmd.arg(key).arg("a");
            if *write == "HSET" {
                cmd.arg("b");
            }
            let _: i64 = cmd.query(con).unwrap();
        }
    }
    let (wait, why): (u64, Option<String>) =
        script.key(key).arg(interval).arg(now).invoke(con).unwrap();
    let after: Option<String> = redis::cmd("GET").arg(key).query(con).unwrap_or(None);
    let ttl: i64 = redis::cmd("PTTL").arg(key).query(con).unwrap();
    (wait, why, after, ttl)
}

/// What `rate::take` says the script should answer.
fn ask_rust(found: &Found, now: i64, rate: Rate) -> Answer {
    let stored = match found {
        Found::Nothing => Stored::Nothing,
        Found::Text(text) => Stored::Text(text),
        Found::OtherType(_) => Stored::Unreadable("not a string"),
    };
    let interval = rate.interval_ms();
    match take(stored, now, rate) {
        Taken::Wait(wait) => {
            let Found::Text(text) = found else {
                panic!("waits only on a stored time")
            };
            (wait.as_millis() as u64, None, Some(text.clone()), -1)
        }
        Taken::Granted { next_free_ms } => (0, None, Some(next_free_ms.to_string()), interval),
        Taken::Reset { next_free_ms, why } => (
            0,
            Some(why.to_owned()),
            Some(next_free_ms.to_string()),
            interval,
        ),
    }
}

/// The token bucket is written twice, in Rust (SQLite) and in the Redis
/// script: on any state, corrupt ones too, the two decide alike and leave
/// the same state behind.
#[test]
fn the_redis_script_decides_as_rate_take_does() {
    let server = RedisServer::start();
    let client = redis::Client::open(server.url()).unwrap();
    let con = RefCell::new(client.get_connection().unwrap());
    let mut runner = TestRunner::new(ProptestConfig::with_cases(512));
    let cases = (found_strategy(), 1u32..20, 1u64..10_000);
    let checked = runner.run(&cases, |((found, now), sends, per)| {
        let Some(rate) = Rate::new(sends, Duration::from_millis(per * 10)) else {
            return Ok(());
        };
        let (wait, why, after, ttl) =
            ask_script(&mut con.borrow_mut(), &found, now, rate.interval_ms());
        let (want_wait, want_why, want_after, want_ttl) = ask_rust(&found, now, rate);
        let what = format!("{found:?} at {now}, {rate}");
        prop_assert_eq!(
            (wait, why, after),
            (want_wait, want_why, want_after),
            "{}",
            what
        );
        if want_ttl == -1 {
            // A wait leaves the state as it was.
            prop_assert_eq!(ttl, -1, "{}", what);
        } else {
            // A state set expires once free.
            prop_assert!(ttl > 0 && ttl <= want_ttl, "{}: ttl {}", what, ttl);
        }
        Ok(())
    });
    if let Err(e) = checked {
        panic!("{e}");
    }
}

#[test]
fn a_corrupt_shared_limit_on_sqlite_is_reset_and_said_never_a_stall() {
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("state/events/events.db");
    let sink = Sink::start();
    let events = || {
        Events::new()
            .home(home.path())
            .env("SLACK_WEBHOOK_URL", sink.url())
    };
    let ten_years_on = events::event::now_ms() + 10 * 365 * 86_400_000;
    let corrupt = [
        ("'abc'", "text"),
        ("x'00ff'", "a blob"),
        ("1e300", "a huge float"),
        ("9e999", "infinity"),
        ("12.5", "a fraction"),
        ("9223372036854775807", "the largest integer"),
        (&*ten_years_on.to_string(), "a far-future time"),
    ];
    for (round, (value, what)) in corrupt.into_iter().enumerate() {
        events()
            .args(["emit", "--stdin"])
            .stdin(signups(round * 3..round * 3 + 3))
            .run()
            .success();
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(&format!(
            "INSERT OR REPLACE INTO rate_limits (dest, next_free_ms) VALUES ('slack', {value})"
        ))
        .unwrap();
        drop(conn);
        // It used to wait for ever; a burst that answers at all sent them.
        let out = events()
            .args(["work", "--burst"])
            .timeout(Duration::from_secs(20))
            .run()
            .success();
        assert_eq!(
            slack_lines(&sink).len(),
            round * 3 + 3,
            "{what}: every event sent"
        );
        let said = out
            .stderr
            .matches("warning: the rate limit state at row \"slack\" of rate_limits in ")
            .count();
        assert_eq!(said, 1, "{what}: said once, naming the row: {}", out.stderr);
        assert!(out.stderr.contains("; reset"), "{what}: {}", out.stderr);
    }
}
