//! A destination's rate limit (`rate = "1/s"` in the config file): how it
//! is written, and the one decision every worker makes against the state
//! the queue shares between them (`Consumer::take_token`), so that all the
//! workers on one queue together stay under it, not each on its own.
//!
//! Sends are spread evenly (`5/2s` is one every 400 ms): then no window of
//! the period ever holds more than its count, whatever the receiver's own
//! way of counting, and a lane that waits joins what it holds meanwhile.

use std::fmt;
use std::time::Duration;

/// The longest period a rate may name: past a day, a destination is not
/// rate limited but switched off.
const MAX_PERIOD: Duration = Duration::from_secs(86_400);

/// At most `sends` sends every `per`, shared by every worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    sends: u32,
    per: Duration,
}

/// A destination's `rate` setting: absent (its kind's default),
/// `"unlimited"`, or a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateSetting {
    #[default]
    KindDefault,
    Unlimited,
    Limit(Rate),
}

impl RateSetting {
    /// `"unlimited"`, or a rate as [`Rate::parse`] reads it.
    pub fn parse(text: &str) -> Result<RateSetting, RateError> {
        if text.trim() == "unlimited" {
            return Ok(RateSetting::Unlimited);
        }
        Rate::parse(text).map(RateSetting::Limit)
    }

    /// The limit in force, given the kind's default; `None` for unlimited.
    pub fn or_default(self, default: Option<Rate>) -> Option<Rate> {
        match self {
            RateSetting::KindDefault => default,
            RateSetting::Unlimited => None,
            RateSetting::Limit(rate) => Some(rate),
        }
    }
}

/// Why a rate does not parse, said so it can follow `rate: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a rate: {1}")]
pub struct RateError(String, &'static str);

impl Rate {
    /// `sends` every `per`; `None` when either is zero or the sends come
    /// closer than a millisecond apart.
    pub fn new(sends: u32, per: Duration) -> Option<Rate> {
        let apart_enough = per.as_micros() >= u128::from(sends) * 1000;
        (sends > 0 && per <= MAX_PERIOD && apart_enough).then_some(Rate { sends, per })
    }

    /// `N/duration`: `1/s`, `5/2s`, `30/m`, `100/1h`, `2/500ms`.
    pub fn parse(text: &str) -> Result<Rate, RateError> {
        let fail = |why| Err(RateError(text.to_owned(), why));
        let Some((count, period)) = text.split_once('/') else {
            return fail(
                "expected N/duration, such as \"1/s\", \"5/2s\" or \"30/m\", or \"unlimited\"",
            );
        };
        let Ok(sends) = count.trim().parse::<u32>() else {
            return fail("the count before '/' must be a whole number");
        };
        let period = period.trim();
        // `s`, `m`, `h` alone mean one of them.
        let spelled = if period.starts_with(|c: char| c.is_ascii_digit()) {
            period.to_owned()
        } else {
            format!("1{period}")
        };
        let Ok(per) = humantime::parse_duration(&spelled) else {
            return fail("the period after '/' must be a duration, such as s, 2s, m or 1h");
        };
        if sends == 0 || per.is_zero() {
            return fail(
                "a rate of nothing sends nothing; remove the key for the default, or write \"unlimited\"",
            );
        }
        if per > MAX_PERIOD {
            return fail("the period is at most a day");
        }
        Rate::new(sends, per).map_or_else(|| fail("at most 1,000 sends a second"), Ok)
    }

    /// The least time between two sends, in whole milliseconds, rounded
    /// up so the rate is never exceeded.
    pub fn interval_ms(&self) -> i64 {
        self.per.as_micros().div_ceil(u128::from(self.sends) * 1000) as i64
    }

    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms() as u64)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per = humantime::format_duration(self.per).to_string();
        let per = per
            .strip_prefix('1')
            .filter(|unit| unit.starts_with(|c: char| c.is_ascii_alphabetic()));
        match per {
            Some(unit) => write!(f, "{}/{unit}", self.sends),
            None => write!(f, "{}/{}", self.sends, humantime::format_duration(self.per)),
        }
    }
}

