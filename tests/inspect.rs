//! Tests of `inspect`: the attempt records a real `work --burst` leaves,
//! read back per destination with its state, after a delivery that failed
//! once and then succeeded and after one that died; an unknown id. Every
//! test runs on both backends.

use std::time::Duration;

use events::event::{Event, now_ms};
use events::queue::postgres::PostgresQueue;
use events::queue::redis::RedisQueue;
use events::queue::sqlite::SqliteQueue;
use events::queue::{AttemptRecord, Outcome, Queue, QueueOptions, Settlement};
use serde_json::{Value, json};

use crate::replay::WEBHOOK_SECRET;
use crate::support::{Backend, Events, Reply, Sink, on_both_backends};

on_both_backends!(
    attempt_records_are_kept_as_long_as_the_history,
    a_delivery_that_failed_once_then_succeeded_shows_both_attempts,
    a_delivery_that_died_shows_dead_and_the_error,
    an_unknown_id_exits_1_and_says_so,
);

/// `hook` (a webhook) takes the `user.*` events, `sales` (Slack) only
/// `import.completed`: a signup is not routed to it.
const CONFIG: &str = r#"
[[destination]]
name = "hook"
kind = "webhook"
url_env = "HOOK_URL"
secret_env = "HOOK_SECRET"
events = ["user.*"]

[[destination]]
name = "sales"
kind = "slack"
url_env = "SALES_URL"
events = ["import.completed"]
"#;

struct Setup {
    dir: tempfile::TempDir,
    hook: Sink,
    sales: Sink,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("events.toml"), CONFIG).unwrap();
        Setup {
            dir,
            hook: Sink::start(),
            sales: Sink::start(),
        }
    }

    fn events(&self, backend: &Backend) -> Events {
        backend
            .events()
            .env("EVENTS_CONFIG", self.dir.path().join("events.toml"))
            .env("HOOK_URL", self.hook.url())
            .env("HOOK_SECRET", WEBHOOK_SECRET)
            .env("SALES_URL", self.sales.url())
    }

    /// Emits a signup for `email` and runs a worker until it is done;
    /// returns the event's id.
    fn signup_delivered(&self, backend: &Backend, email: &str) -> String {
        let out = self
            .events(backend)
            .args(["emit", "user.signup", "--email", email])
            .run()
            .success();
        self.events(backend)
            .args(["work", "--burst"])
            .run()
            .success();
        out.stdout.trim().to_owned()
    }

    fn inspect(&self, backend: &Backend, id: &str) -> Value {
        self.events(backend)
            .args(["inspect", id, "--format", "json"])
            .run()
            .success()
            .stdout_json()
    }
}

/// The destination `name` of an `inspect --format json` report.
fn dest<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report:#}"))
}

/// Each attempt's outcome, status and error.
fn attempts(dest: &Value) -> Vec<(Value, Value, Value)> {
    dest["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["outcome"].clone(),
                a["status"].clone(),
                a["error"].clone(),
            )
        })
        .collect()
}

fn a_delivery_that_failed_once_then_succeeded_shows_both_attempts(backend: Backend) {
    let setup = Setup::new();
    setup.hook.script(vec![Reply::status(503, "busy")]);
    let id = setup.signup_delivered(&backend, "ada@example.com");

    let report = setup.inspect(&backend, &id);
    assert_eq!(report["event"]["id"], id.as_str(), "{report:#}");
    assert_eq!(report["event"]["payload"]["email"], "ada@example.com");
    let hook = dest(&report, "hook");
    assert_eq!(hook["state"], "delivered", "{report:#}");
    assert_eq!(hook["next_due"], Value::Null);
    assert_eq!(
        attempts(hook),
        [
            (json!("retrying"), json!(503), json!("HTTP 503 busy")),
            (json!("delivered"), json!(200), Value::Null),
        ],
        "{report:#}"
    );
    let sales = dest(&report, "sales");
    assert_eq!(sales["state"], "not routed", "{report:#}");
    assert_eq!(sales["attempts"], json!([]));

    setup
        .events(&backend)
        .args(["inspect", &id])
        .run()
        .success()
        .stdout_has(&format!("event {id} user.signup at "))
        .stdout_has("hook: delivered\n")
        .stdout_has(" retrying HTTP 503 (")
        .stdout_has(" ms): HTTP 503 busy\n")
        .stdout_has(" delivered HTTP 200 (")
        .stdout_has("sales: not routed\n");
}

