//! The queue a command-level test runs against, and the macro that runs each
//! such test once per backend: the commands promise the same behaviour on
//! every backend, so their tests are written once.

use std::path::PathBuf;

use super::{Events, PostgresServer, RedisServer};

/// The queue of one test: a throw-away Redis, an SQLite file in a
/// temporary directory, or a fresh schema of the process's Postgres.
pub enum Backend {
    Redis {
        server: RedisServer,
        url: String,
    },
    Sqlite {
        dir: tempfile::TempDir,
    },
    Postgres {
        server: &'static PostgresServer,
        schema: String,
    },
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

    pub fn postgres() -> Backend {
        let server = PostgresServer::shared();
        let schema = server.fresh_schema();
        Backend::Postgres { server, schema }
    }

    /// `redis`, `sqlite` or `postgres`, as `status` names the backend.
    pub fn kind(&self) -> &'static str {
        match self {
            Backend::Redis { .. } => "redis",
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
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
            Backend::Redis { .. } | Backend::Postgres { .. } => None,
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
            Backend::Postgres { server, schema } => events
                .env("EVENTS_POSTGRES_URL", server.url())
                .env("EVENTS_PG_SCHEMA", schema),
        }
    }
}

/// Instantiates each named test body (a `fn(Backend)`) once per backend, as
/// `redis::NAME`, `sqlite::NAME` and `postgres::NAME`. A backend joins with one `@on` line
/// here, naming the module of its tests and its `Backend` constructor.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $crate::support::on_both_backends!(@on redis [$($name),*]);
        $crate::support::on_both_backends!(@on sqlite [$($name),*]);
        $crate::support::on_both_backends!(@on postgres [$($name),*]);
    };
    (@on $backend:ident [$($name:ident),*]) => {
        mod $backend {
            $(#[test] fn $name() { super::$name($crate::support::Backend::$backend()) })*
        }
    };
}
pub(crate) use on_both_backends;
