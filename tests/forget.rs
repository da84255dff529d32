//! Tests of `forget`: one person's events erased from every place a real
//! `work --burst` left them (history, retry set and bodies, dead letters,
//! attempt records, idempotency keys), read back as raw bytes: every key
//! under the prefix on Redis, the database files on SQLite, every row of
//! every table of the schema (all columns, as text) on Postgres. Other
//! people's events stay; `--dry-run` and a refusal change nothing; a
//! delivery in flight while its event is erased writes nothing back. Every
//! test runs on every backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ::redis::Value;
use events::config::Global;
use events::event::now_ms;
use events::replay::{Chunk, Plan, Replay, ReplayError, Source, Write};
use events::setup::Setup;
use serde_json::json;

use crate::replay::WEBHOOK_SECRET;
use crate::support::{Backend, Events, Gate, PostgresServer, Reply, Sink, on_both_backends};

on_both_backends!(
    forget_leaves_nothing_of_the_value_and_spares_the_others,
    dry_run_and_a_refusal_change_nothing,
    a_delivery_in_flight_while_forgotten_writes_nothing_back,
    a_dead_letter_replay_under_way_brings_nothing_back,
    a_history_replay_under_way_brings_nothing_back,
    a_large_event_retried_before_it_is_forgotten_leaves_no_trace,
    copies_held_by_a_replay_a_worker_and_a_digest_all_stay_erased,
);

const ADA: &str = "ada@example.com";
const BOB: &str = "bob@example.com";

/// `events` with a webhook destination at `hook`.
fn env(backend: &Backend, hook: &Sink) -> Events {
    backend
        .events()
        .env("EVENTS_WEBHOOK_URL", hook.url())
        .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
}

/// Cancellations die (410), failed payments wait an hour in the retry set
/// (429), the rest are delivered. Ada has one of each (her signup under
/// an idempotency key), Bob a signup and a cancellation.
fn every_place_filled(backend: &Backend, hook: &Sink) {
    hook.rule(|request| {
        if request.body.contains("subscription.cancelled") {
            Some(Reply::status(410, "gone"))
        } else if request.body.contains("subscription.payment_failed") {
            Some(Reply::status(429, "slow down").header("Retry-After", "3600"))
        } else {
            None
        }
    });
    let emit = |args: &[&str]| {
        env(backend, hook).arg("emit").args(args).run().success();
    };
    emit(&[
        "user.signup",
        "--email",
        ADA,
        "--idempotency-key",
        "signup-1",
    ]);
    emit(&[
        "subscription.cancelled",
        "--email",
        ADA,
        "--field",
        "plan=pro",
    ]);
    emit(&["subscription.payment_failed", "--email", ADA]);
    emit(&["user.signup", "--email", BOB]);
    emit(&[
        "subscription.cancelled",
        "--email",
        BOB,
        "--field",
        "plan=team",
    ]);
    env(backend, hook).args(["work", "--burst"]).run().success();
}

