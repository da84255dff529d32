//! The command line, and nothing else: clap definitions whose doc comments
//! are the help text. Conventions: data goes to stdout and diagnostics to
//! stderr; every table has `--format json`; global options may come from the
//! environment (shown as `[env: …]`); exit status 0 success, 1 runtime
//! failure, 2 invalid input, 130 interrupted.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Emit product events, deliver them to Slack, Discord, Teams, Segment, PostHog, Mixpanel and webhooks, replay
/// what failed.
#[derive(Debug, Parser)]
#[command(
    name = "events",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Say more on stderr (every retry and claim).
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Say less on stderr (only failures).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store.
    #[arg(
        long,
        global = true,
        env = "REDIS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub redis_url: Option<String>,
    /// Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url.
    #[arg(
        long,
        global = true,
        env = "EVENTS_POSTGRES_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub postgres_url: Option<String>,
    /// The embedded store's file [default: $XDG_STATE_HOME/events/events.db].
    #[arg(long, global = true, env = "EVENTS_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// A TOML file adding event types and destinations [default: ./events.toml when present].
    #[arg(long, global = true, env = "EVENTS_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Emit(EmitArgs),
    Work(WorkArgs),
    Replay(ReplayArgs),
    Purge(PurgeArgs),
    Tail(TailArgs),
    Templates(TemplatesArgs),
    Status(StatusArgs),
    Digest(DigestArgs),
    Inspect(InspectArgs),
    Forget(ForgetArgs),
    Pause(PauseArgs),
    Resume(ResumeArgs),
    Migrate(MigrateArgs),
    Dashboard(DashboardArgs),
    Completions(CompletionsArgs),
    Man(ManArgs),
}

/// Serve the on-call web view: backlog, destinations, dead letters, events.
///
/// Read-only unless EVENTS_DASHBOARD_TOKEN is set; then every page asks for
/// the token (a login form, or `Authorization: Bearer`) and dead letters can
/// be replayed and purged from it. Without a token it listens only on a
/// loopback address. Prints the address it listens on.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  events dashboard\n  EVENTS_DASHBOARD_TOKEN=$(openssl rand -hex 32) events dashboard --addr 0.0.0.0:9465 --public-url https://events.example.com"
)]
pub struct DashboardArgs {
    /// Listen on this address (port 0 picks a free one).
    #[arg(
        long,
        value_name = "ADDR",
        env = "EVENTS_DASHBOARD_ADDR",
        default_value = "127.0.0.1:9465"
    )]
    pub addr: String,
    /// The URL people open it at, behind a proxy: its host is accepted in
    /// the Host header besides the address listened on.
    #[arg(long, value_name = "URL", env = "EVENTS_DASHBOARD_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// Create or upgrade the Postgres schema (EVENTS_PG_SCHEMA, default events).
///
/// Every command does this on first use, under an advisory lock; `migrate`
/// does it on purpose, e.g. at deploy. Prints the schema's version. Redis
/// and SQLite need no migration.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  events migrate\n  events migrate --print-sql > events_schema.sql"
)]
pub struct MigrateArgs {
    /// Print the SQL that creates the schema (idempotent, in one transaction), for your own migration tool; connects to nothing.
    #[arg(long)]
    pub print_sql: bool,
}

/// Validate an event and put it on the queue; prints its id.
///
/// Fields come from `--json OBJECT`, then the per-field flags, then
/// `--field KEY=VALUE` (typed by the catalog), later ones winning. With `--stdin`, events
/// are read as JSON Lines (`{"type":…,"payload":{…}}`, `id` and `ts`
/// optional); a bad line is reported with its number and the rest still go
/// in. `EVENTS_DISABLED=1` validates and writes nothing. `EVENTS_EMIT_REPLICAS=N`
/// waits until N Redis replicas hold the event, and exits 1 (the id still
/// printed) when they do not in time.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  events emit user.signup --email ada@example.com\n  events emit import.completed --email ada@example.com --importer-name CRM --row-count 1234\n  events emit user.signup --email ada@example.com --idempotency-key signup-ada\n  some-export | events emit --stdin"
)]
pub struct EmitArgs {
    /// The event type, e.g. user.signup (see `events templates`).
    #[arg(required_unless_present = "stdin", conflicts_with = "stdin")]
    pub event_type: Option<String>,
    /// The `email` field.
    #[arg(long, value_name = "E")]
    pub email: Option<String>,
    /// The `importer_name` field.
    #[arg(long, value_name = "N")]
    pub importer_name: Option<String>,
    /// The `plan` field.
    #[arg(long, value_name = "P")]
    pub plan: Option<String>,
    /// The `row_count` field (a non-negative integer).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub row_count: Option<String>,
    /// The `error` field.
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    pub error: Option<String>,
    /// Any field, typed by the catalog; repeatable.
    #[arg(short, long = "field", value_name = "KEY=VALUE")]
    pub fields: Vec<String>,
    /// Fields as a JSON object.
    #[arg(long, value_name = "OBJECT")]
    pub json: Option<String>,
    /// A re-run with the same key within 24 h writes nothing and prints the first event's id.
    #[arg(long, value_name = "KEY", conflicts_with = "stdin")]
    pub idempotency_key: Option<String>,
    /// Validate and print the event and its message; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Read events as JSON Lines from stdin.
    #[arg(long, conflicts_with_all = ["email", "importer_name", "plan", "row_count", "error", "fields", "json"])]
    pub stdin: bool,
}

