//! Tests of `EVENTS_EMIT_REPLICAS` against a real primary and a real
//! replica (`REPLICAOF`): an emit waits until that many replicas hold the
//! event, and one they do not confirm in time still prints its id (it is on
//! the primary) but exits 1 naming how many confirmed.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Events, RedisServer};

const STREAM: &str = "{events}:stream";
/// A short wait for replicas that are not there, so failing emits end fast.
const SHORT_MS: &str = "50";

/// A primary with one replica that has finished its first sync, so `WAIT`
/// counts it.
fn primary_with_replica() -> (RedisServer, RedisServer) {
    // No delay before the first sync (5 s by default, to batch replicas).
    let primary = RedisServer::start_with(&["--repl-diskless-sync-delay", "0"]);
    let replica = RedisServer::start();
    replica.cli(&["REPLICAOF", "127.0.0.1", &primary.port().to_string()]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !primary
        .cli(&["INFO", "replication"])
        .contains("state=online")
    {
        assert!(
            Instant::now() < deadline,
            "the replica did not come online: {}",
            primary.cli(&["INFO", "replication"])
        );
        thread::sleep(Duration::from_millis(20));
    }
    (primary, replica)
}

fn xlen(server: &RedisServer) -> usize {
    server
        .cli(&["XLEN", STREAM])
        .parse()
        .expect("XLEN answers a number")
}

/// The `id` field of every entry of the stream, oldest first.
fn ids(server: &RedisServer) -> Vec<String> {
    let text = server.cli(&[
        "EVAL",
        "local out = {} for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do \
         for i = 1, #e[2], 2 do if e[2][i] == 'id' then table.insert(out, e[2][i + 1]) end end \
         end return out",
        "1",
        STREAM,
    ]);
    text.lines().map(str::to_owned).collect()
}

/// `events` on `server` asking for `replicas`, with a wait long enough for
/// a replica that is there to confirm on a loaded machine (a confirmed emit
/// returns as soon as it is confirmed; tests of replicas that never confirm
/// set a short wait).
fn durable(server: &RedisServer, replicas: &str) -> Events {
    Events::new()
        .env("REDIS_URL", server.url())
        .env("EVENTS_EMIT_REPLICAS", replicas)
        .env("EVENTS_EMIT_REPLICAS_TIMEOUT_MS", "5000")
}

fn signup(events: Events) -> Events {
    events
        .args(["emit", "user.signup", "--email", "a@example.com"])
        .arg("--plan")
        .arg("pro")
}

#[test]
fn an_emit_confirmed_by_the_replica_is_on_the_replica_when_it_returns() {
    let (primary, replica) = primary_with_replica();
    let outcome = signup(durable(&primary, "1")).run().success();
    let id = outcome.stdout.trim().to_owned();
    assert_eq!(ids(&primary), [id.as_str()]);
    assert_eq!(ids(&replica), [id], "the replica holds the event");
}

#[test]
fn an_emit_no_replica_confirms_prints_its_id_and_exits_1_naming_how_many_did() {
    let primary = RedisServer::start();
    let outcome = signup(durable(&primary, "1"))
        .env("EVENTS_EMIT_REPLICAS_TIMEOUT_MS", SHORT_MS)
        .run()
        .code(1)
        .stderr_has(
            "only 0 of 1 replicas confirmed the event within 50 ms: \
             it may be lost if the primary fails now",
        );
    let id = outcome.stdout.trim().to_owned();
    assert_eq!(
        ids(&primary),
        [id],
        "the event is on the primary, under the id printed"
    );
}

#[test]
fn an_emit_asking_for_more_replicas_than_answer_names_the_ones_that_did() {
    let (primary, replica) = primary_with_replica();
    // Long enough for the one replica to confirm on a loaded machine: the
    // wait always runs out, since the second replica does not exist.
    signup(durable(&primary, "2"))
        .env("EVENTS_EMIT_REPLICAS_TIMEOUT_MS", "3000")
        .run()
        .code(1)
        .stderr_has("only 1 of 2 replicas confirmed the event within 3000 ms");
    assert_eq!(xlen(&replica), 1, "the one replica holds it");
}

#[test]
fn an_idempotent_emit_not_confirmed_prints_the_id_that_stands() {
    let primary = RedisServer::start();
    let emit = || {
        signup(durable(&primary, "1"))
            .env("EVENTS_EMIT_REPLICAS_TIMEOUT_MS", SHORT_MS)
            .args(["--idempotency-key", "order-7"])
            .run()
            .code(1)
            .stderr_has("only 0 of 1 replicas confirmed the event")
    };
    let first = emit().stdout;
    let second = emit().stdout;
    assert_eq!(first, second, "the second emit names the first event");
    assert_eq!(ids(&primary), [first.trim().to_owned()]);
}

/// The process id of a running server.
fn pid(server: &RedisServer) -> String {
    let info = server.cli(&["INFO", "server"]);
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .expect("INFO server has process_id")
        .trim()
        .to_owned()
}

/// Stops (SIGSTOP) or resumes (SIGCONT) the process `pid`; a stopped
/// replica stays connected: a replica that lags.
fn signal(pid: &str, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), pid])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid}");
}

