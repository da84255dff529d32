//! `events work` on Redis: every guarantee of the delivery contract, against
//! a real `redis-server` and in-process HTTP servers that behave like Slack
//! and webhook receivers.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::support::{
    Events, LONG, RedisServer, Reply, Sink, WEBHOOK_SECRET as SECRET, signups, slack_lines,
    webhook_ids,
};

/// Writes a signup the way a producer in another language does: one plain
/// `XADD`, no id and no ts. Returns the entry id.
fn plain_xadd(redis: &RedisServer, email: &str) -> String {
    let payload = format!(r#"{{"email":"{email}"}}"#);
    redis.cli(&[
        "XADD",
        "{events}:stream",
        "*",
        "type",
        "user.signup",
        "payload",
        &payload,
    ])
}

/// The binary on `redis`, with fast retries.
fn events(redis: &RedisServer) -> Events {
    Events::new()
        .env("REDIS_URL", redis.url())
        .env("EVENTS_RETRY_BASE_MS", "10")
        .env("EVENTS_HTTP_TIMEOUT_MS", "3000")
}

fn slack(redis: &RedisServer, sink: &Sink) -> Events {
    events(redis).env("SLACK_WEBHOOK_URL", sink.url())
}

fn webhook(redis: &RedisServer, sink: &Sink) -> Events {
    events(redis)
        .env("EVENTS_WEBHOOK_URL", sink.url())
        .env("EVENTS_WEBHOOK_SECRET", SECRET)
}

/// Emits `n` signups (`user{i}@example.com`) in one `emit --stdin`.
fn emit_signups(redis: &RedisServer, range: std::ops::Range<usize>) {
    events(redis)
        .arg("emit")
        .arg("--stdin")
        .stdin(signups(range))
        .run()
        .success();
}

fn xlen(redis: &RedisServer, key: &str) -> usize {
    redis.cli(&["XLEN", key]).parse().unwrap()
}

fn dead_fields(redis: &RedisServer) -> Vec<String> {
    redis
        .cli(&["XRANGE", "{events}:dead", "-", "+"])
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_catalog_type_reaches_slack_with_its_exact_text() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    let emits: [&[&str]; 8] = [
        &["user.signup", "--email", "ada@example.com"],
        &[
            "user.first_import",
            "--email",
            "ada@example.com",
            "--importer-name",
            "CRM contacts",
        ],
        &[
            "subscription.started",
            "--email",
            "ada@example.com",
            "--plan",
            "pro",
        ],
        &[
            "subscription.cancelled",
            "--email",
            "ada@example.com",
            "--plan",
            "team",
        ],
        &["subscription.payment_failed", "--email", "ada@example.com"],
        &[
            "importer.created",
            "--email",
            "ada@example.com",
            "--importer-name",
            "Leads",
        ],
        &[
            "import.completed",
            "--email",
            "ada@example.com",
            "--importer-name",
            "CRM",
            "--row-count",
            "1234567",
        ],
        &[
            "import.failed",
            "--email",
            "ada@example.com",
            "--importer-name",
            "CRM",
            "--error",
            "bad header",
        ],
    ];
    for args in emits {
        events(&redis).arg("emit").args(args.iter()).run().success();
    }
    // A producer in another language: one plain XADD, no id and no ts.
    plain_xadd(&redis, "py@example.com");
    slack(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("delivered user.signup");
    assert_eq!(
        slack_lines(&sink),
        [
            "New signup: ada@example.com",
            "First import: ada@example.com via CRM contacts",
            "New subscriber: ada@example.com (pro)",
            "Churned: ada@example.com (team)",
            "Payment failed: ada@example.com",
            "New importer: Leads by ada@example.com",
            "Import: 1,234,567 rows by ada@example.com",
            "Import failed: ada@example.com - bad header",
            "New signup: py@example.com",
        ]
    );
    assert_eq!(redis.pending(), 0, "nothing left claimed");
    assert_eq!(xlen(&redis, "{events}:dead"), 0);
}

#[test]
fn a_plain_xadd_gets_a_stable_id_and_ts_derived_from_the_entry() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    let entry = plain_xadd(&redis, "py@example.com");
    webhook(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success();
    let body = sink.accepted()[0].json();
    let ms: i64 = entry.split('-').next().unwrap().parse().unwrap();
    let id = body["id"].as_str().unwrap();
    assert_eq!(id.len(), 26);
    assert_eq!(body["ts"], Value::from(events::event::format_ts_ms(ms)));
    assert_eq!(body["payload"]["email"], "py@example.com");
}

#[test]
fn injected_markup_in_any_field_arrives_escaped() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    events(&redis)
        .args([
            "emit",
            "import.failed",
            "--email",
            "<!channel>",
            "--importer-name",
            "x",
        ])
        .args([
            "--error",
            "<@U1> & <http://evil.example|click>\nsecond line",
        ])
        .run()
        .success();
    slack(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success();
    assert_eq!(
        slack_lines(&sink),
        [
            "Import failed: &lt;!channel&gt; - &lt;@U1&gt; &amp; &lt;http://evil.example|click&gt; second line"
        ]
    );
}

#[test]
fn a_destination_failing_twice_then_recovering_gets_the_event_once() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.script(vec![
        Reply::status(500, "internal_error"),
        Reply::status(503, "service_unavailable"),
    ]);
    events(&redis)
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .success();
    slack(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("HTTP 500 internal_error (attempt 1 of 5)")
        .stderr_has("HTTP 503 service_unavailable (attempt 2 of 5)");
    assert_eq!(sink.request_count(), 3);
    assert_eq!(slack_lines(&sink), ["New signup: ada@example.com"]);
    assert_eq!(xlen(&redis, "{events}:dead"), 0);
    assert_eq!(redis.cli(&["ZCARD", "{events}:retry:slack"]), "0");
}

#[test]
fn a_404_is_dead_lettered_at_once_with_slacks_error_code() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(Reply::status(404, "channel_not_found"));
    events(&redis)
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .success();
    slack(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("dead: user.signup")
        .stderr_has("HTTP 404 channel_not_found (after 1 attempt)");
    assert_eq!(sink.request_count(), 1);
    let dead = dead_fields(&redis);
    let field = |name: &str| dead[dead.iter().position(|f| f == name).unwrap() + 1].clone();
    assert_eq!(field("dest"), "slack");
    assert_eq!(field("attempts"), "1");
    assert_eq!(field("error"), "HTTP 404 channel_not_found");
    let event: Value = serde_json::from_str(&field("event")).unwrap();
    assert_eq!(event["payload"]["email"], "ada@example.com");
}

#[test]
fn a_429_waits_for_retry_after_without_spending_an_attempt() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.script(vec![
        Reply::status(429, "rate_limited").header("Retry-After", "1"),
    ]);
    events(&redis)
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .success();
    // One attempt in all: had the 429 spent it, the event would be dead.
    slack(&redis, &sink)
        .env("EVENTS_MAX_ATTEMPTS", "1")
        .args(["work", "--burst"])
        .run()
        .success();
    let requests = sink.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].at.duration_since(requests[0].at) >= Duration::from_millis(950));
    assert_eq!(slack_lines(&sink), ["New signup: ada@example.com"]);
    assert_eq!(xlen(&redis, "{events}:dead"), 0);
}

