//! A circuit breaker per destination, shared by every worker through the
//! queue: after `after` consecutive transient failures (timeouts,
//! connection errors, 5xx) the destination is held (see
//! [`crate::queue::hold`]) for `cooldown`; then one probe delivery, taken
//! by one worker alone, decides: an answer closes it, a failure opens it
//! again for twice as long (at most [`MAX_COOLDOWN`]).
//!
//! What counts:
//! - a delivered send resets the count;
//! - a transient failure adds one (a send, however many deliveries it
//!   carries, counts once);
//! - a permanent refusal (4xx other than 429) neither counts nor resets:
//!   it is about the event, not the destination's health, and a stream of
//!   bad events between outages must neither open nor hide one;
//! - a 429 is the rate limiter's business, never the breaker's;
//! - a probe that gets any answer but a transient failure (delivered, a
//!   4xx, a 429) closes the breaker: the destination is up.
//!
//! The state is stored as a hold of kind `breaker`, also while closed with
//! failures counted, and changed only by compare-and-swap
//! ([`crate::queue::Holds::swap_hold`]): of many workers seeing the same
//! failures one opens it (and raises the one alert), one takes the probe,
//! one closes it. Every transition is decided here, above the backends.

pub mod settings;
pub mod state;

use std::time::Duration;

use crate::dest::{Answer, Attempt};
use crate::queue::Hold;
use crate::queue::hold::HoldReason;

pub use settings::{DEFAULT_AFTER, DEFAULT_COOLDOWN, MAX_COOLDOWN, Settings, parse};
pub use state::{Breaker, State};

/// What one send says of its destination's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered (one item of the send at least).
    Delivered,
    /// A transient failure: a timeout, a connection error, a 5xx.
    Failed(String),
    /// An answer that is neither: a permanent refusal, a 429.
    Answered,
    /// Not sent at all (the worker stopped, the destination is behind).
    Unsent,
}

/// What `answer` says of its destination's health.
pub fn verdict(answer: &Answer) -> Verdict {
    match &answer.attempt {
        Attempt::Delivered => Verdict::Delivered,
        Attempt::Transient(error) => Verdict::Failed(error.clone()),
        Attempt::RetryAfter(..) | Attempt::Permanent(_) => Verdict::Answered,
        Attempt::Deferred(..) => Verdict::Unsent,
        Attempt::Each(answers) => {
            let each: Vec<Verdict> = answers.iter().map(verdict).collect();
            if each.contains(&Verdict::Delivered) {
                Verdict::Delivered
            } else if let Some(failed) = each.iter().find(|v| matches!(v, Verdict::Failed(_))) {
                failed.clone()
            } else if each.contains(&Verdict::Answered) {
                Verdict::Answered
            } else {
                Verdict::Unsent
            }
        }
    }
}

/// What one worker saw of a destination's sends since it last told the
/// queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// Transient failures since the last delivered send seen.
    pub failures: u32,
    /// Whether a send was delivered: the count starts again from `failures`.
    pub delivered: bool,
    /// Whether the destination answered at all (delivered, 4xx, 429).
    pub answered: bool,
    /// The latest failure's error.
    pub error: String,
}

impl Seen {
    pub fn note(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Delivered => {
                self.delivered = true;
                self.answered = true;
                self.failures = 0;
            }
            Verdict::Failed(error) => {
                self.failures += 1;
                self.error = error;
            }
            Verdict::Answered => self.answered = true,
            Verdict::Unsent => {}
        }
    }

    /// Whether it can change a breaker that counted nothing.
    pub fn has_failures(&self) -> bool {
        self.failures > 0
    }
}

/// What a change to a breaker means, to say once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Closed to open: raise the alert.
    Opened,
    /// The probe failed: open again, for longer.
    Reopened,
    /// The probe got an answer: closed.
    Closed,
}

/// The breaker to store next (`None`: none stored) and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Next {
    pub hold: Option<Hold>,
    pub change: Option<Change>,
}

fn stored(hold: Option<&Hold>) -> Option<&Breaker> {
    hold.and_then(Hold::breaker)
}

fn hold(breaker: Breaker, since_ms: i64) -> Hold {
    Hold {
        reason: HoldReason::Breaker(breaker),
        since_ms,
        until_ms: None,
    }
}

