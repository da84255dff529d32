//! The outbox: an event written in the application's own Postgres
//! transaction (`Emitter::emit_in`, or a plain SQL `INSERT`) is delivered
//! when that transaction commits, exactly once, and never when it rolls
//! back.

use std::process::Command;

use events::catalog::ValidationError;
use events::config::Global;
use events::event::Event;
use events::setup::Setup;
use events::{Emitter, Error};
use serde_json::json;

use crate::support::{Events, PostgresServer, Sink, WEBHOOK_SECRET, webhook_ids};

/// A schema made by `events migrate`, and an application table beside it
/// in `public`.
struct App {
    server: &'static PostgresServer,
    schema: String,
    client: postgres::Client,
}

impl App {
    fn new() -> App {
        let server = PostgresServer::shared();
        let schema = server.fresh_schema();
        let app = App {
            server,
            client: postgres::Client::connect(&server.url(), postgres::NoTls).unwrap(),
            schema,
        };
        app.events().args(["migrate"]).run().success();
        app
    }

    fn events(&self) -> Events {
        Events::new()
            .env("EVENTS_POSTGRES_URL", self.server.url())
            .env("EVENTS_PG_SCHEMA", &self.schema)
    }

    /// `events work --burst` delivering to `sink`.
    fn work(&self, sink: &Sink) {
        self.events()
            .env("EVENTS_WEBHOOK_URL", sink.url())
            .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .args(["work", "--burst"])
            .run()
            .success();
    }

    /// An emitter for this schema, with `more` settings.
    fn emitter(&self, more: &[(&str, &str)]) -> Emitter {
        let url = self.server.url();
        let env = |name: &str| {
            let given = more.iter().find(|(key, _)| *key == name);
            match (given, name) {
                (Some((_, value)), _) => Some(value.to_string()),
                (None, "EVENTS_POSTGRES_URL") => Some(url.clone()),
                (None, "EVENTS_PG_SCHEMA") => Some(self.schema.clone()),
                (None, _) => None,
            }
        };
        Emitter::new(Setup::load_with(&Global::default(), &env).unwrap()).unwrap()
    }

    /// A fresh table of the application's own, `public.<schema>_users`.
    fn users_table(&mut self) -> String {
        let table = format!("public.{}_users", self.schema);
        self.client
            .batch_execute(&format!("CREATE TABLE {table} (email TEXT NOT NULL)"))
            .unwrap();
        table
    }

    fn count(&mut self, table: &str) -> i64 {
        self.client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .unwrap()
            .get(0)
    }

    fn stream_rows(&mut self) -> i64 {
        let stream = format!("{}.stream", self.schema);
        self.count(&stream)
    }
}

fn signup(email: &str) -> serde_json::Value {
    json!({ "email": email })
}

fn signup_event(email: &str) -> Event {
    let serde_json::Value::Object(payload) = signup(email) else {
        unreachable!()
    };
    Event::new("user.signup", payload)
}

#[test]
fn outbox_a_rolled_back_transaction_delivers_nothing() {
    let mut app = App::new();
    let users = app.users_table();
    let mut emitter = app.emitter(&[]);
    let mut tx = app.client.transaction().unwrap();
    tx.execute(
        &format!("INSERT INTO {users} VALUES ('ada@example.com')"),
        &[],
    )
    .unwrap();
    emitter
        .emit_in(&mut tx, "user.signup", signup("ada@example.com"))
        .unwrap();
    tx.rollback().unwrap();
    let sink = Sink::start();
    app.work(&sink);
    assert_eq!(sink.request_count(), 0, "{:?}", sink.requests());
    assert_eq!(app.stream_rows(), 0);
    assert_eq!(app.count(&users), 0);
}

#[test]
fn outbox_a_committed_transaction_is_delivered_exactly_once() {
    let mut app = App::new();
    let users = app.users_table();
    let mut emitter = app.emitter(&[]);
    let mut tx = app.client.transaction().unwrap();
    tx.execute(
        &format!("INSERT INTO {users} VALUES ('ada@example.com')"),
        &[],
    )
    .unwrap();
    let id = emitter
        .emit_in(&mut tx, "user.signup", signup("ada@example.com"))
        .unwrap();
    tx.commit().unwrap();
    let sink = Sink::start();
    app.work(&sink);
    app.work(&sink);
    assert_eq!(webhook_ids(&sink), [(id, 1)].into());
    assert_eq!(
        sink.accepted()[0].json()["payload"]["email"],
        "ada@example.com"
    );
    assert_eq!(app.count(&users), 1);
}

