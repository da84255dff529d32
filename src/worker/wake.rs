//! What the settler tells the reader. A reader whose window is full waits
//! for the settler to free slots, on a channel rather than a timer, so it
//! claims more the moment it can. And the settler says when the earliest
//! retry it scheduled falls due, so the reader claims that retry on time
//! instead of at its next routine look at the retry set (only a retry it
//! will claim: a worker with `--only` parks deliveries for the others, due
//! at once, and must not look for them).

use std::sync::atomic::{AtomicI64, Ordering};

use crossbeam_channel::{Receiver, Sender};

pub struct Wake {
    /// Holds at most one wake-up: one pending is all a waiting reader needs.
    freed_tx: Sender<()>,
    freed_rx: Receiver<()>,
    /// The earliest due time (ms since the epoch) scheduled since the reader
    /// last asked; `i64::MAX` for none.
    next_due_ms: AtomicI64,
    /// The destinations the reader claims retries for (all when empty).
    only: Vec<String>,
}

impl Wake {
    /// For a reader that claims retries to `only` (all when empty).
    pub fn new(only: &[String]) -> Wake {
        let (freed_tx, freed_rx) = crossbeam_channel::bounded(1);
        Wake {
            freed_tx,
            freed_rx,
            next_due_ms: AtomicI64::new(i64::MAX),
            only: only.to_vec(),
        }
    }

    /// The settler freed window slots.
    pub fn freed(&self) {
        let _ = self.freed_tx.try_send(());
    }

    /// For the reader's `select!`: a message once slots were freed since it
    /// last received one.
    pub fn freed_signal(&self) -> &Receiver<()> {
        &self.freed_rx
    }

    /// The settler scheduled a retry to `dest` due at `due_ms`.
    pub fn scheduled(&self, dest: &str, due_ms: i64) {
        if self.only.is_empty() || self.only.iter().any(|name| name == dest) {
            self.next_due_ms.fetch_min(due_ms, Ordering::SeqCst);
        }
    }

    /// The earliest due time scheduled since the last call, if any.
    pub fn take_next_due(&self) -> Option<i64> {
        let due = self.next_due_ms.swap(i64::MAX, Ordering::SeqCst);
        (due != i64::MAX).then_some(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_due_time_is_handed_over_once() {
        let wake = Wake::new(&[]);
        assert_eq!(wake.take_next_due(), None);
        wake.scheduled("slack", 5_000);
        wake.scheduled("webhook", 3_000);
        wake.scheduled("slack", 4_000);
        assert_eq!(wake.take_next_due(), Some(3_000));
        assert_eq!(wake.take_next_due(), None);
    }

    #[test]
    fn only_retries_the_reader_claims_count() {
        let wake = Wake::new(&["slack".to_owned()]);
        wake.scheduled("webhook", 1_000);
        assert_eq!(wake.take_next_due(), None, "left for another worker");
        wake.scheduled("slack", 2_000);
        assert_eq!(wake.take_next_due(), Some(2_000));
    }

    #[test]
    fn many_frees_leave_one_wake_up() {
        let wake = Wake::new(&[]);
        wake.freed();
        wake.freed();
        assert!(wake.freed_signal().try_recv().is_ok());
        assert!(wake.freed_signal().try_recv().is_err());
    }
}