/// What `seen`, by worker `me` at `now_ms`, makes of the breaker stored as
/// `current` (`None`: closed, nothing counted); `None` when it stays as is.
pub fn after_sends(
    current: Option<&Hold>,
    seen: &Seen,
    settings: Settings,
    me: &str,
    now_ms: i64,
) -> Option<Next> {
    let Some(breaker) = stored(current) else {
        return closed_after(0, seen, settings, now_ms);
    };
    match breaker.state {
        State::Closed => closed_after(breaker.failures, seen, settings, now_ms),
        State::Open => None,
        State::Probing if breaker.probe_by.as_deref() != Some(me) => None,
        State::Probing if seen.answered => Some(Next {
            hold: None,
            change: Some(Change::Closed),
        }),
        State::Probing if seen.has_failures() => {
            let cooldown_ms = (breaker.cooldown_ms * 2).min(MAX_COOLDOWN.as_millis() as i64);
            let reopened = Breaker {
                state: State::Open,
                failures: breaker.failures.saturating_add(seen.failures),
                error: seen.error.clone(),
                cooldown_ms,
                probe_at_ms: now_ms + cooldown_ms,
                probe_by: None,
            };
            let since_ms = current.map_or(now_ms, |h| h.since_ms);
            Some(Next {
                hold: Some(hold(reopened, since_ms)),
                change: Some(Change::Reopened),
            })
        }
        State::Probing => None,
    }
}

/// A closed breaker that had counted `failures`, after `seen`.
fn closed_after(failures: u32, seen: &Seen, settings: Settings, now_ms: i64) -> Option<Next> {
    let count = if seen.delivered {
        seen.failures
    } else {
        failures.saturating_add(seen.failures)
    };
    if count == failures {
        return None;
    }
    let cooldown_ms = settings.cooldown.as_millis() as i64;
    let (state, probe_at_ms, change) = if count >= settings.after {
        (State::Open, now_ms + cooldown_ms, Some(Change::Opened))
    } else if count == 0 {
        return Some(Next {
            hold: None,
            change: None,
        });
    } else {
        (State::Closed, 0, None)
    };
    let breaker = Breaker {
        state,
        failures: count,
        error: seen.error.clone(),
        cooldown_ms,
        probe_at_ms,
        probe_by: None,
    };
    Some(Next {
        hold: Some(hold(breaker, now_ms)),
        change,
    })
}