/// Everything the queue stores, as text: on Redis every key under the
/// prefix read by its type (stream entries included); on SQLite the
/// database, its write-ahead log and its shared-memory file as raw bytes;
/// on Postgres every row of every table of the schema.
fn stored(backend: &Backend) -> String {
    match backend {
        Backend::Redis { url, .. } => redis_dump(url),
        Backend::Sqlite { .. } => {
            let db = backend.db_path().unwrap();
            let mut bytes = Vec::new();
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let path = format!("{}{suffix}", db.display());
                if let Ok(content) = std::fs::read(&path) {
                    bytes.extend(content);
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Backend::Postgres { server, schema } => postgres_dump(server, schema),
    }
}

/// Every row of every table of the queue's schema, all columns as text.
fn postgres_dump(server: &PostgresServer, schema: &str) -> String {
    let mut client = server.client(schema);
    let tables = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = $1 ORDER BY 1",
            &[&schema],
        )
        .unwrap();
    assert!(tables.len() > 5, "the queue's tables are there: {tables:?}");
    let mut out = String::new();
    for table in tables {
        let table: String = table.get(0);
        for row in client
            .query(&format!("SELECT t::text FROM {schema}.{table} t"), &[])
            .unwrap()
        {
            out.push_str(&format!("{table} {}\n", row.get::<_, String>(0)));
        }
    }
    out
}

fn redis_dump(url: &str) -> String {
    let mut conn = ::redis::Client::open(url)
        .unwrap()
        .get_connection()
        .unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    assert!(
        keys.iter().all(|k| k.starts_with("{events}:")),
        "only keys under the prefix: {keys:?}"
    );
    let mut out = String::new();
    for key in keys {
        let kind: String = ::redis::cmd("TYPE").arg(&key).query(&mut conn).unwrap();
        let mut read = match kind.as_str() {
            "string" => ::redis::cmd("GET"),
            "hash" => ::redis::cmd("HGETALL"),
            "list" => ::redis::cmd("LRANGE"),
            "set" => ::redis::cmd("SMEMBERS"),
            "zset" => ::redis::cmd("ZRANGE"),
            "stream" => ::redis::cmd("XRANGE"),
            other => panic!("{key} is a {other}"),
        };
        read.arg(&key);
        match kind.as_str() {
            "list" | "zset" => read.arg(0).arg(-1),
            "stream" => read.arg("-").arg("+"),
            _ => &mut read,
        };
        let read: Value = read.query(&mut conn).unwrap();
        out.push_str(&format!("{key} {read:?}\n"));
    }
    out
}

fn forget_leaves_nothing_of_the_value_and_spares_the_others(backend: Backend) {
    let hook = Sink::start();
    every_place_filled(&backend, &hook);
    let before = stored(&backend);
    assert!(before.contains(ADA) && before.contains(BOB));

    env(&backend, &hook)
        .args(["forget", "--email", ADA, "--yes"])
        .run()
        .success()
        .stdout_is(
            "removed 3 events in the history\n\
             removed 1 retries (with their bodies)\n\
             removed 1 dead letters\n\
             removed 3 attempt records\n\
             removed 1 idempotency keys\n",
        );
    let after = stored(&backend);
    assert!(!after.contains(ADA), "{ADA} is still stored:\n{after}");
    assert!(!after.contains("signup-1"), "the idempotency key is gone");
    assert!(after.contains(BOB), "Bob's events are untouched");

    let st = crate::replay::status(env(&backend, &hook));
    assert_eq!(st["stream"]["length"], 2, "{st:#}");
    assert_eq!(st["retries"]["scheduled"], 0, "{st:#}");
    assert_eq!(
        st["dead"]["by_destination"],
        json!([{"destination": "webhook", "error": "HTTP 410 gone", "count": 1}]),
        "Bob's dead letter stays, counted"
    );
    let replayed = env(&backend, &hook)
        .args(["replay", "--since", "1h", "--dry-run"])
        .run()
        .success()
        .stdout_json_lines();
    let emails: Vec<&str> = replayed
        .iter()
        .map(|e| e["payload"]["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, [BOB, BOB]);

    // Once erased, the same key may be used again: it points at nothing.
    env(&backend, &hook)
        .args(["emit", "user.signup", "--email", "carol@example.com"])
        .args(["--idempotency-key", "signup-1"])
        .run()
        .success();
    env(&backend, &hook)
        .args(["forget", "--email", ADA, "--yes", "--format", "json"])
        .run()
        .success()
        .stdout_is(
            "{\"attempts\":0,\"dead_letters\":0,\"erased\":true,\"history\":0,\
             \"idempotency_keys\":0,\"retries\":0}\n",
        );
    assert!(stored(&backend).contains("carol@example.com"));
}

fn dry_run_and_a_refusal_change_nothing(backend: Backend) {
    let hook = Sink::start();
    every_place_filled(&backend, &hook);
    let counts = "would remove 3 events in the history\n\
                  would remove 1 retries (with their bodies)\n\
                  would remove 1 dead letters\n\
                  would remove 3 attempt records\n\
                  would remove 1 idempotency keys\n";
    env(&backend, &hook)
        .args(["forget", "-f", &format!("email={ADA}"), "--dry-run"])
        .run()
        .success()
        .stdout_is(counts);
    env(&backend, &hook)
        .args(["forget", "--email", ADA])
        .run()
        .code(2)
        .stdout_is("")
        .stderr_has("this would erase 3 events, 1 retries, 1 dead letters, 3 attempt records and 1 idempotency keys for good; pass --yes");
    env(&backend, &hook)
        .args(["forget", "--email", ADA, "--dry-run"])
        .run()
        .success()
        .stdout_is(counts);
    assert!(stored(&backend).contains(ADA));

    env(&backend, &hook)
        .args(["forget", "--dry-run"])
        .run()
        .code(2)
        .stderr_has("--email");
    env(&backend, &hook)
        .args(["forget", "-f", "email=", "--yes"])
        .run()
        .code(2)
        .stderr_has("the value to erase for 'email' is empty");
}

fn a_delivery_in_flight_while_forgotten_writes_nothing_back(backend: Backend) {
    let hook = Sink::start();
    // Ada's event is answered late, and then with a failure: the worker
    // settles it (a retry, an attempt) after it was erased.
    hook.rule(|request| {
        request
            .body
            .contains(ADA)
            .then(|| Reply::status(503, "busy").delay(Duration::from_secs(3)))
    });
    let worker = env(&backend, &hook)
        .env("EVENTS_RETRY_BASE_MS", "600000")
        .args(["work"])
        .spawn();
    env(&backend, &hook)
        .args(["emit", "user.signup", "--email", ADA])
        .run()
        .success();
    let requests = hook.wait_requests(1, Duration::from_secs(60));
    assert!(requests[0].body.contains(ADA));

    env(&backend, &hook)
        .args(["forget", "--email", ADA, "--yes"])
        .run()
        .success()
        .stdout_has("removed 1 events in the history\n");
    assert!(
        worker.wait_for_stderr("retry in", Duration::from_secs(60)),
        "the worker settles the failed delivery: {}",
        worker.stderr_so_far()
    );
    // Bob's event, sent after, is delivered: the worker settled and went on.
    env(&backend, &hook)
        .args(["emit", "user.signup", "--email", BOB])
        .run()
        .success();
    assert_eq!(hook.wait_accepted(1, Duration::from_secs(60)).len(), 1);
    worker.signal("INT");
    worker.wait(Duration::from_secs(60)).success();

    let after = stored(&backend);
    assert!(!after.contains(ADA), "{ADA} came back:\n{after}");
    let st = crate::replay::status(env(&backend, &hook));
    assert_eq!(st["retries"]["scheduled"], 0, "{st:#}");
}

/// The configuration `env(backend, hook)` gives the command, for the
/// library's own replay.
fn library_config(backend: &Backend, hook: &Sink) -> Setup {
    let mut vars = vec![
        ("EVENTS_WEBHOOK_URL", hook.url()),
        ("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("EVENTS_ALERTS", "0".to_owned()),
    ];
    match backend {
        Backend::Redis { url, .. } => vars.push(("REDIS_URL", url.clone())),
        Backend::Sqlite { .. } => vars.push((
            "EVENTS_DB",
            backend.db_path().unwrap().display().to_string(),
        )),
        Backend::Postgres { server, schema } => {
            vars.push(("EVENTS_POSTGRES_URL", server.url()));
            vars.push(("EVENTS_PG_SCHEMA", schema.clone()));
        }
    }
    let env = |name: &str| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
    };
    Setup::load_with(&Global::default(), &env).unwrap()
}

/// Writes what a replay hands it as `replay` does, but first runs
/// `meanwhile`: the replay has read its events and holds them.
struct Interrupted<'a> {
    write: Write,
    meanwhile: Option<Box<dyn FnOnce() + 'a>>,
}

impl events::replay::Sink for Interrupted<'_> {
    fn take(&mut self, chunk: &Chunk) -> Result<(), ReplayError> {
        if let Some(meanwhile) = self.meanwhile.take() {
            meanwhile();
        }
        self.write.take(chunk)
    }
}

/// Replays `source` to every destination, as `events replay` does, running
/// `meanwhile` once the events are read and before they are written back.
fn replay_interrupted<'a>(config: &Setup, source: Source, meanwhile: impl FnOnce() + 'a) {
    let plan = Plan::new(config.routes().unwrap(), None, &[], None).unwrap();
    let sink = Interrupted {
        write: Write {
            queue: config.open_queue().unwrap(),
            due_ms: now_ms(),
        },
        meanwhile: Some(Box::new(meanwhile)),
    };
    let mut replay = Replay::new(&plan, sink);
    replay.run(&source, config).unwrap();
    assert!(replay.tally().events > 0, "the replay held events");
}

