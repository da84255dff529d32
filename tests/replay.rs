//! Tests of `replay`: dead letters, history windows and files put back into
//! delivery (and delivered by a real `work --burst`), filters, `--dry-run`,
//! and the Slack confirmation. Every test runs on both backends.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::Value;

use crate::support::{Backend, Events, Reply, Sink, on_both_backends};

/// A webhook signing secret (the Standard Webhooks test vector's).
pub(crate) const WEBHOOK_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const WAIT: Duration = Duration::from_secs(10);

/// `status --format json` run with `events`.
pub(crate) fn status(events: Events) -> Value {
    events
        .args(["status", "--format", "json"])
        .run()
        .success()
        .stdout_json()
}

on_both_backends!(
    fixed_destination_gets_each_dead_letter_once,
    dead_letters_filtered_by_type_and_to,
    history_window_selects_exactly_the_events_in_it,
    replay_to_a_webhook_keeps_the_event_ids,
    file_with_bad_lines_replays_the_good_ones_and_exits_2,
    dry_run_writes_nothing,
    slack_replay_needs_yes_when_not_on_a_terminal,
    since_takes_a_minus_duration_and_refuses_the_future,
);

fn webhook(events: Events, sink: &Sink) -> Events {
    events
        .env("EVENTS_WEBHOOK_URL", sink.url())
        .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
}

fn slack(events: Events, sink: &Sink) -> Events {
    events.env("SLACK_WEBHOOK_URL", sink.url())
}

