//! Tests of `status`: a queue with known contents (delivered, dead, retrying,
//! claimed by a worker that died, unread) shown as a table and as JSON, both
//! snapshotted; secrets never shown; an unreachable queue is one line and
//! exit 1. Every test but the last runs on both backends, against the same
//! snapshots: the backends promise the same semantics.

use std::time::Duration;

use serde_json::{Value, json};

use crate::replay::{WEBHOOK_SECRET, status};
use crate::support::{Backend, Events, Reply, Sink, on_both_backends};

const WAIT: Duration = Duration::from_secs(10);

/// Destinations with routing globs, every secret in the environment.
const CONFIG: &str = r#"
[[destination]]
name = "growth"
kind = "slack"
url_env = "SLACK_GROWTH_URL"
events = ["user.*"]

[[destination]]
name = "segment"
kind = "segment"

[[destination]]
name = "hooks"
kind = "webhook"
url_env = "HOOK_URL"
secret_env = "HOOK_SECRET"
events = ["user.*", "subscription.*", "import*"]
"#;

const SLACK_PATH: &str = "/services/T000/B000/SECRETPATH";
const WRITE_KEY: &str = "wk_SECRET";
const PASSWORD: &str = "sekrit";

on_both_backends!(
    status_shows_a_queue_with_known_contents,
    status_shows_why_destinations_cannot_be_used,
);

/// Three sinks, a config file, and a queue.
struct Pipeline {
    backend: Backend,
    slack: Sink,
    segment: Sink,
    hooks: Sink,
    config: tempfile::NamedTempFile,
}

impl Pipeline {
    fn new(mut backend: Backend) -> Pipeline {
        backend.require_password(PASSWORD);
        let config = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(config.path(), CONFIG).unwrap();
        Pipeline {
            backend,
            slack: Sink::start(),
            segment: Sink::start(),
            hooks: Sink::start(),
            config,
        }
    }

    fn events(&self) -> Events {
        self.backend
            .events()
            .env("EVENTS_CONFIG", self.config.path())
            .env(
                "SLACK_GROWTH_URL",
                format!("{}{SLACK_PATH}", self.slack.base_url()),
            )
            .env("SEGMENT_WRITE_KEY", WRITE_KEY)
            .env("SEGMENT_ENDPOINT", self.segment.base_url())
            .env("HOOK_URL", self.hooks.url())
            .env("HOOK_SECRET", WEBHOOK_SECRET)
    }

    fn emit(&self, id: &str, kind: &str, payload: Value) {
        let line = json!({"id": id, "type": kind, "ts": format!("2026-11-27T09:00:0{}.000Z", &id[id.len() - 1..]), "payload": payload});
        self.events()
            .args(["emit", "--stdin"])
            .stdin(format!("{line}\n"))
            .run()
            .success();
    }

    fn burst(&self) {
        self.events()
            .args(["work", "--burst", "--consumer", "w1"])
            .run()
            .success();
    }

    /// Replaces what changes from run to run: ports, durations, the
    /// backend's location (checked apart).
    fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for sink in [&self.slack, &self.segment, &self.hooks] {
            text = text.replace(&format!("127.0.0.1:{}", sink.port()), "127.0.0.1:[port]");
        }
        text.lines()
            .map(|line| {
                if line.starts_with("Queue: ") {
                    return "Queue: [backend]\n".to_owned();
                }
                let mut out = String::new();
                for (n, word) in line.split(' ').enumerate() {
                    if n > 0 {
                        out.push(' ');
                    }
                    let number = word.trim_end_matches(['s', 'm', 'h', 'd']);
                    let is_duration = number.len() < word.len()
                        && !number.is_empty()
                        && number.bytes().all(|b| b.is_ascii_digit());
                    out.push_str(if is_duration { "[dur]" } else { word });
                }
                out + "\n"
            })
            .collect()
    }

    /// The location the backend should show.
    fn assert_location(&self, shown: &str) {
        match &self.backend {
            Backend::Redis { .. } => {
                assert!(shown.starts_with("redis://***@127.0.0.1:"), "{shown}")
            }
            Backend::Sqlite { .. } => {
                let path = self.backend.db_path().unwrap();
                assert!(shown.contains(&path.display().to_string()), "{shown}")
            }
            Backend::Postgres { schema, .. } => assert!(
                shown.starts_with("postgres postgres://***@127.0.0.1:")
                    && shown.ends_with(&format!("/*** schema {schema}")),
                "{shown}"
            ),
        }
    }
}