/// What a worker asking to send gets from the shared state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Send now; the next send is free from `next_free_ms` on (what the
    /// queue stores).
    Granted { next_free_ms: i64 },
    /// Send now, replacing a stored state that could not be read (`why`):
    /// a limit that cannot be read is started afresh, never waited on.
    Reset {
        next_free_ms: i64,
        why: &'static str,
    },
    /// Not yet: the next send is free after this wait.
    Wait(Duration),
}

/// What the queue holds for a destination's limit, as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored<'a> {
    /// Nothing: nobody has sent yet, or long enough ago that it expired.
    Nothing,
    /// Text, read as when the next send is free (ms): what the queue
    /// writes, or whatever else was put there.
    Text(&'a str),
    /// Something that is not text at all (a Redis list, say): why.
    Unreadable(&'static str),
}

/// Whole milliseconds are written with at most this many digits (a time
/// till the year 33658): more than a double holds exactly is not a state
/// the queue wrote, and Redis's script reads numbers as doubles.
const MAX_DIGITS: usize = 15;

/// Why a stored state is not one the queue wrote, as the Redis script says it.
pub const NOT_WHOLE_MS: &str = "not a whole number of milliseconds";
pub const TOO_FAR_AHEAD: &str = "further ahead than one interval";

/// The bucket's decision at `now_ms`, given what the queue stores: when
/// the next send is free. A state the queue never writes (not a whole
/// number of ms, or further ahead than one interval, which only a clock
/// set back or a hand edit makes) is reset, so that it stalls nothing.
/// The Redis backend runs the same rule in its script.
pub fn take(stored: Stored<'_>, now_ms: i64, rate: Rate) -> Taken {
    let interval = rate.interval_ms();
    let next = match stored {
        Stored::Nothing => None,
        Stored::Text(text) => match whole_ms(text) {
            Some(next) if next > now_ms + interval => return reset(now_ms, rate, TOO_FAR_AHEAD),
            Some(next) => Some(next),
            None => return reset(now_ms, rate, NOT_WHOLE_MS),
        },
        Stored::Unreadable(why) => return reset(now_ms, rate, why),
    };
    match next {
        Some(next) if next > now_ms => Taken::Wait(Duration::from_millis((next - now_ms) as u64)),
        _ => Taken::Granted {
            next_free_ms: now_ms + interval,
        },
    }
}

fn reset(now_ms: i64, rate: Rate, why: &'static str) -> Taken {
    Taken::Reset {
        next_free_ms: now_ms + rate.interval_ms(),
        why,
    }
}

/// `-?[0-9]{1,15}`, as the script's `^%-?(%d+)$` reads it.
fn whole_ms(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let whole = !digits.is_empty()
        && digits.len() <= MAX_DIGITS
        && digits.bytes().all(|b| b.is_ascii_digit());
    whole.then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Rate {
        Rate::parse(text).unwrap()
    }

    #[test]
    fn rates_read_as_a_count_over_a_duration() {
        assert_eq!(rate("1/s").interval_ms(), 1000);
        assert_eq!(rate("5/2s").interval_ms(), 400);
        assert_eq!(rate("30/m").interval_ms(), 2000);
        assert_eq!(rate("100/1h").interval_ms(), 36_000);
        assert_eq!(rate(" 2 / 500ms ").interval_ms(), 250);
        assert_eq!(rate("4/s").interval(), Duration::from_millis(250));
        // Rounded up, never faster than asked: 3/s is 333.3 ms apart.
        assert_eq!(rate("3/s").interval_ms(), 334);
        assert_eq!(rate("1000/s").interval_ms(), 1);
        for (text, shown) in [
            ("1/s", "1/s"),
            ("5/2s", "5/2s"),
            ("30/m", "30/m"),
            ("4/1h", "4/h"),
        ] {
            assert_eq!(rate(text).to_string(), shown);
        }
    }

    #[test]
    fn a_rate_that_cannot_be_kept_is_refused_with_the_reason() {
        let why = |text: &str| Rate::parse(text).unwrap_err().to_string();
        assert_eq!(
            why("1 per second"),
            r#""1 per second" is not a rate: expected N/duration, such as "1/s", "5/2s" or "30/m", or "unlimited""#
        );
        assert!(why("x/s").contains("whole number"), "{}", why("x/s"));
        assert!(why("-1/s").contains("whole number"));
        assert!(why("1/fortnight").contains("a duration"));
        assert!(why("1/").contains("a duration"));
        assert!(why("0/s").contains("sends nothing"));
        assert!(why("1/0s").contains("sends nothing"));
        assert!(why("1/2d").contains("at most a day"));
        assert!(why("2000/s").contains("1,000 sends a second"));
    }

    #[test]
    fn unlimited_lifts_even_a_default_limit() {
        let slack = Some(rate("1/s"));
        assert_eq!(RateSetting::parse("unlimited"), Ok(RateSetting::Unlimited));
        assert_eq!(RateSetting::Unlimited.or_default(slack), None);
        assert_eq!(RateSetting::KindDefault.or_default(slack), slack);
        let limit = RateSetting::parse("30/m").unwrap();
        assert_eq!(limit.or_default(slack), Some(rate("30/m")));
        assert!(RateSetting::parse("Unlimited!").is_err());
    }

    #[test]
    fn the_bucket_grants_one_send_per_interval_and_says_how_long_to_wait() {
        let one_a_second = rate("1/s");
        assert_eq!(
            take(Stored::Nothing, 10_000, one_a_second),
            Taken::Granted {
                next_free_ms: 11_000
            }
        );
        // Another worker asks 300 ms later: it waits for the rest.
        assert_eq!(
            take(Stored::Text("11000"), 10_300, one_a_second),
            Taken::Wait(Duration::from_millis(700))
        );
        // Once free, the interval counts from now, not from when it freed:
        // an idle spell earns no burst.
        assert_eq!(
            take(Stored::Text("11000"), 11_000, one_a_second),
            Taken::Granted {
                next_free_ms: 12_000
            }
        );
        assert_eq!(
            take(Stored::Text("11000"), 50_000, rate("5/2s")),
            Taken::Granted {
                next_free_ms: 50_400
            }
        );
    }

    #[test]
    fn a_state_the_queue_never_writes_is_reset_not_waited_on() {
        let one_a_second = rate("1/s");
        let now = 1_700_000_000_000;
        let reset = |why| Taken::Reset {
            next_free_ms: now + 1000,
            why,
        };
        for text in ["abc", "", "nan", "inf", "1e300", "12.5", " 5", "+5", "--5"] {
            assert_eq!(
                take(Stored::Text(text), now, one_a_second),
                reset(NOT_WHOLE_MS),
                "{text:?}"
            );
        }
        let huge = "9".repeat(16);
        assert_eq!(
            take(Stored::Text(&huge), now, one_a_second),
            reset(NOT_WHOLE_MS)
        );
        // A far-future time (or a clock set back) would stall for years.
        let ten_years_on = (now + 10 * 365 * 86_400_000).to_string();
        assert_eq!(
            take(Stored::Text(&ten_years_on), now, one_a_second),
            reset(TOO_FAR_AHEAD)
        );
        let one_interval_on = (now + 1000).to_string();
        assert_eq!(
            take(Stored::Text(&one_interval_on), now, one_a_second),
            Taken::Wait(Duration::from_secs(1))
        );
        assert_eq!(
            take(Stored::Unreadable("a list"), now, one_a_second),
            reset("a list")
        );
        // The past, even before the epoch, is only free.
        assert_eq!(
            take(Stored::Text("-5"), now, one_a_second),
            Taken::Granted {
                next_free_ms: now + 1000
            }
        );
    }

    proptest::proptest! {
        #[test]
        fn parsing_any_text_never_panics(text in "\\PC{0,20}") {
            let _ = Rate::parse(&text);
        }

        /// However the asks fall, two grants are never closer than the
        /// interval.
        #[test]
        fn grants_are_never_closer_than_the_interval(
            steps in proptest::collection::vec(0i64..3000, 1..50),
            sends in 1u32..10,
        ) {
            let rate = Rate::new(sends, Duration::from_secs(1)).unwrap();
            let (mut now, mut state, mut last) = (0i64, None::<String>, None::<i64>);
            for step in steps {
                now += step;
                let stored = state.as_deref().map_or(Stored::Nothing, Stored::Text);
                if let Taken::Granted { next_free_ms } = take(stored, now, rate) {
                    if let Some(last) = last {
                        proptest::prop_assert!(now - last >= rate.interval_ms());
                    }
                    last = Some(now);
                    state = Some(next_free_ms.to_string());
                }
            }
        }
    }
}
