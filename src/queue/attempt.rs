//! Attempt records: what happened at each delivery attempt, kept so that
//! "did the churn for ada@ reach Segment?" has an answer after the fact
//! (`events inspect`). The settler writes them with the settlement they
//! belong to; both backends keep them as long as the history
//! (`EVENTS_RETENTION`) and `forget` erases them with their event.

use serde::{Deserialize, Serialize};

/// Where one delivery attempt left its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The destination took it.
    Delivered,
    /// It failed (or was rate limited) and is scheduled again.
    Retrying,
    /// It gave up: the delivery is a dead letter.
    Dead,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retrying => "retrying",
            Outcome::Dead => "dead",
        }
    }

    /// The stored name back; `None` for anything else.
    pub fn parse(text: &str) -> Option<Outcome> {
        match text {
            "delivered" => Some(Outcome::Delivered),
            "retrying" => Some(Outcome::Retrying),
            "dead" => Some(Outcome::Dead),
            _ => None,
        }
    }
}

/// One delivery attempt of one event to one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub event_id: String,
    pub dest: String,
    /// When the attempt was settled, ms since the Unix epoch.
    pub at_ms: i64,
    pub outcome: Outcome,
    /// The HTTP status the destination answered, when it answered one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it failed; `None` once delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long the send took, ms.
    pub duration_ms: u64,
    /// The backend's position of the event's stream entry, when the attempt
    /// came from the stream (not from a retry): where `inspect` finds the
    /// event without reading the whole history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
}

/// Where a delivery of one event to one destination stands, as `inspect`
/// shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestState {
    Delivered,
    /// Waiting in the retry set, due then (ms since the epoch); `None`
    /// when the last attempt said so but the retry set no longer holds it.
    Retrying(Option<i64>),
    Dead,
    /// Routed there, and no attempt yet: a worker has not got to it.
    Waiting,
    /// The current configuration sends it nowhere near there.
    NotRouted,
}

impl DestState {
    /// Decides from the destination's attempt records (oldest first),
    /// whether its delivery is in the retry set (and due when), and
    /// whether the current routing sends the event there. A delivery in
    /// the retry set is retrying whatever the records say (a dead letter
    /// replayed); otherwise the last record says.
    pub fn of(records: &[&AttemptRecord], due_ms: Option<i64>, routed: bool) -> DestState {
        if due_ms.is_some() {
            return DestState::Retrying(due_ms);
        }
        match records.last().map(|r| r.outcome) {
            Some(Outcome::Delivered) => DestState::Delivered,
            Some(Outcome::Dead) => DestState::Dead,
            Some(Outcome::Retrying) => DestState::Retrying(None),
            None if routed => DestState::Waiting,
            None => DestState::NotRouted,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DestState::Delivered => "delivered",
            DestState::Retrying(_) => "retrying",
            DestState::Dead => "dead",
            DestState::Waiting => "waiting",
            DestState::NotRouted => "not routed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outcome: Outcome) -> AttemptRecord {
        AttemptRecord {
            event_id: "e".into(),
            dest: "slack".into(),
            at_ms: 1,
            outcome,
            status: None,
            error: None,
            duration_ms: 0,
            entry: None,
        }
    }

    #[test]
    fn the_retry_set_wins_then_the_last_record_then_the_routing() {
        let (failed, delivered, dead) = (
            record(Outcome::Retrying),
            record(Outcome::Delivered),
            record(Outcome::Dead),
        );
        assert_eq!(
            DestState::of(&[&failed, &delivered], None, true),
            DestState::Delivered
        );
        assert_eq!(
            DestState::of(&[&failed, &dead], None, false),
            DestState::Dead
        );
        assert_eq!(
            DestState::of(&[&dead], Some(7), true),
            DestState::Retrying(Some(7)),
            "a replayed dead letter is retrying"
        );
        assert_eq!(
            DestState::of(&[&failed], None, true),
            DestState::Retrying(None)
        );
        assert_eq!(DestState::of(&[], None, true), DestState::Waiting);
        assert_eq!(DestState::of(&[], None, false), DestState::NotRouted);
    }

    #[test]
    fn outcomes_read_back_what_they_write() {
        for outcome in [Outcome::Delivered, Outcome::Retrying, Outcome::Dead] {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
        }
        assert_eq!(Outcome::parse("sent"), None);
    }
}
