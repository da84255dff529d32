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
