//! HTTP destinations against hostile receivers: redirects, hangs, hang-ups,
//! half responses, huge bodies and headers, absurd `Retry-After` values and
//! `200`s with an error body. Each ends in a clear outcome within the HTTP
//! timeout and bounded memory, nothing counts as delivered that the receiver
//! did not accept, a `429` never spends an attempt, and no secret reaches the
//! output.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::support::{
    Events, LONG, Misbehaviour, Outcome, RedisServer, Reply, Sink, WEBHOOK_SECRET, signups,
};

/// What the destinations are configured with; none may ever be shown.
const SLACK_TOKEN: &str = "SLACKSECRETPATH";
const WEBHOOK_TOKEN: &str = "HOOKSECRETTOKEN";
const WRITE_KEY: &str = "wk_SEGMENTSECRET";
const DISCORD_TOKEN: &str = "DISCORDSECRETTOKEN";
const TEAMS_SIG: &str = "TEAMSSECRETSIG";
/// A piece of `WEBHOOK_SECRET`.
const SIGNING_KEY: &str = "C2FVsBQIhrscChlQIMV";

#[derive(Clone, Copy, Debug)]
enum Kind {
    Slack,
    Segment,
    Webhook,
    Discord,
    Teams,
}

const KINDS: [Kind; 5] = [
    Kind::Slack,
    Kind::Segment,
    Kind::Webhook,
    Kind::Discord,
    Kind::Teams,
];

/// The Redis retry set of the destination a `kind` worker delivers to.
fn retry_set(kind: Kind) -> String {
    format!("{{events}}:retry:{}", format!("{kind:?}").to_lowercase())
}

/// A worker delivering to `sink` as `kind` only, with a short HTTP timeout
/// and quick retries, logging every outcome.
fn worker(kind: Kind, redis: &RedisServer, sink: &Sink) -> Events {
    let events = Events::new()
        .env("REDIS_URL", redis.url())
        .env("EVENTS_HTTP_TIMEOUT_MS", "1000")
        .env("EVENTS_RETRY_BASE_MS", "10")
        .env("RUST_LOG", "debug");
    match kind {
        Kind::Slack => events.env(
            "SLACK_WEBHOOK_URL",
            format!("{}/services/T0/B0/{SLACK_TOKEN}", sink.base_url()),
        ),
        Kind::Segment => events
            .env("SEGMENT_WRITE_KEY", WRITE_KEY)
            .env("SEGMENT_ENDPOINT", sink.base_url()),
        Kind::Webhook => events
            .env(
                "EVENTS_WEBHOOK_URL",
                format!("{}/hook?token={WEBHOOK_TOKEN}", sink.base_url()),
            )
            .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET),
        Kind::Discord => events.env(
            "DISCORD_WEBHOOK_URL",
            format!("{}/api/webhooks/1/{DISCORD_TOKEN}", sink.base_url()),
        ),
        Kind::Teams => events.env(
            "TEAMS_WEBHOOK_URL",
            format!("{}/workflows/1/invoke?sig={TEAMS_SIG}", sink.base_url()),
        ),
    }
}

fn emit(redis: &RedisServer, lines: &str) {
    Events::new()
        .env("REDIS_URL", redis.url())
        .args(["emit", "--stdin"])
        .stdin(lines)
        .run()
        .success();
}

/// Runs `work --burst` and checks no secret was shown.
fn work(kind: Kind, redis: &RedisServer, sink: &Sink) -> Outcome {
    finish(worker(kind, redis, sink))
}

/// `work`, with an HTTP timeout long enough that a loaded machine still
/// reads a huge answer to its end: the behaviour under test is not a timeout.
fn work_patiently(kind: Kind, redis: &RedisServer, sink: &Sink) -> Outcome {
    finish(worker(kind, redis, sink).env("EVENTS_HTTP_TIMEOUT_MS", "20000"))
}

fn finish(worker: Events) -> Outcome {
    let out = worker.args(["-v", "work", "--burst"]).run().success();
    assert_no_secrets(&out);
    out
}

