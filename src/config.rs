//! Configuration: flags, then the environment (with `.env` already loaded by
//! `main`), then the optional TOML file, then defaults, checked once into a
//! `Config` so the rest of the code never re-reads or re-checks a setting.
//!
//! Secrets (webhook URLs, write keys, signing secrets, Redis passwords) live
//! only in the environment and only ever leave this module wrapped in
//! `Secret`, whose `Debug` and `Display` never show them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::catalog::{Catalog, EventSpec, FieldType};
use crate::dest::webhook::shape::{Shape, ShapeError};
use crate::filter::When;
pub use crate::queue::Backend;
use crate::queue::{Durability, QueueOptions};
use crate::rate::{Rate, RateSetting};
pub use crate::secret::{Secret, SigningKey, redact_url};

/// A bad setting or config file. Exit status 2.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(message.into()))
}

/// The global options every subcommand shares, as parsed from the command
/// line and environment.
#[derive(Debug, Clone, Default)]
pub struct Global {
    pub redis_url: Option<String>,
    pub db: Option<PathBuf>,
    pub config: Option<PathBuf>,
}

/// The kinds of destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestKind {
    Console,
    Slack,
    Discord,
    Teams,
    Segment,
    PostHog,
    Mixpanel,
    Webhook,
}

impl DestKind {
    pub fn parse(name: &str) -> Option<DestKind> {
        Some(match name {
            "console" => DestKind::Console,
            "slack" => DestKind::Slack,
            "discord" => DestKind::Discord,
            "teams" => DestKind::Teams,
            "segment" => DestKind::Segment,
            "posthog" => DestKind::PostHog,
            "mixpanel" => DestKind::Mixpanel,
            "webhook" => DestKind::Webhook,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DestKind::Console => "console",
            DestKind::Slack => "slack",
            DestKind::Discord => "discord",
            DestKind::Teams => "teams",
            DestKind::Segment => "segment",
            DestKind::PostHog => "posthog",
            DestKind::Mixpanel => "mixpanel",
            DestKind::Webhook => "webhook",
        }
    }

    /// Whether it posts messages people read: a replay there repeats what
    /// they have seen, and a stale one loses its value.
    pub fn is_chat(self) -> bool {
        matches!(self, DestKind::Slack | DestKind::Discord | DestKind::Teams)
    }

    /// The rate limit of a destination whose config sets none, the pace
    /// each service documents: Slack about one message a second, Discord
    /// five per two seconds, Teams four a second.
    pub fn default_rate(self) -> Option<Rate> {
        match self {
            DestKind::Slack => Rate::new(1, Duration::from_secs(1)),
            DestKind::Discord => Rate::new(5, Duration::from_secs(2)),
            DestKind::Teams => Rate::new(4, Duration::from_secs(1)),
            _ => None,
        }
    }

    /// The attempt budget unless `EVENTS_MAX_ATTEMPTS` sets one. A stale
    /// chat notification loses its value: it gives up sooner.
    pub fn default_max_attempts(self) -> u32 {
        match self {
            kind if kind.is_chat() => 5,
            _ => 10,
        }
    }
}

/// What a destination needs to send.
#[derive(Debug, Clone)]
pub enum DestSettings {
    Console,
    Slack {
        url: Secret,
    },
    /// Slack's Web API with a bot token: one channel per destination.
    SlackBot {
        token: Secret,
        channel: String,
        api_url: String,
    },
    Discord {
        url: Secret,
    },
    /// A Workflows (Power Automate) webhook.
    Teams {
        url: Secret,
    },
    Segment {
        write_key: Secret,
        endpoint: String,
    },
    /// The project API key, and the host (`https://us.i.posthog.com`).
    PostHog {
        api_key: Secret,
        host: String,
    },
    /// The project token, and the API's base URL.
    Mixpanel {
        token: Secret,
        api_url: String,
    },
    /// The signing key is decoded once, here: the webhook only signs.
    /// `shape` holds its own headers and body, if the config file sets them.
    Webhook {
        url: Secret,
        key: SigningKey,
        shape: Shape,
    },
}

/// One configured destination.
#[derive(Debug, Clone)]
pub struct DestConfig {
    pub name: String,
    pub settings: DestSettings,
    /// Globs over event types; the destination gets the events matching any.
    pub events: Vec<String>,
    /// Its `rate` in the config file: a limit, `unlimited`, or (absent)
    /// the kind's default ([`DestKind::default_rate`]).
    pub rate: RateSetting,
    /// Its `when` in the config file: which of the events its globs match
    /// it wants.
    pub when: Option<When>,
    /// Its messages: the catalog with its `template` in place of each
    /// routed type's, or `None` for the shared catalog's.
    pub messages: Option<Catalog>,
}

impl DestConfig {
    /// The rate limit in force: its `rate`, else its kind's default; `None`
    /// for unlimited.
    pub fn rate_limit(&self) -> Option<Rate> {
        self.rate.or_default(self.kind().default_rate())
    }

