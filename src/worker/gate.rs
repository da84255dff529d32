//! Which destinations this worker must not send to now: the queue's holds
//! (see [`crate::queue::hold`]) as the reader last read them, at most
//! [`LOOK`] ago — one small read a second, never one per delivery. The
//! reader parks a held destination's new deliveries (due at the hold's
//! start, no attempt spent) and claims none of its retries; a lane about to
//! send to it hands its batch back the same way. Whatever the reason for a
//! hold, this is the one place the worker checks it.
//!
//! One exception: the worker that took an open breaker's probe (see
//! [`crate::breaker`]) lets one delivery through, once per probe — the
//! reader dispatches one, the lane sends one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

use crate::breaker::State;
use crate::queue::Hold;

/// How often the reader reads the holds: every worker stops sending to a
/// destination within about this long of its being held.
pub const LOOK: Duration = Duration::from_secs(1);

/// A held destination, as the worker acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// When its deliveries are parked due: the earliest hold's start.
    pub due_ms: i64,
    /// Why, for the log and `inspect`: `held: paused by …`.
    pub why: String,
    /// When this worker holds its breaker's probe (and nothing else holds
    /// it): the probe's lease end, which names this round of probing.
    pub probe: Option<i64>,
}

impl Closed {
    /// The destination as `holds` hold it, for the worker `me`.
    fn of(holds: &[Hold], me: &str) -> Closed {
        let whys: Vec<String> = holds.iter().map(Hold::why).collect();
        let probe = holds.iter().try_fold(None, |probe, hold| {
            let breaker = hold.breaker()?;
            let mine = breaker.state == State::Probing && breaker.probe_by.as_deref() == Some(me);
            Some(if mine {
                Some(breaker.probe_at_ms)
            } else {
                probe
            })
        });
        Closed {
            due_ms: holds.iter().map(|h| h.since_ms).min().unwrap_or(0),
            why: format!("held: {}", whys.join(", ")),
            probe: probe.flatten(),
        }
    }
}

/// Who lets a probe through: the reader dispatches it, a lane sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Dispatch,
    Send,
}

/// The held destinations by name, shared by the reader, the lanes and the
/// settler.
#[derive(Default)]
pub struct Gate {
    closed: RwLock<BTreeMap<String, Closed>>,
    /// The destinations whose breaker the queue stores (counting failures,
    /// open or probing): a delivered send must tell it.
    counting: RwLock<BTreeSet<String>>,
    /// The probe round each step last let through, by destination.
    probes: Mutex<BTreeMap<(String, Step), i64>>,
    /// Consecutive transient failures this worker's lanes saw, and the
    /// `after` they were counted against, by destination.
    failures: Mutex<BTreeMap<String, (u32, u32)>>,
}

/// What changed when the gate was set.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub closed: Vec<(String, String)>,
    pub opened: Vec<String>,
}

impl Gate {
    /// Takes the holds in force (see [`crate::queue::hold::in_force`]) as
    /// the worker `me` reads them; says which destinations this closed and
    /// which it opened.
    pub fn set(&self, held: &BTreeMap<String, Vec<Hold>>, me: &str) -> Changes {
        let next: BTreeMap<String, Closed> = held
            .iter()
            .filter(|(_, holds)| !holds.is_empty())
            .map(|(name, holds)| (name.clone(), Closed::of(holds, me)))
            .collect();
        let mut gate = self.closed.write().unwrap_or_else(|p| p.into_inner());
        let changes = Changes {
            closed: next
                .iter()
                .filter(|(name, _)| !gate.contains_key(*name))
                .map(|(name, closed)| (name.clone(), closed.why.clone()))
                .collect(),
            opened: gate
                .keys()
                .filter(|name| !next.contains_key(*name))
                .cloned()
                .collect(),
        };
        let held: BTreeSet<String> = next.keys().cloned().collect();
        *gate = next;
        drop(gate);
        // Held, or past `after` (the queue now decides): counted afresh.
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures.retain(|dest, (n, after)| !held.contains(dest) && n < after);
        changes
    }

    /// Counts a transient failure of a send to `dest`: at `after` in a row
    /// this worker stops sending there at once, without waiting for its
    /// settler to tell the queue and the queue to say the breaker is open
    /// (a receiver failing fast would otherwise get hundreds of requests
    /// meanwhile).
    pub fn failed(&self, dest: &str, after: u32, error: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let (n, _) = failures.entry(dest.to_owned()).or_insert((0, after));
        *n += 1;
        let tripped = *n == after;
        drop(failures);
        if tripped {
            let why = format!("held: breaker opening after {after} consecutive failures: {error}");
            let due_ms = crate::event::now_ms();
            let probe = None;
            self.close_now(dest, Closed { due_ms, why, probe });
        }
    }

    /// A send to `dest` was delivered: its failures are counted afresh.
    pub fn delivered(&self, dest: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures.remove(dest);
    }

    /// Whether `dest` is held, and how.
    pub fn closed(&self, dest: &str) -> Option<Closed> {
        let gate = self.closed.read().unwrap_or_else(|p| p.into_inner());
        gate.get(dest).cloned()
    }

    /// The held destinations' names.
    pub fn names(&self) -> BTreeSet<String> {
        let gate = self.closed.read().unwrap_or_else(|p| p.into_inner());
        gate.keys().cloned().collect()
    }

    /// Holds `dest` at once, before the next reading of the queue: the
    /// settler that finds its breaker open stops this worker's sends now.
    pub fn close_now(&self, dest: &str, closed: Closed) {
        let mut gate = self.closed.write().unwrap_or_else(|p| p.into_inner());
        gate.entry(dest.to_owned()).or_insert(closed);
    }

