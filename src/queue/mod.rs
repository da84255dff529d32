//! The queue: where events wait between `emit` and delivery, and where
//! retries, dead letters and idempotency keys live. One seam, two backends
//! (Redis Streams and an embedded SQLite file) with the same semantics, so the
//! worker, `emit`, `replay` and `status` never know which one they talk to.
//!
//! The delivery model both backends implement:
//! - the **stream** is the history of events; a worker *claims* entries,
//!   delivers each to every destination routed to it, and *settles* them;
//! - a claimed entry that is never settled (the worker died) comes back to any
//!   worker once it has been idle longer than the claim lease;
//! - a delivery that must be tried again goes to the **retry set** (one
//!   delivery = one event and one destination), due at a time; claiming a due
//!   retry leases it the same way, so a crash never loses it;
//! - a delivery that gave up goes to the **dead letters**;
//! - every settlement (acknowledgements, finished retries, new retries, dead
//!   letters) is written atomically, all or nothing.
//!
//! The seam is split by who calls it: [`Producer`] (`emit`), the worker's
//! [`Claims`], [`Settle`], [`Leases`], [`RateLimit`] and [`AlertWindows`]
//! (together [`Consumer`]), and the operator's [`History`], [`Retries`],
//! [`DeadLetters`], [`Lifecycle`] and [`Health`] (together [`Admin`]), and
//! [`Holds`], which both sides use (the operator pauses a destination, every
//! worker reads what is held); [`Queue`] is all of them, for opening. Backends store and fetch; what a
//! stored entry or retry *is* (event, delivery or poison, and why) is
//! decided once, in [`entry`].

pub mod attempt;
pub mod dead_page;
pub mod entry;
pub mod forget;
pub mod hold;
pub mod postgres;
pub mod redis;
pub mod settings;
pub mod sqlite;
pub mod window;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wildmatch::WildMatch;

use crate::event::Event;
use crate::rate::Rate;
pub use attempt::{AttemptRecord, Outcome};
pub use dead_page::{DeadPage, dead_page};
pub use entry::RawEntry;
pub use hold::{Hold, HoldKind, RawHold};
pub use settings::{Backend, Settings, open};

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue cannot be used right now (connection refused, timed out or
    /// lost, a server loading its data or read-only after a failover, a
    /// locked file). Worth waiting for: the worker waits and resumes.
    #[error("{message}")]
    Unavailable {
        reason: UnavailableReason,
        message: String,
    },
    /// The store cannot be written: a read-only file, directory or
    /// filesystem. Waiting does not help: someone must make it writable.
    #[error("{0}")]
    NotWritable(String),
    /// The server needs a password, or refused the one given. Waiting does
    /// not help: the URL must change.
    #[error("{0}")]
    Auth(String),
    /// Another live worker holds this consumer name.
    #[error(transparent)]
    ConsumerHeld(#[from] ConsumerHeld),
    /// The write reached the primary, but fewer replicas than asked
    /// confirmed it in time (`EVENTS_EMIT_REPLICAS`).
    #[error(transparent)]
    NotReplicated(#[from] NotReplicated),
    /// Anything else the backend reported: a corrupt file, an unexpected reply.
    #[error("{0}")]
    Backend(String),
}

impl QueueError {
    pub fn unavailable(reason: UnavailableReason, message: impl Into<String>) -> QueueError {
        QueueError::Unavailable {
            reason,
            message: message.into(),
        }
    }
}

/// Why the queue is unavailable, for the worker to say it plainly (and to
/// keep quiet about a read cut short by its own stop signal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnavailableReason {
    /// No connection: refused, timed out, dropped; or a file that cannot
    /// be opened or written.
    Unreachable,
    /// A blocked read cut short by a signal (the worker is stopping).
    Interrupted,
    /// The server is loading its data after a restart (`LOADING`).
    Loading,
    /// The server is a replica, as after a failover (`READONLY`).
    ReadOnly,
    /// A failover or resharding is under way (`TRYAGAIN`, `MASTERDOWN`,
    /// `CLUSTERDOWN`), or the server ended a blocked read (`UNBLOCKED`).
    Failover,
    /// Another process holds the lock on the file.
    Locked,
}

/// A consumer name held by a live worker: a second worker with the same
/// name would take over entries the first is delivering.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the consumer name '{name}' is held by a running worker ({holder}) until {until}; \
     give this worker another --consumer, or stop that one (a worker that died \
     releases its name when the lease runs out)",
    until = crate::event::format_ts_ms(*until_ms)
)]
pub struct ConsumerHeld {
    pub name: String,
    /// Who holds it: `host pid N`.
    pub holder: String,
    /// When the holder's lease runs out unless renewed, ms since the epoch.
    pub until_ms: i64,
}

