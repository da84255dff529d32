//! The Redis Streams backend, with the wire format of the README (stable, so
//! any language can emit with one `XADD`):
//!
//! - `{events}:stream`: one entry per event, fields `type`, `payload` (JSON
//!   object text), and optionally `id`, `ts`; read by the consumer group
//!   `workers`, acknowledged but never deleted on delivery (history is what
//!   `replay` reads), trimmed by age only behind every undelivered entry;
//! - `{events}:retry:<dest>`: one sorted set per destination of delivery
//!   tokens (`<event id>|<dest>`) scored by due time, each delivery's JSON
//!   in the hash `{events}:deliveries`; a claimed retry is leased by moving
//!   its score forward (see `retry.rs`, with the old single `{events}:retry`);
//! - `{events}:dead`: stream of dead letters, counted in
//!   `{events}:dead:counts`;
//! - `{events}:ts`: sorted set of the entry ids whose `ts` is more than
//!   `SKEW_MS` from their entry id's time, scored by `ts` (ms), so `history`
//!   selects by `ts` exactly without reading all of the stream;
//! - `{events}:idem:<key>`: idempotency keys;
//! - `{events}:consumer:<name>`: the worker holding a consumer name, with
//!   the lease's expiry;
//! - `{events}:rate:<dest>`: when a rate-limited destination's next send is
//!   free (ms, on the server's clock), shared by every worker;
//! - `{events}:holds`: the destinations held (paused), one field each
//!   (see `holds.rs`).
//!
//! Every key shares the `{events}` hash tag, so the MULTI/EXEC blocks and
//! scripts below also run on a Redis Cluster, where `cluster.rs` sends all
//! of them to the primary that owns the slot.

use std::time::{Duration, Instant};

use redis::{ErrorKind, RedisError};

use super::{Describe, QueueError, QueueOptions, Result, UnavailableReason};
use crate::sanitize;
use crate::secret::redact_url;

mod admin;
mod cluster;
mod dead;
mod errors;
mod forget;
mod holds;
mod lifecycle;
mod limiter;
mod reply;
mod retry;
pub mod sentinel;
mod stream;

use cluster::{Conn, Mode};
use dead::dead_letter;
use errors::{Class, Code, RawError, classify, code, is_connection_error};
#[doc(hidden)]
pub use limiter::TAKE_TOKEN_RULE;
use reply::{
    Fields, array, entries, event_of, int, is_skewed_ms, map, next_id, parse_id, raw_entries,
    raw_entry, read_reply_entries, text,
};

/// The consumer group every worker joins.
pub const GROUP: &str = "workers";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How far an event's `ts` may be from its entry id's time and still be
/// found by reading the stream by id around a window. An event further off
/// (a backfill, a producer's clock or a `ts` set on purpose) is "skewed":
/// the worker indexes it by `ts` in `{events}:ts` when it reads it.
const SKEW_MS: i64 = 5 * 60 * 1000;
/// Entries read per XRANGE call.
const PAGE: usize = 1000;

pub struct RedisQueue {
    /// The server to connect to; with Sentinel, the primary the sentinels
    /// named last (none before they are first asked).
    client: Option<redis::Client>,
    /// With a Sentinel URL: asked for the primary before every connection.
    sentinels: Option<Box<sentinel::Sentinels>>,
    /// Where, for messages: the URL without its password.
    shown: String,
    conn: Option<Conn>,
    /// A Redis Cluster's nodes as last seen, to reconnect through when the
    /// node of the URL is down.
    cluster_nodes: Vec<cluster::Node>,
    stream: String,
    retry: String,
    deliveries: String,
    dead: String,
    skewed: String,
    prefix: String,
    options: QueueOptions,
    group_ready: bool,
    autoclaim_cursor: String,
    last_autoclaim: Option<Instant>,
    /// Known: the retry set of version 0.1 is gone (see `retry.rs`).
    legacy_retries_gone: bool,
}

impl RedisQueue {
    /// A queue on the Redis at `url` with keys under `prefix`. Connects
    /// lazily: the first operation reports an unreachable server.
    pub fn open(url: &str, prefix: &str, options: QueueOptions) -> Result<RedisQueue> {
        let shown = redact_url(url);
        let client = redis::Client::open(url)
            .map_err(|e| QueueError::Backend(format!("the Redis URL {shown} is not valid: {e}")))?;
        Ok(RedisQueue::with_client(client, shown, prefix, options))
    }

    /// A queue on a client the configuration already made from its URL
    /// (`shown`, without its password).
    pub fn with_client(
        client: redis::Client,
        shown: String,
        prefix: &str,
        options: QueueOptions,
    ) -> RedisQueue {
        RedisQueue::build(Some(client), None, shown, prefix, options)
    }