/// The last hour of history, as `replay --since 1h` selects it.
fn last_hour() -> Source {
    Source::History {
        from_ms: now_ms() - 3_600_000,
        until_ms: now_ms() + 1000,
    }
}

/// Erases Ada, checking it found her dead letter.
fn forget_ada(backend: &Backend, hook: &Sink) {
    env(backend, hook)
        .args(["forget", "--email", ADA, "--yes"])
        .run()
        .success()
        .stdout_has("removed 1 dead letters\n");
}

/// A worker's burst delivers nothing of Ada's, and the store holds nothing
/// of her.
fn nothing_of_ada_comes_back(backend: &Backend, hook: &Sink) {
    let stored_now = stored(backend);
    assert!(!stored_now.contains(ADA), "{ADA} came back:\n{stored_now}");
    let before = hook.request_count();
    env(backend, hook).args(["work", "--burst"]).run().success();
    let sent = hook.requests();
    assert!(sent.len() > before, "Bob's replayed deliveries were sent");
    for request in &sent[before..] {
        assert!(
            !request.body.contains(ADA),
            "sent after forget: {}",
            request.body
        );
    }
    let after = stored(backend);
    assert!(!after.contains(ADA), "{ADA} came back:\n{after}");
}

fn a_dead_letter_replay_under_way_brings_nothing_back(backend: Backend) {
    let hook = Sink::start();
    every_place_filled(&backend, &hook);
    let config = library_config(&backend, &hook);
    replay_interrupted(&config, Source::Dead, || forget_ada(&backend, &hook));
    let st = crate::replay::status(env(&backend, &hook));
    assert_eq!(st["retries"]["scheduled"], 1, "Bob's letter only: {st:#}");
    nothing_of_ada_comes_back(&backend, &hook);
}