fn a_delivery_that_died_shows_dead_and_the_error(backend: Backend) {
    let setup = Setup::new();
    setup.hook.set_default(Reply::status(410, "gone"));
    let id = setup.signup_delivered(&backend, "bob@example.com");

    let report = setup.inspect(&backend, &id);
    let hook = dest(&report, "hook");
    assert_eq!(hook["state"], "dead", "{report:#}");
    assert_eq!(
        attempts(hook),
        [(json!("dead"), json!(410), json!("HTTP 410 gone"))],
        "{report:#}"
    );
    setup
        .events(&backend)
        .args(["inspect", &id])
        .run()
        .success()
        .stdout_has("hook: dead\n")
        .stdout_has(" dead HTTP 410 (")
        .stdout_has(" ms): HTTP 410 gone\n");
}

fn an_unknown_id_exits_1_and_says_so(backend: Backend) {
    let setup = Setup::new();
    setup
        .events(&backend)
        .args(["inspect", "01JNOSUCHEVENT"])
        .run()
        .code(1)
        .stderr_has("no event with id 01JNOSUCHEVENT in the history");
    // An id is shown, never obeyed: a terminal escape in it stays visible.
    setup
        .events(&backend)
        .args(["inspect", "01J\u{1b}[2K"])
        .run()
        .code(1)
        .stderr_has("no event with id 01J\\u{1b}[2K in the history")
        .stderr_lacks("\u{1b}");
}

/// Settles one attempt record with a retention of an hour: read back by
/// event id; on Redis its list expires within the hour, in the embedded
/// store a trim of the history removes it.
fn attempt_records_are_kept_as_long_as_the_history(backend: Backend) {
    let options = QueueOptions {
        retention: Duration::from_secs(3600),
        ..QueueOptions::default()
    };
    let mut queue: Box<dyn Queue> = match &backend {
        Backend::Redis { url, .. } => Box::new(RedisQueue::open(url, "{events}", options).unwrap()),
        Backend::Sqlite { .. } => {
            Box::new(SqliteQueue::open(&backend.db_path().unwrap(), options).unwrap())
        }
        Backend::Postgres { server, schema } => {
            Box::new(PostgresQueue::open(&server.url(), schema, options).unwrap())
        }
    };
    let event = Event::new("user.signup", Default::default());
    let record = AttemptRecord {
        event_id: event.id.clone(),
        dest: "hook".into(),
        at_ms: now_ms(),
        outcome: Outcome::Delivered,
        status: Some(204),
        error: None,
        duration_ms: 12,
        entry: None,
    };
    let settlement = Settlement {
        attempts: vec![record.clone()],
        ..Settlement::default()
    };
    queue.settle("w", &settlement).unwrap();
    assert_eq!(queue.attempts(&event.id).unwrap(), [record]);
    assert_eq!(queue.attempts("another").unwrap(), []);
    match &backend {
        Backend::Redis { server, .. } => {
            let ttl: i64 = server
                .cli(&["PTTL", &format!("{{events}}:attempts:{}", event.id)])
                .parse()
                .unwrap();
            assert!(0 < ttl && ttl <= 3_600_000, "{ttl}");
        }
        Backend::Sqlite { .. } | Backend::Postgres { .. } => {
            queue.trim(now_ms() - 60_000).unwrap();
            assert_eq!(queue.attempts(&event.id).unwrap().len(), 1, "newer: kept");
            queue.trim(now_ms() + 1).unwrap();
            assert_eq!(queue.attempts(&event.id).unwrap(), []);
        }
    }
}
