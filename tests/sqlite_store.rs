//! The embedded default: with no `REDIS_URL`, `emit` and `work` do the whole
//! job on a SQLite file, with several processes sharing it safely.

use std::path::Path;
use std::time::Duration;

use crate::support::readonly::ReadOnly;
use crate::support::{Events, LONG, Reply, Sink, WEBHOOK_SECRET as SECRET, signups, webhook_ids};

fn at(home: &Path) -> Events {
    Events::new().home(home).env("EVENTS_RETRY_BASE_MS", "10")
}

fn webhook(home: &Path, sink: &Sink) -> Events {
    at(home)
        .env("EVENTS_WEBHOOK_URL", sink.url())
        .env("EVENTS_WEBHOOK_SECRET", SECRET)
}

#[test]
fn the_main_job_runs_on_a_fresh_machine() {
    let home = tempfile::tempdir().unwrap();
    let id = at(home.path())
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .success()
        .stdout;
    assert_eq!(id.trim().len(), 26);
    at(home.path())
        .args(["work", "--burst"])
        .run()
        .success()
        .stdout_is("New signup: ada@example.com\n");
    // The default place: $XDG_STATE_HOME/events/events.db, directories created.
    assert!(home.path().join("state/events/events.db").exists());
    // Nothing left to do: a second run delivers nothing again.
    at(home.path())
        .args(["work", "--burst"])
        .run()
        .success()
        .stdout_is("");
}

#[test]
fn db_flag_and_env_choose_the_file() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("custom/place.db");
    at(home.path())
        .args([
            "--db",
            file.to_str().unwrap(),
            "emit",
            "user.signup",
            "--email",
            "a@b.c",
        ])
        .run()
        .success();
    assert!(file.exists());
    at(home.path())
        .env("EVENTS_DB", &file)
        .args(["work", "--burst"])
        .run()
        .success()
        .stdout_is("New signup: a@b.c\n");
}

#[test]
fn parallel_emitters_and_a_worker_share_one_file_without_lock_errors() {
    let home = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    // Create the file first so every process opens an existing store.
    at(home.path())
        .args(["emit", "user.signup", "--email", "first@example.com"])
        .run()
        .success();
    let worker = webhook(home.path(), &sink).arg("work").spawn();
    let emitters: Vec<std::thread::JoinHandle<()>> = (0..4)
        .map(|n| {
            let home = home.path().to_owned();
            std::thread::spawn(move || {
                for i in 0..25 {
                    at(&home)
                        .args([
                            "emit",
                            "user.signup",
                            "--email",
                            &format!("p{n}-{i}@example.com"),
                        ])
                        .run()
                        .success()
                        .stderr_lacks("locked");
                }
            })
        })
        .collect();
    for emitter in emitters {
        emitter.join().unwrap();
    }
    assert_eq!(
        sink.wait_accepted(101, LONG).len(),
        101,
        "{}",
        worker.stderr_so_far()
    );
    worker.signal("TERM");
    let out = worker.wait(LONG).success();
    assert!(!out.stderr.contains("locked"), "{}", out.stderr);
    let ids = webhook_ids(&sink);
    assert_eq!(ids.len(), 101);
    assert!(ids.values().all(|&n| n == 1), "each event delivered once");
}

#[test]
fn a_worker_killed_mid_burst_on_sqlite_loses_nothing() {
    let home = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    sink.set_default(Reply::ok().delay(Duration::from_millis(40)));
    at(home.path())
        .args(["emit", "--stdin"])
        .stdin(signups(0..150))
        .run()
        .success();
    let mut first = webhook(home.path(), &sink)
        .args(["work", "--concurrency", "4", "--consumer", "w1"])
        .spawn();
    sink.wait_accepted(15, LONG);
    first.kill();
    assert!(sink.accepted_count() < 150);
    // The same consumer restarted finishes its own claims first.
    webhook(home.path(), &sink)
        .args(["work", "--burst", "--consumer", "w1"])
        .run()
        .success();
    assert_eq!(webhook_ids(&sink).len(), 150);
}

#[test]
fn a_corrupt_database_is_a_clear_exit_1_naming_the_file() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("events.db");
    std::fs::write(&file, vec![0x5a; 8192]).unwrap();
    let out = at(home.path())
        .env("EVENTS_DB", &file)
        .args(["emit", "user.signup", "--email", "a@b.c"])
        .run()
        .code(1);
    assert!(
        out.stderr.contains(file.to_str().unwrap()),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr
            .lines()
            .next()
            .map(|l| l.starts_with("events: error: ")),
        Some(true)
    );
    assert!(!out.stderr.contains("panicked"));
}

