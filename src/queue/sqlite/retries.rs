//! The questions the SQLite backend answers about the stream, retries and
//! dead letters, each at a cost that does not grow with what is kept: due
//! retries are read per destination from the `(dest, due_ms)` index (so a
//! `--only` worker never walks deliveries it leaves to others), and counts
//! come from the tables the triggers of migration 4 keep and from the
//! destinations' running totals (migration 7).

use std::collections::BTreeMap;

use rusqlite::{Transaction, params};

use super::{SqliteQueue, lifecycle, to_json};
use crate::queue::{Delivery, Result, Retries, Tally};

/// A due retry as stored: token, destination, delivery JSON.
pub(super) type DueRow = (String, String, String);

/// Up to `count` retries due at `now_ms`, earliest first (then by token,
/// so deliveries parked together come back in event order); only those to
/// the destinations in `only` when it is not empty.
pub(super) fn due(
    tx: &Transaction,
    now_ms: i64,
    count: i64,
    only: &[String],
) -> rusqlite::Result<Vec<DueRow>> {
    if only.is_empty() {
        let rows = tx
            .prepare_cached(
                "SELECT due_ms, token, dest, delivery FROM retry WHERE due_ms <= ?1
                 ORDER BY due_ms, token LIMIT ?2",
            )?
            .query_map(params![now_ms, count], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        return Ok(rows.into_iter().map(|(_, r)| r).collect());
    }
    // One indexed range per destination, merged: O(log n + count) each.
    let mut rows = Vec::new();
    for dest in dedup(only) {
        rows.extend(
            tx.prepare_cached(
                "SELECT due_ms, token, dest, delivery FROM retry
                 WHERE dest = ?1 AND due_ms <= ?2 ORDER BY due_ms, token LIMIT ?3",
            )?
            .query_map(params![dest, now_ms, count], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?,
        );
    }
    Ok(earliest(rows, count))
}

fn row(row: &rusqlite::Row) -> rusqlite::Result<(i64, DueRow)> {
    Ok((row.get(0)?, (row.get(1)?, row.get(2)?, row.get(3)?)))
}

/// The names once each, in order: `--only a --only a` is one range.
fn dedup(names: &[String]) -> Vec<&String> {
    let mut seen = Vec::with_capacity(names.len());
    for name in names {
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
    seen
}

/// The first `count` of rows from several ranges, by due time then token.
fn earliest(mut rows: Vec<(i64, DueRow)>, count: i64) -> Vec<DueRow> {
    rows.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.0.cmp(&b.1.0)));
    rows.truncate(usize::try_from(count).unwrap_or(usize::MAX));
    rows.into_iter().map(|(_, r)| r).collect()
}

/// How many retries are scheduled and when the earliest is due; only those
/// to `only` when it is not empty.
pub(super) fn summary(tx: &Transaction, only: &[String]) -> rusqlite::Result<(u64, Option<i64>)> {
    if only.is_empty() {
        let count: i64 = tx
            .prepare_cached("SELECT coalesce(sum(n), 0) FROM retry_counts")?
            .query_row([], |r| r.get(0))?;
        let first: Option<i64> = tx
            .prepare_cached("SELECT min(due_ms) FROM retry")?
            .query_row([], |r| r.get(0))?;
        return Ok((count.max(0) as u64, first));
    }
    let mut count = 0;
    let mut first: Option<i64> = None;
    for dest in dedup(only) {
        let n: Option<i64> = tx
            .prepare_cached("SELECT n FROM retry_counts WHERE dest = ?1")?
            .query_row([dest], |r| r.get(0))
            .or_else(none_if_no_rows)?;
        count += n.unwrap_or(0).max(0) as u64;
        let due: Option<i64> = tx
            .prepare_cached("SELECT due_ms FROM retry WHERE dest = ?1 ORDER BY due_ms LIMIT 1")?
            .query_row([dest], |r| r.get(0))
            .or_else(none_if_no_rows)?;
        first = match (first, due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok((count, first))
}

fn none_if_no_rows<T>(e: rusqlite::Error) -> rusqlite::Result<Option<T>> {
    match e {
        rusqlite::Error::QueryReturnedNoRows => Ok(None),
        e => Err(e),
    }
}

/// Entries in the stream: all of them, unread (state 0) and claimed but not
/// settled (state 1).
pub(super) fn stream_counts(tx: &Transaction) -> rusqlite::Result<(u64, u64, u64)> {
    let (all, unread, pending): (i64, i64, i64) = tx
        .prepare_cached(
            "SELECT coalesce(sum(n), 0), coalesce(sum(n) FILTER (WHERE state = 0), 0),
                    coalesce(sum(n) FILTER (WHERE state = 1), 0)
             FROM stream_counts",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok((
        all.max(0) as u64,
        unread.max(0) as u64,
        pending.max(0) as u64,
    ))
}

/// Dead letters counted by (destination, error), most first.
pub(super) fn dead_counts(tx: &Transaction) -> rusqlite::Result<Vec<(String, String, u64)>> {
    tx.prepare_cached(
        "SELECT dest, error, n FROM dead_counts WHERE n > 0 ORDER BY n DESC, dest, error",
    )?
    .query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)?.max(0) as u64))
    })?
    .collect()
}