fn a_history_replay_under_way_brings_nothing_back(backend: Backend) {
    let hook = Sink::start();
    every_place_filled(&backend, &hook);
    let config = library_config(&backend, &hook);
    replay_interrupted(&config, last_hour(), || forget_ada(&backend, &hook));
    let st = crate::replay::status(env(&backend, &hook));
    assert_eq!(st["retries"]["scheduled"], 2, "Bob's two events: {st:#}");
    nothing_of_ada_comes_back(&backend, &hook);
}

/// On SQLite a row over a page long keeps most of itself on overflow
/// pages, which a deletion that only zeroes what costs no extra write
/// leaves as they were once freed.
fn a_large_event_retried_before_it_is_forgotten_leaves_no_trace(backend: Backend) {
    let hook = Sink::start();
    let ada_calls = Arc::new(AtomicUsize::new(0));
    let calls = Arc::clone(&ada_calls);
    // Her first delivery fails once, so its retry (the whole event) is
    // written, then deleted by the worker once the second one succeeds.
    hook.rule(move |request| {
        (request.body.contains(ADA) && calls.fetch_add(1, Ordering::SeqCst) == 0)
            .then(|| Reply::status(503, "busy"))
    });
    // Keys sort before `email`: her address lies past the first page.
    let filler = "x".repeat(12_000);
    for (email, times) in [(ADA, 1), (BOB, 3)] {
        for _ in 0..times {
            env(&backend, &hook)
                .args(["emit", "user.signup", "--email", email])
                .args(["-f", &format!("aaa={filler}")])
                .run()
                .success();
        }
    }
    for _ in 0..3 {
        env(&backend, &hook)
            .args(["work", "--burst"])
            .run()
            .success();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        ada_calls.load(Ordering::SeqCst),
        2,
        "failed once, then delivered"
    );
    assert_eq!(hook.accepted_count(), 4);

    env(&backend, &hook)
        .args(["forget", "--email", ADA, "--yes"])
        .run()
        .success()
        .stdout_has("removed 1 events in the history\n");
    let after = stored(&backend);
    assert!(!after.contains(ADA), "{ADA} is still stored");
    assert!(after.contains(BOB), "Bob's events are untouched");
}

