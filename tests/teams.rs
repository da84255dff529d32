//! The Teams destination against an in-process server that answers like a
//! Workflows webhook: `202 Accepted` on success. The exact Adaptive Card
//! message, a burst joined into cards in order, 4xx permanent, and the
//! webhook URL (whose `sig` is a secret) never shown.

use std::time::Duration;

use serde_json::json;

use crate::support::{Events, RedisServer, Reply, Sink, signups};

/// The signature in a Workflows URL: a secret.
const SIG: &str = "tEaMsSiG";

fn teams(redis: &RedisServer, sink: &Sink) -> Events {
    Events::new()
        .env("REDIS_URL", redis.url())
        .env("EVENTS_RETRY_BASE_MS", "10")
        .env(
            "TEAMS_WEBHOOK_URL",
            format!(
                "{}/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig={SIG}",
                sink.base_url()
            ),
        )
}

fn emit(redis: &RedisServer, stdin: String) {
    Events::new()
        .env("REDIS_URL", redis.url())
        .args(["emit", "--stdin"])
        .stdin(stdin)
        .run()
        .success();
}

/// Workflows answer `202 Accepted`.
fn accepted() -> Reply {
    Reply::status(202, "")
}

/// Every TextBlock of every card the sink accepted, in order.
fn teams_lines(sink: &Sink) -> Vec<String> {
    sink.accepted()
        .iter()
        .flat_map(|r| {
            let body = r.json()["attachments"][0]["content"]["body"].clone();
            body.as_array()
                .expect("a card body")
                .iter()
                .map(|block| block["text"].as_str().expect("text").to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn an_event_arrives_as_an_adaptive_card_message() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(accepted());
    emit(&redis, signups(0..1));
    teams(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("to teams")
        .stderr_lacks(SIG);
    let requests = sink.accepted();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    assert_eq!(
        requests[0].json(),
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "type": "AdaptiveCard",
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "version": "1.4",
                    "body": [{"type": "TextBlock", "text": "New signup: user0@example.com", "wrap": true}],
                },
            }],
        })
    );
    assert_eq!(redis.cli(&["XLEN", "{events}:dead"]), "0");
}

#[test]
fn a_burst_behind_a_slow_receiver_is_joined_into_cards_in_order() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(accepted().delay(Duration::from_millis(300)));
    emit(&redis, signups(0..120));
    teams(&redis, &sink)
        .args(["work", "--burst"])
        .timeout(Duration::from_secs(120))
        .run()
        .success();
    let expected: Vec<String> = (0..120)
        .map(|i| format!("New signup: user{i}@example.com"))
        .collect();
    assert_eq!(teams_lines(&sink), expected, "every line once, in order");
    let cards = sink.accepted();
    assert!(
        cards.len() < 120,
        "{} cards: lines were not joined",
        cards.len()
    );
    for card in cards {
        assert!(card.body.len() < 28 * 1000, "{} bytes", card.body.len());
    }
}

#[test]
fn any_2xx_is_delivered_and_a_4xx_is_dead_lettered_at_once() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.script(vec![Reply::status(200, "")]);
    sink.set_default(Reply::status(400, "Bad Request: the card is not valid"));
    emit(&redis, signups(0..1));
    teams(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success();
    emit(&redis, signups(1..2));
    teams(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("HTTP 400 Bad Request: the card is not valid (after 1 attempt)")
        .stderr_lacks(SIG);
    assert_eq!(sink.request_count(), 2);
    assert_eq!(teams_lines(&sink), ["New signup: user0@example.com"]);
    assert_eq!(redis.cli(&["XLEN", "{events}:dead"]), "1");
}

#[test]
fn status_names_teams_without_its_signature() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    for format in ["table", "json"] {
        teams(&redis, &sink)
            .args(["status", "--format", format])
            .run()
            .success()
            .stdout_has("teams")
            .stdout_lacks(SIG);
    }
}

#[test]
fn values_are_escaped_for_the_cards_markdown() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(accepted());
    let hostile = json!({"type": "import.failed", "payload": {
        "email": "a@x.io", "importer_name": "CRM",
        "error": "**urgent** [click](http://e.vil) {{DATE(2017-02-14T06:00:00Z)}}"}});
    emit(&redis, format!("{hostile}\n"));
    teams(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success();
    assert_eq!(
        teams_lines(&sink),
        [
            r"Import failed: a@x.io - \*\*urgent\*\* \[click\]\(http://e.vil\) \{\{DATE\(2017\-02\-14T06:00:00Z\)\}\}"
        ]
    );
}
