//! `Emitter`: validate an event against the catalog, then put it on the
//! queue. `events emit` and any Rust program share it.

use std::time::Duration;

use serde_json::Value;

use crate::catalog::{Catalog, ValidationError};
use crate::config::{ConfigError, Global};
use crate::error::Error;
use crate::event::{Event, Payload};
use crate::queue::postgres::outbox::{self, EventRow};
use crate::queue::{Backend, Producer, QueueError};
use crate::setup::Setup;

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);

/// Emits events onto the configured queue.
pub struct Emitter {
    queue: Option<Box<dyn Producer>>,
    catalog: Catalog,
    config: Setup,
    /// Whether an `emit_in` found the schema's tables.
    outbox_ready: bool,
}

impl Emitter {
    /// An emitter configured from the environment (`REDIS_URL`, `EVENTS_DB`,
    /// `EVENTS_CONFIG`, …), as the `events` command is.
    pub fn from_env() -> Result<Emitter, Error> {
        Emitter::new(Setup::load(&Global::default())?)
    }

    /// An emitter for `config`. The queue is opened on the first emit;
    /// with `EVENTS_DISABLED` it is never opened. With
    /// `EVENTS_EMIT_TIMEOUT_MS`, connecting and each reply (or the wait for
    /// a locked file) are bounded by it.
    pub fn new(mut config: Setup) -> Result<Emitter, Error> {
        if let Some(timeout) = config.store.emit_timeout {
            config.store.options.timeout = Some(timeout);
        }
        Ok(Emitter {
            queue: None,
            catalog: config.catalog.clone(),
            config,
            outbox_ready: false,
        })
    }

    /// Bounds connecting to the queue and each of its replies (Redis), or
    /// the wait for a file another process locked (SQLite), by `timeout`
    /// from the next time the queue is opened: a caller that must never be
    /// held up (a web request) sets a short one. `EVENTS_EMIT_TIMEOUT_MS`
    /// sets it too; without either, the queue's defaults hold (seconds).
    pub fn set_timeout(&mut self, timeout: std::time::Duration) {
        self.config.store.options.timeout = Some(timeout);
        self.queue = None;
    }

    /// The configuration this emitter was made from.
    pub fn setup(&self) -> &Setup {
        &self.config
    }

