//! What every worker on one file shares: the rate limits (see
//! [`crate::rate::take`]), the consumer names workers hold, and the
//! dead-letter alert windows (see [`crate::queue::window`]).

use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params};

use super::{SqliteQueue, duration_ms};
use crate::event::now_ms;
use crate::queue::window;
use crate::queue::{AlertWindows, ConsumerHeld, Leases, RateLimit, Result};
use crate::rate::{self, Rate, Taken};

impl RateLimit for SqliteQueue {
    fn take_token(&mut self, dest: &str, rate: Rate) -> Result<Option<Duration>> {
        // Every worker on this file runs on this machine: they share its clock.
        let (wait, reset) = self.write(|tx| {
            let found: Option<Value> = tx
                .query_row(
                    "SELECT next_free_ms FROM rate_limits WHERE dest = ?1",
                    [dest],
                    |row| row.get(0),
                )
                .optional()?;
            let text = match &found {
                Some(Value::Integer(ms)) => Some(ms.to_string()),
                Some(Value::Real(ms)) => Some(ms.to_string()),
                Some(Value::Text(text)) => Some(text.clone()),
                _ => None,
            };
            let stored = match (&found, &text) {
                (None, _) => rate::Stored::Nothing,
                (_, Some(text)) => rate::Stored::Text(text),
                (Some(_), None) => rate::Stored::Unreadable("neither a number nor text"),
            };
            let (next_free_ms, reset) = match rate::take(stored, now_ms(), rate) {
                Taken::Wait(wait) => return Ok((Some(wait), None)),
                Taken::Granted { next_free_ms } => (next_free_ms, None),
                Taken::Reset { next_free_ms, why } => (next_free_ms, Some(why)),
            };
            tx.execute(
                "INSERT INTO rate_limits (dest, next_free_ms) VALUES (?1, ?2)
                 ON CONFLICT (dest) DO UPDATE SET next_free_ms = excluded.next_free_ms",
                params![dest, next_free_ms],
            )?;
            Ok((None, reset))
        })?;
        if let Some(why) = reset {
            log::warn!(
                "the rate limit state at row {dest:?} of rate_limits in {} could not be read ({why}); reset",
                self.path.display()
            );
        }
        Ok(wait)
    }
}

impl Leases for SqliteQueue {
    fn hold_consumer(&mut self, consumer: &str, holder: &str, lease: Duration) -> Result<()> {
        let lease_ms = duration_ms(lease);
        let held = self.write(|tx| {
            let now = now_ms();
            // Taken when free, expired, or already ours (a renewal).
            let taken = tx
                .prepare_cached(
                    "INSERT INTO consumer_leases (name, holder, expires_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE
                     SET holder = excluded.holder, expires_ms = excluded.expires_ms
                     WHERE holder = excluded.holder OR expires_ms <= ?4",
                )?
                .execute(params![consumer, holder, now.saturating_add(lease_ms), now])?;
            if taken > 0 {
                return Ok(None);
            }
            tx.prepare_cached("SELECT holder, expires_ms FROM consumer_leases WHERE name = ?1")?
                .query_row([consumer], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })?;
        match held {
            None => Ok(()),
            Some((holder, until_ms)) => Err(ConsumerHeld {
                name: consumer.to_owned(),
                holder,
                until_ms,
            }
            .into()),
        }
    }

    fn release_consumer(&mut self, consumer: &str, holder: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM consumer_leases WHERE name = ?1 AND holder = ?2",
                params![consumer, holder],
            )
            .map(|_| ())
        })
    }

    fn leave(&mut self, consumer: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM consumers WHERE name = ?1
                 AND NOT EXISTS (SELECT 1 FROM stream WHERE state = 1 AND consumer = ?1)",
                [consumer],
            )
            .map(|_| ())
        })
    }
}

impl AlertWindows for SqliteQueue {
    fn count_dead_for_alert(
        &mut self,
        dest: &str,
        count: u64,
        error: &str,
        window: Duration,
    ) -> Result<Option<u64>> {
        self.write(|tx| {
            let before = tx
                .query_row(
                    "SELECT until_ms, counted_between FROM alert_windows WHERE dest = ?1",
                    [dest],
                    |row| {
                        Ok(window::Window {
                            until_ms: Some(row.get(0)?),
                            between: row.get::<_, i64>(1)?.max(0) as u64,
                        })
                    },
                )
                .optional()?
                .unwrap_or_default();
            let (after, report) = window::count_into(before, count, now_ms(), window);
            tx.execute(
                "INSERT INTO alert_windows (dest, until_ms, counted_between, last_error)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (dest) DO UPDATE SET until_ms = excluded.until_ms,
                 counted_between = excluded.counted_between, last_error = excluded.last_error",
                params![dest, after.until_ms, after.between as i64, error],
            )?;
            Ok(report)
        })
    }

    fn alerts_due(&mut self, window: Duration) -> Result<Vec<window::Tally>> {
        self.write(|tx| {
            let now = now_ms();
            let owing = tx
                .prepare_cached(
                    "SELECT dest, until_ms, counted_between, last_error FROM alert_windows
                     WHERE counted_between > 0 AND until_ms <= ?1",
                )?
                .query_map([now], |row| {
                    let window = window::Window {
                        until_ms: Some(row.get(1)?),
                        between: row.get::<_, i64>(2)?.max(0) as u64,
                    };
                    Ok((row.get::<_, String>(0)?, window, row.get::<_, String>(3)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut due = Vec::new();
            for (dest, before, error) in owing {
                let (after, owed) = window::due(before, now, window);
                let Some(count) = owed else { continue };
                tx.execute(
                    "UPDATE alert_windows SET until_ms = ?2, counted_between = 0 WHERE dest = ?1",
                    params![dest, after.until_ms],
                )?;
                due.push(window::Tally { dest, count, error });
            }
            Ok(due)
        })
    }
}
