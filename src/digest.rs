//! Digests: one message summarising a window of history per event type, for
//! a daily report from cron. This module only counts and words the summary;
//! `events digest` reads the history and sends the lines.
//!
//! Per type, in order of most events first (then by name):
//! - the number of events;
//! - the sum of every integer field the catalog declares, labelled by the
//!   field's name: a name ending in `_count` loses that ending and gains an
//!   `s` (`row_count` → `rows`), any other keeps its name, underscores read
//!   as spaces (`seats` → `seats`, `amount_cents` → `amount cents`); sums
//!   are exact however large (see [`Sum`]);
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
use crate::template::{RenderError, Style, Template, group_thousands};

/// How many values of a string field are shown.
const TOP: usize = 3;

/// What one event type did in the window.
#[derive(Debug, Default)]
struct TypeTally {
    count: u64,
    /// Each declared integer field's sum, in catalog order.
    sums: Vec<(String, Sum)>,
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
                    FieldType::Integer { .. } => tally.sums.push((name.clone(), Sum::default())),
                    FieldType::String => tally.values.push((name.clone(), HashMap::new())),
                    FieldType::Number | FieldType::Boolean => {}
                }
            }
            tally
        });
        tally.count += 1;
        for (name, sum) in &mut tally.sums {
            if let Some(value) = event.payload.get(name) {
                sum.add(value);
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
        line.number(sum);
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

/// The exact sum of a field's values: its positive and its negative part
/// apart, each in a `u128`. Fewer than 2^64 events (their count is a `u64`)
/// of values under 2^64 each stay under 2^128, so neither part overflows
/// and no sum is ever clamped or wrapped.
///
/// Only whole numbers within 64 bits are summed: the catalog accepts no
/// other for an integer field, and a value it once accepted as a `number`
/// (`1.5`, or `1e30`, which JSON reading here holds as a float, not
/// exactly) would make the sum inexact, so it is left out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Sum {
    up: u128,
    down: u128,
}

impl Sum {
    fn add(&mut self, value: &Value) {
        if let Some(n) = value.as_u64() {
            self.up = self.up.saturating_add(u128::from(n));
        } else if let Some(n) = value.as_i64() {
            self.down = self.down.saturating_add(u128::from(n.unsigned_abs()));
        }
    }
}

/// The sum as a plain integer, `-` before a negative one.
impl std::fmt::Display for Sum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.up >= self.down {
            write!(f, "{}", self.up - self.down)
        } else {
            write!(f, "-{}", self.down - self.up)
        }
    }
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

    /// A count or sum, exact, with Python's `{:,}` grouping. Our own
    /// text: digits, commas and a minus sign need no escaping.
    fn number(&mut self, n: impl std::fmt::Display) {
        self.text(&group_thousands(&n.to_string()));
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

    /// A catalog with `ledger.moved`, whose `amount` is a signed integer.
    fn ledger() -> Catalog {
        let mut catalog = Catalog::builtin();
        let fields = vec![("amount".to_owned(), FieldType::Integer { signed: true })];
        catalog.insert(crate::catalog::EventSpec::new("ledger.moved", fields, "Moved").unwrap());
        catalog
    }

    /// The `ledger.moved` line of a digest of these amounts.
    fn ledger_line(amounts: &[Value]) -> String {
        let catalog = ledger();
        let mut digest = Digest::new(0, 60_000);
        for amount in amounts {
            digest.add(
                &event("ledger.moved", json!({ "amount": amount })),
                &catalog,
            );
        }
        digest.lines(Style::Plain).unwrap().remove(1)
    }

    /// Python's `f"{n:,}"`, worked out apart from the code under test:
    /// groups of three cut from the right of the digits.
    fn python_grouping(n: i128) -> String {
        let digits: Vec<char> = n.unsigned_abs().to_string().chars().rev().collect();
        let groups: Vec<String> = digits
            .chunks(3)
            .map(|c| c.iter().rev().collect())
            .rev()
            .collect();
        let sign = if n < 0 { "-" } else { "" };
        format!("{sign}{}", groups.join(","))
    }

    #[test]
    fn sums_past_64_bits_are_exact_both_ways() {
        let catalog = Catalog::builtin();
        let mut digest = Digest::new(0, 60_000);
        for _ in 0..3 {
            digest.add(&import("a@x.io", "CRM", u64::MAX), &catalog);
        }
        // Printed by Python 3: f"{3 * (2**64 - 1):,}".
        assert!(
            digest.lines(Style::Plain).unwrap()[1]
                .starts_with("import.completed: 3 (55,340,232,221,128,654,845 rows)")
        );
        // f"{3 * -2**63:,}" and f"{-5:,}".
        let lows = [json!(i64::MIN), json!(i64::MIN), json!(i64::MIN)];
        assert_eq!(
            ledger_line(&lows),
            "ledger.moved: 3 (-27,670,116,110,564,327,424 amount)"
        );
        assert_eq!(ledger_line(&[json!(-5)]), "ledger.moved: 1 (-5 amount)");
        // f"{(2**64 - 1) + -2**63 + -2**63:,}".
        assert_eq!(
            ledger_line(&[json!(u64::MAX), json!(i64::MIN), json!(i64::MIN)]),
            "ledger.moved: 3 (-1 amount)"
        );
    }

    #[test]
    fn values_that_are_not_exact_integers_are_left_out_of_sums() {
        // 2**70 reads as a float here; adding it would not be exact.
        let big: Value = serde_json::from_str("1180591620717411303424").unwrap();
        assert_eq!(
            ledger_line(&[json!(7), big, json!(1.5), json!("9"), json!(-2)]),
            "ledger.moved: 5 (5 amount)"
        );
    }

    use proptest::strategy::Strategy;

    proptest::proptest! {
        /// Any mix of values across the whole signed and unsigned 64-bit
        /// range sums exactly, grouped as Python groups it.
        #[test]
        fn big_sums_match_exact_arithmetic_grouped_as_python_does(
            values in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::num::u64::ANY.prop_map(Value::from),
                    proptest::num::i64::ANY.prop_map(Value::from),
                    (u64::MAX - 1000..=u64::MAX).prop_map(Value::from),
                    (i64::MIN..i64::MIN + 1000).prop_map(Value::from),
                ],
                1..40,
            ),
        ) {
            let exact: i128 = values
                .iter()
                .map(|v| v.as_u64().map_or_else(|| i128::from(v.as_i64().unwrap()), i128::from))
                .sum();
            let line = ledger_line(&values);
            let expected = format!(
                "ledger.moved: {} ({} amount)",
                python_grouping(values.len() as i128),
                python_grouping(exact)
            );
            proptest::prop_assert_eq!(line, expected);
        }
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
