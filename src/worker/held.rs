//! What this worker holds: claimed entries and retries not yet settled, and
//! since when. It keeps a worker from dispatching an entry twice when it
//! reclaims its own, and tells the reader which claims to renew before
//! their lease runs out — a slow destination (Slack working through a burst
//! at one message per second) must not make another worker take over and
//! send the same messages again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::queue::Settlement;

#[derive(Default)]
struct Claims {
    entries: HashMap<String, Instant>,
    retries: HashMap<String, Instant>,
}

#[derive(Default)]
pub struct Held(Mutex<Claims>);

impl Held {
    fn lock(&self) -> std::sync::MutexGuard<'_, Claims> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records newly claimed entries; returns false for one already held.
    pub fn claim_entry(&self, key: &str) -> bool {
        let mut claims = self.lock();
        if claims.entries.contains_key(key) {
            return false;
        }
        claims.entries.insert(key.to_owned(), Instant::now());
        true
    }

    pub fn claim_retry(&self, token: &str) {
        self.lock().retries.insert(token.to_owned(), Instant::now());
    }

    /// Forgets what a written settlement finished.
    pub fn release(&self, settlement: &Settlement) {
        let mut claims = self.lock();
        for key in &settlement.acks {
            claims.entries.remove(key);
        }
        for token in &settlement.done_retries {
            claims.retries.remove(token);
        }
    }

    /// Entries and retries claimed or renewed longer than `age` ago, marked
    /// renewed now.
    pub fn to_renew(&self, age: Duration) -> (Vec<String>, Vec<String>) {
        let now = Instant::now();
        let mut claims = self.lock();
        let stale = |map: &mut HashMap<String, Instant>| {
            map.iter_mut()
                .filter(|(_, at)| now.duration_since(**at) >= age)
                .map(|(key, at)| {
                    *at = now;
                    key.clone()
                })
                .collect::<Vec<_>>()
        };
        let entries = stale(&mut claims.entries);
        let retries = stale(&mut claims.retries);
        (entries, retries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_held_once_until_released() {
        let held = Held::default();
        assert!(held.claim_entry("1-0"));
        assert!(!held.claim_entry("1-0"));
        held.release(&Settlement {
            acks: vec!["1-0".into()],
            ..Settlement::default()
        });
        assert!(held.claim_entry("1-0"));
    }

    #[test]
    fn renewal_takes_only_old_claims_and_restarts_their_clock() {
        let held = Held::default();
        held.claim_entry("1-0");
        held.claim_retry("t");
        assert_eq!(held.to_renew(Duration::from_secs(60)), (vec![], vec![]));
        assert_eq!(
            held.to_renew(Duration::ZERO),
            (vec!["1-0".into()], vec!["t".into()])
        );
    }
}
