//! Holds: a destination that must not be sent to for now, shared by every
//! worker through the queue. While a destination is held its deliveries
//! wait in the retry set without spending an attempt, parked due at the
//! hold's start, so that once it ends they are claimed first and in event
//! order (the claim's tie-break is the token, which starts with the event's
//! time-ordered id).
//!
//! A hold has a reason and an end: an operator's pause (`events pause`,
//! until `resume` or the end of `--for`) is one; any other reason to stop
//! sending to a destination for a while is another variant of
//! [`HoldReason`], stored beside it under its own [`HoldKind`]. The
//! backends store a hold as JSON text under (destination, kind); what a
//! stored hold means, and whether it is in force, is decided here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::breaker::state::Breaker;

/// Why a destination is held, and since and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub reason: HoldReason,
    /// When the hold began, ms since the epoch: held deliveries are parked
    /// due then.
    pub since_ms: i64,
    /// When it ends by itself, ms since the epoch; `None` until lifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<i64>,
}

/// Why a destination is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HoldReason {
    /// `events pause`: by whom (`host user pid N`).
    Paused { by: String },
    /// The destination's circuit breaker (see [`crate::breaker`]): held
    /// while open or probing; stored while closed too, to count the
    /// consecutive failures every worker sees.
    Breaker(Breaker),
}

/// The kind of a hold: a destination has at most one hold of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HoldKind {
    Pause,
    Breaker,
}

impl HoldKind {
    /// The kind as stored beside the hold.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldKind::Pause => "pause",
            HoldKind::Breaker => "breaker",
        }
    }
}

/// A hold as a backend stores it: destination, kind, JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHold {
    pub dest: String,
    pub kind: String,
    pub json: String,
}

impl Hold {
    /// An operator's pause at `now_ms`, by `by`, until `until_ms` (or until
    /// resumed). Pausing a destination already paused keeps when that pause
    /// began (its deliveries are parked due then) and takes the new end.
    pub fn paused(previous: Option<&Hold>, by: &str, now_ms: i64, until_ms: Option<i64>) -> Hold {
        let since_ms = previous
            .filter(|p| p.kind() == HoldKind::Pause && p.in_force(now_ms))
            .map_or(now_ms, |p| p.since_ms);
        Hold {
            reason: HoldReason::Paused { by: by.to_owned() },
            since_ms,
            until_ms,
        }
    }

    pub fn kind(&self) -> HoldKind {
        match self.reason {
            HoldReason::Paused { .. } => HoldKind::Pause,
            HoldReason::Breaker(_) => HoldKind::Breaker,
        }
    }

    /// Whether the hold keeps its destination from being sent to at `now_ms`
    /// (a breaker only while open or probing).
    pub fn in_force(&self, now_ms: i64) -> bool {
        let held = match &self.reason {
            HoldReason::Paused { .. } => true,
            HoldReason::Breaker(breaker) => breaker.holds(),
        };
        held && self.until_ms.is_none_or(|until| now_ms < until)
    }

    /// Why, in a few words: `paused by host user pid 7`, `breaker open
    /// until … after 10 failures: HTTP 503`.
    pub fn why(&self) -> String {
        match &self.reason {
            HoldReason::Paused { by } => format!("paused by {by}"),
            HoldReason::Breaker(breaker) => breaker.why(),
        }
    }

    /// The breaker, when this is one.
    pub fn breaker(&self) -> Option<&Breaker> {
        match &self.reason {
            HoldReason::Breaker(breaker) => Some(breaker),
            HoldReason::Paused { .. } => None,
        }
    }

    /// The JSON a backend stores.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a hold is plain data")
    }

    /// A stored hold, or why it cannot be read.
    pub fn decode(raw: &RawHold) -> Result<(String, Hold), String> {
        let hold: Hold = serde_json::from_str(&raw.json)
            .map_err(|e| format!("the hold on {} cannot be read: {e}", raw.dest))?;
        if hold.kind().as_str() != raw.kind {
            return Err(format!(
                "the hold on {} is stored as {} but is a {}",
                raw.dest,
                raw.kind,
                hold.kind().as_str()
            ));
        }
        Ok((raw.dest.clone(), hold))
    }
}

/// The destinations held at `now_ms`, each with its holds in force (the
/// earliest begun first).
pub fn in_force(holds: Vec<(String, Hold)>, now_ms: i64) -> BTreeMap<String, Vec<Hold>> {
    let mut held: BTreeMap<String, Vec<Hold>> = BTreeMap::new();
    for (dest, hold) in holds {
        if hold.in_force(now_ms) {
            held.entry(dest).or_default().push(hold);
        }
    }
    for holds in held.values_mut() {
        holds.sort_by_key(|h| h.since_ms);
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pause(since_ms: i64, until_ms: Option<i64>) -> Hold {
        Hold {
            reason: HoldReason::Paused { by: "h u".into() },
            since_ms,
            until_ms,
        }
    }

    #[test]
    fn a_hold_is_in_force_until_its_end() {
        assert!(pause(0, None).in_force(i64::MAX));
        assert!(pause(0, Some(10)).in_force(9));
        assert!(!pause(0, Some(10)).in_force(10));
    }

    #[test]
    fn pausing_again_keeps_the_start_and_takes_the_new_end() {
        let first = Hold::paused(None, "a", 100, Some(200));
        assert_eq!(first.since_ms, 100);
        let again = Hold::paused(Some(&first), "b", 150, Some(900));
        assert_eq!((again.since_ms, again.until_ms), (100, Some(900)));
        assert_eq!(again.why(), "paused by b");
        // One that ended is no longer there to extend.
        let later = Hold::paused(Some(&first), "b", 300, None);
        assert_eq!((later.since_ms, later.until_ms), (300, None));
    }

    #[test]
    fn a_stored_hold_keeps_its_json_form_and_its_kind() {
        let text = r#"{"reason":{"kind":"paused","by":"web-1 ada pid 42"},"since_ms":1700000000000,"until_ms":1700000060000}"#;
        let raw = |kind: &str| RawHold {
            dest: "webhook".into(),
            kind: kind.into(),
            json: text.into(),
        };
        let (dest, hold) = Hold::decode(&raw("pause")).unwrap();
        assert_eq!(dest, "webhook");
        assert_eq!(hold.encode(), text);
        assert!(Hold::decode(&raw("other")).is_err());
        let broken = RawHold {
            json: "{".into(),
            ..raw("pause")
        };
        assert!(Hold::decode(&broken).unwrap_err().contains("webhook"));
    }

    #[test]
    fn only_holds_in_force_count() {
        let held = in_force(
            vec![
                ("a".into(), pause(5, None)),
                ("b".into(), pause(0, Some(10))),
            ],
            20,
        );
        assert_eq!(held.keys().collect::<Vec<_>>(), ["a"]);
    }
}
