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
