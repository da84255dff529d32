//! `events migrate [--print-sql]`: the Postgres schema created or upgraded
//! on purpose, or its SQL printed for a team's own migration tool.

use crate::support::{Events, PostgresServer};

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
        out.stdout.contains(&format!(
            "schema {schema} is at version 2 (already up to date)"
        )),
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
    let first = events().args(["migrate"]).run().success();
    assert_eq!(
        first.stdout.trim(),
        format!("schema {schema} is at version 2 (created)")
    );
    let second = events().args(["migrate"]).run().success();
    assert_eq!(
        second.stdout.trim(),
        format!("schema {schema} is at version 2 (already up to date)")
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