/// Events written to the primary that fewer replicas than asked confirmed
/// within the timeout: they stand, but a failover of the primary now could
/// lose them (Redis replicates asynchronously).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "only {confirmed} of {wanted} replicas confirmed {what} within {timeout_ms} ms: \
     {it} may be lost if the primary fails now",
    what = if *count == 1 { "the event".to_owned() } else { format!("the {count} events") },
    it = if *count == 1 { "it" } else { "they" },
)]
pub struct NotReplicated {
    /// The id of the event written, when one was (a single emit; for an
    /// idempotent emit, the id that stands under the key).
    pub id: Option<String>,
    /// How many events the write held.
    pub count: usize,
    pub confirmed: u32,
    pub wanted: u32,
    pub timeout_ms: u64,
}

/// How many replicas must confirm an emit before it counts as written,
/// and how long to wait for them (`EVENTS_EMIT_REPLICAS`,
/// `EVENTS_EMIT_REPLICAS_TIMEOUT_MS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durability {
    pub replicas: u32,
    pub timeout: Duration,
}

pub type Result<T, E = QueueError> = std::result::Result<T, E>;

/// One entry claimed from the stream. `event` is `Err` with the reason when
/// the entry cannot be decoded (poison): it is dead-lettered, never retried.
#[derive(Debug, Clone)]
pub struct StreamEntry {
    /// The backend's position of the entry (a Redis entry id, a SQLite row).
    pub key: String,
    pub event: std::result::Result<Event, Poison>,
}

/// An entry that cannot be delivered: its raw content and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Poison {
    pub raw: String,
    pub reason: String,
}

/// One delivery: an event to one destination, with the attempts spent so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub event: Event,
    pub dest: String,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl Delivery {
    /// What identifies a delivery in the retry set: one event to one
    /// destination is scheduled at most once (a replay of a delivery already
    /// waiting reschedules it rather than adding a second). Destination names
    /// never contain `|`, so the name is everything after the last one.
    pub fn token(&self) -> String {
        format!("{}|{}", self.event.id, self.dest)
    }
}

/// The destination named by a retry token (see [`Delivery::token`]).
pub fn token_dest(token: &str) -> &str {
    token.rsplit_once('|').map_or("", |(_, dest)| dest)
}

/// A due retry claimed under a lease: `token` identifies it when settling.
#[derive(Debug, Clone)]
pub struct RetryClaim {
    pub token: String,
    pub delivery: Delivery,
}

/// A delivery that gave up, as stored in the dead letters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The event, or for poison the raw entry as text.
    pub event: std::result::Result<Event, String>,
    pub dest: String,
    pub attempts: u32,
    pub error: String,
    /// When it was dead-lettered, ms since the Unix epoch.
    pub at_ms: i64,
}

/// A dead letter as listed, with the backend's key for requeueing it.
#[derive(Debug, Clone)]
pub struct StoredDeadLetter {
    pub key: String,
    pub letter: DeadLetter,
}

/// Which dead letters [`DeadLetters::purge_dead`] removes: every one unless
/// narrowed, and a letter must pass every narrowing given.
#[derive(Debug, Clone, Default)]
pub struct DeadFilter {
    /// Only letters dead-lettered before this time, ms since the epoch.
    pub before_ms: Option<i64>,
    /// Only letters of events whose type one of these globs matches; poison
    /// has no type, so no glob matches it.
    types: Vec<WildMatch>,
    /// Only letters of deliveries to these destinations.
    dests: Vec<String>,
    /// Only letters whose error contains this text.
    error: Option<String>,
}