#[test]
fn a_long_retry_after_goes_to_the_retry_set_without_spending_an_attempt() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.script(vec![
        Reply::status(429, "rate_limited").header("Retry-After", "30"),
    ]);
    events(&redis)
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .success();
    let mut worker = slack(&redis, &sink)
        .env("EVENTS_MAX_ATTEMPTS", "1")
        .arg("work")
        .spawn();
    assert!(
        worker.wait_for_stderr("retry in 30s", LONG),
        "{}",
        worker.stderr_so_far()
    );
    // The wire format: a token `<event id>|<dest>` scored by due time in
    // the destination's retry set, the delivery itself in a hash under the
    // same token.
    // The line is logged just before the outcome is written: wait for it.
    let deadline = std::time::Instant::now() + LONG;
    let token = loop {
        let token = redis.cli(&["ZRANGE", "{events}:retry:slack", "0", "-1"]);
        if !token.is_empty() || std::time::Instant::now() > deadline {
            break token;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(token.ends_with("|slack"), "{token}");
    let body = redis.cli(&["HGET", "{events}:deliveries", &token]);
    let delivery: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(delivery["attempts"], 0);
    assert_eq!(delivery["dest"], "slack");
    assert_eq!(delivery["last_error"], "HTTP 429 rate_limited");
    worker.kill();
}

#[test]
fn a_poison_entry_is_dead_lettered_and_its_neighbours_delivered() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    events(&redis)
        .args(["emit", "user.signup", "--email", "before@example.com"])
        .run()
        .success();
    redis.cli(&[
        "XADD",
        "{events}:stream",
        "*",
        "type",
        "user.signup",
        "payload",
        "{not json",
    ]);
    redis.cli(&[
        "XADD",
        "{events}:stream",
        "*",
        "type",
        "user.unknown",
        "payload",
        "{}",
    ]);
    redis.cli(&["XADD", "{events}:stream", "*", "payload", "{}"]);
    events(&redis)
        .args(["emit", "user.signup", "--email", "after@example.com"])
        .run()
        .success();
    slack(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("cannot be delivered");
    assert_eq!(
        slack_lines(&sink),
        [
            "New signup: before@example.com",
            "New signup: after@example.com"
        ]
    );
    let dead = redis.cli(&["XRANGE", "{events}:dead", "-", "+"]);
    assert_eq!(xlen(&redis, "{events}:dead"), 3);
    assert!(dead.contains("'payload' is not valid JSON"), "{dead}");
    assert!(dead.contains("unknown event type 'user.unknown'"), "{dead}");
    assert!(dead.contains("the entry has no 'type' field"), "{dead}");
    assert_eq!(redis.pending(), 0, "nothing left claimed");
}

#[test]
fn a_worker_killed_mid_burst_loses_nothing() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(Reply::ok().delay(Duration::from_millis(40)));
    emit_signups(&redis, 0..200);
    let mut first = webhook(&redis, &sink)
        .env("EVENTS_HTTP_TIMEOUT_MS", "300")
        .env("EVENTS_CLAIM_LEASE_MS", "1000")
        .args(["work", "--concurrency", "4"])
        .spawn();
    sink.wait_accepted(20, LONG);
    first.kill();
    let delivered_before = sink.accepted_count();
    assert!(
        delivered_before < 200,
        "the worker finished before it was killed"
    );
    // A new worker (another consumer name) reclaims the dead one's entries
    // once they have been idle longer than the lease.
    webhook(&redis, &sink)
        .env("EVENTS_HTTP_TIMEOUT_MS", "300")
        .env("EVENTS_CLAIM_LEASE_MS", "1000")
        .args(["work", "--burst", "--concurrency", "8"])
        .run()
        .success();
    let ids = webhook_ids(&sink);
    assert_eq!(ids.len(), 200, "every event delivered");
    assert_eq!(redis.pending(), 0, "nothing left claimed");
}