    fn build(
        client: Option<redis::Client>,
        sentinels: Option<Box<sentinel::Sentinels>>,
        shown: String,
        prefix: &str,
        options: QueueOptions,
    ) -> RedisQueue {
        RedisQueue {
            client,
            sentinels,
            shown,
            conn: None,
            cluster_nodes: Vec::new(),
            stream: format!("{prefix}:stream"),
            retry: format!("{prefix}:retry"),
            deliveries: format!("{prefix}:deliveries"),
            dead: format!("{prefix}:dead"),
            skewed: format!("{prefix}:ts"),
            prefix: prefix.to_owned(),
            options,
            group_ready: false,
            autoclaim_cursor: "0-0".into(),
            last_autoclaim: None,
            legacy_retries_gone: false,
        }
    }

    /// A queue on the primary that the sentinels of `url` name, asked
    /// lazily: the first operation reports sentinels that cannot be reached.
    pub fn with_sentinels(
        url: sentinel::SentinelUrl,
        answered: sentinel::Answered,
        prefix: &str,
        options: QueueOptions,
    ) -> Result<RedisQueue> {
        let sentinels = sentinel::Sentinels::new(url, answered).map_err(|e| {
            QueueError::Backend(format!("the Redis Sentinel URL cannot be used: {e}"))
        })?;
        let shown = sentinels.describe();
        let sentinels = Some(Box::new(sentinels));
        Ok(RedisQueue::build(None, sentinels, shown, prefix, options))
    }

    /// The client to connect with. With Sentinel, the sentinels are asked
    /// again before every connection, so a failover leads to the new primary.
    fn client_now(&mut self) -> Result<redis::Client> {
        if let Some(sentinels) = self.sentinels.as_mut() {
            let asked = sentinels.primary();
            self.shown = sentinels.describe();
            let client = asked.map_err(|e| self.sentinel_error(e))?;
            self.client = Some(client);
        }
        Ok(self
            .client
            .clone()
            .expect("a client from the URL, or from the sentinels just above"))
    }

    /// Why the sentinels named no primary: none answered (unreachable, as
    /// for one server), none knows a primary that answers as one (a failover
    /// under way, or a service they do not monitor), or the primary refused
    /// the password.
    fn sentinel_error(&self, e: RedisError) -> QueueError {
        let shown = self
            .sentinels
            .as_ref()
            .map(|s| s.shown())
            .unwrap_or_default();
        if is_connection_error(&e) {
            return QueueError::unavailable(
                UnavailableReason::Unreachable,
                format!(
                    "cannot reach the Redis primary of {shown}: {}",
                    sanitize::excerpt(&e.to_string())
                ),
            );
        }
        if e.kind() == ErrorKind::MasterNameNotFoundBySentinel {
            return QueueError::unavailable(
                UnavailableReason::Failover,
                format!(
                    "no sentinel names a primary that answers as one for {shown}: \
                     a failover is under way, or they monitor no service of that name"
                ),
            );
        }
        self.error(e)
    }

