//! The store's own settings: where the queue lives (`--postgres-url` /
//! `EVENTS_POSTGRES_URL` with its schema `EVENTS_PG_SCHEMA`, else
//! `--redis-url` / `REDIS_URL`, else the SQLite file of `--db` /
//! `EVENTS_DB`), the Redis key
//! prefix (`EVENTS_PREFIX`), and the replicas an emit waits for
//! (`EVENTS_EMIT_REPLICAS`). Read from plain values, so the store never
//! sees the whole configuration.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::redis::sentinel::{Answered, SentinelUrl, is_sentinel_url};
use super::{Durability, Queue, QueueOptions, Result, postgres, redis, sqlite};
use crate::secret::{Secret, redact_url};

/// A store setting that cannot be used: the variable (or the flag standing
/// for it) at fault, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SettingError {
    pub name: &'static str,
    pub message: String,
}

fn refuse<T>(name: &'static str, message: String) -> std::result::Result<T, SettingError> {
    Err(SettingError { name, message })
}

/// Where the queue lives.
#[derive(Clone)]
pub enum Backend {
    /// The client is parsed from the URL once, when the configuration
    /// loads; every queue opened on it shares that parse.
    Redis {
        url: Secret,
        client: Box<::redis::Client>,
    },
    Sqlite {
        path: PathBuf,
    },
    /// A PostgreSQL database, the queue in its own schema.
    Postgres {
        url: Secret,
        schema: String,
    },
    /// A primary that Redis Sentinel names (`redis+sentinel://`), checked
    /// when the configuration loads; the sentinels are asked on connecting.
    /// `answered` is the sentinel that answered last, shared by every
    /// queue opened from these settings.
    Sentinel {
        url: Secret,
        sentinel: Box<SentinelUrl>,
        answered: Answered,
    },
}

impl Backend {
    /// The backend's name, as `status` and the dashboard show it: `redis`
    /// (Sentinel too), `sqlite` or `postgres`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Backend::Redis { .. } | Backend::Sentinel { .. } => "redis",
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }
}

/// As `Display`: a client's own `Debug` would show the password.
impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Redis { url, .. } => write!(f, "redis {}", redact_url(url.expose())),
            Backend::Sqlite { path } => write!(f, "sqlite {}", path.display()),
            Backend::Postgres { url, schema } => {
                write!(f, "postgres {} schema {schema}", redact_url(url.expose()))
            }
            Backend::Sentinel { url, .. } => write!(f, "redis {}", redact_url(url.expose())),
        }
    }
}

/// Everything the store needs to be opened: `setup` builds one, and every
/// queue opened from it (a worker's reader, settler and lanes) shares what
/// it holds.
#[derive(Debug, Clone)]
pub struct Settings {
    pub backend: Backend,
    /// The prefix of every Redis key, `{events}` by default.
    pub prefix: String,
    /// Its tuning; `EVENTS_EMIT_REPLICAS` sets its durability.
    pub options: QueueOptions,
    /// `EVENTS_EMIT_TIMEOUT_MS`: how long an emit may wait to connect and
    /// for each reply (see [`QueueOptions::timeout`]); the emitter applies
    /// it, the worker never does.
    pub emit_timeout: Option<Duration>,
}

impl Settings {
    /// The settings from the flags `redis_url`, `postgres_url` and `db` and the environment
    /// `env` (empty values already counted as unset), with `options` tuned
    /// by the delivery settings.
    pub fn parse(
        redis_url: Option<&str>,
        postgres_url: Option<&str>,
        db: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        options: QueueOptions,
    ) -> std::result::Result<Settings, SettingError> {
        let postgres_url = postgres_url
            .map(str::to_owned)
            .or_else(|| env("EVENTS_POSTGRES_URL"));
        let redis_url = redis_url.map(str::to_owned).or_else(|| env("REDIS_URL"));
        let backend = match (postgres_url, redis_url) {
            (Some(url), _) => postgres_backend(&url, env("EVENTS_PG_SCHEMA"))?,
            (None, Some(url)) => redis_backend(&url)?,
            (None, None) => Backend::Sqlite {
                path: match db
                    .map(Path::to_owned)
                    .or_else(|| env("EVENTS_DB").map(Into::into))
                {
                    Some(path) => path,
                    None => default_db_path(env)?,
                },
            },
        };
        Ok(Settings {
            backend,
            options: QueueOptions {
                durability: durability(env)?,
                ..options
            },
            prefix: match env("EVENTS_PREFIX") {
                Some(prefix) => checked_prefix(prefix)?,
                None => "{events}".into(),
            },
            emit_timeout: ranged(
                env,
                "EVENTS_EMIT_TIMEOUT_MS",
                EMIT_TIMEOUT_MS,
                "milliseconds",
            )?
            .map(Duration::from_millis),
        })
    }
}