fn assert_no_secrets(out: &Outcome) {
    for secret in [
        SLACK_TOKEN,
        WEBHOOK_TOKEN,
        WRITE_KEY,
        SIGNING_KEY,
        DISCORD_TOKEN,
        TEAMS_SIG,
    ] {
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "{secret} shown:\n{}",
            out.stderr
        );
    }
}

fn dead_count(redis: &RedisServer) -> usize {
    redis
        .cli(&["XLEN", "{events}:dead"])
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_redirect_is_never_followed_and_is_a_permanent_failure() {
    for kind in KINDS {
        let redis = RedisServer::start();
        let sink = Sink::start();
        let elsewhere = Sink::start();
        let host = format!("127.0.0.1:{}", elsewhere.port());
        for (n, status) in [301, 302, 303, 307, 308].into_iter().enumerate() {
            sink.script(vec![Reply::redirect(
                status,
                &format!(
                    "http://LOCATIONUSER:LOCATIONPASS@{host}/moved/LOCATIONPATH?key=LOCATIONKEY"
                ),
            )]);
            emit(&redis, &signups(n..n + 1));
            let out = work(kind, &redis, &sink)
                .stderr_has(&format!(
                    "HTTP {status} redirect to {host} not followed: update the URL"
                ))
                .stderr_has("dead: user.signup")
                .stderr_lacks("delivered")
                .stderr_lacks("LOCATION");
            assert_eq!(sink.request_count(), n + 1, "{kind:?} {status}: retried");
            assert_eq!(
                dead_count(&redis),
                n + 1,
                "{kind:?} {status}:\n{}",
                out.stderr
            );
        }
        assert_eq!(
            elsewhere.request_count(),
            0,
            "{kind:?}: the redirect target got {:?}",
            elsewhere.requests()
        );
    }
}

#[test]
fn a_relative_redirect_names_the_receivers_own_host() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(Reply::redirect(301, "/elsewhere"));
    emit(&redis, &signups(0..1));
    work(Kind::Webhook, &redis, &sink).stderr_has(&format!(
        "HTTP 301 redirect to 127.0.0.1:{} not followed",
        sink.port()
    ));
}

#[test]
fn an_absurd_retry_after_is_capped_at_an_hour_and_spends_no_attempt() {
    for kind in KINDS {
        let redis = RedisServer::start();
        let sink = Sink::start();
        sink.set_default(
            Reply::status(429, "slow down").header("Retry-After", "99999999999999999999"),
        );
        emit(&redis, &signups(0..1));
        let worker = worker(kind, &redis, &sink)
            .env("EVENTS_MAX_ATTEMPTS", "1")
            .args(["-v", "work"])
            .spawn();
        assert!(
            worker.wait_for_stderr("(no attempt spent)", LONG),
            "{kind:?}:\n{}",
            worker.stderr_so_far()
        );
        worker.signal("TERM");
        let out = worker.wait(LONG).success();
        assert_no_secrets(&out);
        let out = out
            .stderr_has("retry in 1h: user.signup")
            .stderr_lacks("internal error");
        assert_eq!(dead_count(&redis), 0, "{kind:?}:\n{}", out.stderr);
        let parked = redis.cli(&["HVALS", "{events}:deliveries"]);
        assert!(parked.contains("\"attempts\":0"), "{kind:?}: {parked}");
        let due: f64 = redis
            .cli(&["ZRANGE", &retry_set(kind), "0", "0", "WITHSCORES"])
            .lines()
            .nth(1)
            .expect("a parked retry")
            .parse()
            .unwrap();
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as f64;
        let wait_s = (due - now_ms) / 1000.0;
        assert!(
            wait_s > 3000.0 && wait_s <= 3600.0,
            "{kind:?}: due in {wait_s}s"
        );
    }
}

#[test]
fn negative_garbage_and_past_retry_after_values_wait_the_default_without_spending_an_attempt() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    let past = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH);
    let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(1));
    let values = ["-5", "soon", "1e400", "", past.as_str(), soon.as_str()];
    sink.script(
        values
            .iter()
            .map(|v| Reply::status(429, "slow down").header("Retry-After", v))
            .collect(),
    );
    emit(&redis, &signups(0..1));
    let out = worker(Kind::Webhook, &redis, &sink)
        .env("EVENTS_MAX_ATTEMPTS", "1")
        .args(["-v", "work", "--burst"])
        .run()
        .success()
        .stderr_has("delivered user.signup")
        .stderr_lacks("internal error");
    assert_no_secrets(&out);
    assert_eq!(sink.request_count(), values.len() + 1);
    assert_eq!(sink.accepted_count(), 1);
    assert_eq!(dead_count(&redis), 0);
}

