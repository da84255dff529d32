//! SQLite: each queue is a new file; and what only a file can go through
//! (directories, permissions, corruption, locks, concurrent processes).

use std::cell::Cell;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use events::event::{format_ts_ms, now_ms};
use events::queue::prelude::*;
use events::queue::sqlite::SqliteQueue;
use events::queue::{Backlog, QueueError, QueueOptions};

use super::{Backend, LONG, SHORT, acks, delivery, event, event_at, events_of};

/// Each queue is a new file in one temporary directory.
pub struct SqliteBackend {
    dir: tempfile::TempDir,
    opened: Cell<u32>,
}

impl SqliteBackend {
    pub fn new() -> SqliteBackend {
        SqliteBackend {
            dir: tempfile::tempdir().unwrap(),
            opened: Cell::new(0),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir
            .path()
            .join(format!("events-{}.db", self.opened.get()))
    }
}

impl Backend for SqliteBackend {
    fn open(&self, lease: Duration) -> Box<dyn Queue> {
        self.opened.set(self.opened.get() + 1);
        Box::new(SqliteQueue::open(&self.path(), options(lease)).unwrap())
    }

    fn reopen(&self) -> Box<dyn Queue> {
        Box::new(SqliteQueue::open(&self.path(), options(LONG)).unwrap())
    }

    fn write_garbage(&self) {
        let conn = rusqlite::Connection::open(self.path()).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        let now = now_ms();
        conn.execute(
            "INSERT INTO stream (id, type, ts, ts_ms, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                "01JDX3M7Q7G5N8W4K2B9C1T6ZR",
                "user.signup",
                format_ts_ms(now),
                now,
                "{not json"
            ],
        )
        .unwrap();
    }

    fn write_raw(&self, id: &str, kind: &str) {
        let conn = rusqlite::Connection::open(self.path()).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        let now = now_ms();
        conn.execute(
            "INSERT INTO stream (id, type, ts, ts_ms, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![id, kind, format_ts_ms(now), now, r#"{"email":"a@b"}"#],
        )
        .unwrap();
    }

    fn write_fields(&self, written_ms: i64, seq: u64, fields: &[(&str, &str)]) {
        let conn = rusqlite::Connection::open(self.path()).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        let get = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        conn.execute(
            "INSERT INTO stream (seq, id, type, ts, payload, written_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![
                seq as i64,
                get("id"),
                get("type"),
                get("ts"),
                get("payload"),
                written_ms
            ],
        )
        .unwrap();
    }

    fn write_retry(&self, token: &str, body: &str, due_ms: i64) {
        let conn = rusqlite::Connection::open(self.path()).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        let dest = token.rsplit_once('|').unwrap().1;
        conn.execute(
            "INSERT INTO retry (token, due_ms, dest, delivery) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![token, due_ms, dest, body],
        )
        .unwrap();
    }
}

conformance_tests!(SqliteBackend::new());

fn options(lease: Duration) -> QueueOptions {
    QueueOptions {
        claim_lease: lease,
        ..QueueOptions::default()
    }
}

fn open_err(path: &Path) -> QueueError {
    match SqliteQueue::open(path, QueueOptions::default()) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e,
    }
}

#[test]
fn reopening_keeps_everything_and_creates_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/events.db");
    let e = event(1);
    {
        let mut q = SqliteQueue::open(&path, options(LONG)).unwrap();
        assert_eq!(q.describe(), format!("sqlite {}", path.display()));
        q.append(&[e.clone(), event(2)]).unwrap();
        q.enqueue(&[delivery(&e, "slack", 1)], 5).unwrap();
        let first = q.claim("w", 1, Duration::ZERO).unwrap();
        q.settle("w", &acks(&first)).unwrap();
    }
    let mut q = SqliteQueue::open(&path, options(LONG)).unwrap();
    assert_eq!(
        q.backlog(&[]).unwrap(),
        Backlog {
            unread: 1,
            pending: 0,
            retries: 1,
            next_retry_ms: Some(5),
        }
    );
    assert_eq!(q.stats().unwrap().length, 2);
}

#[test]
fn read_only_directory_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let locked = tmp.path().join("locked");
    fs::create_dir(&locked).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();
    // Root ignores directory permissions; a regular file in the way of
    // the directory stops everyone.
    let path = if fs::write(locked.join("probe"), b"").is_err() {
        locked.join("events.db")
    } else {
        let file = tmp.path().join("a-file");
        fs::write(&file, b"").unwrap();
        file.join("events.db")
    };
    let err = open_err(&path);
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
    assert!(matches!(err, QueueError::Unavailable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("cannot open the event store"), "{text}");
}