/// Opens the queue `settings` name.
pub fn open(settings: &Settings) -> Result<Box<dyn Queue>> {
    let options = settings.options.clone();
    Ok(match &settings.backend {
        Backend::Redis { url, client } => Box::new(redis::RedisQueue::with_client(
            (**client).clone(),
            redact_url(url.expose()),
            &settings.prefix,
            options,
        )),
        Backend::Sqlite { path } => Box::new(sqlite::SqliteQueue::open(path, options)?),
        Backend::Postgres { url, schema } => Box::new(postgres::PostgresQueue::open(
            url.expose(),
            schema,
            options,
        )?),
        Backend::Sentinel {
            sentinel, answered, ..
        } => Box::new(redis::RedisQueue::with_sentinels(
            (**sentinel).clone(),
            answered.clone(),
            &settings.prefix,
            options,
        )?),
    })
}

/// The Redis key prefix, which must hold a hash tag: on a Redis Cluster
/// only the part between the first `{` and the first `}` after it picks a
/// key's slot, and every key must share one slot for the queue's
/// transactions and scripts to run there.
fn checked_prefix(prefix: String) -> std::result::Result<String, SettingError> {
    if hash_tag(&prefix).is_some() {
        return Ok(prefix);
    }
    let bare = prefix.replace(['{', '}'], "");
    let fix = if bare.is_empty() {
        "{events}".to_owned()
    } else {
        format!("{{{bare}}}")
    };
    refuse(
        "EVENTS_PREFIX",
        format!(
            "EVENTS_PREFIX {prefix:?} has no {{hash tag}}: Redis Cluster needs every key in one slot; use {fix:?}"
        ),
    )
}

/// A key's hash tag as Redis Cluster reads it: what lies between the first
/// `{` and the first `}` after it, when that is not empty.
fn hash_tag(key: &str) -> Option<&str> {
    let (_, after) = key.split_once('{')?;
    let (tag, _) = after.split_once('}')?;
    (!tag.is_empty()).then_some(tag)
}

fn redis_backend(url: &str) -> std::result::Result<Backend, SettingError> {
    if is_sentinel_url(url) {
        let sentinel = SentinelUrl::parse(url).map_err(|e| SettingError {
            name: "REDIS_URL",
            message: format!("the Redis URL {} {e}", redact_url(url)),
        })?;
        return Ok(Backend::Sentinel {
            url: Secret::new(url),
            sentinel: Box::new(sentinel),
            answered: Answered::default(),
        });
    }
    if !(url.starts_with("redis://")
        || url.starts_with("rediss://")
        || url.starts_with("redis+unix://")
        || url.starts_with("unix://"))
    {
        return refuse(
            "REDIS_URL",
            format!(
                "the Redis URL {} must start with redis://, rediss:// or redis+sentinel://",
                redact_url(url)
            ),
        );
    }
    let client = ::redis::Client::open(url).map_err(|_| SettingError {
        name: "REDIS_URL",
        message: format!(
            "the Redis URL {} is not valid: {}",
            redact_url(url),
            why_invalid(url)
        ),
    })?;
    Ok(Backend::Redis {
        url: Secret::new(url),
        client: Box::new(client),
    })
}

