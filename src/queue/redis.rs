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
//!   free (ms, on the server's clock), shared by every worker.
//!
//! Every key shares the `{events}` hash tag, so the MULTI/EXEC blocks and
//! scripts below also run on a Redis Cluster, where `cluster.rs` sends all
//! of them to the primary that owns the slot.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use redis::Value;

use redis::{ErrorKind, RedisError, ServerErrorKind};

use super::entry::{self, RawEntry};
use super::forget::{Erased, Person};
use super::{
    Admin, AttemptRecord, Backlog, Consumer, ConsumerHeld, ConsumerStats, DeadFilter, DeadLetter,
    Delivery, Describe, Durability, NotReplicated, Producer, QueueError, QueueOptions, Result,
    RetryClaim, Settlement, Stats, StoredDeadLetter, Tally, UnavailableReason,
};
use crate::alert;
use crate::event::{Event, now_ms};
use crate::rate::Rate;
use crate::sanitize;
use crate::secret::redact_url;

mod cluster;
mod forget;
mod lifecycle;
mod retry;
pub mod sentinel;

use cluster::{Conn, Mode};

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

/// `broken(body)`: why a stored delivery cannot be decoded, or nil. The rule
/// and the words of `entry::decode_retry`, for a claim script to
/// dead-letter such a retry in the claim itself. Prepended to the claim script.
pub(super) const BROKEN_RETRY: &str = r"
local function broken(body)
  if not body then return 'has no delivery' end
  local ok, d = pcall(cjson.decode, body)
  if not ok then return 'is not JSON' end
  local function text(v) return type(v) == 'string' end
  local e = type(d) == 'table' and d.event
  if type(e) ~= 'table' or not text(e.id) or not text(e.type) or not text(e.ts)
      or type(e.payload) ~= 'table' or not text(d.dest) or type(d.attempts) ~= 'number'
      or d.attempts < 0 or d.attempts % 1 ~= 0 or d.attempts > 4294967295
      or (d.last_error ~= nil and d.last_error ~= cjson.null and not text(d.last_error)) then
    return 'is not a delivery'
  end
  return nil
end
";

const APPEND_IDEMPOTENT: &str = r"
local first = redis.call('GET', KEYS[1])
if first then return first end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('XADD', KEYS[2], '*', 'type', ARGV[3], 'payload', ARGV[4], 'id', ARGV[1], 'ts', ARGV[5])
return false";

/// Takes or renews the consumer name `KEYS[1]` for the holder `ARGV[1]` for
/// `ARGV[2]` ms; when another holds it, returns that holder and the ms its
/// lease has left.
const HOLD_CONSUMER: &str = r"
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return false
end
return {current, redis.call('PTTL', KEYS[1])}";

const RELEASE_CONSUMER: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

/// `KEYS[1]` exists while `ARGV[1]`'s alert window is open (it expires
/// with it); `KEYS[2]` counts, per destination, the dead letters seen while
/// it was. Returns what to report when this call opens a window, else nil.
const COUNT_FOR_ALERT: &str = r"
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[3]) then
  local between = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') or 0
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  return between + tonumber(ARGV[2])
end
redis.call('HINCRBY', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
return false
";

/// Reports what one destination's ended alert window counted, opening a
/// new window: `{count, error}`, or nothing when nothing is owed (or the
/// window is still open, or another worker just reported it).
const ALERT_DUE: &str = r"
local between = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') or 0
if between <= 0 then return false end
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[2]) then return false end
local err = redis.call('HGET', KEYS[3], ARGV[1]) or ''
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return {between, err}
";

/// The Redis server's clock in ms, as `now` for [`TAKE_TOKEN_RULE`]:
/// workers on other hosts share it.
const SERVER_NOW: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
";

/// `rate::take` at `now`: `KEYS[1]` holds when the next send is free (ms),
/// expiring once it is; `ARGV[1]` is the interval (ms). Returns `{0, why}`
/// when a send is taken (`why` when the state found could not be read and
/// was reset, else nil), `{ms, nil}` when it must wait. Public for the
/// test that holds it to `rate::take`.
#[doc(hidden)]
pub const TAKE_TOKEN_RULE: &str = r"
local interval = tonumber(ARGV[1])
local ok, stored = pcall(redis.call, 'GET', KEYS[1])
local why = false
if not ok then
  why = 'not a string'
elseif stored then
  local digits = string.match(stored, '^%-?(%d+)$')
  if not digits or #digits > 15 then
    why = 'not a whole number of milliseconds'
  elseif tonumber(stored) > now + interval then
    why = 'further ahead than one interval'
  elseif tonumber(stored) > now then
    return {tonumber(stored) - now, false}
  end
end
redis.call('SET', KEYS[1], now + interval, 'PX', interval)
return {0, why}
";