    pub fn kind(&self) -> DestKind {
        match self.settings {
            DestSettings::Console => DestKind::Console,
            DestSettings::Slack { .. } | DestSettings::SlackBot { .. } => DestKind::Slack,
            DestSettings::Discord { .. } => DestKind::Discord,
            DestSettings::Teams { .. } => DestKind::Teams,
            DestSettings::Segment { .. } => DestKind::Segment,
            DestSettings::PostHog { .. } => DestKind::PostHog,
            DestSettings::Mixpanel { .. } => DestKind::Mixpanel,
            DestSettings::Webhook { .. } => DestKind::Webhook,
        }
    }

    /// Where it sends, safe to print.
    pub fn target(&self) -> String {
        match &self.settings {
            DestSettings::Console => "stdout".into(),
            DestSettings::Slack { url }
            | DestSettings::Discord { url }
            | DestSettings::Teams { url }
            | DestSettings::Webhook { url, .. } => redact_url(url.expose()),
            DestSettings::SlackBot {
                channel, api_url, ..
            } => format!("{channel} via {}", redact_url(api_url)),
            DestSettings::Segment { endpoint, .. } => redact_url(endpoint),
            DestSettings::PostHog { host, .. } => redact_url(host),
            DestSettings::Mixpanel { api_url, .. } => redact_url(api_url),
        }
    }
}

/// Slack's Web API.
pub const SLACK_DEFAULT_API_URL: &str = "https://slack.com/api";

/// The public Segment API.
pub const SEGMENT_DEFAULT_ENDPOINT: &str = "https://api.segment.io";

/// PostHog's US cloud.
pub const POSTHOG_DEFAULT_HOST: &str = "https://us.i.posthog.com";

/// Mixpanel's ingestion API (US residency).
pub const MIXPANEL_DEFAULT_API_URL: &str = "https://api.mixpanel.com";

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

/// Everything a subcommand needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the queue lives, its keys' prefix and its tuning.
    pub store: crate::queue::Settings,
    pub catalog: Catalog,
    /// `EVENTS_DISABLED=1`: `emit` validates and writes nothing.
    pub disabled: bool,
    pub delivery: Delivery,
    /// The config file read, if any.
    pub file: Option<PathBuf>,
    /// Destinations, resolved lazily: `emit` must work in a cron job whose
    /// environment lacks the worker's secrets.
    destinations: Result<Vec<DestConfig>, ConfigError>,
    /// Whether console was chosen only because nothing else is configured.
    pub console_fallback: bool,
}

impl Config {
    /// Reads the configuration from `global` and the process environment.
    pub fn load(global: &Global) -> Result<Config, ConfigError> {
        Config::load_with(global, &|name| std::env::var(name).ok())
    }

    /// Reads the configuration with `env` as the environment.
    pub fn load_with(
        global: &Global,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let backend = match &global.redis_url {
            Some(url) => redis_backend(url)?,
            None => match env("REDIS_URL") {
                Some(url) => redis_backend(&url)?,
                None => Backend::Sqlite {
                    path: match global
                        .db
                        .clone()
                        .or_else(|| env("EVENTS_DB").map(Into::into))
                    {
                        Some(path) => path,
                        None => default_db_path(&env)?,
                    },
                },
            },
        };
        let delivery = delivery_settings(&env)?;
        let durability = durability(&env)?;
        let disabled = parse_env(&env, "EVENTS_DISABLED", parse_bool, "1 or 0")?.unwrap_or(false);
        let file_path = global
            .config
            .clone()
            .or_else(|| env("EVENTS_CONFIG").map(PathBuf::from))
            .or_else(|| {
                Path::new("events.toml")
                    .exists()
                    .then(|| "events.toml".into())
            });
        let mut catalog = Catalog::builtin();
        let mut declared = None;
        if let Some(path) = &file_path {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError(format!(
                    "cannot read the config file {}: {e}",
                    path.display()
                ))
            })?;
            let file = ConfigFile::parse(path, &text)?;
            file.apply_events(&mut catalog)?;
            declared = Some(file);
        }
        let console_env = parse_env(&env, "EVENTS_CONSOLE", parse_bool, "1 or 0")?.unwrap_or(false);
        let (destinations, console_fallback) = match &declared {
            Some(file) if !file.destination.is_empty() => {
                (file.destinations(&catalog, &env), false)
            }
            _ => env_destinations(&env, console_env),
        };
        let destinations = destinations.and_then(|dests| {
            dests.iter().try_for_each(check_url)?;
            Ok(dests)
        });
        let options = QueueOptions {
            claim_lease: delivery.claim_lease,
            durability,
            retention: delivery.retention,
        };
        Ok(Config {
            store: crate::queue::Settings {
                backend,
                prefix: match env("EVENTS_PREFIX") {
                    Some(prefix) => checked_prefix(prefix)?,
                    None => "{events}".into(),
                },
                options,
            },
            catalog,
            disabled,
            delivery,
            file: file_path,
            destinations,
            console_fallback,
        })
    }

    /// The configured destinations, or the reason they cannot be used.
    pub fn destinations(&self) -> Result<&[DestConfig], ConfigError> {
        self.destinations.as_deref().map_err(Clone::clone)
    }
}