/// RFC 3339 (UTC, ms) of `minutes` ago.
fn ago(minutes: i64) -> String {
    (Utc::now() - chrono::Duration::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A JSON line for `emit --stdin` / `replay --file`.
fn line(id: &str, kind: &str, ts: &str) -> String {
    let payload = match kind {
        "import.completed" => {
            r#"{"email":"ada@example.com","importer_name":"CRM","row_count":1234}"#
        }
        "subscription.started" | "subscription.cancelled" => {
            r#"{"email":"ada@example.com","plan":"pro"}"#
        }
        _ => r#"{"email":"ada@example.com"}"#,
    };
    format!(r#"{{"id":"{id}","type":"{kind}","ts":"{ts}","payload":{payload}}}"#)
}

fn emit_lines(events: Events, lines: &[String]) {
    events
        .args(["emit", "--stdin"])
        .stdin(lines.join("\n") + "\n")
        .run()
        .success();
}

/// The ids of the events printed as JSON Lines.
fn ids(out: &crate::support::Outcome) -> Vec<String> {
    out.stdout_json_lines()
        .iter()
        .map(|e| e["id"].as_str().expect("an id").to_owned())
        .collect()
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn webhook_ids(requests: &[crate::support::Request]) -> Vec<String> {
    sorted(
        requests
            .iter()
            .map(|r| {
                r.header("webhook-id")
                    .expect("a webhook-id header")
                    .to_owned()
            })
            .collect(),
    )
}

fn fixed_destination_gets_each_dead_letter_once(backend: Backend) {
    let sink = Sink::start();
    sink.set_default(Reply::status(404, "channel_not_found"));
    let env = || webhook(backend.events(), &sink);
    let mut emitted: Vec<String> = (0..3)
        .map(|n| {
            let out = env()
                .args([
                    "emit",
                    "user.signup",
                    "--email",
                    &format!("u{n}@example.com"),
                ])
                .run()
                .success();
            out.stdout.trim().to_owned()
        })
        .collect();
    emitted.sort();
    env().args(["work", "--burst"]).run().success();
    let st = status(env());
    assert_eq!(st["dead"]["total"], 3, "{st:#}");
    assert_eq!(
        st["dead"]["by_destination"],
        serde_json::json!([{"destination": "webhook", "error": "HTTP 404 channel_not_found", "count": 3}])
    );
    assert_eq!(sink.accepted_count(), 0);

    sink.set_default(Reply::ok());
    env()
        .args(["replay", "--dead", "--yes"])
        .run()
        .success()
        .stderr_has("replayed 3 events (3 deliveries), skipped 0, failed 0");
    env().args(["work", "--burst"]).run().success();
    assert_eq!(
        webhook_ids(&sink.accepted()),
        emitted,
        "each dead letter delivered exactly once"
    );
    let st = status(env());
    assert_eq!(st["dead"]["total"], 0, "{st:#}");
    assert_eq!(st["retries"]["scheduled"], 0, "{st:#}");
}

fn dead_letters_filtered_by_type_and_to(backend: Backend) {
    let hook = Sink::start();
    let chat = Sink::start();
    hook.set_default(Reply::status(404, "not_found"));
    chat.set_default(Reply::status(404, "channel_not_found"));
    let env = || slack(webhook(backend.events(), &hook), &chat);
    let now = ago(1);
    emit_lines(
        env(),
        &[
            line("evt-signup", "user.signup", &now),
            line("evt-sub", "subscription.started", &now),
        ],
    );
    env().args(["work", "--burst"]).run().success();
    assert_eq!(
        status(env())["dead"]["total"],
        4,
        "two events dead on two destinations"
    );

    // --type selects the letters of matching events; each event prints once.
    let out = env()
        .args(["replay", "--dead", "--type", "subscription.*", "--dry-run"])
        .run()
        .success();
    assert_eq!(ids(&out), ["evt-sub"]);
    out.stderr_has("would replay 1 events (2 deliveries), skipped 0, failed 0");

    // --to sends both letters of the subscription to the webhook alone.
    hook.set_default(Reply::ok());
    chat.set_default(Reply::ok());
    env()
        .args([
            "replay",
            "--dead",
            "--type",
            "sub*",
            "--type",
            "nothing.*",
            "--to",
            "webhook",
        ])
        .run()
        .success()
        .stderr_has("replayed 1 events (2 deliveries)");
    env().args(["work", "--burst"]).run().success();
    assert_eq!(
        webhook_ids(&hook.accepted()),
        ["evt-sub"],
        "the same delivery twice is one retry"
    );
    assert_eq!(chat.accepted_count(), 0, "nothing went to Slack");
    let st = status(env());
    assert_eq!(
        st["dead"]["total"], 2,
        "the signup's letters are still dead: {st:#}"
    );

    // The signup's two letters, both to Slack.
    env()
        .args(["replay", "--dead", "--to", "slack"])
        .run()
        .success()
        .stderr_has("replayed 1 events (2 deliveries)");
    env().args(["work", "--burst"]).run().success();
    let texts: Vec<String> = chat
        .accepted()
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["New signup: ada@example.com"]);
    assert_eq!(hook.accepted_count(), 1, "nothing more went to the webhook");
    assert_eq!(status(env())["dead"]["total"], 0);

    env()
        .args(["replay", "--dead", "--to", "segment"])
        .run()
        .code(2)
        .stderr_has("--to segment: no such destination (configured: slack, webhook)");
}

fn history_window_selects_exactly_the_events_in_it(backend: Backend) {
    let times = [ago(180), ago(150), ago(90), ago(30), ago(10)];
    let kinds = [
        "user.signup",
        "user.signup",
        "import.completed",
        "user.signup",
        "subscription.started",
    ];
    let lines: Vec<String> = (0..5)
        .map(|n| line(&format!("evt-{n}"), kinds[n], &times[n]))
        .collect();
    emit_lines(backend.events(), &lines);
    let dry = |args: &[&str]| {
        let out = backend
            .events()
            .args(["replay", "--dry-run"])
            .args(args)
            .run()
            .success();
        ids(&out)
    };
    assert_eq!(
        dry(&["--since", &ago(165), "--until", &ago(60)]),
        ["evt-1", "evt-2"]
    );
    // --since is inclusive, --until exclusive.
    assert_eq!(
        dry(&["--since", &times[0], "--until", &times[2]]),
        ["evt-0", "evt-1"]
    );
    assert_eq!(dry(&["--since", "1h"]), ["evt-3", "evt-4"]);
    assert_eq!(
        dry(&["--since", "2h", "--until", "20m"]),
        ["evt-2", "evt-3"]
    );
    assert_eq!(
        dry(&["--since", "4h", "--type", "import.*", "--type", "sub*"]),
        ["evt-2", "evt-4"]
    );
    assert_eq!(dry(&["--since", "4h", "--limit", "2"]), ["evt-0", "evt-1"]);
    // The export is what emit --stdin took, line for line.
    let out = backend
        .events()
        .args(["replay", "--dry-run", "--since", "4h"])
        .run()
        .success();
    let exported: Vec<Value> = out.stdout_json_lines();
    let given: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported, given);

    backend
        .events()
        .args(["replay", "--since", "yesterday"])
        .run()
        .code(2)
        .stderr_has("--since \"yesterday\" is neither an RFC 3339 time");
    backend
        .events()
        .args(["replay", "--since", "1h", "--until", "2h"])
        .run()
        .code(2)
        .stderr_has("the window is empty");
}

fn replay_to_a_webhook_keeps_the_event_ids(backend: Backend) {
    let hook = Sink::start();
    let chat = Sink::start();
    let env = || slack(webhook(backend.events(), &hook), &chat);
    let now = ago(5);
    emit_lines(
        env(),
        &[
            line("01KREPLAY0000000000000000A", "user.signup", &now),
            line("01KREPLAY0000000000000000B", "import.completed", &now),
        ],
    );
    env().args(["work", "--burst"]).run().success();
    assert_eq!(hook.accepted_count(), 2);
    let slack_before = chat.accepted_count();

    // --to webhook: no Slack delivery, so no confirmation is needed.
    env()
        .args(["replay", "--since", "1h", "--to", "webhook"])
        .run()
        .success()
        .stderr_has("replayed 2 events (2 deliveries), skipped 0, failed 0");
    env().args(["work", "--burst"]).run().success();
    let requests = hook.wait_accepted(4, WAIT);
    let replayed = &requests[2..];
    assert_eq!(
        webhook_ids(replayed),
        ["01KREPLAY0000000000000000A", "01KREPLAY0000000000000000B"]
    );
    for request in replayed {
        assert_eq!(
            request.json()["id"].as_str(),
            request.header("webhook-id"),
            "the body keeps the id too"
        );
    }
    assert_eq!(
        chat.accepted_count(),
        slack_before,
        "--to webhook sent nothing to Slack"
    );
}

fn file_with_bad_lines_replays_the_good_ones_and_exits_2(backend: Backend) {
    let hook = Sink::start();
    let env = || webhook(backend.events(), &hook);
    let now = ago(1);
    let text = [
        line("evt-good-1", "user.signup", &now),
        "{not json".to_owned(),
        line("evt-typo", "user.sigup", &now),
        line("evt-good-2", "import.completed", &now),
        r#"{"id":"evt-missing","type":"import.completed","payload":{"email":"ada@example.com"}}"#
            .to_owned(),
        String::new(),
    ]
    .join("\n");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &text).unwrap();

    let out = env()
        .arg("replay")
        .arg("--file")
        .arg(file.path())
        .run()
        .code(2)
        .stderr_has("events: error: line 2: not a valid event")
        .stderr_has(
            "events: error: line 3: unknown event type 'user.sigup'; did you mean 'user.signup'?",
        )
        .stderr_has(
            "events: error: line 5: event type 'import.completed' requires field 'importer_name'",
        )
        .stderr_has("replayed 2 events (2 deliveries), skipped 0, failed 3");
    assert!(
        !out.stderr.contains("line 1:") && !out.stderr.contains("line 4:"),
        "{}",
        out.stderr
    );
    assert_eq!(status(env())["retries"]["scheduled"], 2);
    env().args(["work", "--burst"]).run().success();
    assert_eq!(webhook_ids(&hook.accepted()), ["evt-good-1", "evt-good-2"]);

    // The same from stdin, as an export would be piped back in.
    let out = env()
        .args(["replay", "--file", "-", "--dry-run"])
        .stdin(text)
        .run()
        .code(2);
    assert_eq!(ids(&out), ["evt-good-1", "evt-good-2"]);
    out.stderr_has("would replay 2 events (2 deliveries), skipped 0, failed 3");
}

fn dry_run_writes_nothing(backend: Backend) {
    let hook = Sink::start();
    hook.set_default(Reply::status(404, "not_found"));
    let env = || webhook(backend.events(), &hook);
    let now = ago(1);
    emit_lines(
        env(),
        &[
            line("evt-a", "user.signup", &now),
            line("evt-b", "user.signup", &now),
        ],
    );
    env().args(["work", "--burst"]).run().success();

    let out = env()
        .args(["replay", "--dead", "--dry-run"])
        .run()
        .success();
    assert_eq!(
        sorted(ids(&out)),
        ["evt-a", "evt-b"],
        "dead letters come in delivery order"
    );
    out.stderr_has("would replay 2 events (2 deliveries), skipped 0, failed 0");
    let out = env()
        .args(["replay", "--since", "1h", "--dry-run"])
        .run()
        .success();
    assert_eq!(ids(&out), ["evt-a", "evt-b"]);

    let st = status(env());
    assert_eq!(st["retries"]["scheduled"], 0, "{st:#}");
    assert_eq!(st["dead"]["total"], 2, "{st:#}");
    // -q: the export alone, no summary.
    let out = env()
        .args(["-q", "replay", "--dead", "--dry-run"])
        .run()
        .success();
    assert_eq!(out.stderr, "");
    assert_eq!(sorted(ids(&out)), ["evt-a", "evt-b"]);
}

fn slack_replay_needs_yes_when_not_on_a_terminal(backend: Backend) {
    let chat = Sink::start();
    let env = || slack(backend.events(), &chat);
    let now = ago(1);
    emit_lines(
        env(),
        &[
            line("evt-a", "user.signup", &now),
            line("evt-b", "user.signup", &now),
        ],
    );

    let out = env().args(["replay", "--since", "1h"]).run().code(2);
    out.stderr_has("events: error: this would post 2 events to chat destinations (slack) again")
        .stderr_has("pass --yes");
    assert_eq!(
        status(env())["retries"]["scheduled"],
        0,
        "nothing was enqueued"
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), line("evt-c", "user.signup", &now)).unwrap();
    env()
        .arg("replay")
        .arg("--file")
        .arg(file.path())
        .run()
        .code(2)
        .stderr_has("pass --yes");
    assert_eq!(
        status(env())["retries"]["scheduled"],
        0,
        "nothing was enqueued"
    );

    // A replay that posts nothing to Slack needs no confirmation.
    let nothing = env()
        .args(["replay", "--since", "1h", "--type", "import.*"])
        .run()
        .success();
    nothing.stderr_has("replayed 0 events (0 deliveries)");

    env()
        .args(["replay", "--since", "1h", "--yes"])
        .run()
        .success()
        .stderr_has("replayed 2 events (2 deliveries)");
    assert_eq!(status(env())["retries"]["scheduled"], 2);
}