#[test]
fn a_retried_idempotent_emit_waits_for_the_first_event_to_be_replicated() {
    let (primary, replica) = primary_with_replica();
    let replica_pid = pid(&replica);
    signal(&replica_pid, "STOP");
    let emit = || {
        signup(durable(&primary, "1"))
            .env("EVENTS_EMIT_REPLICAS_TIMEOUT_MS", SHORT_MS)
            .args(["--idempotency-key", "order-8"])
            .run()
    };
    let first = emit().code(1).stdout;
    // The retry writes no event, yet must not report the first as held
    // by the replica while it is not.
    let retry = emit();
    signal(&replica_pid, "CONT");
    let retry = retry
        .code(1)
        .stderr_has("only 0 of 1 replicas confirmed the event");
    assert_eq!(retry.stdout, first);
    signup(durable(&primary, "1"))
        .args(["--idempotency-key", "order-8"])
        .run()
        .success()
        .stdout_is(&first);
    assert_eq!(ids(&replica), [first.trim().to_owned()]);
}

fn lines(n: usize) -> String {
    (0..n)
        .map(|i| {
            json!({"type": "user.signup", "payload": {"email": format!("u{i}@example.com")}})
                .to_string()
                + "\n"
        })
        .collect()
}

#[test]
fn emit_stdin_batches_confirmed_by_the_replica_are_all_on_it() {
    let (primary, replica) = primary_with_replica();
    durable(&primary, "1")
        .args(["emit", "--stdin"])
        .stdin(lines(2500))
        .run()
        .success();
    assert_eq!(xlen(&replica), 2500);
}

#[test]
fn emit_stdin_stops_at_the_first_batch_no_replica_confirms() {
    let primary = RedisServer::start();
    durable(&primary, "1")
        .env("EVENTS_EMIT_REPLICAS_TIMEOUT_MS", SHORT_MS)
        .args(["emit", "--stdin"])
        .stdin(lines(2500))
        .run()
        .code(1)
        .stdout_is("")
        .stderr_has("1000 events were written; the last 1000 are on the primary only")
        .stderr_has(
            "only 0 of 1 replicas confirmed the 1000 events within 50 ms: they may be lost",
        );
    assert_eq!(xlen(&primary), 1000, "the first batch, and no more");
}

#[test]
fn the_library_emitter_reports_unconfirmed_events_with_their_id() {
    use events::config::Global;
    use events::error::Error;
    use events::queue::{NotReplicated, QueueError};
    use events::setup::Setup;

    let primary = RedisServer::start();
    let url = primary.url();
    let env = |name: &str| match name {
        "REDIS_URL" => Some(url.clone()),
        "EVENTS_EMIT_REPLICAS" => Some("1".to_owned()),
        "EVENTS_EMIT_REPLICAS_TIMEOUT_MS" => Some(SHORT_MS.to_owned()),
        _ => None,
    };
    let config = Setup::load_with(&Global::default(), &env).unwrap();
    let mut emitter = events::Emitter::new(config).unwrap();
    let err = emitter
        .emit("user.signup", json!({"email": "a@example.com"}))
        .unwrap_err();
    let Error::Queue(QueueError::NotReplicated(NotReplicated {
        id: Some(id),
        count: 1,
        confirmed: 0,
        wanted: 1,
        timeout_ms: 50,
    })) = err
    else {
        panic!("not a NotReplicated with the id: {err:?}");
    };
    assert_eq!(ids(&primary), [id]);
}

#[test]
fn emit_replicas_on_the_embedded_store_is_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    signup(
        Events::new()
            .env("EVENTS_DB", &db)
            .env("EVENTS_EMIT_REPLICAS", "1"),
    )
    .run()
    .code(2)
    .stdout_is("")
    .stderr_has("EVENTS_EMIT_REPLICAS=1 needs Redis: the embedded SQLite store has no replicas");
}

#[test]
fn emit_replicas_out_of_bounds_is_refused_with_exit_2() {
    let primary = RedisServer::start();
    for (name, value, needle) in [
        (
            "EVENTS_EMIT_REPLICAS",
            "17",
            "EVENTS_EMIT_REPLICAS must be a whole number of replicas from 0 to 16, not \"17\"",
        ),
        (
            "EVENTS_EMIT_REPLICAS",
            "one",
            "EVENTS_EMIT_REPLICAS must be",
        ),
        (
            "EVENTS_EMIT_REPLICAS_TIMEOUT_MS",
            "0",
            "EVENTS_EMIT_REPLICAS_TIMEOUT_MS must be a whole number of milliseconds from 1 to 60000",
        ),
    ] {
        signup(
            Events::new()
                .env("REDIS_URL", primary.url())
                .env(name, value),
        )
        .run()
        .code(2)
        .stderr_has(needle);
    }
    assert_eq!(xlen(&primary), 0, "nothing written");
}

#[test]
fn emit_replicas_0_waits_for_none() {
    let primary = RedisServer::start();
    signup(durable(&primary, "0")).run().success();
    assert_eq!(xlen(&primary), 1);
}