impl DeadFilter {
    pub fn new(before_ms: Option<i64>, types: &[String], dests: &[String]) -> DeadFilter {
        DeadFilter {
            before_ms,
            types: types.iter().map(|glob| WildMatch::new(glob)).collect(),
            dests: dests.to_vec(),
            error: None,
        }
    }

    /// Narrowed to letters whose error contains `error`, if not empty.
    pub fn with_error(mut self, error: &str) -> DeadFilter {
        self.error = Some(error.to_owned()).filter(|e| !e.is_empty());
        self
    }

    /// Every letter dead-lettered before `before_ms`: the retention's trim.
    pub fn before(before_ms: i64) -> DeadFilter {
        DeadFilter {
            before_ms: Some(before_ms),
            ..DeadFilter::default()
        }
    }

    /// Whether the destination and time alone already rule the letter out,
    /// before its event is decoded.
    pub fn passes_over(&self, dest: &str, at_ms: i64) -> bool {
        self.before_ms.is_some_and(|before| at_ms >= before)
            || (!self.dests.is_empty() && !self.dests.iter().any(|d| d == dest))
    }

    /// Whether `letter` is one to remove.
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        if self.passes_over(&letter.dest, letter.at_ms)
            || self
                .error
                .as_ref()
                .is_some_and(|e| !letter.error.contains(e.as_str()))
        {
            return false;
        }
        self.types.is_empty()
            || letter
                .event
                .as_ref()
                .is_ok_and(|event| self.types.iter().any(|glob| glob.matches(&event.kind)))
    }
}

/// Everything one settle call writes, atomically.
#[derive(Debug, Default, Clone)]
pub struct Settlement {
    /// Stream entries finished with: acknowledged.
    pub acks: Vec<String>,
    /// Retry claims finished with (delivered, rescheduled or dead): removed.
    pub done_retries: Vec<String>,
    /// Deliveries to try again, each with its due time (ms since epoch).
    pub retries: Vec<(Delivery, i64)>,
    /// Deliveries that gave up.
    pub dead: Vec<DeadLetter>,
    /// What each destination did, added to its running totals.
    pub tallies: BTreeMap<String, Tally>,
    /// What each delivery attempt settled here came to.
    pub attempts: Vec<AttemptRecord>,
}

impl Settlement {
    pub fn is_empty(&self) -> bool {
        self.acks.is_empty()
            && self.done_retries.is_empty()
            && self.retries.is_empty()
            && self.dead.is_empty()
            && self.tallies.is_empty()
            && self.attempts.is_empty()
    }
}

/// A destination's running totals, kept by the queue for every worker
/// together, so `status` can say what each destination did and how fast.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Deliveries it accepted.
    pub delivered: u64,
    /// Requests it answered with "too many requests" (HTTP 429, or Slack's
    /// `ratelimited`), each waited out without spending an attempt.
    pub rate_limited: u64,
}

/// What is left to do, for `work --burst` to know when it is finished.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Backlog {
    /// Entries no worker has claimed yet.
    pub unread: u64,
    /// Entries claimed but not settled, by any worker.
    pub pending: u64,
    /// Deliveries in the retry set.
    pub retries: u64,
    /// When the earliest retry is due, ms since epoch.
    pub next_retry_ms: Option<i64>,
}

/// A consumer (worker) holding entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerStats {
    pub name: String,
    pub pending: u64,
    /// How long since the consumer last claimed or settled, ms.
    pub idle_ms: u64,
}

/// The health of the pipeline, for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Entries in the stream (history included).
    pub length: u64,
    /// Oldest and newest event in the stream: (id, ts).
    pub oldest: Option<(String, String)>,
    pub newest: Option<(String, String)>,
    /// Entries no worker has claimed yet.
    pub lag: u64,
    pub consumers: Vec<ConsumerStats>,
    pub retries: u64,
    pub next_retry_ms: Option<i64>,
    /// Dead letters counted by (destination, error), most first.
    pub dead: Vec<(String, String, u64)>,
    /// Each destination's running totals, by name.
    pub tallies: BTreeMap<String, Tally>,
}

