//! The queue a command-level test runs against, and the macro that runs each
//! such test once per backend: the commands promise the same behaviour on
//! every backend, so their tests are written once.

use std::path::PathBuf;

use super::{Events, RedisServer};

/// The queue of one test: a throw-away Redis, or an SQLite file in a
/// temporary directory.
pub enum Backend {
    Redis { server: RedisServer, url: String },
    Sqlite { dir: tempfile::TempDir },
}

impl Backend {
    pub fn redis() -> Backend {
        let server = RedisServer::start();
        let url = server.url();
        Backend::Redis { server, url }
    }

    pub fn sqlite() -> Backend {
        let dir = tempfile::Builder::new()
            .prefix("events-db-")
            .tempdir()
            .expect("create a temporary directory");
        Backend::Sqlite { dir }
    }

    /// The Redis server requires this password from now on (Redis only).
    pub fn require_password(&mut self, password: &str) {
        if let Backend::Redis { server, url } = self {
            server.cli(&["CONFIG", "SET", "requirepass", password]);
            *url = format!("redis://:{password}@127.0.0.1:{}", server.port());
        }
    }

    pub fn db_path(&self) -> Option<PathBuf> {
        match self {
            Backend::Redis { .. } => None,
            Backend::Sqlite { dir } => Some(dir.path().join("events.db")),
        }
    }

    /// `events` on this queue, with fast retries and timeouts.
    pub fn events(&self) -> Events {
        let events = Events::new()
            .env("EVENTS_RETRY_BASE_MS", "5")
            .env("EVENTS_MAX_ATTEMPTS", "2")
            .env("EVENTS_HTTP_TIMEOUT_MS", "2000");
        match self {
            Backend::Redis { url, .. } => events.env("REDIS_URL", url),
            Backend::Sqlite { dir } => events.env("EVENTS_DB", dir.path().join("events.db")),
        }
    }
}

/// Instantiates each named test body (a `fn(Backend)`) once per backend, as
/// `redis::NAME` and `sqlite::NAME`. A backend joins with one `@on` line
/// here, naming the module of its tests and its `Backend` constructor.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $crate::support::on_both_backends!(@on redis [$($name),*]);
        $crate::support::on_both_backends!(@on sqlite [$($name),*]);
    };
    (@on $backend:ident [$($name:ident),*]) => {
        mod $backend {
            $(#[test] fn $name() { super::$name($crate::support::Backend::$backend()) })*
        }
    };
}
pub(crate) use on_both_backends;