#[test]
fn a_slow_delivery_keeps_its_claim_and_is_not_sent_twice() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    // Each request takes most of an HTTP timeout; rivals must not take the
    // entry over while it is in flight (the lease is more than three HTTP
    // timeouts, and renewed while the delivery runs).
    sink.set_default(Reply::ok().delay(Duration::from_millis(1800)));
    emit_signups(&redis, 0..1);
    let slow = |name: &str| {
        webhook(&redis, &sink)
            .env("EVENTS_HTTP_TIMEOUT_MS", "2500")
            .env("EVENTS_CLAIM_LEASE_MS", "7501")
            .args(["work", "--consumer", name])
            .spawn()
    };
    let first = slow("first");
    sink.wait_requests(1, LONG);
    // Rivals that would reclaim an entry idle longer than its lease.
    let rivals: Vec<_> = ["second", "third", "fourth"].map(slow).into();
    sink.wait_accepted(1, LONG);
    std::thread::sleep(Duration::from_millis(1200));
    for worker in std::iter::once(first).chain(rivals) {
        worker.signal("TERM");
        worker.wait(LONG).success();
    }
    assert_eq!(sink.request_count(), 1, "sent once");
}

#[test]
fn three_workers_deliver_each_event_exactly_once() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(Reply::ok().delay(Duration::from_millis(5)));
    let workers: Vec<_> = (0..3)
        .map(|i| {
            webhook(&redis, &sink)
                .args(["work", "--consumer", &format!("w{i}")])
                .spawn()
        })
        .collect();
    // Events arrive while all three are waiting for them.
    for batch in 0..30 {
        emit_signups(&redis, batch * 10..batch * 10 + 10);
    }
    assert_eq!(sink.wait_accepted(300, LONG).len(), 300);
    let mut delivering = 0;
    for worker in workers {
        worker.signal("TERM");
        let out = worker.wait(LONG).success();
        delivering += usize::from(out.stderr.contains("delivered"));
    }
    let ids = webhook_ids(&sink);
    assert_eq!(ids.len(), 300);
    assert!(
        ids.values().all(|&n| n == 1),
        "duplicates: {:?}",
        ids.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    assert!(delivering >= 2, "the work was shared");
}