/// The table is named with its schema: the connection's `search_path`
/// (here `public` only, where no `stream` table exists) does not matter.
#[test]
fn outbox_an_invalid_event_is_refused_before_anything_is_written() {
    let mut app = App::new();
    let users = app.users_table();
    let mut emitter = app.emitter(&[]);
    let mut tx = app.client.transaction().unwrap();
    tx.batch_execute("SET LOCAL search_path TO public").unwrap();
    for (kind, payload) in [
        ("user.signup", json!({ "email": 5 })),
        ("user.signup", json!("ada@example.com")),
        ("no.such_type", signup("ada@example.com")),
    ] {
        let err = emitter.emit_in(&mut tx, kind, payload).unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    }
    let err = emitter
        .emit_idempotent_in(&mut tx, "", signup_event("ada@example.com"))
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid(ValidationError::Invalid(_))),
        "{err:?}"
    );
    // The transaction is still usable: its own write and a valid event commit.
    tx.execute(
        &format!("INSERT INTO {users} VALUES ('ada@example.com')"),
        &[],
    )
    .unwrap();
    emitter
        .emit_in(&mut tx, "user.signup", signup("ada@example.com"))
        .unwrap();
    tx.commit().unwrap();
    assert_eq!(app.count(&users), 1);
    assert_eq!(app.stream_rows(), 1);
}

#[test]
fn outbox_an_idempotency_key_is_taken_only_by_a_committed_transaction() {
    let mut app = App::new();
    let mut emitter = app.emitter(&[]);
    let event = || signup_event("ada@example.com");
    let key = "evt_stripe_1";
    // Rolled back: the key stays free.
    let mut tx = app.client.transaction().unwrap();
    let rolled_back = emitter.emit_idempotent_in(&mut tx, key, event()).unwrap();
    tx.rollback().unwrap();
    // Committed: the key is taken by this event.
    let mut tx = app.client.transaction().unwrap();
    let first = emitter.emit_idempotent_in(&mut tx, key, event()).unwrap();
    assert_ne!(first, rolled_back);
    // The same key again in the same transaction writes nothing.
    assert_eq!(
        emitter.emit_idempotent_in(&mut tx, key, event()).unwrap(),
        first
    );
    tx.commit().unwrap();
    // A later transaction (Stripe's retry) writes nothing either.
    let mut tx = app.client.transaction().unwrap();
    assert_eq!(
        emitter.emit_idempotent_in(&mut tx, key, event()).unwrap(),
        first
    );
    tx.commit().unwrap();
    assert_eq!(app.stream_rows(), 1);
    let sink = Sink::start();
    app.work(&sink);
    assert_eq!(webhook_ids(&sink), [(first, 1)].into());
}

#[test]
fn outbox_a_missing_schema_says_to_run_migrate_and_leaves_the_transaction_usable() {
    let mut app = App::new();
    let users = app.users_table();
    let mut emitter = app.emitter(&[]);
    let mut missing = app.emitter(&[("EVENTS_PG_SCHEMA", "never_migrated")]);
    let mut tx = app.client.transaction().unwrap();
    let err = missing
        .emit_in(&mut tx, "user.signup", signup("ada@example.com"))
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(err.to_string().contains("run `events migrate`"), "{err}");
    assert!(err.to_string().contains("never_migrated"), "{err}");
    tx.execute(
        &format!("INSERT INTO {users} VALUES ('ada@example.com')"),
        &[],
    )
    .unwrap();
    emitter
        .emit_in(&mut tx, "user.signup", signup("ada@example.com"))
        .unwrap();
    tx.commit().unwrap();
    assert_eq!(app.count(&users), 1);
    assert_eq!(app.stream_rows(), 1);
}