fn status_shows_a_queue_with_known_contents(backend: Backend) {
    let p = Pipeline::new(backend);
    let email = |e: &str| json!({"email": e});
    // Delivered everywhere.
    p.emit("evt-1", "user.signup", email("ada@example.com"));
    p.emit(
        "evt-2",
        "import.completed",
        json!({"email": "ada@example.com", "importer_name": "CRM", "row_count": 1234}),
    );
    p.burst();
    // Dead for the webhook (a permanent 404), delivered to Segment.
    p.hooks.set_default(Reply::status(404, "not_found"));
    p.emit(
        "evt-3",
        "subscription.started",
        json!({"email": "bob@example.com", "plan": "pro"}),
    );
    p.emit(
        "evt-4",
        "subscription.cancelled",
        json!({"email": "cy@example.com", "plan": "pro"}),
    );
    p.burst();
    // A webhook retry scheduled far ahead: the worker stops cleanly after it.
    p.hooks.set_default(Reply::status(503, "unavailable"));
    p.emit(
        "evt-5",
        "user.first_import",
        json!({"email": "dee@example.com", "importer_name": "CRM"}),
    );
    let worker = p
        .events()
        .env("EVENTS_RETRY_BASE_MS", "600000")
        .args(["work", "--consumer", "w1"])
        .spawn();
    // Slack's one message a second is shared with the worker before: its
    // line may wait for its turn, and is delivered before the stop.
    for outcome in ["retry in", "delivered user.first_import evt-5 to growth"] {
        assert!(
            worker.wait_for_stderr(outcome, WAIT),
            "{}",
            worker.stderr_so_far()
        );
    }
    worker.signal("TERM");
    worker.wait(WAIT).success();
    // Claimed by a worker that dies while the webhook hangs: pending.
    p.hooks
        .set_default(Reply::ok().delay(Duration::from_secs(20)));
    let before = p.hooks.request_count();
    p.emit(
        "evt-6",
        "importer.created",
        json!({"email": "eve@example.com", "importer_name": "CRM"}),
    );
    let mut stuck = p.events().args(["work", "--consumer", "stuck"]).spawn();
    assert!(
        p.hooks.wait_requests(before + 1, WAIT).len() > before,
        "the webhook got evt-6"
    );
    stuck.kill();
    // Unread.
    p.emit(
        "evt-7",
        "import.failed",
        json!({"email": "fay@example.com", "importer_name": "CRM", "error": "bad row"}),
    );

    let table = p.events().arg("status").run().success();
    let json_out = p
        .events()
        .args(["status", "--format", "json"])
        .run()
        .success();
    for out in [&table, &json_out] {
        for secret in ["SECRETPATH", WRITE_KEY, PASSWORD, WEBHOOK_SECRET, "/hook"] {
            assert!(
                !out.stdout.contains(secret) && !out.stderr.contains(secret),
                "{secret} shown:\n{}",
                out.stdout
            );
        }
        assert_eq!(out.stderr, "");
    }

    let mut v = json_out.stdout_json();
    assert_eq!(
        v["stream"],
        json!({
            "length": 7,
            "lag": 1,
            "oldest": {"id": "evt-1", "ts": "2026-11-27T09:00:01.000Z"},
            "newest": {"id": "evt-7", "ts": "2026-11-27T09:00:07.000Z"},
        })
    );
    assert_eq!(v["pending"], 1);
    assert_eq!(v["retries"]["scheduled"], 1);
    let due_in = v["retries"]["next_due_in_ms"].as_i64().unwrap();
    assert!(
        due_in > 60_000,
        "the retry is due in about 10 minutes, not {due_in} ms"
    );
    assert_eq!(v["backend"]["kind"], p.backend.kind());
    p.assert_location(v["backend"]["where"].as_str().unwrap());
    v["backend"] = json!("[backend]");
    for consumer in v["consumers"].as_array_mut().unwrap() {
        assert!(consumer["idle_ms"].as_u64().unwrap() < 60_000);
        consumer["idle_ms"] = json!("[ms]");
    }
    // Delivered totals: evt-1 and evt-5 to Slack, evt-1 and evt-2 to the
    // webhook, evt-1 to evt-5 to Segment, and evt-6 too when the worker
    // killed mid-send had recorded it by then.
    let dests = v["destinations"].as_array_mut().unwrap();
    let delivered: Vec<_> = dests.iter().map(|d| d["delivered"].clone()).collect();
    assert_eq!(delivered[0], 2, "{dests:#?}");
    assert!(delivered[1] == 5 || delivered[1] == 6, "{dests:#?}");
    assert_eq!(delivered[2], 2, "{dests:#?}");
    dests[1]["delivered"] = json!("[5 or 6]");
    v["retries"]["next_due"] = json!("[ts]");
    v["retries"]["next_due_in_ms"] = json!("[ms]");
    let json_text = serde_json::to_string_pretty(&v).unwrap();
    insta::assert_snapshot!("status_json", p.redact(&json_text));

    let location = table
        .stdout
        .lines()
        .next()
        .unwrap()
        .strip_prefix("Queue: ")
        .unwrap();
    p.assert_location(location);
    let table = table
        .stdout
        .replace("segment  unlimited  6 ", "segment  unlimited  5 ");
    insta::assert_snapshot!("status_table", p.redact(&table));
}

