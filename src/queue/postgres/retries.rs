//! The questions the Postgres backend answers about the stream, retries
//! and dead letters, and the destinations' running totals. Due retries are
//! read per destination from the `(dest, due_ms)` index and locked with
//! `SKIP LOCKED`, so two workers never claim one retry.

use std::collections::{BTreeMap, HashSet};

use postgres::types::{ToSql, Type};
use postgres::{Client, Transaction};

use super::{PostgresQueue, lifecycle, to_json};
use crate::queue::{Delivery, Result, Retries, Tally};

type PgResult<T> = std::result::Result<T, postgres::Error>;

/// A due retry as stored: token, destination, delivery JSON.
pub(super) type DueRow = (String, String, String);

/// Claims up to `count` retries due at `now_ms`, earliest first, in ONE
/// statement: each is leased by moving its due time to `until_ms` (a claim
/// never settled simply falls due again); only those to the destinations
/// in `only` when it is not empty.
pub(super) fn claim_due(
    client: &mut Client,
    now_ms: i64,
    until_ms: i64,
    count: i64,
    only: &[String],
) -> PgResult<Vec<DueRow>> {
    let sql = format!(
        "WITH due AS (
             SELECT token, due_ms FROM retry WHERE {} due_ms <= $1
             ORDER BY due_ms, token LIMIT $2 FOR UPDATE SKIP LOCKED)
         UPDATE retry SET due_ms = $3 FROM due WHERE retry.token = due.token
         RETURNING retry.token, retry.dest, retry.delivery, due.due_ms",
        if only.is_empty() {
            ""
        } else {
            "dest = ANY($4) AND"
        }
    );
    let mut params: Vec<(&(dyn ToSql + Sync), Type)> = vec![
        (&now_ms, Type::INT8),
        (&count, Type::INT8),
        (&until_ms, Type::INT8),
    ];
    if !only.is_empty() {
        params.push((&only, Type::TEXT_ARRAY));
    }
    let mut rows: Vec<(i64, DueRow)> = client
        .query_typed(&sql, &params)?
        .iter()
        .map(|row| (row.get(3), (row.get(0), row.get(1), row.get(2))))
        .collect();
    // RETURNING keeps no order.
    rows.sort_by(|(a_due, a), (b_due, b)| (a_due, &a.0).cmp(&(b_due, &b.0)));
    Ok(rows.into_iter().map(|(_, row)| row).collect())
}

/// How many retries are scheduled and when the earliest is due; only those
/// to `only` when it is not empty.
pub(super) fn summary(tx: &mut Transaction, only: &[String]) -> PgResult<(u64, Option<i64>)> {
    let row = if only.is_empty() {
        tx.query_one("SELECT count(*), min(due_ms) FROM retry", &[])?
    } else {
        tx.query_one(
            "SELECT count(*), min(due_ms) FROM retry WHERE dest = ANY($1)",
            &[&only],
        )?
    };
    Ok((row.get::<_, i64>(0).max(0) as u64, row.get(1)))
}

/// Entries in the stream: all of them, unread (state 0) and claimed but not
/// settled (state 1).
pub(super) fn stream_counts(tx: &mut Transaction) -> PgResult<(u64, u64, u64)> {
    let all: i64 = tx.query_one("SELECT count(*) FROM stream", &[])?.get(0);
    let row = tx.query_one(
        "SELECT count(*) FILTER (WHERE state = 0), count(*) FILTER (WHERE state = 1)
         FROM stream WHERE state < 2",
        &[],
    )?;
    Ok((
        all.max(0) as u64,
        row.get::<_, i64>(0).max(0) as u64,
        row.get::<_, i64>(1).max(0) as u64,
    ))
}

/// Dead letters counted by (destination, error), most first.
pub(super) fn dead_counts(tx: &mut Transaction) -> PgResult<Vec<(String, String, u64)>> {
    Ok(tx
        .query(
            "SELECT dest, error, count(*) AS n FROM dead GROUP BY dest, error
             ORDER BY n DESC, dest, error",
            &[],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2).max(0) as u64))
        .collect())
}

/// Every destination's running totals, by name.
pub(super) fn tallies(tx: &mut Transaction) -> PgResult<BTreeMap<String, Tally>> {
    Ok(tx
        .query("SELECT dest, delivered, rate_limited FROM tallies", &[])?
        .iter()
        .map(|r| {
            let tally = Tally {
                delivered: r.get::<_, i64>(1).max(0) as u64,
                rate_limited: r.get::<_, i64>(2).max(0) as u64,
            };
            (r.get(0), tally)
        })
        .collect())
}

/// Retries as columns: token, due time, destination, delivery, event id.
pub(super) type RetryColumns = (Vec<String>, Vec<i64>, Vec<String>, Vec<String>, Vec<String>);

/// `retries` (each delivery with its due time) as columns, one row per
/// token, the last given winning, as when each was written in turn: one
/// statement may write a row only once.
pub(super) fn retry_columns<'a>(
    retries: impl DoubleEndedIterator<Item = (&'a Delivery, i64)>,
) -> RetryColumns {
    let mut seen = HashSet::new();
    let mut columns = RetryColumns::default();
    for (delivery, due_ms) in retries.rev() {
        let token = delivery.token();
        if !seen.insert(token.clone()) {
            continue;
        }
        columns.0.push(token);
        columns.1.push(due_ms);
        columns.2.push(delivery.dest.clone());
        columns.3.push(to_json(delivery));
        columns.4.push(delivery.event.id.clone());
    }
    columns
}

impl Retries for PostgresQueue {
    fn enqueue(&mut self, deliveries: &[Delivery], due_ms: i64) -> Result<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let (tokens, due, dests, bodies, ids) =
            retry_columns(deliveries.iter().map(|delivery| (delivery, due_ms)));
        // A replay read these events before they may have been erased.
        self.single(|client| {
            client
                .execute_typed(
                    "INSERT INTO retry (token, due_ms, dest, delivery)
                     SELECT r.token, r.due_ms, r.dest, r.delivery
                     FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[])
                         AS r (token, due_ms, dest, delivery, event_id)
                     WHERE NOT EXISTS (SELECT 1 FROM forgotten f WHERE f.event_id = r.event_id)
                     ON CONFLICT (token) DO UPDATE
                     SET due_ms = excluded.due_ms, delivery = excluded.delivery",
                    &[
                        (&tokens, Type::TEXT_ARRAY),
                        (&due, Type::INT8_ARRAY),
                        (&dests, Type::TEXT_ARRAY),
                        (&bodies, Type::TEXT_ARRAY),
                        (&ids, Type::TEXT_ARRAY),
                    ],
                )
                .map(drop)
        })
    }

    fn retry_due(&mut self, token: &str) -> Result<Option<i64>> {
        self.read(|tx| lifecycle::due_of(tx, token))
    }
}