/// Deliver queued events to every destination, until SIGINT/SIGTERM.
///
/// Destinations come from the environment (SLACK_WEBHOOK_URL,
/// DISCORD_WEBHOOK_URL, TEAMS_WEBHOOK_URL, SEGMENT_WRITE_KEY, POSTHOG_API_KEY,
/// MIXPANEL_TOKEN,
/// EVENTS_WEBHOOK_URL with EVENTS_WEBHOOK_SECRET, EVENTS_CONSOLE=1) or the config file; with none, messages go to stdout.
/// One stderr line per outcome: delivered, retry in …, dead.
/// Dead letters also raise an `events.dead_letters` event, at most one per
/// destination per 5 minutes, never sent to that destination (EVENTS_ALERTS=0: none).
/// SIGHUP reloads the config file and .env for what is claimed next.
#[derive(Debug, Args)]
pub struct WorkArgs {
    /// Exit 0 once nothing is new, pending or due for retry within 5 s.
    ///
    /// Retries due later stay scheduled for the next run; the worker says how
    /// many and when the next is due. Dead letters never hold it.
    #[arg(long)]
    pub burst: bool,
    /// The most requests in flight at once per destination that sends one
    /// event per request (webhooks), from 1 to 256: each is a thread and a
    /// connection.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// This worker's name in the consumer group [default: host name and pid].
    ///
    /// One running worker holds a name at a time; a second one exits 2.
    #[arg(long, value_name = "NAME")]
    pub consumer: Option<String>,
    /// Deliver only to these destinations (by name); repeatable.
    #[arg(long, value_name = "DEST")]
    pub only: Vec<String>,
    /// Serve /metrics (Prometheus), /healthz and /readyz on this address,
    /// e.g. 127.0.0.1:9464 [default: off].
    #[arg(long, value_name = "ADDR", env = "EVENTS_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
}

/// Put dead letters, history or a file of events back into delivery.
///
/// Replayed events keep their ids, so receivers can drop duplicates. Replaying
/// to Slack repeats messages people have seen: it asks first on a terminal and
/// needs `--yes` otherwise. The worker delivers what is replayed.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["dead", "since", "file"]))]
pub struct ReplayArgs {
    /// Dead letters, each to the destination that failed (unless --to).
    #[arg(long)]
    pub dead: bool,
    /// History from WHEN: RFC 3339 or a duration ago such as 90m, 2h, 7d
    /// (-90m means the same).
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// History until WHEN (exclusive) [default: now].
    #[arg(
        long,
        value_name = "WHEN",
        requires = "since",
        allow_hyphen_values = true
    )]
    pub until: Option<String>,
    /// Events from a JSON Lines file, or - for stdin.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Only event types matching this glob; repeatable.
    #[arg(long = "type", value_name = "GLOB")]
    pub types: Vec<String>,
    /// Only to this destination (by name).
    #[arg(long, value_name = "DEST")]
    pub to: Option<String>,
    /// Replay at most N events.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print what would be replayed as JSON Lines (an export); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
}

/// Remove dead letters for good, all or those the filters select.
///
/// The filters are `replay --dead`'s, and a letter must pass every one
/// given. Removing asks first on a terminal and needs `--yes` otherwise;
/// `--dry-run` only counts. The worker also removes dead letters older than
/// `EVENTS_DEAD_RETENTION` (default 30d) on its own.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  events purge --dead --before 7d --dry-run\n  events purge --dead --dest webhook --type 'user.*' --yes"
)]
pub struct PurgeArgs {
    /// Dead letters (the only thing purged, and required to say so).
    #[arg(long, required = true)]
    pub dead: bool,
    /// Only letters of event types matching this glob; repeatable.
    #[arg(long = "type", value_name = "GLOB")]
    pub types: Vec<String>,
    /// Only letters of deliveries to this destination (by name, configured
    /// or not); repeatable.
    #[arg(long = "dest", value_name = "NAME")]
    pub dests: Vec<String>,
    /// Only letters dead-lettered before WHEN: RFC 3339 or a duration ago
    /// such as 90m, 2h, 7d (-7d means the same).
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true)]
    pub before: Option<String>,
    /// Count what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
}