/// What every backend says about itself, whoever calls it.
pub trait Describe: Send {
    /// Where this queue lives, safe to print (no password).
    fn describe(&self) -> String;
}

/// The producing side: `emit` and anything that appends events. Each call is
/// one round trip or one transaction where the backend allows it.
pub trait Producer: Describe {
    /// Appends events to the stream, in order, in one batch.
    fn append(&mut self, events: &[Event]) -> Result<()>;

    /// Appends `event` unless `key` was used within `ttl`; returns the id of
    /// the event first appended under the key when it was (and appends nothing).
    fn append_idempotent(
        &mut self,
        key: &str,
        event: &Event,
        ttl: Duration,
    ) -> Result<Option<String>>;
}

/// The worker's claims: recovering, claiming and renewing, the hot path.
pub trait Claims: Describe {
    /// Entries claimed earlier by `consumer` and never settled, as stored:
    /// what [`Claims::recover`] decodes.
    fn recover_raw(&mut self, consumer: &str) -> Result<Vec<RawEntry>>;

    /// Claims up to `count` entries for `consumer`, as stored: what
    /// [`Claims::claim`] decodes.
    fn claim_raw(&mut self, consumer: &str, count: usize, block: Duration)
    -> Result<Vec<RawEntry>>;

    /// Entries claimed earlier by `consumer` and never settled: a restarted
    /// worker finishes these first.
    fn recover(&mut self, consumer: &str) -> Result<Vec<StreamEntry>> {
        Ok(decode_all(self.recover_raw(consumer)?))
    }

    /// Claims up to `count` entries for `consumer`: entries of any consumer
    /// idle longer than the claim lease first, then new ones, waiting up to
    /// `block` for new ones when there are none.
    fn claim(&mut self, consumer: &str, count: usize, block: Duration) -> Result<Vec<StreamEntry>> {
        Ok(decode_all(self.claim_raw(consumer, count, block)?))
    }

    /// Claims up to `count` retries due at `now_ms`, leasing each for the
    /// claim lease (it comes back if never settled). When `only` is not
    /// empty, only deliveries to those destinations are claimed.
    fn claim_retries(
        &mut self,
        now_ms: i64,
        count: usize,
        only: &[String],
    ) -> Result<Vec<RetryClaim>>;

    /// Extends, by a full claim lease from now, the claims `consumer` still
    /// holds on these entries and retries (a slow delivery keeps them).
    fn renew(&mut self, consumer: &str, entries: &[String], retries: &[String]) -> Result<()>;

    /// What is left to do. When `only` is not empty, retries count only
    /// those to the named destinations.
    fn backlog(&mut self, only: &[String]) -> Result<Backlog>;
}

/// Writing what the worker did: the settler's side.
pub trait Settle: Describe {
    /// Writes a settlement, all or nothing.
    fn settle(&mut self, consumer: &str, settlement: &Settlement) -> Result<()>;
}

/// The consumer names workers hold, so two never share one.
pub trait Leases: Describe {
    /// Takes the consumer name `consumer` for `holder` (who is asking:
    /// `host pid N`) for `lease`, or extends it when `holder` already holds
    /// it. Fails with [`ConsumerHeld`] while another holder's lease runs.
    fn hold_consumer(&mut self, consumer: &str, holder: &str, lease: Duration) -> Result<()>;

    /// Gives up the consumer name, if `holder` still holds it.
    fn release_consumer(&mut self, consumer: &str, holder: &str) -> Result<()>;

    /// Forgets `consumer` (a worker that stopped) if it holds nothing, so
    /// `status` lists only workers that matter.
    fn leave(&mut self, consumer: &str) -> Result<()>;
}

/// The rate limits every worker on the queue shares: a lane's side.
pub trait RateLimit: Describe {
    /// Takes one send from `dest`'s rate limit, which every worker on this
    /// queue shares (see [`crate::rate::take`]): `None` when taken (send
    /// now), else how long until the next send is free.
    fn take_token(&mut self, dest: &str, rate: Rate) -> Result<Option<Duration>>;
}

