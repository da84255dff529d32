//! Waking on commit: a blocked `claim` or `follow` waits on a connection of
//! its own that `LISTEN`s on the schema's channel, which the stream's insert
//! trigger notifies at commit, instead of looking for new rows every few
//! milliseconds. A notification can be lost (a pooler in transaction mode,
//! a connection that broke): a wait never lasts longer than [`FALLBACK`],
//! after which the caller looks anyway.

use std::thread;
use std::time::{Duration, Instant};

use postgres::Client;
use postgres::fallible_iterator::FallibleIterator;

use super::{PostgresQueue, connect};

/// The longest a blocked read waits for a notification before it looks for
/// new rows anyway: what a lost notification costs at most.
pub(super) const FALLBACK: Duration = Duration::from_secs(1);

/// How often a read without a listening connection looks for new rows (the
/// server refused a second connection, or is restarting).
const POLL_STEP: Duration = Duration::from_millis(20);

/// How long after a failed attempt the listening connection is tried again.
const RETRY_LISTEN: Duration = Duration::from_secs(5);

/// The channel the schema's insert trigger notifies: `<schema>_stream`, cut
/// to Postgres's 63-byte limit on names as the trigger cuts it.
pub(super) fn channel(schema: &str) -> String {
    let mut name = format!("{schema}_stream");
    name.truncate(63);
    name
}

/// The listening connection, once made.
#[derive(Default)]
pub(super) struct Listener {
    client: Option<Client>,
    /// No new attempt before this, after one failed.
    retry_at: Option<Instant>,
    /// Until when a claim need not look for rows: the last look took all
    /// it could see, and no commit was notified since. At most
    /// [`FALLBACK`] after that look, so a lease ending elsewhere or a lost
    /// notification is still found.
    caught_up: Option<Instant>,
}

impl PostgresQueue {
    /// Makes sure the listening connection is there, and forgets the
    /// notifications already received: called BEFORE looking for rows, so
    /// a row committed after that look always wakes the wait that follows.
    pub(super) fn listen(&mut self) {
        if let Some(client) = self.listener.client.as_mut() {
            if !client.is_closed() {
                let mut pending = client.notifications();
                let mut pending = pending.iter();
                while let Ok(Some(_)) = pending.next() {
                    self.listener.caught_up = None;
                }
                return;
            }
            self.listener.client = None;
        }
        if self.listener.retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        let sql = format!("LISTEN {}", channel(&self.schema));
        let made = connect(&self.config, &self.tls, &self.schema, &self.shown).and_then(|mut c| {
            c.batch_execute(&sql)
                .map(|()| c)
                .map_err(|e| super::classify(&self.shown, e))
        });
        match made {
            Ok(client) => {
                self.listener = Listener {
                    client: Some(client),
                    retry_at: None,
                    caught_up: None,
                }
            }
            Err(e) => {
                log::debug!("cannot listen for new events, looking for them instead: {e}");
                self.listener.retry_at = Some(Instant::now() + RETRY_LISTEN);
            }
        }
    }

    /// Whether a claim may skip looking for rows: see [`Listener::caught_up`].
    pub(super) fn caught_up(&self) -> bool {
        self.listener.client.is_some()
            && self
                .listener
                .caught_up
                .is_some_and(|until| Instant::now() < until)
    }

    /// Notes a claim's look, made after [`listen`](Self::listen): whether
    /// it took all the rows it could see (fewer than it asked for).
    pub(super) fn note_look(&mut self, took_all: bool) {
        self.listener.caught_up =
            (took_all && self.listener.client.is_some()).then(|| Instant::now() + FALLBACK);
    }

    /// Waits for a commit to the stream, at most `left` and [`FALLBACK`];
    /// true when one woke it. Without a listening connection, waits one
    /// short poll step.
    pub(super) fn wait_for_insert(&mut self, left: Duration) -> bool {
        let Some(client) = self.listener.client.as_mut() else {
            thread::sleep(left.min(POLL_STEP));
            return false;
        };
        let woken = client
            .notifications()
            .timeout_iter(left.min(FALLBACK))
            .next();
        match woken {
            Ok(Some(_)) => {
                self.listener.caught_up = None;
                true
            }
            Ok(None) if !client.is_closed() => false,
            // The server went away (a restart): listen again next time.
            _ => {
                self.listener.client = None;
                false
            }
        }
    }
}
