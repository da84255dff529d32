//! What every worker on one Redis shares, each decided in one script: the
//! rate limits (a token bucket per destination, on the server's clock), the
//! consumer names workers hold, and the dead-letter alert windows.

use std::time::Duration;

use super::{GROUP, RedisQueue};
use crate::event::now_ms;
use crate::queue::window;
use crate::queue::{AlertWindows, ConsumerHeld, Leases, RateLimit, Result};
use crate::rate::Rate;

/// Takes or renews the consumer name `KEYS[1]` for the holder `ARGV[1]` for
/// `ARGV[2]` ms; when another holds it, returns that holder and the ms its
/// lease has left.
const HOLD_CONSUMER: &str = include_str!("hold_consumer.lua");

const RELEASE_CONSUMER: &str = include_str!("release_consumer.lua");

/// Deletes a consumer from the group unless it still holds entries.
const LEAVE: &str = include_str!("leave.lua");

/// `KEYS[1]` exists while `ARGV[1]`'s alert window is open (it expires
/// with it); `KEYS[2]` counts, per destination, the dead letters seen while
/// it was. Returns what to report when this call opens a window, else nil.
const COUNT_FOR_ALERT: &str = include_str!("count_for_alert.lua");

/// Reports what one destination's ended alert window counted, opening a
/// new window: `{count, error}`, or nothing when nothing is owed (or the
/// window is still open, or another worker just reported it).
const ALERT_DUE: &str = include_str!("alert_due.lua");

/// The Redis server's clock in ms, as `now` for [`TAKE_TOKEN_RULE`]:
/// workers on other hosts share it.
const SERVER_NOW: &str = include_str!("server_now.lua");

/// `rate::take` at `now`: `KEYS[1]` holds when the next send is free (ms),
/// expiring once it is; `ARGV[1]` is the interval (ms). Returns `{0, why}`
/// when a send is taken (`why` when the state found could not be read and
/// was reset, else nil), `{ms, nil}` when it must wait. Public for the
/// test that holds it to `rate::take`.
#[doc(hidden)]
pub const TAKE_TOKEN_RULE: &str = include_str!("take_token_rule.lua");

impl RateLimit for RedisQueue {
    fn take_token(&mut self, dest: &str, rate: Rate) -> Result<Option<Duration>> {
        let key = format!("{}:rate:{dest}", self.prefix);
        let script = redis::Script::new(&format!("{SERVER_NOW}{TAKE_TOKEN_RULE}"));
        let (wait_ms, reset): (u64, Option<String>) =
            self.with(|c| script.key(&key).arg(rate.interval_ms()).invoke(c))?;
        if let Some(why) = reset {
            log::warn!("the rate limit state at {key} could not be read ({why}); reset");
        }
        Ok((wait_ms > 0).then(|| Duration::from_millis(wait_ms)))
    }
}

impl Leases for RedisQueue {
    fn hold_consumer(&mut self, consumer: &str, holder: &str, lease: Duration) -> Result<()> {
        let key = format!("{}:consumer:{consumer}", self.prefix);
        let lease_ms = lease.as_millis().max(1) as u64;
        let script = redis::Script::new(HOLD_CONSUMER);
        let held: Option<(String, i64)> =
            self.with(|c| script.key(&key).arg(holder).arg(lease_ms).invoke(c))?;
        match held {
            None => Ok(()),
            Some((holder, left_ms)) => Err(ConsumerHeld {
                name: consumer.to_owned(),
                holder,
                until_ms: now_ms() + left_ms.max(0),
            }
            .into()),
        }
    }

    fn release_consumer(&mut self, consumer: &str, holder: &str) -> Result<()> {
        let key = format!("{}:consumer:{consumer}", self.prefix);
        let script = redis::Script::new(RELEASE_CONSUMER);
        self.with(|c| script.key(&key).arg(holder).invoke::<i64>(c))?;
        Ok(())
    }

    fn leave(&mut self, consumer: &str) -> Result<()> {
        let script = redis::Script::new(LEAVE);
        let stream = self.stream.clone();
        self.with(|c| {
            script
                .key(&stream)
                .arg(GROUP)
                .arg(consumer)
                .invoke::<i64>(c)
        })?;
        Ok(())
    }
}

impl AlertWindows for RedisQueue {
    fn count_dead_for_alert(
        &mut self,
        dest: &str,
        count: u64,
        error: &str,
        window: Duration,
    ) -> Result<Option<u64>> {
        let [open, between, errors] = self.alert_keys(dest);
        let script = redis::Script::new(COUNT_FOR_ALERT);
        let window_ms = window.as_millis() as u64;
        self.with(|c| {
            script
                .key(&open)
                .key(&between)
                .key(&errors)
                .arg(dest)
                .arg(count)
                .arg(window_ms)
                .arg(error)
                .invoke(c)
        })
    }

    fn alerts_due(&mut self, window: Duration) -> Result<Vec<window::Tally>> {
        let [_, between, _] = self.alert_keys("");
        let dests: Vec<String> = self.with(|c| redis::cmd("HKEYS").arg(&between).query(c))?;
        let script = redis::Script::new(ALERT_DUE);
        let window_ms = window.as_millis() as u64;
        let mut due = Vec::new();
        for dest in dests {
            let keys = self.alert_keys(&dest);
            let owed: Option<(u64, String)> = self.with(|c| {
                script
                    .key(&keys[0])
                    .key(&keys[1])
                    .key(&keys[2])
                    .arg(&dest)
                    .arg(window_ms)
                    .invoke(c)
            })?;
            if let Some((count, error)) = owed {
                due.push(window::Tally { dest, count, error });
            }
        }
        Ok(due)
    }
}

impl RedisQueue {
    /// One destination's alert window (a key that expires when it ends),
    /// and the hashes of what every destination counted meanwhile and its
    /// latest error.
    fn alert_keys(&self, dest: &str) -> [String; 3] {
        [
            format!("{}:alert:{dest}", self.prefix),
            format!("{}:alert_between", self.prefix),
            format!("{}:alert_errors", self.prefix),
        ]
    }
}