#[test]
fn a_rate_limited_slack_gets_a_burst_joined_and_every_line_once() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.rate_limit(1, 2);
    emit_signups(&redis, 0..300);
    slack(&redis, &sink)
        .args(["work", "--burst"])
        .timeout(Duration::from_secs(120))
        .run()
        .success();
    let lines = slack_lines(&sink);
    let expected: Vec<String> = (0..300)
        .map(|i| format!("New signup: user{i}@example.com"))
        .collect();
    assert_eq!(lines, expected, "every line once, in order");
    let accepted = sink.accepted();
    assert!(
        accepted.len() < 20,
        "{} messages: lines were not joined",
        accepted.len()
    );
    for pair in accepted.windows(2) {
        assert!(
            pair[1].at.duration_since(pair[0].at) >= Duration::from_millis(900),
            "paced"
        );
    }
}

#[test]
fn a_slack_far_behind_does_not_hold_up_the_webhook() {
    let redis = RedisServer::start();
    let (chat, hook) = (Sink::start(), Sink::start());
    chat.rate_limit(1, 1);
    emit_signups(&redis, 0..3000);
    let worker = slack(&redis, &chat)
        .env("EVENTS_WEBHOOK_URL", hook.url())
        .env("EVENTS_WEBHOOK_SECRET", SECRET)
        .arg("work")
        .spawn();
    assert_eq!(hook.wait_accepted(3000, LONG).len(), 3000);
    // Slack, at about 40 lines a second, has barely started.
    let lines_so_far = chat.accepted().len() * 40;
    assert!(lines_so_far < 1000, "the webhook waited for Slack");
    worker.signal("TERM");
    worker.wait(LONG).success();
    // Nothing lost: every Slack line was sent or waits in the retry set.
    let sent = slack_lines(&chat).len();
    let waiting: usize = redis
        .cli(&["ZCARD", "{events}:retry:slack"])
        .parse()
        .unwrap();
    assert_eq!(sent + waiting, 3000);
    assert_eq!(redis.pending(), 0);
}

#[test]
fn the_worker_survives_a_redis_restart_and_delivers_what_came_after() {
    let mut redis = RedisServer::start_persistent();
    let sink = Sink::start();
    let worker = webhook(&redis, &sink).arg("work").spawn();
    emit_signups(&redis, 0..5);
    assert_eq!(sink.wait_accepted(5, LONG).len(), 5);
    redis.stop();
    assert!(
        worker.wait_for_stderr("cannot reach Redis", LONG),
        "{}",
        worker.stderr_so_far()
    );
    redis.restart();
    emit_signups(&redis, 5..10);
    assert_eq!(
        sink.wait_accepted(10, LONG).len(),
        10,
        "{}",
        worker.stderr_so_far()
    );
    assert!(
        worker.wait_for_stderr("reachable again", LONG),
        "{}",
        worker.stderr_so_far()
    );
    worker.signal("TERM");
    worker.wait(LONG).success();
    assert_eq!(webhook_ids(&sink).len(), 10);
}

