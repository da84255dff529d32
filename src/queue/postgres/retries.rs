//! The questions the Postgres backend answers about the stream, retries
//! and dead letters, and the destinations' running totals. Due retries are
//! read per destination from the `(dest, due_ms)` index and locked with
//! `SKIP LOCKED`, so two workers never claim one retry.

use std::collections::BTreeMap;

use postgres::Transaction;

use super::{PostgresQueue, lifecycle, to_json};
use crate::queue::{Delivery, Result, Retries, Tally};

type PgResult<T> = std::result::Result<T, postgres::Error>;

/// A due retry as stored: token, destination, delivery JSON.
pub(super) type DueRow = (String, String, String);

/// Up to `count` retries due at `now_ms`, earliest first, locked for this
/// transaction; only those to the destinations in `only` when it is not
/// empty.
pub(super) fn due(
    tx: &mut Transaction,
    now_ms: i64,
    count: i64,
    only: &[String],
) -> PgResult<Vec<DueRow>> {
    let rows = if only.is_empty() {
        tx.query(
            "SELECT token, dest, delivery FROM retry WHERE due_ms <= $1
             ORDER BY due_ms, token LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[&now_ms, &count],
        )?
    } else {
        tx.query(
            "SELECT token, dest, delivery FROM retry WHERE dest = ANY($3) AND due_ms <= $1
             ORDER BY due_ms, token LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[&now_ms, &count, &only],
        )?
    };
    Ok(rows
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect())
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

/// Adds to each destination's running totals.
pub(super) fn add_tallies(tx: &mut Transaction, tallies: &BTreeMap<String, Tally>) -> PgResult<()> {
    for (dest, tally) in tallies {
        tx.execute(
            "INSERT INTO tallies (dest, delivered, rate_limited) VALUES ($1, $2, $3)
             ON CONFLICT (dest) DO UPDATE SET
                 delivered = tallies.delivered + excluded.delivered,
                 rate_limited = tallies.rate_limited + excluded.rate_limited",
            &[
                dest,
                &(tally.delivered as i64),
                &(tally.rate_limited as i64),
            ],
        )?;
    }
    Ok(())
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

/// Adds or replaces a retry: one delivery (event and destination) is in the
/// retry set at most once, whoever scheduled it.
pub(super) fn upsert_retry(tx: &mut Transaction, delivery: &Delivery, due_ms: i64) -> PgResult<()> {
    tx.execute(
        "INSERT INTO retry (token, due_ms, dest, delivery) VALUES ($1, $2, $3, $4)
         ON CONFLICT (token) DO UPDATE SET due_ms = excluded.due_ms, delivery = excluded.delivery",
        &[
            &delivery.token(),
            &due_ms,
            &delivery.dest,
            &to_json(delivery),
        ],
    )?;
    Ok(())
}

impl Retries for PostgresQueue {
    fn enqueue(&mut self, deliveries: &[Delivery], due_ms: i64) -> Result<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            // A replay read these events before they may have been erased.
            let guard = lifecycle::any_forgotten(tx)?;
            for delivery in deliveries {
                if !(guard && lifecycle::is_forgotten(tx, &delivery.event.id)?) {
                    upsert_retry(tx, delivery, due_ms)?;
                }
            }
            Ok(())
        })
    }

    fn retry_due(&mut self, token: &str) -> Result<Option<i64>> {
        self.read(|tx| lifecycle::due_of(tx, token))
    }
}