fn since_takes_a_minus_duration_and_refuses_the_future(backend: Backend) {
    let lines = [
        line("evt-old", "user.signup", &ago(30)),
        line("evt-new", "user.signup", &ago(2)),
    ];
    emit_lines(backend.events(), &lines);
    let dry = |since: &str| {
        ids(&backend
            .events()
            .args(["replay", "--dry-run", "--since", since])
            .run()
            .success())
    };
    assert_eq!(dry("-5m"), ["evt-new"], "-5m is five minutes ago");
    assert_eq!(dry("-5m"), dry("5m"));
    backend
        .events()
        .args(["replay", "--dry-run", "--since", "1h", "--until", "-5m"])
        .run()
        .success()
        .stdout_has("evt-old")
        .stdout_lacks("evt-new");
    backend
        .events()
        .args(["replay", "--dry-run", "--since", "2099-01-01T00:00:00Z"])
        .run()
        .code(2)
        .stderr_has("--since 2099-01-01T00:00:00Z is in the future");
}

/// A replay that fails prints no summary of work it did not do: only the
/// error, saying exactly what was scheduled.
#[test]
fn a_failed_replay_prints_no_summary_only_what_was_scheduled() {
    let backend = Backend::redis();
    let sink = Sink::start();
    let lines: Vec<String> = (0..5)
        .map(|n| line(&format!("evt-{n}"), "user.signup", &ago(10)))
        .collect();
    emit_lines(backend.events(), &lines);
    let Backend::Redis { server, .. } = &backend else {
        unreachable!()
    };
    // Reads still work; every write is refused.
    server.cli(&["CONFIG", "SET", "maxmemory", "1"]);
    let out = webhook(backend.events(), &sink)
        .args(["replay", "--since", "1h"])
        .run()
        .code(1);
    assert!(!out.stderr.contains("replayed"), "{}", out.stderr);
    assert!(
        out.stderr.starts_with(
            "events: error: replay stopped before anything was scheduled for delivery\n"
        ),
        "{}",
        out.stderr
    );
    server.cli(&["CONFIG", "SET", "maxmemory", "0"]);
    webhook(backend.events(), &sink)
        .args(["replay", "--since", "1h"])
        .run()
        .success()
        .stderr_has("replayed 5 events (5 deliveries), skipped 0, failed 0");

    // Dead letters alike.
    sink.set_default(Reply::status(404, "channel_not_found"));
    webhook(backend.events(), &sink)
        .args(["work", "--burst"])
        .run()
        .success();
    server.cli(&["CONFIG", "SET", "maxmemory", "1"]);
    let out = webhook(backend.events(), &sink)
        .args(["replay", "--dead"])
        .run()
        .code(1);
    assert!(!out.stderr.contains("replayed"), "{}", out.stderr);
    assert!(
        out.stderr.starts_with(
            "events: error: replay stopped before anything was scheduled for delivery\n"
        ),
        "{}",
        out.stderr
    );
}

