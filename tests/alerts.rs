//! Dead-letter alerts end to end: a Segment that refuses its key tells Slack
//! once, an alert never reaches the destination it is about nor raises
//! another, three workers share one alert window, and `EVENTS_ALERTS=0`
//! silences them. Real Redis (and SQLite), in-process receivers.

use std::time::Duration;

use crate::support::{Events, RedisServer, Reply, Sink, signups, slack_lines};

const SIGNUPS: usize = 30;

fn emit(events: Events) {
    events
        .arg("emit")
        .arg("--stdin")
        .stdin(signups(0..SIGNUPS))
        .run()
        .success();
}

/// The binary with Segment at `segment` and Slack at `slack`, alerts on by
/// default.
fn both(segment: &Sink, slack: &Sink) -> Events {
    Events::new()
        .env_remove("EVENTS_ALERTS")
        .env("SEGMENT_WRITE_KEY", "wk_test_123")
        .env("SEGMENT_ENDPOINT", segment.base_url())
        .env("SLACK_WEBHOOK_URL", slack.url())
        .env("EVENTS_RETRY_BASE_MS", "10")
}

fn on(redis: &RedisServer, segment: &Sink, slack: &Sink) -> Events {
    both(segment, slack).env("REDIS_URL", redis.url())
}

fn alert_lines(slack: &Sink) -> Vec<String> {
    slack_lines(slack)
        .into_iter()
        .filter(|line| line.starts_with("Dead letters: "))
        .collect()
}