    /// Takes the destinations whose breaker the queue stores.
    pub fn set_counting(&self, names: BTreeSet<String>) {
        *self
            .counting
            .write()
            .unwrap_or_else(PoisonError::into_inner) = names;
    }

    /// Whether `dest`'s breaker is stored (so a delivered send resets it).
    pub fn counting(&self, dest: &str) -> bool {
        let counting = self.counting.read().unwrap_or_else(PoisonError::into_inner);
        counting.contains(dest)
    }

    /// Whether `step` may let one delivery to `dest` through now as its
    /// breaker's probe: true once per probe this worker holds.
    pub fn take_probe(&self, dest: &str, step: Step) -> bool {
        let Some(round) = self.closed(dest).and_then(|c| c.probe) else {
            return false;
        };
        let mut probes = self.probes.lock().unwrap_or_else(PoisonError::into_inner);
        probes.insert((dest.to_owned(), step), round) != Some(round)
    }
}

/// The destinations to claim retries for: those the worker claims for
/// (`claims`: its `--only`, else every one configured), less the held
/// ones; `None` when every one of them is held.
pub fn claimable(claims: &[String], held: &BTreeSet<String>) -> Option<Vec<String>> {
    let open: Vec<String> = claims
        .iter()
        .filter(|name| !held.contains(*name))
        .cloned()
        .collect();
    (!open.is_empty()).then_some(open)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::hold::HoldReason;

    fn pause(since_ms: i64) -> Hold {
        Hold {
            reason: HoldReason::Paused {
                by: "h u pid 1".into(),
            },
            since_ms,
            until_ms: None,
        }
    }

    #[test]
    fn the_gate_says_what_closed_and_what_opened() {
        let gate = Gate::default();
        let held = BTreeMap::from([("webhook".to_owned(), vec![pause(5), pause(3)])]);
        let changes = gate.set(&held, "w1");
        assert_eq!(
            changes.closed,
            [(
                "webhook".to_owned(),
                "held: paused by h u pid 1, paused by h u pid 1".to_owned()
            )]
        );
        assert_eq!(gate.closed("webhook").unwrap().due_ms, 3);
        assert_eq!(gate.closed("slack"), None);
        assert_eq!(gate.set(&held, "w1"), Changes::default(), "nothing new");
        assert!(!gate.take_probe("webhook", Step::Send), "no probe");
        let changes = gate.set(&BTreeMap::new(), "w1");
        assert_eq!(changes.opened, ["webhook"]);
        assert!(gate.names().is_empty());
    }

    #[test]
    fn the_worker_holding_a_probe_lets_one_delivery_through_per_step() {
        let probing = |by: &str, probe_at_ms: i64| Hold {
            reason: crate::queue::hold::HoldReason::Breaker(crate::breaker::Breaker {
                state: State::Probing,
                failures: 10,
                error: "HTTP 503".into(),
                cooldown_ms: 1000,
                probe_at_ms,
                probe_by: Some(by.into()),
            }),
            since_ms: 1,
            until_ms: None,
        };
        let gate = Gate::default();
        let held = |hold| BTreeMap::from([("webhook".to_owned(), vec![hold])]);
        gate.set(&held(probing("w2", 50)), "w1");
        assert!(!gate.take_probe("webhook", Step::Dispatch), "not ours");
        gate.set(&held(probing("w1", 50)), "w1");
        assert!(gate.take_probe("webhook", Step::Dispatch));
        assert!(!gate.take_probe("webhook", Step::Dispatch), "once");
        assert!(gate.take_probe("webhook", Step::Send));
        assert!(!gate.take_probe("webhook", Step::Send), "once");
        // A new lease is a new round.
        gate.set(&held(probing("w1", 90)), "w1");
        assert!(gate.take_probe("webhook", Step::Send));
        // Paused as well: no probe goes.
        gate.set(
            &BTreeMap::from([("webhook".to_owned(), vec![probing("w1", 99), pause(0)])]),
            "w1",
        );
        assert!(!gate.take_probe("webhook", Step::Send));
    }

    #[test]
    fn a_lane_seeing_after_failures_in_a_row_holds_its_destination_at_once() {
        let gate = Gate::default();
        gate.failed("hook", 3, "HTTP 503");
        gate.failed("hook", 3, "HTTP 503");
        gate.delivered("hook");
        gate.failed("hook", 3, "HTTP 503");
        gate.failed("hook", 3, "HTTP 503");
        assert_eq!(gate.closed("hook"), None, "not in a row");
        gate.failed("hook", 3, "HTTP 503");
        let closed = gate.closed("hook").expect("held");
        assert!(
            closed.why.contains("3 consecutive failures: HTTP 503"),
            "{}",
            closed.why
        );
        // The queue decides from then on.
        gate.set(&BTreeMap::new(), "w1");
        assert_eq!(gate.closed("hook"), None);
        gate.failed("hook", 3, "HTTP 503");
        assert_eq!(gate.closed("hook"), None, "counted afresh");
    }

    #[test]
    fn retries_are_claimed_for_the_served_destinations_not_held() {
        let claims = [
            "slack".to_owned(),
            "webhook".to_owned(),
            "segment".to_owned(),
        ];
        let held = BTreeSet::from(["webhook".to_owned()]);
        assert_eq!(claimable(&claims, &BTreeSet::new()), Some(claims.to_vec()));
        assert_eq!(
            claimable(&claims, &held),
            Some(vec!["slack".to_owned(), "segment".to_owned()])
        );
        let only = ["webhook".to_owned()];
        assert_eq!(claimable(&only, &held), None, "everything held");
    }
}
