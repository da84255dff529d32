//! The reader's chores between reads: holding the consumer name (and
//! taking it over from a holder of this host that died), renewing the claims
//! in flight, raising the dead-letter alerts windows ended owing, trimming
//! history and dead letters to their retentions, and reading which
//! destinations are held ([`super::gate`]).

use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use super::gate;
use super::reader::{Reader, Timers};
use crate::alert;
use crate::breaker;
use crate::event::now_ms;
use crate::queue::{DeadFilter, Hold, HoldKind, QueueError, RawHold, hold};
use crate::sanitize::escape;

/// How often history and dead letters are trimmed to their retentions.
const TRIM_EVERY: Duration = Duration::from_secs(600);
/// How often alert windows that ended are asked for the dead letters they
/// counted, at most: an alert window's remainder is reported this long
/// after it ends at the latest (sooner for a short window).
const ALERTS_EVERY: Duration = Duration::from_secs(30);

impl Reader<'_> {
    /// Does the chores whose time has come, and sets when each is next due.
    pub(super) fn chores(
        &mut self,
        timers: &mut Timers,
        consumer: &str,
        holder: &str,
    ) -> Result<(), crate::Error> {
        let now = Instant::now();
        if now >= timers.renewal {
            self.renew(consumer, holder)?;
            timers.renewal = now + self.renew_every();
        }
        if now >= timers.trim {
            self.trim();
            timers.trim = now + TRIM_EVERY;
        }
        if now >= timers.alerts {
            self.raise_owed_alerts();
            timers.alerts = now + self.alerts_every();
        }
        if now >= timers.holds {
            if self.look_at_holds() {
                // Released: claim its held deliveries now.
                timers.retries = now;
            }
            timers.holds = now + gate::LOOK;
        }
        Ok(())
    }

    /// Reads which destinations are held into the gate (the last reading
    /// stands when the queue does not answer), taking the probe of a
    /// breaker whose cooldown ended; true when one was released.
    pub(super) fn look_at_holds(&mut self) -> bool {
        let raw = match self.queue.holds_raw() {
            Ok(raw) => raw,
            Err(e) => {
                log::debug!("cannot read which destinations are held: {e}");
                return false;
            }
        };
        let mut holds = Vec::new();
        let mut probes = Vec::new();
        for raw in &raw {
            match Hold::decode(raw) {
                Ok((dest, hold)) => match self.breaker_step(&dest, raw, hold) {
                    Step::Keep(hold) => holds.push((dest, hold)),
                    Step::Probe(hold) => {
                        probes.push(dest.clone());
                        holds.push((dest, hold));
                    }
                    Step::Drop => {}
                },
                Err(why) => log::warn!("{}", escape(&why)),
            }
        }
        let counting = holds
            .iter()
            .filter(|(_, h)| h.breaker().is_some())
            .map(|(dest, _)| dest.clone())
            .collect();
        self.gate.set_counting(counting);
        let held = hold::in_force(holds, now_ms());
        let changes = self.gate.set(&held, &self.worker.me());
        self.say_changes(&changes);
        self.set_held_metrics(&held);
        for dest in probes {
            self.claim_probe(&dest);
        }
        !changes.opened.is_empty()
    }

    /// What this worker does with `dest`'s stored `hold`: a breaker turned
    /// off by the config is removed; one whose cooldown ended, on a
    /// destination this worker sends to, is probed (if it takes the probe
    /// before any other worker does).
    fn breaker_step(&mut self, dest: &str, raw: &RawHold, hold: Hold) -> Step {
        if hold.breaker().is_none() {
            return Step::Keep(hold);
        }
        let Some(route) = self.current.routes.named(dest) else {
            return Step::Keep(hold);
        };
        let (off, serves) = (
            route.breaker().is_none(),
            self.routes[route.id()].sender.is_some(),
        );
        if off {
            return match self
                .queue
                .swap_hold(dest, HoldKind::Breaker, Some(&raw.json), None)
            {
                Ok(true) => {
                    log::info!("{}: breaker off; its deliveries are released", escape(dest));
                    Step::Drop
                }
                _ => Step::Keep(hold),
            };
        }
        let lease = self.worker.config.delivery.claim_lease;
        let Some(probing) = serves
            .then(|| breaker::take_probe(&hold, &self.worker.me(), now_ms(), lease))
            .flatten()
        else {
            return Step::Keep(hold);
        };
        match self
            .queue
            .swap_hold(dest, HoldKind::Breaker, Some(&raw.json), Some(&probing))
        {
            Ok(true) => {
                log::info!("{}: breaker cooldown over, sending one probe", escape(dest));
                Step::Probe(probing)
            }
            Ok(false) => Step::Keep(hold),
            Err(e) => {
                log::debug!("cannot take the probe of {}: {e}", escape(dest));
                Step::Keep(hold)
            }
        }
    }

    /// Claims one delivery waiting for `dest` to send as its breaker's
    /// probe; when none waits, the next new one is the probe.
    fn claim_probe(&mut self, dest: &str) {
        if self.room() == 0 {
            return;
        }
        match self
            .queue
            .claim_retries(now_ms(), 1, std::slice::from_ref(&dest.to_owned()))
        {
            Ok(claims) => self.dispatch_retries(claims),
            Err(e) => log::debug!("cannot claim a probe for {}: {e}", escape(dest)),
        }
    }

    fn say_changes(&self, changes: &gate::Changes) {
        for (name, why) in &changes.closed {
            log::info!(
                "{}: {}; its deliveries wait, no attempt spent",
                escape(name),
                escape(why)
            );
        }
        for name in &changes.opened {
            log::info!("{} is no longer held: sending what waited", escape(name));
        }
    }

    fn set_held_metrics(&mut self, held: &BTreeMap<String, Vec<Hold>>) {
        let Some(metrics) = &self.worker.metrics else {
            return;
        };
        for route in self.current.routes.iter() {
            let holds = held.get(route.name());
            let has = |kind| holds.is_some_and(|h| h.iter().any(|h| h.kind() == kind));
            let waiting = match holds {
                Some(_) => self.queue.waiting(route.name()).unwrap_or(0),
                None => 0,
            };
            metrics.set_held(route.id(), has(HoldKind::Pause), waiting);
            metrics.set_breaker_open(route.id(), has(HoldKind::Breaker));
        }
    }

    /// Takes the consumer name: it is ours alone while we run, as two
    /// workers under one name would each take over what the other is
    /// delivering. False when stopped first.
    pub(super) fn take_name(&mut self, consumer: &str, holder: &str) -> Result<bool, crate::Error> {
        let lease = self.worker.config.delivery.claim_lease;
        while !self.stopping() {
            let taken = self.until_available(|q| {
                match q.hold_consumer(consumer, holder, lease) {
                    // Killed on this very host (SIGKILL, OOM) and restarted
                    // under its name: the holder is gone, no need to wait
                    // out its lease.
                    Err(QueueError::ConsumerHeld(held)) if died_here(&held.holder) => {
                        log::info!(
                            "taking over the consumer name {consumer} from {}, which is no longer running",
                            held.holder
                        );
                        q.release_consumer(consumer, &held.holder).map(|()| false)
                    }
                    other => other.map(|()| true),
                }
            })?;
            if taken == Some(true) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Claims are renewed when a third of the lease has passed, so a slow
    /// delivery never lets its lease run out.
    pub(super) fn renew_every(&self) -> Duration {
        self.worker.config.delivery.claim_lease / 3
    }

    /// Renews the consumer name's lease and the claims still in flight.
    pub(super) fn renew(&mut self, consumer: &str, holder: &str) -> Result<(), crate::Error> {
        let lease = self.worker.config.delivery.claim_lease;
        match self.queue.hold_consumer(consumer, holder, lease) {
            Ok(()) => {}
            // Out of reach for longer than the lease, another worker
            // took the name: carrying on would deliver twice.
            Err(e @ QueueError::ConsumerHeld(_)) => return Err(e.into()),
            Err(e) => log::warn!("cannot renew the consumer name {consumer}: {e}"),
        }
        self.renew_claims();
        Ok(())
    }

    pub(super) fn renew_claims(&mut self) {
        let (entries, retries) = self.held.to_renew(self.renew_every());
        if entries.is_empty() && retries.is_empty() {
            return;
        }
        let consumer = &self.worker.options.consumer;
        match self.queue.renew(consumer, &entries, &retries) {
            Ok(()) => log::debug!(
                "renewed the claims on {} entries and {} retries still in flight",
                entries.len(),
                retries.len()
            ),
            Err(e) => log::warn!("cannot renew the claims still in flight: {e}"),
        }
    }

    /// How often to look for alerts owed: a tenth of the window, at most
    /// [`ALERTS_EVERY`]; never, in effect, with alerts off.
    pub(super) fn alerts_every(&self) -> Duration {
        let delivery = &self.worker.config.delivery;
        if delivery.alerts {
            (delivery.alert_window / 10).clamp(Duration::from_millis(100), ALERTS_EVERY)
        } else {
            Duration::from_secs(86_400 * 365)
        }
    }

    /// Raises the alerts that windows ended owing: the dead letters counted
    /// while a window was open, when no later one came to carry them.
    pub(super) fn raise_owed_alerts(&mut self) {
        let window = self.worker.config.delivery.alert_window;
        let owed = match self.queue.alerts_due(window) {
            Ok(owed) => owed,
            Err(e) => return log::warn!("cannot look for dead-letter alerts owed: {e}"),
        };
        for tally in owed {
            let alert = alert::event(&tally.dest, tally.count, &tally.error);
            if let Err(e) = self.queue.append(&[alert]) {
                log::warn!(
                    "cannot raise the dead-letter alert about {}: {e}",
                    escape(&tally.dest)
                );
            }
        }
    }

    pub(super) fn trim(&mut self) {
        let before = now_ms() - self.worker.config.delivery.retention.as_millis() as i64;
        match self.queue.trim(before) {
            Ok(0) => {}
            Ok(n) => log::info!("trimmed {n} delivered events older than the retention"),
            Err(e) => log::warn!("cannot trim history: {e}"),
        }
        let before = now_ms() - self.worker.config.delivery.dead_retention.as_millis() as i64;
        match self.queue.purge_dead(&DeadFilter::before(before)) {
            Ok(0) => {}
            Ok(n) => log::info!("removed {n} dead letters older than EVENTS_DEAD_RETENTION"),
            Err(e) => log::warn!("cannot remove old dead letters: {e}"),
        }
    }
}

/// What the reader does with a stored hold.
enum Step {
    Keep(Hold),
    /// This worker took the breaker's probe: the hold as it now stands.
    Probe(Hold),
    /// Removed from the queue.
    Drop,
}

/// The stable name of this process, for the consumer name's lease.
pub(super) fn holder() -> String {
    format!("{} pid {}", host(), std::process::id())
}

fn host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Whether `holder` (see [`holder`]) was a process of this host that no
/// longer runs.
fn died_here(holder: &str) -> bool {
    holder_pid_on(holder, &host()).is_some_and(|pid| !process_alive(pid))
}

/// The pid in `holder` when it names a process on `host`.
fn holder_pid_on(holder: &str, host: &str) -> Option<u32> {
    let (their_host, pid) = holder.rsplit_once(" pid ")?;
    (their_host == host).then(|| pid.parse().ok()).flatten()
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // Signal 0 checks for the process without touching it; EPERM means it
    // exists under another user.
    // SAFETY: kill with signal 0 sends nothing and has no memory effects.
    let found = unsafe { libc::kill(pid, 0) } == 0;
    found || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_holder_of_this_host_that_is_gone_is_taken_over() {
        assert_eq!(holder_pid_on("vm-1 pid 42", "vm-1"), Some(42));
        assert_eq!(holder_pid_on("vm-1 pid 42", "vm-2"), None);
        assert_eq!(holder_pid_on("a pid b pid 7", "a pid b"), Some(7));
        assert_eq!(holder_pid_on("garbage", "vm-1"), None);
        assert!(process_alive(std::process::id()));
        assert!(!died_here(&holder()), "this process is alive");
    }
}
