//! The Postgres backend: the whole queue in one schema (`events` unless
//! `EVENTS_PG_SCHEMA` says otherwise) of a PostgreSQL database, typically the
//! application's own. Shaped like the SQLite backend (same tables, same
//! semantics, every settle one transaction), with what a server adds: many
//! workers claim side by side with `FOR UPDATE SKIP LOCKED`, and the schema
//! is created by whichever process comes first, under an advisory lock.

use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Client, NoTls, Transaction};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::entry::RawEntry;
use super::{Describe, QueueError, QueueOptions, Result, UnavailableReason};
use crate::secret::redact_url;

mod admin;
mod dead;
mod forget;
mod holds;
mod lifecycle;
mod limiter;
mod listen;
pub mod outbox;
mod retries;
mod schema;
mod settle;
mod stream;
pub mod tls;

use dead::{insert_dead, stored_letter};
pub use schema::{Migrated, script as schema_script};

/// How long connecting may take unless the options say otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// `history` reads in pages, each its own short transaction.
const HISTORY_BATCH: i64 = 1000;

/// `trim` deletes in chunks, each its own transaction.
const TRIM_CHUNK: i64 = 5000;
/// Dead letters looked at per transaction by a purge.
const DEAD_PAGE: i64 = 1000;

/// The columns a stream row is read with, in [`Row::from_row`]'s order.
const STREAM_COLUMNS: &str = "seq, id, type, ts, ts_ms, payload, written_ms";

/// Whether `name` is a schema name this backend writes into its SQL as is:
/// lower-case letters, digits and `_`, not starting with a digit, at most
/// 63 bytes (Postgres's limit).
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The queue in a Postgres schema.
pub struct PostgresQueue {
    client: Client,
    config: postgres::Config,
    /// The TLS session's settings; `None` speaks plain.
    tls: Option<MakeRustlsConnect>,
    schema: String,
    /// The URL with its password hidden, for messages.
    shown: String,
    lease_ms: i64,
    /// What opening did to the schema.
    migrated: Migrated,
    /// Where `follow` is, beyond the position its caller holds.
    following: Option<stream::Following>,
    /// The connection a blocked read waits on for commits, made on first
    /// use.
    listener: listen::Listener,
}

impl PostgresQueue {
    /// Connects to the database at `url` and creates or upgrades the queue's
    /// tables in `schema` when they are missing or older.
    pub fn open(url: &str, schema: &str, options: QueueOptions) -> Result<PostgresQueue> {
        let shown = format!("postgres {} schema {schema}", redact_url(url));
        if !is_plain_name(schema) {
            return Err(QueueError::Backend(format!(
                "{shown}: the schema name {schema:?} is not a plain SQL name"
            )));
        }
        let invalid =
            || QueueError::Backend(format!("the Postgres URL {} is not valid", redact_url(url)));
        let (rest, settings) = tls::split_url(url).map_err(|_| invalid())?;
        let mut config: postgres::Config = rest.parse().map_err(|_| invalid())?;
        config.connect_timeout(options.timeout.unwrap_or(CONNECT_TIMEOUT));
        config.application_name("events");
        config.ssl_mode(settings.ssl_mode());
        let tls = settings
            .connector()
            .map_err(|e| QueueError::Backend(format!("{shown}: {e}")))?;
        let client = connect(&config, &tls, schema, &shown)?;
        let mut queue = PostgresQueue {
            client,
            config,
            tls,
            schema: schema.to_owned(),
            shown,
            lease_ms: duration_ms(options.claim_lease),
            migrated: Migrated { from: 0, to: 0 },
            following: None,
            listener: listen::Listener::default(),
        };
        let shown = queue.shown.clone();
        let schema = queue.schema.clone();
        queue.migrated =
            schema::migrate(&mut queue.client, &schema).map_err(|e| classify(&shown, e))?;
        Ok(queue)
    }

    /// The schema's version before and after this queue was opened.
    pub fn migrated(&self) -> Migrated {
        self.migrated
    }

    /// The connection, made again when the last one was lost (a restarted
    /// server, a dropped network): the worker waits and resumes.
    fn client(&mut self) -> Result<&mut Client> {
        if self.client.is_closed() {
            self.client = connect(&self.config, &self.tls, &self.schema, &self.shown)?;
        }
        Ok(&mut self.client)
    }

    /// Runs `f`: ONE statement, atomic on its own, with no `BEGIN` or
    /// `COMMIT` around it (two round trips more).
    fn single<T>(
        &mut self,
        f: impl FnOnce(&mut Client) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let shown = self.shown.clone();
        f(self.client()?).map_err(|e| classify(&shown, e))
    }

    /// Runs `f` in one transaction, all or nothing.
    fn write<T>(
        &mut self,
        f: impl FnOnce(&mut Transaction) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let shown = self.shown.clone();
        let client = self.client()?;
        let run = || {
            let mut tx = client.transaction()?;
            let value = f(&mut tx)?;
            tx.commit()?;
            Ok(value)
        };
        run().map_err(|e| classify(&shown, e))
    }