/// The dead-letter alert windows every worker on the queue shares.
pub trait AlertWindows: Describe {
    /// Counts `count` dead letters to `dest` (the latest failing with
    /// `error`) into its alert window, which
    /// every worker on this queue shares (see [`window::count_into`]):
    /// how many to report when this call opens a new window, `None` while
    /// one is open.
    fn count_dead_for_alert(
        &mut self,
        dest: &str,
        count: u64,
        error: &str,
        window: Duration,
    ) -> Result<Option<u64>>;

    /// The alerts owed by windows that ended with dead letters counted in
    /// them and no later dead letter to carry them (see
    /// [`window::due`]): each destination's count and latest error.
    /// Each is returned to one caller only, whichever worker asks first, and
    /// opens a new window.
    fn alerts_due(&mut self, window: Duration) -> Result<Vec<window::Tally>>;
}

/// The worker's side: everything it asks of the queue while it runs.
pub trait Consumer: Claims + Settle + Leases + RateLimit + AlertWindows {}

impl<T: Claims + Settle + Leases + RateLimit + AlertWindows + ?Sized> Consumer for T {}

/// What the settler asks: writing settlements, counting dead letters into
/// their alert windows and appending the alerts this raises, and telling
/// the destinations' breakers what its sends came to.
pub trait Settling: Settle + AlertWindows + Producer + Holds {}

impl<T: Settle + AlertWindows + Producer + Holds + ?Sized> Settling for T {}

/// Reading the history: `replay`, `digest`, `tail`, `inspect`.
pub trait History: Describe {
    /// Events of the stream with `from_ms <= ts < until_ms`, selected by
    /// `ts` exactly however long before or after it they were written,
    /// passed to `visit` in batches (SQLite in `ts` order, Redis in write
    /// order); stops early when `visit` returns false.
    fn history(
        &mut self,
        from_ms: i64,
        until_ms: i64,
        visit: &mut dyn FnMut(Vec<Event>) -> bool,
    ) -> Result<()>;

    /// Where following the stream starts, as a position for
    /// [`History::follow`]: after the newest entry, or with `from_ms`, before
    /// the first entry written at or after that time.
    fn follow_from(&mut self, from_ms: Option<i64>) -> Result<String>;

    /// Up to `count` entries written after the position `after`, as stored,
    /// waiting up to `block` when there are none. Read without the consumer
    /// group: nothing is claimed, no worker is kept from anything. The last
    /// entry's key is the position to follow from next.
    fn follow(&mut self, after: &str, count: usize, block: Duration) -> Result<Vec<RawEntry>>;

    /// The event `event_id`, if the history still holds it: looked for at
    /// the stream position `hint` first (an attempt record's `entry`),
    /// else through the whole stream.
    fn event(&mut self, event_id: &str, hint: Option<&str>) -> Result<Option<Event>>;
}

/// The retry set as the operator sees it: `replay` schedules into it,
/// `inspect` asks when a delivery is due.
pub trait Retries: Describe {
    /// Adds deliveries to the retry set, due at `due_ms` (replay), except
    /// those of events `forget` erased since they were read.
    fn enqueue(&mut self, deliveries: &[Delivery], due_ms: i64) -> Result<()>;

    /// When the delivery `token` (see [`Delivery::token`]) is next due, if
    /// it waits in the retry set (or is being retried right now).
    fn retry_due(&mut self, token: &str) -> Result<Option<i64>>;
}

/// The dead letters: listed, requeued, counted and purged.
pub trait DeadLetters: Describe {
    /// Every dead letter, oldest first.
    fn dead_letters(&mut self) -> Result<Vec<StoredDeadLetter>>;

    /// Up to `count` dead letters, newest first, from the one just older
    /// than the letter whose key is `before` (from the newest when `None`):
    /// one bounded read, so a paged view walks the letters without reading
    /// the rest (see [`dead_page`]).
    fn dead_before(&mut self, before: Option<&str>, count: usize) -> Result<Vec<StoredDeadLetter>>;