/// Print each new event as it is written, until interrupted.
///
/// Reads the stream without joining the workers' consumer group, so it never
/// takes work from them: the workers still deliver everything it shows.
/// Ctrl-C ends it (exit 0).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  events tail\n  events tail --type 'subscription.*' --format json\n  events tail --since 1h"
)]
pub struct TailArgs {
    /// Only event types matching this glob; repeatable.
    #[arg(long = "type", value_name = "GLOB")]
    pub types: Vec<String>,
    /// `text`: each event's message, as the console destination prints it;
    /// `json`: each event as a JSON line.
    #[arg(long, value_enum, default_value_t = TailFormat::Text)]
    pub format: TailFormat,
    /// Start with the events written since WHEN (RFC 3339 or a duration ago
    /// such as 90m, 2h, 7d) rather than only new ones.
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true)]
    pub since: Option<String>,
}

/// How `tail` prints events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TailFormat {
    Text,
    Json,
}

/// List the event catalog, or preview every message.
#[derive(Debug, Args)]
pub struct TemplatesArgs {
    /// Only these event types.
    #[arg(value_name = "TYPE")]
    pub types: Vec<String>,
    /// Render each message with sample values.
    #[arg(long)]
    pub preview: bool,
    /// Override a sample value; repeatable.
    #[arg(short, long = "field", value_name = "KEY=VALUE")]
    pub fields: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// With --preview: what this destination (by name) would receive — its
    /// own template, its escaping, and whether its `when` routes the sample
    /// there.
    #[arg(long, value_name = "DEST", requires = "preview")]
    pub to: Option<String>,
}

/// Show the health of the pipeline: backlog, workers, retries, dead letters.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Refresh every second, with deliveries per second per destination,
    /// until Ctrl-C: in place on a terminal; one table (or, with
    /// `--format json`, one JSON line) per second otherwise.
    #[arg(long)]
    pub watch: bool,
}

/// Send one message summarising a window of history, per event type.
///
/// Per type: how many events, the sum of every integer field, and the
/// commonest values of string fields that repeat. Sent to chat destinations
/// (Slack, Discord, Teams) through their normal path, or printed with
/// `--dry-run`. Suited to a daily cron job.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  events digest --since 24h --dry-run\n  events digest --since 24h --to growth\n  events digest --since 2026-11-27T00:00:00Z --until 2026-11-28T00:00:00Z"
)]
pub struct DigestArgs {
    /// The window's start: RFC 3339 or a duration ago such as 24h, 7d.
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true)]
    pub since: String,
    /// The window's end (exclusive) [default: now].
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true)]
    pub until: Option<String>,
    /// Send to this chat destination (by name); repeatable [default: every
    /// configured chat destination].
    #[arg(long, value_name = "DEST")]
    pub to: Vec<String>,
    /// Print the digest; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Give up on a destination still rate limited or failing once the
    /// digest has waited this long in all (exit 1), such as 30s, 5m, 1h
    /// (at most a day).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = max_wait)]
    pub max_wait: std::time::Duration,
}

/// `--max-wait`: a duration up to a day.
fn max_wait(text: &str) -> Result<std::time::Duration, BadMaxWait> {
    match humantime::parse_duration(text) {
        Ok(wait) if wait.as_secs() <= 86_400 => Ok(wait),
        Ok(_) => Err(BadMaxWait::OverADay),
        Err(_) => Err(BadMaxWait::NotADuration),
    }
}

/// Why a `--max-wait` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum BadMaxWait {
    #[error("at most a day (1d)")]
    OverADay,
    #[error("expected a duration such as 30s, 5m or 1h")]
    NotADuration,
}

