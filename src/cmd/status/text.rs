//! The table `events status` prints: small sections, each a heading line
//! and, when it lists anything, plain columns.

use super::Status;
use crate::cmd::table;
use crate::dest::DestConfig;
use crate::event::format_ts_ms;
use crate::sanitize::escape;

/// A retry overdue by less than this is simply "due now".
const OVERDUE_MS: i64 = 5_000;

impl Status<'_> {
    /// Small sections, each a heading line and, when it lists anything, a
    /// table.
    pub(super) fn table(&self) -> String {
        let mut out = format!("Queue: {}\n", self.location);
        self.stream_section(&mut out);
        self.consumers_section(&mut out);
        let s = &self.stats;
        let held: u64 = self.held_deliveries();
        let mut retries = match held {
            // Held deliveries are due since their hold began: not overdue.
            0 => retries_heading(s.retries, s.next_retry_ms, self.now_ms),
            held => format!("Retries: {} scheduled, {held} of them held", s.retries),
        };
        if let Some(unconfigured) = self.unconfigured.filter(|&n| n > 0) {
            retries.push_str(&format!(
                " ({unconfigured} held: destination not in config)"
            ));
        }
        table::section(&mut out, retries, &[], Vec::new());
        self.held_section(&mut out);
        self.breakers_section(&mut out);
        self.dead_section(&mut out);
        self.destinations_section(&mut out);
        out
    }

    /// How long the stream is, how much of it is unread, and its two ends.
    fn stream_section(&self, out: &mut String) {
        let s = &self.stats;
        let ends = [("oldest", &s.oldest), ("newest", &s.newest)];
        let ends = ends.iter().filter_map(|(label, end)| {
            let (id, ts) = end.as_ref()?;
            Some(vec![
                label.to_string(),
                escape(id).into(),
                escape(ts).into(),
            ])
        });
        let stream = match s.length {
            0 => "Stream: empty".to_owned(),
            n => format!("Stream: {n} events, {} unread", s.lag),
        };
        table::section(out, stream, &["", "EVENT ID", "TIME"], ends.collect());
    }

    /// Each consumer with what it holds and how long it has been idle.
    fn consumers_section(&self, out: &mut String) {
        let s = &self.stats;
        let consumers = match s.consumers.len() {
            0 => "Consumers: none".to_owned(),
            n => format!("Consumers: {n}, {} pending", self.pending()),
        };
        let rows = s.consumers.iter().map(|c| {
            let name = escape(&c.name).into_owned();
            vec![name, c.pending.to_string(), human(c.idle_ms)]
        });
        table::section(out, consumers, &["NAME", "PENDING", "IDLE"], rows.collect());
    }

    /// Deliveries waiting for held destinations, each destination once.
    fn held_deliveries(&self) -> u64 {
        let mut seen = std::collections::BTreeSet::new();
        self.held
            .iter()
            .filter(|h| seen.insert(&h.dest))
            .map(|h| h.waiting)
            .sum()
    }

    /// The destinations held, when any is: since and until when, by whom,
    /// and how many deliveries wait.
    fn held_section(&self, out: &mut String) {
        if self.held.is_empty() {
            return;
        }
        let rows = self.held.iter().map(|held| {
            let hold = &held.hold;
            let until = hold.until_ms.map_or("resumed".to_owned(), |until| {
                format!(
                    "{} (in {})",
                    format_ts_ms(until),
                    human((until - self.now_ms).max(0) as u64)
                )
            });
            vec![
                escape(&held.dest).into_owned(),
                escape(&hold.why()).into_owned(),
                format!(
                    "{} ({} ago)",
                    format_ts_ms(hold.since_ms),
                    human((self.now_ms - hold.since_ms).max(0) as u64)
                ),
                until,
                held.waiting.to_string(),
            ]
        });
        let heading = format!("Held: {}", self.held.len());
        let header = ["DESTINATION", "WHY", "SINCE", "UNTIL", "WAITING"];
        table::section(out, heading, &header, rows.collect());
    }

    /// The breakers not closed with a clean count, when any is: open until
    /// when, probing, or the consecutive failures counted so far.
    fn breakers_section(&self, out: &mut String) {
        let rows: Vec<Vec<String>> = self
            .breakers
            .iter()
            .filter_map(|held| {
                let breaker = held.hold.breaker()?;
                let state = match breaker.state {
                    crate::breaker::State::Open => format!(
                        "open until {} (in {})",
                        format_ts_ms(breaker.probe_at_ms),
                        human((breaker.probe_at_ms - self.now_ms).max(0) as u64)
                    ),
                    _ => breaker.state_name().to_owned(),
                };
                Some(vec![
                    escape(&held.dest).into_owned(),
                    state,
                    breaker.failures.to_string(),
                    held.waiting.to_string(),
                    escape(&breaker.error).into_owned(),
                ])
            })
            .collect();
        if rows.is_empty() {
            return;
        }
        let heading = format!("Breakers: {}", rows.len());
        let header = ["DESTINATION", "STATE", "FAILURES", "HELD", "LAST ERROR"];
        table::section(out, heading, &header, rows);
    }

    /// The dead letters, counted by destination and error.
    fn dead_section(&self, out: &mut String) {
        let dead = match self.dead_total() {
            0 => "Dead letters: none".to_owned(),
            n => format!("Dead letters: {n}"),
        };
        let rows = self.stats.dead.iter().map(|(dest, error, count)| {
            vec![escape(dest).into(), escape(error).into(), count.to_string()]
        });
        table::section(
            out,
            dead,
            &["DESTINATION", "ERROR", "COUNT"],
            rows.collect(),
        );
    }

    /// Every configured destination, one row each, or why none can be used.
    fn destinations_section(&self, out: &mut String) {
        let (heading, rows) = match self.config.destinations() {
            Err(e) => (format!("Destinations: cannot be used: {e}"), Vec::new()),
            Ok(dests) => (
                format!("Destinations: {}", dests.len()),
                dests.iter().map(|d| self.destination_row(d)).collect(),
            ),
        };
        let header = destinations_header(self.rates.is_some());
        table::section(out, heading, header, rows);
    }

    /// A destination's row: what it is, its limit, what it did (and, when
    /// watching, how fast), where it sends and what it takes.
    fn destination_row(&self, d: &DestConfig) -> Vec<String> {
        let tally = self.tally(&d.name);
        let rate = d
            .rate_limit()
            .map_or("unlimited".to_owned(), |r| r.to_string());
        let mut row = vec![
            d.name.clone(),
            d.kind().name().to_owned(),
            rate,
            tally.delivered.to_string(),
        ];
        if self.rates.is_some() {
            row.push(
                self.per_second(&d.name)
                    .map_or("-".to_owned(), |n| format!("{n:.1}")),
            );
        }
        row.extend([
            tally.rate_limited.to_string(),
            d.target(),
            d.events.join(" "),
        ]);
        row
    }
}