    /// Moves dead letters back into the retry set, due at `due_ms`: each
    /// `(key, delivery)` removes the dead letter `key` and adds `delivery`,
    /// atomically, and only while the letter is still there (one erased,
    /// purged or replayed since it was read is not brought back). A
    /// letter's deliveries are side by side.
    fn requeue_dead(&mut self, letters: &[(String, Delivery)], due_ms: i64) -> Result<()>;

    /// How many dead letters `filter` selects, removing nothing.
    fn count_dead(&mut self, filter: &DeadFilter) -> Result<u64>;

    /// Removes the dead letters `filter` selects, uncounting each in the
    /// counts `status` shows; returns how many were removed.
    fn purge_dead(&mut self, filter: &DeadFilter) -> Result<u64>;
}

/// What is kept and for how long: trimming the history, the attempt
/// records, and erasing a person.
pub trait Lifecycle: Describe {
    /// Removes stream history written before `before_ms` (by write time,
    /// not `ts`), never an entry that is unread or pending nor any after it.
    /// Returns how many entries were removed.
    fn trim(&mut self, before_ms: i64) -> Result<u64>;

    /// The attempt records of the event `event_id`, oldest first.
    fn attempts(&mut self, event_id: &str) -> Result<Vec<AttemptRecord>>;

    /// Erases every event `person` owns from the history, the retry set
    /// and its bodies, the dead letters, the attempt records and the
    /// idempotency keys pointing at them, each event at once (a delivery
    /// of it in flight meanwhile writes nothing back); with `dry_run`,
    /// only counts. Returns what it removed (or would), per place; an error
    /// says first whether nothing was erased or perhaps part.
    fn forget(&mut self, person: &forget::Person, dry_run: bool) -> Result<forget::Erased>;
}

/// The health of the pipeline, for `status` and the metrics endpoint.
pub trait Health: Describe {
    /// The health of the pipeline.
    fn stats(&mut self) -> Result<Stats>;
}

/// Destinations held (see [`hold`]): `pause` and `resume` write them,
/// every worker reads them about once a second, `status` shows them.
pub trait Holds: Describe {
    /// Stores `hold` on `dest`, replacing its hold of the same kind.
    fn put_hold(&mut self, dest: &str, hold: &Hold) -> Result<()>;

    /// Removes `dest`'s hold of `kind`; whether there was one.
    fn remove_hold(&mut self, dest: &str, kind: HoldKind) -> Result<bool>;

    /// Every hold stored, ended ones included, as stored: one small read.
    fn holds_raw(&mut self) -> Result<Vec<RawHold>>;

    /// `dest`'s hold of `kind` as stored (its JSON), if any.
    fn hold_raw(&mut self, dest: &str, kind: HoldKind) -> Result<Option<String>>;

    /// Replaces `dest`'s hold of `kind` with `new` (removes it when `None`)
    /// in one atomic step, only if it is still stored as `expected` (its
    /// JSON as read; `None`: no such hold). False, changing nothing, when
    /// another connection changed it first: the breaker's transitions are
    /// each made by one worker alone.
    fn swap_hold(
        &mut self,
        dest: &str,
        kind: HoldKind,
        expected: Option<&str>,
        new: Option<&Hold>,
    ) -> Result<bool>;

    /// How many deliveries to `dest` wait in the retry set (while `dest`
    /// is held, every one of them is held).
    fn waiting(&mut self, dest: &str) -> Result<u64>;

    /// Every hold stored, decoded; one that cannot be read is logged and
    /// left out (the destination is not held by it).
    fn holds(&mut self) -> Result<Vec<(String, Hold)>> {
        Ok(self
            .holds_raw()?
            .iter()
            .filter_map(|raw| {
                Hold::decode(raw)
                    .map_err(|why| log::warn!("{}", crate::sanitize::escape(&why)))
                    .ok()
            })
            .collect())
    }
}

/// The operator's side: `status`, `replay` and housekeeping.
pub trait Admin: History + Retries + DeadLetters + Lifecycle + Health {}