#[test]
fn a_receiver_that_never_answers_is_given_up_on_after_the_http_timeout() {
    for kind in KINDS {
        let redis = RedisServer::start();
        let sink = Sink::start();
        sink.script(vec![Reply::hang()]);
        emit(&redis, &signups(0..1));
        work(kind, &redis, &sink)
            .stderr_has("timed out (attempt 1 of")
            .stderr_has("delivered user.signup");
        assert_eq!(sink.request_count(), 2, "{kind:?}");
        assert_eq!(sink.accepted_count(), 1, "{kind:?}");
    }
}

#[test]
fn a_receiver_that_hangs_up_or_stops_mid_response_is_retried() {
    for kind in KINDS {
        let redis = RedisServer::start();
        let sink = Sink::start();
        sink.script(vec![
            Reply::hang_up(),
            Reply::status(503, "unavailable, try again later")
                .misbehave(Misbehaviour::Truncate { sent: 0 }),
        ]);
        emit(&redis, &signups(0..1));
        let out = work(kind, &redis, &sink)
            .stderr_has("(attempt 1 of")
            .stderr_has("HTTP 503 (attempt 2 of")
            .stderr_has("delivered user.signup");
        assert_eq!(sink.request_count(), 3, "{kind:?}:\n{}", out.stderr);
        assert_eq!(sink.accepted_count(), 1, "{kind:?}");
    }
}

/// The status line is the receiver's word: a `200` whose body is cut short,
/// or says something else, was still accepted, and sending it again would
/// only duplicate it.
#[test]
fn a_200_counts_as_accepted_whatever_its_body() {
    for kind in KINDS {
        let redis = RedisServer::start();
        let sink = Sink::start();
        sink.script(vec![
            Reply::status(200, "ok, and more to come")
                .misbehave(Misbehaviour::Truncate { sent: 3 }),
        ]);
        sink.set_default(Reply::status(
            200,
            "{\"ok\":false,\"error\":\"invalid_payload\"}",
        ));
        emit(&redis, &signups(0..1));
        work(kind, &redis, &sink).stderr_has("delivered user.signup");
        emit(&redis, &signups(1..2));
        work(kind, &redis, &sink).stderr_has("delivered user.signup");
        assert_eq!(sink.request_count(), 2, "{kind:?}");
        assert_eq!(dead_count(&redis), 0, "{kind:?}");
    }
}

#[test]
fn a_huge_body_is_read_only_as_far_as_the_error_text() {
    const FIFTY_MB: usize = 50 * 1024 * 1024;
    for kind in KINDS {
        let redis = RedisServer::start();
        let sink = Sink::start();
        let (error_body, error_written) = Misbehaviour::huge_body(FIFTY_MB);
        let (ok_body, ok_written) = Misbehaviour::huge_body(FIFTY_MB);
        sink.script(vec![
            Reply::status(500, "overloaded\n").misbehave(error_body),
            Reply::ok().misbehave(ok_body),
        ]);
        emit(&redis, &signups(0..1));
        work_patiently(kind, &redis, &sink)
            .stderr_has("HTTP 500 overloaded (attempt 1 of")
            .stderr_has("delivered user.signup");
        assert_eq!(sink.request_count(), 2, "{kind:?}");
        // The worker hung up long before the end: what it did not read
        // stayed in the socket buffers at most.
        for written in [error_written, ok_written] {
            let written = written.load(Ordering::SeqCst);
            assert!(written < FIFTY_MB / 2, "{kind:?}: {written} bytes taken");
        }
    }
}

