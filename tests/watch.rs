//! Tests of what `status` says about each destination over time: the
//! running totals every worker adds to (deliveries, "too many requests"
//! answers), a destination's rate limit (or `unlimited`), and
//! `status --watch` refreshing with deliveries per second until Ctrl-C, on
//! both backends, and through a queue that does not answer.

use std::time::Duration;

use serde_json::{Value, json};

use crate::replay::{WEBHOOK_SECRET, status};
use crate::support::{Backend, Events, Reply, Sink, on_both_backends};

const WAIT: Duration = Duration::from_secs(30);

const CONFIG: &str = r#"
[[destination]]
name = "hooks"
kind = "webhook"
url_env = "HOOK_URL"
secret_env = "HOOK_SECRET"

[[destination]]
name = "alerts"
kind = "slack"
url_env = "ALERTS_URL"
rate = "unlimited"
events = ["nothing.*"]
"#;

on_both_backends!(
    status_counts_deliveries_and_rate_limited_requests_of_every_worker,
    watch_shows_deliveries_per_second_and_stops_cleanly_on_ctrl_c,
);

/// `events` with the two destinations of [`CONFIG`], the webhook at `sink`.
fn events(backend: &Backend, config: &tempfile::NamedTempFile, sink: &Sink) -> Events {
    backend
        .events()
        .env("EVENTS_CONFIG", config.path())
        .env("HOOK_URL", sink.url())
        .env("HOOK_SECRET", WEBHOOK_SECRET)
        .env("ALERTS_URL", format!("{}/services/SECRET", sink.base_url()))
}

fn config() -> tempfile::NamedTempFile {
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), CONFIG).unwrap();
    config
}

fn emit(events: Events, n: usize) {
    let lines: String = (0..n)
        .map(|i| {
            format!(
                "{}\n",
                json!({"type": "user.signup", "payload": {"email": format!("u{i}@example.com")}})
            )
        })
        .collect();
    events
        .args(["emit", "--stdin"])
        .stdin(lines)
        .run()
        .success();
}

/// The destination named `name` in a `status --format json` object.
fn destination<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no destination {name} in {status:#}"))
}

fn status_counts_deliveries_and_rate_limited_requests_of_every_worker(backend: Backend) {
    let (config, sink) = (config(), Sink::start());
    let events = || events(&backend, &config, &sink);
    // Two "too many requests" answers, each waited out, then acceptance.
    sink.script(vec![
        Reply::status(429, "slow down").header("Retry-After", "1"),
        Reply::status(429, "slow down").header("Retry-After", "1"),
    ]);
    emit(events(), 3);
    events()
        .args(["work", "--burst", "--consumer", "w1"])
        .run()
        .success();
    // A second worker adds to the same totals.
    emit(events(), 2);
    events()
        .args(["work", "--burst", "--consumer", "w2"])
        .run()
        .success();

    let v = status(events());
    let hooks = destination(&v, "hooks");
    assert_eq!(hooks["delivered"], 5, "{hooks:#}");
    assert_eq!(hooks["rate_limited"], 2, "{hooks:#}");
    assert_eq!(hooks["rate"], Value::Null, "a webhook is unlimited");
    assert_eq!(
        hooks["per_second"],
        Value::Null,
        "only --watch measures a rate"
    );
    let alerts = destination(&v, "alerts");
    assert_eq!(
        alerts["rate"],
        Value::Null,
        "rate = \"unlimited\" lifts Slack's 1/s"
    );
    assert_eq!(alerts["delivered"], 0);

    let table = events().arg("status").run().success();
    table
        .stdout_has("NAME    KIND     RATE       DELIVERED  429S")
        .stdout_has("hooks   webhook  unlimited  5          2 ")
        .stdout_has("alerts  slack    unlimited  0          0 ")
        .stdout_lacks("SECRET");
}

fn watch_shows_deliveries_per_second_and_stops_cleanly_on_ctrl_c(backend: Backend) {
    let (config, sink) = (config(), Sink::start());
    let events = || events(&backend, &config, &sink);
    let watch = events()
        .args(["status", "--watch", "--format", "json"])
        .spawn();
    assert!(
        watch.wait_for_stdout("\"per_second\":null", WAIT),
        "the first reading has no rate yet: {}",
        watch.stderr_so_far()
    );
    emit(events(), 20);
    events()
        .args(["work", "--burst", "--consumer", "w1"])
        .run()
        .success();
    // The next reading after the deliveries counts them, at some rate.
    assert!(
        watch.wait_for_stdout("\"delivered\":20", WAIT),
        "{}",
        watch.stdout_so_far()
    );
    std::thread::sleep(Duration::from_millis(1500));
    watch.signal("INT");
    let out = watch.wait(WAIT).success();
    assert_eq!(out.stderr, "");
    let readings = out.stdout_json_lines();
    let rates: Vec<f64> = readings
        .iter()
        .filter_map(|r| destination(r, "hooks")["per_second"].as_f64())
        .collect();
    assert_eq!(
        rates.len(),
        readings.len() - 1,
        "every reading but the first has a rate"
    );
    assert!(
        rates.iter().any(|&r| r > 0.0),
        "20 deliveries between two readings show as a rate: {rates:?}"
    );
    let delivered = |r: &Value| destination(r, "hooks")["delivered"].as_u64().unwrap();
    assert_eq!(delivered(readings.last().unwrap()), 20);

    // The table, off a terminal: whole tables one after another, no escapes.
    let watch = events().args(["status", "--watch"]).spawn();
    assert!(
        watch.wait_for_stdout("/S", WAIT),
        "{}",
        watch.stdout_so_far()
    );
    watch.signal("INT");
    let out = watch.wait(WAIT).success();
    out.stdout_has("NAME    KIND     RATE       DELIVERED  /S")
        .stdout_has("Ctrl-C to stop")
        .stdout_lacks("\x1b");
}

#[test]
fn watch_keeps_watching_a_queue_that_does_not_answer() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let watch = Events::new()
        .env("REDIS_URL", format!("redis://:sekrit@127.0.0.1:{port}"))
        .args(["status", "--watch"])
        .spawn();
    assert!(
        watch.wait_for_stdout("The queue does not answer", WAIT),
        "{}{}",
        watch.stdout_so_far(),
        watch.stderr_so_far()
    );
    std::thread::sleep(Duration::from_millis(1500));
    watch.signal("INT");
    let out = watch.wait(WAIT).success();
    assert!(
        out.stdout.matches("The queue does not answer").count() >= 2,
        "it tried again: {}",
        out.stdout
    );
    out.stdout_lacks("sekrit").stdout_has("Still watching");
}
