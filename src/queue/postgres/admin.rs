//! What `status` and the metrics endpoint read.

use super::{PostgresQueue, Row, STREAM_COLUMNS, retries};
use crate::event::now_ms;
use crate::queue::entry;
use crate::queue::{ConsumerStats, Health, Result, Stats};

impl Health for PostgresQueue {
    fn stats(&mut self) -> Result<Stats> {
        self.read(|tx| {
            let now = now_ms();
            let (length, lag, _) = retries::stream_counts(tx)?;
            let mut end = |order: &str| {
                tx.query_opt(
                    &format!("SELECT {STREAM_COLUMNS} FROM stream ORDER BY seq {order} LIMIT 1"),
                    &[],
                )?
                .map(|row| Ok(entry::identity(&Row::from_row(&row)?.raw)))
                .transpose()
            };
            let oldest = end("ASC")?;
            let newest = end("DESC")?;
            // Consumers that hold entries are listed even if they never
            // touched the consumers table (rows claimed by other means).
            let consumers = tx
                .query(
                    "WITH held AS (
                         SELECT consumer AS name, count(*) AS pending FROM stream
                         WHERE state < 2 AND state = 1 AND consumer IS NOT NULL
                         GROUP BY consumer)
                     SELECT c.name, coalesce(h.pending, 0), c.seen_ms
                     FROM consumers c LEFT JOIN held h ON h.name = c.name
                     UNION ALL
                     SELECT h.name, h.pending, NULL FROM held h
                     WHERE h.name NOT IN (SELECT name FROM consumers)
                     ORDER BY 1",
                    &[],
                )?
                .iter()
                .map(|row| {
                    let seen: Option<i64> = row.get(2);
                    ConsumerStats {
                        name: row.get(0),
                        pending: row.get::<_, i64>(1).max(0) as u64,
                        idle_ms: seen.map_or(0, |seen| now.saturating_sub(seen).max(0) as u64),
                    }
                })
                .collect();
            let (retries, next_retry_ms) = retries::summary(tx, &[])?;
            let dead = retries::dead_counts(tx)?;
            let tallies = retries::tallies(tx)?;
            Ok(Stats {
                length,
                oldest,
                newest,
                lag,
                consumers,
                retries,
                next_retry_ms,
                dead,
                tallies,
            })
        })
    }
}
