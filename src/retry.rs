//! The retry decision: what becomes of a delivery after an attempt —
//! delivered, tried again at a time, or dead — as pure functions, decided
//! once for every destination and backend. Exponential backoff with jitter,
//! so a recovering destination is not hit by every worker's retries at the
//! same instant.

use std::time::Duration;

use crate::dest::Attempt;

/// The longest wait between two attempts.
const CAP: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        self.delay_with(attempts, &mut fastrand::Rng::new())
    }

    /// [`delay`](Self::delay), with the jitter drawn from `rng`.
    pub fn delay_with(&self, attempts: u32, rng: &mut fastrand::Rng) -> Duration {
        let exponent = attempts.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1 << exponent).min(CAP);
        full.mul_f64(0.5 + rng.f64() * 0.5)
    }

    /// Whether a delivery that has failed `attempts` times gives up.
    pub fn exhausted(&self, attempts: u32) -> bool {
        attempts >= self.max_attempts
    }
}

/// What becomes of one delivery after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Delivered,
    /// Back to the retry set, due `wait` from now; `attempts` is what it
    /// will have spent, and `spent` whether this attempt counted (a
    /// `Retry-After` or a deferral does not).
    Retry {
        attempts: u32,
        wait: Duration,
        spent: bool,
        error: String,
    },
    /// Dead-lettered after `attempts` attempts.
    Dead {
        attempts: u32,
        error: String,
    },
}

/// Decides what becomes of a delivery whose attempt ended in `outcome`,
/// with `attempts` spent before it, under `policy`. `outcome` is one item's
/// (see [`Attempt::of`]); an `Each` that reaches here has no outcome for
/// the item and is dead-lettered, keeping it for `replay --dead`.
pub fn decide(
    outcome: &Attempt,
    attempts: u32,
    policy: &RetryPolicy,
    rng: &mut fastrand::Rng,
) -> Decision {
    match outcome {
        Attempt::Delivered => Decision::Delivered,
        Attempt::RetryAfter(wait, error) | Attempt::Deferred(wait, error) => Decision::Retry {
            attempts,
            wait: *wait,
            spent: false,
            error: error.clone(),
        },
        Attempt::Transient(error) if !policy.exhausted(attempts + 1) => Decision::Retry {
            attempts: attempts + 1,
            wait: policy.delay_with(attempts + 1, rng),
            spent: true,
            error: error.clone(),
        },
        Attempt::Transient(error) | Attempt::Permanent(error) => Decision::Dead {
            attempts: attempts + 1,
            error: error.clone(),
        },
        Attempt::Each(_) => Decision::Dead {
            attempts: attempts + 1,
            error: "no outcome was reported".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dest::Answer;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(100),
    };

    fn decide(outcome: Attempt, attempts: u32) -> Decision {
        super::decide(
            &outcome,
            attempts,
            &POLICY,
            &mut fastrand::Rng::with_seed(7),
        )
    }

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

    #[test]
    fn delivered_is_delivered() {
        assert_eq!(decide(Attempt::Delivered, 2), Decision::Delivered);
    }

    #[test]
    fn a_transient_failure_under_budget_spends_an_attempt_and_backs_off() {
        let Decision::Retry {
            attempts,
            wait,
            spent,
            error,
        } = decide(Attempt::Transient("HTTP 503".into()), 1)
        else {
            panic!("not a retry");
        };
        assert_eq!((attempts, spent, error.as_str()), (2, true, "HTTP 503"));
        // The second failure waits between half and all of base · 2.
        assert!(wait >= Duration::from_millis(100) && wait <= Duration::from_millis(200));
    }

    #[test]
    fn a_transient_failure_that_exhausts_the_budget_is_dead() {
        assert_eq!(
            decide(Attempt::Transient("timed out".into()), 2),
            Decision::Dead {
                attempts: 3,
                error: "timed out".into()
            }
        );
    }

    #[test]
    fn a_permanent_failure_is_dead_at_once() {
        assert_eq!(
            decide(Attempt::Permanent("HTTP 400".into()), 0),
            Decision::Dead {
                attempts: 1,
                error: "HTTP 400".into()
            }
        );
    }

    #[test]
    fn retry_after_and_deferred_wait_as_told_without_spending_an_attempt() {
        let wait = Duration::from_secs(30);
        for outcome in [
            Attempt::RetryAfter(wait, "HTTP 429".into()),
            Attempt::Deferred(wait, "behind".into()),
        ] {
            // Even with the budget spent: no attempt was made.
            let Decision::Retry {
                attempts,
                wait: got,
                spent,
                ..
            } = decide(outcome, 2)
            else {
                panic!("not a retry");
            };
            assert_eq!((attempts, got, spent), (2, wait, false));
        }
    }

    #[test]
    fn each_item_of_a_send_is_decided_by_its_own_outcome() {
        let outcome = Answer::from(Attempt::Each(vec![
            Attempt::Delivered.into(),
            Attempt::Permanent("bad event".into()).into(),
        ]));
        assert_eq!(decide(outcome.of(0).attempt, 0), Decision::Delivered);
        assert_eq!(
            decide(outcome.of(1).attempt, 0),
            Decision::Dead {
                attempts: 1,
                error: "bad event".into()
            }
        );
        // An item the destination said nothing about is tried again.
        assert!(matches!(
            decide(outcome.of(2).attempt, 0),
            Decision::Retry { spent: true, .. }
        ));
        // A nested `Each` has no outcome for the item: dead, kept for replay.
        assert!(matches!(decide(outcome.attempt, 0), Decision::Dead { .. }));
    }
}
