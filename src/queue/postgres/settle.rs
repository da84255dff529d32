//! A settle in ONE statement, as Redis runs one script: the acks, the
//! retries done with and scheduled, the dead letters, the attempt records,
//! the destinations' totals and the consumer's last activity of a whole
//! batch go in as arrays, each table written once by a data-modifying
//! `WITH` part. One statement is atomic on its own (no `BEGIN`/`COMMIT`)
//! and, sent with its parameters' types, one round trip.

use postgres::Client;
use postgres::types::{ToSql, Type};

use super::retries::retry_columns;
use super::to_json;
use crate::queue::Settlement;

/// An event erased by `forget` while it was being delivered stays erased:
/// no retry, dead letter or attempt record of it is written back. A
/// rescheduled retry has the token of the claim it replaces: that claim's
/// row is updated in place rather than removed.
const SETTLE: &str = "WITH acked AS (
        UPDATE stream SET state = 2, lease_until = NULL WHERE seq = ANY($1)),
    fresh AS (
        SELECT r.token, r.due_ms, r.dest, r.delivery
        FROM unnest($3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[])
            AS r (token, due_ms, dest, delivery, event_id)
        WHERE NOT EXISTS (SELECT 1 FROM forgotten f WHERE f.event_id = r.event_id)),
    done AS (
        DELETE FROM retry WHERE token = ANY($2) AND token NOT IN (SELECT token FROM fresh)),
    retried AS (
        INSERT INTO retry (token, due_ms, dest, delivery)
        SELECT token, due_ms, dest, delivery FROM fresh
        ON CONFLICT (token) DO UPDATE
        SET due_ms = excluded.due_ms, delivery = excluded.delivery),
    buried AS (
        INSERT INTO dead (letter, dest, error, at_ms)
        SELECT d.letter, d.dest, d.error, d.at_ms
        FROM unnest($8::text[], $9::text[], $10::text[], $11::bigint[], $12::text[])
            WITH ORDINALITY AS d (letter, dest, error, at_ms, event_id, n)
        WHERE NOT EXISTS (SELECT 1 FROM forgotten f WHERE f.event_id = d.event_id)
        ORDER BY d.n),
    recorded AS (
        INSERT INTO attempts (event_id, dest, at_ms, outcome, status, error, duration_ms, entry)
        SELECT a.event_id, a.dest, a.at_ms, a.outcome, a.status, a.error, a.duration_ms, a.entry
        FROM unnest($13::text[], $14::text[], $15::bigint[], $16::text[], $17::integer[],
                    $18::text[], $19::bigint[], $20::text[])
            WITH ORDINALITY AS a (event_id, dest, at_ms, outcome, status, error, duration_ms,
                                  entry, n)
        WHERE NOT EXISTS (SELECT 1 FROM forgotten f WHERE f.event_id = a.event_id)
        ORDER BY a.n),
    tallied AS (
        INSERT INTO tallies (dest, delivered, rate_limited)
        SELECT * FROM unnest($21::text[], $22::bigint[], $23::bigint[])
        ON CONFLICT (dest) DO UPDATE SET
            delivered = tallies.delivered + excluded.delivered,
            rate_limited = tallies.rate_limited + excluded.rate_limited)
    INSERT INTO consumers (name, seen_ms) VALUES ($24, $25)
    ON CONFLICT (name) DO UPDATE SET seen_ms = excluded.seen_ms";

/// Writes `settlement` (its acks already parsed into `acks`) for
/// `consumer` at `now`.
pub(super) fn settle(
    client: &mut Client,
    consumer: &str,
    acks: &[i64],
    settlement: &Settlement,
    now: i64,
) -> Result<u64, postgres::Error> {
    let retries = settlement.retries.iter().map(|(d, due)| (d, *due));
    let (tokens, due, retry_dests, deliveries, retry_ids) = retry_columns(retries);
    let dead = &settlement.dead;
    let letters: Vec<String> = dead.iter().map(to_json).collect();
    let dead_dests: Vec<&str> = dead.iter().map(|l| l.dest.as_str()).collect();
    let errors: Vec<&str> = dead.iter().map(|l| l.error.as_str()).collect();
    let dead_at: Vec<i64> = dead.iter().map(|l| l.at_ms).collect();
    let dead_ids: Vec<Option<&str>> = dead
        .iter()
        .map(|l| l.event.as_ref().ok().map(|e| e.id.as_str()))
        .collect();
    let a = &settlement.attempts;
    let a_ids: Vec<&str> = a.iter().map(|r| r.event_id.as_str()).collect();
    let a_dests: Vec<&str> = a.iter().map(|r| r.dest.as_str()).collect();
    let a_at: Vec<i64> = a.iter().map(|r| r.at_ms).collect();
    let a_outcomes: Vec<&str> = a.iter().map(|r| r.outcome.as_str()).collect();
    let a_status: Vec<Option<i32>> = a.iter().map(|r| r.status.map(i32::from)).collect();
    let a_errors: Vec<Option<&str>> = a.iter().map(|r| r.error.as_deref()).collect();
    let a_took: Vec<i64> = a.iter().map(|r| r.duration_ms as i64).collect();
    let a_entries: Vec<Option<&str>> = a.iter().map(|r| r.entry.as_deref()).collect();
    let t = &settlement.tallies;
    let t_dests: Vec<&str> = t.keys().map(String::as_str).collect();
    let delivered: Vec<i64> = t.values().map(|t| t.delivered as i64).collect();
    let limited: Vec<i64> = t.values().map(|t| t.rate_limited as i64).collect();
    let (texts, ints) = (Type::TEXT_ARRAY, Type::INT8_ARRAY);
    let params: [(&(dyn ToSql + Sync), Type); 25] = [
        (&acks, ints.clone()),
        (&settlement.done_retries, texts.clone()),
        (&tokens, texts.clone()),
        (&due, ints.clone()),
        (&retry_dests, texts.clone()),
        (&deliveries, texts.clone()),
        (&retry_ids, texts.clone()),
        (&letters, texts.clone()),
        (&dead_dests, texts.clone()),
        (&errors, texts.clone()),
        (&dead_at, ints.clone()),
        (&dead_ids, texts.clone()),
        (&a_ids, texts.clone()),
        (&a_dests, texts.clone()),
        (&a_at, ints.clone()),
        (&a_outcomes, texts.clone()),
        (&a_status, Type::INT4_ARRAY),
        (&a_errors, texts.clone()),
        (&a_took, ints.clone()),
        (&a_entries, texts.clone()),
        (&t_dests, texts.clone()),
        (&delivered, ints.clone()),
        (&limited, ints),
        (&consumer, Type::TEXT),
        (&now, Type::INT8),
    ];
    client.execute_typed(SETTLE, &params)
}