impl<T: History + Retries + DeadLetters + Lifecycle + Health + ?Sized> Admin for T {}

/// Every side at once, for callers that need them all (the worker trims
/// and requeues as well as claims) and for opening a queue whose caller
/// then keeps only the side it needs (`Box<dyn Queue>` becomes a
/// `Box<dyn Health>`, a `Box<dyn RateLimit>`, a `Box<dyn Settling>`…).
pub trait Queue: Producer + Consumer + Admin + Settling + Holds {}

impl<T: Producer + Consumer + Admin + Holds + ?Sized> Queue for T {}

/// Decides, above the backends, what each claimed entry is.
fn decode_all(raw: Vec<RawEntry>) -> Vec<StreamEntry> {
    raw.into_iter().map(StreamEntry::from).collect()
}

/// The backends' shared tuning.
#[derive(Debug, Clone)]
pub struct QueueOptions {
    /// How long a claimed entry or retry stays with its worker before any
    /// worker may take it over. Longer than the HTTP timeout.
    pub claim_lease: Duration,
    /// Replicas a write by `emit` waits for; `None` waits for none.
    pub durability: Option<Durability>,
    /// How long attempt records are kept (`EVENTS_RETENTION`).
    pub retention: Duration,
    /// How long to wait to connect and for each reply (Redis), or for a
    /// lock held by another process (SQLite's busy timeout); `None` keeps
    /// the defaults (3 s to connect and 5 s a reply, 5 s for a lock). An
    /// emitter sets it from `EVENTS_EMIT_TIMEOUT_MS`.
    pub timeout: Option<Duration>,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            claim_lease: Duration::from_secs(60),
            durability: None,
            retention: Duration::from_secs(30 * 24 * 3600),
            timeout: None,
        }
    }
}

/// A timeout as messages show it: `5 s`, `100 ms`.
pub(crate) fn shown_timeout(timeout: Duration) -> String {
    match timeout.as_millis() {
        ms if ms % 1000 == 0 => format!("{} s", ms / 1000),
        ms => format!("{ms} ms"),
    }
}

/// Dead letters counted by (destination, error), most first: the shape
/// `status` shows.
pub fn count_dead<'a>(letters: impl Iterator<Item = &'a DeadLetter>) -> Vec<(String, String, u64)> {
    let mut counts: std::collections::BTreeMap<(String, String), u64> = Default::default();
    for letter in letters {
        *counts
            .entry((letter.dest.clone(), letter.error.clone()))
            .or_default() += 1;
    }
    let mut out: Vec<_> = counts.into_iter().map(|((d, e), n)| (d, e, n)).collect();
    out.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));
    out
}

/// Every side of the seam, to call any of them on a backend's own type
/// (`use events::queue::prelude::*`).
pub mod prelude {
    pub use super::{
        Admin, AlertWindows, Claims, Consumer, DeadLetters, Describe, Health, History, Holds,
        Leases, Lifecycle, Producer, Queue, RateLimit, Retries, Settle, Settling,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dead letters are stored as this JSON in both backends: letters
    /// written by earlier versions must still read, poison included.
    #[test]
    fn a_stored_dead_letter_keeps_its_json_form() {
        let stored = [
            r#"{"event":{"Ok":{"id":"01M8GCM5T79SNA9DY6YG5C54D4","type":"user.signup","ts":"2026-11-27T09:00:00.000Z","payload":{"email":"a@b"}}},"dest":"slack","attempts":3,"error":"HTTP 500","at_ms":1700000000000}"#,
            r#"{"event":{"Err":"type=x&payload=not json"},"dest":"*","attempts":0,"error":"'payload' is not valid JSON","at_ms":1700000000001}"#,
        ];
        for text in stored {
            let letter: DeadLetter = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&letter).unwrap(), text);
        }
        let poison: DeadLetter = serde_json::from_str(stored[1]).unwrap();
        assert_eq!(poison.event, Err("type=x&payload=not json".to_owned()));
        let letter: DeadLetter = serde_json::from_str(stored[0]).unwrap();
        assert_eq!(letter.event.unwrap().kind, "user.signup");
    }
}
