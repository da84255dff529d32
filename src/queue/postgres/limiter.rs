//! What every worker on one database shares: the rate limits (see
//! [`crate::rate::take`]), the consumer names workers hold, and the
//! dead-letter alert windows (see [`crate::queue::window`]). Each is one row
//! per destination or name, locked for the read and the update together.

use std::time::Duration;

use super::{PostgresQueue, duration_ms};
use crate::event::now_ms;
use crate::queue::window;
use crate::queue::{AlertWindows, ConsumerHeld, Leases, RateLimit, Result};
use crate::rate::{self, Rate, Taken};

impl RateLimit for PostgresQueue {
    fn take_token(&mut self, dest: &str, rate: Rate) -> Result<Option<Duration>> {
        self.write(|tx| {
            // The row exists, then is locked: every worker takes its turn.
            tx.execute(
                "INSERT INTO rate_limits (dest) VALUES ($1) ON CONFLICT (dest) DO NOTHING",
                &[&dest],
            )?;
            let next: Option<i64> = tx
                .query_one(
                    "SELECT next_free_ms FROM rate_limits WHERE dest = $1 FOR UPDATE",
                    &[&dest],
                )?
                .get(0);
            let text = next.map(|ms| ms.to_string());
            let stored = match &text {
                None => rate::Stored::Nothing,
                Some(text) => rate::Stored::Text(text),
            };
            let next_free_ms = match rate::take(stored, now_ms(), rate) {
                Taken::Wait(wait) => return Ok(Some(wait)),
                Taken::Granted { next_free_ms } | Taken::Reset { next_free_ms, .. } => next_free_ms,
            };
            tx.execute(
                "UPDATE rate_limits SET next_free_ms = $2 WHERE dest = $1",
                &[&dest, &next_free_ms],
            )?;
            Ok(None)
        })
    }
}

impl Leases for PostgresQueue {
    fn hold_consumer(&mut self, consumer: &str, holder: &str, lease: Duration) -> Result<()> {
        let lease_ms = duration_ms(lease);
        let held = self.write(|tx| {
            let now = now_ms();
            // Taken when free, expired, or already ours (a renewal).
            let taken = tx.execute(
                "INSERT INTO consumer_leases (name, holder, expires_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE
                 SET holder = excluded.holder, expires_ms = excluded.expires_ms
                 WHERE consumer_leases.holder = excluded.holder
                    OR consumer_leases.expires_ms <= $4",
                &[&consumer, &holder, &now.saturating_add(lease_ms), &now],
            )?;
            if taken > 0 {
                return Ok(None);
            }
            Ok(tx
                .query_opt(
                    "SELECT holder, expires_ms FROM consumer_leases WHERE name = $1",
                    &[&consumer],
                )?
                .map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1))))
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
                "DELETE FROM consumer_leases WHERE name = $1 AND holder = $2",
                &[&consumer, &holder],
            )
            .map(drop)
        })
    }

    fn leave(&mut self, consumer: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM consumers WHERE name = $1
                 AND NOT EXISTS (SELECT 1 FROM stream WHERE state = 1 AND consumer = $1)",
                &[&consumer],
            )
            .map(drop)
        })
    }
}

impl AlertWindows for PostgresQueue {
    fn count_dead_for_alert(
        &mut self,
        dest: &str,
        count: u64,
        error: &str,
        window: Duration,
    ) -> Result<Option<u64>> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO alert_windows (dest) VALUES ($1) ON CONFLICT (dest) DO NOTHING",
                &[&dest],
            )?;
            let row = tx.query_one(
                "SELECT until_ms, counted_between FROM alert_windows WHERE dest = $1 FOR UPDATE",
                &[&dest],
            )?;
            let before = window::Window {
                until_ms: row.get(0),
                between: row.get::<_, i64>(1).max(0) as u64,
            };
            let (after, report) = window::count_into(before, count, now_ms(), window);
            tx.execute(
                "UPDATE alert_windows SET until_ms = $2, counted_between = $3, last_error = $4
                 WHERE dest = $1",
                &[&dest, &after.until_ms, &(after.between as i64), &error],
            )?;
            Ok(report)
        })
    }

    fn alerts_due(&mut self, window: Duration) -> Result<Vec<window::Tally>> {
        self.write(|tx| {
            let now = now_ms();
            let owing = tx.query(
                "SELECT dest, until_ms, counted_between, last_error FROM alert_windows
                 WHERE counted_between > 0 AND until_ms <= $1 FOR UPDATE",
                &[&now],
            )?;
            let mut due = Vec::new();
            for row in owing {
                let before = window::Window {
                    until_ms: row.get(1),
                    between: row.get::<_, i64>(2).max(0) as u64,
                };
                let (after, owed) = window::due(before, now, window);
                let Some(count) = owed else { continue };
                let dest: String = row.get(0);
                tx.execute(
                    "UPDATE alert_windows SET until_ms = $2, counted_between = 0 WHERE dest = $1",
                    &[&dest, &after.until_ms],
                )?;
                due.push(window::Tally {
                    dest,
                    count,
                    error: row.get(3),
                });
            }
            Ok(due)
        })
    }
}