/// Deletes a consumer from the group unless it still holds entries.
const LEAVE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local ok, held = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if not ok or #held > 0 then return 0 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])";

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
        prefix: &str,
        options: QueueOptions,
    ) -> Result<RedisQueue> {
        let sentinels = sentinel::Sentinels::new(url).map_err(|e| {
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
    fn response_timeout(&self) -> Duration {
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

    /// Creates the consumer group at the start of the stream when missing.
    fn ensure_group(&mut self) -> Result<()> {
        if self.group_ready {
            return Ok(());
        }
        let stream = self.stream.clone();
        let created = self.with_raw(|c| {
            redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&stream)
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .exec(c)
        });
        match created {
            Err(RawError::Redis(e)) if code(&e) == Some(Code::BusyGroup) => {}
            other => other.map_err(|e| self.error(e))?,
        }
        self.group_ready = true;
        Ok(())
    }

    /// Runs a group command, recreating the group once if Redis lost it
    /// (a restart without persistence).
    fn group_cmd(&mut self, cmd: &redis::Cmd) -> Result<Value> {
        self.ensure_group()?;
        match self.with_raw(|c| cmd.query::<Value>(c)) {
            Err(RawError::Redis(e)) if code(&e) == Some(Code::NoGroup) => {
                self.group_ready = false;
                self.ensure_group()?;
                self.with(|c| cmd.query::<Value>(c))
            }
            other => other.map_err(|e| self.error(e)),
        }
    }

    fn read_own(&mut self, consumer: &str, from: &str, count: usize) -> Result<Vec<RawEntry>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(count);
        cmd.arg("STREAMS").arg(&self.stream).arg(from);
        let reply = self.group_cmd(&cmd)?;
        Ok(read_reply_entries(reply))
    }

    /// Reads the stream `key` from `start` to its end, 1,000 entries a page,
    /// until `page` returns false.
    fn scan(
        &mut self,
        key: &str,
        start: String,
        page: impl FnMut(Vec<(String, Option<Fields>)>) -> bool,
    ) -> Result<()> {
        self.scan_range(key, start, "+", page)
    }

    /// Reads the stream `key` from `start` to `end` (XRANGE bounds), `PAGE`
    /// entries a page, until `page` returns false.
    fn scan_range(
        &mut self,
        key: &str,
        mut start: String,
        end: &str,
        mut page: impl FnMut(Vec<(String, Option<Fields>)>) -> bool,
    ) -> Result<()> {
        loop {
            let reply: Value = self.with(|c| {
                redis::cmd("XRANGE")
                    .arg(key)
                    .arg(&start)
                    .arg(end)
                    .arg("COUNT")
                    .arg(PAGE)
                    .query(c)
            })?;
            let entries = raw_entries(reply);
            let Some((last, _)) = entries.last() else {
                return Ok(());
            };
            start = format!("({last}");
            // A short page is the end of the range: no need to ask again.
            let more = entries.len() == PAGE;
            if !page(entries) || !more {
                return Ok(());
            }
        }
    }

    /// Counts, and removes when `remove` is set, the dead letters `filter`
    /// selects, a page at a time: each page's removals are one atomic
    /// pipeline of the remove script, which uncounts what it removes.
    fn dead_pass(&mut self, filter: &DeadFilter, remove: bool) -> Result<u64> {
        let dead = self.dead.clone();
        // A letter's id is when Redis wrote it, its `at` when the worker did:
        // letters `at` before the bound lie within the clocks' skew of it.
        let end = filter.before_ms.map_or("+".to_owned(), |before| {
            before.saturating_add(SKEW_MS).to_string()
        });
        let mut start = "-".to_owned();
        let mut selected = 0;
        loop {
            let reply: Value = self.with(|c| {
                redis::cmd("XRANGE")
                    .arg(&dead)
                    .arg(&start)
                    .arg(&end)
                    .arg("COUNT")
                    .arg(PAGE)
                    .query(c)
            })?;
            let entries = raw_entries(reply);
            let Some((last, _)) = entries.last() else {
                return Ok(selected);
            };
            start = format!("({last}");
            let more = entries.len() == PAGE;
            let keys: Vec<String> = entries
                .into_iter()
                .filter_map(|(key, fields)| {
                    let letter = dead_letter(&key, &fields?);
                    filter.matches(&letter).then_some(key)
                })
                .collect();
            selected += keys.len() as u64;
            if remove && !keys.is_empty() {
                let mut pipe = redis::pipe();
                pipe.atomic();
                for key in &keys {
                    self.remove_dead(&mut pipe, key);
                }
                self.with(|c| pipe.exec(c))?;
            }
            if !more {
                return Ok(selected);
            }
        }
    }

    /// Indexes by `ts` the entries whose `ts` is far from their entry id's
    /// time, before anyone settles them: once settled, `history` finds them
    /// only through this index.
    fn index_skewed(&mut self, entries: &[RawEntry]) -> Result<()> {
        let mut pipe = redis::pipe();
        for entry in entries {
            if let Some(ts) = entry.ts_ms()
                && is_skewed_ms(entry.written_ms, ts)
            {
                pipe.cmd("ZADD")
                    .arg(&self.skewed)
                    .arg(ts)
                    .arg(&entry.key)
                    .ignore();
            }
        }
        if pipe.cmd_iter().next().is_none() {
            return Ok(());
        }
        self.with(|c| pipe.exec(c))
    }

    /// The first entry that may not be settled yet: the oldest pending one or
    /// the first never read, whichever comes first; `None` when the group
    /// does not exist (nothing was ever read). Entries from here on may be
    /// skewed and not yet indexed.
    fn unsettled_from(&mut self) -> Result<Option<(u64, u64)>> {
        let Some(group) = self.group_info()? else {
            return Ok(None);
        };
        let last = group
            .get("last-delivered-id")
            .map(text)
            .unwrap_or_else(|| "0-0".into());
        let mut first = parse_id(&next_id(&last));
        let stream = self.stream.clone();
        let pending: Value =
            self.with(|c| redis::cmd("XPENDING").arg(&stream).arg(GROUP).query(c))?;
        if let Some(Value::BulkString(oldest)) = array(pending).get(1) {
            first = first.min(parse_id(&String::from_utf8_lossy(oldest)));
        }
        Ok(Some(first))
    }

    /// The skewed entries settled before `settled_before` whose `ts` is in
    /// `[from_ms, until_ms)`, by entry id.
    fn skewed_in(
        &mut self,
        from_ms: i64,
        until_ms: i64,
        settled_before: (u64, u64),
    ) -> Result<Vec<((u64, u64), Event)>> {
        let skewed = self.skewed.clone();
        let stream = self.stream.clone();
        let ids: Vec<String> = self.with(|c| {
            redis::cmd("ZRANGEBYSCORE")
                .arg(&skewed)
                .arg(from_ms)
                .arg(format!("({until_ms}"))
                .query(c)
        })?;
        let mut ids: Vec<(u64, u64)> = ids
            .iter()
            .map(|id| parse_id(id))
            .filter(|id| *id < settled_before)
            .collect();
        ids.sort_unstable();
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(1000) {
            let mut pipe = redis::pipe();
            for (ms, seq) in chunk {
                let id = format!("{ms}-{seq}");
                pipe.cmd("XRANGE").arg(&stream).arg(&id).arg(&id);
            }
            let replies: Vec<Value> = self.with(|c| pipe.query(c))?;
            for reply in replies {
                // An entry trimmed since it was indexed is simply gone.
                for (key, fields) in raw_entries(reply) {
                    if let Some(event) = event_of(key.clone(), fields)
                        && event.ts_ms().is_some_and(|t| from_ms <= t && t < until_ms)
                    {
                        out.push((parse_id(&key), event));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Adds to `pipe` the writes that schedule each delivery at its due
    /// time, replacing any delivery of the same event to the same destination.
    fn schedule<'a>(
        &self,
        pipe: &mut redis::Pipeline,
        deliveries: impl IntoIterator<Item = (&'a Delivery, i64)>,
        legacy: bool,
    ) {
        let scheduled: Vec<(String, String, i64)> = deliveries
            .into_iter()
            .map(|(delivery, due_ms)| {
                let body = serde_json::to_string(delivery).expect("a delivery serialises");
                (delivery.token(), body, due_ms)
            })
            .collect();
        self.schedule_tokens(pipe, &scheduled, legacy);
    }

    fn group_info(&mut self) -> Result<Option<HashMap<String, Value>>> {
        let stream = self.stream.clone();
        let groups: Value = match self
            .with_raw(|c| redis::cmd("XINFO").arg("GROUPS").arg(&stream).query(c))
        {
            // Redis answers a plain ERR for a stream that does not exist
            // (yet): tell that apart by asking, not by the message.
            Err(RawError::Redis(e))
                if code(&e) == Some(Code::Err)
                    && !self.with(|c| redis::cmd("EXISTS").arg(&stream).query::<bool>(c))? =>
            {
                return Ok(None);
            }
            other => other.map_err(|e| self.error(e))?,
        };
        Ok(array(groups)
            .into_iter()
            .map(map)
            .find(|g| g.get("name").map(text).as_deref() == Some(GROUP)))
    }

    /// Entries not yet delivered to the group: Redis's `lag`, or a count of
    /// the entries after the last delivered id when Redis cannot tell.
    fn unread(&mut self, group: &HashMap<String, Value>) -> Result<u64> {
        if let Some(Value::Int(lag)) = group.get("lag") {
            return Ok(u64::try_from(*lag).unwrap_or(0));
        }
        let last = group
            .get("last-delivered-id")
            .map(text)
            .unwrap_or_else(|| "0-0".into());
        let stream = self.stream.clone();
        let ids: Value = self.with(|c| {
            redis::cmd("XRANGE")
                .arg(&stream)
                .arg(format!("({last}"))
                .arg("+")
                .arg("COUNT")
                .arg(100_000)
                .query(c)
        })?;
        Ok(array(ids).len() as u64)
    }
}

fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped()
}

/// A Redis error, or a failure to get a connection at all.
enum RawError {
    Redis(RedisError),
    Queue(QueueError),
}

impl From<RedisError> for RawError {
    fn from(e: RedisError) -> Self {
        RawError::Redis(e)
    }
}

/// The server error codes this backend acts on. Read once from a reply
/// (its first word, the protocol's token for the error, never its text), so
/// every decision below matches a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    /// `XGROUP CREATE` of a group that exists.
    BusyGroup,
    /// A group command on a group Redis no longer has.
    NoGroup,
    /// A blocked read ended by the server (`CLIENT UNBLOCK ... ERROR`, a
    /// failover).
    Unblocked,
    /// The queue's slot is elsewhere, or moving, or its primary is failing
    /// over (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`), seen in a pipeline
    /// the cluster client could not redirect.
    Moved,
    NoAuth,
    WrongPass,
    /// The generic `ERR`: anything Redis has no code for.
    Err,
    Other,
}

impl Code {
    fn of(code: &str) -> Code {
        match code {
            "BUSYGROUP" => Code::BusyGroup,
            "NOGROUP" => Code::NoGroup,
            "UNBLOCKED" => Code::Unblocked,
            "MOVED" | "ASK" | "TRYAGAIN" | "CLUSTERDOWN" => Code::Moved,
            "NOAUTH" => Code::NoAuth,
            "WRONGPASS" => Code::WrongPass,
            "ERR" => Code::Err,
            _ => Code::Other,
        }
    }
}

/// The server's error code; for a pipeline or an aborted transaction, its
/// first failure's (a transaction refused with `MOVED` is not an
/// `EXECABORT` to act on, but a slot to find again).
fn code(e: &RedisError) -> Option<Code> {
    let failures = e.clone().into_server_errors();
    let first = failures.as_deref().and_then(<[_]>::first);
    first
        .map(|(_, failure)| Code::of(failure.code()))
        .or_else(|| e.code().map(Code::of))
}

/// What a Redis error means to us, by its kind and code (never its text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Unavailable(UnavailableReason),
    NeedsPassword,
    WrongPassword,
    Other,
}

fn classify(e: &RedisError) -> Class {
    use UnavailableReason::*;
    // The redis crate keeps the I/O error behind an `Arc`.
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    let io_kind = std::error::Error::source(e)
        .and_then(|s| {
            s.downcast_ref::<std::io::Error>()
                .or_else(|| s.downcast_ref::<Shared>()?.downcast_ref())
        })
        .map(std::io::Error::kind);
    if io_kind == Some(std::io::ErrorKind::Interrupted) {
        return Class::Unavailable(Interrupted);
    }
    if is_connection_error(e) {
        return Class::Unavailable(Unreachable);
    }
    match e.kind() {
        ErrorKind::AuthenticationFailed => return Class::WrongPassword,
        ErrorKind::Server(ServerErrorKind::BusyLoading) => return Class::Unavailable(Loading),
        ErrorKind::Server(ServerErrorKind::ReadOnly) => return Class::Unavailable(ReadOnly),
        ErrorKind::Server(
            ServerErrorKind::TryAgain
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::Moved
            | ServerErrorKind::Ask,
        ) => return Class::Unavailable(Failover),
        _ => {}
    }
    match code(e) {
        Some(Code::Unblocked | Code::Moved) => Class::Unavailable(Failover),
        Some(Code::NoAuth) => Class::NeedsPassword,
        Some(Code::WrongPass) => Class::WrongPassword,
        _ => Class::Other,
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

impl Producer for RedisQueue {
    fn append(&mut self, events: &[Event]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for event in events {
            let payload = serde_json::to_string(&event.payload).expect("a map serialises");
            pipe.cmd("XADD")
                .arg(&self.stream)
                .arg("*")
                .arg("type")
                .arg(&event.kind)
                .arg("payload")
                .arg(payload)
                .arg("id")
                .arg(&event.id)
                .arg("ts")
                .arg(&event.ts)
                .ignore();
        }
        let Some(durability) = self.options.durability else {
            return self.with(|c| pipe.exec(c));
        };
        // In the same round trip: WAIT covers every write of the connection.
        wait(&mut pipe, durability);
        let (confirmed,): (u32,) = self.with(|c| pipe.query(c))?;
        let id = (events.len() == 1).then(|| events[0].id.clone());
        confirm(durability, confirmed, id, events.len())
    }

    fn append_idempotent(
        &mut self,
        key: &str,
        event: &Event,
        ttl: Duration,
    ) -> Result<Option<String>> {
        let script = redis::Script::new(APPEND_IDEMPOTENT);
        let payload = serde_json::to_string(&event.payload).expect("a map serialises");
        let idem = format!("{}:idem:{key}", self.prefix);
        let stream = self.stream.clone();
        let ttl_ms = ttl.as_millis().max(1) as u64;
        let mut invocation = script.key(&idem);
        invocation
            .key(&stream)
            .arg(&event.id)
            .arg(ttl_ms)
            .arg(&event.kind)
            .arg(&payload)
            .arg(&event.ts);
        let first = self.with(|c| invocation.invoke::<Option<String>>(c))?;
        let Some(durability) = self.options.durability else {
            return Ok(first);
        };
        // A key seen before wrote nothing now, but its first event may
        // still be on the primary only: WAIT waits for the replicas to
        // reach where the primary is, which covers that event too.
        let mut pipe = redis::pipe();
        wait(&mut pipe, durability);
        let (confirmed,): (u32,) = self.with(|c| pipe.query(c))?;
        let id = first.clone().unwrap_or_else(|| event.id.clone());
        confirm(durability, confirmed, Some(id), 1)?;
        Ok(first)
    }
}

/// Adds `WAIT replicas timeout` to `pipe`.
fn wait(pipe: &mut redis::Pipeline, durability: Durability) {
    pipe.cmd("WAIT")
        .arg(durability.replicas)
        .arg(durability.timeout.as_millis() as u64);
}

/// Whether `confirmed` replicas are enough for `durability`.
fn confirm(durability: Durability, confirmed: u32, id: Option<String>, count: usize) -> Result<()> {
    if confirmed >= durability.replicas {
        return Ok(());
    }
    Err(NotReplicated {
        id,
        count,
        confirmed,
        wanted: durability.replicas,
        timeout_ms: durability.timeout.as_millis() as u64,
    }
    .into())
}

impl Consumer for RedisQueue {
    fn recover_raw(&mut self, consumer: &str) -> Result<Vec<RawEntry>> {
        let mut all = Vec::new();
        let mut from = "0".to_owned();
        loop {
            let batch = self.read_own(consumer, &from, 500)?;
            let Some(last) = batch.last() else { break };
            from = last.key.clone();
            all.extend(batch);
        }
        self.index_skewed(&all)?;
        Ok(all)
    }

    fn claim_raw(
        &mut self,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<RawEntry>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let lease = self.options.claim_lease;
        let due = self.last_autoclaim.is_none_or(|t| t.elapsed() >= lease / 4);
        if due || self.autoclaim_cursor != "0-0" {
            let mut cmd = redis::cmd("XAUTOCLAIM");
            cmd.arg(&self.stream)
                .arg(GROUP)
                .arg(consumer)
                .arg(lease.as_millis() as u64);
            cmd.arg(&self.autoclaim_cursor).arg("COUNT").arg(count);
            let reply = array(self.group_cmd(&cmd)?);
            let mut parts = reply.into_iter();
            self.autoclaim_cursor = parts
                .next()
                .map(|v| text(&v))
                .unwrap_or_else(|| "0-0".into());
            self.last_autoclaim = Some(Instant::now());
            let claimed = parts.next().map(entries).unwrap_or_default();
            if !claimed.is_empty() {
                self.index_skewed(&claimed)?;
                return Ok(claimed);
            }
        }
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(count);
        let block_ms = block.as_millis() as u64;
        if block_ms > 0 {
            cmd.arg("BLOCK").arg(block_ms);
        }
        cmd.arg("STREAMS").arg(&self.stream).arg(">");
        // A blocking read must be allowed to outlast its BLOCK time.
        let normal = self.response_timeout();
        if let Some(c) = self.conn.as_mut() {
            let _ = c.set_read_timeout(Some(normal + block));
        }
        let reply = self.group_cmd(&cmd);
        if let Some(c) = self.conn.as_mut() {
            let _ = c.set_read_timeout(Some(normal));
        }
        let claimed = read_reply_entries(reply?);
        self.index_skewed(&claimed)?;
        Ok(claimed)
    }

    fn claim_retries(
        &mut self,
        now_ms: i64,
        count: usize,
        only: &[String],
    ) -> Result<Vec<RetryClaim>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let lease_until = now_ms + self.options.claim_lease.as_millis() as i64;
        let flat = self.claim_tokens(now_ms, count, lease_until, only)?;
        let mut claims = Vec::new();
        let mut broken = Settlement::default();
        for pair in flat.chunks(2) {
            let (Some(token), body) = (pair[0].clone(), pair.get(1).cloned().flatten()) else {
                continue;
            };
            match entry::decode_retry(body.as_deref()) {
                Ok(delivery) => claims.push(RetryClaim { token, delivery }),
                // Only what the script's check lets through and serde still
                // refuses (a fractional attempt count) lands here.
                Err(why) => {
                    let letter = entry::broken_retry_letter(&token, body.as_deref(), &why, now_ms);
                    broken.dead.push(letter);
                    broken.done_retries.push(token);
                }
            }
        }
        if !broken.is_empty() {
            self.settle("", &broken)?;
        }
        Ok(claims)
    }

    fn settle(&mut self, _consumer: &str, s: &Settlement) -> Result<()> {
        if s.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        // Removed before the new retries go in: a rescheduled retry has the
        // same token as the claim it replaces.
        let legacy = if s.done_retries.is_empty() && s.retries.is_empty() {
            false
        } else {
            self.legacy_retries()?
        };
        self.unschedule_tokens(&mut pipe, &s.done_retries, legacy);
        self.schedule(
            &mut pipe,
            s.retries.iter().map(|(d, due)| (d, *due)),
            legacy,
        );
        for letter in &s.dead {
            self.add_dead(&mut pipe, letter);
        }
        self.add_tallies(&mut pipe, &s.tallies);
        self.record_attempts(&mut pipe, &s.attempts);
        self.guard(&mut pipe, s);
        if !s.acks.is_empty() {
            pipe.cmd("XACK")
                .arg(&self.stream)
                .arg(GROUP)
                .arg(&s.acks)
                .ignore();
        }
        self.with(|c| pipe.exec(c))
    }

    fn renew(&mut self, consumer: &str, entries: &[String], retries: &[String]) -> Result<()> {
        let mut pipe = redis::pipe();
        for chunk in entries.chunks(500) {
            // Claiming its own entries again resets their idle time.
            pipe.cmd("XCLAIM")
                .arg(&self.stream)
                .arg(GROUP)
                .arg(consumer)
                .arg(0)
                .arg(chunk)
                .arg("JUSTID")
                .ignore();
        }
        let lease_until = now_ms() + self.options.claim_lease.as_millis() as i64;
        for token in retries {
            self.lease_token(&mut pipe, token, lease_until);
        }
        self.with(|c| pipe.exec(c))
    }

    fn hold_consumer(&mut self, consumer: &str, holder: &str, lease: Duration) -> Result<()> {
        let key = format!("{}:consumer:{consumer}", self.prefix);
        let lease_ms = lease.as_millis().max(1) as u64;
        let script = redis::Script::new(HOLD_CONSUMER);
        let held: Option<(String, i64)> =
            self.with(|c| script.key(&key).arg(holder).arg(lease_ms).invoke(c))?;
        match held {
            None => Ok(()),
            Some((holder, left_ms)) => Err(ConsumerHeld {
                name: consumer.to_owned(),
                holder,
                until_ms: now_ms() + left_ms.max(0),
            }
            .into()),
        }
    }

    fn release_consumer(&mut self, consumer: &str, holder: &str) -> Result<()> {
        let key = format!("{}:consumer:{consumer}", self.prefix);
        let script = redis::Script::new(RELEASE_CONSUMER);
        self.with(|c| script.key(&key).arg(holder).invoke::<i64>(c))?;
        Ok(())
    }

    fn leave(&mut self, consumer: &str) -> Result<()> {
        let script = redis::Script::new(LEAVE);
        let stream = self.stream.clone();
        self.with(|c| {
            script
                .key(&stream)
                .arg(GROUP)
                .arg(consumer)
                .invoke::<i64>(c)
        })?;
        Ok(())
    }

    fn take_token(&mut self, dest: &str, rate: Rate) -> Result<Option<Duration>> {
        let key = format!("{}:rate:{dest}", self.prefix);
        let script = redis::Script::new(&format!("{SERVER_NOW}{TAKE_TOKEN_RULE}"));
        let (wait_ms, reset): (u64, Option<String>) =
            self.with(|c| script.key(&key).arg(rate.interval_ms()).invoke(c))?;
        if let Some(why) = reset {
            log::warn!("the rate limit state at {key} could not be read ({why}); reset");
        }
        Ok((wait_ms > 0).then(|| Duration::from_millis(wait_ms)))
    }

    fn count_dead_for_alert(
        &mut self,
        dest: &str,
        count: u64,
        error: &str,
        window: Duration,
    ) -> Result<Option<u64>> {
        let [open, between, errors] = self.alert_keys(dest);
        let script = redis::Script::new(COUNT_FOR_ALERT);
        let window_ms = window.as_millis() as u64;
        self.with(|c| {
            script
                .key(&open)
                .key(&between)
                .key(&errors)
                .arg(dest)
                .arg(count)
                .arg(window_ms)
                .arg(error)
                .invoke(c)
        })
    }

    fn alerts_due(&mut self, window: Duration) -> Result<Vec<alert::Tally>> {
        let [_, between, _] = self.alert_keys("");
        let dests: Vec<String> = self.with(|c| redis::cmd("HKEYS").arg(&between).query(c))?;
        let script = redis::Script::new(ALERT_DUE);
        let window_ms = window.as_millis() as u64;
        let mut due = Vec::new();
        for dest in dests {
            let keys = self.alert_keys(&dest);
            let owed: Option<(u64, String)> = self.with(|c| {
                script
                    .key(&keys[0])
                    .key(&keys[1])
                    .key(&keys[2])
                    .arg(&dest)
                    .arg(window_ms)
                    .invoke(c)
            })?;
            if let Some((count, error)) = owed {
                due.push(alert::Tally { dest, count, error });
            }
        }
        Ok(due)
    }

    fn backlog(&mut self, only: &[String]) -> Result<Backlog> {
        let (retries, next_retry_ms) = self.retry_summary(only)?;
        let (unread, pending) = match self.group_info()? {
            Some(group) => {
                let pending = group.get("pending").map(int).unwrap_or(0);
                (self.unread(&group)?, pending)
            }
            None => {
                let stream = self.stream.clone();
                (
                    self.with(|c| redis::cmd("XLEN").arg(&stream).query::<u64>(c))?,
                    0,
                )
            }
        };
        Ok(Backlog {
            unread,
            pending,
            retries,
            next_retry_ms,
        })
    }
}

impl Admin for RedisQueue {
    /// Selects by `ts` exactly, reading three disjoint parts in entry-id
    /// order: settled entries whose `ts` is near their id's time, read by id
    /// around the window; settled skewed entries, from their index by `ts`;
    /// and every entry not yet settled (not yet indexed), from the first one
    /// to the end of the stream.
    fn history(
        &mut self,
        from_ms: i64,
        until_ms: i64,
        visit: &mut dyn FnMut(Vec<Event>) -> bool,
    ) -> Result<()> {
        let stream = self.stream.clone();
        let unsettled = self.unsettled_from()?.unwrap_or((0, 0));
        let mut skewed = self
            .skewed_in(from_ms, until_ms, unsettled)?
            .into_iter()
            .peekable();
        let in_window = |e: &Event| e.ts_ms().is_some_and(|t| from_ms <= t && t < until_ms);
        let start = (
            u64::try_from(from_ms.saturating_sub(SKEW_MS)).unwrap_or(0),
            0,
        );
        let end = (
            u64::try_from(until_ms.saturating_add(SKEW_MS)).unwrap_or(0) + 1,
            0,
        )
            .min(unsettled);
        let mut go_on = true;
        if start < end {
            self.scan_range(
                &stream,
                format!("{}-{}", start.0, start.1),
                &format!("({}-{}", end.0, end.1),
                |page| {
                    let last = page.last().map(|(key, _)| parse_id(key));
                    let mut batch: Vec<((u64, u64), Event)> = page
                        .into_iter()
                        .filter_map(|(key, fields)| Some((parse_id(&key), event_of(key, fields)?)))
                        .filter(|(id, e)| {
                            in_window(e) && !e.ts_ms().is_some_and(|t| is_skewed_ms(id.0, t))
                        })
                        .collect();
                    while let Some((id, _)) = skewed.peek()
                        && Some(*id) <= last
                    {
                        batch.extend(skewed.next());
                    }
                    batch.sort_by_key(|(id, _)| *id);
                    go_on = batch.is_empty() || visit(batch.into_iter().map(|(_, e)| e).collect());
                    go_on
                },
            )?;
        }
        let rest: Vec<Event> = skewed.map(|(_, e)| e).collect();
        if go_on && !rest.is_empty() {
            go_on = visit(rest);
        }
        if !go_on {
            return Ok(());
        }
        let start = match unsettled {
            (0, 0) => "-".to_owned(),
            (ms, seq) => format!("{ms}-{seq}"),
        };
        self.scan(&stream, start, |page| {
            let events: Vec<Event> = page
                .into_iter()
                .filter_map(|(key, fields)| event_of(key, fields))
                .filter(in_window)
                .collect();
            events.is_empty() || visit(events)
        })
    }

    fn enqueue(&mut self, deliveries: &[Delivery], due_ms: i64) -> Result<()> {
        for chunk in deliveries.chunks(1000) {
            let mut pipe = redis::pipe();
            pipe.atomic();
            let legacy = self.legacy_retries()?;
            self.schedule(&mut pipe, chunk.iter().map(|d| (d, due_ms)), legacy);
            // A replay read these events before they may have been erased.
            self.guard_deliveries(&mut pipe, chunk);
            self.with(|c| pipe.exec(c))?;
        }
        Ok(())
    }

    fn dead_letters(&mut self) -> Result<Vec<StoredDeadLetter>> {
        let dead = self.dead.clone();
        let mut out = Vec::new();
        self.scan(&dead, "-".to_owned(), |page| {
            out.extend(page.into_iter().filter_map(|(key, fields)| {
                Some(StoredDeadLetter {
                    letter: dead_letter(&key, &fields?),
                    key,
                })
            }));
            true
        })?;
        Ok(out)
    }

    fn requeue_dead(&mut self, letters: &[(String, Delivery)], due_ms: i64) -> Result<()> {
        // Atomic per chunk of about 500, never splitting one letter's
        // deliveries (a letter for every destination has several).
        for chunk in letters.chunk_by(|a, b| a.0 == b.0).fold(
            Vec::<Vec<&(String, Delivery)>>::new(),
            |mut chunks, group| {
                match chunks.last_mut() {
                    Some(last) if last.len() + group.len() <= 500 => last.extend(group),
                    _ => chunks.push(group.iter().collect()),
                }
                chunks
            },
        ) {
            let mut pipe = redis::pipe();
            let legacy = self.legacy_retries()?;
            self.requeue(&mut pipe, &chunk, due_ms, legacy);
            self.with(|c| pipe.exec(c))?;
        }
        Ok(())
    }

    fn follow_from(&mut self, from_ms: Option<i64>) -> Result<String> {
        if let Some(from_ms) = from_ms {
            // Just before `from_ms-0`: XREAD returns entries after its id.
            return Ok(match from_ms.checked_sub(1) {
                Some(ms) if ms >= 0 => format!("{ms}-{}", u64::MAX),
                _ => "0-0".to_owned(),
            });
        }
        let stream = self.stream.clone();
        let newest: Value = self.with(|c| {
            redis::cmd("XREVRANGE")
                .arg(&stream)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query(c)
        })?;
        Ok(raw_entries(newest)
            .into_iter()
            .next()
            .map_or_else(|| "0-0".to_owned(), |(key, _)| key))
    }

    fn follow(&mut self, after: &str, count: usize, block: Duration) -> Result<Vec<RawEntry>> {
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(count.max(1));
        // `BLOCK 0` would wait for ever.
        let block_ms = block.as_millis() as u64;
        if block_ms > 0 {
            cmd.arg("BLOCK").arg(block_ms);
        }
        cmd.arg("STREAMS").arg(&self.stream).arg(after);
        // A blocking read must be allowed to outlast its BLOCK time.
        let normal = self.response_timeout();
        let _ = self.conn()?.set_read_timeout(Some(normal + block));
        let reply: Result<Value> = self.with(|c| cmd.query(c));
        if let Some(c) = self.conn.as_mut() {
            let _ = c.set_read_timeout(Some(normal));
        }
        Ok(read_reply_entries(reply?))
    }

    fn count_dead(&mut self, filter: &DeadFilter) -> Result<u64> {
        self.dead_pass(filter, false)
    }

    fn purge_dead(&mut self, filter: &DeadFilter) -> Result<u64> {
        self.dead_pass(filter, true)
    }

    fn stats(&mut self) -> Result<Stats> {
        let stream = self.stream.clone();
        let (length, first, last): (u64, Value, Value) = self.with(|c| {
            redis::pipe()
                .cmd("XLEN")
                .arg(&stream)
                .cmd("XRANGE")
                .arg(&stream)
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(1)
                .cmd("XREVRANGE")
                .arg(&stream)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query(c)
        })?;
        let ends = |v: Value| {
            raw_entries(v)
                .into_iter()
                .next()
                .map(|(key, fields)| entry::identity(&raw_entry(key, fields)))
        };
        let mut stats = Stats {
            length,
            oldest: ends(first),
            newest: ends(last),
            ..Stats::default()
        };
        if let Some(group) = self.group_info()? {
            stats.lag = self.unread(&group)?;
            let consumers: Value = self.with(|c| {
                redis::cmd("XINFO")
                    .arg("CONSUMERS")
                    .arg(&stream)
                    .arg(GROUP)
                    .query(c)
            })?;
            stats.consumers = array(consumers)
                .into_iter()
                .map(map)
                .map(|c| ConsumerStats {
                    name: c.get("name").map(text).unwrap_or_default(),
                    pending: c.get("pending").map(int).unwrap_or(0),
                    idle_ms: c.get("idle").map(int).unwrap_or(0),
                })
                .collect();
        } else {
            stats.lag = length;
        }
        (stats.retries, stats.next_retry_ms) = self.retry_summary(&[])?;
        stats.dead = self.dead_counts()?;
        stats.tallies = self.tallies()?;
        Ok(stats)
    }

    fn attempts(&mut self, event_id: &str) -> Result<Vec<AttemptRecord>> {
        self.attempts_of(event_id)
    }

    fn event(&mut self, event_id: &str, hint: Option<&str>) -> Result<Option<Event>> {
        self.find_event(event_id, hint)
    }

    fn retry_due(&mut self, token: &str) -> Result<Option<i64>> {
        self.due_of(token)
    }

    fn forget(&mut self, person: &Person, dry_run: bool) -> Result<Erased> {
        self.forget_person(person, dry_run)
    }

    fn trim(&mut self, before_ms: i64) -> Result<u64> {
        let Some(group) = self.group_info()? else {
            return Ok(0);
        };
        let mut floor = format!("{before_ms}-0");
        let last = group
            .get("last-delivered-id")
            .map(text)
            .unwrap_or_else(|| "0-0".into());
        if id_lt(&last, &floor) {
            // Entries after the last delivered one are unread: keep them.
            floor = next_id(&last);
        }
        let stream = self.stream.clone();
        let pending: Value =
            self.with(|c| redis::cmd("XPENDING").arg(&stream).arg(GROUP).query(c))?;
        if let Some(Value::BulkString(first)) = array(pending).get(1) {
            let first = String::from_utf8_lossy(first).into_owned();
            if id_lt(&first, &floor) {
                floor = first;
            }
        }
        let removed = self.with(|c| {
            redis::cmd("XTRIM")
                .arg(&stream)
                .arg("MINID")
                .arg(&floor)
                .query(c)
        })?;
        // The index of skewed entries goes with them (it is small: only the
        // exceptional entries are in it).
        let skewed = self.skewed.clone();
        let members: Vec<String> =
            self.with(|c| redis::cmd("ZRANGE").arg(&skewed).arg(0).arg(-1).query(c))?;
        let gone: Vec<&String> = members.iter().filter(|id| id_lt(id, &floor)).collect();
        for chunk in gone.chunks(1000) {
            self.with(|c| redis::cmd("ZREM").arg(&skewed).arg(chunk).exec(c))?;
        }
        Ok(removed)
    }
}

/// Whether an entry's `ts` is too far from its id's time to be found by
/// reading the stream by id around a window.
/// A field of the tallies hash: `delivered:<destination>`.
const DELIVERED: &str = "delivered:";
/// A field of the tallies hash: `rate_limited:<destination>`.
const RATE_LIMITED: &str = "rate_limited:";

impl RedisQueue {
    /// One destination's alert window (a key that expires when it ends),
    /// and the hashes of what every destination counted meanwhile and its
    /// latest error.
    fn alert_keys(&self, dest: &str) -> [String; 3] {
        [
            format!("{}:alert:{dest}", self.prefix),
            format!("{}:alert_between", self.prefix),
            format!("{}:alert_errors", self.prefix),
        ]
    }

    fn tallies_key(&self) -> String {
        format!("{}:tallies", self.prefix)
    }

    /// Adds to `pipe` the increments of each destination's totals.
    fn add_tallies(&self, pipe: &mut redis::Pipeline, tallies: &BTreeMap<String, Tally>) {
        let key = self.tallies_key();
        for (dest, tally) in tallies {
            for (field, n) in [
                (DELIVERED, tally.delivered),
                (RATE_LIMITED, tally.rate_limited),
            ] {
                if n > 0 {
                    pipe.cmd("HINCRBY")
                        .arg(&key)
                        .arg(format!("{field}{dest}"))
                        .arg(n)
                        .ignore();
                }
            }
        }
    }

    /// Every destination's totals: one small hash, whatever the traffic.
    fn tallies(&mut self) -> Result<BTreeMap<String, Tally>> {
        let key = self.tallies_key();
        let fields: Vec<(String, String)> =
            self.with(|c| redis::cmd("HGETALL").arg(&key).query(c))?;
        let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
        for (field, n) in fields {
            // Anyone who can reach Redis can write here: what is not a
            // count counts as none.
            let n = n.parse().unwrap_or(0);
            if let Some(dest) = field.strip_prefix(DELIVERED) {
                tallies.entry(dest.to_owned()).or_default().delivered = n;
            } else if let Some(dest) = field.strip_prefix(RATE_LIMITED) {
                tallies.entry(dest.to_owned()).or_default().rate_limited = n;
            }
        }
        Ok(tallies)
    }
}

fn is_skewed_ms(entry_ms: u64, ts_ms: i64) -> bool {
    (i128::from(ts_ms) - i128::from(entry_ms)).abs() > i128::from(SKEW_MS)
}

/// Compares two stream ids `ms-seq`.
fn id_lt(a: &str, b: &str) -> bool {
    parse_id(a) < parse_id(b)
}

fn parse_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

fn next_id(id: &str) -> String {
    let (ms, seq) = parse_id(id);
    format!("{ms}-{}", seq + 1)
}

fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) | Value::Set(items) => items,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    }
}

fn map(v: Value) -> HashMap<String, Value> {
    let mut items = array(v).into_iter();
    let mut out = HashMap::new();
    while let (Some(k), Some(v)) = (items.next(), items.next()) {
        out.insert(text(&k), v);
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::VerbatimString { text, .. } => text.clone(),
        _ => String::new(),
    }
}

fn int(v: &Value) -> u64 {
    match v {
        Value::Int(i) => u64::try_from(*i).unwrap_or(0),
        other => text(other).parse().unwrap_or(0),
    }
}

/// Entries of an `XREADGROUP` reply (one stream), or none on a timeout.
fn read_reply_entries(reply: Value) -> Vec<RawEntry> {
    array(reply)
        .into_iter()
        .flat_map(|stream| {
            array(stream)
                .into_iter()
                .nth(1)
                .map(entries)
                .unwrap_or_default()
        })
        .collect()
}

/// An entry's fields, in order.
type Fields = Vec<(String, String)>;

/// `[[id, [field, value, ...]], ...]` as (id, fields); fields are `None`
/// for an entry deleted while pending.
fn raw_entries(v: Value) -> Vec<(String, Option<Fields>)> {
    array(v)
        .into_iter()
        .filter_map(|entry| {
            let mut parts = array(entry).into_iter();
            let id = text(&parts.next()?);
            let fields = match parts.next() {
                Some(Value::Nil) | None => None,
                Some(f) => {
                    let mut flat = array(f).into_iter();
                    let mut pairs = Vec::new();
                    while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                        pairs.push((text(&k), text(&v)));
                    }
                    Some(pairs)
                }
            };
            Some((id, fields))
        })
        .collect()
}