#[test]
fn a_worker_stopped_while_redis_is_gone_says_what_it_could_not_record() {
    let mut redis = RedisServer::start_persistent();
    let sink = Sink::start();
    sink.set_default(Reply::ok().delay(Duration::from_millis(500)));
    emit_signups(&redis, 0..3);
    let worker = webhook(&redis, &sink)
        .env("EVENTS_HTTP_TIMEOUT_MS", "600")
        .env("EVENTS_CLAIM_LEASE_MS", "2000")
        .arg("work")
        .spawn();
    sink.wait_requests(1, LONG);
    redis.crash();
    worker.signal("TERM");
    let out = worker.wait(LONG).code(1);
    assert!(out.stderr.contains("gave up recording"), "{}", out.stderr);
    // Nothing was lost: once Redis is back, the entries are delivered again.
    redis.restart();
    webhook(&redis, &sink)
        .env("EVENTS_HTTP_TIMEOUT_MS", "600")
        .env("EVENTS_CLAIM_LEASE_MS", "2000")
        .args(["work", "--burst"])
        .run()
        .success();
    assert_eq!(webhook_ids(&sink).len(), 3);
    assert_eq!(redis.pending(), 0);
}

#[test]
fn sigterm_during_delivery_exits_0_and_loses_nothing() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(Reply::ok().delay(Duration::from_millis(300)));
    emit_signups(&redis, 0..30);
    let worker = webhook(&redis, &sink)
        .args(["work", "--concurrency", "2"])
        .spawn();
    sink.wait_requests(1, LONG);
    worker.signal("TERM");
    worker.wait(LONG).success();
    assert!(sink.accepted_count() < 30, "stopped before the end");
    // Not one entry is left claimed: what was not sent waits in the retry set.
    assert_eq!(redis.pending(), 0, "nothing left claimed");
    sink.set_default(Reply::ok());
    webhook(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success();
    assert_eq!(webhook_ids(&sink).len(), 30);
}

#[test]
fn a_second_signal_exits_130_at_once() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(Reply::ok().delay(Duration::from_secs(20)));
    emit_signups(&redis, 0..3);
    let worker = webhook(&redis, &sink).arg("work").spawn();
    sink.wait_requests(1, LONG);
    worker.signal("INT");
    std::thread::sleep(Duration::from_millis(200));
    worker.signal("INT");
    assert_eq!(worker.wait(LONG).status, Some(130));
}

#[test]
fn only_limits_the_worker_to_the_named_destinations() {
    let redis = RedisServer::start();
    let hook = Sink::start();
    let chat = Sink::start();
    events(&redis)
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .success();
    let both = |e: Events| {
        e.env("SLACK_WEBHOOK_URL", chat.url())
            .env("EVENTS_WEBHOOK_URL", hook.url())
            .env("EVENTS_WEBHOOK_SECRET", SECRET)
    };
    both(events(&redis))
        .args(["work", "--burst", "--only", "nope"])
        .run()
        .code(2)
        .stderr_has("--only nope: no such destination (configured: slack, webhook)");
    both(events(&redis))
        .args(["work", "--burst", "--only", "webhook"])
        .run()
        .success();
    assert_eq!(hook.accepted_count(), 1);
    assert_eq!(chat.request_count(), 0);
}

#[test]
fn without_destinations_messages_go_to_stdout_with_a_note() {
    let redis = RedisServer::start();
    events(&redis)
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .success();
    events(&redis)
        .args(["work", "--burst"])
        .run()
        .success()
        .stdout_is("New signup: ada@example.com\n")
        .stderr_has("no destination is configured");
}

#[test]
fn quiet_workers_print_only_failures() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    emit_signups(&redis, 0..2);
    let out = slack(&redis, &sink)
        .args(["-q", "work", "--burst"])
        .run()
        .success();
    assert_eq!(out.stderr, "");
}

