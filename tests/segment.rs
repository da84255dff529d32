//! The Segment destination against an in-process server that behaves like
//! Segment's `/v1/batch`: exact track calls, basic auth with the write key,
//! batches split at Segment's size limits, and its error classification.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::{Events, ONE_SIGNUP, RedisServer, Reply, Sink, emit_lines};

fn segment(redis: &RedisServer, sink: &Sink) -> Events {
    Events::new()
        .env("REDIS_URL", redis.url())
        .env("SEGMENT_WRITE_KEY", "wk_test_123")
        .env("SEGMENT_ENDPOINT", sink.base_url())
        .env("EVENTS_RETRY_BASE_MS", "10")
}

#[test]
fn events_arrive_as_exact_track_calls_with_basic_auth() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    let line = r#"{"id":"01JDX3M7Q7G5N8W4K2B9C1T6ZR","type":"import.completed","ts":"2026-11-27T09:00:00.123Z","payload":{"email":"ada@example.com","importer_name":"CRM contacts","row_count":1234567}}"#;
    emit_lines(&redis, &format!("{line}\n"));
    segment(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("to segment");
    let requests = sink.accepted();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/batch");
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("wk_test_123:")
    );
    assert_eq!(
        request.header("authorization"),
        Some(expected_auth.as_str())
    );
    assert_eq!(
        request.json(),
        json!({"batch": [{
            "type": "track",
            "event": "import.completed",
            "userId": "ada@example.com",
            "properties": {"email": "ada@example.com", "importer_name": "CRM contacts", "row_count": 1234567},
            "timestamp": "2026-11-27T09:00:00.123Z",
            "messageId": "01JDX3M7Q7G5N8W4K2B9C1T6ZR",
        }]})
    );
}

#[test]
fn batches_are_split_at_segments_size_limits() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    // 60 calls of about 20 KB each: 1.2 MB, so at least three batches.
    let blob = "x".repeat(20_000);
    let lines: String = (0..60)
        .map(|i| format!("{{\"type\":\"user.signup\",\"payload\":{{\"email\":\"u{i}@example.com\",\"blob\":\"{blob}\"}}}}\n"))
        .collect();
    emit_lines(&redis, &lines);
    segment(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success();
    let requests = sink.accepted();
    assert!(requests.len() >= 3, "{} batches", requests.len());
    let mut seen = BTreeMap::new();
    for request in &requests {
        assert!(
            request.body.len() <= 500 * 1024,
            "a batch of {} bytes",
            request.body.len()
        );
        for call in request.json()["batch"].as_array().unwrap() {
            *seen
                .entry(call["messageId"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
    }
    assert_eq!(seen.len(), 60);
    assert!(seen.values().all(|&n| n == 1));
}

#[test]
fn an_event_over_32_kb_is_dead_lettered_not_sent() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    let blob = "x".repeat(40_000);
    emit_lines(
        &redis,
        &format!(
            "{{\"type\":\"user.signup\",\"payload\":{{\"email\":\"big@example.com\",\"blob\":\"{blob}\"}}}}\n{{\"type\":\"user.signup\",\"payload\":{{\"email\":\"small@example.com\"}}}}\n"
        ),
    );
    segment(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("Segment accepts at most 32 KB");
    let requests = sink.accepted();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].json()["batch"][0]["userId"],
        "small@example.com"
    );
    assert_eq!(redis.cli(&["XLEN", "{events}:dead"]), "1");
}

#[test]
fn a_400_is_permanent_and_a_500_is_retried() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    emit_lines(&redis, ONE_SIGNUP);
    sink.script(vec![
        Reply::status(500, "oops"),
        Reply::status(400, "bad request"),
    ]);
    segment(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("HTTP 500 oops (attempt 1 of 10)")
        .stderr_has("dead: user.signup");
    assert_eq!(sink.request_count(), 2);
    let dead = redis.cli(&["XRANGE", "{events}:dead", "-", "+"]);
    assert!(dead.contains("HTTP 400 bad request"), "{dead}");
}

#[test]
fn a_429_waits_for_retry_after() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    emit_lines(&redis, ONE_SIGNUP);
    sink.script(vec![
        Reply::status(429, "slow down").header("Retry-After", "1"),
    ]);
    segment(&redis, &sink)
        .env("EVENTS_MAX_ATTEMPTS", "1")
        .args(["work", "--burst"])
        .run()
        .success();
    assert_eq!(sink.accepted_count(), 1);
    assert_eq!(redis.cli(&["XLEN", "{events}:dead"]), "0");
}

#[test]
fn an_event_without_email_is_tracked_anonymously_by_its_id() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    let toml = "[[event]]\ntype = \"deploy.finished\"\nfields = { service = \"string\" }\ntemplate = \"Deployed {service}\"\n";
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("events.toml"), toml).unwrap();
    let id = Events::new()
        .home(home.path())
        .env("REDIS_URL", redis.url())
        .args(["emit", "deploy.finished", "--field", "service=api"])
        .run()
        .success()
        .stdout;
    segment(&redis, &sink)
        .home(home.path())
        .args(["work", "--burst"])
        .run()
        .success();
    let call: Value = sink.accepted()[0].json()["batch"][0].clone();
    assert_eq!(call["anonymousId"], id.trim());
    assert!(call.get("userId").is_none());
}