/// Ada's new signup is in a worker's hands (its delivery held by the
/// receiver), the digest has read her events and is posting them (held
/// too), and a dead-letter replay and a history replay have read hers when
/// `forget` runs; once each lets go, nothing of hers is stored anywhere.
fn copies_held_by_a_replay_a_worker_and_a_digest_all_stay_erased(backend: Backend) {
    let hook = Sink::start();
    every_place_filled(&backend, &hook);
    let gate = Gate::new();
    let held = gate.clone();
    hook.rule(move |request| {
        if request.body.contains("subscription.cancelled") {
            Some(Reply::status(410, "gone"))
        } else {
            (request.body.contains(ADA)).then(|| Reply::status(503, "busy").held(&held))
        }
    });
    let slow = |events: Events| {
        events
            .env("EVENTS_HTTP_TIMEOUT_MS", "120000")
            .env("EVENTS_RETRY_BASE_MS", "600000")
    };
    let worker = slow(env(&backend, &hook)).arg("work").spawn();
    let sent = hook.request_count();
    env(&backend, &hook)
        .args(["emit", "user.signup", "--email", ADA])
        .run()
        .success();
    let requests = hook.wait_requests(sent + 1, Duration::from_secs(60));
    assert!(requests[sent..].iter().any(|r| r.body.contains(ADA)));

    let chat = Sink::start();
    chat.set_default(Reply::ok().held(&gate));
    let digest = slow(backend.events())
        .env("SLACK_WEBHOOK_URL", chat.url())
        .args(["digest", "--since", "1h"])
        .spawn();
    assert_eq!(chat.wait_requests(1, Duration::from_secs(60)).len(), 1);

    let config = library_config(&backend, &hook);
    replay_interrupted(&config, Source::Dead, || {
        replay_interrupted(&config, last_hour(), || forget_ada(&backend, &hook));
    });
    gate.open();
    assert!(
        worker.wait_for_stderr("retry in", Duration::from_secs(60)),
        "the worker settles its delivery: {}",
        worker.stderr_so_far()
    );
    worker.signal("INT");
    worker.wait(Duration::from_secs(60)).success();
    digest.wait(Duration::from_secs(60)).success();
    nothing_of_ada_comes_back(&backend, &hook);
}

/// A file an earlier version wrote may hold a deleted row's overflow pages
/// as they were (it zeroed only what cost no extra write): `forget`
/// overwrites the free pages too.
#[test]
fn free_pages_an_earlier_version_left_as_they_were_are_overwritten() {
    let backend = Backend::sqlite();
    let hook = Sink::start();
    env(&backend, &hook)
        .args(["emit", "user.signup", "--email", ADA])
        .run()
        .success();
    let db = backend.db_path().unwrap();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "secure_delete", "FAST").unwrap();
        let body = format!(r#"{{"filler":"{}","email":"{ADA}"}}"#, "x".repeat(12_000));
        conn.execute(
            "INSERT INTO retry (token, due_ms, dest, delivery) VALUES ('old|webhook', 0, 'webhook', ?1)",
            [&body],
        )
        .unwrap();
        conn.execute("DELETE FROM retry WHERE token = 'old|webhook'", [])
            .unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    assert!(
        String::from_utf8_lossy(&before).matches(ADA).count() >= 2,
        "the deleted row is still in a free page"
    );
    env(&backend, &hook)
        .args(["forget", "--email", ADA, "--yes"])
        .run()
        .success()
        .stdout_has("removed 1 events in the history\n");
    let after = stored(&backend);
    assert!(!after.contains(ADA), "{ADA} is still stored");
}

/// A store that cannot be written: `forget` says so, and that nothing was
/// erased, rather than asking to run it again.
#[test]
fn a_read_only_store_says_nothing_was_erased() {
    let backend = Backend::sqlite();
    let hook = Sink::start();
    env(&backend, &hook)
        .args(["emit", "user.signup", "--email", ADA])
        .run()
        .success();
    let db = backend.db_path().unwrap();
    // Opened read-only by SQLite itself: file modes do not stop root.
    let read_only = format!("file:{}?mode=ro", db.display());
    let out = env(&backend, &hook)
        .env("EVENTS_DB", &read_only)
        .args(["forget", "--email", ADA, "--yes"])
        .run()
        .code(1)
        .stdout_is("")
        .stderr_lacks("run it again")
        .stderr_lacks("panicked");
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("events: error: nothing was erased: the store ")
            && first.contains("cannot be written"),
        "{}",
        out.stderr
    );
    assert!(stored(&backend).contains(ADA), "nothing was erased indeed");
}