/// Show one event and, per destination, where its delivery stands and
/// every attempt made.
///
/// States: delivered; retrying (with when it is next due); dead; waiting
/// (no worker has got to it yet); not routed (the current configuration
/// sends it elsewhere). Attempts are kept as long as the history
/// (EVENTS_RETENTION). Exits 1 when no event or attempt has this id.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  events inspect 01JD3Q8W3M6Z5N4V2X1Y0T9S8R\n  events inspect 01JD3Q8W3M6Z5N4V2X1Y0T9S8R --format json"
)]
pub struct InspectArgs {
    /// The event's id, as `emit` printed it.
    #[arg(value_name = "ID")]
    pub id: String,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Erase one person's events: from the history, the retry set, the dead
/// letters, the attempt records and the idempotency keys.
///
/// An event is theirs when its payload carries one of the values given
/// (`--email E` is `--field email=E`), compared exactly. Erasing is for
/// good, so it asks first on a terminal and needs `--yes` otherwise;
/// `--dry-run` only counts. Safe while workers run. What destinations
/// already received is theirs to erase: see "Personal data" in the README.
#[derive(Debug, Args)]
#[command(
    group(clap::ArgGroup::new("who").required(true).multiple(true).args(["email", "fields"])),
    after_help = "Examples:\n  events forget --email ada@example.com --dry-run\n  events forget --email ada@example.com -f user_id=42 --yes"
)]
pub struct ForgetArgs {
    /// The events whose payload's `email` is E.
    #[arg(long, value_name = "E")]
    pub email: Option<String>,
    /// The events whose payload field KEY is VALUE; repeatable.
    #[arg(short = 'f', long = "field", value_name = "KEY=VALUE")]
    pub fields: Vec<String>,
    /// Count what would be erased; erase nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Stop every worker sending to a destination until `resume` (or for a
/// while).
///
/// Recorded in the queue: every worker stops sending to DEST within about a
/// second. Its deliveries are held, not attempted: no attempt is spent,
/// nothing is dropped or dead-lettered; `status` shows since when, by whom
/// and how many wait. Pausing again keeps when the pause began and takes
/// the new `--for`. Exits 2 when no destination has this name.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  events pause webhook\n  events pause slack --for 30m\n  events resume webhook"
)]
pub struct PauseArgs {
    /// The destination, by name.
    #[arg(value_name = "DEST")]
    pub dest: String,
    /// End the pause by itself after this long, such as 30s, 15m, 2h, 1d
    /// (at most a year) [default: until `events resume`].
    #[arg(long = "for", value_name = "DURATION", allow_hyphen_values = true, value_parser = pause_for)]
    pub duration: Option<std::time::Duration>,
}

/// `--for`: a duration longer than nothing and up to a year.
fn pause_for(text: &str) -> Result<std::time::Duration, BadPauseFor> {
    if text.trim_start().starts_with('-') {
        return Err(BadPauseFor::Negative);
    }
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err(BadPauseFor::Zero),
        Ok(d) if d.as_secs() > 365 * 86_400 => Err(BadPauseFor::OverAYear),
        Ok(d) => Ok(d),
        Err(_) => Err(BadPauseFor::NotADuration),
    }
}

/// Why a `--for` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum BadPauseFor {
    #[error("a pause cannot last a negative time; give a duration such as 15m")]
    Negative,
    #[error(
        "a pause of 0 would end at once; give a duration such as 15m, or leave --for out to pause until resumed"
    )]
    Zero,
    #[error("at most a year (365d); leave --for out to pause until resumed")]
    OverAYear,
    #[error("expected a duration such as 30s, 15m, 2h or 1d")]
    NotADuration,
}

/// Let workers send to a paused destination again: what it held is sent,
/// in order, once each.
///
/// Exits 0 saying so when the destination was not paused, and 2 when no
/// destination has this name.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  events resume webhook")]
pub struct ResumeArgs {
    /// The destination, by name.
    #[arg(value_name = "DEST")]
    pub dest: String,
}

/// Print a shell completion script.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Write man pages (one per subcommand).
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write the pages into this directory instead of printing `events(1)`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// How tables are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn max_wait_is_a_duration_up_to_a_day() {
        assert_eq!(max_wait("1d"), Ok(std::time::Duration::from_secs(86_400)));
        assert_eq!(max_wait("25h"), Err(BadMaxWait::OverADay));
        assert_eq!(max_wait("soon"), Err(BadMaxWait::NotADuration));
        let digest = |wait: &str| {
            Cli::try_parse_from(["events", "digest", "--since", "1h", "--max-wait", wait])
                .unwrap_err()
                .to_string()
        };
        assert!(
            digest("2d")
                .contains("invalid value '2d' for '--max-wait <DURATION>': at most a day (1d)"),
            "{}",
            digest("2d")
        );
        assert!(
            digest("soon").contains("expected a duration such as 30s, 5m or 1h"),
            "{}",
            digest("soon")
        );
    }
}