#[test]
fn history_is_trimmed_to_the_retention_but_never_past_undelivered_entries() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    // Three old entries: two delivered, then one left unread behind them.
    for (ms, email) in [(1000, "a"), (2000, "b")] {
        redis.cli(&[
            "XADD",
            "{events}:stream",
            &format!("{ms}-0"),
            "type",
            "user.signup",
            "payload",
            &format!(r#"{{"email":"{email}@x"}}"#),
        ]);
    }
    webhook(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success();
    redis.cli(&[
        "XADD",
        "{events}:stream",
        "3000-0",
        "type",
        "user.signup",
        "payload",
        r#"{"email":"c@x"}"#,
    ]);
    // A worker that is not allowed to deliver trims: only the delivered go.
    events(&redis)
        .env("EVENTS_RETENTION", "1h")
        .env("EVENTS_WEBHOOK_URL", "http://127.0.0.1:9/")
        .env("EVENTS_WEBHOOK_SECRET", SECRET)
        .env("SLACK_WEBHOOK_URL", sink.url())
        .args(["work", "--burst", "--only", "slack"])
        .run()
        .success()
        .stderr_has("trimmed 2 delivered events");
    let left: BTreeSet<String> = redis
        .cli(&["XRANGE", "{events}:stream", "-", "+"])
        .lines()
        .filter(|l| l.ends_with("-0"))
        .map(str::to_owned)
        .collect();
    assert_eq!(left, BTreeSet::from(["3000-0".to_owned()]));
}

#[test]
fn a_burst_leaves_a_retry_due_in_an_hour_scheduled_and_says_so() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.script(vec![
        Reply::status(429, "rate_limited").header("Retry-After", "3600"),
    ]);
    emit_signups(&redis, 0..1);
    let out = slack(&redis, &sink)
        .args(["work", "--burst"])
        .timeout(LONG)
        .run()
        .success();
    assert!(
        out.stderr
            .contains("leaving 1 retry scheduled, the next due in 59m"),
        "{}",
        out.stderr
    );
    assert_eq!(
        redis.cli(&["ZCARD", "{events}:retry:slack"]),
        "1",
        "still scheduled"
    );
}

#[test]
fn sigterm_on_an_idle_worker_is_a_quiet_clean_stop() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    emit_signups(&redis, 0..1);
    // Idle on a blocking read once its one event is delivered.
    let worker = webhook(&redis, &sink).arg("work").spawn();
    sink.wait_accepted(1, LONG);
    assert!(worker.wait_for_stderr("delivered", LONG));
    std::thread::sleep(Duration::from_millis(300));
    worker.signal("TERM");
    let out = worker.wait(LONG).success();
    assert!(!out.stderr.contains("cannot reach"), "{}", out.stderr);
    assert!(!out.stderr.contains("nterrupted"), "{}", out.stderr);
    assert!(!out.stderr.contains("WARN"), "{}", out.stderr);
}

/// Many keys for a snapshot slow to load (`key-load-delay`), so a restarted
/// server answers `-LOADING` for a few seconds.
fn fill_with_keys(redis: &RedisServer, n: usize) {
    redis.cli(&[
        "EVAL",
        "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'filler:' .. i, i) end",
        "0",
        &n.to_string(),
    ]);
}

#[test]
fn a_redis_loading_its_data_makes_emit_fail_plainly_and_the_worker_wait() {
    let mut redis = RedisServer::start();
    let sink = Sink::start();
    emit_signups(&redis, 0..3);
    fill_with_keys(&redis, 3000);
    redis.restart_loading(&[
        "--key-load-delay",
        "1000",
        "--loading-process-events-interval-bytes",
        "1024",
    ]);
    let emit = events(&redis)
        .args(["emit", "user.signup", "--email", "late@example.com"])
        .run();
    let worker = webhook(&redis, &sink).args(["work", "--burst"]).spawn();
    assert!(
        redis.is_loading(),
        "the server finished loading too soon for this test to mean anything"
    );
    let emit = emit.code(1);
    assert!(
        emit.stderr.contains("is loading its data"),
        "{}",
        emit.stderr
    );
    let out = worker.wait(LONG).success();
    assert!(out.stderr.contains("is loading its data"), "{}", out.stderr);
    assert_eq!(webhook_ids(&sink).len(), 3);
}

#[test]
fn a_worker_pointed_at_a_replica_waits_saying_it_is_read_only() {
    let primary = RedisServer::start();
    let replica = RedisServer::start();
    let port = primary.port().to_string();
    replica.cli(&["REPLICAOF", "127.0.0.1", &port]);
    let sink = Sink::start();
    let worker = webhook(&replica, &sink).arg("work").spawn();
    assert!(
        worker.wait_for_stderr("is read-only", LONG),
        "{}",
        worker.stderr_so_far()
    );
    // A failover promotes it: the worker resumes and delivers.
    replica.cli(&["REPLICAOF", "NO", "ONE"]);
    emit_signups(&replica, 0..2);
    sink.wait_accepted(2, LONG);
    worker.signal("TERM");
    worker.wait(LONG).success();
    assert_eq!(webhook_ids(&sink).len(), 2);
}