/// `EVENTS_DISABLED` validates and writes nothing; an emitter for another
/// backend is refused, since its worker would never read the row.
#[test]
fn outbox_disabled_writes_nothing_and_another_backend_is_refused() {
    let mut app = App::new();
    let mut disabled = app.emitter(&[("EVENTS_DISABLED", "1")]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db").display().to_string();
    let env = |name: &str| (name == "EVENTS_DB").then(|| db.clone());
    let mut sqlite = Emitter::new(Setup::load_with(&Global::default(), &env).unwrap()).unwrap();
    let mut tx = app.client.transaction().unwrap();
    let id = disabled
        .emit_in(&mut tx, "user.signup", signup("ada@example.com"))
        .unwrap();
    assert!(!id.is_empty());
    let err = disabled
        .emit_in(&mut tx, "user.signup", json!({}))
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    let err = sqlite
        .emit_in(&mut tx, "user.signup", signup("ada@example.com"))
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(err.to_string().contains("EVENTS_POSTGRES_URL"), "{err}");
    tx.commit().unwrap();
    assert_eq!(app.stream_rows(), 0);
}

/// Any language's plain `INSERT`, through `psql`: the rolled-back row is
/// never delivered, the committed one once.
#[test]
fn outbox_plain_sql_inserts_commit_or_roll_back_with_the_transaction() {
    let mut app = App::new();
    let psql = |sql: String| {
        let out = Command::new("/usr/lib/postgresql/15/bin/psql")
            .arg(app.server.url())
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", &sql])
            .output()
            .expect(
                "psql at /usr/lib/postgresql/15/bin (Debian: apt-get install postgresql-client-15)",
            );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let insert = |email: &str| {
        format!(
            "INSERT INTO {}.stream (type, payload) VALUES ('user.signup', '{{\"email\": \"{email}\"}}');",
            app.schema
        )
    };
    psql(format!("BEGIN; {} ROLLBACK;", insert("rolled@example.com")));
    psql(format!("BEGIN; {} COMMIT;", insert("kept@example.com")));
    let sink = Sink::start();
    app.work(&sink);
    app.work(&sink);
    let emails: Vec<_> = sink
        .accepted()
        .iter()
        .map(|r| r.json()["payload"]["email"].clone())
        .collect();
    assert_eq!(emails, [json!("kept@example.com")]);
    assert_eq!(app.stream_rows(), 1);
}

/// The README's "Give `events` its own role" block, for `schema`, with the
/// roles `worker` and `app` in place of `events_worker` and `app`.
fn readme_grants(schema: &str, worker: &str, app: &str) -> String {
    let readme = include_str!("../README.md");
    let section = readme
        .split_once("### Give `events` its own role")
        .expect("the README has the roles section")
        .1;
    let block = section
        .split_once("```sql\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("the roles section has an SQL block")
        .0;
    block
        .replace("events_worker", "<worker>")
        .replace(" app;", " <app>;")
        .replace("SCHEMA events ", &format!("SCHEMA {schema} "))
        .replace("events.", &format!("{schema}."))
        .replace("<worker>", worker)
        .replace("<app>", app)
}

/// A role with only the README's grants runs the worker and the operators'
/// commands; the application's role emits (with `emit_in`, a key, or plain
/// SQL) and cannot read the stream.
#[test]
fn outbox_the_readmes_roles_emit_and_deliver_with_nothing_more() {
    let mut app = App::new();
    let (worker, app_role) = (
        format!("{}_worker", app.schema),
        format!("{}_app", app.schema),
    );
    let grants = readme_grants(&app.schema, &worker, &app_role);
    assert!(grants.contains(&format!(
        "GRANT INSERT ON {}.stream TO {app_role};",
        app.schema
    )));
    app.client
        .batch_execute(&format!("CREATE ROLE {app_role} LOGIN;\n{grants}"))
        .unwrap();
    let as_role = |role: &str| {
        app.server
            .url()
            .replacen("postgres@", &format!("{role}@"), 1)
    };

    let mut db = postgres::Client::connect(&as_role(&app_role), postgres::NoTls).unwrap();
    let mut emitter = app.emitter(&[("EVENTS_POSTGRES_URL", &as_role(&app_role))]);
    let mut tx = db.transaction().unwrap();
    let first = emitter
        .emit_in(&mut tx, "user.signup", signup("ada@example.com"))
        .unwrap();
    let keyed = emitter
        .emit_idempotent_in(&mut tx, "evt_1", signup_event("grace@example.com"))
        .unwrap();
    tx.execute(
        &format!(
            "INSERT INTO {}.stream (type, payload) VALUES ('user.signup', '{{\"email\": \"linus@example.com\"}}')",
            app.schema
        ),
        &[],
    )
    .unwrap();
    tx.commit().unwrap();
    let read = db.query(&format!("SELECT payload FROM {}.stream", app.schema), &[]);
    let refused = read.expect_err("the application's role reads nothing back");
    assert_eq!(
        refused.code(),
        Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
    );

    let sink = Sink::start();
    let as_worker = || {
        Events::new()
            .env("EVENTS_POSTGRES_URL", as_role(&worker))
            .env("EVENTS_PG_SCHEMA", &app.schema)
            .env("EVENTS_WEBHOOK_URL", sink.url())
            .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
    };
    as_worker().args(["work", "--burst"]).run().success();
    let ids = webhook_ids(&sink);
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(ids.values().all(|&n| n == 1), "{ids:?}");
    assert!(
        ids.contains_key(&first) && ids.contains_key(&keyed),
        "{ids:?}"
    );
    as_worker()
        .args(["status", "--format", "json"])
        .run()
        .success();
    as_worker()
        .args(["forget", "--email", "ada@example.com", "--yes"])
        .run()
        .success();
    as_worker()
        .args(["purge", "--dead", "--yes"])
        .run()
        .success();
}
