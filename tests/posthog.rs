//! The PostHog destination against an in-process server that behaves like
//! PostHog's `/batch/`: exact capture calls, the `uuid` dedupe key stable
//! across retries, a batch refused for one event split down to it, `429`,
//! and the API key never shown.

use std::collections::BTreeMap;

use serde_json::json;

use crate::support::{
    Events, ONE_SIGNUP, RedisServer, Reply, Sink, eight_signups_one_bad, emit_lines,
};

const API_KEY: &str = "phc_SeCrEtProjectKey123";

fn posthog(redis: &RedisServer, sink: &Sink) -> Events {
    Events::new()
        .env("REDIS_URL", redis.url())
        .env("POSTHOG_API_KEY", API_KEY)
        .env("POSTHOG_HOST", sink.base_url())
        .env("EVENTS_RETRY_BASE_MS", "10")
}

/// Every capture call the sink accepted, by `uuid`, with how often.
fn accepted_uuids(sink: &Sink) -> BTreeMap<String, (String, usize)> {
    let mut seen = BTreeMap::new();
    for request in sink.accepted() {
        for call in request.json()["batch"].as_array().unwrap() {
            let entry = seen
                .entry(call["uuid"].as_str().unwrap().to_owned())
                .or_insert((call["distinct_id"].as_str().unwrap().to_owned(), 0));
            entry.1 += 1;
        }
    }
    seen
}

#[test]
fn events_arrive_as_exact_capture_calls_with_the_api_key() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    emit_lines(
        &redis,
        concat!(
            r#"{"id":"01JDX3M7Q7G5N8W4K2B9C1T6ZR","type":"import.completed","ts":"2026-11-27T09:00:00.123Z","payload":{"email":"ada@example.com","importer_name":"CRM contacts","row_count":1234567}}"#,
            "\n"
        ),
    );
    posthog(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("to posthog");
    let requests = sink.accepted();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/batch/");
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    // uuid.uuid5(uuid.NAMESPACE_URL, "events:01JDX3M7Q7G5N8W4K2B9C1T6ZR")
    assert_eq!(
        requests[0].json(),
        json!({"api_key": API_KEY, "batch": [{
            "event": "import.completed",
            "distinct_id": "ada@example.com",
            "properties": {"email": "ada@example.com", "importer_name": "CRM contacts", "row_count": 1234567},
            "timestamp": "2026-11-27T09:00:00.123Z",
            "uuid": "7ae46f92-d630-5e90-9eb7-d4666131cec5",
        }]})
    );
}

#[test]
fn an_event_without_email_is_its_own_distinct_id() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("events.toml"),
        "[[event]]\ntype = \"deploy.finished\"\nfields = { service = \"string\" }\ntemplate = \"Deployed {service}\"\n",
    )
    .unwrap();
    let id = Events::new()
        .home(home.path())
        .env("REDIS_URL", redis.url())
        .args(["emit", "deploy.finished", "--field", "service=api"])
        .run()
        .success()
        .stdout;
    posthog(&redis, &sink)
        .home(home.path())
        .args(["work", "--burst"])
        .run()
        .success();
    let call = sink.accepted()[0].json()["batch"][0].clone();
    assert_eq!(call["distinct_id"], id.trim());
}

#[test]
fn a_retry_carries_the_same_uuid_and_a_500_spends_an_attempt() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    emit_lines(&redis, ONE_SIGNUP);
    sink.script(vec![Reply::status(500, "upstream down")]);
    posthog(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("HTTP 500 upstream down (attempt 1 of 10)");
    let requests = sink.requests();
    assert_eq!(requests.len(), 2);
    let uuid = |i: usize| requests[i].json()["batch"][0]["uuid"].clone();
    assert!(uuid(0).is_string());
    assert_eq!(uuid(0), uuid(1));
}

#[test]
fn a_batch_refused_for_one_event_is_split_so_only_that_event_dies() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    // PostHog refuses the whole batch when one event in it is bad.
    sink.rule(|request| {
        request.body.contains("bad@example.com").then(|| {
            Reply::status(
                400,
                "{\"type\":\"validation_error\",\"code\":\"invalid_payload\"}",
            )
        })
    });
    emit_lines(&redis, &eight_signups_one_bad());
    posthog(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("dead: user.signup");
    // The bad event was first refused among batch-mates, which then went through.
    assert!(
        sink.requests()
            .iter()
            .any(|r| r.body.contains("bad@example.com")
                && r.json()["batch"].as_array().unwrap().len() > 1)
    );
    let seen = accepted_uuids(&sink);
    assert_eq!(seen.len(), 7, "{seen:?}");
    assert!(
        seen.values()
            .all(|(email, n)| *n == 1 && email != "bad@example.com")
    );
    assert_eq!(redis.cli(&["XLEN", "{events}:dead"]), "1");
    let dead = redis.cli(&["XRANGE", "{events}:dead", "-", "+"]);
    assert!(dead.contains("bad@example.com"), "{dead}");
    assert!(dead.contains("HTTP 400"), "{dead}");
}

#[test]
fn a_429_waits_without_spending_an_attempt() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    emit_lines(&redis, ONE_SIGNUP);
    sink.script(vec![
        Reply::status(429, "too many").header("Retry-After", "1"),
    ]);
    posthog(&redis, &sink)
        .env("EVENTS_MAX_ATTEMPTS", "1")
        .args(["work", "--burst"])
        .run()
        .success();
    assert_eq!(sink.request_count(), 2);
    assert_eq!(sink.accepted_count(), 1);
    assert_eq!(redis.cli(&["XLEN", "{events}:dead"]), "0");
}

#[test]
fn a_401_is_permanent_and_the_key_is_never_shown() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    emit_lines(&redis, ONE_SIGNUP);
    sink.script(vec![Reply::status(401, "invalid API key")]);
    let work = posthog(&redis, &sink)
        .args(["-v", "work", "--burst"])
        .run()
        .success()
        .stderr_has("HTTP 401 invalid API key")
        .stderr_has("dead: user.signup");
    assert_eq!(sink.request_count(), 1);
    let status = posthog(&redis, &sink)
        .args(["status", "--format", "json"])
        .run()
        .success()
        .stdout_has("posthog");
    for out in [&work, &status] {
        assert!(!out.stdout.contains(API_KEY) && !out.stderr.contains(API_KEY));
    }
    let dead = redis.cli(&["XRANGE", "{events}:dead", "-", "+"]);
    assert!(!dead.contains(API_KEY), "{dead}");
}

#[test]
fn a_config_file_destination_reads_its_key_and_host() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("events.toml"),
        format!(
            "[[destination]]\nname = \"product\"\nkind = \"posthog\"\napi_key_env = \"PH_KEY\"\nhost = \"{}\"\nevents = [\"user.*\"]\n",
            sink.base_url()
        ),
    )
    .unwrap();
    emit_lines(
        &redis,
        "{\"type\":\"user.signup\",\"payload\":{\"email\":\"a@example.com\"}}\n{\"type\":\"import.failed\",\"payload\":{\"email\":\"a@example.com\",\"importer_name\":\"x\",\"error\":\"y\"}}\n",
    );
    Events::new()
        .home(home.path())
        .env("REDIS_URL", redis.url())
        .env("PH_KEY", "phc_from_file")
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("to product");
    let requests = sink.accepted();
    assert_eq!(requests.len(), 1);
    let body = requests[0].json();
    assert_eq!(body["api_key"], "phc_from_file");
    assert_eq!(body["batch"].as_array().unwrap().len(), 1);
    assert_eq!(body["batch"][0]["event"], "user.signup");
}
