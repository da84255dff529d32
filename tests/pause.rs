//! `events pause DEST` and `events resume DEST`: every worker stops sending
//! to a paused destination within about a second, its deliveries wait
//! without spending attempts while the others flow, and `resume` (or the
//! end of `--for`) sends each held delivery once, in order. `status`,
//! `inspect`, the metrics and `work --burst` say what is held.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::metrics::{free_addr, get, of_dest};
use crate::replay::{WEBHOOK_SECRET, status};
use crate::support::{Backend, Events, LONG, Sink, on_both_backends, signups, slack_lines};

on_both_backends!(
    a_paused_webhook_gets_nothing_from_any_worker_then_everything_once_in_order,
    a_pause_for_a_while_ends_by_itself,
    a_burst_worker_leaves_what_a_pause_holds_and_says_so,
);

fn env(backend: &Backend, hook: &Sink, chat: &Sink) -> impl Fn() -> Events {
    let (hook, chat) = (hook.url(), chat.url());
    move || {
        backend
            .events()
            .env("EVENTS_WEBHOOK_URL", &hook)
            .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("SLACK_WEBHOOK_URL", &chat)
    }
}

/// Waits until `done` holds, or [`LONG`] passes.
fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + LONG;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
    true
}

/// What `inspect --format json` says of the delivery to `name`.
fn delivery_to<'a>(inspected: &'a Value, name: &str) -> &'a Value {
    inspected["destinations"]
        .as_array()
        .and_then(|dests| dests.iter().find(|d| d["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {inspected:#}"))
}

/// The ids of the events the webhook accepted, in arrival order.
fn hook_ids(hook: &Sink) -> Vec<String> {
    hook.accepted()
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn a_paused_webhook_gets_nothing_from_any_worker_then_everything_once_in_order(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = env(&backend, &hook, &chat);
    env()
        .args(["pause", "webhook"])
        .run()
        .success()
        .stderr_has("paused webhook until `events resume`");
    let addr = free_addr();
    let workers: Vec<_> = ["w1", "w2"]
        .iter()
        .map(|name| {
            let mut work = env().args(["work", "--consumer", name, "--concurrency", "1"]);
            if *name == "w1" {
                work = work.args(["--metrics-addr", &addr]);
            }
            work.spawn()
        })
        .collect();
    for worker in &workers {
        assert!(
            worker.wait_for_stderr("webhook: held: paused by", LONG),
            "{}",
            worker.stderr_so_far()
        );
    }
    let ids: Vec<String> = (0..6)
        .map(|i| {
            let email = format!("user{i}@example.com");
            let out = env().args(["emit", "user.signup", "--email", &email]).run();
            out.success().stdout.trim().to_owned()
        })
        .collect();
    assert!(
        wait_until(|| slack_lines(&chat).len() == 6),
        "Slack gets every event"
    );
    assert!(
        wait_until(|| status(env())["held"][0]["waiting"] == 6),
        "{:#}",
        status(env())
    );
    assert_eq!(hook.request_count(), 0, "the paused webhook got nothing");
    let held = &status(env())["held"][0];
    assert_eq!(held["destination"], "webhook");
    assert_eq!(held["reason"], "paused");
    assert_eq!(held["until"], Value::Null);
    assert!(held["by"].as_str().unwrap().contains(" pid "), "{held}");
    env()
        .args(["status"])
        .run()
        .success()
        .stdout_has("Held: 1")
        .stdout_has("paused by ");
    let inspected = env()
        .args(["inspect", &ids[0], "--format", "json"])
        .run()
        .success()
        .stdout_json();
    let webhook = delivery_to(&inspected, "webhook");
    assert_eq!(webhook["state"], "held", "{inspected:#}");
    assert_eq!(
        webhook["attempts"],
        Value::Array(vec![]),
        "no attempt spent"
    );
    let (_, scrape) = get(&addr, "/metrics");
    assert_eq!(
        of_dest(&scrape, "events_paused", "webhook"),
        Some(1.0),
        "{scrape}"
    );
    assert_eq!(
        of_dest(&scrape, "events_paused", "slack"),
        Some(0.0),
        "{scrape}"
    );

    env()
        .args(["resume", "webhook"])
        .run()
        .success()
        .stderr_has("resumed webhook (paused since ");
    assert!(wait_until(|| hook.accepted_count() >= 6), "released");
    // Long enough for a second copy to arrive, were one sent.
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(hook_ids(&hook), ids, "each once, in order");
    let inspected = env()
        .args(["inspect", &ids[5], "--format", "json"])
        .run()
        .success()
        .stdout_json();
    let webhook = delivery_to(&inspected, "webhook");
    assert_eq!(webhook["state"], "delivered", "{inspected:#}");
    assert_eq!(webhook["attempts"].as_array().unwrap().len(), 1);
    for worker in workers {
        worker.signal("TERM");
        worker.wait(LONG).success();
    }
    env()
        .args(["resume", "webhook"])
        .run()
        .success()
        .stderr_has("webhook was not paused");
}

fn a_pause_for_a_while_ends_by_itself(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = env(&backend, &hook, &chat);
    env()
        .args(["pause", "webhook", "--for", "2s"])
        .run()
        .success()
        .stderr_has("paused webhook until 20");
    let worker = env().args(["work"]).spawn();
    env()
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .success();
    assert!(wait_until(|| slack_lines(&chat).len() == 1));
    assert!(
        wait_until(|| hook.accepted_count() == 1),
        "{}",
        worker.stderr_so_far()
    );
    assert!(
        worker.wait_for_stderr("webhook is no longer held", LONG),
        "held, then released by itself: {}",
        worker.stderr_so_far()
    );
    assert_eq!(status(env())["held"], Value::Array(vec![]));
    worker.signal("TERM");
    worker.wait(LONG).success();
}

fn a_burst_worker_leaves_what_a_pause_holds_and_says_so(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = env(&backend, &hook, &chat);
    env().args(["pause", "webhook"]).run().success();
    env()
        .args(["emit", "--stdin"])
        .stdin(signups(0..3))
        .run()
        .success();
    env()
        .args(["work", "--burst"])
        .timeout(LONG)
        .run()
        .success()
        .stderr_has("leaving 3 deliveries for webhook (held: paused by ");
    assert_eq!(slack_lines(&chat).len(), 3);
    assert_eq!(hook.request_count(), 0);
    env().args(["resume", "webhook"]).run().success();
    env()
        .args(["work", "--burst"])
        .timeout(LONG)
        .run()
        .success();
    assert_eq!(hook.accepted_count(), 3);
}

#[test]
fn unknown_names_and_absurd_durations_are_refused_with_the_reason() {
    let backend = Backend::sqlite();
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = env(&backend, &hook, &chat);
    env()
        .args(["pause", "webhok"])
        .run()
        .code(2)
        .stderr_has("events: error: pause webhok: no such destination (configured: ")
        .stderr_has("did you mean 'webhook'?");
    env()
        .args(["resume", "slak"])
        .run()
        .code(2)
        .stderr_has("did you mean 'slack'?");
    for (value, reason) in [
        ("0", "a pause of 0 would end at once"),
        ("-5m", "a pause cannot last a negative time"),
        ("99999999d", "at most a year (365d)"),
        ("soon", "expected a duration such as 30s, 15m, 2h or 1d"),
    ] {
        env()
            .args(["pause", "webhook", "--for", value])
            .run()
            .code(2)
            .stderr_has(reason);
    }
    env()
        .args(["resume", "slack"])
        .run()
        .success()
        .stderr_has("slack was not paused: nothing to resume");
    assert_eq!(status(env())["held"], Value::Array(vec![]));
}