/// Adds to each destination's running totals.
pub(super) fn add_tallies(
    tx: &Transaction,
    tallies: &BTreeMap<String, Tally>,
) -> rusqlite::Result<()> {
    for (dest, tally) in tallies {
        tx.prepare_cached(
            "INSERT INTO tallies (dest, delivered, rate_limited) VALUES (?1, ?2, ?3)
             ON CONFLICT (dest) DO UPDATE SET
                 delivered = delivered + excluded.delivered,
                 rate_limited = rate_limited + excluded.rate_limited",
        )?
        .execute(params![
            dest,
            tally.delivered as i64,
            tally.rate_limited as i64
        ])?;
    }
    Ok(())
}

/// Every destination's running totals, by name.
pub(super) fn tallies(tx: &Transaction) -> rusqlite::Result<BTreeMap<String, Tally>> {
    tx.prepare_cached("SELECT dest, delivered, rate_limited FROM tallies")?
        .query_map([], |r| {
            let tally = Tally {
                delivered: r.get::<_, i64>(1)?.max(0) as u64,
                rate_limited: r.get::<_, i64>(2)?.max(0) as u64,
            };
            Ok((r.get(0)?, tally))
        })?
        .collect()
}

/// Adds or replaces a retry: one delivery (event and destination) is in the
/// retry set at most once, whoever scheduled it.
pub(super) fn upsert_retry(
    tx: &Transaction,
    delivery: &Delivery,
    due_ms: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO retry (token, due_ms, dest, delivery) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (token) DO UPDATE SET due_ms = excluded.due_ms, delivery = excluded.delivery",
    )?
    .execute(params![
        delivery.token(),
        due_ms,
        delivery.dest,
        to_json(delivery)?
    ])?;
    Ok(())
}

impl Retries for SqliteQueue {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn due_row(due: i64, token: &str) -> (i64, DueRow) {
        (due, (token.into(), String::new(), String::new()))
    }

    #[test]
    fn ranges_merge_by_due_time_then_token() {
        let rows = vec![
            due_row(30, "c|b"),
            due_row(10, "a|b"),
            due_row(20, "z|a"),
            due_row(20, "y|a"),
        ];
        let tokens: Vec<String> = earliest(rows, 3).into_iter().map(|r| r.0).collect();
        assert_eq!(tokens, ["a|b", "y|a", "z|a"]);
    }

    #[test]
    fn a_destination_named_twice_is_read_once() {
        let names = ["a".to_owned(), "b".to_owned(), "a".to_owned()];
        assert_eq!(dedup(&names), [&names[0], &names[1]]);
    }
}