fn entries(v: Value) -> Vec<RawEntry> {
    raw_entries(v)
        .into_iter()
        .map(|(key, fields)| raw_entry(key, fields))
        .collect()
}

/// An entry as the decoder above the backends takes it: its write time and
/// sequence are its entry id's.
fn raw_entry(key: String, fields: Option<Fields>) -> RawEntry {
    let (written_ms, seq) = parse_id(&key);
    RawEntry {
        key,
        written_ms,
        seq,
        fields,
    }
}

/// The event an entry holds, if it is not poison.
fn event_of(key: String, fields: Option<Fields>) -> Option<Event> {
    entry::decode(&raw_entry(key, fields)).ok()
}

/// The dead letter stored at `key`; one without its time (written by hand)
/// takes its entry id's.
fn dead_letter(key: &str, fields: &[(String, String)]) -> DeadLetter {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let raw = get("event").to_owned();
    let event = if get("poison") == "1" {
        Err(raw)
    } else {
        serde_json::from_str::<Event>(&raw).map_err(|_| raw)
    };
    DeadLetter {
        event,
        dest: get("dest").to_owned(),
        attempts: get("attempts").parse().unwrap_or(0),
        error: get("error").to_owned(),
        at_ms: get("at").parse().unwrap_or_else(|_| parse_id(key).0 as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::derived_id;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn an_entry_without_id_or_ts_gets_them_from_its_entry_id() {
        let event = event_of(
            "1700000000123-4".into(),
            Some(fields(&[
                ("type", "user.signup"),
                ("payload", r#"{"email":"a@b"}"#),
            ])),
        )
        .unwrap();
        assert_eq!(event.ts, "2023-11-14T22:13:20.123Z");
        assert_eq!(event.id, derived_id(1_700_000_000_123, 4));
    }

    #[test]
    fn stream_ids_compare_numerically() {
        assert!(id_lt("999-0", "1000-0"));
        assert!(id_lt("1000-9", "1000-10"));
        assert_eq!(next_id("1000-9"), "1000-10");
    }

    proptest::proptest! {
        #[test]
        fn decoding_any_fields_never_panics(
            key in "\\PC{0,20}",
            pairs in proptest::collection::vec(("\\PC{0,8}", "\\PC{0,40}"), 0..6),
        ) {
            let _ = event_of(key, Some(pairs));
        }
    }
}

#[cfg(test)]
mod classify_tests {
    use super::*;

    #[test]
    fn errors_are_sorted_by_kind_not_text() {
        let server = |kind| RedisError::from((ErrorKind::Server(kind), "any text"));
        let io = |kind| RedisError::from(std::io::Error::from(kind));
        use UnavailableReason::*;
        assert_eq!(
            classify(&server(ServerErrorKind::BusyLoading)),
            Class::Unavailable(Loading)
        );
        assert_eq!(
            classify(&server(ServerErrorKind::ReadOnly)),
            Class::Unavailable(ReadOnly)
        );
        for kind in [
            ServerErrorKind::TryAgain,
            ServerErrorKind::MasterDown,
            ServerErrorKind::ClusterDown,
            ServerErrorKind::Moved,
            ServerErrorKind::Ask,
        ] {
            assert_eq!(classify(&server(kind)), Class::Unavailable(Failover));
        }
        assert_eq!(
            classify(&io(std::io::ErrorKind::Interrupted)),
            Class::Unavailable(Interrupted)
        );
        assert_eq!(
            classify(&io(std::io::ErrorKind::ConnectionRefused)),
            Class::Unavailable(Unreachable)
        );
        assert_eq!(
            classify(&RedisError::from((ErrorKind::AuthenticationFailed, "x"))),
            Class::WrongPassword
        );
        assert_eq!(
            classify(&server(ServerErrorKind::ResponseError)),
            Class::Other
        );
        let code = |code: &str| redis::make_extension_error(code.into(), Some("any text".into()));
        assert_eq!(classify(&code("UNBLOCKED")), Class::Unavailable(Failover));
        assert_eq!(classify(&code("NOAUTH")), Class::NeedsPassword);
        assert_eq!(classify(&code("WRONGPASS")), Class::WrongPassword);
        assert_eq!(classify(&code("BUSYGROUP")), Class::Other);
        assert_eq!(super::code(&code("BUSYGROUP")), Some(Code::BusyGroup));
        assert_eq!(super::code(&code("NOGROUP")), Some(Code::NoGroup));
    }
}