fn status_shows_why_destinations_cannot_be_used(backend: Backend) {
    let events = || {
        backend
            .events()
            .env("EVENTS_WEBHOOK_URL", "https://example.com/hook/SECRETPATH")
    };
    let why = "EVENTS_WEBHOOK_URL is set but EVENTS_WEBHOOK_SECRET is not";
    let out = events().arg("status").run().success();
    out.stdout_lacks("SECRETPATH")
        .stdout_has("Stream: empty")
        .stdout_has(&format!("Destinations: cannot be used: {why}"));
    let v = status(events());
    assert!(
        v["destinations_error"].as_str().unwrap().starts_with(why),
        "{v:#}"
    );
    assert_eq!(v["destinations"], json!([]));
    assert_eq!(v["stream"]["length"], 0);
    assert_eq!(v["stream"]["oldest"], Value::Null);
    assert_eq!(
        v["retries"],
        json!({"scheduled": 0, "next_due": null, "next_due_in_ms": null, "not_configured": null})
    );
    assert_eq!(v["dead"], json!({"total": 0, "by_destination": []}));
}

#[test]
fn status_with_redis_unreachable_is_one_line_and_exit_1() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Events::new()
        .env("REDIS_URL", format!("redis://:{PASSWORD}@127.0.0.1:{port}"))
        .arg("status")
        .run()
        .code(1)
        .stderr_has(&format!(
            "events: error: cannot reach Redis at redis://***@127.0.0.1:{port}"
        ))
        .stderr_lacks(PASSWORD);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert_eq!(out.stdout, "");
}

/// Percent-encodes everything but letters and digits, as a careful operator
/// would write a password into a URL.
fn encoded(password: &str) -> String {
    password
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Whatever a Redis password holds, encoded or not: `status` against a
    /// server that requires it, and the error when the server cannot be
    /// reached or refuses it, never show any part of it.
    #[test]
    fn no_part_of_a_redis_password_is_ever_shown(password in "[#/?@:%a-z\\PC]{0,16}") {
        let server = crate::support::RedisServer::start();
        let password = format!("Zq{password}Zq");
        server.cli(&["CONFIG", "SET", "requirepass", &password]);
        let port = server.port();
        let ok = Events::new()
            .env("REDIS_URL", format!("redis://:{}@127.0.0.1:{port}/0", encoded(&password)))
            .arg("status")
            .run()
            .success();
        proptest::prop_assert!(ok.stdout.contains(&format!("redis://***@127.0.0.1:{port}/***")), "{}", ok.stdout);
        for url in [
            format!("redis://:{password}@127.0.0.1:{port}/0"),
            format!("redis://:wrong{}@127.0.0.1:{port}", encoded(&password)),
            format!("redis://:{}@127.0.0.1:1/0", encoded(&password)),
            format!("redis://:{password}@127.0.0.1:1"),
        ]
        .into_iter()
        .chain(std::iter::once(format!("redis://:{}@127.0.0.1:{port}/0", encoded(&password))))
        {
            // (`work` is left out: it waits for an unreachable Redis to return.)
            for args in [&["status"][..], &["emit", "user.signup", "--email", "a@b.c"][..]] {
                let out = Events::new().env("REDIS_URL", &url).args(args).run();
                let shown = format!("{}{}", out.stdout, out.stderr);
                proptest::prop_assert!(!shown.contains("Zq"), "{url:?} {args:?} showed: {shown}");
            }
        }
    }
}

/// `EVENTS_POSTGRES_URL` wins over `REDIS_URL`: `emit` writes into the
/// Postgres schema, where a row inserted by plain SQL joins the events, and
/// `status` names the backend without its password.
#[test]
fn status_on_postgres_names_it_and_counts_rows_written_by_sql() {
    let server = crate::support::PostgresServer::shared();
    let schema = server.fresh_schema();
    let url = server.url().replace("postgres@", "postgres:Hunter2secret@");
    let events = || {
        Events::new()
            .env("EVENTS_POSTGRES_URL", &url)
            .env("EVENTS_PG_SCHEMA", &schema)
            .env("REDIS_URL", "redis://127.0.0.1:1")
    };
    events()
        .args(["emit", "user.signup", "--email", "a@b.c"])
        .run()
        .success();
    server
        .client(&schema)
        .execute(
            "INSERT INTO stream (type, payload) VALUES ('user.signup', '{\"email\": \"d@e.f\"}')",
            &[],
        )
        .unwrap();
    let out = events()
        .args(["status", "--format", "json"])
        .run()
        .success();
    assert!(!out.stdout.contains("Hunter2"), "{}", out.stdout);
    let v = out.stdout_json();
    assert_eq!(v["backend"]["kind"], "postgres", "{v}");
    assert_eq!(v["stream"]["length"], 2, "{v}");
    assert_eq!(v["stream"]["lag"], 2, "{v}");
}