/// An error body of one enormous line, laced with terminal controls and a
/// bidi override: the error text echoes a short excerpt of it, escaped.
#[test]
fn an_error_body_of_one_huge_line_is_echoed_short_and_escaped() {
    let line = format!("\u{202e}\u{1b}[2Kforged {}", "y".repeat(1024 * 1024));
    for kind in KINDS {
        let redis = RedisServer::start();
        let sink = Sink::start();
        sink.script(vec![Reply::status(503, &line)]);
        emit(&redis, &signups(0..1));
        let out = work_patiently(kind, &redis, &sink)
            .stderr_has("HTTP 503 \\u{202e}\\u{1b}[2Kforged yyy")
            .stderr_has("yyy… (attempt 1 of")
            .stderr_has("delivered user.signup");
        for shown in out.stderr.lines() {
            assert!(
                shown.len() < 1024,
                "{kind:?}: a line of {} bytes",
                shown.len()
            );
            assert!(!shown.chars().any(char::is_control), "{kind:?}: {shown:?}");
        }
    }
}

#[test]
fn a_huge_header_is_a_transient_failure() {
    for kind in KINDS {
        let redis = RedisServer::start();
        let sink = Sink::start();
        sink.script(vec![
            Reply::ok().misbehave(Misbehaviour::HugeHeader(1024 * 1024)),
        ]);
        emit(&redis, &signups(0..1));
        work_patiently(kind, &redis, &sink)
            .stderr_has("the response headers are too large (attempt 1 of")
            .stderr_has("delivered user.signup");
        assert_eq!(sink.request_count(), 2, "{kind:?}");
    }
}

#[test]
fn one_event_segment_refuses_does_not_take_its_batch_mates_down() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.rule(|request| {
        request
            .body
            .contains("user13@example.com")
            .then(|| Reply::status(400, "{\"error\":\"invalid userId\"}"))
    });
    // The lane sends what waits when it is free: holding the first answer
    // back lets the events behind it gather into one batch.
    sink.script(vec![Reply::ok().delay(Duration::from_millis(300))]);
    let id = |i: usize| format!("01JDX3M7Q7G5N8W4K2B9C1T6{i:02}");
    let lines: String = (0..48)
        .map(|i| {
            format!(
                "{{\"id\":\"{}\",\"type\":\"user.signup\",\"payload\":{{\"email\":\"user{i}@example.com\"}}}}\n",
                id(i)
            )
        })
        .collect();
    emit(&redis, &lines);
    let out = work(Kind::Segment, &redis, &sink);
    let refused: Vec<String> = sink
        .requests()
        .iter()
        .find(|r| r.body.contains("user13@example.com"))
        .map(|r| r.json()["batch"].as_array().unwrap().clone())
        .unwrap_or_default()
        .iter()
        .map(|call| call["messageId"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        refused.len() > 1,
        "the refused batch held {} events",
        refused.len()
    );
    // Each item of the split batch records the status of its own answer.
    let mate = refused.iter().find(|m| **m != id(13)).unwrap();
    for (id, outcome, status) in [(mate, "delivered", 200), (&id(13), "dead", 400)] {
        let report = worker(Kind::Segment, &redis, &sink)
            .args(["inspect", id, "--format", "json"])
            .run()
            .success()
            .stdout_json();
        let attempts = &report["destinations"][0]["attempts"];
        let last = attempts.as_array().unwrap().last().unwrap();
        assert_eq!(
            (&last["outcome"], &last["status"]),
            (&json!(outcome), &json!(status)),
            "{report:#}"
        );
    }
    let mut delivered = BTreeMap::new();
    for request in sink.accepted() {
        for call in request.json()["batch"].as_array().unwrap() {
            *delivered
                .entry(call["userId"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
    }
    assert_eq!(delivered.len(), 47, "{delivered:?}\n{}", out.stderr);
    assert!(delivered.values().all(|&n| n == 1), "{delivered:?}");
    assert!(!delivered.contains_key("user13@example.com"));
    assert_eq!(dead_count(&redis), 1, "{}", out.stderr);
    let dead = redis.cli(&["XRANGE", "{events}:dead", "-", "+"]);
    assert!(dead.contains("user13@example.com"), "{dead}");
    assert!(dead.contains("invalid userId"), "{dead}");
    assert_eq!(out.stderr.matches("dead: user.signup").count(), 1);
}