/// Why the redis crate refuses `text`, in its words, read from the URL's
/// parts (never from the error's text, which may hold the password).
fn why_invalid(text: &str) -> &'static str {
    let Some(url) = ::redis::parse_redis_url(text) else {
        return "Redis URL did not parse";
    };
    let bad_db = |db: &str| !db.is_empty() && db.parse::<i64>().is_err();
    if matches!(url.scheme(), "unix" | "redis+unix") {
        if url.to_file_path().is_err() {
            return "Missing path";
        }
        if url
            .query_pairs()
            .any(|(k, v)| k == "db" && v.parse::<i64>().is_err())
        {
            return "Invalid database number";
        }
        return "it does not parse";
    }
    let decodes = |part: &str| {
        percent_encoding::percent_decode_str(part)
            .decode_utf8()
            .is_ok()
    };
    match url.host_str() {
        None => "Missing hostname",
        Some("0.0.0.0" | "[::]") => "Cannot connect to a wildcard address (0.0.0.0 or ::)",
        Some(_) if url.scheme() == "rediss" && url.fragment().is_some_and(|f| f != "insecure") => {
            "only #insecure is supported as URL fragment"
        }
        Some(_) if bad_db(url.path().trim_matches('/')) => "Invalid database number",
        Some(_) if !decodes(url.username()) => "Username is not valid UTF-8 string",
        Some(_) if !url.password().is_none_or(decodes) => "Password is not valid UTF-8 string",
        Some(_) => "it does not parse",
    }
}

/// The Postgres URL and schema, checked: the URL must parse (its password
/// never shown), with an `sslmode` this version knows; the schema must be a plain lower-case SQL name, as it is written into SQL.
fn postgres_backend(
    url: &str,
    schema: Option<String>,
) -> std::result::Result<Backend, SettingError> {
    const NAME: &str = "EVENTS_POSTGRES_URL";
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return refuse(
            NAME,
            format!(
                "the Postgres URL {} must start with postgres:// or postgresql://",
                redact_url(url)
            ),
        );
    }
    let (rest, _) = postgres::tls::split_url(url).map_err(|why| SettingError {
        name: NAME,
        message: format!("the Postgres URL {}: {why}", redact_url(url)),
    })?;
    rest.parse::<::postgres::Config>()
        .map_err(|_| SettingError {
            name: NAME,
            message: format!("the Postgres URL {} is not valid", redact_url(url)),
        })?;
    let schema = schema.unwrap_or_else(|| "events".to_owned());
    if !postgres::is_plain_name(&schema) {
        return refuse(
            "EVENTS_PG_SCHEMA",
            format!(
                "EVENTS_PG_SCHEMA {schema:?} must be a plain SQL name: lower-case letters, \
                 digits and _, not starting with a digit, at most 63 characters"
            ),
        );
    }
    Ok(Backend::Postgres {
        url: Secret::new(url),
        schema,
    })
}

/// Replicas an emit may wait for: more than a primary ever has is a typo.
const EMIT_REPLICAS: std::ops::RangeInclusive<u32> = 0..=16;
/// How long an emit may wait for them: a minute is already far past what a
/// healthy replica needs (a few ms on one network).
const EMIT_REPLICAS_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 1..=60_000;

/// How long an emit may wait to connect and for each reply: a minute
/// is already far past any queue that answers at all.
const EMIT_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 1..=60_000;

