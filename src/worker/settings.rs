//! Delivery tuning, from the environment: attempts, retry delays, HTTP
//! timeouts, history kept, claim leases and alerts, each checked against
//! the rule it must keep.

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::config::{ConfigError, Env};

/// Delivery tuning, from the environment.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Overrides every destination's attempt budget when set.
    pub max_attempts: Option<u32>,
    /// The first retry's delay; each next one doubles, with jitter.
    pub retry_base: Duration,
    /// The timeout of one HTTP request.
    pub http_timeout: Duration,
    /// How long history is kept for replay.
    pub retention: Duration,
    /// How long dead letters are kept (`EVENTS_DEAD_RETENTION`).
    pub dead_retention: Duration,
    /// How long a claimed entry stays with its worker before another may
    /// take it over (`EVENTS_CLAIM_LEASE_MS`); more than three HTTP timeouts.
    pub claim_lease: Duration,
    /// Whether the worker raises `events.dead_letters` alerts
    /// (`EVENTS_ALERTS`, on unless `0`).
    pub alerts: bool,
    /// At most one alert per destination in this long
    /// (`EVENTS_ALERT_WINDOW`, 5 minutes unless set).
    pub alert_window: Duration,
}

/// Bounds that keep the delivery guarantees: a claim lease shorter than a
/// request lets a second worker take over a delivery still in flight (and
/// send it twice), and a zero timeout or retry delay turns every hiccup into
/// a storm.
const HTTP_TIMEOUT_MS: RangeInclusive<u64> = 100..=600_000;
const RETRY_BASE_MS: RangeInclusive<u64> = 1..=86_400_000;
const MAX_ATTEMPTS: RangeInclusive<u64> = 1..=100;
/// A century: past it, times in milliseconds stop fitting comfortably.
const RETENTION_MAX_DAYS: u64 = 36_500;
/// A day: a silent worker's claims come back within it.
const CLAIM_LEASE_MAX_MS: u64 = 86_400_000;
/// How long an alert window may be: under a second is no window at all,
/// over a day is alerts switched off (`EVENTS_ALERTS=0` says that).
const ALERT_WINDOW: RangeInclusive<Duration> = Duration::from_secs(1)..=Duration::from_secs(86_400);

impl Delivery {
    /// The delivery tuning `env` sets, each value checked.
    pub fn from_env(env: &Env<'_>) -> Result<Delivery, ConfigError> {
        let http_timeout = ranged(
            env,
            "EVENTS_HTTP_TIMEOUT_MS",
            HTTP_TIMEOUT_MS,
            "of milliseconds ",
        )?
        .map_or(Duration::from_secs(10), Duration::from_millis);
        Ok(Delivery {
            max_attempts: ranged(env, "EVENTS_MAX_ATTEMPTS", MAX_ATTEMPTS, "")?.map(|n| n as u32),
            retry_base: ranged(
                env,
                "EVENTS_RETRY_BASE_MS",
                RETRY_BASE_MS,
                "of milliseconds ",
            )?
            .map_or(Duration::from_secs(1), Duration::from_millis),
            http_timeout,
            retention: retention(env, "EVENTS_RETENTION")?,
            dead_retention: retention(env, "EVENTS_DEAD_RETENTION")?,
            claim_lease: claim_lease(env, http_timeout)?,
            alerts: env.flag("EVENTS_ALERTS")?.unwrap_or(true),
            alert_window: env
                .parse(
                    "EVENTS_ALERT_WINDOW",
                    |v| {
                        humantime::parse_duration(v)
                            .ok()
                            .filter(|d| ALERT_WINDOW.contains(d))
                    },
                    "a duration from 1s to 1d, such as 5m or 1h",
                )?
                .unwrap_or(crate::alert::WINDOW),
        })
    }
}

/// A whole number in `range`.
fn ranged(
    env: &Env<'_>,
    name: &str,
    range: RangeInclusive<u64>,
    unit: &str,
) -> Result<Option<u64>, ConfigError> {
    env.parse(
        name,
        |v| v.parse::<u64>().ok().filter(|n| range.contains(n)),
        &format!(
            "a whole number {unit}from {} to {}",
            range.start(),
            range.end()
        ),
    )
}

/// The claim lease: more than three HTTP timeouts, a minute by default.
fn claim_lease(env: &Env<'_>, http_timeout: Duration) -> Result<Duration, ConfigError> {
    let least_lease = http_timeout.as_millis() as u64 * 3 + 1;
    Ok(env
        .parse(
            "EVENTS_CLAIM_LEASE_MS",
            |v| {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| (least_lease..=CLAIM_LEASE_MAX_MS).contains(n))
            },
            &format!(
                "more than three HTTP timeouts (3 × EVENTS_HTTP_TIMEOUT_MS = {} ms) and at most {CLAIM_LEASE_MAX_MS} ms, \
                 so that no worker takes over a delivery another is still making",
                least_lease - 1
            ),
        )?
        .map_or(
            Duration::from_millis(least_lease.max(60_000)),
            Duration::from_millis,
        ))
}

/// A retention setting: a duration up to a century, 30 days by default.
fn retention(env: &Env<'_>, name: &str) -> Result<Duration, ConfigError> {
    Ok(env
        .parse(
            name,
            |v| {
                humantime::parse_duration(v)
                    .ok()
                    .filter(|d| d.as_secs() <= RETENTION_MAX_DAYS * 86_400)
            },
            &format!("a duration such as 30d or 12h, at most {RETENTION_MAX_DAYS}d"),
        )?
        .unwrap_or(Duration::from_secs(30 * 24 * 3600)))
}
