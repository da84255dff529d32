//! A destination's breaker as the queue stores it (inside a hold of kind
//! `breaker`), and how it reads in `status`, `inspect` and the log.

use serde::{Deserialize, Serialize};

use crate::event::format_ts_ms;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Sending; `failures` counts the consecutive transient failures.
    Closed,
    /// Held until `probe_at_ms`, then one probe.
    Open,
    /// Held while `probe_by` sends the one probe (its lease ends at
    /// `probe_at_ms`: past that, another worker takes the probe over).
    Probing,
}

/// A destination's breaker as stored in the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breaker {
    pub state: State,
    /// Consecutive transient failures.
    pub failures: u32,
    /// The latest failure's error.
    #[serde(default)]
    pub error: String,
    /// The cooldown in force: a failed probe doubles it.
    #[serde(default)]
    pub cooldown_ms: i64,
    /// Open: when the cooldown ends. Probing: when the probe's lease ends.
    #[serde(default)]
    pub probe_at_ms: i64,
    /// Probing: the worker sending the probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_by: Option<String>,
}

impl Breaker {
    /// Whether it holds its destination's deliveries.
    pub fn holds(&self) -> bool {
        self.state != State::Closed
    }

    /// In a few words, for `status`, `inspect` and the log.
    pub fn why(&self) -> String {
        let after = format!(
            "after {} {}: {}",
            self.failures,
            if self.failures == 1 {
                "failure"
            } else {
                "failures"
            },
            self.error
        );
        match self.state {
            State::Closed => format!("breaker closed, {} consecutive failures", self.failures),
            State::Open => format!(
                "breaker open until {} {after}",
                format_ts_ms(self.probe_at_ms)
            ),
            State::Probing => format!("breaker probing {after}"),
        }
    }

    /// The state's name: `closed`, `open` or `probing`.
    pub fn state_name(&self) -> &'static str {
        match self.state {
            State::Closed => "closed",
            State::Open => "open",
            State::Probing => "probing",
        }
    }
}
