//! Slack through a bot token against an in-process server that answers like
//! Slack's Web API: `chat.postMessage` with a bearer token, `200` with
//! `"ok": true`, or `200` with `"ok": false` and an `error` that decides
//! between waiting, retrying and giving up. One token, many channels; the
//! token never shown.

use std::path::Path;

use serde_json::json;

use crate::support::{Events, RedisServer, Reply, Sink};

const TOKEN: &str = "xoxb-1234-SeCrEtBoTtOkEn";

/// Two destinations sharing one token, each its own channel.
fn config(sink: &Sink) -> String {
    format!(
        r##"
[[destination]]
name = "sales"
kind = "slack"
token_env = "SLACK_BOT_TOKEN"
channel = "#sales"
api_url = "{api}"
events = ["import.*"]

[[destination]]
name = "growth"
kind = "slack"
channel = "C0GROWTH"
api_url = "{api}"
events = ["user.*"]
"##,
        api = format!("{}/api", sink.base_url())
    )
}

fn events(home: &Path, redis: &RedisServer, sink: &Sink) -> Events {
    std::fs::write(home.join("events.toml"), config(sink)).unwrap();
    Events::new()
        .home(home)
        .env("REDIS_URL", redis.url())
        .env("EVENTS_RETRY_BASE_MS", "10")
        .env("SLACK_BOT_TOKEN", TOKEN)
}

fn slack_api(status: u16, body: serde_json::Value) -> Reply {
    Reply::status(status, &body.to_string()).header("Content-Type", "application/json")
}

fn posted() -> Reply {
    slack_api(
        200,
        json!({"ok": true, "channel": "C0", "ts": "1700000000.000100"}),
    )
}

#[test]
fn one_token_posts_to_each_destinations_channel() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(posted());
    let home = tempfile::tempdir().unwrap();
    let run = || events(home.path(), &redis, &sink);
    run()
        .args(["emit", "user.signup", "--email", "<!channel>"])
        .run()
        .success();
    run()
        .args(["emit", "import.completed", "--email", "ada@example.com"])
        .args(["--importer-name", "CRM", "--row-count", "1234567"])
        .run()
        .success();
    run()
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("to growth")
        .stderr_has("to sales")
        .stderr_lacks(TOKEN);
    let mut requests = sink.accepted();
    assert_eq!(requests.len(), 2);
    requests.sort_by_key(|r| r.json()["channel"].as_str().unwrap().to_owned());
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/api/chat.postMessage");
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    assert_eq!(requests[0].json()["channel"], "#sales");
    assert_eq!(
        requests[1].json(),
        json!({"channel": "C0GROWTH", "text": "New signup: &lt;!channel&gt;"})
    );
}

#[test]
fn ok_false_with_a_permanent_error_is_dead_lettered_at_once() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(slack_api(
        200,
        json!({"ok": false, "error": "channel_not_found"}),
    ));
    let home = tempfile::tempdir().unwrap();
    let run = || events(home.path(), &redis, &sink);
    run()
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .success();
    run()
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("dead: user.signup")
        .stderr_has("HTTP 200 channel_not_found (after 1 attempt)")
        .stderr_lacks(TOKEN);
    assert_eq!(sink.request_count(), 1);
    assert_eq!(redis.cli(&["XLEN", "{events}:dead"]), "1");
}

/// Slack's `error` is the receiver's text like any other: echoed short,
/// its controls escaped.
#[test]
fn a_long_hostile_slack_error_is_echoed_short_and_escaped() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    let error = format!("\u{202e}\u{1b}[2Kforged {}", "z".repeat(20_000));
    sink.set_default(slack_api(200, json!({"ok": false, "error": error})));
    let home = tempfile::tempdir().unwrap();
    let run = || events(home.path(), &redis, &sink);
    run()
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .success();
    let out = run()
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("HTTP 200 \\u{202e}\\u{1b}[2Kforged zzz")
        .stderr_has("zzz… (after 1 attempt)");
    for shown in out.stderr.lines() {
        assert!(shown.len() < 1024, "a line of {} bytes", shown.len());
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
    }
}

#[test]
fn ok_false_ratelimited_waits_without_spending_an_attempt() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(posted());
    sink.script(vec![
        slack_api(200, json!({"ok": false, "error": "ratelimited"})).header("Retry-After", "1"),
        slack_api(429, json!({"ok": false, "error": "ratelimited"})).header("Retry-After", "1"),
    ]);
    let home = tempfile::tempdir().unwrap();
    let run = || events(home.path(), &redis, &sink);
    run()
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .success();
    // One attempt in all: had either answer spent it, the event would be dead.
    run()
        .env("EVENTS_MAX_ATTEMPTS", "1")
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("delivered");
    assert_eq!(sink.request_count(), 3);
    assert_eq!(redis.cli(&["XLEN", "{events}:dead"]), "0");
}

#[test]
fn status_shows_the_channel_and_never_the_token() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    let home = tempfile::tempdir().unwrap();
    for format in ["table", "json"] {
        events(home.path(), &redis, &sink)
            .args(["status", "--format", format])
            .run()
            .success()
            .stdout_has("#sales")
            .stdout_has("C0GROWTH")
            .stdout_lacks(TOKEN);
    }
}

#[test]
fn a_delivered_message_records_slacks_status() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(posted());
    let home = tempfile::tempdir().unwrap();
    let run = || events(home.path(), &redis, &sink);
    let id = run()
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .success()
        .stdout;
    run().args(["work", "--burst"]).run().success();
    let report = run()
        .args(["inspect", id.trim(), "--format", "json"])
        .run()
        .success()
        .stdout_json();
    let growth = report["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "growth")
        .unwrap_or_else(|| panic!("no growth in {report:#}"));
    assert_eq!(growth["state"], "delivered", "{report:#}");
    let attempts = growth["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{report:#}");
    assert_eq!(attempts[0]["outcome"], "delivered");
    assert_eq!(attempts[0]["status"], 200, "{report:#}");
}
