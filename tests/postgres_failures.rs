//! The Postgres backend under failure: workers SIGKILLed under load and
//! restarted, the server itself stopped at once (`pg_ctl stop -m
//! immediate`) while a producer emits and a worker delivers, and two
//! workers sharing a stream. Every committed event is delivered at least
//! once; duplicates come only from what a killed worker held.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use events::event::Event;
use events::queue::postgres::PostgresQueue;
use events::queue::{Producer, QueueOptions};

use crate::support::{
    Backend, Events, LONG, OwnPostgres, Reply, Running, Sink, WEBHOOK_SECRET, signups, webhook_ids,
};

/// Events emitted by the load tests.
const N: usize = 2000;

fn webhook(events: Events, sink: &Sink) -> Events {
    events
        .env("EVENTS_WEBHOOK_URL", sink.url())
        .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("EVENTS_ALERTS", "0")
}

/// A worker named `name` (so a restart takes back what it held at once).
fn worker(backend: &Backend, sink: &Sink, name: &str) -> Running {
    webhook(backend.events(), sink)
        .env("EVENTS_CLAIM_LEASE_MS", "10000")
        .args(["work", "--concurrency", "4", "--consumer", name])
        .spawn()
}

/// The ids of every event in the stream: what was committed.
fn committed_ids(backend: &Backend) -> BTreeSet<String> {
    let Backend::Postgres { server, schema } = backend else {
        unreachable!()
    };
    let mut client = server.client(schema);
    client
        .query("SELECT id FROM stream", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// The ids of the rows `name` claimed and has not settled.
fn held_by(backend: &Backend, name: &str) -> BTreeSet<String> {
    let Backend::Postgres { server, schema } = backend else {
        unreachable!()
    };
    server
        .client(schema)
        .query(
            "SELECT id FROM stream WHERE state = 1 AND consumer = $1",
            &[&name],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Waits until `sink` accepted at least `n` requests.
fn wait_accepted(sink: &Sink, n: usize) {
    let deadline = Instant::now() + LONG;
    while sink.accepted_count() < n {
        assert!(
            Instant::now() < deadline,
            "stuck at {}",
            sink.accepted_count()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until every id of `ids` was delivered.
fn wait_delivered(sink: &Sink, ids: &BTreeSet<String>, workers: &[Running]) {
    let deadline = Instant::now() + LONG;
    loop {
        let got = webhook_ids(sink);
        let missing = ids.iter().filter(|id| !got.contains_key(*id)).count();
        if missing == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} committed events were never delivered; workers said:\n{}",
            workers
                .iter()
                .map(Running::stderr_so_far)
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn workers_killed_under_load_lose_nothing_and_resend_only_what_they_held() {
    let backend = Backend::postgres();
    let sink = Sink::start();
    sink.set_default(Reply::ok().delay(Duration::from_millis(20)));
    backend
        .events()
        .args(["emit", "--stdin"])
        .stdin(signups(0..N))
        .run()
        .success();
    let ids = committed_ids(&backend);
    assert_eq!(ids.len(), N);

    let mut workers = [worker(&backend, &sink, "w1"), worker(&backend, &sink, "w2")];
    // What a killed worker had sent but not settled: all it may resend.
    let mut unsettled = BTreeSet::new();
    let mut killed_holding = 0;
    // One killed, then both, then the other: each restarted at once.
    for (at, killed) in [(300, &[0][..]), (800, &[0, 1]), (1300, &[1])] {
        wait_accepted(&sink, at);
        for &i in killed {
            workers[i].kill();
        }
        // A reply the receiver was still writing is counted by now.
        thread::sleep(Duration::from_millis(200));
        let sent = webhook_ids(&sink);
        for &i in killed {
            // A worker restarted just before may hold nothing yet (the
            // other one claims a whole window at once): the run as a whole
            // must have killed workers holding events.
            let held = held_by(&backend, &format!("w{}", i + 1));
            killed_holding += held.len();
            unsettled.extend(held.into_iter().filter(|id| sent.contains_key(id)));
            workers[i] = worker(&backend, &sink, &format!("w{}", i + 1));
        }
    }
    assert!(killed_holding > 0, "no worker was killed holding events");
    wait_delivered(&sink, &ids, &workers);
    for w in workers {
        w.signal("TERM");
        w.wait(LONG).success();
    }

    let got = webhook_ids(&sink);
    let unknown: Vec<_> = got.keys().filter(|id| !ids.contains(*id)).collect();
    assert!(
        unknown.is_empty(),
        "delivered but never emitted: {unknown:?}"
    );
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.iter().all(|(id, _)| unsettled.contains(*id)),
        "sent twice but not held unsettled by a killed worker: {twice:?}"
    );
    assert!(held_by(&backend, "w1").is_empty() && held_by(&backend, "w2").is_empty());
}

#[test]
fn two_workers_share_the_stream_and_send_nothing_twice() {
    let backend = Backend::postgres();
    let sink = Sink::start();
    sink.set_default(Reply::ok().delay(Duration::from_millis(2)));
    backend
        .events()
        .args(["emit", "--stdin"])
        .stdin(signups(0..N))
        .run()
        .success();
    let ids = committed_ids(&backend);
    let workers = [worker(&backend, &sink, "w1"), worker(&backend, &sink, "w2")];
    wait_delivered(&sink, &ids, &workers);
    for w in workers {
        w.signal("TERM");
        w.wait(LONG).success();
    }
    let got = webhook_ids(&sink);
    assert_eq!(got.len(), N);
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
}

/// Emits one event at a time until `done`, recording the ids of the emits
/// that returned Ok; a failed emit (the server is down) is not retried.
/// Returns how many failed.
fn producer(url: String, done: Arc<AtomicBool>, ok: Arc<Mutex<Vec<String>>>) -> usize {
    let options = QueueOptions {
        timeout: Some(Duration::from_secs(1)),
        ..QueueOptions::default()
    };
    let mut queue = PostgresQueue::open(&url, "events", options).unwrap();
    let (mut n, mut failed) = (0, 0);
    while !done.load(Ordering::SeqCst) {
        n += 1;
        let payload = serde_json::json!({ "email": format!("p{n}@example.com") });
        let event = Event::new("user.signup", serde_json::from_value(payload).unwrap());
        match queue.append(std::slice::from_ref(&event)) {
            Ok(()) => ok.lock().unwrap().push(event.id),
            Err(_) => {
                failed += 1;
                thread::sleep(Duration::from_millis(20));
            }
        }
        thread::sleep(Duration::from_millis(5));
    }
    failed
}

/// Waits until the producer has had `n` emits return Ok.
fn wait_emitted(ok: &Mutex<Vec<String>>, n: usize) {
    let deadline = Instant::now() + LONG;
    while ok.lock().unwrap().len() < n {
        assert!(Instant::now() < deadline, "the producer is stuck");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn an_immediate_stop_of_the_server_loses_no_committed_event() {
    // Every commit waits for its WAL write, so a commit that returned
    // survives the immediate stop (the shared server runs without).
    let mut server = OwnPostgres::start(|_| {}, &["synchronous_commit=on"]);
    let sink = Sink::start();
    let events = || webhook(Events::new(), &sink).env("EVENTS_POSTGRES_URL", server.url());
    events().arg("migrate").run().success();
    let worker = events().args(["work", "--consumer", "w"]).spawn();

    let done = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(Mutex::new(Vec::new()));
    let producing = {
        let (url, done, ok) = (server.url(), Arc::clone(&done), Arc::clone(&ok));
        thread::spawn(move || producer(url, done, ok))
    };
    wait_emitted(&ok, 100);
    wait_accepted(&sink, 50);
    server.stop();
    assert!(
        worker.wait_for_stderr("waiting for it and retrying", LONG),
        "{}",
        worker.stderr_so_far()
    );
    let before = ok.lock().unwrap().len();
    thread::sleep(Duration::from_millis(500));
    server.start_again();
    wait_emitted(&ok, before + 100);
    done.store(true, Ordering::SeqCst);
    let failed = producing.join().unwrap();
    assert!(
        failed > 0,
        "the producer was emitting while the server was down"
    );

    let ids: BTreeSet<String> = ok.lock().unwrap().iter().cloned().collect();
    let workers = [worker];
    wait_delivered(&sink, &ids, &workers);
    let [worker] = workers;
    assert!(
        worker.wait_for_stderr("reachable again", LONG),
        "{}",
        worker.stderr_so_far()
    );
    worker.signal("TERM");
    worker.wait(LONG).success();
}
