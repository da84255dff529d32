//! Postgres: each queue is a new schema of the one test server this
//! process runs; rows are written by plain SQL, as any program would.

use std::cell::RefCell;
use std::time::Duration;

use events::event::{format_ts_ms, now_ms};
use events::queue::postgres::PostgresQueue;
use events::queue::prelude::*;
use events::queue::{QueueOptions, StreamEntry};

use super::{Backend, LONG, SHORT, events_of};
use crate::support::PostgresServer;

/// Each queue is a new schema on the shared server.
pub struct PostgresBackend {
    server: &'static PostgresServer,
    schema: RefCell<String>,
}

impl PostgresBackend {
    pub fn new() -> PostgresBackend {
        PostgresBackend {
            server: PostgresServer::shared(),
            schema: RefCell::new(String::new()),
        }
    }

    fn open_schema(&self, lease: Duration) -> PostgresQueue {
        PostgresQueue::open(&self.server.url(), &self.schema.borrow(), options(lease)).unwrap()
    }

    fn execute(&self, sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]) {
        let mut client = self.server.client(&self.schema.borrow());
        client.execute(sql, params).unwrap();
    }
}

impl Backend for PostgresBackend {
    fn open(&self, lease: Duration) -> Box<dyn Queue> {
        *self.schema.borrow_mut() = self.server.fresh_schema();
        Box::new(self.open_schema(lease))
    }

    fn reopen(&self) -> Box<dyn Queue> {
        Box::new(self.open_schema(LONG))
    }

    fn write_garbage(&self) {
        let now = now_ms();
        self.execute(
            "INSERT INTO stream (id, type, ts, ts_ms, payload) VALUES ($1, $2, $3, $4, $5)",
            &[
                &"01JDX3M7Q7G5N8W4K2B9C1T6ZR",
                &"user.signup",
                &format_ts_ms(now),
                &now,
                &"{not json",
            ],
        );
    }

    fn write_raw(&self, id: &str, kind: &str) {
        let now = now_ms();
        self.execute(
            "INSERT INTO stream (id, type, ts, ts_ms, payload) VALUES ($1, $2, $3, $4, $5)",
            &[&id, &kind, &format_ts_ms(now), &now, &r#"{"email":"a@b"}"#],
        );
    }

    fn write_fields(&self, written_ms: i64, seq: u64, fields: &[(&str, &str)]) {
        let get = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        self.execute(
            "INSERT INTO stream (seq, id, type, ts, payload, written_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &(seq as i64),
                &get("id"),
                &get("type"),
                &get("ts"),
                &get("payload"),
                &written_ms,
            ],
        );
        self.execute(
            "SELECT setval(pg_get_serial_sequence('stream', 'seq'), $1)",
            &[&(seq as i64)],
        );
    }

    fn write_retry(&self, token: &str, body: &str, due_ms: i64) {
        let dest = token.rsplit_once('|').unwrap().1;
        self.execute(
            "INSERT INTO retry (token, due_ms, dest, delivery) VALUES ($1, $2, $3, $4)",
            &[&token, &due_ms, &dest, &body],
        );
    }
}

conformance_tests!(PostgresBackend::new());

fn options(lease: Duration) -> QueueOptions {
    QueueOptions {
        claim_lease: lease,
        ..QueueOptions::default()
    }
}

/// The wire format for any language: a row with only `type` and
/// `payload`, written by plain SQL, is an event with a stable id and a
/// `ts` of when it was written.
#[test]
fn a_row_inserted_by_sql_with_type_and_payload_is_an_event() {
    let backend = PostgresBackend::new();
    let mut q = backend.open(SHORT);
    backend.execute(
        "INSERT INTO stream (type, payload) VALUES ('user.signup', '{\"n\": 1}')",
        &[],
    );
    let first = events_of(&q.claim("a", 10, Duration::ZERO).unwrap());
    std::thread::sleep(SHORT + Duration::from_millis(100));
    let again = events_of(&q.claim("b", 10, Duration::ZERO).unwrap());
    assert_eq!(first, again);
    assert_eq!(first[0].id.len(), 26);
    assert!(first[0].ts.ends_with('Z'), "{}", first[0].ts);
    // It is in the history at its time, like any emitted event.
    let mut seen = Vec::new();
    q.history(0, i64::MAX, &mut |batch| {
        seen.extend(batch);
        true
    })
    .unwrap();
    assert_eq!(seen, first);
}

/// Two workers claiming at once never get the same entry: `SKIP LOCKED`
/// passes over rows another transaction holds.
#[test]
fn concurrent_claims_never_share_an_entry() {
    let backend = PostgresBackend::new();
    let mut q = backend.open(LONG);
    let events: Vec<_> = (0..200).map(super::event).collect();
    q.append(&events).unwrap();
    let workers: Vec<_> = (0..4)
        .map(|n| {
            let mut q = backend.reopen();
            std::thread::spawn(move || {
                let mut mine: Vec<String> = Vec::new();
                loop {
                    let entries: Vec<StreamEntry> =
                        q.claim(&format!("w{n}"), 7, Duration::ZERO).unwrap();
                    if entries.is_empty() {
                        return mine;
                    }
                    mine.extend(events_of(&entries).into_iter().map(|e| e.id));
                }
            })
        })
        .collect();
    let mut all: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert_eq!(all.len(), 200);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 200, "an entry was claimed twice");
}

