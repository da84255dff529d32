//! A queue written by the previous release (events 0.1.0) keeps working
//! after an upgrade: the fixtures in `tests/fixtures/upgrade/` hold a Redis
//! snapshot and a SQLite file it wrote, with unread events, a poison entry,
//! an entry written without `id` or `ts`, a scheduled retry and dead letters.
//! Each test runs today's binary against a copy and checks that `status`
//! counts it, that `work` delivers and dead-letters what is unread, that
//! `replay --dead` brings the old dead letters back, and that the old retry
//! is delivered when due. Whatever the storage layout becomes, these pass.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Events, LONG, Outcome, RedisServer, Sink, slack_lines, webhook_ids};

/// The error of the poison entry's dead letter, the same on both backends.
const POISON: &str = "'payload' is not valid JSON: expected ident at line 1 column 2";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upgrade")
        .join(name)
}

/// Where the old queue is, and the receivers its destinations point at.
struct Upgrade {
    store: Store,
    home: tempfile::TempDir,
    ok: Sink,
    dead: Sink,
    retry: Sink,
}

enum Store {
    Redis(RedisServer),
    Sqlite(PathBuf),
}

/// The id the old retry (to `retry`) is stored under, per backend.
struct Ids {
    /// The retried `import.completed` event.
    retried: &'static str,
    /// The unread events, in order, that route to `ok`.
    unread_ok: &'static [&'static str],
    /// The events the two old dead letters hold.
    dead: [&'static str; 2],
}

const REDIS_IDS: Ids = Ids {
    retried: "01M8GD6V1JB4KQC73TEQAEPTXA",
    // The last was written by a plain XADD: its id is derived from its
    // entry id, as the previous release derived it.
    unread_ok: &["01M8GD73P1PFV2MHGBJ8E82H3N", "01M8GD73PN0009TWSR3SHE0Z0N"],
    dead: ["01M8GD6V17FGQ7P353F4ASP99B", "01M8GD6V1W138ZYQ5QE8N6SMKN"],
};

const SQLITE_IDS: Ids = Ids {
    retried: "01M8GCM5VT6DHXME0V3F16SP3W",
    unread_ok: &["01M8GD6JJ5073V0976QGSG5CQ3"],
    dead: ["01M8GCM5T79SNA9DY6YG5C54D4", "01M8GCM5X2CQE3DPRZHE23BGEN"],
};

impl Upgrade {
    /// A copy of the Redis snapshot, its retry due at `retry_due_ms`
    /// (rewritten before today's binary first touches it).
    fn redis(retry_due_ms: i64) -> Upgrade {
        let server = RedisServer::start_from_snapshot(&fixture("redis-0.1.rdb"));
        let token = format!("{}|retry", REDIS_IDS.retried);
        let due = retry_due_ms.to_string();
        server.cli(&["ZADD", "{events}:retry", "XX", &due, &token]);
        Upgrade::new(Store::Redis(server))
    }

    /// A copy of the SQLite file, its retry due at `retry_due_ms`.
    fn sqlite(retry_due_ms: i64) -> Upgrade {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        std::fs::copy(fixture("sqlite-0.1.db"), &path).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("UPDATE retry SET due_ms = ?1", [retry_due_ms])
            .unwrap();
        drop(conn);
        let mut upgrade = Upgrade::new(Store::Sqlite(path));
        upgrade.home = dir;
        upgrade
    }

    fn new(store: Store) -> Upgrade {
        Upgrade {
            store,
            home: tempfile::tempdir().unwrap(),
            ok: Sink::start(),
            dead: Sink::start(),
            retry: Sink::start(),
        }
    }

    fn events(&self, args: &[&str]) -> Outcome {
        let events = Events::new()
            .home(self.home.path())
            .env("EVENTS_CONFIG", fixture("events.toml"))
            .env("FX_OK_URL", self.ok.url())
            .env("FX_DEAD_URL", self.dead.url())
            .env("FX_RETRY_URL", self.retry.url())
            .env("FX_SECRET", crate::support::WEBHOOK_SECRET);
        let events = match &self.store {
            Store::Redis(server) => events.env("REDIS_URL", server.url()),
            Store::Sqlite(path) => events.env("EVENTS_DB", path),
        };
        events.args(args).timeout(LONG).run()
    }

    fn status(&self) -> Value {
        self.events(&["status", "--format", "json"])
            .success()
            .stdout_json()
    }

    fn burst(&self) {
        self.events(&["work", "--burst"]).success();
    }
}

