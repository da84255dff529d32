//! Which destinations this worker must not send to now: the queue's holds
//! (see [`crate::queue::hold`]) as the reader last read them, at most
//! [`LOOK`] ago — one small read a second, never one per delivery. The
//! reader parks a held destination's new deliveries (due at the hold's
//! start, no attempt spent) and claims none of its retries; a lane about to
//! send to it hands its batch back the same way. Whatever the reason for a
//! hold, this is the one place the worker checks it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;
use std::time::Duration;

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
}

impl Closed {
    fn of(holds: &[Hold]) -> Closed {
        let whys: Vec<String> = holds.iter().map(Hold::why).collect();
        Closed {
            due_ms: holds.iter().map(|h| h.since_ms).min().unwrap_or(0),
            why: format!("held: {}", whys.join(", ")),
        }
    }
}

/// The held destinations by name, shared by the reader and the lanes.
#[derive(Default)]
pub struct Gate(RwLock<BTreeMap<String, Closed>>);

/// What changed when the gate was set.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub closed: Vec<(String, String)>,
    pub opened: Vec<String>,
}

impl Gate {
    /// Takes the holds in force (see [`crate::queue::hold::in_force`]);
    /// says which destinations this closed and which it opened.
    pub fn set(&self, held: &BTreeMap<String, Vec<Hold>>) -> Changes {
        let next: BTreeMap<String, Closed> = held
            .iter()
            .filter(|(_, holds)| !holds.is_empty())
            .map(|(name, holds)| (name.clone(), Closed::of(holds)))
            .collect();
        let mut gate = self.0.write().unwrap_or_else(|p| p.into_inner());
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
        *gate = next;
        changes
    }

    /// Whether `dest` is held, and how.
    pub fn closed(&self, dest: &str) -> Option<Closed> {
        let gate = self.0.read().unwrap_or_else(|p| p.into_inner());
        gate.get(dest).cloned()
    }

    /// The held destinations' names.
    pub fn names(&self) -> BTreeSet<String> {
        let gate = self.0.read().unwrap_or_else(|p| p.into_inner());
        gate.keys().cloned().collect()
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
        let changes = gate.set(&held);
        assert_eq!(
            changes.closed,
            [(
                "webhook".to_owned(),
                "held: paused by h u pid 1, paused by h u pid 1".to_owned()
            )]
        );
        assert_eq!(gate.closed("webhook").unwrap().due_ms, 3);
        assert_eq!(gate.closed("slack"), None);
        assert_eq!(gate.set(&held), Changes::default(), "nothing new");
        let changes = gate.set(&BTreeMap::new());
        assert_eq!(changes.opened, ["webhook"]);
        assert!(gate.names().is_empty());
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
