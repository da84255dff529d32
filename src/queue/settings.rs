//! The store's own settings: where it lives (the backend and its URL or
//! file), the prefix of its keys and its tuning. The configuration reads
//! what was written; the queue parses its URL here and is opened from these
//! settings alone, never from the whole configuration.

use std::fmt;
use std::path::PathBuf;

use super::redis::sentinel::{Answered, SentinelUrl, is_sentinel_url};
use super::{Queue, QueueOptions, Result, redis, sqlite};
use crate::secret::{Secret, redact_url};

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
            Backend::Sentinel { url, .. } => write!(f, "redis {}", redact_url(url.expose())),
        }
    }
}

impl Backend {
    /// The Redis (or Redis Sentinel) at `url`, checked now; the message of
    /// the error names the URL without its password.
    pub fn redis(url: &str) -> std::result::Result<Backend, String> {
        if is_sentinel_url(url) {
            let sentinel = SentinelUrl::parse(url)
                .map_err(|e| format!("the Redis URL {} {e}", redact_url(url)))?;
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
            return Err(format!(
                "the Redis URL {} must start with redis://, rediss:// or redis+sentinel://",
                redact_url(url)
            ));
        }
        let client = ::redis::Client::open(url).map_err(|_| {
            format!(
                "the Redis URL {} is not valid: {}",
                redact_url(url),
                why_invalid(url)
            )
        })?;
        Ok(Backend::Redis {
            url: Secret::new(url),
            client: Box::new(client),
        })
    }
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

/// Everything the store needs to be opened: the configuration builds one,
/// and every queue opened from it (a worker's reader, settler and lanes)
/// shares what it holds.
#[derive(Debug, Clone)]
pub struct Settings {
    pub backend: Backend,
    /// The prefix of every Redis key, `{events}` by default.
    pub prefix: String,
    pub options: QueueOptions,
}

/// Opens the queue `settings` name.
pub fn open(settings: &Settings) -> Result<Box<dyn Queue>> {
    let options = settings.options.clone();
    let prefix = &settings.prefix;
    Ok(match &settings.backend {
        Backend::Redis { url, client } => Box::new(redis::RedisQueue::with_client(
            (**client).clone(),
            redact_url(url.expose()),
            prefix,
            options,
        )),
        Backend::Sqlite { path } => Box::new(sqlite::SqliteQueue::open(path, options)?),
        Backend::Sentinel {
            sentinel, answered, ..
        } => Box::new(redis::RedisQueue::with_sentinels(
            (**sentinel).clone(),
            answered.clone(),
            prefix,
            options,
        )?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let refused = Backend::redis("redis://:hunter2@127.0.0.1:6379/x").unwrap_err();
        assert_eq!(
            refused,
            "the Redis URL redis://***@127.0.0.1:6379/*** is not valid: Invalid database number"
        );
    }
}
