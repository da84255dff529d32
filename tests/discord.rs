//! The Discord destination against an in-process server that answers like a
//! Discord webhook: `204` on success, JSON errors with `message` and `code`,
//! `429` with a JSON `retry_after` in seconds. Exact payloads (no mention may
//! ping, Markdown in values escaped), bursts joined within 2,000 characters,
//! and the webhook URL never shown.

use std::time::Duration;

use serde_json::json;

use crate::support::{Events, RedisServer, Reply, Sink, signups};

/// The token part of the webhook URL: a secret.
const TOKEN: &str = "dIsCoRdToKeN";

fn discord(redis: &RedisServer, sink: &Sink) -> Events {
    Events::new()
        .env("REDIS_URL", redis.url())
        .env("EVENTS_RETRY_BASE_MS", "10")
        .env(
            "DISCORD_WEBHOOK_URL",
            format!("{}/api/webhooks/123/{TOKEN}", sink.base_url()),
        )
}

fn emit(redis: &RedisServer, args: &[&str]) {
    Events::new()
        .env("REDIS_URL", redis.url())
        .arg("emit")
        .args(args)
        .run()
        .success();
}

/// Discord answers a delivered message `204 No Content`.
fn no_content() -> Reply {
    Reply::status(204, "")
}

fn json_reply(status: u16, body: serde_json::Value) -> Reply {
    Reply::status(status, &body.to_string()).header("Content-Type", "application/json")
}

/// Every line of every message the sink accepted, in order.
fn discord_lines(sink: &Sink) -> Vec<String> {
    sink.accepted()
        .iter()
        .flat_map(|r| {
            let content = r.json()["content"].as_str().expect("content").to_owned();
            content.lines().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_message_pings_nobody_and_arrives_with_markdown_escaped() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(no_content());
    emit(
        &redis,
        &[
            "import.failed",
            "--email",
            "@everyone",
            "--importer-name",
            "x",
            "--error",
            "**bold** [click](http://evil.example) <@&123> ||spoiler||",
        ],
    );
    discord(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("to discord")
        .stderr_lacks(TOKEN);
    let requests = sink.accepted();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, format!("/api/webhooks/123/{TOKEN}"));
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    assert_eq!(
        requests[0].json(),
        json!({
            "content": r"Import failed: @everyone - \*\*bold\*\* \[click\]\(http://evil.example\) \<@&123\> \|\|spoiler\|\|",
            "allowed_mentions": {"parse": []},
        })
    );
}

#[test]
fn a_burst_is_joined_in_order_within_2000_characters_a_message() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(no_content());
    Events::new()
        .env("REDIS_URL", redis.url())
        .args(["emit", "--stdin"])
        .stdin(signups(0..200))
        .run()
        .success();
    discord(&redis, &sink)
        .args(["work", "--burst"])
        .timeout(Duration::from_secs(120))
        .run()
        .success();
    let expected: Vec<String> = (0..200)
        .map(|i| format!("New signup: user{i}@example.com"))
        .collect();
    assert_eq!(discord_lines(&sink), expected, "every line once, in order");
    let accepted = sink.accepted();
    assert!(
        accepted.len() < 100,
        "{} messages: lines were not joined",
        accepted.len()
    );
    for request in &accepted {
        let content = request.json()["content"].as_str().unwrap().to_owned();
        assert!(
            content.chars().count() <= 2000,
            "{} characters",
            content.chars().count()
        );
        assert_eq!(request.json()["allowed_mentions"], json!({"parse": []}));
    }
}

#[test]
fn a_429_waits_for_the_json_retry_after_without_spending_an_attempt() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(no_content());
    sink.script(vec![json_reply(
        429,
        json!({"message": "You are being rate limited.", "retry_after": 1.5, "global": false}),
    )]);
    emit(&redis, &["user.signup", "--email", "ada@example.com"]);
    // One attempt in all: had the 429 spent it, the event would be dead.
    discord(&redis, &sink)
        .env("EVENTS_MAX_ATTEMPTS", "1")
        .args(["work", "--burst"])
        .run()
        .success();
    let requests = sink.requests();
    assert_eq!(requests.len(), 2);
    // 1.5 s, not the header's absence (1 s) nor the pacing (0.4 s).
    assert!(requests[1].at.duration_since(requests[0].at) >= Duration::from_millis(1500));
    assert_eq!(discord_lines(&sink), ["New signup: ada@example.com"]);
    assert_eq!(redis.cli(&["XLEN", "{events}:dead"]), "0");
}

#[test]
fn a_4xx_is_dead_lettered_at_once_with_discords_message_and_code() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(json_reply(
        404,
        json!({"message": "Unknown Webhook", "code": 10015}),
    ));
    emit(&redis, &["user.signup", "--email", "ada@example.com"]);
    discord(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("dead: user.signup")
        .stderr_has("HTTP 404 Unknown Webhook (code 10015) (after 1 attempt)")
        .stderr_lacks(TOKEN)
        .stdout_lacks(TOKEN);
    assert_eq!(sink.request_count(), 1);
    assert_eq!(redis.cli(&["XLEN", "{events}:dead"]), "1");
}

#[test]
fn status_names_discord_without_its_token() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    for format in ["table", "json"] {
        discord(&redis, &sink)
            .args(["status", "--format", format])
            .run()
            .success()
            .stdout_has("discord")
            .stdout_lacks(TOKEN);
    }
}

#[test]
fn a_config_file_discord_reads_its_url_from_the_named_variable() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(no_content());
    emit(&redis, &["user.signup", "--email", "ada@example.com"]);
    let events = Events::new().env("REDIS_URL", redis.url()).env(
        "ALERTS_URL",
        format!("{}/api/webhooks/9/{TOKEN}", sink.base_url()),
    );
    std::fs::write(
        events.home_dir().join("events.toml"),
        "[[destination]]\nname = \"alerts\"\nkind = \"discord\"\nurl_env = \"ALERTS_URL\"\n",
    )
    .unwrap();
    events
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("to alerts");
    assert_eq!(discord_lines(&sink), ["New signup: ada@example.com"]);
    assert_eq!(sink.accepted()[0].path, format!("/api/webhooks/9/{TOKEN}"));
}

#[test]
fn a_replay_to_discord_asks_first_like_slack() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(no_content());
    emit(&redis, &["user.signup", "--email", "ada@example.com"]);
    discord(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success();
    discord(&redis, &sink)
        .args(["replay", "--since", "1h"])
        .run()
        .code(2)
        .stderr_has("this would post 1 events to chat destinations (discord) again")
        .stderr_lacks(TOKEN);
    assert_eq!(sink.request_count(), 1);
}
