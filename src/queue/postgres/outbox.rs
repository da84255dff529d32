//! The row an emit writes into the stream, and the SQL that writes it, in
//! one place: the backend's own `append`, [`Emitter::emit_in`] (the
//! caller's transaction) and Python's `emit(…, connection=)` (the caller's
//! own driver) run these same statements, so all three write the same row
//! and take an idempotency key the same way.
//!
//! Every table is named with its schema, so a caller's `search_path` never
//! matters; every parameter is cast, so each driver may send it untyped.
//!
//! [`Emitter::emit_in`]: crate::Emitter::emit_in

use std::time::Duration;

use postgres::Transaction;
use postgres::types::{ToSql, Type};

use super::{duration_ms, to_json};
use crate::event::Event;

/// One SQL statement with named parameters, rendered for a schema and a
/// driver's placeholder style.
pub struct Statement {
    text: &'static str,
    params: &'static [&'static str],
}

impl Statement {
    /// For rust-postgres: `$1`, `$2`… in the order of its parameters.
    pub fn numbered(&self, schema: &str) -> String {
        self.render(schema, |index, _| format!("${}", index + 1))
    }

    /// For Python's drivers: `%(name)s` (psycopg 3 and psycopg2 take it as
    /// is; SQLAlchemy's `:name` is made from it).
    pub fn named(&self, schema: &str) -> String {
        self.render(schema, |_, name| format!("%({name})s"))
    }

    fn render(&self, schema: &str, mark: impl Fn(usize, &str) -> String) -> String {
        let mut sql = self.text.replace("{schema}", schema);
        for (index, name) in self.params.iter().enumerate() {
            sql = sql.replace(&format!("{{{name}}}"), &mark(index, name));
        }
        sql
    }
}

/// Writes one event.
pub const INSERT: Statement = Statement {
    text: "INSERT INTO {schema}.stream (id, type, ts, ts_ms, payload, written_ms)
        VALUES (CAST({id} AS text), CAST({type} AS text), CAST({ts} AS text),
                CAST({ts_ms} AS bigint), CAST({payload} AS text), CAST({written_ms} AS bigint))",
    params: &["id", "type", "ts", "ts_ms", "payload", "written_ms"],
};

/// Writes many events, in the order given, in one statement: the rows
/// [`INSERT`] writes, one for each element of the arrays (`emit --stdin`,
/// a batch of `emit_batch`).
pub const INSERT_MANY: Statement = Statement {
    text: "INSERT INTO {schema}.stream (id, type, ts, ts_ms, payload, written_ms)
        SELECT id, type, ts, ts_ms, payload, written_ms
        FROM unnest(CAST({id} AS text[]), CAST({type} AS text[]), CAST({ts} AS text[]),
                    CAST({ts_ms} AS bigint[]), CAST({payload} AS text[]),
                    CAST({written_ms} AS bigint[]))
            WITH ORDINALITY AS row (id, type, ts, ts_ms, payload, written_ms, n)
        ORDER BY n",
    params: &["id", "type", "ts", "ts_ms", "payload", "written_ms"],
};

/// Takes the idempotency key when it is free or expired and then writes
/// the event, in one statement: one row written, or none when the key was
/// taken. A concurrent emit with the same key waits here for the other
/// transaction: its rollback leaves the key free, its commit keeps it.
pub const INSERT_ONCE: Statement = Statement {
    text: "WITH taken AS (
            INSERT INTO {schema}.idem AS idem (key, event_id, expires_ms)
            VALUES (CAST({key} AS text), CAST({id} AS text), CAST({expires_ms} AS bigint))
            ON CONFLICT (key) DO UPDATE
            SET event_id = excluded.event_id, expires_ms = excluded.expires_ms
            WHERE idem.expires_ms <= CAST({written_ms} AS bigint)
            RETURNING 1)
        INSERT INTO {schema}.stream (id, type, ts, ts_ms, payload, written_ms)
        SELECT CAST({id} AS text), CAST({type} AS text), CAST({ts} AS text),
               CAST({ts_ms} AS bigint), CAST({payload} AS text), CAST({written_ms} AS bigint)
        WHERE EXISTS (SELECT 1 FROM taken)",
    params: &[
        "id",
        "type",
        "ts",
        "ts_ms",
        "payload",
        "written_ms",
        "key",
        "expires_ms",
    ],
};

/// The id of the event holding a key, after [`INSERT_ONCE`] wrote nothing.
pub const FIND_KEY: Statement = Statement {
    text: "SELECT event_id FROM {schema}.idem WHERE key = CAST({key} AS text)",
    params: &["key"],
};

/// Whether the schema's stream exists: one catalog lookup that never fails,
/// so a missing schema leaves the caller's transaction usable.
pub const READY: Statement = Statement {
    text: "SELECT to_regclass('{schema}.stream') IS NOT NULL",
    params: &[],
};

/// A parameter's value, for a driver of another language.
#[derive(Debug, Clone, PartialEq)]
pub enum Param<'a> {
    Text(&'a str),
    Int(Option<i64>),
}

/// An event as the row that holds it, with its idempotency key if any.
pub struct EventRow<'a> {
    event: &'a Event,
    ts_ms: Option<i64>,
    payload: String,
    written_ms: i64,
    /// The key and when it expires, ms since the epoch.
    key: Option<(&'a str, i64)>,
}

