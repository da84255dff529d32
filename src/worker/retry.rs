//! The retry policy: how long to wait before trying a failed delivery again,
//! and when to give up. Exponential backoff with jitter, so a recovering
//! destination is not hit by every worker's retries at the same instant.

use std::time::Duration;

/// The longest wait between two attempts.
const CAP: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles after each next one.
    pub base: Duration,
}

impl RetryPolicy {
    /// The wait after `attempts` failed attempts (1 after the first): between
    /// half and all of `base · 2^(attempts-1)`, capped at an hour.
    pub fn delay(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1 << exponent).min(CAP);
        full.mul_f64(0.5 + fastrand::f64() * 0.5)
    }

    /// Whether a delivery that has failed `attempts` times gives up.
    pub fn exhausted(&self, attempts: u32) -> bool {
        attempts >= self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_jitter_and_cap() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
        };
        for attempts in 1..=4u32 {
            let full = Duration::from_millis(100 * (1 << (attempts - 1)));
            let d = policy.delay(attempts);
            assert!(d >= full / 2 && d <= full, "{attempts}: {d:?}");
        }
        assert!(policy.delay(40) <= CAP);
        assert!(!policy.exhausted(4));
        assert!(policy.exhausted(5));
    }
}