/// The `events.dead_letters` events a Segment receiver was sent, as
/// `(dest, count)`, whatever it answered.
fn segment_alerts(segment: &Sink) -> Vec<(String, u64)> {
    segment
        .requests()
        .iter()
        .flat_map(|r| r.json()["batch"].as_array().cloned().unwrap_or_default())
        .filter(|call| call["event"] == "events.dead_letters")
        .map(|call| {
            let properties = &call["properties"];
            (
                properties["dest"].as_str().unwrap().to_owned(),
                properties["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn stream_len(redis: &RedisServer) -> usize {
    redis.cli(&["XLEN", "{events}:stream"]).parse().unwrap()
}

fn refusing_segment() -> Sink {
    let segment = Sink::start();
    segment.set_default(Reply::status(401, "invalid write key"));
    segment
}

#[test]
fn a_refused_segment_key_tells_slack_once_and_segment_never() {
    let redis = RedisServer::start();
    let (segment, slack) = (refusing_segment(), Sink::start());
    emit(on(&redis, &segment, &slack));
    on(&redis, &segment, &slack)
        .args(["work", "--burst"])
        .run()
        .success();
    let alerts = alert_lines(&slack);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].contains(" deliveries to segment failed: HTTP 401"),
        "{}",
        alerts[0]
    );
    assert_eq!(segment_alerts(&segment), []);
    assert_eq!(stream_len(&redis), SIGNUPS + 1, "one alert appended");
}

#[test]
fn failing_destinations_alert_each_other_once_and_dead_alerts_raise_none() {
    let redis = RedisServer::start();
    let (segment, slack) = (refusing_segment(), Sink::start());
    slack.set_default(Reply::status(404, "channel_not_found"));
    emit(on(&redis, &segment, &slack));
    // A loop would never let a burst end, nor keep the stream at two alerts.
    on(&redis, &segment, &slack)
        .args(["work", "--burst"])
        .run()
        .success();
    assert_eq!(stream_len(&redis), SIGNUPS + 2);
    let about_slack = segment_alerts(&segment);
    assert_eq!(about_slack.len(), 1, "{about_slack:?}");
    assert_eq!(about_slack[0].0, "slack");
    // Lines of every message Slack was sent (it answered 404 to each), which
    // may join several events.
    let slack_texts: Vec<String> = slack
        .requests()
        .iter()
        .filter_map(|r| r.json()["text"].as_str().map(str::to_owned))
        .flat_map(|text| text.lines().map(str::to_owned).collect::<Vec<_>>())
        .filter(|line| line.starts_with("Dead letters: "))
        .collect();
    assert_eq!(slack_texts.len(), 1, "{slack_texts:?}");
    assert!(
        slack_texts[0].contains(" to segment failed: HTTP 401"),
        "{slack_texts:?}"
    );
}

#[test]
fn three_workers_and_many_dead_letters_in_one_window_raise_one_alert() {
    let redis = RedisServer::start();
    let (segment, slack) = (refusing_segment(), Sink::start());
    for _ in 0..3 {
        emit(on(&redis, &segment, &slack));
    }
    let workers: Vec<_> = (0..3)
        .map(|_| {
            on(&redis, &segment, &slack)
                .args(["work", "--burst"])
                .spawn()
        })
        .collect();
    for worker in workers {
        worker.wait(Duration::from_secs(120)).success();
    }
    assert_eq!(alert_lines(&slack).len(), 1, "{:?}", alert_lines(&slack));
    // Whatever died after the first alert waits, counted, for the next.
    let between: u64 = redis
        .cli(&["HGET", "{events}:alert_between", "segment"])
        .parse()
        .unwrap_or(0);
    let first = count_of(&alert_lines(&slack)[0]);
    assert_eq!(first + between, 3 * SIGNUPS as u64);
}

/// The count an alert line announces.
fn count_of(line: &str) -> u64 {
    line.strip_prefix("Dead letters: ")
        .and_then(|rest| rest.split(' ').next())
        .map(|n| n.replace(',', "").parse().unwrap())
        .unwrap_or_else(|| panic!("not an alert line: {line}"))
}

#[test]
fn what_dies_within_a_window_is_reported_when_it_ends_without_another_death() {
    let redis = RedisServer::start();
    let (segment, slack) = (refusing_segment(), Sink::start());
    let events = || on(&redis, &segment, &slack).env("EVENTS_ALERT_WINDOW", "5s");
    let worker = events().arg("work").spawn();
    events()
        .args(["emit", "user.signup", "--email", "first@example.com"])
        .run()
        .success();
    let wait = Duration::from_secs(60);
    let first = slack.wait_accepted(2, wait);
    assert!(first.len() >= 2, "the signup, then its alert");
    // Five more die within the window: counted, and no death comes after
    // them to carry the count.
    events()
        .arg("emit")
        .arg("--stdin")
        .stdin(signups(0..5))
        .run()
        .success();
    let deadline = std::time::Instant::now() + wait;
    while alert_lines(&slack).len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    worker.signal("TERM");
    worker.wait(wait).success();
    let alerts = alert_lines(&slack);
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(count_of(&alerts[0]), 1, "{alerts:?}");
    assert_eq!(count_of(&alerts[1]), 5, "{alerts:?}");
    assert!(
        alerts[1].contains(" to segment failed: HTTP 401"),
        "{alerts:?}"
    );
    let between = redis.cli(&["HGET", "{events}:alert_between", "segment"]);
    assert_eq!(between, "", "nothing left owed");
}

#[test]
fn events_alerts_0_raises_none() {
    let redis = RedisServer::start();
    let (segment, slack) = (refusing_segment(), Sink::start());
    emit(on(&redis, &segment, &slack));
    on(&redis, &segment, &slack)
        .env("EVENTS_ALERTS", "0")
        .args(["work", "--burst"])
        .run()
        .success();
    assert_eq!(alert_lines(&slack), Vec::<String>::new());
    assert_eq!(stream_len(&redis), SIGNUPS);
    assert_eq!(slack_lines(&slack).len(), SIGNUPS, "signups still arrive");
}

#[test]
fn the_embedded_store_keeps_the_alert_window_too() {
    let home = tempfile::tempdir().unwrap();
    let (segment, slack) = (refusing_segment(), Sink::start());
    emit(both(&segment, &slack).home(home.path()));
    for _ in 0..2 {
        both(&segment, &slack)
            .home(home.path())
            .args(["work", "--burst"])
            .run()
            .success();
        emit(both(&segment, &slack).home(home.path()));
    }
    both(&segment, &slack)
        .home(home.path())
        .args(["work", "--burst"])
        .run()
        .success();
    let alerts = alert_lines(&slack);
    assert_eq!(alerts.len(), 1, "three runs, one window: {alerts:?}");
    assert!(
        alerts[0].contains(" to segment failed: HTTP 401"),
        "{alerts:?}"
    );
    assert_eq!(segment_alerts(&segment), []);
}

/// An alert window as the test sets it up on Redis before one call: open
/// for `open_ms` more (none: closed), with `between` dead letters counted.
#[derive(Debug, Clone, Copy)]
struct WindowState {
    open_ms: Option<u64>,
    between: u64,
}

/// The alert window is written twice, in Rust (`queue::window`, which
/// SQLite runs) and in the Redis scripts: from any state, counting dead
/// letters in or asking what is due answers alike and leaves the same
/// window behind.
#[test]
fn the_redis_alert_scripts_decide_as_the_window_functions_do() {
    use events::queue::prelude::*;
    use events::queue::redis::RedisQueue;
    use events::queue::window::{self, Window};
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use std::cell::RefCell;

    let server = RedisServer::start();
    let cli = RefCell::new(
        redis::Client::open(server.url())
            .unwrap()
            .get_connection()
            .unwrap(),
    );
    let options = events::queue::QueueOptions::default();
    let queue = RefCell::new(RedisQueue::open(&server.url(), "{events}", options).unwrap());
    let length = Duration::from_secs(300);
    let state = (prop::option::of(1_000u64..200_000), 0u64..5);
    let cases = (state, prop::option::of(1u64..4));
    let mut runner = TestRunner::new(Config::with_cases(256));
    let checked = runner.run(&cases, |(before, count)| {
        let before = WindowState {
            open_ms: before.0,
            between: before.1,
        };
        let con = &mut *cli.borrow_mut();
        let _: () = redis::cmd("FLUSHALL").query(con).unwrap();
        if let Some(ms) = before.open_ms {
            let _: () = redis::cmd("SET")
                .arg("{events}:alert:slack")
                .arg("1")
                .arg("PX")
                .arg(ms)
                .query(con)
                .unwrap();
        }
        if before.between > 0 {
            let _: () = redis::cmd("HSET")
                .arg("{events}:alert_between")
                .arg("slack")
                .arg(before.between)
                .query(con)
                .unwrap();
        }
        // The same window in Rust, at an arbitrary now.
        let now = 1_800_000_000_000i64;
        let rust = Window {
            until_ms: Some(before.open_ms.map_or(now - 1, |ms| now + ms as i64)),
            between: before.between,
        };
        let mut q = queue.borrow_mut();
        let (after, answer, lua) = match count {
            Some(count) => {
                let (after, report) = window::count_into(rust, count, now, length);
                let lua = q
                    .count_dead_for_alert("slack", count, "HTTP 500", length)
                    .unwrap();
                (after, report, lua)
            }
            None => {
                let (after, owed) = window::due(rust, now, length);
                let due = q.alerts_due(length).unwrap();
                let lua = due.first().map(|tally| tally.count);
                prop_assert!(due.len() <= 1);
                (after, owed, lua)
            }
        };
        let what = format!("{before:?}, counting {count:?}");
        prop_assert_eq!(lua, answer, "{}", &what);
        let between: Option<u64> = redis::cmd("HGET")
            .arg("{events}:alert_between")
            .arg("slack")
            .query(con)
            .unwrap();
        prop_assert_eq!(between.unwrap_or(0), after.between, "{}", &what);
        let ttl: i64 = redis::cmd("PTTL")
            .arg("{events}:alert:slack")
            .query(con)
            .unwrap();
        let open = after.until_ms.is_some_and(|until| now < until);
        prop_assert_eq!(ttl > 0, open, "{}: ttl {}", &what, ttl);
        if after.until_ms == Some(now + length.as_millis() as i64) {
            // A window this call opened runs its whole length.
            prop_assert!(
                ttl > length.as_millis() as i64 - 5_000,
                "{}: ttl {}",
                &what,
                ttl
            );
        }
        Ok(())
    });
    if let Err(e) = checked {
        panic!("{e}");
    }
}
