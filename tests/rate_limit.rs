//! One rate limit per destination, shared by every worker: several
//! `events work` processes on one queue and one Slack webhook send at most
//! one message a second between them, joining what waits, so a receiver
//! that refuses anything faster never has to answer `429`.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

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
