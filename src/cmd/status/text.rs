//! The table `events status` prints: small sections, each a heading line
//! and, when it lists anything, plain columns.

use super::Status;
use crate::cmd::table;
use crate::dest::DestConfig;
use crate::sanitize::escape;

/// A retry overdue by less than this is simply "due now".
const OVERDUE_MS: i64 = 5_000;

impl Status<'_> {
    /// Small sections, each a heading line and, when it lists anything, a
    /// table.
    pub(super) fn table(&self) -> String {
        let s = &self.stats;
        let mut out = format!("Queue: {}\n", self.location);

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
        table::section(&mut out, stream, &["", "EVENT ID", "TIME"], ends.collect());

        let consumers = match s.consumers.len() {
            0 => "Consumers: none".to_owned(),
            n => format!("Consumers: {n}, {} pending", self.pending()),
        };
        let rows = s.consumers.iter().map(|c| {
            let name = escape(&c.name).into_owned();
            vec![name, c.pending.to_string(), human(c.idle_ms)]
        });
        table::section(
            &mut out,
            consumers,
            &["NAME", "PENDING", "IDLE"],
            rows.collect(),
        );

        let retries = match s.next_retry_ms {
            _ if s.retries == 0 => "Retries: none scheduled".to_owned(),
            None => format!("Retries: {} scheduled", s.retries),
            Some(due) => format!(
                "Retries: {} scheduled, {}",
                s.retries,
                next_retry(due - self.now_ms)
            ),
        };
        table::section(&mut out, retries, &[], Vec::new());

        let dead = match self.dead_total() {
            0 => "Dead letters: none".to_owned(),
            n => format!("Dead letters: {n}"),
        };
        let rows = s.dead.iter().map(|(dest, error, count)| {
            vec![escape(dest).into(), escape(error).into(), count.to_string()]
        });
        table::section(
            &mut out,
            dead,
            &["DESTINATION", "ERROR", "COUNT"],
            rows.collect(),
        );

        let (heading, rows) = match self.config.destinations() {
            Err(e) => (format!("Destinations: cannot be used: {e}"), Vec::new()),
            Ok(dests) => (
                format!("Destinations: {}", dests.len()),
                dests.iter().map(|d| self.destination_row(d)).collect(),
            ),
        };
        let header: &[&str] = match self.rates {
            Some(_) => &[
                "NAME",
                "KIND",
                "RATE",
                "DELIVERED",
                "/S",
                "429S",
                "TARGET",
                "EVENTS",
            ],
            None => &[
                "NAME",
                "KIND",
                "RATE",
                "DELIVERED",
                "429S",
                "TARGET",
                "EVENTS",
            ],
        };
        table::section(&mut out, heading, header, rows);
        out
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
}
