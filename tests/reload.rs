//! `SIGHUP` reloads a running worker's config file: templates, destinations
//! and routes apply to what it claims next, a broken file keeps the last
//! good one, a removed destination's deliveries wait in the queue, and a
//! delivery in flight finishes as it began.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{
    Backend, Events, Gate, LONG, Reply, Running, Sink, on_both_backends, slack_lines,
};

on_both_backends!(
    a_changed_template_applies_to_the_next_event,
    a_broken_file_keeps_the_last_good_config_until_fixed,
    a_destination_added_by_reload_gets_what_is_emitted_after,
    a_removed_destinations_retries_are_held_until_it_is_back,
    a_delivery_in_flight_finishes_with_the_message_it_began_with,
);

/// One Slack destination, `team`, with the signup template `template`.
fn one(template: &str) -> String {
    format!(
        r#"[[event]]
type = "user.signup"
template = "{template}"

[[destination]]
name = "team"
kind = "slack"
url_env = "SLACK_TEAM_URL"
rate = "unlimited"
"#
    )
}

/// A second Slack destination, `ops`, after `config`.
fn with_ops(config: &str) -> String {
    format!(
        r#"{config}
[[destination]]
name = "ops"
kind = "slack"
url_env = "SLACK_OPS_URL"
rate = "unlimited"
"#
    )
}

fn events(b: &Backend, home: &Path, team: &Sink, ops: &Sink) -> Events {
    b.events()
        .home(home)
        .env("SLACK_TEAM_URL", team.url())
        .env("SLACK_OPS_URL", ops.url())
}

/// Emits a signup from elsewhere: the producer does not read the worker's
/// config file, which a test may have broken.
fn emit(b: &Backend, _home: &Path, email: &str) {
    b.events()
        .args(["emit", "user.signup", "--email", email])
        .run()
        .success();
}

/// Writes `config` as the worker's `events.toml`.
fn write(home: &Path, config: &str) {
    std::fs::write(home.join("events.toml"), config).unwrap();
}