impl<'a> EventRow<'a> {
    /// `event` written at `now_ms`, its `key` kept for `ttl`.
    pub fn new(event: &'a Event, key: Option<&'a str>, ttl: Duration, now_ms: i64) -> Self {
        EventRow {
            event,
            ts_ms: event.ts_ms(),
            payload: to_json(&event.payload),
            written_ms: now_ms,
            key: key.map(|key| (key, now_ms.saturating_add(duration_ms(ttl)))),
        }
    }

    /// [`INSERT_ONCE`] with a key, else [`INSERT`].
    pub fn statement(&self) -> &'static Statement {
        match self.key {
            Some(_) => &INSERT_ONCE,
            None => &INSERT,
        }
    }

    /// The value of every parameter of [`statement`](Self::statement), by name.
    pub fn params(&self) -> Vec<(&'static str, Param<'_>)> {
        let event = self.event;
        let mut params = vec![
            ("id", Param::Text(&event.id)),
            ("type", Param::Text(&event.kind)),
            ("ts", Param::Text(&event.ts)),
            ("ts_ms", Param::Int(self.ts_ms)),
            ("payload", Param::Text(&self.payload)),
            ("written_ms", Param::Int(Some(self.written_ms))),
        ];
        if let Some((key, expires_ms)) = self.key {
            params.push(("key", Param::Text(key)));
            params.push(("expires_ms", Param::Int(Some(expires_ms))));
        }
        params
    }

    /// The same values for rust-postgres, in the statement's order, each
    /// with its type: the statement then takes one round trip, unprepared.
    fn values(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        let event = self.event;
        let mut values: Vec<(&(dyn ToSql + Sync), Type)> = vec![
            (&event.id, Type::TEXT),
            (&event.kind, Type::TEXT),
            (&event.ts, Type::TEXT),
            (&self.ts_ms, Type::INT8),
            (&self.payload, Type::TEXT),
            (&self.written_ms, Type::INT8),
        ];
        if let Some((key, expires_ms)) = &self.key {
            values.push((key, Type::TEXT));
            values.push((expires_ms, Type::INT8));
        }
        values
    }
}

/// Writes `row` into `schema` with `tx`. Returns the id of the event that
/// already holds the row's key (and writes nothing), else `None`.
pub fn write(
    tx: &mut Transaction<'_>,
    schema: &str,
    row: &EventRow<'_>,
) -> Result<Option<String>, postgres::Error> {
    let written = tx.execute_typed(&row.statement().numbered(schema), &row.values())?;
    match row.key {
        Some((key, _)) if written == 0 => {
            let find = FIND_KEY.numbered(schema);
            let first = tx.query_typed_one(&find, &[(&key, Type::TEXT)])?;
            Ok(Some(first.get(0)))
        }
        _ => Ok(None),
    }
}

/// Writes `rows` (none with a key) into `schema` with `tx`, in their
/// order, in one statement: one round trip however many.
pub fn write_many(
    tx: &mut Transaction<'_>,
    schema: &str,
    rows: &[EventRow<'_>],
) -> Result<u64, postgres::Error> {
    debug_assert!(rows.iter().all(|row| row.key.is_none()));
    let ids: Vec<&str> = rows.iter().map(|row| row.event.id.as_str()).collect();
    let kinds: Vec<&str> = rows.iter().map(|row| row.event.kind.as_str()).collect();
    let ts: Vec<&str> = rows.iter().map(|row| row.event.ts.as_str()).collect();
    let ts_ms: Vec<Option<i64>> = rows.iter().map(|row| row.ts_ms).collect();
    let payloads: Vec<&str> = rows.iter().map(|row| row.payload.as_str()).collect();
    let written: Vec<i64> = rows.iter().map(|row| row.written_ms).collect();
    tx.execute_typed(
        &INSERT_MANY.numbered(schema),
        &[
            (&ids, Type::TEXT_ARRAY),
            (&kinds, Type::TEXT_ARRAY),
            (&ts, Type::TEXT_ARRAY),
            (&ts_ms, Type::INT8_ARRAY),
            (&payloads, Type::TEXT_ARRAY),
            (&written, Type::INT8_ARRAY),
        ],
    )
}

/// Whether `schema` holds the queue's stream.
pub fn ready(tx: &mut Transaction<'_>, schema: &str) -> Result<bool, postgres::Error> {
    Ok(tx.query_typed_one(&READY.numbered(schema), &[])?.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every placeholder is replaced, for both styles, and every parameter
    /// a row gives is one the statement names, in its order.
    #[test]
    fn statements_render_every_parameter() {
        for statement in [&INSERT, &INSERT_MANY, &INSERT_ONCE, &FIND_KEY, &READY] {
            let numbered = statement.numbered("queue_2");
            let named = statement.named("queue_2");
            for sql in [&numbered, &named] {
                assert!(!sql.contains('{'), "{sql}");
                for unqualified in ["INTO stream", "INTO idem", "FROM idem"] {
                    assert!(!sql.contains(unqualified), "{sql}");
                }
            }
            for (index, name) in statement.params.iter().enumerate() {
                assert!(numbered.contains(&format!("${}", index + 1)), "{numbered}");
                assert!(named.contains(&format!("%({name})s")), "{named}");
            }
        }
        let event = Event::new("user.signup", serde_json::Map::new());
        for key in [None, Some("k")] {
            let row = EventRow::new(&event, key, Duration::from_secs(1), 5);
            let names: Vec<_> = row.params().iter().map(|(name, _)| *name).collect();
            assert_eq!(names, row.statement().params);
            assert_eq!(row.values().len(), names.len());
        }
        assert!(INSERT.numbered("q").starts_with("INSERT INTO q.stream "));
    }
}