/// A replay schedules a chunk of deliveries with one `ZADD` per destination
/// and one `HSET`, not a command per delivery, and every delivery is there.
#[test]
fn a_replay_schedules_each_chunk_with_one_write_per_key() {
    let backend = Backend::redis();
    let sink = Sink::start();
    let lines: Vec<String> = (0..2500)
        .map(|n| line(&format!("evt-{n}"), "user.signup", &ago(10)))
        .collect();
    emit_lines(backend.events(), &lines);
    let Backend::Redis { server, .. } = &backend else {
        unreachable!()
    };
    server.cli(&["CONFIG", "RESETSTAT"]);
    webhook(backend.events(), &sink)
        .args(["replay", "--since", "1h"])
        .run()
        .success()
        .stderr_has("replayed 2500 events (2500 deliveries)");
    let stats = server.cli(&["INFO", "commandstats"]);
    let calls = |name: &str| -> u64 {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:calls=")))
            .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
    };
    // Chunks of 1,000 deliveries: three of them.
    assert_eq!((calls("zadd"), calls("hset")), (3, 3), "{stats}");
    assert_eq!(
        server.cli(&["ZCARD", "{events}:retry:webhook"]).trim(),
        "2500"
    );
    assert_eq!(server.cli(&["HLEN", "{events}:deliveries"]).trim(), "2500");
    let body = server.cli(&["HGET", "{events}:deliveries", "evt-1234|webhook"]);
    let delivery: Value = serde_json::from_str(body.trim()).expect("a delivery");
    assert_eq!(delivery["event"]["id"], "evt-1234");
    assert_eq!(delivery["dest"], "webhook");
}