/// Sends SIGHUP and waits until the worker has said `needle` `n` times.
fn reload(worker: &Running, needle: &str, n: usize) {
    worker.signal("HUP");
    let deadline = Instant::now() + LONG;
    while worker.stderr_so_far().matches(needle).count() < n {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} #{n}:\n{}",
            worker.stderr_so_far()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

const RELOADED: &str = "events: reloaded the configuration";
const REFUSED: &str = "events: error: cannot reload the configuration, keeping the one in force";

fn a_changed_template_applies_to_the_next_event(b: Backend) {
    let home = tempfile::tempdir().unwrap();
    let (team, ops) = (Sink::start(), Sink::start());
    write(home.path(), &one("A: {email}"));
    let worker = events(&b, home.path(), &team, &ops).arg("work").spawn();
    emit(&b, home.path(), "ada@example.com");
    team.wait_accepted(1, LONG);
    write(home.path(), &one("B: {email}"));
    reload(&worker, RELOADED, 1);
    assert!(
        worker
            .stderr_so_far()
            .contains("reloaded the configuration: event types or templates changed"),
        "{}",
        worker.stderr_so_far()
    );
    emit(&b, home.path(), "bob@example.com");
    team.wait_accepted(2, LONG);
    assert_eq!(
        slack_lines(&team),
        ["A: ada@example.com", "B: bob@example.com"]
    );
}

fn a_broken_file_keeps_the_last_good_config_until_fixed(b: Backend) {
    let home = tempfile::tempdir().unwrap();
    let (team, ops) = (Sink::start(), Sink::start());
    let good = one("A: {email}");
    write(home.path(), &good);
    let worker = events(&b, home.path(), &team, &ops).arg("work").spawn();
    // Once it delivers, the worker is up and listens for SIGHUP.
    emit(&b, home.path(), "first@example.com");
    team.wait_accepted(1, LONG);
    let broken = [
        (format!("{good}\n[[destination]\n"), "events.toml:11:"),
        (
            format!("{good}\n[[destination]]\nname = \"x\"\nkind = \"pigeon\"\n"),
            "events.toml:13:",
        ),
        (
            good.replace(
                "rate = \"unlimited\"",
                "rate = \"unlimited\"\nwhen = \"payload.plan ==\"",
            ),
            "events.toml:10:",
        ),
    ];
    for (n, (text, place)) in broken.iter().enumerate() {
        write(home.path(), text);
        reload(&worker, REFUSED, n + 1);
        let said = worker.stderr_so_far();
        let line = said
            .lines()
            .filter(|l| l.starts_with(REFUSED))
            .nth(n)
            .unwrap();
        assert!(line.contains(place), "{place} not in {line}");
        emit(&b, home.path(), &format!("user{n}@example.com"));
        team.wait_accepted(n + 2, LONG);
    }
    assert_eq!(
        slack_lines(&team),
        [
            "A: first@example.com",
            "A: user0@example.com",
            "A: user1@example.com",
            "A: user2@example.com"
        ],
        "the last good config stays in force"
    );
    assert!(!worker.stderr_so_far().contains(RELOADED));
    write(home.path(), &one("B: {email}"));
    reload(&worker, RELOADED, 1);
    emit(&b, home.path(), "fixed@example.com");
    team.wait_accepted(5, LONG);
    assert_eq!(slack_lines(&team)[4], "B: fixed@example.com");
}

fn a_destination_added_by_reload_gets_what_is_emitted_after(b: Backend) {
    let home = tempfile::tempdir().unwrap();
    let (team, ops) = (Sink::start(), Sink::start());
    let config = one("{email}");
    write(home.path(), &config);
    let worker = events(&b, home.path(), &team, &ops).arg("work").spawn();
    emit(&b, home.path(), "before@example.com");
    team.wait_accepted(1, LONG);
    write(home.path(), &with_ops(&config));
    reload(&worker, RELOADED, 1);
    assert!(
        worker
            .stderr_so_far()
            .contains("reloaded the configuration: destinations added: ops"),
        "{}",
        worker.stderr_so_far()
    );
    emit(&b, home.path(), "after@example.com");
    team.wait_accepted(2, LONG);
    ops.wait_accepted(1, LONG);
    assert_eq!(slack_lines(&ops), ["after@example.com"]);
    assert_eq!(
        slack_lines(&team),
        ["before@example.com", "after@example.com"]
    );
}

fn a_removed_destinations_retries_are_held_until_it_is_back(b: Backend) {
    let home = tempfile::tempdir().unwrap();
    let (team, ops) = (Sink::start(), Sink::start());
    ops.set_default(Reply::status(500, "down"));
    let config = with_ops(&one("{email}"));
    write(home.path(), &config);
    let worker = events(&b, home.path(), &team, &ops)
        .env("EVENTS_MAX_ATTEMPTS", "10")
        .env("EVENTS_RETRY_BASE_MS", "2000")
        .arg("work")
        .spawn();
    emit(&b, home.path(), "ada@example.com");
    ops.wait_requests(1, LONG);
    write(home.path(), &one("{email}"));
    reload(&worker, RELOADED, 1);
    assert!(worker.stderr_so_far().contains("destinations removed: ops"));
    let tried = ops.request_count();
    // Past when the retry fell due (2 s at most): it is not claimed.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(ops.request_count(), tried, "not attempted while removed");
    let status = events(&b, home.path(), &team, &ops)
        .args(["status", "--format", "json"])
        .run()
        .success()
        .stdout_json();
    assert_eq!(status["dead"]["total"], 0, "not dead-lettered");
    assert_eq!(status["retries"]["scheduled"], 1, "still in the queue");
    assert_eq!(
        status["retries"]["not_configured"], 1,
        "held: not in config"
    );
    let table = events(&b, home.path(), &team, &ops)
        .arg("status")
        .run()
        .success();
    assert!(
        table.stdout.contains("held: destination not in config"),
        "{}",
        table.stdout
    );
    ops.set_default(Reply::ok());
    write(home.path(), &config);
    reload(&worker, RELOADED, 2);
    ops.wait_accepted(1, LONG);
    assert_eq!(slack_lines(&ops), ["ada@example.com"]);
    assert_eq!(slack_lines(&team), ["ada@example.com"]);
}

fn a_delivery_in_flight_finishes_with_the_message_it_began_with(b: Backend) {
    let home = tempfile::tempdir().unwrap();
    let (team, ops) = (Sink::start(), Sink::start());
    let gate = Gate::new();
    team.script(vec![Reply::ok().held(&gate)]);
    write(home.path(), &one("A: {email}"));
    let worker = events(&b, home.path(), &team, &ops).arg("work").spawn();
    emit(&b, home.path(), "ada@example.com");
    team.wait_requests(1, LONG);
    write(home.path(), &one("B: {email}"));
    reload(&worker, RELOADED, 1);
    gate.open();
    team.wait_accepted(1, LONG);
    emit(&b, home.path(), "bob@example.com");
    team.wait_accepted(2, LONG);
    assert_eq!(
        slack_lines(&team),
        ["A: ada@example.com", "B: bob@example.com"]
    );
    assert_eq!(team.request_count(), 2, "the held delivery was sent once");
}