#[test]
fn corrupt_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("events.db");
    let junk: Vec<u8> = (0..8192u32).map(|i| (i * 7919 % 251) as u8).collect();
    fs::write(&path, junk).unwrap();
    let err = open_err(&path);
    assert!(matches!(err, QueueError::Backend(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "{} is not an events database or is corrupt",
            path.display()
        )),
        "{text}"
    );
}

#[test]
fn another_programs_database_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("app.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY)")
        .unwrap();
    let text = open_err(&path).to_string();
    assert!(text.contains("is not an events database"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
}

#[test]
fn newer_schema_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("events.db");
    drop(SqliteQueue::open(&path, QueueOptions::default()).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let text = open_err(&path).to_string();
    assert!(text.contains("newer version"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
}

#[test]
fn lock_held_past_the_timeout_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("events.db");
    let mut q = SqliteQueue::open(&path, QueueOptions::default()).unwrap();
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let started = Instant::now();
    let err = q.append(&[event(1)]).unwrap_err();
    assert!(started.elapsed() >= Duration::from_secs(4));
    assert!(matches!(err, QueueError::Unavailable { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{} stayed locked by another process for more than 5 s",
            path.display()
        )
    );
    holder.execute_batch("ROLLBACK").unwrap();
    q.append(&[event(1)]).unwrap();
}

#[test]
fn history_is_in_event_time_order() {
    let backend = SqliteBackend::new();
    let mut q = backend.open(LONG);
    let t = 1_700_000_000_000;
    let late = event_at(t + 2000, 2);
    let early = event_at(t, 0);
    let middle = event_at(t + 1000, 1);
    q.append(&[late.clone(), early.clone(), middle.clone()])
        .unwrap();
    let mut seen = Vec::new();
    q.history(t, t + 3000, &mut |batch| {
        seen.extend(batch);
        true
    })
    .unwrap();
    assert_eq!(seen, [early, middle, late]);
}

#[test]
fn row_inserted_without_an_id_gets_a_stable_one() {
    let backend = SqliteBackend::new();
    let mut q = backend.open(SHORT);
    rusqlite::Connection::open(backend.path())
        .unwrap()
        .execute(
            "INSERT INTO stream (type, payload) VALUES ('user.signup', '{\"n\": 1}')",
            [],
        )
        .unwrap();
    let first = events_of(&q.claim("a", 10, Duration::ZERO).unwrap());
    thread::sleep(SHORT + Duration::from_millis(100));
    let again = events_of(&q.claim("b", 10, Duration::ZERO).unwrap());
    assert_eq!(first, again);
    assert_eq!(first[0].id.len(), 26);
    assert!(first[0].ts.ends_with('Z'), "{}", first[0].ts);
}

#[test]
fn concurrent_appenders_and_a_worker() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("events.db");
    // Everyone opens at once, so creating the file is raced too.
    let start = Arc::new(Barrier::new(5));
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (path, start) = (path.clone(), start.clone());
            thread::spawn(move || -> Result<(), QueueError> {
                start.wait();
                let mut q = SqliteQueue::open(&path, options(LONG))?;
                for n in 0..250 {
                    // Half read before writing: the pattern that
                    // deadlocks unless writes take the lock up front.
                    if n % 2 == 0 {
                        q.append(&[event(n)])?;
                    } else {
                        let key = format!("{writer}-{n}");
                        assert_eq!(q.append_idempotent(&key, &event(n), LONG)?, None);
                    }
                }
                Ok(())
            })
        })
        .collect();
    let worker = {
        let (path, start) = (path.clone(), start.clone());
        thread::spawn(move || -> Result<HashMap<String, u32>, QueueError> {
            start.wait();
            let mut q = SqliteQueue::open(&path, options(LONG))?;
            let mut seen = HashMap::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            while seen.len() < 1000 && Instant::now() < deadline {
                let entries = q.claim("w", 50, Duration::from_millis(100))?;
                for event in events_of(&entries) {
                    *seen.entry(event.id).or_insert(0) += 1;
                }
                q.settle("w", &acks(&entries))?;
            }
            Ok(seen)
        })
    };
    for writer in writers {
        writer.join().unwrap().unwrap();
    }
    let seen = worker.join().unwrap().unwrap();
    assert_eq!(seen.len(), 1000);
    assert!(seen.values().all(|&n| n == 1), "an event was claimed twice");
    let mut q = SqliteQueue::open(&path, options(LONG)).unwrap();
    assert_eq!(q.backlog(&[]).unwrap(), Backlog::default());
    assert_eq!(q.stats().unwrap().length, 1000);
}