/// The password never shows, in `describe` or in an error.
#[test]
fn the_password_is_never_shown() {
    let server = PostgresServer::shared();
    let url = server.url().replace("postgres@", "postgres:Hunter2secret@");
    let q = PostgresQueue::open(&url, &server.fresh_schema(), options(LONG)).unwrap();
    assert!(!q.describe().contains("Hunter2"), "{}", q.describe());
    let closed = format!("postgres://postgres:Hunter2secret@127.0.0.1:{}/x", 1);
    let err = match PostgresQueue::open(&closed, "events", options(LONG)) {
        Ok(_) => panic!("connected to port 1"),
        Err(e) => e.to_string(),
    };
    assert!(!err.contains("Hunter2"), "{err}");
    assert!(err.contains("127.0.0.1"), "{err}");
}

/// From now on, counts the statements that write each of `tables`, by
/// kind (`INSERT`, `UPDATE`, `DELETE`), with a statement-level trigger:
/// what the server was asked, however the client batched it.
fn count_statements(backend: &PostgresBackend, tables: &[&str]) {
    let schema = backend.schema.borrow().clone();
    let mut sql = format!(
        "CREATE TABLE {schema}.statements (tbl text, op text, n int NOT NULL,
             PRIMARY KEY (tbl, op));
         CREATE FUNCTION {schema}.count_statement() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             INSERT INTO {schema}.statements VALUES (TG_TABLE_NAME, TG_OP, 1)
             ON CONFLICT (tbl, op) DO UPDATE SET n = statements.n + 1;
             RETURN NULL;
         END $$;"
    );
    for table in tables {
        sql.push_str(&format!(
            "CREATE TRIGGER count_statements AFTER INSERT OR UPDATE OR DELETE
             ON {schema}.{table} FOR EACH STATEMENT EXECUTE FUNCTION {schema}.count_statement();"
        ));
    }
    backend.server.psql(&sql);
}

/// How many statements of kind `op` wrote `table` since [`count_statements`].
fn statements(backend: &PostgresBackend, table: &str, op: &str) -> i32 {
    let mut client = backend.server.client(&backend.schema.borrow());
    client
        .query_opt(
            "SELECT n FROM statements WHERE tbl = $1 AND op = $2",
            &[&table, &op],
        )
        .unwrap()
        .map_or(0, |row| row.get(0))
}

/// A batch of events (`emit --stdin`) is written by one `INSERT`, not one
/// a row, and keeps its order.
#[test]
fn a_batch_of_events_is_one_insert_in_order() {
    let backend = PostgresBackend::new();
    let mut q = backend.open(LONG);
    count_statements(&backend, &["stream"]);
    let events: Vec<_> = (0..300).map(super::event).collect();
    q.append(&events).unwrap();
    assert_eq!(statements(&backend, "stream", "INSERT"), 1);
    assert_eq!(
        events_of(&q.claim("w", 1000, Duration::ZERO).unwrap()),
        events
    );
}

/// A settle writes each table once, whatever the batch holds: the acks,
/// the attempt records, the retries and the dead letters of 40 entries.
#[test]
fn a_settle_writes_each_table_with_one_statement() {
    use events::queue::{AttemptRecord, Outcome, Settlement};
    let backend = PostgresBackend::new();
    let mut q = backend.open(LONG);
    let events: Vec<_> = (0..40).map(super::event).collect();
    q.append(&events).unwrap();
    let claimed = q.claim("w", 100, Duration::ZERO).unwrap();
    count_statements(&backend, &["stream", "attempts", "retry", "dead"]);
    let at_ms = now_ms();
    let record = |event: &events::event::Event| AttemptRecord {
        event_id: event.id.clone(),
        dest: "hook".into(),
        at_ms,
        outcome: Outcome::Delivered,
        status: Some(204),
        error: None,
        duration_ms: 3,
        entry: None,
    };
    let settlement = Settlement {
        attempts: events.iter().map(record).collect(),
        retries: events[..5]
            .iter()
            .map(|e| (super::delivery(e, "hook", 1), now_ms() + 60_000))
            .collect(),
        dead: events[5..8]
            .iter()
            .map(|e| super::letter(e, "hook", "HTTP 410", now_ms()))
            .collect(),
        ..super::acks(&claimed)
    };
    q.settle("w", &settlement).unwrap();
    for (table, op) in [
        ("stream", "UPDATE"),
        ("attempts", "INSERT"),
        ("retry", "INSERT"),
        ("dead", "INSERT"),
    ] {
        assert_eq!(statements(&backend, table, op), 1, "{op} {table}");
    }
    assert_eq!(q.attempts(&events[39].id).unwrap(), [record(&events[39])]);
    assert_eq!(q.dead_letters().unwrap().len(), 3);
    assert_eq!(q.backlog(&[]).unwrap().retries, 5);
    assert!(q.claim("w", 100, Duration::ZERO).unwrap().is_empty());
}

/// Deliveries put back for retry (`replay`) are written by one statement.
#[test]
fn deliveries_enqueued_for_retry_are_one_statement() {
    let backend = PostgresBackend::new();
    let mut q = backend.open(LONG);
    count_statements(&backend, &["retry"]);
    let deliveries: Vec<_> = (0..100)
        .map(|n| super::delivery(&super::event(n), "hook", 0))
        .collect();
    q.enqueue(&deliveries, now_ms()).unwrap();
    assert_eq!(statements(&backend, "retry", "INSERT"), 1);
    let claimed = q.claim_retries(now_ms(), 1000, &[]).unwrap();
    assert_eq!(super::deliveries_of(&claimed).len(), 100);
}
