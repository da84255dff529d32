//! Where the SQLite backend keeps destinations' holds: the table `holds`
//! (migration 10), one row per destination and kind. Every worker reads
//! all of it about once a second.

use rusqlite::{OptionalExtension, params};

use super::SqliteQueue;
use crate::queue::{Hold, HoldKind, Holds, RawHold, Result};

impl Holds for SqliteQueue {
    fn put_hold(&mut self, dest: &str, hold: &Hold) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO holds (dest, kind, hold) VALUES (?1, ?2, ?3)
                 ON CONFLICT (dest, kind) DO UPDATE SET hold = excluded.hold",
            )?
            .execute(params![dest, hold.kind().as_str(), hold.encode()])?;
            Ok(())
        })
    }

    fn remove_hold(&mut self, dest: &str, kind: HoldKind) -> Result<bool> {
        self.write(|tx| {
            let removed = tx
                .prepare_cached("DELETE FROM holds WHERE dest = ?1 AND kind = ?2")?
                .execute(params![dest, kind.as_str()])?;
            Ok(removed > 0)
        })
    }

    fn holds_raw(&mut self) -> Result<Vec<RawHold>> {
        self.read(|tx| {
            tx.prepare_cached("SELECT dest, kind, hold FROM holds ORDER BY dest, kind")?
                .query_map([], |row| {
                    Ok(RawHold {
                        dest: row.get(0)?,
                        kind: row.get(1)?,
                        json: row.get(2)?,
                    })
                })?
                .collect()
        })
    }

    fn hold_raw(&mut self, dest: &str, kind: HoldKind) -> Result<Option<String>> {
        self.read(|tx| {
            tx.prepare_cached("SELECT hold FROM holds WHERE dest = ?1 AND kind = ?2")?
                .query_row(params![dest, kind.as_str()], |row| row.get(0))
                .optional()
        })
    }

    fn swap_hold(
        &mut self,
        dest: &str,
        kind: HoldKind,
        expected: Option<&str>,
        new: Option<&Hold>,
    ) -> Result<bool> {
        let kind = kind.as_str();
        let new = new.map(Hold::encode);
        self.write(|tx| {
            let changed = match (expected, &new) {
                (None, Some(new)) => tx
                    .prepare_cached(
                        "INSERT INTO holds (dest, kind, hold) VALUES (?1, ?2, ?3)
                         ON CONFLICT (dest, kind) DO NOTHING",
                    )?
                    .execute(params![dest, kind, new])?,
                (None, None) => {
                    let absent: bool = tx
                        .prepare_cached(
                            "SELECT NOT EXISTS (SELECT 1 FROM holds WHERE dest = ?1 AND kind = ?2)",
                        )?
                        .query_row(params![dest, kind], |row| row.get(0))?;
                    usize::from(absent)
                }
                (Some(old), Some(new)) => tx
                    .prepare_cached(
                        "UPDATE holds SET hold = ?4 WHERE dest = ?1 AND kind = ?2 AND hold = ?3",
                    )?
                    .execute(params![dest, kind, old, new])?,
                (Some(old), None) => tx
                    .prepare_cached(
                        "DELETE FROM holds WHERE dest = ?1 AND kind = ?2 AND hold = ?3",
                    )?
                    .execute(params![dest, kind, old])?,
            };
            Ok(changed == 1)
        })
    }

    fn waiting(&mut self, dest: &str) -> Result<u64> {
        self.read(|tx| {
            let n: Option<i64> = tx
                .prepare_cached("SELECT sum(n) FROM retry_counts WHERE dest = ?1")?
                .query_row([dest], |row| row.get(0))?;
            Ok(n.unwrap_or(0).max(0) as u64)
        })
    }
}