/// The breaker `me` stores to take the probe at `now_ms`, holding it for
/// `lease`: when the cooldown of `current` has ended, or when the probe's
/// holder let its lease run out (it died, or its probe was never sent).
pub fn take_probe(current: &Hold, me: &str, now_ms: i64, lease: Duration) -> Option<Hold> {
    let breaker = current.breaker()?;
    let due =
        matches!(breaker.state, State::Open | State::Probing) && now_ms >= breaker.probe_at_ms;
    due.then(|| {
        let probing = Breaker {
            state: State::Probing,
            probe_at_ms: now_ms + lease.as_millis() as i64,
            probe_by: Some(me.to_owned()),
            ..breaker.clone()
        };
        hold(probing, current.since_ms)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Settings = Settings {
        after: 3,
        cooldown: Duration::from_secs(1),
    };

    fn failures(n: u32) -> Seen {
        Seen {
            failures: n,
            error: "HTTP 503".into(),
            ..Seen::default()
        }
    }

    fn delivered() -> Seen {
        let mut seen = Seen::default();
        seen.note(Verdict::Delivered);
        seen
    }

    #[test]
    fn consecutive_failures_open_it_and_a_success_starts_the_count_again() {
        let two = after_sends(None, &failures(2), S, "w1", 100).unwrap();
        assert_eq!(two.change, None);
        let counted = two.hold.unwrap();
        assert!(!counted.in_force(100), "closed: not held");
        let reset = after_sends(Some(&counted), &delivered(), S, "w2", 150).unwrap();
        assert_eq!(reset.hold, None, "nothing left to store");
        let open = after_sends(Some(&counted), &failures(1), S, "w2", 200).unwrap();
        assert_eq!(open.change, Some(Change::Opened));
        let open = open.hold.unwrap();
        assert!(open.in_force(200));
        assert_eq!(open.since_ms, 200);
        let b = open.breaker().unwrap();
        assert_eq!((b.failures, b.probe_at_ms), (3, 1200));
        assert!(b.why().starts_with("breaker open until "), "{}", b.why());
        assert!(
            b.why().ends_with("after 3 failures: HTTP 503"),
            "{}",
            b.why()
        );
        assert_eq!(after_sends(Some(&open), &failures(5), S, "w1", 300), None);
        assert_eq!(after_sends(None, &delivered(), S, "w1", 300), None);
    }

    #[test]
    fn one_worker_takes_the_probe_and_its_outcome_decides() {
        let open = after_sends(None, &failures(3), S, "w1", 0)
            .unwrap()
            .hold
            .unwrap();
        let lease = Duration::from_secs(30);
        assert_eq!(take_probe(&open, "w2", 999, lease), None, "cooling down");
        let probing = take_probe(&open, "w2", 1000, lease).unwrap();
        assert_eq!(take_probe(&probing, "w1", 1001, lease), None, "taken");
        assert!(
            take_probe(&probing, "w1", 31_000, lease).is_some(),
            "lease ran out"
        );
        // Only the probe's holder decides.
        assert_eq!(
            after_sends(Some(&probing), &delivered(), S, "w1", 1100),
            None
        );
        let reopened = after_sends(Some(&probing), &failures(1), S, "w2", 1100).unwrap();
        assert_eq!(reopened.change, Some(Change::Reopened));
        let reopened = reopened.hold.unwrap();
        assert_eq!(
            reopened.since_ms, 0,
            "deliveries stay parked where they were"
        );
        let b = reopened.breaker().unwrap();
        assert_eq!((b.cooldown_ms, b.probe_at_ms), (2000, 3100), "doubled");
        let probing = take_probe(&reopened, "w1", 3100, lease).unwrap();
        let answered = Seen {
            answered: true,
            ..Seen::default()
        };
        let closed = after_sends(Some(&probing), &answered, S, "w1", 3200).unwrap();
        assert_eq!(
            closed,
            Next {
                hold: None,
                change: Some(Change::Closed)
            }
        );
    }

    #[test]
    fn the_cooldown_doubles_up_to_ten_minutes() {
        let mut hold = after_sends(None, &failures(3), S, "w", 0)
            .unwrap()
            .hold
            .unwrap();
        for _ in 0..20 {
            let at = hold.breaker().unwrap().probe_at_ms;
            let probing = take_probe(&hold, "w", at, Duration::from_secs(1)).unwrap();
            hold = after_sends(Some(&probing), &failures(1), S, "w", at)
                .unwrap()
                .hold
                .unwrap();
        }
        assert_eq!(hold.breaker().unwrap().cooldown_ms, 600_000);
    }

    #[test]
    fn permanent_refusals_and_429s_neither_count_nor_reset() {
        let answer = |attempt: Attempt| verdict(&attempt.into());
        assert_eq!(
            answer(Attempt::Permanent("HTTP 400".into())),
            Verdict::Answered
        );
        assert_eq!(
            answer(Attempt::RetryAfter(Duration::ZERO, "HTTP 429".into())),
            Verdict::Answered
        );
        let mut seen = failures(2);
        seen.note(Verdict::Answered);
        assert_eq!(seen.failures, 2);
        assert!(!seen.delivered);
        let mixed = Attempt::Each(vec![
            Attempt::Permanent("HTTP 400".into()).into(),
            Attempt::Transient("HTTP 503".into()).into(),
        ]);
        assert_eq!(answer(mixed), Verdict::Failed("HTTP 503".into()));
    }

    #[test]
    fn settings_are_read_and_absurd_ones_refused() {
        let value = |text: &str| -> toml::Value {
            toml::from_str::<toml::Table>(&format!("v = {text}")).unwrap()["v"].clone()
        };
        assert_eq!(parse(&value("\"off\"")), Ok(None));
        assert_eq!(
            parse(&value("{ after = 5, cooldown = \"1s\" }")),
            Ok(Some(Settings {
                after: 5,
                cooldown: Duration::from_secs(1)
            }))
        );
        assert_eq!(parse(&value("{}")), Ok(Some(Settings::default())));
        for bad in [
            "\"on\"",
            "{ after = 0 }",
            "{ after = 1.5 }",
            "{ after = 100000 }",
            "{ cooldown = \"1h\" }",
            "{ cooldown = \"10ms\" }",
            "{ cooldown = \"soon\" }",
            "{ colldown = \"1s\" }",
        ] {
            assert!(parse(&value(bad)).is_err(), "{bad}");
        }
    }
}
