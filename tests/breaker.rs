//! A circuit breaker per destination, shared by every worker: a receiver
//! that keeps failing gets about `after` requests and then one probe per
//! cooldown, not one per delivery; its deliveries wait without spending
//! attempts, nothing is dead-lettered, one `events.destination_down` alert
//! goes elsewhere, and once it answers again everything is delivered once.
//! Refusals (4xx) and 429s never open it; `breaker = "off"` keeps the
//! retries and dead letters of a destination without one.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::metrics::{free_addr, get, of_dest};
use crate::replay::status;
use crate::support::{
    Backend, Events, LONG, Reply, Running, Sink, WEBHOOK_SECRET, on_both_backends, signups,
    slack_lines, webhook_ids,
};

on_both_backends!(
    two_workers_send_a_failing_webhook_a_few_requests_and_probes_then_everything_once,
    refusals_never_open_the_breaker,
    a_429_is_the_rate_limiters_never_the_breakers,
    a_breaker_turned_off_retries_and_dead_letters_as_before,
    a_reload_that_turns_the_breaker_off_sends_what_it_held,
);

/// Consecutive failures that open the webhook's breaker in these tests.
const AFTER: usize = 5;
/// Lanes per worker sending to the webhook.
const CONCURRENCY: usize = 4;

/// The webhook `hook` with `breaker`, and Slack-like `ops` taking the
/// worker's own alerts.
fn config(breaker: &str) -> String {
    format!(
        r#"[[destination]]
name = "hook"
kind = "webhook"
rate = "unlimited"
breaker = {breaker}

[[destination]]
name = "ops"
kind = "slack"
url_env = "OPS_URL"
events = ["events.*"]
rate = "unlimited"
"#
    )
}

fn events(b: &Backend, home: &Path, hook: &Sink, ops: &Sink) -> Events {
    b.events()
        .home(home)
        .env("EVENTS_WEBHOOK_URL", hook.url())
        .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("OPS_URL", ops.url())
        // Enough attempts that nothing dies before the breaker opens.
        .env("EVENTS_MAX_ATTEMPTS", "20")
        .env_remove("EVENTS_ALERTS")
}

fn setup(breaker: &str) -> (tempfile::TempDir, Sink, Sink) {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("events.toml"), config(breaker)).unwrap();
    (home, Sink::start(), Sink::start())
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

/// How many times `needle` appears in every worker's log together.
fn said(workers: &[Running], needle: &str) -> usize {
    workers
        .iter()
        .map(|w| w.stderr_so_far().matches(needle).count())
        .sum()
}

