//! Digests: one message summarising a window of history per event type, for
//! a daily report from cron. This module only counts and words the summary;
//! `events digest` reads the history and sends the lines.
//!
//! Per type, in order of most events first (then by name):
//! - the number of events;
//! - the sum of every integer field the catalog declares, labelled by the
//!   field's name: a name ending in `_count` loses that ending and gains an
//!   `s` (`row_count` → `rows`), any other keeps its name, underscores read
//!   as spaces (`seats` → `seats`, `amount_cents` → `amount cents`);
//! - for every string field whose values repeat, its three commonest
//!   values seen at least twice, each with its count.
//!
//! Each line is a message template whose own text is ours and whose values
//! (type names, field names, payload values) are fields, so each destination
//! escapes them as it escapes any message.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use crate::catalog::{Catalog, FieldType};
use crate::event::{Event, format_ts_ms};
use crate::template::{RenderError, Style, Template};

/// How many values of a string field are shown.
const TOP: usize = 3;

/// What one event type did in the window.
#[derive(Debug, Default)]
struct TypeTally {
    count: u64,
    /// Each declared integer field's sum, in catalog order.
    sums: Vec<(String, i128)>,
    /// Each declared string field's values and how often each was seen.
    values: Vec<(String, HashMap<String, u64>)>,
}

/// The summary of a window, built one event at a time.
#[derive(Debug)]
pub struct Digest {
    from_ms: i64,
    until_ms: i64,
    types: BTreeMap<String, TypeTally>,
}

impl Digest {
    /// An empty digest of the window `from_ms <= ts < until_ms`.
    pub fn new(from_ms: i64, until_ms: i64) -> Digest {
        Digest {
            from_ms,
            until_ms,
            types: BTreeMap::new(),
        }
    }

    /// Counts `event`, with its fields as `catalog` declares them; a type
    /// the catalog no longer knows is only counted.
    pub fn add(&mut self, event: &Event, catalog: &Catalog) {
        let tally = self.types.entry(event.kind.clone()).or_insert_with(|| {
            let mut tally = TypeTally::default();
            for (name, kind) in catalog.get(&event.kind).map_or(&[][..], |s| &s.fields) {
                match kind {
                    FieldType::Integer { .. } => tally.sums.push((name.clone(), 0)),
                    FieldType::String => tally.values.push((name.clone(), HashMap::new())),
                    FieldType::Number | FieldType::Boolean => {}
                }
            }
            tally
        });
        tally.count += 1;
        for (name, sum) in &mut tally.sums {
            let value = event.payload.get(name);
            if let Some(n) = value.and_then(Value::as_i64) {
                *sum += i128::from(n);
            } else if let Some(n) = value.and_then(Value::as_u64) {
                *sum += i128::from(n);
            }
        }
        for (name, seen) in &mut tally.values {
            if let Some(text) = event.payload.get(name).and_then(Value::as_str) {
                *seen.entry(text.to_owned()).or_default() += 1;
            }
        }
    }

    /// Events counted.
    pub fn total(&self) -> u64 {
        self.types.values().map(|t| t.count).sum()
    }

    /// The message: a heading, then one line per type, values escaped for
    /// `style`.
    pub fn lines(&self, style: Style) -> Result<Vec<String>, RenderError> {
        let mut lines = Vec::with_capacity(self.types.len() + 1);
        let mut heading = Line::default();
        heading.text(&format!(
            "Digest {} to {} UTC: ",
            short_time(self.from_ms),
            short_time(self.until_ms)
        ));
        heading.number(self.total());
        heading.text(if self.total() == 1 {
            " event"
        } else {
            " events"
        });
        lines.push(heading.render(style)?);
        let mut types: Vec<(&String, &TypeTally)> = self.types.iter().collect();
        types.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
        for (kind, tally) in types {
            lines.push(type_line(kind, tally).render(style)?);
        }
        Ok(lines)
    }
}

/// `import.completed: 12 (3,345 rows); top importer_name: CRM (7), Sheets (3)`.
fn type_line(kind: &str, tally: &TypeTally) -> Line {
    let mut line = Line::default();
    line.value(kind);
    line.text(": ");
    line.number(tally.count);
    for (i, (field, sum)) in tally.sums.iter().enumerate() {
        line.text(if i == 0 { " (" } else { ", " });
        line.number(*sum);
        line.text(" ");
        line.value(&label(field));
    }
    if !tally.sums.is_empty() {
        line.text(")");
    }
    for (field, seen) in &tally.values {
        let top = top_values(seen);
        if top.is_empty() {
            continue;
        }
        line.text("; top ");
        line.value(field);
        line.text(": ");
        for (i, (value, count)) in top.into_iter().enumerate() {
            if i > 0 {
                line.text(", ");
            }
            line.value(value);
            line.text(" (");
            line.number(count);
            line.text(")");
        }
    }
    line
}