/// The Redis key prefix, which must hold a hash tag: on a Redis Cluster
/// only the part between the first `{` and the first `}` after it picks a
/// key's slot, and every key must share one slot for the queue's
/// transactions and scripts to run there.
fn checked_prefix(prefix: String) -> Result<String, ConfigError> {
    if hash_tag(&prefix).is_some() {
        return Ok(prefix);
    }
    let bare = prefix.replace(['{', '}'], "");
    let fix = if bare.is_empty() {
        "{events}".to_owned()
    } else {
        format!("{{{bare}}}")
    };
    err(format!(
        "EVENTS_PREFIX {prefix:?} has no {{hash tag}}: Redis Cluster needs every key in one slot; use {fix:?}"
    ))
}

/// A key's hash tag as Redis Cluster reads it: what lies between the first
/// `{` and the first `}` after it, when that is not empty.
fn hash_tag(key: &str) -> Option<&str> {
    let (_, after) = key.split_once('{')?;
    let (tag, _) = after.split_once('}')?;
    (!tag.is_empty()).then_some(tag)
}

fn redis_backend(url: &str) -> Result<Backend, ConfigError> {
    Backend::redis(url).map_err(ConfigError)
}

/// Bounds that keep the delivery guarantees: a claim lease shorter than a
/// request lets a second worker take over a delivery still in flight (and
/// send it twice), and a zero timeout or retry delay turns every hiccup into
/// a storm.
const HTTP_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 100..=600_000;
const RETRY_BASE_MS: std::ops::RangeInclusive<u64> = 1..=86_400_000;
const MAX_ATTEMPTS: std::ops::RangeInclusive<u64> = 1..=100;
/// A century: past it, times in milliseconds stop fitting comfortably.
const RETENTION_MAX_DAYS: u64 = 36_500;
/// A day: a silent worker's claims come back within it.
const CLAIM_LEASE_MAX_MS: u64 = 86_400_000;