    /// Runs `f` in a transaction that reads one consistent snapshot.
    fn read<T>(
        &mut self,
        f: impl FnOnce(&mut Transaction) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let shown = self.shown.clone();
        let client = self.client()?;
        let run = || {
            let mut tx = client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let value = f(&mut tx)?;
            tx.commit()?;
            Ok(value)
        };
        run().map_err(|e| classify(&shown, e))
    }
}

fn connect(
    config: &postgres::Config,
    tls: &Option<MakeRustlsConnect>,
    schema: &str,
    shown: &str,
) -> Result<Client> {
    let connected = match tls {
        Some(tls) => config.connect(tls.clone()),
        None => config.connect(NoTls),
    };
    let mut client = connected.map_err(|e| classify(shown, e))?;
    client
        .batch_execute(&format!("SET search_path TO {schema}"))
        .map_err(|e| classify(shown, e))?;
    Ok(client)
}

/// A stream row as stored: a column left NULL is a field left out, so a row
/// written by hand decodes into an event or poison like any entry.
pub(super) struct Row {
    seq: i64,
    ts_ms: Option<i64>,
    raw: RawEntry,
}

impl Row {
    /// Reads the columns of [`STREAM_COLUMNS`].
    pub(super) fn from_row(row: &postgres::Row) -> std::result::Result<Row, postgres::Error> {
        let seq: i64 = row.try_get(0)?;
        let ts_ms: Option<i64> = row.try_get(4)?;
        let written: Option<i64> = row.try_get(6)?;
        let mut fields = Vec::with_capacity(4);
        for (name, column) in [("id", 1), ("type", 2), ("ts", 3), ("payload", 5)] {
            if let Some(text) = row.try_get::<_, Option<String>>(column)? {
                fields.push((name.to_owned(), text));
            }
        }
        let written_ms = written.or(ts_ms).unwrap_or(0);
        Ok(Row {
            seq,
            ts_ms,
            raw: RawEntry {
                key: seq.to_string(),
                written_ms: written_ms.max(0) as u64,
                seq: seq.max(0) as u64,
                fields: Some(fields),
            },
        })
    }
}

pub(super) fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

pub(super) fn from_json<T: DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    serde_json::from_str(text)
}

/// Parses a key this backend handed out (a row number).
pub(super) fn parse_key(shown: &str, what: &str, key: &str) -> Result<i64> {
    key.parse()
        .map_err(|_| QueueError::Backend(format!("{key:?} is not a {what} key of {shown}")))
}

pub(super) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(super) fn clamp(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Turns a Postgres error into a sentence naming the database (its password
/// hidden), sorted by whether trying again later can help.
fn classify(shown: &str, e: postgres::Error) -> QueueError {
    if let Some(why) = tls_refusal(&e) {
        // A certificate that does not verify will not verify next time.
        return QueueError::Backend(format!("TLS with the event store {shown} failed: {why}"));
    }
    let Some(code) = e.code() else {
        return QueueError::unavailable(
            UnavailableReason::Unreachable,
            format!("cannot reach the event store {shown}: {e}"),
        );
    };
    let unavailable = |reason| QueueError::unavailable(reason, format!("{shown}: {e}"));
    match *code {
        SqlState::INVALID_AUTHORIZATION_SPECIFICATION if refused_plain(&e) => {
            QueueError::Auth(format!(
                "{shown} refused a connection without TLS (no pg_hba.conf entry for one): \
                 set sslmode=require or verify-full"
            ))
        }
        SqlState::INVALID_PASSWORD | SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
            QueueError::Auth(format!("{shown} refused the credentials: {e}"))
        }
        SqlState::READ_ONLY_SQL_TRANSACTION => unavailable(UnavailableReason::ReadOnly),
        SqlState::CANNOT_CONNECT_NOW => unavailable(UnavailableReason::Loading),
        SqlState::ADMIN_SHUTDOWN
        | SqlState::CRASH_SHUTDOWN
        | SqlState::TOO_MANY_CONNECTIONS
        | SqlState::T_R_SERIALIZATION_FAILURE
        | SqlState::T_R_DEADLOCK_DETECTED
        | SqlState::LOCK_NOT_AVAILABLE => unavailable(UnavailableReason::Unreachable),
        SqlState::INSUFFICIENT_PRIVILEGE => {
            QueueError::NotWritable(format!("{shown} cannot be written: {e}"))
        }
        _ => QueueError::Backend(format!("the event store {shown} failed: {e}")),
    }
}

/// Whether the server refused a connection for being without TLS.
fn refused_plain(e: &postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| db.message().ends_with("no encryption"))
}

/// What rustls refused, when the TLS handshake failed on the server's
/// certificate or protocol (not a dropped connection, which may pass).
fn tls_refusal(e: &postgres::Error) -> Option<String> {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let inner = cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map_or(cause, |inner| inner as &(dyn std::error::Error + 'static));
        if let Some(refused) = inner.downcast_ref::<rustls::Error>() {
            return Some(refused.to_string());
        }
        source = cause.source();
    }
    None
}

impl Describe for PostgresQueue {
    fn describe(&self) -> String {
        self.shown.clone()
    }
}
