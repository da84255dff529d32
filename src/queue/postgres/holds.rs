//! Where the Postgres backend keeps destinations' holds: the table `holds`,
//! one row per destination and kind. Every worker reads all of it about
//! once a second.

use super::PostgresQueue;
use crate::queue::{Hold, HoldKind, Holds, RawHold, Result};

impl Holds for PostgresQueue {
    fn put_hold(&mut self, dest: &str, hold: &Hold) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO holds (dest, kind, hold) VALUES ($1, $2, $3)
                 ON CONFLICT (dest, kind) DO UPDATE SET hold = excluded.hold",
                &[&dest, &hold.kind().as_str(), &hold.encode()],
            )?;
            Ok(())
        })
    }

    fn remove_hold(&mut self, dest: &str, kind: HoldKind) -> Result<bool> {
        self.write(|tx| {
            let removed = tx.execute(
                "DELETE FROM holds WHERE dest = $1 AND kind = $2",
                &[&dest, &kind.as_str()],
            )?;
            Ok(removed > 0)
        })
    }

    fn holds_raw(&mut self) -> Result<Vec<RawHold>> {
        // Every worker asks each second: one statement, one round trip.
        let rows = self.single(|client| {
            client.query_typed(
                "SELECT dest, kind, hold FROM holds ORDER BY dest, kind",
                &[],
            )
        })?;
        Ok(rows
            .into_iter()
            .map(|row| RawHold {
                dest: row.get(0),
                kind: row.get(1),
                json: row.get(2),
            })
            .collect())
    }

    fn hold_raw(&mut self, dest: &str, kind: HoldKind) -> Result<Option<String>> {
        self.read(|tx| {
            Ok(tx
                .query_opt(
                    "SELECT hold FROM holds WHERE dest = $1 AND kind = $2",
                    &[&dest, &kind.as_str()],
                )?
                .map(|row| row.get(0)))
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
        // Each statement decides on the row as it stands once locked, so of
        // two workers swapping from the same value one changes it.
        self.write(|tx| {
            let changed = match (expected, &new) {
                (None, Some(new)) => tx.execute(
                    "INSERT INTO holds (dest, kind, hold) VALUES ($1, $2, $3)
                     ON CONFLICT (dest, kind) DO NOTHING",
                    &[&dest, &kind, new],
                )?,
                (None, None) => {
                    let absent: bool = tx
                        .query_one(
                            "SELECT NOT EXISTS (SELECT 1 FROM holds WHERE dest = $1 AND kind = $2)",
                            &[&dest, &kind],
                        )?
                        .get(0);
                    u64::from(absent)
                }
                (Some(old), Some(new)) => tx.execute(
                    "UPDATE holds SET hold = $4 WHERE dest = $1 AND kind = $2 AND hold = $3",
                    &[&dest, &kind, &old, new],
                )?,
                (Some(old), None) => tx.execute(
                    "DELETE FROM holds WHERE dest = $1 AND kind = $2 AND hold = $3",
                    &[&dest, &kind, &old],
                )?,
            };
            Ok(changed == 1)
        })
    }

    fn waiting(&mut self, dest: &str) -> Result<u64> {
        self.read(|tx| {
            let n: i64 = tx
                .query_one("SELECT count(*) FROM retry WHERE dest = $1", &[&dest])?
                .get(0);
            Ok(n.max(0) as u64)
        })
    }
}