/// The delivery tuning, each value checked against the rule it must keep.
fn delivery_settings(env: &dyn Fn(&str) -> Option<String>) -> Result<Delivery, ConfigError> {
    let ranged = |name: &str, range: std::ops::RangeInclusive<u64>, unit: &str| {
        parse_env(
            env,
            name,
            |v| v.parse::<u64>().ok().filter(|n| range.contains(n)),
            &format!(
                "a whole number {unit}from {} to {}",
                range.start(),
                range.end()
            ),
        )
    };
    let http_timeout = ranged(
        "EVENTS_HTTP_TIMEOUT_MS",
        HTTP_TIMEOUT_MS,
        "of milliseconds ",
    )?
    .map_or(Duration::from_secs(10), Duration::from_millis);
    let least_lease = http_timeout.as_millis() as u64 * 3 + 1;
    let claim_lease = parse_env(
        env,
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
    );
    Ok(Delivery {
        max_attempts: ranged("EVENTS_MAX_ATTEMPTS", MAX_ATTEMPTS, "")?.map(|n| n as u32),
        retry_base: ranged("EVENTS_RETRY_BASE_MS", RETRY_BASE_MS, "of milliseconds ")?
            .map_or(Duration::from_secs(1), Duration::from_millis),
        http_timeout,
        retention: retention(env, "EVENTS_RETENTION")?,
        dead_retention: retention(env, "EVENTS_DEAD_RETENTION")?,
        claim_lease,
        alerts: parse_env(env, "EVENTS_ALERTS", parse_bool, "1 or 0")?.unwrap_or(true),
        alert_window: parse_env(
            env,
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

/// How long an alert window may be: under a second is no window at all,
/// over a day is alerts switched off (`EVENTS_ALERTS=0` says that).
const ALERT_WINDOW: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(86_400);

/// Replicas an emit may wait for: more than a primary ever has is a typo.
const EMIT_REPLICAS: std::ops::RangeInclusive<u32> = 0..=16;
/// How long an emit may wait for them: a minute is already far past what a
/// healthy replica needs (a few ms on one network).
const EMIT_REPLICAS_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 1..=60_000;

/// `EVENTS_EMIT_REPLICAS` and `EVENTS_EMIT_REPLICAS_TIMEOUT_MS`; `None`
/// when no replica is asked for (the default).
fn durability(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Durability>, ConfigError> {
    let replicas = parse_env(
        env,
        "EVENTS_EMIT_REPLICAS",
        |v| v.parse::<u32>().ok().filter(|n| EMIT_REPLICAS.contains(n)),
        &format!(
            "a whole number of replicas from {} to {}",
            EMIT_REPLICAS.start(),
            EMIT_REPLICAS.end()
        ),
    )?
    .unwrap_or(0);
    let timeout = parse_env(
        env,
        "EVENTS_EMIT_REPLICAS_TIMEOUT_MS",
        |v| {
            v.parse::<u64>()
                .ok()
                .filter(|n| EMIT_REPLICAS_TIMEOUT_MS.contains(n))
        },
        &format!(
            "a whole number of milliseconds from {} to {}",
            EMIT_REPLICAS_TIMEOUT_MS.start(),
            EMIT_REPLICAS_TIMEOUT_MS.end()
        ),
    )?
    .map_or(Duration::from_secs(1), Duration::from_millis);
    Ok((replicas > 0).then_some(Durability { replicas, timeout }))
}

/// A retention setting: a duration up to a century, 30 days by default.
fn retention(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<Duration, ConfigError> {
    Ok(parse_env(
        env,
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

fn default_db_path(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, ConfigError> {
    let state = env("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".local/state")));
    match state {
        Some(dir) => Ok(dir.join("events").join("events.db")),
        None => err(
            "cannot choose where to keep the event store: set --db or EVENTS_DB (neither XDG_STATE_HOME nor HOME is set)",
        ),
    }
}

fn parse_env<T>(
    env: &dyn Fn(&str) -> Option<String>,
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
    expected: &str,
) -> Result<Option<T>, ConfigError> {
    match env(name) {
        None => Ok(None),
        Some(value) => match parse(value.trim()) {
            Some(v) => Ok(Some(v)),
            None => err(format!("{name} must be {expected}, not {value:?}")),
        },
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Destinations from the environment variables alone (no config file, or one
/// that declares none). Console is used when nothing else is set.
fn env_destinations(
    env: &dyn Fn(&str) -> Option<String>,
    console: bool,
) -> (Result<Vec<DestConfig>, ConfigError>, bool) {
    let all = || vec!["*".to_owned()];
    let mut dests = Vec::new();
    if let Some(url) = env("SLACK_WEBHOOK_URL") {
        dests.push(DestConfig {
            name: "slack".into(),
            settings: DestSettings::Slack {
                url: Secret::new(url),
            },
            events: all(),
            rate: RateSetting::KindDefault,
            when: None,
            messages: None,
        });
    }
    if let Some(url) = env("DISCORD_WEBHOOK_URL") {
        dests.push(DestConfig {
            name: "discord".into(),
            settings: DestSettings::Discord {
                url: Secret::new(url),
            },
            events: all(),
            rate: RateSetting::KindDefault,
            when: None,
            messages: None,
        });
    }
    if let Some(url) = env("TEAMS_WEBHOOK_URL") {
        dests.push(DestConfig {
            name: "teams".into(),
            settings: DestSettings::Teams {
                url: Secret::new(url),
            },
            events: all(),
            rate: RateSetting::KindDefault,
            when: None,
            messages: None,
        });
    }
    if let Some(key) = env("SEGMENT_WRITE_KEY") {
        dests.push(DestConfig {
            name: "segment".into(),
            settings: DestSettings::Segment {
                write_key: Secret::new(key),
                endpoint: env("SEGMENT_ENDPOINT")
                    .unwrap_or_else(|| SEGMENT_DEFAULT_ENDPOINT.into()),
            },
            events: all(),
            rate: RateSetting::KindDefault,
            when: None,
            messages: None,
        });
    }
    dests.extend(analytics_env_destinations(env));
    if let Some(url) = env("EVENTS_WEBHOOK_URL") {
        let Some(secret) = env("EVENTS_WEBHOOK_SECRET") else {
            return (
                err(
                    "EVENTS_WEBHOOK_URL is set but EVENTS_WEBHOOK_SECRET is not: webhooks are always signed (set it to a whsec_… secret)",
                ),
                false,
            );
        };
        let key = match SigningKey::parse(&secret) {
            Ok(key) => key,
            Err(e) => return (err(format!("EVENTS_WEBHOOK_SECRET {e}")), false),
        };
        dests.push(DestConfig {
            name: "webhook".into(),
            settings: DestSettings::Webhook {
                url: Secret::new(url),
                key,
                shape: Shape::default(),
            },
            events: all(),
            rate: RateSetting::KindDefault,
            when: None,
            messages: None,
        });
    }
    let fallback = dests.is_empty() && !console;
    if console || dests.is_empty() {
        dests.push(DestConfig {
            name: "console".into(),
            settings: DestSettings::Console,
            events: all(),
            rate: RateSetting::KindDefault,
            when: None,
            messages: None,
        });
    }
    (Ok(dests), fallback)
}

/// PostHog and Mixpanel from `POSTHOG_API_KEY` and `MIXPANEL_TOKEN`.
fn analytics_env_destinations(env: &dyn Fn(&str) -> Option<String>) -> Vec<DestConfig> {
    let dest = |name: &str, settings| DestConfig {
        name: name.into(),
        settings,
        events: vec!["*".to_owned()],
        rate: RateSetting::KindDefault,
        when: None,
        messages: None,
    };
    let mut dests = Vec::new();
    if let Some(key) = env("POSTHOG_API_KEY") {
        dests.push(dest(
            "posthog",
            DestSettings::PostHog {
                api_key: Secret::new(key),
                host: env("POSTHOG_HOST").unwrap_or_else(|| POSTHOG_DEFAULT_HOST.into()),
            },
        ));
    }
    if let Some(token) = env("MIXPANEL_TOKEN") {
        dests.push(dest(
            "mixpanel",
            DestSettings::Mixpanel {
                token: Secret::new(token),
                api_url: env("MIXPANEL_API_URL").unwrap_or_else(|| MIXPANEL_DEFAULT_API_URL.into()),
            },
        ));
    }
    dests
}

/// The TOML config file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(skip)]
    path: PathBuf,
    #[serde(skip)]
    text: String,
    #[serde(default)]
    event: Vec<EventEntry>,
    #[serde(default)]
    destination: Vec<DestEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventEntry {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    fields: Option<Spanned<toml::Table>>,
    template: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DestEntry {
    name: Spanned<String>,
    kind: Spanned<String>,
    url_env: Option<Spanned<String>>,
    write_key_env: Option<Spanned<String>>,
    secret_env: Option<Spanned<String>>,
    endpoint: Option<Spanned<String>>,
    token_env: Option<Spanned<String>>,
    channel: Option<Spanned<String>>,
    api_url: Option<Spanned<String>>,
    api_key_env: Option<Spanned<String>>,
    host: Option<Spanned<String>>,
    events: Option<Spanned<Vec<String>>>,
    rate: Option<Spanned<String>>,
    when: Option<Spanned<String>>,
    template: Option<Spanned<String>>,
    headers: Option<Spanned<toml::Table>>,
    body: Option<Spanned<toml::Value>>,
}

impl ConfigFile {
    fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
        let mut file: ConfigFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            ConfigError(format!(
                "{}:{line}: {}",
                path.display(),
                e.message().trim_end()
            ))
        })?;
        file.path = path.to_owned();
        file.text = text.to_owned();
        Ok(file)
    }

    /// An error naming the file, the line of `span` and the key.
    fn at(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: impl fmt::Display,
    ) -> ConfigError {
        ConfigError(format!(
            "{}:{}: {key}: {message}",
            self.path.display(),
            line_of(&self.text, span.start)
        ))
    }

    fn apply_events(&self, catalog: &mut Catalog) -> Result<(), ConfigError> {
        for entry in &self.event {
            let name = entry.kind.get_ref();
            if !valid_type_name(name) {
                return Err(self.at(entry.kind.span(), "type", format!("{name:?} is not a valid event type name (letters, digits, '_', '-' and '.')")));
            }
            let fields = match &entry.fields {
                Some(table) => {
                    let mut fields = Vec::new();
                    for (field, kind) in table.get_ref() {
                        let parsed = kind.as_str().and_then(FieldType::parse).ok_or_else(|| {
                            self.at(
                                table.span(),
                                &format!("fields.{field}"),
                                format!("unknown field type {kind} (expected \"string\", \"integer\", \"signed\", \"number\" or \"boolean\")"),
                            )
                        })?;
                        fields.push((field.clone(), parsed));
                    }
                    fields
                }
                None => catalog
                    .get(name)
                    .map(|s| s.fields.clone())
                    .unwrap_or_default(),
            };
            let mut spec = EventSpec::new(name, fields, entry.template.get_ref())
                .map_err(|e| self.at(entry.template.span(), "template", e))?;
            spec.custom = catalog.get(name).is_none_or(|s| s.custom);
            catalog.insert(spec);
        }
        Ok(())
    }

    fn destinations(
        &self,
        catalog: &Catalog,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<DestConfig>, ConfigError> {
        let mut out: Vec<DestConfig> = Vec::new();
        for entry in &self.destination {
            let name = entry.name.get_ref().clone();
            if !valid_type_name(&name) {
                return Err(self
                    .at(
                        entry.name.span(),
                        "name",
                        format!("{name:?} is not a valid destination name (letters, digits, '_', '-' and '.')"),
                    ));
            }
            if out.iter().any(|d| d.name == name) {
                return Err(self.at(
                    entry.name.span(),
                    "name",
                    format!("destination {name:?} is declared twice"),
                ));
            }
            let kind = DestKind::parse(entry.kind.get_ref()).ok_or_else(|| {
                self.at(entry.kind.span(), "kind", format!("unknown destination kind {:?} (expected slack, discord, teams, segment, posthog, mixpanel, webhook or console)", entry.kind.get_ref()))
            })?;
            let mut settings = self.settings(entry, kind, env)?;
            let events = match &entry.events {
                Some(globs) if globs.get_ref().is_empty() => {
                    return Err(self.at(
                        globs.span(),
                        "events",
                        "an empty list routes nothing; remove the key to route every event",
                    ));
                }
                Some(globs) => globs.get_ref().clone(),
                None => vec!["*".to_owned()],
            };
            let rate = match &entry.rate {
                Some(rate) => RateSetting::parse(rate.get_ref())
                    .map_err(|e| self.at(rate.span(), "rate", e))?,
                None => RateSetting::KindDefault,
            };
            let when = match &entry.when {
                Some(source) => Some(
                    When::compile(source.get_ref())
                        .map_err(|e| self.at(source.span(), "when", e))?,
                ),
                None => None,
            };
            let messages = match &entry.template {
                Some(template) => Some(
                    catalog
                        .with_template(&events, template.get_ref())
                        .map_err(|e| self.at(template.span(), "template", e))?,
                ),
                None => None,
            };
            self.shape(entry, &mut settings, catalog, &events, env)?;
            out.push(DestConfig {
                name,
                settings,
                events,
                rate,
                when,
                messages,
            });
        }
        Ok(out)
    }

    /// What destination `entry` of `kind` needs to send, its secrets read
    /// from the environment variables it names and its signing key decoded.
    fn settings(
        &self,
        entry: &DestEntry,
        kind: DestKind,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<DestSettings, ConfigError> {
        let name = entry.name.get_ref();
        let secret = |key: &Option<Spanned<String>>,
                      key_name: &str,
                      default: &str|
         -> Result<Secret, ConfigError> {
            let var = key.as_ref().map_or(default, |v| v.get_ref().as_str());
            let span = key.as_ref().map_or(entry.kind.span(), Spanned::span);
            env(var).map(Secret::new).ok_or_else(|| {
                self.at(span, key_name, format!("destination {name:?} reads its secret from the environment variable {var}, which is not set"))
            })
        };
        Ok(match kind {
            DestKind::Console => DestSettings::Console,
            DestKind::Slack => match &entry.channel {
                Some(channel) => self.slack_bot(
                    entry,
                    channel,
                    secret(&entry.token_env, "token_env", "SLACK_BOT_TOKEN")?,
                )?,
                None => {
                    if let Some(key) = entry.token_env.as_ref().or(entry.api_url.as_ref()) {
                        return Err(self.at(key.span(), "channel", format!("destination {name:?} posts with a bot token and needs the channel to post to (channel = \"#alerts\")")));
                    }
                    DestSettings::Slack {
                        url: secret(&entry.url_env, "url_env", "SLACK_WEBHOOK_URL")?,
                    }
                }
            },
            DestKind::Discord => DestSettings::Discord {
                url: secret(&entry.url_env, "url_env", "DISCORD_WEBHOOK_URL")?,
            },
            DestKind::Teams => DestSettings::Teams {
                url: secret(&entry.url_env, "url_env", "TEAMS_WEBHOOK_URL")?,
            },
            DestKind::Segment => DestSettings::Segment {
                write_key: secret(&entry.write_key_env, "write_key_env", "SEGMENT_WRITE_KEY")?,
                endpoint: entry
                    .endpoint
                    .as_ref()
                    .map(|e| e.get_ref().clone())
                    .or_else(|| env("SEGMENT_ENDPOINT"))
                    .unwrap_or_else(|| SEGMENT_DEFAULT_ENDPOINT.into()),
            },
            DestKind::PostHog => DestSettings::PostHog {
                api_key: secret(&entry.api_key_env, "api_key_env", "POSTHOG_API_KEY")?,
                host: entry
                    .host
                    .as_ref()
                    .map(|h| h.get_ref().clone())
                    .or_else(|| env("POSTHOG_HOST"))
                    .unwrap_or_else(|| POSTHOG_DEFAULT_HOST.into()),
            },
            DestKind::Mixpanel => DestSettings::Mixpanel {
                token: secret(&entry.token_env, "token_env", "MIXPANEL_TOKEN")?,
                api_url: entry
                    .api_url
                    .as_ref()
                    .map(|u| u.get_ref().clone())
                    .or_else(|| env("MIXPANEL_API_URL"))
                    .unwrap_or_else(|| MIXPANEL_DEFAULT_API_URL.into()),
            },
            DestKind::Webhook => {
                let signing = secret(&entry.secret_env, "secret_env", "EVENTS_WEBHOOK_SECRET")?;
                let key = SigningKey::parse(signing.expose()).map_err(|e| {
                    let span = entry
                        .secret_env
                        .as_ref()
                        .map_or(entry.kind.span(), Spanned::span);
                    self.at(span, "secret_env", format!("the signing secret {e}"))
                })?;
                DestSettings::Webhook {
                    url: secret(&entry.url_env, "url_env", "EVENTS_WEBHOOK_URL")?,
                    key,
                    shape: Shape::default(),
                }
            }
        })
    }

    /// Puts a webhook's own `headers` and `body` into its `settings`,
    /// checked against the fields of every type `events` routes; an error
    /// names the line of the header or template at fault: its first
    /// appearance from where the setting starts (a `[destination.headers]`
    /// table's span is its heading alone). Other kinds take neither.
    fn shape(
        &self,
        entry: &DestEntry,
        settings: &mut DestSettings,
        catalog: &Catalog,
        events: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let DestSettings::Webhook { shape, .. } = settings else {
            let set = entry
                .headers
                .as_ref()
                .map(|h| (h.span(), "headers"))
                .or_else(|| entry.body.as_ref().map(|b| (b.span(), "body")));
            return match set {
                Some((span, key)) => Err(self.at(
                    span,
                    key,
                    format!(
                        "only webhook destinations take {key}; {:?} is a {} destination",
                        entry.name.get_ref(),
                        entry.kind.get_ref()
                    ),
                )),
                None => Ok(()),
            };
        };
        *shape = Shape::compile(
            entry.headers.as_ref().map(Spanned::get_ref),
            entry.body.as_ref().map(Spanned::get_ref),
            catalog,
            events,
            env,
        )
        .map_err(|e| {
            let (key, span) = match &e {
                ShapeError::BodyTemplate { .. } | ShapeError::NotJson { .. } => {
                    ("body", entry.body.as_ref().map(Spanned::span))
                }
                _ => ("headers", entry.headers.as_ref().map(Spanned::span)),
            };
            let span = span.unwrap_or(entry.kind.span());
            let start = e
                .needle()
                .and_then(|needle| self.text.get(span.start..)?.find(needle))
                .map_or(span.start, |at| span.start + at);
            self.at(start..start, key, e)
        })?;
        Ok(())
    }

    /// A Slack destination posting to `channel` with a bot token: an
    /// incoming-webhook URL beside it would leave which one is meant unclear.
    fn slack_bot(
        &self,
        entry: &DestEntry,
        channel: &Spanned<String>,
        token: Secret,
    ) -> Result<DestSettings, ConfigError> {
        if let Some(url_env) = &entry.url_env {
            return Err(self.at(
                url_env.span(),
                "url_env",
                "a Slack destination posts either through an incoming webhook (url_env) or with a bot token to a channel (token_env and channel), not both",
            ));
        }
        let name = channel.get_ref().trim();
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(self.at(
                channel.span(),
                "channel",
                "the channel must be a channel name or id, such as \"#alerts\" or \"C0123456789\"",
            ));
        }
        Ok(DestSettings::SlackBot {
            token,
            channel: name.to_owned(),
            api_url: entry
                .api_url
                .as_ref()
                .map_or(SLACK_DEFAULT_API_URL.into(), |u| u.get_ref().clone()),
        })
    }
}

/// A destination's URL must be http(s); the error never shows it (a
/// webhook URL is a secret).
fn check_url(dest: &DestConfig) -> Result<(), ConfigError> {
    let url = match &dest.settings {
        DestSettings::Console => return Ok(()),
        DestSettings::Slack { url }
        | DestSettings::Discord { url }
        | DestSettings::Teams { url }
        | DestSettings::Webhook { url, .. } => url.expose(),
        DestSettings::SlackBot { api_url, .. } => api_url.as_str(),
        DestSettings::Segment { endpoint, .. } => endpoint.as_str(),
        DestSettings::PostHog { host, .. } => host.as_str(),
        DestSettings::Mixpanel { api_url, .. } => api_url.as_str(),
    };
    let (scheme, rest) = url.split_once("://").unwrap_or(("", ""));
    if matches!(scheme, "http" | "https") && !rest.is_empty() {
        Ok(())
    } else {
        err(format!(
            "destination '{}' has a URL that does not start with http:// or https://",
            dest.name
        ))
    }
}

/// Event type and destination names: letters, digits, `_`, `-` and `.`
/// (so a destination name never contains the `|` of a retry token).
fn valid_type_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn any_config_text_gives_a_config_or_an_error(text in "\\PC{0,200}") {
            let _ = ConfigFile::parse(Path::new("events.toml"), &text);
        }

        /// Any password, encoded or not, with the characters that end a
        /// URL's userinfo early for a parser: no part of it is ever shown,
        /// by `redact_url` or by the backend's `Display`.
        #[test]
        fn no_part_of_any_password_is_ever_shown(password in "[#/?@:%a-z\\PC]{0,20}", path in "(/[0-9]{1,2})?") {
            let password = format!("Zq{password}Zq");
            for url in [
                format!("redis://:{password}@127.0.0.1:6379{path}"),
                format!("rediss://user:{password}@cache.internal{path}"),
                format!("redis+sentinel://:{password}@h1:26379,h2:26379/mymaster"),
                format!(":{password}@127.0.0.1:6379"),
            ] {
                let shown = [
                    redact_url(&url),
                    redis_backend(&url).map_or_else(|e| e.to_string(), |b| format!("{b:?}")),
                    redis_backend(&url).map_or_else(|e| e.to_string(), |b| b.to_string()),
                ];
                for text in shown {
                    proptest::prop_assert!(!text.contains("Zq"), "{url:?} shown as {text:?}");
                }
            }
        }
    }

    fn load(vars: &[(&str, &str)]) -> Config {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let global = Global {
            db: Some("/nonexistent/events.db".into()),
            config: Some("/dev/null".into()),
            ..Global::default()
        };
        Config::load_with(&global, &|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .unwrap()
    }

    #[test]
    fn a_prefix_needs_the_hash_tag_redis_cluster_reads() {
        assert_eq!(hash_tag("{events}"), Some("events"));
        assert_eq!(hash_tag("app:{events}:x"), Some("events"));
        assert_eq!(hash_tag("{a}{b}"), Some("a"));
        assert_eq!(hash_tag("}{a}"), Some("a"));
        // Redis reads the first `{` and the first `}` after it: an empty
        // tag means the whole key is hashed.
        assert_eq!(hash_tag("{}{a}"), None);
        assert_eq!(hash_tag("myapp:events"), None);
        assert_eq!(hash_tag("{myapp"), None);
        let refused = |prefix: &str| checked_prefix(prefix.into()).unwrap_err().to_string();
        assert_eq!(
            refused("myapp:events"),
            r#"EVENTS_PREFIX "myapp:events" has no {hash tag}: Redis Cluster needs every key in one slot; use "{myapp:events}""#
        );
        assert!(refused("{}app").ends_with(r#"use "{app}""#));
        assert!(refused("{}").ends_with(r#"use "{events}""#));
        assert_eq!(checked_prefix("{team-a}".into()).unwrap(), "{team-a}");
    }

    #[test]
    fn posthog_and_mixpanel_default_to_the_us_clouds_and_show_no_secret() {
        let config = load(&[
            ("POSTHOG_API_KEY", "phc_hidden"),
            ("MIXPANEL_TOKEN", "mp_hidden"),
            ("MIXPANEL_API_URL", "https://api-eu.mixpanel.com"),
        ]);
        let dests = config.destinations().unwrap();
        let shown: Vec<(&str, DestKind, String)> = dests
            .iter()
            .map(|d| (d.name.as_str(), d.kind(), d.target()))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "posthog",
                    DestKind::PostHog,
                    "https://us.i.posthog.com".into()
                ),
                (
                    "mixpanel",
                    DestKind::Mixpanel,
                    "https://api-eu.mixpanel.com".into()
                ),
            ]
        );
        let debug = format!("{dests:?}");
        assert!(!debug.contains("hidden"), "{debug}");
        assert!(!DestKind::PostHog.is_chat() && DestKind::Mixpanel.default_rate().is_none());
    }

    #[test]
    fn the_signing_key_is_decoded_once_at_load() {
        let config = load(&[
            ("EVENTS_WEBHOOK_URL", "https://example.com/hook"),
            ("EVENTS_WEBHOOK_SECRET", "whsec_AAEC"),
        ]);
        let dests = config.destinations().unwrap();
        let DestSettings::Webhook { key, .. } = &dests[0].settings else {
            panic!("not a webhook: {dests:?}");
        };
        assert_eq!(key.bytes(), &[0u8, 1, 2]);
    }

    #[test]
    fn unusable_destinations_are_a_typed_error_that_spares_emit() {
        let config = load(&[
            ("EVENTS_WEBHOOK_URL", "https://example.com/hook"),
            ("EVENTS_WEBHOOK_SECRET", "whsec_!!!"),
        ]);
        let err: ConfigError = config.destinations().unwrap_err();
        assert_eq!(
            err.to_string(),
            "EVENTS_WEBHOOK_SECRET is not a valid signing secret: expected whsec_ followed by base64"
        );
        // The rest of the configuration loaded: `emit` needs no destination.
        assert!(matches!(config.store.backend, Backend::Sqlite { .. }));
    }

    #[test]
    fn the_redis_client_is_made_once_at_load_and_never_shows_the_password() {
        let config = load(&[("REDIS_URL", "redis://:hunter2@127.0.0.1:6379/0")]);
        let Backend::Redis { client, .. } = &config.store.backend else {
            panic!("not redis");
        };
        assert_eq!(
            client.get_connection_info().addr().to_string(),
            "127.0.0.1:6379"
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