#[test]
fn an_unwritable_place_is_a_clear_exit_1_naming_the_file() {
    let home = tempfile::tempdir().unwrap();
    // A path under a regular file cannot be created, even by root.
    let blocker = home.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let file = blocker.join("events.db");
    let out = at(home.path())
        .env("EVENTS_DB", &file)
        .args(["emit", "user.signup", "--email", "a@b.c"])
        .run()
        .code(1);
    assert!(out.stderr.contains("not-a-dir"), "{}", out.stderr);
}

/// Waits until the worker holding the consumer name `name` has written its
/// lease into the file.
fn wait_for_lease(db: &Path, name: &str) {
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let held = rusqlite::Connection::open(db)
            .and_then(|c| {
                c.query_row(
                    "SELECT count(*) FROM consumer_leases WHERE name = ?1",
                    [name],
                    |row| row.get::<_, i64>(0),
                )
            })
            .unwrap_or(0);
        if held == 1 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the name was never taken"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_consumer_name_in_use_is_refused_on_sqlite_too() {
    let home = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    let first = webhook(home.path(), &sink)
        .args(["work", "--consumer", "w"])
        .spawn();
    wait_for_lease(&home.path().join("state/events/events.db"), "w");
    let second = webhook(home.path(), &sink)
        .args(["work", "--burst", "--consumer", "w"])
        .run()
        .code(2);
    let pid = format!("pid {}", first.pid());
    assert!(
        second.stderr.contains("'w' is held by a running worker") && second.stderr.contains(&pid),
        "{}",
        second.stderr
    );
    first.signal("TERM");
    first.wait(LONG).success();
    webhook(home.path(), &sink)
        .args(["work", "--burst", "--consumer", "w"])
        .run()
        .success();
}

#[test]
fn a_file_from_before_consumer_leases_is_migrated_in_place() {
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("state/events/events.db");
    at(home.path())
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .success();
    // The file as the previous version left it: schema version 1.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "DROP TRIGGER stream_counted;
         DROP TRIGGER stream_uncounted;
         DROP TRIGGER stream_recounted;
         DROP TABLE stream_counts;
         DROP TRIGGER retry_counted;
         DROP TRIGGER retry_uncounted;
         DROP TRIGGER dead_counted;
         DROP TRIGGER dead_uncounted;
         DROP TABLE retry_counts;
         DROP TABLE dead_counts;
         DROP INDEX retry_dest_due;
         DROP TABLE consumer_leases;
         DROP TABLE rate_limits;
         DROP TABLE alert_windows;
         DROP TABLE tallies;
         DROP TABLE attempts;
         DROP TABLE forgotten;
         DROP TABLE holds;
         DROP INDEX stream_written;
         ALTER TABLE stream DROP COLUMN written_ms;
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    at(home.path())
        .args(["work", "--burst", "--consumer", "w"])
        .run()
        .success()
        .stdout_is("New signup: ada@example.com\n");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert!(version >= 2, "schema version {version}");
    let leases: i64 = conn
        .query_row("SELECT count(*) FROM consumer_leases", [], |row| row.get(0))
        .unwrap();
    assert_eq!(leases, 0, "released on a clean stop");
}

/// A store that cannot be written is not waited for: `--burst` is for
/// cron, and a long-running worker would only loop; both exit 1 with the
/// reason, and send nothing they could not then acknowledge.
#[test]
fn a_worker_on_a_read_only_store_exits_with_the_reason() {
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("state/events/events.db");
    let sink = Sink::start();
    at(home.path())
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .success();
    let _read_only = ReadOnly::file(&db);
    let said = format!(
        "events: error: the store {} cannot be written: ",
        db.display()
    );
    for args in [&["work", "--burst"][..], &["work"]] {
        // Both used to wait for ever.
        let out = webhook(home.path(), &sink)
            .args(args)
            .timeout(Duration::from_secs(20))
            .run()
            .code(1)
            .stderr_has(&said)
            .stderr_has("writable?");
        assert!(!out.stderr.contains("retrying"), "{args:?}: {}", out.stderr);
    }
    assert_eq!(sink.request_count(), 0, "nothing sent");
}