/// `EVENTS_EMIT_REPLICAS` and `EVENTS_EMIT_REPLICAS_TIMEOUT_MS`; `None`
/// when no replica is asked for (the default).
fn durability(
    env: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<Option<Durability>, SettingError> {
    let replicas = ranged(env, "EVENTS_EMIT_REPLICAS", EMIT_REPLICAS, "replicas")?.unwrap_or(0);
    let timeout = ranged(
        env,
        "EVENTS_EMIT_REPLICAS_TIMEOUT_MS",
        EMIT_REPLICAS_TIMEOUT_MS,
        "milliseconds",
    )?
    .map_or(Duration::from_secs(1), Duration::from_millis);
    Ok((replicas > 0).then_some(Durability { replicas, timeout }))
}

/// The whole number in `name`, checked against `range`.
fn ranged<T: std::str::FromStr + PartialOrd + fmt::Display>(
    env: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
    range: std::ops::RangeInclusive<T>,
    unit: &str,
) -> std::result::Result<Option<T>, SettingError> {
    let Some(value) = env(name) else {
        return Ok(None);
    };
    match value.trim().parse::<T>().ok().filter(|n| range.contains(n)) {
        Some(n) => Ok(Some(n)),
        None => refuse(
            name,
            format!(
                "{name} must be a whole number of {unit} from {} to {}, not {value:?}",
                range.start(),
                range.end()
            ),
        ),
    }
}

fn default_db_path(
    env: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<PathBuf, SettingError> {
    let state = env("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".local/state")));
    match state {
        Some(dir) => Ok(dir.join("events").join("events.db")),
        None => refuse(
            "EVENTS_DB",
            "cannot choose where to keep the event store: set --db or EVENTS_DB (neither XDG_STATE_HOME nor HOME is set)".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
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

    /// The reason given is the redis crate's own, for each way a URL fails.
    #[test]
    fn an_invalid_url_is_explained_in_the_crates_words_without_reading_its_error() {
        for url in [
            "redis://",
            "redis://:pw@127.0.0.1:6379/x",
            "redis://0.0.0.0:6379",
            "rediss://h:6379#other",
            "redis://%ff@h:6379",
            "redis://u:%ff@h:6379",
            "unix:///tmp/r.sock?db=x",
        ] {
            let refused = ::redis::Client::open(url).expect_err(url).to_string();
            let why = why_invalid(url);
            assert!(refused.starts_with(why), "{url}: {why:?} for {refused:?}");
        }
        let refused = redis_backend("redis://:hunter2@127.0.0.1:6379/x").unwrap_err();
        assert_eq!(
            refused.message,
            "the Redis URL redis://***@127.0.0.1:6379/*** is not valid: Invalid database number"
        );
    }

    fn parsed(vars: &[(&str, &str)]) -> std::result::Result<Settings, SettingError> {
        let env = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        Settings::parse(None, None, None, &env, QueueOptions::default())
    }

    #[test]
    fn postgres_wins_over_redis_and_never_shows_its_password() {
        let settings = parsed(&[
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("EVENTS_POSTGRES_URL", "postgres://app:Hunter2@db:5432/app"),
        ])
        .unwrap();
        let Backend::Postgres { schema, .. } = &settings.backend else {
            panic!("{:?}", settings.backend);
        };
        assert_eq!(schema, "events");
        assert_eq!(
            settings.backend.to_string(),
            "postgres postgres://***@db:5432/*** schema events"
        );
        let custom = parsed(&[
            ("EVENTS_POSTGRES_URL", "postgresql://db/app"),
            ("EVENTS_PG_SCHEMA", "queue_2"),
        ])
        .unwrap();
        assert!(
            matches!(custom.backend, Backend::Postgres { ref schema, .. } if schema == "queue_2")
        );
    }

    #[test]
    fn a_postgres_url_with_an_unknown_sslmode_or_a_bad_schema_is_refused() {
        let refused = parsed(&[(
            "EVENTS_POSTGRES_URL",
            "postgres://app:Hunter2@db/app?sslmode=allow",
        )])
        .unwrap_err();
        assert_eq!(refused.name, "EVENTS_POSTGRES_URL");
        assert!(refused.message.contains("sslmode=allow"), "{refused}");
        assert!(!refused.message.contains("Hunter2"), "{refused}");
        for url in ["mysql://db/app", "postgres://app:Hunter2@db:notaport/app"] {
            let refused = parsed(&[("EVENTS_POSTGRES_URL", url)]).unwrap_err();
            assert!(!refused.message.contains("Hunter2"), "{refused}");
        }
        for schema in ["Events", "a-b", "1x", "x;drop", ""] {
            let refused = parsed(&[
                ("EVENTS_POSTGRES_URL", "postgres://db/app"),
                ("EVENTS_PG_SCHEMA", schema),
            ])
            .unwrap_err();
            assert_eq!(refused.name, "EVENTS_PG_SCHEMA", "{schema:?}");
        }
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
}