/// (destination, error, count) of every dead letter `status` counts.
fn dead_by(status: &Value) -> Vec<(String, String, u64)> {
    let mut rows: Vec<_> = status["dead"]["by_destination"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["destination"].as_str().unwrap().to_owned(),
                row["error"].as_str().unwrap().to_owned(),
                row["count"].as_u64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn ids(list: &[&str]) -> std::collections::BTreeMap<String, usize> {
    list.iter().map(|id| ((*id).to_owned(), 1)).collect()
}

/// Far enough ahead that the old retry waits through the whole test.
const PARKED: i64 = 4_000_000_000_000;

/// Everything but the retry: counted, delivered, dead-lettered, replayed.
fn an_old_queue_is_counted_delivered_and_replayed(up: &Upgrade, ids: &Ids, length: u64) {
    let status = up.status();
    assert_eq!(status["stream"]["length"], length, "{status:#}");
    assert_eq!(status["stream"]["lag"], ids.unread_ok.len() as u64 + 1);
    assert_eq!(status["retries"]["scheduled"], 1);
    assert_eq!(status["dead"]["total"], 2);
    let old_dead = (
        "dead".to_owned(),
        "HTTP 404 channel_not_found".to_owned(),
        2,
    );
    assert_eq!(dead_by(&status), [old_dead]);

    // The unread events are delivered; the poison entry is dead-lettered.
    up.burst();
    assert_eq!(webhook_ids(&up.ok), self::ids(ids.unread_ok));
    assert_eq!(up.retry.request_count(), 0, "the old retry is not due");
    let status = up.status();
    assert_eq!(status["stream"]["lag"], 0);
    assert_eq!(status["pending"], 0);
    assert_eq!(status["retries"]["scheduled"], 1);
    assert_eq!(status["dead"]["total"], 3);
    let poison = dead_by(&status)
        .into_iter()
        .find(|(_, error, _)| error == POISON);
    assert_eq!(poison.map(|p| p.2), Some(1), "{status:#}");

    // The old dead letters go back, to `ok`, and are delivered there.
    up.events(&["replay", "--dead", "--to", "ok", "--yes"])
        .success();
    up.burst();
    let mut all: Vec<&str> = ids.unread_ok.to_vec();
    all.extend(ids.dead);
    assert_eq!(webhook_ids(&up.ok), self::ids(&all));
    let status = up.status();
    assert_eq!(
        status["dead"]["total"], 1,
        "only the poison stays: {status:#}"
    );
    assert_eq!(status["retries"]["scheduled"], 1);
}

/// The old retry, once due, is claimed and delivered to its destination.
fn an_old_retry_is_delivered_when_due(up: &Upgrade, ids: &Ids) {
    assert_eq!(up.status()["retries"]["scheduled"], 1);
    up.burst();
    assert_eq!(webhook_ids(&up.retry), self::ids(&[ids.retried]));
    let delivered = &up.retry.accepted()[0].json();
    assert_eq!(delivered["type"], "import.completed");
    assert_eq!(
        delivered["payload"]["row_count"], 1_234_567,
        "{delivered:#}"
    );
    assert_eq!(up.status()["retries"]["scheduled"], 0);
}

mod redis {
    use super::*;

    #[test]
    fn an_old_redis_queue_is_counted_delivered_and_replayed() {
        let up = Upgrade::redis(PARKED);
        an_old_queue_is_counted_delivered_and_replayed(&up, &REDIS_IDS, 7);
        // The plain XADD routes to the Slack destination too.
        let lines = slack_lines(&up.dead);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("plain@example.com"), "{lines:?}");
    }

    #[test]
    fn an_old_redis_retry_is_delivered_when_due() {
        let up = Upgrade::redis(1);
        an_old_retry_is_delivered_when_due(&up, &REDIS_IDS);
    }
}

mod sqlite {
    use super::*;

    #[test]
    fn an_old_sqlite_queue_is_counted_delivered_and_replayed() {
        let up = Upgrade::sqlite(PARKED);
        an_old_queue_is_counted_delivered_and_replayed(&up, &SQLITE_IDS, 6);
        assert_eq!(up.dead.request_count(), 0, "nothing unread routes there");
    }

    #[test]
    fn an_old_sqlite_retry_is_delivered_when_due() {
        let up = Upgrade::sqlite(1);
        an_old_retry_is_delivered_when_due(&up, &SQLITE_IDS);
    }
}