#[test]
fn a_redis_that_needs_a_password_says_so_without_showing_any() {
    let redis = RedisServer::start_with(&["--requirepass", "s3cret-pw"]);
    let port = redis.port();
    let emit = |url: String| {
        Events::new()
            .env("REDIS_URL", url)
            .args(["emit", "user.signup", "--email", "ada@example.com"])
            .run()
    };
    let out = emit(format!("redis://127.0.0.1:{port}")).code(1);
    assert!(
        out.stderr.contains("needs a password")
            && out.stderr.contains("redis://:PASSWORD@host:port"),
        "{}",
        out.stderr
    );
    // `status` asks in one pipeline: every reply is NOAUTH.
    let out = Events::new()
        .env("REDIS_URL", format!("redis://127.0.0.1:{port}"))
        .arg("status")
        .run()
        .code(1);
    assert!(out.stderr.contains("needs a password"), "{}", out.stderr);
    let out = emit(format!("redis://:not-it@127.0.0.1:{port}")).code(1);
    assert!(
        out.stderr.contains("refused the password"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("not-it"), "{}", out.stderr);
    emit(format!("redis://:s3cret-pw@127.0.0.1:{port}")).success();
}

#[test]
fn a_consumer_name_in_use_is_refused_and_freed_on_a_clean_stop() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    let first = webhook(&redis, &sink)
        .args(["work", "--consumer", "w"])
        .spawn();
    let deadline = std::time::Instant::now() + LONG;
    while redis.cli(&["EXISTS", "{events}:consumer:w"]) != "1" {
        assert!(
            std::time::Instant::now() < deadline,
            "the name was never taken"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = webhook(&redis, &sink)
        .args(["work", "--burst", "--consumer", "w"])
        .run()
        .code(2);
    let pid = format!("pid {}", first.pid());
    assert!(
        second.stderr.contains("'w' is held by a running worker") && second.stderr.contains(&pid),
        "{}",
        second.stderr
    );
    first.signal("TERM");
    first.wait(LONG).success();
    assert_eq!(redis.cli(&["EXISTS", "{events}:consumer:w"]), "0");
    webhook(&redis, &sink)
        .args(["work", "--burst", "--consumer", "w"])
        .run()
        .success();
}

#[test]
fn a_worker_killed_and_restarted_under_its_name_takes_it_back_at_once() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(Reply::ok().delay(Duration::from_secs(20)));
    emit_signups(&redis, 0..3);
    let worker = || {
        webhook(&redis, &sink)
            .env("EVENTS_HTTP_TIMEOUT_MS", "300")
            .env("EVENTS_CLAIM_LEASE_MS", "1000")
            .args(["work", "--consumer", "w"])
    };
    let mut first = worker().spawn();
    sink.wait_requests(1, LONG);
    first.kill();
    sink.set_default(Reply::ok());
    // Its process is gone from this host: no need to wait out the lease.
    let out = worker().arg("--burst").run().success();
    assert!(
        out.stderr.contains("which is no longer running"),
        "{}",
        out.stderr
    );
    assert_eq!(webhook_ids(&sink).len(), 3, "the dead worker's entries");
    assert_eq!(redis.pending(), 0);
}

#[test]
fn a_name_held_on_another_host_is_free_once_its_lease_runs_out() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    emit_signups(&redis, 0..1);
    // What a worker on another host leaves behind when it dies.
    redis.cli(&[
        "SET",
        "{events}:consumer:w",
        "elsewhere pid 1",
        "PX",
        "600000",
    ]);
    let burst = || {
        webhook(&redis, &sink)
            .args(["work", "--burst", "--consumer", "w"])
            .run()
    };
    let refused = burst().code(2);
    assert!(
        refused
            .stderr
            .contains("held by a running worker (elsewhere pid 1) until"),
        "{}",
        refused.stderr
    );
    assert!(sink.requests().is_empty());
    redis.cli(&["PEXPIRE", "{events}:consumer:w", "1"]);
    let deadline = std::time::Instant::now() + LONG;
    while redis.cli(&["EXISTS", "{events}:consumer:w"]) == "1" {
        assert!(
            std::time::Instant::now() < deadline,
            "the lease never ran out"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    burst().success();
    assert_eq!(webhook_ids(&sink).len(), 1);
}