fn logs(workers: &[Running]) -> String {
    workers
        .iter()
        .map(Running::stderr_so_far)
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// The event types the webhook was sent.
fn hook_types(hook: &Sink) -> Vec<String> {
    hook.requests()
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn two_workers_send_a_failing_webhook_a_few_requests_and_probes_then_everything_once(
    backend: Backend,
) {
    let (home, hook, ops) = setup("{ after = 5, cooldown = \"1s\" }");
    hook.set_default(Reply::status(503, "down for maintenance"));
    let env = || events(&backend, home.path(), &hook, &ops);
    let addr = free_addr();
    let workers: Vec<Running> = ["w1", "w2"]
        .iter()
        .map(|name| {
            let concurrency = CONCURRENCY.to_string();
            let mut work = env().args(["work", "--consumer", name, "--concurrency", &concurrency]);
            if *name == "w1" {
                work = work.args(["--metrics-addr", &addr]);
            }
            work.spawn()
        })
        .collect();
    env()
        .args(["emit", "--stdin"])
        .stdin(signups(0..199))
        .run()
        .success();
    let last = env()
        .args(["emit", "user.signup", "--email", "last@example.com"])
        .run()
        .success()
        .stdout
        .trim()
        .to_owned();
    // Two probes fail: the breaker opened, cooled down, opened again twice.
    assert!(
        wait_until(|| said(&workers, "the probe failed") >= 2),
        "{}",
        logs(&workers)
    );
    let probes = said(&workers, "sending one probe");
    let during = hook.request_count();
    // Each worker stops at `after` failures in a row, with what its lanes
    // had on their way (18 in all here, with the probes); a worker that
    // reads the queue before the opening is written may send a few more.
    let bound = 2 * AFTER + 2 * 2 * CONCURRENCY + probes;
    assert!(
        during <= bound,
        "{during} requests during the outage (at most {bound} expected): {}",
        logs(&workers)
    );
    assert_eq!(
        said(&workers, "breaker open until"),
        1,
        "{}",
        logs(&workers)
    );
    let now = status(env());
    assert_eq!(now["dead"]["total"], 0, "nothing dead-lettered: {now:#}");
    let breaker = &now["breakers"][0];
    assert_eq!(breaker["destination"], "hook", "{now:#}");
    assert!(
        breaker["state"] == "open" || breaker["state"] == "probing",
        "{now:#}"
    );
    assert!(
        breaker["failures"].as_u64().unwrap() >= AFTER as u64,
        "{now:#}"
    );
    assert!(breaker["waiting"].as_u64().unwrap() > 0, "{now:#}");
    assert_eq!(now["held"][0]["reason"], "breaker", "{now:#}");
    let inspected = env()
        .args(["inspect", &last, "--format", "json"])
        .run()
        .success()
        .stdout_json();
    let to_hook = inspected["destinations"]
        .as_array()
        .and_then(|dests| dests.iter().find(|d| d["name"] == "hook"))
        .unwrap_or_else(|| panic!("no hook in {inspected:#}"));
    assert_eq!(to_hook["state"], "held", "{inspected:#}");
    let why = to_hook["held"]["why"].as_str().unwrap_or_default();
    assert!(why.starts_with("breaker "), "{inspected:#}");
    env()
        .args(["status"])
        .run()
        .success()
        .stdout_has("Breakers: 1")
        .stdout_has("breaker ");
    let (_, scrape) = get(&addr, "/metrics");
    assert_eq!(
        of_dest(&scrape, "events_breaker_open", "hook"),
        Some(1.0),
        "{scrape}"
    );
    assert_eq!(
        of_dest(&scrape, "events_breaker_open", "ops"),
        Some(0.0),
        "{scrape}"
    );

    // The alert: one, to ops, never to the webhook it is about.
    let alerts = |ops: &Sink| {
        slack_lines(ops)
            .into_iter()
            .filter(|l| l.starts_with("Destination down: hook"))
            .count()
    };
    assert!(
        wait_until(|| alerts(&ops) >= 1),
        "{:?} {}",
        slack_lines(&ops),
        logs(&workers)
    );
    assert!(
        slack_lines(&ops)[0].contains("HTTP 503")
            && slack_lines(&ops)[0].ends_with("holding deliveries"),
        "{:?}",
        slack_lines(&ops)
    );
    assert!(!hook_types(&hook).iter().any(|t| t.starts_with("events.")));

    // It recovers: the next probe closes it, and the backlog drains.
    hook.set_default(Reply::ok());
    assert!(
        wait_until(|| webhook_ids(&hook).len() == 200),
        "{} delivered: {}",
        webhook_ids(&hook).len(),
        logs(&workers)
    );
    // Long enough for a second copy to arrive, were one sent.
    thread::sleep(Duration::from_millis(1500));
    let ids = webhook_ids(&hook);
    assert!(ids.values().all(|&n| n == 1), "each once: {ids:?}");
    assert_eq!(
        alerts(&ops),
        1,
        "one alert per opening: {:?}",
        slack_lines(&ops)
    );
    assert_eq!(said(&workers, "breaker closed"), 1, "{}", logs(&workers));
    let after = status(env());
    assert_eq!(after["dead"]["total"], 0, "{after:#}");
    assert_eq!(after["breakers"], Value::Array(vec![]), "{after:#}");
    assert!(
        wait_until(|| {
            let (_, scrape) = get(&addr, "/metrics");
            of_dest(&scrape, "events_breaker_open", "hook") == Some(0.0)
        }),
        "the metric says closed"
    );
    for worker in workers {
        worker.signal("TERM");
        worker.wait(LONG).success();
    }
    eprintln!("breaker figures: {during} requests during the outage, {probes} probes");
}

fn refusals_never_open_the_breaker(backend: Backend) {
    let (home, hook, ops) = setup("{ after = 3, cooldown = \"1s\" }");
    hook.set_default(Reply::status(400, "bad request"));
    let env = || events(&backend, home.path(), &hook, &ops);
    env()
        .args(["emit", "--stdin"])
        .stdin(signups(0..12))
        .run()
        .success();
    let out = env()
        .args(["work", "--burst", "--concurrency", "1"])
        .run()
        .success();
    assert!(!out.stderr.contains("breaker"), "{}", out.stderr);
    assert_eq!(
        hook.request_count(),
        12,
        "every delivery tried once, then dead"
    );
    let now = status(env());
    assert_eq!(now["dead"]["total"], 12, "{now:#}");
    assert_eq!(now["breakers"], Value::Array(vec![]), "{now:#}");
}

fn a_429_is_the_rate_limiters_never_the_breakers(backend: Backend) {
    let (home, hook, ops) = setup("{ after = 3, cooldown = \"1s\" }");
    let busy = Reply::status(429, "slow down").header("Retry-After", "0");
    hook.script(vec![busy; 4]);
    let env = || events(&backend, home.path(), &hook, &ops);
    env()
        .args(["emit", "--stdin"])
        .stdin(signups(0..4))
        .run()
        .success();
    let out = env()
        .args(["work", "--burst", "--concurrency", "1"])
        .run()
        .success();
    assert!(!out.stderr.contains("breaker"), "{}", out.stderr);
    assert_eq!(hook.request_count(), 8, "four 429s, then each once");
    assert_eq!(webhook_ids(&hook).len(), 4);
    assert!(
        slack_lines(&ops).is_empty(),
        "no alert: {:?}",
        slack_lines(&ops)
    );
    assert_eq!(status(env())["breakers"], Value::Array(vec![]));
}

fn a_breaker_turned_off_retries_and_dead_letters_as_before(backend: Backend) {
    let (home, hook, ops) = setup("\"off\"");
    hook.set_default(Reply::status(503, "down"));
    let env = || events(&backend, home.path(), &hook, &ops).env("EVENTS_MAX_ATTEMPTS", "2");
    env()
        .args(["emit", "--stdin"])
        .stdin(signups(0..10))
        .run()
        .success();
    let out = env()
        .args(["work", "--burst", "--concurrency", "1"])
        .run()
        .success();
    assert!(!out.stderr.contains("breaker"), "{}", out.stderr);
    assert_eq!(hook.request_count(), 20, "each delivery tried twice");
    let now = status(env());
    assert_eq!(now["dead"]["total"], 10, "{now:#}");
    assert_eq!(now["breakers"], Value::Array(vec![]), "{now:#}");
    assert!(
        slack_lines(&ops)
            .iter()
            .all(|l| !l.starts_with("Destination down")),
        "{:?}",
        slack_lines(&ops)
    );
}

#[test]
fn absurd_breaker_settings_are_exit_2_naming_file_and_line() {
    let redis = crate::support::RedisServer::start();
    for (breaker, expected) in [
        (
            "\"on\"",
            "events.toml:5: breaker: expected \"off\" or a table",
        ),
        (
            "{ after = 0 }",
            "events.toml:5: breaker: after must be a whole number of failures from 1 to 10000",
        ),
        (
            "{ cooldown = \"2h\" }",
            "events.toml:5: breaker: cooldown \"2h\" must be from 1s to 10m",
        ),
        (
            "{ cooldown = \"soon\" }",
            "events.toml:5: breaker: cooldown \"soon\" is not a duration",
        ),
        (
            "{ afer = 3 }",
            "events.toml:5: breaker: unknown breaker setting `afer`",
        ),
    ] {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("events.toml"), config(breaker)).unwrap();
        let out = Events::new()
            .home(home.path())
            .env("REDIS_URL", redis.url())
            .env("EVENTS_WEBHOOK_URL", "http://127.0.0.1:9/")
            .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("OPS_URL", "http://127.0.0.1:9/")
            .args(["work", "--burst"])
            .run()
            .code(2);
        assert!(
            out.stderr.contains(expected),
            "{breaker}: expected {expected:?} in {}",
            out.stderr
        );
        assert!(out.stderr.starts_with("events: error: "), "{}", out.stderr);
    }
}

/// A breaker open for ten minutes, turned off by a reload (`SIGHUP`): what it
/// held is sent at once, each event once, without waiting out the cooldown.
fn a_reload_that_turns_the_breaker_off_sends_what_it_held(backend: Backend) {
    let (home, hook, ops) = setup("{ after = 3, cooldown = \"10m\" }");
    hook.set_default(Reply::status(503, "down for maintenance"));
    let env = || events(&backend, home.path(), &hook, &ops);
    let worker = env().args(["work", "--consumer", "w1"]).spawn();
    env()
        .args(["emit", "--stdin"])
        .stdin(signups(0..20))
        .run()
        .success();
    assert!(
        wait_until(|| status(env())["breakers"][0]["state"] == "open"),
        "{}",
        worker.stderr_so_far()
    );
    hook.set_default(Reply::ok());
    std::fs::write(home.path().join("events.toml"), config("\"off\"")).unwrap();
    worker.signal("HUP");
    assert!(
        wait_until(|| webhook_ids(&hook).len() == 20),
        "{:?}\n{}",
        webhook_ids(&hook),
        worker.stderr_so_far()
    );
    assert!(webhook_ids(&hook).values().all(|&n| n == 1));
    assert!(
        worker
            .stderr_so_far()
            .contains("reloaded the configuration"),
        "{}",
        worker.stderr_so_far()
    );
    worker.signal("TERM");
    worker.wait(LONG).success();
    assert_eq!(status(env())["dead"]["total"], 0);
}
