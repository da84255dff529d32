//! The dead letters: listed, requeued, counted and purged.

use std::collections::HashSet;

use postgres::Transaction;
use postgres::types::Type;

use super::{DEAD_PAGE, PostgresQueue, from_json, parse_key, to_json};
use crate::queue::{DeadFilter, DeadLetter, DeadLetters, Delivery, Result, StoredDeadLetter};

type PgResult<T> = std::result::Result<T, postgres::Error>;

/// The columns a dead letter is read with, in [`stored_letter`]'s order.
pub(super) const DEAD_COLUMNS: &str = "seq, letter, dest, error, at_ms";

impl PostgresQueue {
    /// Counts, and removes when `remove` is set, the dead letters `filter`
    /// selects, a page of letters per transaction. Time and destination are
    /// checked before a letter is decoded.
    fn dead_pass(&mut self, filter: &DeadFilter, remove: bool) -> Result<u64> {
        let before = filter.before_ms.unwrap_or(i64::MAX);
        let mut after = 0_i64;
        let mut selected = 0;
        loop {
            let (last, seqs) = self.read(|tx| {
                let rows = tx.query(
                    &format!(
                        "SELECT {DEAD_COLUMNS} FROM dead
                         WHERE seq > $1 AND at_ms < $2 ORDER BY seq LIMIT $3"
                    ),
                    &[&after, &before, &DEAD_PAGE],
                )?;
                let mut last = None;
                let mut seqs = Vec::new();
                for row in &rows {
                    let seq: i64 = row.get(0);
                    last = Some(seq);
                    let (dest, at_ms): (String, i64) = (row.get(2), row.get(4));
                    if !filter.passes_over(&dest, at_ms)
                        && filter.matches(&stored_letter(row).letter)
                    {
                        seqs.push(seq);
                    }
                }
                Ok((last, seqs))
            })?;
            selected += seqs.len() as u64;
            if remove && !seqs.is_empty() {
                self.write(|tx| {
                    tx.execute("DELETE FROM dead WHERE seq = ANY($1)", &[&seqs])
                        .map(drop)
                })?;
            }
            match last {
                Some(last) => after = last,
                None => return Ok(selected),
            }
        }
    }
}

pub(super) fn insert_dead(tx: &mut Transaction, letter: &DeadLetter) -> PgResult<()> {
    tx.execute(
        "INSERT INTO dead (letter, dest, error, at_ms) VALUES ($1, $2, $3, $4)",
        &[&to_json(letter), &letter.dest, &letter.error, &letter.at_ms],
    )?;
    Ok(())
}

/// A dead letter as listed. One that no longer decodes is still listed,
/// with its text as the event, so it can be inspected and purged.
pub(super) fn stored_letter(row: &postgres::Row) -> StoredDeadLetter {
    let seq: i64 = row.get(0);
    let json: String = row.get(1);
    let letter = from_json::<DeadLetter>(&json).unwrap_or_else(|_| DeadLetter {
        event: Err(json.clone()),
        dest: row.get(2),
        attempts: 0,
        error: row.get(3),
        at_ms: row.get(4),
    });
    StoredDeadLetter {
        key: seq.to_string(),
        letter,
    }
}

impl DeadLetters for PostgresQueue {
    fn dead_letters(&mut self) -> Result<Vec<StoredDeadLetter>> {
        self.read(|tx| {
            Ok(tx
                .query(
                    &format!("SELECT {DEAD_COLUMNS} FROM dead ORDER BY seq"),
                    &[],
                )?
                .iter()
                .map(stored_letter)
                .collect())
        })
    }

    fn dead_before(&mut self, before: Option<&str>, count: usize) -> Result<Vec<StoredDeadLetter>> {
        let before = match before {
            Some(key) => parse_key(&self.shown, "dead letter", key)?,
            None => i64::MAX,
        };
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        self.read(|tx| {
            Ok(tx
                .query(
                    &format!(
                        "SELECT {DEAD_COLUMNS} FROM dead WHERE seq < $1 ORDER BY seq DESC LIMIT $2"
                    ),
                    &[&before, &count],
                )?
                .iter()
                .map(stored_letter)
                .collect())
        })
    }

    fn requeue_dead(&mut self, letters: &[(String, Delivery)], due_ms: i64) -> Result<()> {
        let letters = letters
            .iter()
            .map(|(key, delivery)| Ok((parse_key(&self.shown, "dead letter", key)?, delivery)))
            .collect::<Result<Vec<_>>>()?;
        if letters.is_empty() {
            return Ok(());
        }
        let seqs: Vec<i64> = letters.iter().map(|(seq, _)| *seq).collect();
        // One row per token, the last given winning: one statement may
        // write a row only once.
        let mut seen = HashSet::new();
        let (mut of_token, mut tokens, mut dests, mut bodies) =
            (Vec::new(), Vec::new(), Vec::<&str>::new(), Vec::new());
        for (seq, delivery) in letters.iter().rev() {
            let token = delivery.token();
            if seen.insert(token.clone()) {
                of_token.push(*seq);
                tokens.push(token);
                dests.push(&delivery.dest);
                bodies.push(to_json(delivery));
            }
        }
        // Only a letter still there goes back: one erased (or purged, or
        // replayed by another) since it was read stays gone.
        self.single(|client| {
            client
                .execute_typed(
                    "WITH gone AS (DELETE FROM dead WHERE seq = ANY($1) RETURNING seq)
                     INSERT INTO retry (token, due_ms, dest, delivery)
                     SELECT r.token, $4, r.dest, r.delivery
                     FROM unnest($2::bigint[], $3::text[], $5::text[], $6::text[])
                         AS r (seq, token, dest, delivery)
                     WHERE r.seq IN (SELECT seq FROM gone)
                     ON CONFLICT (token) DO UPDATE
                     SET due_ms = excluded.due_ms, delivery = excluded.delivery",
                    &[
                        (&seqs, Type::INT8_ARRAY),
                        (&of_token, Type::INT8_ARRAY),
                        (&tokens, Type::TEXT_ARRAY),
                        (&due_ms, Type::INT8),
                        (&dests, Type::TEXT_ARRAY),
                        (&bodies, Type::TEXT_ARRAY),
                    ],
                )
                .map(drop)
        })
    }

    fn count_dead(&mut self, filter: &DeadFilter) -> Result<u64> {
        self.dead_pass(filter, false)
    }

    fn purge_dead(&mut self, filter: &DeadFilter) -> Result<u64> {
        self.dead_pass(filter, true)
    }
}
