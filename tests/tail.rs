//! Tests of `tail`: a spawned `events tail` prints the events written while
//! it runs (and, with `--since`, those written before), filtered by type,
//! while a worker still delivers every one of them; SIGINT ends it with
//! exit 0. Every test runs on every backend; one is about Postgres alone.

use std::time::Duration;

use crate::replay::WEBHOOK_SECRET;
use crate::support::{Backend, Events, Sink, on_both_backends};

const WAIT: Duration = Duration::from_secs(10);

on_both_backends!(
    tail_prints_new_events_and_the_worker_still_delivers_them,
    tail_since_starts_from_history_as_json_lines,
);

fn webhook(backend: &Backend, sink: &Sink) -> Events {
    backend
        .events()
        .env("EVENTS_WEBHOOK_URL", sink.url())
        .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
}

fn emit(events: Events, args: &[&str]) -> String {
    let out = events.arg("emit").args(args).run().success();
    out.stdout.trim().to_owned()
}

fn tail_prints_new_events_and_the_worker_still_delivers_them(backend: Backend) {
    let sink = Sink::start();
    let env = || webhook(&backend, &sink);
    emit(env(), &["user.signup", "--email", "before@example.com"]);

    let tail = env().args(["tail", "--type", "user.*"]).spawn();
    assert!(tail.wait_for_stderr("following the events written to", WAIT));
    emit(env(), &["user.signup", "--email", "ada@example.com"]);
    emit(
        env(),
        &[
            "subscription.started",
            "--email",
            "ada@example.com",
            "--field",
            "plan=pro",
        ],
    );
    emit(env(), &["user.signup", "--email", "bob@example.com"]);
    assert!(
        tail.wait_for_stdout("bob@example.com", WAIT),
        "{}",
        tail.stdout_so_far()
    );

    // The tail took nothing from the workers: every event is delivered.
    env().args(["work", "--burst"]).run().success();
    assert_eq!(sink.accepted_count(), 4);

    tail.signal("INT");
    let out = tail.wait(WAIT).success();
    assert_eq!(
        out.stdout,
        "New signup: ada@example.com\nNew signup: bob@example.com\n"
    );
}

fn tail_since_starts_from_history_as_json_lines(backend: Backend) {
    let sink = Sink::start();
    let env = || webhook(&backend, &sink);
    let old = emit(env(), &["user.signup", "--email", "old@example.com"]);

    let tail = env()
        .args(["tail", "--since", "1h", "--format", "json"])
        .spawn();
    assert!(tail.wait_for_stdout(&old, WAIT), "{}", tail.stdout_so_far());
    let new = emit(env(), &["user.signup", "--email", "new@example.com"]);
    assert!(tail.wait_for_stdout(&new, WAIT), "{}", tail.stdout_so_far());

    tail.signal("INT");
    let out = tail.wait(WAIT).success();
    let lines = out.stdout_json_lines();
    let ids: Vec<&str> = lines.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [old.as_str(), new.as_str()]);
    assert_eq!(lines[1]["payload"]["email"], "new@example.com");
}

/// On Postgres a row's `seq` is drawn at its insert, not at its commit: a
/// transaction held open while a later one commits ends up below a row
/// `tail` already printed, and `tail` still prints it once.
#[test]
fn tail_on_postgres_prints_a_row_committed_after_a_later_one() {
    let backend = Backend::postgres();
    let sink = Sink::start();
    let env = || webhook(&backend, &sink);
    env().arg("migrate").run().success();
    let tail = env().args(["tail", "--format", "json"]).spawn();
    assert!(tail.wait_for_stderr("following the events written to", WAIT));

    let Backend::Postgres { server, schema } = &backend else {
        unreachable!()
    };
    let mut client = server.client(schema);
    let mut open = client.transaction().unwrap();
    open.execute(
        "INSERT INTO stream (id, type, payload) VALUES ('evt-slow', 'user.signup', '{\"email\": \"slow@example.com\"}')",
        &[],
    )
    .unwrap();
    let fast = emit(env(), &["user.signup", "--email", "fast@example.com"]);
    assert!(
        tail.wait_for_stdout(&fast, WAIT),
        "{}",
        tail.stdout_so_far()
    );
    open.commit().unwrap();
    assert!(
        tail.wait_for_stdout("evt-slow", WAIT),
        "the row committed last was missed: {}",
        tail.stdout_so_far()
    );
    let last = emit(env(), &["user.signup", "--email", "last@example.com"]);
    assert!(
        tail.wait_for_stdout(&last, WAIT),
        "{}",
        tail.stdout_so_far()
    );

    tail.signal("INT");
    let out = tail.wait(WAIT).success();
    let ids: Vec<String> = out
        .stdout_json_lines()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, [fast, "evt-slow".to_owned(), last]);
}