/// `Retries: none scheduled`, or how many are and when the next is due.
fn retries_heading(retries: u64, next_retry_ms: Option<i64>, now_ms: i64) -> String {
    match next_retry_ms {
        _ if retries == 0 => "Retries: none scheduled".to_owned(),
        None => format!("Retries: {retries} scheduled"),
        Some(due) => format!("Retries: {retries} scheduled, {}", next_retry(due - now_ms)),
    }
}

/// The destinations' columns; deliveries a second only while watching.
fn destinations_header(watching: bool) -> &'static [&'static str] {
    if watching {
        &[
            "NAME",
            "KIND",
            "RATE",
            "DELIVERED",
            "/S",
            "429S",
            "TARGET",
            "EVENTS",
        ]
    } else {
        &[
            "NAME",
            "KIND",
            "RATE",
            "DELIVERED",
            "429S",
            "TARGET",
            "EVENTS",
        ]
    }
}

/// `next retry in 2m`, `next retry due now`, or overdue (no worker running?).
fn next_retry(in_ms: i64) -> String {
    if in_ms > 0 {
        format!("next retry in {}", human(in_ms.unsigned_abs()))
    } else if -in_ms < OVERDUE_MS {
        "next retry due now".to_owned()
    } else {
        format!(
            "next retry overdue by {} (is a worker running?)",
            human(in_ms.unsigned_abs())
        )
    }
}

/// A duration in its largest whole unit: `45s`, `3m`, `5h`, `12d`.
fn human(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..172_800 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_say_them() {
        assert_eq!(human(999), "0s");
        assert_eq!(human(3_000), "3s");
        assert_eq!(human(125_000), "2m");
        assert_eq!(human(3 * 3_600_000), "3h");
        assert_eq!(human(9 * 86_400_000), "9d");
        assert_eq!(next_retry(120_000), "next retry in 2m");
        assert_eq!(next_retry(-1_000), "next retry due now");
        assert!(next_retry(-600_000).starts_with("next retry overdue by 10m"));
    }

    #[test]
    fn the_retries_heading_says_how_many_and_when_the_next_is_due() {
        let now = 1_700_000_000_000;
        assert_eq!(retries_heading(0, None, now), "Retries: none scheduled");
        assert_eq!(
            retries_heading(0, Some(now + 60_000), now),
            "Retries: none scheduled"
        );
        assert_eq!(retries_heading(3, None, now), "Retries: 3 scheduled");
        assert_eq!(
            retries_heading(3, Some(now + 120_000), now),
            "Retries: 3 scheduled, next retry in 2m"
        );
    }

    #[test]
    fn deliveries_a_second_are_a_column_only_while_watching() {
        assert!(destinations_header(true).contains(&"/S"));
        assert!(!destinations_header(false).contains(&"/S"));
        assert_eq!(destinations_header(true).len(), 8);
        assert_eq!(destinations_header(false).len(), 7);
    }
}