/// The words for a sum of `field`: see the module's rule.
pub fn label(field: &str) -> String {
    match field.strip_suffix("_count").filter(|s| !s.is_empty()) {
        Some(stem) => format!("{}s", stem.replace('_', " ")),
        None => field.replace('_', " "),
    }
}

/// The commonest values seen at least twice, most first, ties by value.
fn top_values(seen: &HashMap<String, u64>) -> Vec<(&str, u64)> {
    let mut repeated: Vec<(&str, u64)> = seen
        .iter()
        .filter(|(_, n)| **n >= 2)
        .map(|(v, n)| (v.as_str(), *n))
        .collect();
    repeated.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    repeated.truncate(TOP);
    repeated
}

/// `2026-11-27 09:00`, in UTC.
fn short_time(ms: i64) -> String {
    let full = format_ts_ms(ms);
    format!("{} {}", &full[..10], &full[11..16])
}

/// One line as a template: our own text, and values as fields the
/// destination's style escapes.
#[derive(Debug, Default)]
struct Line {
    source: String,
    payload: Map<String, Value>,
}

impl Line {
    fn text(&mut self, text: &str) {
        self.source
            .push_str(&text.replace('{', "{{").replace('}', "}}"));
    }

    fn field(&mut self, value: Value, spec: &str) {
        let name = format!("v{}", self.payload.len());
        self.source.push_str(&format!("{{{name}{spec}}}"));
        self.payload.insert(name, value);
    }

    fn value(&mut self, text: &str) {
        self.field(Value::String(text.to_owned()), "");
    }

    /// A count or sum, with Python's `{:,}` grouping. A sum beyond what
    /// JSON numbers here carry (over 18 quintillion) is shown at the limit.
    fn number(&mut self, n: impl Into<i128>) {
        let n: i128 = n.into();
        let value = u64::try_from(n)
            .map(Value::from)
            .or_else(|_| i64::try_from(n).map(Value::from))
            .unwrap_or_else(|_| Value::from(if n > 0 { u64::MAX } else { 0 }));
        self.field(value, ":,");
    }

    fn render(&self, style: Style) -> Result<String, RenderError> {
        Template::parse(&self.source)
            .expect("a digest line is a valid template")
            .render(&self.payload, style)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, payload: Value) -> Event {
        Event::new(kind, payload.as_object().unwrap().clone())
    }

    fn import(email: &str, importer: &str, rows: u64) -> Event {
        event(
            "import.completed",
            json!({"email": email, "importer_name": importer, "row_count": rows}),
        )
    }

    #[test]
    fn counts_sums_and_repeated_values_per_type() {
        let catalog = Catalog::builtin();
        let mut digest = Digest::new(1_764_000_000_000, 1_764_086_400_000);
        for (email, importer, rows) in [
            ("a@x.io", "CRM", 1_000_000),
            ("b@x.io", "CRM", 2_345),
            ("a@x.io", "Sheets", 1_000),
            ("c@x.io", "Sheets", 0),
            ("d@x.io", "CRM", 1),
            ("e@x.io", "Once", 999_999),
        ] {
            digest.add(&import(email, importer, rows), &catalog);
        }
        digest.add(&event("user.signup", json!({"email": "z@x.io"})), &catalog);
        digest.add(&event("retired.type", json!({"n": 1})), &catalog);
        // Expected values as Python prints them: f"{1000000+2345+1000+0+1+999999:,}".
        assert_eq!(
            digest.lines(Style::Plain).unwrap(),
            [
                "Digest 2025-11-24 16:00 to 2025-11-25 16:00 UTC: 8 events",
                "import.completed: 6 (2,003,345 rows); top email: a@x.io (2); top importer_name: CRM (3), Sheets (2)",
                "retired.type: 1",
                "user.signup: 1",
            ]
        );
    }

    #[test]
    fn values_are_escaped_for_the_destination_and_our_text_is_not() {
        let catalog = Catalog::builtin();
        let mut digest = Digest::new(0, 60_000);
        for _ in 0..2 {
            digest.add(&import("a@x.io", "<!channel> *CRM*", 5), &catalog);
        }
        let slack = digest.lines(Style::Slack).unwrap();
        assert_eq!(
            slack[1],
            "import.completed: 2 (10 rows); top email: a@x.io (2); top importer_name: &lt;!channel&gt; *CRM* (2)"
        );
        let discord = digest.lines(Style::Discord).unwrap();
        assert!(
            discord[1].contains(r"top importer\_name: \<!channel\> \*CRM\* (2)"),
            "{}",
            discord[1]
        );
    }

    #[test]
    fn sums_are_labelled_by_field_name() {
        assert_eq!(label("row_count"), "rows");
        assert_eq!(label("seats"), "seats");
        assert_eq!(label("amount_cents"), "amount cents");
        assert_eq!(label("count"), "count");
    }

    #[test]
    fn an_empty_window_says_so() {
        let digest = Digest::new(0, 60_000);
        assert_eq!(
            digest.lines(Style::Plain).unwrap(),
            ["Digest 1970-01-01 00:00 to 1970-01-01 00:01 UTC: 0 events"]
        );
    }
}