    fn conn(&mut self) -> Result<&mut Conn> {
        if self.conn.is_none() {
            let client = self.client_now()?;
            let waits = self
                .options
                .durability
                .map_or(Duration::ZERO, |d| d.timeout);
            let conn = Conn::open(
                &client,
                &self.cluster_nodes,
                &self.stream,
                self.connect_timeout(),
                self.response_timeout() + waits,
            )
            .map_err(|e| self.error(e))?;
            if !conn.nodes().is_empty() {
                self.cluster_nodes = conn.nodes().to_vec();
            }
            self.conn = Some(conn);
            self.group_ready = false;
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    /// How long connecting may take: [`QueueOptions::timeout`], else 3 s.
    fn connect_timeout(&self) -> Duration {
        self.options.timeout.unwrap_or(CONNECT_TIMEOUT)
    }

    /// How long a reply may take: [`QueueOptions::timeout`], else 5 s.
    pub(super) fn response_timeout(&self) -> Duration {
        self.options.timeout.unwrap_or(RESPONSE_TIMEOUT)
    }

    /// What a timeout means: no answer within the timeouts in force.
    fn no_answer(&self) -> String {
        let (connect, reply) = (self.connect_timeout(), self.response_timeout());
        if connect == reply {
            return format!("no answer within {}", super::shown_timeout(reply));
        }
        format!(
            "no answer within {} to connect or {} for a reply",
            super::shown_timeout(connect),
            super::shown_timeout(reply)
        )
    }

    /// Runs `f` on the connection; a connection-level failure drops the
    /// connection so the next call reconnects.
    fn with<T>(&mut self, f: impl FnOnce(&mut Conn) -> redis::RedisResult<T>) -> Result<T> {
        self.with_raw(f).map_err(|e| self.error(e))
    }

    /// Like `with`, but hands back Redis's own error, for the callers that
    /// expect some (by code: `BUSYGROUP`, `NOGROUP`).
    fn with_raw<T>(
        &mut self,
        f: impl FnOnce(&mut Conn) -> redis::RedisResult<T>,
    ) -> std::result::Result<T, RawError> {
        let conn = self.conn().map_err(RawError::Queue)?;
        f(conn).map_err(|e| {
            // After a failover (a primary turned replica answers READONLY;
            // with Sentinel, the next connection goes to the new primary) or
            // a slot migration, a new connection learns where the queue's
            // slot is now.
            if is_connection_error(&e)
                || matches!(
                    classify(&e),
                    Class::Unavailable(UnavailableReason::Failover | UnavailableReason::ReadOnly)
                )
            {
                self.conn = None;
            }
            RawError::Redis(e)
        })
    }

    fn error(&self, e: impl Into<RawError>) -> QueueError {
        let e = match e.into() {
            RawError::Queue(e) => return e,
            RawError::Redis(e) => e,
        };
        let shown = &self.shown;
        // What the server said, short and escaped: the server may be anyone's.
        let said = sanitize::excerpt(&e.to_string());
        let mut class = classify(&e);
        if class == Class::Other && code(&e) == Some(Code::Err) && self.needs_password() {
            // An unauthenticated client sending a long command gets a
            // protocol error rather than NOAUTH: the server was asked plainly.
            class = Class::NeedsPassword;
        }
        let (form, user_form) = match self.sentinels {
            Some(_) => (
                "redis+sentinel://:PASSWORD@host:port,…/SERVICE",
                "redis+sentinel://USER:PASSWORD@…",
            ),
            None => (
                "redis://:PASSWORD@host:port",
                "redis://USER:PASSWORD@host:port",
            ),
        };
        match class {
            Class::Unavailable(reason) => {
                let message = match reason {
                    UnavailableReason::Interrupted => {
                        format!("a read from Redis at {shown} was interrupted by a signal")
                    }
                    UnavailableReason::Loading => format!(
                        "Redis at {shown} is loading its data into memory (it restarted) and \
                         cannot answer until it is done"
                    ),
                    UnavailableReason::ReadOnly => format!(
                        "Redis at {shown} is read-only: it is a replica (after a failover?); \
                         writes need the primary"
                    ),
                    UnavailableReason::Failover => format!(
                        "Redis at {shown} cannot serve the request right now \
                         (a failover or resharding is under way: {said})"
                    ),
                    UnavailableReason::Unreachable | UnavailableReason::Locked
                        if e.is_timeout() =>
                    {
                        format!("cannot reach Redis at {shown}: {}", self.no_answer())
                    }
                    UnavailableReason::Unreachable | UnavailableReason::Locked => {
                        format!("cannot reach Redis at {shown}: {said}")
                    }
                };
                QueueError::unavailable(reason, message)
            }
            Class::NeedsPassword => QueueError::Auth(format!(
                "Redis at {shown} needs a password: give it in the URL, \
                 {form} (or {user_form} with an ACL user)"
            )),
            Class::WrongPassword => QueueError::Auth(format!(
                "Redis at {shown} refused the password (or user) in the URL: check the \
                 PASSWORD in {form}"
            )),
            Class::Other => {
                QueueError::Backend(format!("Redis at {shown} answered with an error: {said}"))
            }
        }
    }

    /// Whether the server turns away this client for want of a password:
    /// a fresh connection's `PING` answered with `NOAUTH`.
    fn needs_password(&self) -> bool {
        let Some(client) = &self.client else {
            return false;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(self.connect_timeout()) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(self.response_timeout()));
        matches!(
            redis::cmd("PING").query::<String>(&mut conn),
            Err(e) if classify(&e) == Class::NeedsPassword
        )
    }
}

impl Describe for RedisQueue {
    fn describe(&self) -> String {
        let mode = match self.conn.as_ref().map(Conn::mode) {
            None => String::new(),
            Some(Mode::Standalone) => "; standalone".into(),
            Some(Mode::Cluster { slot, owner }) => {
                format!("; Redis Cluster, slot {slot} on the primary {owner}")
            }
        };
        format!("{} (keys {}:*{mode})", self.shown, self.prefix)
    }
}
