//! The dead letters: listed, requeued, counted and purged.

use rusqlite::{Transaction, params};

use super::{DEAD_PAGE, SqliteQueue, clamp, from_json, parse_key, to_json, upsert_retry};
use crate::queue::{DeadFilter, DeadLetter, DeadLetters, Delivery, Result, StoredDeadLetter};

impl SqliteQueue {
    /// Counts, and removes when `remove` is set, the dead letters `filter`
    /// selects, a page of letters per transaction (the counts `status` shows
    /// follow by trigger). Time and destination are checked before a letter
    /// is decoded.
    fn dead_pass(&mut self, filter: &DeadFilter, remove: bool) -> Result<u64> {
        let before = filter.before_ms.unwrap_or(i64::MAX);
        let mut after = 0_i64;
        let mut selected = 0;
        loop {
            let (last, seqs) = self.read(|tx| {
                let mut last = None;
                let mut seqs = Vec::new();
                let mut stmt = tx.prepare_cached(
                    "SELECT seq, letter, dest, error, at_ms FROM dead
                     WHERE seq > ?1 AND at_ms < ?2 ORDER BY seq LIMIT ?3",
                )?;
                let mut rows = stmt.query(params![after, before, DEAD_PAGE])?;
                while let Some(row) = rows.next()? {
                    let seq: i64 = row.get(0)?;
                    last = Some(seq);
                    let (dest, at_ms): (String, i64) = (row.get(2)?, row.get(4)?);
                    if !filter.passes_over(&dest, at_ms)
                        && filter.matches(&stored_letter(row)?.letter)
                    {
                        seqs.push(seq);
                    }
                }
                Ok((last, seqs))
            })?;
            selected += seqs.len() as u64;
            if remove && !seqs.is_empty() {
                self.write(|tx| {
                    let mut delete = tx.prepare_cached("DELETE FROM dead WHERE seq = ?1")?;
                    seqs.iter()
                        .try_for_each(|seq| delete.execute([seq]).map(drop))
                })?;
            }
            match last {
                Some(last) => after = last,
                None => return Ok(selected),
            }
        }
    }
}

pub(super) fn insert_dead(tx: &Transaction, letter: &DeadLetter) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO dead (letter, dest, error, at_ms) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![
            to_json(letter)?,
            letter.dest,
            letter.error,
            letter.at_ms
        ])?;
    Ok(())
}

/// A column as text when it is not NULL; bytes that are not UTF-8 are
/// replaced, as Redis replies are.
/// A dead letter as listed. One that no longer decodes is still listed,
/// with its text as the event, so it can be inspected and purged.
pub(super) fn stored_letter(row: &rusqlite::Row) -> rusqlite::Result<StoredDeadLetter> {
    let seq: i64 = row.get(0)?;
    let json: String = row.get(1)?;
    let letter = from_json::<DeadLetter>(&json).unwrap_or_else(|_| DeadLetter {
        event: Err(json.clone()),
        dest: row.get(2).unwrap_or_default(),
        attempts: 0,
        error: row.get(3).unwrap_or_default(),
        at_ms: row.get(4).unwrap_or_default(),
    });
    Ok(StoredDeadLetter {
        key: seq.to_string(),
        letter,
    })
}

impl DeadLetters for SqliteQueue {
    fn dead_letters(&mut self) -> Result<Vec<StoredDeadLetter>> {
        self.read(|tx| {
            tx.prepare_cached("SELECT seq, letter, dest, error, at_ms FROM dead ORDER BY seq")?
                .query_map([], stored_letter)?
                .collect()
        })
    }

    fn dead_before(&mut self, before: Option<&str>, count: usize) -> Result<Vec<StoredDeadLetter>> {
        let before = match before {
            Some(key) => parse_key(&self.path, "dead letter", key)?,
            None => i64::MAX,
        };
        self.read(|tx| {
            tx.prepare_cached(
                "SELECT seq, letter, dest, error, at_ms FROM dead
                 WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
            )?
            .query_map(params![before, clamp(count)], stored_letter)?
            .collect()
        })
    }

    fn requeue_dead(&mut self, letters: &[(String, Delivery)], due_ms: i64) -> Result<()> {
        let letters = letters
            .iter()
            .map(|(key, delivery)| Ok((parse_key(&self.path, "dead letter", key)?, delivery)))
            .collect::<Result<Vec<_>>>()?;
        if letters.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            // Only a letter still there goes back: one erased (or purged, or
            // replayed by another) since it was read stays gone. A letter's
            // deliveries are side by side.
            let mut taken = None;
            for (seq, delivery) in letters {
                if taken.is_none_or(|(last, _)| last != seq) {
                    let removed = tx
                        .prepare_cached("DELETE FROM dead WHERE seq = ?1")?
                        .execute([seq])?;
                    taken = Some((seq, removed > 0));
                }
                if taken.is_some_and(|(_, there)| there) {
                    upsert_retry(tx, delivery, due_ms)?;
                }
            }
            Ok(())
        })
    }

    fn count_dead(&mut self, filter: &DeadFilter) -> Result<u64> {
        self.dead_pass(filter, false)
    }

    fn purge_dead(&mut self, filter: &DeadFilter) -> Result<u64> {
        self.dead_pass(filter, true)
    }
}