    /// The catalog events are validated against.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn queue(&mut self) -> Result<&mut Box<dyn Producer>, Error> {
        if self.queue.is_none() {
            check_durability(&self.config)?;
            self.queue = Some(self.config.open_queue()?);
        }
        Ok(self.queue.as_mut().expect("opened above"))
    }

    /// Validates and emits an event of type `kind` with `payload` (a JSON
    /// object); returns its id.
    pub fn emit(&mut self, kind: impl AsRef<str>, payload: Value) -> Result<String, Error> {
        let Value::Object(payload) = payload else {
            return Err(
                ValidationError::Invalid("the payload must be a JSON object".into()).into(),
            );
        };
        self.emit_event(Event::new(kind.as_ref(), payload))
    }

    /// Validates and emits a complete event; returns its id.
    ///
    /// With `EVENTS_EMIT_REPLICAS`, fails with
    /// [`QueueError::NotReplicated`](crate::queue::QueueError::NotReplicated)
    /// when too few replicas confirmed it in time; the event was written to
    /// the primary all the same, and the error holds its id.
    pub fn emit_event(&mut self, event: Event) -> Result<String, Error> {
        self.catalog.validate_event(&event)?;
        if !self.config.disabled {
            self.queue()?.append(std::slice::from_ref(&event))?;
        }
        Ok(event.id)
    }

    /// Like `emit_event`, but a second call with the same `key` within 24 h
    /// writes nothing and returns the first event's id.
    pub fn emit_idempotent(&mut self, key: &str, event: Event) -> Result<String, Error> {
        self.catalog.validate_event(&event)?;
        if key.is_empty() {
            return Err(ValidationError::Invalid("the idempotency key is empty".into()).into());
        }
        if self.config.disabled {
            return Ok(event.id);
        }
        let first = self
            .queue()?
            .append_idempotent(key, &event, IDEMPOTENCY_TTL)?;
        Ok(first.unwrap_or(event.id))
    }

    /// Validates an event of type `kind` with `payload` exactly as
    /// [`emit`](Self::emit) does, then writes it with `tx`, the caller's own
    /// transaction on the application's database: the event commits with
    /// the data, or rolls back with it and is never delivered (the outbox).
    /// Returns its id.
    ///
    /// The emitter must be configured for that database
    /// (`EVENTS_POSTGRES_URL`, where `events work` reads), else this fails
    /// with [`Error::Config`]. The row goes into the schema
    /// `EVENTS_PG_SCHEMA` (`events` by default), named in full: the
    /// connection's `search_path` does not matter. The schema is never
    /// created here (that would hold its locks until the caller's
    /// transaction ends): run `events migrate`, or any `events` command,
    /// first. The first `emit_in` of an emitter checks it exists and fails
    /// with an error saying so when it does not. An invalid event, a missing
    /// schema or a wrong setting fail before anything is written, and leave
    /// `tx` usable; an error of the database itself (say, a missing
    /// privilege) is [`Error::Queue`], and Postgres has then aborted `tx`.
    /// With `EVENTS_DISABLED`, the event is validated and nothing written.
    ///
    /// ```no_run
    /// use events::{Emitter, EventType};
    /// use serde_json::json;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut emitter = Emitter::from_env()?; // EVENTS_POSTGRES_URL=postgres://…/app
    /// let mut db = events::postgres::Client::connect("postgres://app@localhost/app", events::postgres::NoTls)?;
    /// let mut tx = db.transaction()?;
    /// tx.execute("INSERT INTO users (email) VALUES ($1)", &[&"ada@example.com"])?;
    /// emitter.emit_in(&mut tx, EventType::UserSignup, json!({"email": "ada@example.com"}))?;
    /// tx.commit()?; // the user and the event, or neither
    /// # Ok(())
    /// # }
    /// ```
    pub fn emit_in(
        &mut self,
        tx: &mut postgres::Transaction<'_>,
        kind: impl AsRef<str>,
        payload: Value,
    ) -> Result<String, Error> {
        let Value::Object(payload) = payload else {
            return Err(
                ValidationError::Invalid("the payload must be a JSON object".into()).into(),
            );
        };
        self.write_in(tx, None, Event::new(kind.as_ref(), payload))
    }

    /// Like [`emit_in`](Self::emit_in), for a complete event and an
    /// idempotency key: when a transaction that committed within the last
    /// 24 h emitted with the same `key`, this writes nothing and returns
    /// that first event's id. The key is taken in `tx`: should it roll
    /// back, the key is free again; while it is open, another transaction
    /// emitting with the same key waits for it to end.
    pub fn emit_idempotent_in(
        &mut self,
        tx: &mut postgres::Transaction<'_>,
        key: &str,
        event: Event,
    ) -> Result<String, Error> {
        self.write_in(tx, Some(key), event)
    }

    /// Checks `event` and its `key` as [`emit_in`](Self::emit_in) does,
    /// and returns the schema its row goes into, or `None` with
    /// `EVENTS_DISABLED`: for a caller that writes the row with a driver of
    /// its own ([`outbox`](crate::queue::postgres::outbox) has the SQL).
    pub fn outbox_schema(&self, key: Option<&str>, event: &Event) -> Result<Option<&str>, Error> {
        self.catalog.validate_event(event)?;
        if key.is_some_and(str::is_empty) {
            return Err(ValidationError::Invalid("the idempotency key is empty".into()).into());
        }
        if self.config.disabled {
            return Ok(None);
        }
        check_durability(&self.config)?;
        match self.config.backend() {
            Backend::Postgres { schema, .. } => Ok(Some(schema)),
            other => Err(ConfigError::variable(
                "EVENTS_POSTGRES_URL",
                format!(
                    "emitting in a Postgres transaction needs the Postgres backend: set \
                     EVENTS_POSTGRES_URL to that database, where the worker reads (events \
                     now go to {other})"
                ),
            )
            .into()),
        }
    }

    fn write_in(
        &mut self,
        tx: &mut postgres::Transaction<'_>,
        key: Option<&str>,
        event: Event,
    ) -> Result<String, Error> {
        let Some(schema) = self.outbox_schema(key, &event)?.map(str::to_owned) else {
            return Ok(event.id);
        };
        let failed = |e: postgres::Error| {
            QueueError::Backend(format!(
                "writing the event into schema {schema} in the transaction failed: {e}"
            ))
        };
        if !self.outbox_ready {
            if !outbox::ready(tx, &schema).map_err(failed)? {
                return Err(ConfigError::variable(
                    "EVENTS_PG_SCHEMA",
                    format!(
                        "the schema {schema} has no events tables in this database: run \
                         `events migrate` (with the same EVENTS_POSTGRES_URL and \
                         EVENTS_PG_SCHEMA) first"
                    ),
                )
                .into());
            }
            self.outbox_ready = true;
        }
        let row = EventRow::new(&event, key, IDEMPOTENCY_TTL, crate::event::now_ms());
        let first = outbox::write(tx, &schema, &row).map_err(failed)?;
        Ok(first.unwrap_or(event.id))
    }

    /// Validates every event, then appends them in one batch.
    pub fn emit_batch(&mut self, events: &[Event]) -> Result<(), Error> {
        for event in events {
            self.catalog.validate_event(event)?;
        }
        self.append_checked(events)
    }

    /// Appends events in one batch without validating them again: for
    /// events that [`Catalog::parse_line`] of this emitter's catalog made,
    /// which it validated.
    pub(crate) fn append_checked(&mut self, events: &[Event]) -> Result<(), Error> {
        if !self.config.disabled && !events.is_empty() {
            self.queue()?.append(events)?;
        }
        Ok(())
    }
}

