//! `events migrate [--print-sql]`: the Postgres schema created or upgraded
//! on purpose, or its SQL printed for a team's own migration tool.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::{Events, LONG, PostgresServer, Sink, WEBHOOK_SECRET, webhook_ids};

/// `events` on `schema` of the test server.
fn on(server: &PostgresServer, schema: &str) -> Events {
    Events::new()
        .env("EVENTS_POSTGRES_URL", server.url())
        .env("EVENTS_PG_SCHEMA", schema)
}

/// The version this build's `events migrate` creates a schema at.
fn latest(server: &PostgresServer) -> i32 {
    let schema = server.fresh_schema();
    let out = on(server, &schema).arg("migrate").run().success();
    let version = out
        .stdout
        .trim()
        .strip_prefix(&format!("schema {schema} is at version "))
        .and_then(|rest| rest.strip_suffix(" (created)"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    version.parse().unwrap()
}

fn version_of(server: &PostgresServer, schema: &str) -> i32 {
    server
        .client(schema)
        .query_one("SELECT version FROM schema_version", &[])
        .unwrap()
        .get(0)
}

/// `--print-sql` connects to nothing: the URL points at a closed port.
#[test]
fn migrate_print_sql_needs_no_server() {
    let out = Events::new()
        .env(
            "EVENTS_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:1/postgres",
        )
        .env("EVENTS_PG_SCHEMA", "team_queue")
        .args(["migrate", "--print-sql"])
        .run()
        .success();
    assert!(out.stdout.contains("BEGIN;\n"), "{}", out.stdout);
    assert!(out.stdout.ends_with("COMMIT;\n"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("CREATE SCHEMA IF NOT EXISTS team_queue;"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("CREATE TABLE IF NOT EXISTS stream ("),
        "{}",
        out.stdout
    );
}

/// The printed script, run by another tool (twice: it is idempotent),
/// leaves a schema every command then uses as is.
#[test]
fn migrate_printed_sql_makes_a_schema_status_uses() {
    let server = PostgresServer::shared();
    let schema = server.fresh_schema();
    let events = || {
        Events::new()
            .env("EVENTS_POSTGRES_URL", server.url())
            .env("EVENTS_PG_SCHEMA", &schema)
    };
    let sql = events()
        .args(["migrate", "--print-sql"])
        .run()
        .success()
        .stdout;
    let mut client = server.client("public");
    client.batch_execute(&sql).unwrap();
    client.batch_execute(&sql).unwrap();
    client
        .batch_execute(&format!(
            "INSERT INTO {schema}.stream (type, payload) VALUES ('user.signup', '{{\"email\": \"a@b.c\"}}')"
        ))
        .unwrap();
    let out = events().args(["migrate"]).run().success();
    assert!(
        out.stdout
            .starts_with(&format!("schema {schema} is at version "))
            && out.stdout.contains("(already up to date)"),
        "{}",
        out.stdout
    );
    let v = events()
        .args(["status", "--format", "json"])
        .run()
        .success()
        .stdout_json();
    assert_eq!(v["stream"]["length"], 1, "{v}");
}

/// `migrate` creates the schema, and a second run finds nothing to do.
#[test]
fn migrate_twice_creates_then_finds_it_done() {
    let server = PostgresServer::shared();
    let schema = server.fresh_schema();
    let events = || {
        Events::new()
            .env("EVENTS_POSTGRES_URL", server.url())
            .env("EVENTS_PG_SCHEMA", &schema)
    };
    let latest = latest(server);
    let first = events().args(["migrate"]).run().success();
    assert_eq!(
        first.stdout.trim(),
        format!("schema {schema} is at version {latest} (created)")
    );
    let second = events().args(["migrate"]).run().success();
    assert_eq!(
        second.stdout.trim(),
        format!("schema {schema} is at version {latest} (already up to date)")
    );
    let v = events()
        .args(["status", "--format", "json"])
        .run()
        .success()
        .stdout_json();
    assert_eq!(v["stream"]["length"], 0, "{v}");
}

/// Redis and SQLite have no schema: invalid input, said plainly.
#[test]
fn migrate_on_sqlite_is_invalid_input() {
    let out = Events::new().args(["migrate"]).run().code(2);
    assert!(
        out.stderr
            .contains("events: error: migrate is for Postgres"),
        "{}",
        out.stderr
    );
}

/// A schema the first Postgres release made (its `--print-sql`, kept as a
/// fixture), holding what its worker left: events unread, a retry due, a
/// dead letter. The first command of this build upgrades it in place and
/// delivers what waited; the dead letter and the history stay.
#[test]
fn a_schema_from_the_first_release_is_upgraded_in_place_with_its_rows() {
    let server = PostgresServer::shared();
    let schema = server.fresh_schema();
    let fixture = |name: &str| {
        let path = format!(
            "{}/tests/fixtures/postgres/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap()
    };
    let sql = fixture("schema_v1.sql") + &fixture("rows_v1.sql");
    server.psql(&sql.replace("events_v1", &schema));
    assert_eq!(version_of(server, &schema), 1);

    let sink = Sink::start();
    on(server, &schema)
        .env("EVENTS_WEBHOOK_URL", sink.url())
        .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .args(["work", "--burst"])
        .run()
        .success();
    let latest = latest(server);
    assert_eq!(version_of(server, &schema), latest);
    on(server, &schema)
        .arg("migrate")
        .run()
        .success()
        .stdout_is(&format!(
            "schema {schema} is at version {latest} (already up to date)\n"
        ));
    let delivered = webhook_ids(&sink);
    let expected: BTreeMap<String, usize> =
        ["evt-v1-pending-1", "evt-v1-pending-2", "evt-v1-retry"]
            .into_iter()
            .map(|id| (id.to_owned(), 1))
            .collect();
    assert_eq!(delivered, expected);
    let v = on(server, &schema)
        .args(["status", "--format", "json"])
        .run()
        .success()
        .stdout_json();
    assert_eq!(v["stream"]["length"], 5, "{v:#}");
    assert_eq!(v["pending"], 0, "{v:#}");
    assert_eq!(v["retries"]["scheduled"], 0, "{v:#}");
    assert_eq!(v["dead"]["total"], 1, "{v:#}");
    // A new event takes the next row, after the fixture's.
    on(server, &schema)
        .args(["emit", "user.signup", "--email", "new@example.com"])
        .run()
        .success();
}

/// Eight `events migrate` on a missing schema at the same instant (held
/// on the schema's advisory lock until all wait there): all succeed, one
/// creates it, the others find it done.
#[test]
fn eight_processes_migrating_at_once_do_not_collide() {
    const N: usize = 8;
    let server = PostgresServer::shared();
    let schema = server.fresh_schema();
    let mut lock = server.client("public");
    let mut held = lock.transaction().unwrap();
    held.execute(
        "SELECT pg_advisory_xact_lock(hashtext('events schema ' || $1))",
        &[&schema],
    )
    .unwrap();
    let running: Vec<_> = (0..N)
        .map(|_| on(server, &schema).arg("migrate").spawn())
        .collect();
    let deadline = Instant::now() + LONG;
    let mut watch = server.client("public");
    loop {
        let waiting: i64 = watch
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                &[],
            )
            .unwrap()
            .get(0);
        if waiting as usize >= N {
            break;
        }
        assert!(Instant::now() < deadline, "only {waiting} wait on the lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    held.commit().unwrap();
    let outs: Vec<String> = running
        .into_iter()
        .map(|r| r.wait(LONG).success().stdout)
        .collect();
    let latest = latest(server);
    let created = format!("schema {schema} is at version {latest} (created)\n");
    let done = format!("schema {schema} is at version {latest} (already up to date)\n");
    assert_eq!(
        outs.iter().filter(|o| **o == created).count(),
        1,
        "{outs:?}"
    );
    assert_eq!(
        outs.iter().filter(|o| **o == done).count(),
        N - 1,
        "{outs:?}"
    );
    assert_eq!(version_of(server, &schema), latest);
}
