//! PagerDuty through the Events API v2, against an in-process server that
//! answers like PagerDuty: `POST /v2/enqueue`, `202` accepted, `429`
//! waited for, `400` with PagerDuty's JSON error dead-lettered at once,
//! `5xx` retried; and like a hostile receiver (a redirect, a huge body, a
//! hang). The routing key never shows, not even with `-v` or in `inspect`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Events, LONG, Misbehaviour, Outcome, RedisServer, Reply, Sink};

const ROUTING_KEY: &str = "R0UTINGKEYSECRET0000000000000000";

fn config(sink: &Sink, extra: &str) -> String {
    format!(
        r#"
[[destination]]
name = "oncall"
kind = "pagerduty"
api_url = "{api}"
events = ["user.*", "events.*"]
{extra}
"#,
        api = sink.base_url()
    )
}

/// An `events` run against `redis`, PagerDuty at `sink`, the key in the
/// default variable.
fn events(home: &std::path::Path, redis: &RedisServer, sink: &Sink, extra: &str) -> Events {
    std::fs::write(home.join("events.toml"), config(sink, extra)).unwrap();
    Events::new()
        .home(home)
        .env("REDIS_URL", redis.url())
        .env("EVENTS_RETRY_BASE_MS", "10")
        .env("EVENTS_HTTP_TIMEOUT_MS", "1000")
        .env("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
}

fn accepted() -> Reply {
    Reply::status(
        202,
        r#"{"status":"success","message":"Event processed","dedup_key":"x"}"#,
    )
    .header("Content-Type", "application/json")
}

fn no_key(out: &Outcome) {
    assert!(
        !out.stdout.contains(ROUTING_KEY) && !out.stderr.contains(ROUTING_KEY),
        "the routing key was shown:\n{}\n{}",
        out.stdout,
        out.stderr
    );
}

fn emit(run: &dyn Fn() -> Events, email: &str) -> String {
    let out = run()
        .args(["emit", "user.signup", "--email", email])
        .run()
        .success();
    out.stdout.trim().to_owned()
}

fn work(run: &dyn Fn() -> Events) -> Outcome {
    let out = run().args(["-v", "work", "--burst"]).run().success();
    no_key(&out);
    out
}

fn dead_count(redis: &RedisServer) -> String {
    redis.cli(&["XLEN", "{events}:dead"])
}

#[test]
fn an_event_triggers_an_incident_deduplicated_by_its_id() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(accepted());
    let home = tempfile::tempdir().unwrap();
    let run = || events(home.path(), &redis, &sink, r#"severity = "critical""#);
    let id = emit(&run, "ada@example.com");
    work(&run).stderr_has("delivered user.signup");
    let requests = sink.accepted();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v2/enqueue");
    let body = request.json();
    assert_eq!(body["routing_key"], ROUTING_KEY);
    assert_eq!(body["event_action"], "trigger");
    assert_eq!(body["dedup_key"], id.as_str());
    let payload = &body["payload"];
    assert_eq!(payload["summary"], "New signup: ada@example.com");
    assert_eq!(payload["severity"], "critical");
    assert_eq!(payload["class"], "user.signup");
    assert_eq!(
        payload["custom_details"],
        json!({"email": "ada@example.com"})
    );
    assert!(payload["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(!payload["source"].as_str().unwrap().is_empty());

    // inspect shows PagerDuty's 202, and never the key.
    for verbose in [false, true] {
        let mut cmd = run();
        if verbose {
            cmd = cmd.arg("-v");
        }
        let out = cmd
            .args(["inspect", &id, "--format", "json"])
            .run()
            .success();
        no_key(&out);
        let report = out.stdout_json();
        let dest = report["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "oncall")
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(dest["state"], "delivered", "{report:#}");
        assert_eq!(dest["attempts"][0]["status"], 202, "{report:#}");
    }
    for format in ["table", "json"] {
        let out = run()
            .args(["-v", "status", "--format", format])
            .run()
            .success()
            .stdout_has("oncall");
        no_key(&out);
    }
}

#[test]
fn the_severity_defaults_to_error_and_a_long_message_is_cut_to_1024_characters() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(accepted());
    let home = tempfile::tempdir().unwrap();
    let template = format!(r#"template = "{}{{email}}""#, "é".repeat(3000));
    let run = || events(home.path(), &redis, &sink, &template);
    emit(&run, "ada@example.com");
    work(&run).stderr_has("delivered user.signup");
    let body = sink.accepted()[0].json();
    assert_eq!(body["payload"]["severity"], "error");
    let summary = body["payload"]["summary"].as_str().unwrap();
    assert_eq!(summary, "é".repeat(1024));
}

#[test]
fn an_invalid_event_is_dead_lettered_at_once_with_pagerdutys_words() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(
        Reply::status(
            400,
            &json!({
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": [format!("Routing key {ROUTING_KEY} is \u{1b}[31m unknown")],
            })
            .to_string(),
        )
        .header("Content-Type", "application/json"),
    );
    let home = tempfile::tempdir().unwrap();
    let run = || events(home.path(), &redis, &sink, "");
    emit(&run, "ada@example.com");
    work(&run)
        .stderr_has("dead: user.signup")
        .stderr_has("HTTP 400 Event object is invalid: Routing key *** is \\u{1b}[31m unknown")
        .stderr_lacks("\u{1b}");
    assert_eq!(sink.request_count(), 1);
    assert_eq!(dead_count(&redis), "1");
}

#[test]
fn server_errors_are_retried_and_429_waits_without_spending_an_attempt() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(accepted());
    sink.script(vec![
        Reply::status(503, "unavailable"),
        Reply::status(429, r#"{"status":"throttle event"}"#).header("Retry-After", "1"),
        Reply::status(500, "oops"),
    ]);
    let home = tempfile::tempdir().unwrap();
    let run = || events(home.path(), &redis, &sink, "");
    emit(&run, "ada@example.com");
    // Three attempts: had the 429 spent one, the event would be dead.
    let out = run()
        .env("EVENTS_MAX_ATTEMPTS", "3")
        .args(["-v", "work", "--burst"])
        .run()
        .success()
        .stderr_has("HTTP 503 unavailable (attempt 1 of 3)")
        .stderr_has("HTTP 500 oops (attempt 2 of 3)")
        .stderr_has("delivered user.signup");
    no_key(&out);
    assert_eq!(sink.request_count(), 4);
    assert_eq!(dead_count(&redis), "0");
}

/// PagerDuty's throttling usually says nothing of how long to wait: the
/// retry is parked half a minute out, not hammered every second.
#[test]
fn a_429_without_retry_after_waits_half_a_minute() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(Reply::status(429, r#"{"status":"throttle event"}"#));
    let home = tempfile::tempdir().unwrap();
    let run = || events(home.path(), &redis, &sink, "");
    emit(&run, "ada@example.com");
    let worker = run().args(["-v", "work"]).spawn();
    assert!(
        worker.wait_for_stderr("(no attempt spent)", LONG),
        "{}",
        worker.stderr_so_far()
    );
    worker.signal("TERM");
    let out = worker.wait(LONG).success().stderr_has("retry in 30s");
    no_key(&out);
    assert_eq!(sink.request_count(), 1);
}

#[test]
fn a_hostile_receiver_gets_a_clear_outcome_in_bounded_time_and_memory() {
    const FIFTY_MB: usize = 50 * 1024 * 1024;
    let redis = RedisServer::start();
    let sink = Sink::start();
    let elsewhere = Sink::start();
    let (huge, written) = Misbehaviour::huge_body(FIFTY_MB);
    sink.script(vec![
        Reply::hang(),
        Reply::status(500, "overloaded\n").misbehave(huge),
    ]);
    sink.set_default(accepted());
    let home = tempfile::tempdir().unwrap();
    let run = || events(home.path(), &redis, &sink, "");
    emit(&run, "ada@example.com");
    let out = run()
        .env("EVENTS_HTTP_TIMEOUT_MS", "3000")
        .timeout(Duration::from_secs(60))
        .args(["-v", "work", "--burst"])
        .run()
        .success()
        .stderr_has("timed out (attempt 1 of")
        .stderr_has("HTTP 500 overloaded (attempt 2 of")
        .stderr_has("delivered user.signup");
    no_key(&out);
    assert!(written.load(Ordering::SeqCst) < FIFTY_MB / 2);

    // A redirect is never followed: the key would go to another host.
    sink.script(vec![Reply::redirect(
        307,
        &format!("http://127.0.0.1:{}/v2/enqueue", elsewhere.port()),
    )]);
    emit(&run, "bob@example.com");
    work(&run)
        .stderr_has("redirect to 127.0.0.1")
        .stderr_has("dead: user.signup");
    assert_eq!(elsewhere.request_count(), 0);
    assert_eq!(dead_count(&redis), "1");
}

#[test]
fn a_bad_severity_or_missing_key_is_a_config_error_naming_the_line() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    let home = tempfile::tempdir().unwrap();
    events(home.path(), &redis, &sink, r#"severity = "fatal""#)
        .args(["work", "--burst"])
        .run()
        .code(2)
        .stderr_has("events.toml:7: severity: unknown severity \"fatal\"");
    events(home.path(), &redis, &sink, "")
        .env_remove("PAGERDUTY_ROUTING_KEY")
        .args(["work", "--burst"])
        .run()
        .code(2)
        .stderr_has("PAGERDUTY_ROUTING_KEY, which is not set");
}

#[test]
fn an_api_url_that_is_not_http_is_a_config_error_and_the_key_alone_declares_nothing() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    let home = tempfile::tempdir().unwrap();
    let config = config(&sink, "").replace(&sink.base_url(), "ftp://events.example.com");
    std::fs::write(home.path().join("events.toml"), config).unwrap();
    let out = Events::new()
        .home(home.path())
        .env("REDIS_URL", redis.url())
        .env("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
        .args(["work", "--burst"])
        .run()
        .code(2)
        .stderr_has("destination 'oncall' has a URL that does not start with http:// or https://");
    no_key(&out);
    // Without a config file, the routing key alone pages no one.
    std::fs::remove_file(home.path().join("events.toml")).unwrap();
    let out = Events::new()
        .home(home.path())
        .env("REDIS_URL", redis.url())
        .env("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
        .args(["status", "--format", "json"])
        .run()
        .success();
    assert!(!out.stdout.contains("pagerduty"), "{}", out.stdout);
    no_key(&out);
}
