//! When a `--burst` worker is done: nothing unread, nothing pending
//! anywhere, and no retry due within [`BURST_SOON`]. Deliveries waiting for
//! a held destination are not waited for: the worker says what it leaves.

use std::time::{Duration, Instant};

use super::BURST_SOON;
use super::reader::Reader;
use crate::event::now_ms;
use crate::queue::Backlog;

/// How long a `--burst` worker waits before it looks again when entries
/// are unread or held by other workers.
const BURST_LOOK: Duration = Duration::from_millis(20);

impl Reader<'_> {
    /// With `--burst`: nothing unread, nothing pending anywhere, and no
    /// retry due within [`BURST_SOON`]. Waits a little for one due sooner;
    /// says what it leaves scheduled for later.
    pub(super) fn finished(&mut self) -> Result<bool, crate::Error> {
        let filter = self.retry_filter();
        let asked = filter.clone().unwrap_or_default();
        let Some(mut backlog) = self.until_available(|q| q.backlog(&asked))? else {
            return Ok(false);
        };
        if filter.is_none() {
            // Every destination it serves is held: no retry is for it.
            backlog.retries = 0;
            backlog.next_retry_ms = None;
        }
        let verdict = burst_verdict(&backlog, now_ms());
        if matches!(
            verdict,
            BurstVerdict::Done | BurstVerdict::DoneLeaving { .. }
        ) {
            self.say_held();
        }
        match verdict {
            BurstVerdict::Busy => {
                // Another worker holds entries, or some came in just now.
                self.stop.wait_until(Instant::now() + BURST_LOOK);
                Ok(false)
            }
            BurstVerdict::WaitFor(wait) => {
                self.stop.wait_until(Instant::now() + wait);
                Ok(false)
            }
            BurstVerdict::Done => Ok(true),
            BurstVerdict::DoneLeaving { retries, next_in } => {
                log::info!(
                    "leaving {retries} {} scheduled, the next due in {}",
                    if retries == 1 { "retry" } else { "retries" },
                    rounded(next_in)
                );
                Ok(true)
            }
        }
    }
}

impl Reader<'_> {
    /// Says how many deliveries wait for each held destination this worker
    /// serves, as a `--burst` worker leaves them.
    fn say_held(&mut self) {
        let only = &self.worker.options.only;
        let held: Vec<String> = self
            .gate
            .names()
            .into_iter()
            .filter(|name| only.is_empty() || only.contains(name))
            .collect();
        for name in held {
            let why = self.gate.closed(&name).map(|c| c.why).unwrap_or_default();
            let why = crate::sanitize::escape(&why);
            match self.queue.waiting(&name) {
                Ok(n) => log::info!(
                    "leaving {n} {} for {name} ({why})",
                    if n == 1 { "delivery" } else { "deliveries" }
                ),
                Err(e) => log::info!("leaving the deliveries for {name} ({why}): {e}"),
            }
        }
    }
}

/// What a `--burst` worker with nothing in hand does next.
#[derive(Debug, PartialEq, Eq)]
enum BurstVerdict {
    /// Entries are unread or pending somewhere.
    Busy,
    /// A retry is due soon: look again after this.
    WaitFor(Duration),
    /// Nothing left at all.
    Done,
    /// Only retries due later than [`BURST_SOON`] are left.
    DoneLeaving { retries: u64, next_in: Duration },
}

fn burst_verdict(backlog: &Backlog, now_ms: i64) -> BurstVerdict {
    if backlog.unread > 0 || backlog.pending > 0 {
        return BurstVerdict::Busy;
    }
    let Some(due) = backlog.next_retry_ms.filter(|_| backlog.retries > 0) else {
        return BurstVerdict::Done;
    };
    let next_in = Duration::from_millis(due.saturating_sub(now_ms).max(0) as u64);
    if next_in <= BURST_SOON {
        BurstVerdict::WaitFor(next_in.min(Duration::from_secs(1)))
    } else {
        BurstVerdict::DoneLeaving {
            retries: backlog.retries,
            next_in,
        }
    }
}

/// `59m`, `2h 5m`, `12s`: precise enough to plan by.
fn rounded(d: Duration) -> String {
    let secs = d.as_secs();
    let secs = if secs >= 60 { secs / 60 * 60 } else { secs };
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backlog(unread: u64, pending: u64, retries: u64, next: Option<i64>) -> Backlog {
        Backlog {
            unread,
            pending,
            retries,
            next_retry_ms: next,
        }
    }

    #[test]
    fn a_burst_waits_for_retries_due_soon_and_leaves_later_ones() {
        let now = 1_000_000;
        assert_eq!(
            burst_verdict(&backlog(1, 0, 0, None), now),
            BurstVerdict::Busy
        );
        assert_eq!(
            burst_verdict(&backlog(0, 2, 1, Some(now)), now),
            BurstVerdict::Busy
        );
        assert_eq!(
            burst_verdict(&backlog(0, 0, 0, None), now),
            BurstVerdict::Done
        );
        assert_eq!(
            burst_verdict(&backlog(0, 0, 1, Some(now + 300)), now),
            BurstVerdict::WaitFor(Duration::from_millis(300))
        );
        assert_eq!(
            burst_verdict(&backlog(0, 0, 1, Some(now + 4_000)), now),
            BurstVerdict::WaitFor(Duration::from_secs(1))
        );
        assert_eq!(
            burst_verdict(&backlog(0, 0, 3, Some(now + 3_599_000)), now),
            BurstVerdict::DoneLeaving {
                retries: 3,
                next_in: Duration::from_millis(3_599_000)
            }
        );
    }
    #[test]
    fn the_time_left_reads_in_whole_minutes() {
        assert_eq!(rounded(Duration::from_millis(3_599_000)), "59m");
        assert_eq!(rounded(Duration::from_secs(7_500)), "2h 5m");
        assert_eq!(rounded(Duration::from_millis(12_400)), "12s");
    }
}