/// Refuses `EVENTS_EMIT_REPLICAS` on the embedded store, which has no
/// replicas to wait for: quietly ignoring it would promise a durability the
/// file does not give.
fn check_durability(config: &Setup) -> Result<(), ConfigError> {
    match (config.backend(), config.store.options.durability) {
        (Backend::Sqlite { .. }, Some(durability)) => Err(ConfigError::variable(
            "EVENTS_EMIT_REPLICAS",
            format!(
                "EVENTS_EMIT_REPLICAS={} needs Redis: the embedded SQLite store has no replicas; \
             set REDIS_URL, or unset EVENTS_EMIT_REPLICAS",
                durability.replicas
            ),
        )),
        (Backend::Postgres { .. }, Some(durability)) => Err(ConfigError::variable(
            "EVENTS_EMIT_REPLICAS",
            format!(
                "EVENTS_EMIT_REPLICAS={} needs Redis: on Postgres, what a commit waits for is \
             the server's synchronous_commit; unset EVENTS_EMIT_REPLICAS",
                durability.replicas
            ),
        )),
        _ => Ok(()),
    }
}

/// Builds a payload from `key=value` pairs, typed by the fields `kind`
/// declares (undeclared keys are strings).
pub fn typed_fields(
    catalog: &Catalog,
    kind: &str,
    pairs: &[(String, String)],
) -> Result<Payload, ValidationError> {
    let spec = catalog.lookup(kind)?;
    let mut payload = Payload::new();
    for (key, text) in pairs {
        let value = match spec.field(key) {
            Some(field_type) => {
                field_type
                    .from_text(text)
                    .ok_or_else(|| ValidationError::BadField {
                        kind: kind.to_owned(),
                        field: key.clone(),
                        expected: field_type.to_string(),
                        got: format!("{text:?}"),
                    })?
            }
            None => Value::String(text.clone()),
        };
        payload.insert(key.clone(), value);
    }
    Ok(payload)
}
