//! Postgres wakes its workers at commit: the stream's insert trigger
//! notifies the schema's channel, and a blocked read waits on it instead of
//! looking for new rows every few milliseconds.

use std::thread;
use std::time::{Duration, Instant};

use events::queue::QueueOptions;
use events::queue::postgres::PostgresQueue;
use postgres::fallible_iterator::FallibleIterator;

use crate::support::{Events, OwnPostgres, PostgresServer, Sink, WEBHOOK_SECRET};

/// One notification per statement (10,000 rows send one), delivered at
/// commit: a rolled-back insert sends nothing.
#[test]
fn an_insert_notifies_the_schema_channel_once_at_commit() {
    let server = PostgresServer::shared();
    let schema = server.fresh_schema();
    PostgresQueue::open(&server.url(), &schema, QueueOptions::default()).unwrap();
    let channel = format!("{schema}_stream");
    let mut listener = server.client(&schema);
    listener
        .batch_execute(&format!("LISTEN {channel}"))
        .unwrap();
    let mut writer = server.client(&schema);
    let insert = "INSERT INTO stream (type, payload)
         SELECT 'user.signup', '{\"email\": \"a@b.c\"}' FROM generate_series(1, 10000)";
    let mut tx = writer.transaction().unwrap();
    tx.batch_execute(insert).unwrap();
    tx.rollback().unwrap();
    writer.batch_execute(insert).unwrap();
    writer
        .batch_execute(&format!("NOTIFY {channel}, 'marker'"))
        .unwrap();
    let mut seen = Vec::new();
    let mut notifications = listener.notifications();
    let mut waiting = notifications.timeout_iter(Duration::from_secs(10));
    while let Some(n) = waiting.next().unwrap() {
        if n.payload() == "marker" {
            break;
        }
        seen.push(n.channel().to_owned());
    }
    assert_eq!(seen, vec![channel]);
}

fn worker(server: &OwnPostgres, schema: &str, sink: &Sink) -> Events {
    Events::new()
        .env("EVENTS_POSTGRES_URL", server.url())
        .env("EVENTS_PG_SCHEMA", schema)
        .env("EVENTS_WEBHOOK_URL", sink.url())
        .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .args(["work"])
}

fn insert(server: &OwnPostgres, schema: &str, email: &str) {
    let mut client = postgres::Client::connect(&server.url(), postgres::NoTls).unwrap();
    client
        .execute(
            &format!("INSERT INTO {schema}.stream (type, payload) VALUES ('user.signup', $1)"),
            &[&format!("{{\"email\": \"{email}\"}}")],
        )
        .unwrap();
}

/// Waits until the server's log has `needle` `count` times.
fn wait_for_log(server: &OwnPostgres, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.log().matches(needle).count() < count {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in:\n{}",
            server.log()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// An idle worker sends no look for new rows every 20 ms (the server logs
/// every statement it gets), and what it does send (its claim, its retry
/// look, its read of the holds) is one statement each, neither prepared
/// first nor wrapped in a transaction; a commit is delivered at once, and
/// after the server restarts the worker listens again and delivers.
#[test]
fn an_idle_worker_waits_for_commits_and_listens_again_after_a_restart() {
    let mut server = OwnPostgres::start(|_| {}, &["log_statement=all"]);
    let schema = "wake";
    let listen = format!("LISTEN {schema}_stream");
    let sink = Sink::start();
    let _worker = worker(&server, schema, &sink).spawn();
    wait_for_log(&server, &listen, 1);
    let before = server.log().len();
    thread::sleep(Duration::from_secs(3));
    let idle = server.log()[before..].to_owned();
    let looks = idle.matches("SELECT EXISTS (SELECT 1 FROM stream").count();
    let statements = idle.matches("LOG:  ").count();
    assert!(looks <= 3, "{looks} looks in 3 s idle:\n{idle}");
    assert!(!idle.contains("START TRANSACTION"), "{idle}");
    // A prepared statement runs by its name (`execute s3`), an unprepared
    // one as `execute <unnamed>`.
    assert!(!idle.contains("execute s"), "{idle}");
    eprintln!("an idle worker sent {statements} statements in 3 s");

    insert(&server, schema, "a@b.c");
    let got = sink.wait_accepted(1, Duration::from_secs(5));
    assert_eq!(got[0].json()["payload"]["email"], "a@b.c");

    server.stop();
    thread::sleep(Duration::from_millis(500));
    server.start_again();
    wait_for_log(&server, &listen, 2);
    insert(&server, schema, "d@e.f");
    let got = sink.wait_accepted(2, Duration::from_secs(20));
    assert_eq!(got[1].json()["payload"]["email"], "d@e.f");
}

/// Events committed one at a time to a running worker cost one claim each:
/// after a claim that took every row it could see, the next waits for a
/// commit to be notified rather than asking the server again first.
#[test]
fn a_worker_claims_once_per_commit_it_is_woken_by() {
    let server = OwnPostgres::start(|_| {}, &["log_statement=all"]);
    let schema = "trickle";
    let sink = Sink::start();
    let _worker = worker(&server, schema, &sink).spawn();
    wait_for_log(&server, &format!("LISTEN {schema}_stream"), 1);
    let before = server.log().len();
    let n = 10;
    for i in 0..n {
        insert(&server, schema, &format!("u{i}@example.com"));
        sink.wait_accepted(i + 1, Duration::from_secs(5));
    }
    let log = server.log()[before..].to_owned();
    let claims = log.matches("WITH taken AS").count();
    // Every event took one claim; looking again at once after each took two.
    assert!(claims < 2 * n, "{claims} claims for {n} events:\n{log}");
    assert!(claims >= n, "{claims} claims for {n} events:\n{log}");
}
