//! The Mixpanel destination against an in-process server that behaves like
//! Mixpanel's `/import?strict=1`: exact import records, basic auth with the
//! project token, a `400` that lists `failed_records` (only those die, the
//! rest were imported), a batch refused as a whole split down to the bad
//! event, `429`, and the token never shown.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::{
    Events, ONE_SIGNUP, RedisServer, Reply, Sink, eight_signups_one_bad, emit_lines,
};

const TOKEN: &str = "mp_SeCrEtProjectToken456";

fn mixpanel(redis: &RedisServer, sink: &Sink) -> Events {
    Events::new()
        .env("REDIS_URL", redis.url())
        .env("MIXPANEL_TOKEN", TOKEN)
        .env("MIXPANEL_API_URL", sink.base_url())
        .env("EVENTS_RETRY_BASE_MS", "10")
}

/// How many times each `distinct_id` was sent, in every request.
fn sent(requests: &[crate::support::Request]) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for request in requests {
        for record in request.json().as_array().unwrap() {
            *seen
                .entry(
                    record["properties"]["distinct_id"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
                .or_insert(0) += 1;
        }
    }
    seen
}

/// Whether the bad event was sent in a batch with others.
fn refused_among_others(sink: &Sink) -> bool {
    sink.requests()
        .iter()
        .any(|r| r.body.contains("bad@example.com") && r.json().as_array().unwrap().len() > 1)
}

#[test]
fn events_arrive_as_exact_import_records_with_basic_auth() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    emit_lines(
        &redis,
        concat!(
            r#"{"id":"01JDX3M7Q7G5N8W4K2B9C1T6ZR","type":"import.completed","ts":"2026-11-27T09:00:00.123Z","payload":{"email":"ada@example.com","importer_name":"CRM contacts","row_count":1234567}}"#,
            "\n"
        ),
    );
    mixpanel(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("to mixpanel");
    let requests = sink.accepted();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/import?strict=1");
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN}:"))
    );
    assert_eq!(requests[0].header("authorization"), Some(auth.as_str()));
    // time: 2026-11-27T09:00:00.123Z in ms; $insert_id:
    // uuid.uuid5(uuid.NAMESPACE_URL, "events:01JDX3M7Q7G5N8W4K2B9C1T6ZR")
    assert_eq!(
        requests[0].json(),
        json!([{"event": "import.completed", "properties": {
            "time": 1_795_770_000_123_i64,
            "distinct_id": "ada@example.com",
            "$insert_id": "7ae46f92-d630-5e90-9eb7-d4666131cec5",
            "email": "ada@example.com",
            "importer_name": "CRM contacts",
            "row_count": 1234567,
        }}])
    );
}

#[test]
fn failed_records_die_and_their_batch_mates_are_not_sent_again() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    // Mixpanel with strict=1: imports the valid records, lists the others.
    sink.rule(|request| {
        let records = request.json();
        let failed: Vec<Value> = records
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|(_, r)| r["properties"]["distinct_id"] == "bad@example.com")
            .map(|(index, r)| {
                json!({
                    "index": index,
                    "insert_id": r["properties"]["$insert_id"],
                    "field": "properties.distinct_id",
                    "message": "'properties.distinct_id' is invalid",
                })
            })
            .collect();
        (!failed.is_empty()).then(|| {
            let body = json!({
                "code": 400,
                "error": "some data points in the request failed validation",
                "num_records_imported": records.as_array().unwrap().len() - failed.len(),
                "status": "Bad Request",
                "failed_records": failed,
            });
            Reply::status(400, &body.to_string()).header("Content-Type", "application/json")
        })
    });
    emit_lines(&redis, &eight_signups_one_bad());
    mixpanel(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("HTTP 400 properties.distinct_id: 'properties.distinct_id' is invalid");
    assert!(refused_among_others(&sink));
    // Every event was sent exactly once: nothing Mixpanel imported is resent.
    let seen = sent(&sink.requests());
    assert_eq!(seen.len(), 8, "{seen:?}");
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    assert_eq!(redis.cli(&["XLEN", "{events}:dead"]), "1");
    let dead = redis.cli(&["XRANGE", "{events}:dead", "-", "+"]);
    assert!(dead.contains("bad@example.com"), "{dead}");
}

#[test]
fn a_batch_refused_as_a_whole_is_split_so_only_the_bad_event_dies() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.rule(|request| {
        request
            .body
            .contains("bad@example.com")
            .then(|| Reply::status(400, "{\"error\":\"unable to parse the request\"}"))
    });
    emit_lines(&redis, &eight_signups_one_bad());
    mixpanel(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("HTTP 400 unable to parse the request");
    assert!(refused_among_others(&sink));
    let delivered = sent(&sink.accepted());
    assert_eq!(delivered.len(), 7, "{delivered:?}");
    assert!(delivered.values().all(|&n| n == 1));
    assert!(!delivered.contains_key("bad@example.com"));
    assert_eq!(redis.cli(&["XLEN", "{events}:dead"]), "1");
}

#[test]
fn a_429_waits_and_a_retry_carries_the_same_insert_id() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    emit_lines(&redis, ONE_SIGNUP);
    sink.script(vec![
        Reply::status(429, "{\"error\":\"rate limited\"}").header("Retry-After", "1"),
        Reply::status(503, "{\"error\":\"try later\"}"),
    ]);
    mixpanel(&redis, &sink)
        .env("EVENTS_MAX_ATTEMPTS", "2")
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("HTTP 503 try later (attempt 1 of 2)");
    let requests = sink.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(sink.accepted_count(), 1);
    let insert_ids: Vec<Value> = requests
        .iter()
        .map(|r| r.json()[0]["properties"]["$insert_id"].clone())
        .collect();
    assert!(insert_ids[0].is_string());
    assert!(
        insert_ids.iter().all(|id| *id == insert_ids[0]),
        "{insert_ids:?}"
    );
    assert_eq!(redis.cli(&["XLEN", "{events}:dead"]), "0");
}

#[test]
fn a_config_file_destination_reads_its_token_and_the_token_is_never_shown() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("events.toml"),
        format!(
            "[[destination]]\nname = \"analytics\"\nkind = \"mixpanel\"\ntoken_env = \"MP_TOKEN\"\napi_url = \"{}\"\n",
            sink.base_url()
        ),
    )
    .unwrap();
    emit_lines(&redis, ONE_SIGNUP);
    sink.script(vec![Reply::status(
        401,
        "{\"error\":\"Invalid credentials\"}",
    )]);
    let run = |args: &[&str]| {
        Events::new()
            .home(home.path())
            .env("REDIS_URL", redis.url())
            .env("MP_TOKEN", TOKEN)
            .args(args)
            .run()
            .success()
    };
    let work = run(&["-v", "work", "--burst"])
        .stderr_has("HTTP 401 Invalid credentials")
        .stderr_has("dead: user.signup");
    assert_eq!(sink.request_count(), 1);
    let auth = sink.requests()[0]
        .header("authorization")
        .unwrap()
        .to_owned();
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN}:"));
    assert_eq!(auth, format!("Basic {expected}"));
    let status = run(&["status"]).stdout_has("analytics");
    for out in [&work, &status] {
        for secret in [TOKEN, expected.as_str()] {
            assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret));
        }
    }
}
