//! What the delivery tests share: the webhook signing secret they configure,
//! the JSON Lines they emit, and readings of what a sink received.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use super::cmd::Events;
use super::http::Sink;
use super::redis::RedisServer;

/// The Standard Webhooks specification's example secret.
pub const WEBHOOK_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// Long enough for anything a test waits for; reached only when it fails.
pub const LONG: Duration = Duration::from_secs(60);

/// One `user.signup` event for `a@example.com`, as a JSON line.
pub const ONE_SIGNUP: &str =
    "{\"type\":\"user.signup\",\"payload\":{\"email\":\"a@example.com\"}}\n";

/// Emits JSON `lines` onto `redis` with `emit --stdin`.
pub fn emit_lines(redis: &RedisServer, lines: &str) {
    Events::new()
        .env("REDIS_URL", redis.url())
        .args(["emit", "--stdin"])
        .stdin(lines)
        .run()
        .success();
}

/// Eight `user.signup` events for `u{i}@example.com`, but the sixth is
/// `bad@example.com`: the one a batched receiver refuses.
pub fn eight_signups_one_bad() -> String {
    (0..8)
        .map(|i| {
            let email = if i == 5 {
                "bad".to_owned()
            } else {
                format!("u{i}")
            };
            format!(
                "{{\"type\":\"user.signup\",\"payload\":{{\"email\":\"{email}@example.com\"}}}}\n"
            )
        })
        .collect()
}

/// `user.signup` events for `user{i}@example.com`, one JSON line each.
pub fn signups(range: Range<usize>) -> String {
    range
        .map(|i| {
            format!(
                "{{\"type\":\"user.signup\",\"payload\":{{\"email\":\"user{i}@example.com\"}}}}\n"
            )
        })
        .collect()
}

/// Every line of every message a Slack sink accepted, in order.
pub fn slack_lines(sink: &Sink) -> Vec<String> {
    sink.accepted()
        .iter()
        .flat_map(|r| {
            let text = r.json()["text"].as_str().expect("a text field").to_owned();
            text.lines().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect()
}

/// How many times a webhook sink accepted each event id.
pub fn webhook_ids(sink: &Sink) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for request in sink.accepted() {
        let id = request.json()["id"].as_str().expect("an id").to_owned();
        *counts.entry(id).or_default() += 1;
    }
    counts
}
