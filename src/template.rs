//! Message templates: the one-line text an event becomes in Slack or on the console.
//!
//! Templates are written by people who know Python's `str.format`, so this module accepts
//! exactly the small part of it that a one-line notification needs — `{field}`, `{field:,}`
//! and the `{{`/`}}` escapes — and prints values byte-for-byte as Python would (ints,
//! floats in `repr` style, `True`/`None`, thousands separators). Everything else is rejected
//! when the template is parsed, with the column named, so a typo fails at configuration time
//! instead of in the middle of the night. Because values come from event payloads that
//! anyone may have written, every interpolated value is sanitised before it is inserted:
//! line breaks, control characters (terminal escapes included) and bidi overrides become
//! spaces ([`crate::sanitize::one_line`]), long values are cut, and for a chat destination
//! they are escaped in its markup ([`crate::dest::chat::markup`]) so that a payload can never
//! page a channel, ping a person or plant a link.
//! The template's own literal text is trusted and left untouched.

use serde_json::{Map, Number, Value};

use crate::dest::chat::markup;

/// Longest a single interpolated value may be, in Unicode scalar values, after flattening
/// it to one line (and before Slack escaping).
const MAX_VALUE_CHARS: usize = 200;

/// A parsed message template.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    /// Literal template text, with `{{`/`}}` already reduced to single braces.
    Literal(String),
    /// A replacement field.
    Field {
        name: String,
        /// `{name:,}` rather than `{name}`.
        thousands: bool,
        /// 1-based character column of the field's opening `{`.
        column: usize,
    },
}

/// Where the rendered text goes, which decides how values are sanitised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Slack message text: values are also escaped with [`markup::slack`].
    Slack,
    /// Discord message content: values are also escaped with [`markup::discord`].
    Discord,
    /// Teams Adaptive Card text: values are also escaped with [`markup::teams`].
    Teams,
    /// Console output: values are not escaped.
    Plain,
}

/// A template that cannot be used. Every column is the 1-based character column in the
/// template text; for errors about a replacement field it is the column of the field's
/// opening `{`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error(
        "template {template:?} has a single '}}' at column {column}; write '}}}}' for a literal brace"
    )]
    UnmatchedClose { template: String, column: usize },
    #[error("template {template:?} has an unclosed '{{' at column {column}")]
    Unclosed { template: String, column: usize },
    #[error(
        "template {template:?} has an empty field at column {column}; fields must be named, as in '{{count}}'"
    )]
    EmptyField { template: String, column: usize },
    #[error(
        "template {template:?} has a positional field '{{{field}}}' at column {column}; fields must be named"
    )]
    PositionalField {
        template: String,
        field: String,
        column: usize,
    },
    #[error(
        "template {template:?} uses attribute or index access '{field}' at column {column}; only plain field names are supported"
    )]
    FieldAccess {
        template: String,
        field: String,
        column: usize,
    },
    #[error(
        "template {template:?} has an invalid field name '{field}' at column {column}; names are ASCII letters, digits and '_', not starting with a digit"
    )]
    InvalidFieldName {
        template: String,
        field: String,
        column: usize,
    },
    #[error(
        "template {template:?} has a conversion '!{conversion}' at column {column}; conversions are not supported"
    )]
    Conversion {
        template: String,
        conversion: String,
        column: usize,
    },
    #[error(
        "template {template:?} has an unsupported format spec ':{spec}' at column {column}; only '{{field}}' and '{{field:,}}' are supported"
    )]
    UnsupportedSpec {
        template: String,
        spec: String,
        column: usize,
    },
    #[error(
        "template {template:?} uses ',' (thousands separator) on field '{field}' at column {column}, which is {declared}; ',' applies only to integer, signed and number fields"
    )]
    ThousandsOnNonNumber {
        template: String,
        field: String,
        /// The field's declared type, as in "a string".
        declared: String,
        column: usize,
    },
    #[error("template {template:?} uses the undeclared field '{field}' at column {column}")]
    UndeclaredField {
        template: String,
        field: String,
        column: usize,
    },
}

/// A payload that does not fit a template.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    #[error("the payload has no field '{field}', which the template uses")]
    MissingField { field: String },
    /// `,` used on a value that Python cannot group. `field` is `None` when the error comes
    /// from [`format_value`] directly; [`Template::render`] fills it in. `kind` is one of
    /// `"string"`, `"array"`, `"object"` or `"null"`.
    #[error("{}", thousands_message(.field.as_deref(), kind))]
    ThousandsOnNonNumber {
        field: Option<String>,
        kind: &'static str,
    },
}

fn thousands_message(field: Option<&str>, kind: &str) -> String {
    match field {
        Some(field) => format!(
            "cannot use ',' (thousands separator) on field '{field}': its value is {} {kind}, not a number",
            article(kind)
        ),
        None => format!(
            "cannot use ',' (thousands separator) on {} {kind} value, only on numbers",
            article(kind)
        ),
    }
}

fn article(kind: &str) -> &'static str {
    if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

impl Template {
    /// Parses `source`, rejecting anything outside `{field}`, `{field:,}`, `{{` and `}}`.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let chars: Vec<char> = source.chars().collect();
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '{' if chars.get(i + 1) == Some(&'{') => {
                    literal.push('{');
                    i += 2;
                }
                '}' if chars.get(i + 1) == Some(&'}') => {
                    literal.push('}');
                    i += 2;
                }
                '}' => {
                    return Err(TemplateError::UnmatchedClose {
                        template: source.to_owned(),
                        column: i + 1,
                    });
                }
                '{' => {
                    let Some(len) = chars[i + 1..].iter().position(|&c| c == '}') else {
                        return Err(TemplateError::Unclosed {
                            template: source.to_owned(),
                            column: i + 1,
                        });
                    };
                    let content: String = chars[i + 1..i + 1 + len].iter().collect();
                    let (name, thousands) = parse_field(source, &content, i + 1)?;
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field {
                        name,
                        thousands,
                        column: i + 1,
                    });
                    i += len + 2;
                }
                c => {
                    literal.push(c);
                    i += 1;
                }
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template {
            source: source.to_owned(),
            parts,
        })
    }

    /// The template text as given to [`Template::parse`].
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The field's name when the template is exactly one plain `{field}`,
    /// with no literal text and no format spec: a JSON body template keeps
    /// such a value's own JSON type.
    pub fn lone_field(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [
                Part::Field {
                    name,
                    thousands: false,
                    ..
                },
            ] => Some(name),
            _ => None,
        }
    }

    /// Field names referenced, in order of first appearance, deduplicated.
    pub fn fields(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for (name, _) in self.field_uses() {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// Err naming the first field (in template order) that is not in `declared`.
    pub fn check_fields(&self, declared: &[&str]) -> Result<(), TemplateError> {
        match self.field_uses().find(|(name, _)| !declared.contains(name)) {
            Some((name, column)) => Err(TemplateError::UndeclaredField {
                template: self.source.clone(),
                field: name.to_owned(),
                column,
            }),
            None => Ok(()),
        }
    }

    /// Err naming the first field used with `,` for which `numeric` says no; `describe`
    /// gives its declared type for the message. Python raises on `format("x", ",")`, so
    /// such a template could never render: it is refused when the catalog loads.
    pub fn check_thousands(
        &self,
        numeric: impl Fn(&str) -> bool,
        describe: impl Fn(&str) -> String,
    ) -> Result<(), TemplateError> {
        let misuse = self.parts.iter().find_map(|part| match part {
            Part::Field {
                name,
                thousands: true,
                column,
            } if !numeric(name) => Some((name, *column)),
            _ => None,
        });
        match misuse {
            Some((name, column)) => Err(TemplateError::ThousandsOnNonNumber {
                template: self.source.clone(),
                field: name.clone(),
                declared: describe(name),
                column,
            }),
            None => Ok(()),
        }
    }

    /// Fills the template from `payload`, sanitising every value for `style`.
    pub fn render(
        &self,
        payload: &Map<String, Value>,
        style: Style,
    ) -> Result<String, RenderError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field {
                    name, thousands, ..
                } => {
                    let value = payload.get(name).ok_or_else(|| RenderError::MissingField {
                        field: name.clone(),
                    })?;
                    let text = format_value(value, *thousands).map_err(|err| match err {
                        RenderError::ThousandsOnNonNumber { kind, .. } => {
                            RenderError::ThousandsOnNonNumber {
                                field: Some(name.clone()),
                                kind,
                            }
                        }
                        other => other,
                    })?;
                    out.push_str(&sanitize(&text, style));
                }
            }
        }
        Ok(out)
    }

    /// Every field use as (name, column of its `{`), in template order.
    fn field_uses(&self) -> impl Iterator<Item = (&str, usize)> {
        self.parts.iter().filter_map(|part| match part {
            Part::Field { name, column, .. } => Some((name.as_str(), *column)),
            Part::Literal(_) => None,
        })
    }
}

/// Checks the text between a field's braces; returns (field name, thousands separator).
fn parse_field(
    template: &str,
    content: &str,
    column: usize,
) -> Result<(String, bool), TemplateError> {
    let template = template.to_owned();
    let name_end = content.find(['!', ':']).unwrap_or(content.len());
    let (name, rest) = content.split_at(name_end);
    if name.is_empty() {
        return Err(TemplateError::EmptyField { template, column });
    }
    let field = name.to_owned();
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(if bad == '.' || bad == '[' {
            TemplateError::FieldAccess {
                template,
                field,
                column,
            }
        } else {
            TemplateError::InvalidFieldName {
                template,
                field,
                column,
            }
        });
    }
    if name.chars().all(|c| c.is_ascii_digit()) {
        return Err(TemplateError::PositionalField {
            template,
            field,
            column,
        });
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(TemplateError::InvalidFieldName {
            template,
            field,
            column,
        });
    }
    if let Some(conversion) = rest.strip_prefix('!') {
        let conversion = conversion.split(':').next().unwrap_or_default().to_owned();
        return Err(TemplateError::Conversion {
            template,
            conversion,
            column,
        });
    }
    match rest.strip_prefix(':') {
        None | Some("") => Ok((field, false)),
        Some(",") => Ok((field, true)),
        Some(spec) => Err(TemplateError::UnsupportedSpec {
            template,
            spec: spec.to_owned(),
            column,
        }),
    }
}

/// Python `format(value, spec)` for spec `""` (`thousands == false`) or `","`.
///
/// Ints print as decimal, floats as Python's `repr` (shortest round-trip digits), booleans
/// as `True`/`False` (`1`/`0` with `,`, as Python does), null as `None`, strings as they are.
/// Arrays and objects print as compact JSON text (`[1,"a"]`) — a deliberate departure from
/// Python, whose `repr` of a list or dict would be meaningless to a reader of a JSON payload.
/// With `,`, strings, arrays, objects and null are an error (Python raises too), returned
/// as [`RenderError::ThousandsOnNonNumber`] with `field: None`.
///
/// Integers beyond the `u64`/`i64` range arrive from serde_json as floats and print as such.
/// A float prints exactly as Python prints the same `f64`; for a payload parsed from JSON
/// text to match Python's `json.loads` too, serde_json needs its `float_roundtrip` feature
/// (its default parser is not always correctly rounded, e.g. for `1.57e-23`).
pub fn format_value(value: &Value, thousands: bool) -> Result<String, RenderError> {
    let misuse = |kind| RenderError::ThousandsOnNonNumber { field: None, kind };
    match value {
        Value::Null if thousands => Err(misuse("null")),
        Value::Null => Ok("None".to_owned()),
        Value::Bool(b) if thousands => Ok(if *b { "1" } else { "0" }.to_owned()),
        Value::Bool(b) => Ok(if *b { "True" } else { "False" }.to_owned()),
        Value::Number(n) => Ok(format_number(n, thousands)),
        Value::String(_) if thousands => Err(misuse("string")),
        Value::String(s) => Ok(s.clone()),
        Value::Array(_) if thousands => Err(misuse("array")),
        Value::Object(_) if thousands => Err(misuse("object")),
        Value::Array(_) | Value::Object(_) => Ok(value.to_string()),
    }
}

fn format_number(n: &Number, thousands: bool) -> String {
    let text = if let Some(u) = n.as_u64() {
        u.to_string()
    } else if let Some(i) = n.as_i64() {
        i.to_string()
    } else {
        python_float_repr(n.as_f64().unwrap_or(f64::NAN))
    };
    if thousands {
        group_thousands(&text)
    } else {
        text
    }
}

/// Python's `repr(x)`: shortest round-trip digits, scientific notation when the decimal
/// exponent is below -4 or at least 16 (`1e+16`, `1e-05`), otherwise fixed notation with at
/// least one fractional digit (`3.0`).
fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    // Rust's `{:e}` gives the shortest round-trip digits ("1.2345e3", "5e-324", "0e0"), but
    // where two such candidates are equally close it takes the upper one, while Python rounds
    // that tie to even (1059438285926254.25 → Python "…254.2"). So the value is printed again
    // with that many digits, exactly rounded half-to-even, and that is used when it still
    // round-trips (at a power of two the lower candidate may not: 2.0**-1017 is
    // "7.120236347223045e-307" in both languages).
    let shortest = format!("{:e}", x.abs());
    let mantissa = shortest
        .split_once('e')
        .map_or(shortest.as_str(), |(m, _)| m);
    let precision = mantissa.chars().filter(char::is_ascii_digit).count().max(1) - 1;
    let even = format!("{:.precision$e}", x.abs());
    let sci = if even.parse::<f64>() == Ok(x.abs()) {
        even
    } else {
        shortest
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mantissa.chars().filter(|&c| c != '.').collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!(
            "{sign}{first}{dot}{rest}e{exp_sign}{:02}",
            exp.unsigned_abs()
        )
    } else if exp < 0 {
        let zeros = "0".repeat(exp.unsigned_abs() as usize - 1);
        format!("{sign}0.{zeros}{digits}")
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            let zeros = "0".repeat(int_len - digits.len());
            format!("{sign}{digits}{zeros}.0")
        } else {
            let (int, frac) = digits.split_at(int_len);
            format!("{sign}{int}.{frac}")
        }
    }
}

/// Inserts `,` every three digits in the integer part of a number already printed in
/// Python's style (`-1234567.5` → `-1,234,567.5`, `1e+16` unchanged).
pub fn group_thousands(text: &str) -> String {
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let int_len = unsigned
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(unsigned.len());
    let (int, tail) = unsigned.split_at(int_len);
    let mut out = String::with_capacity(text.len() + int_len / 3);
    out.push_str(sign);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int_len - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out.push_str(tail);
    out
}

/// Makes one formatted value safe to insert: line breaks, control characters and bidi
/// overrides become one space each ([`crate::sanitize::one_line`]), values over
/// [`MAX_VALUE_CHARS`] are cut to that length ending in `…`, and for a chat style it is
/// escaped in that chat's markup.
fn sanitize(value: &str, style: Style) -> String {
    let mut flat = crate::sanitize::one_line(value).into_owned();
    if flat.chars().count() > MAX_VALUE_CHARS {
        flat = flat.chars().take(MAX_VALUE_CHARS - 1).collect();
        flat.push('…');
    }
    match style {
        Style::Slack => markup::slack(&flat),
        Style::Discord => markup::discord(&flat),
        Style::Teams => markup::teams(&flat),
        Style::Plain => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn control_characters_in_a_value_become_spaces() {
        assert_eq!(
            sanitize("a\u{1b}[31mred\tb\u{7f}c\r\nd", Style::Plain),
            "a [31mred b c d"
        );
    }

    fn payload(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("payload must be an object, got {other}"),
        }
    }

    fn render(template: &str, value: Value, style: Style) -> Result<String, RenderError> {
        Template::parse(template)
            .expect("template parses")
            .render(&payload(value), style)
    }

    #[test]
    fn renders_like_python_str_format() {
        // (template, payload, expected): expected strings were produced by Python 3.11's
        // `template.format(**json.loads(payload))`.
        let cases = [
            ("{n:,}", r#"{"n": 1234567}"#, "1,234,567"),
            ("{n:,}", r#"{"n": -1000}"#, "-1,000"),
            ("{n:,}", r#"{"n": 0}"#, "0"),
            ("{n:,}", r#"{"n": 999}"#, "999"),
            ("{n:,}", r#"{"n": -123456}"#, "-123,456"),
            (
                "{n:,}",
                r#"{"n": 12345678901234567890}"#,
                "12,345,678,901,234,567,890",
            ),
            (
                "{n:,}",
                r#"{"n": 18446744073709551615}"#,
                "18,446,744,073,709,551,615",
            ),
            (
                "{n:,}",
                r#"{"n": -9223372036854775808}"#,
                "-9,223,372,036,854,775,808",
            ),
            ("{n:,}", r#"{"n": 1234.5}"#, "1,234.5"),
            ("{n:,}", r#"{"n": 1e16}"#, "1e+16"),
            ("{n:,}", r#"{"n": 1234567.0}"#, "1,234,567.0"),
            ("{n:,}", r#"{"n": 1234.0}"#, "1,234.0"),
            ("{n:,}", r#"{"n": 0.0001}"#, "0.0001"),
            ("{n:,}", r#"{"n": 0.00001}"#, "1e-05"),
            ("{n:,}", r#"{"n": -1234567.891}"#, "-1,234,567.891"),
            ("{n:,}", r#"{"n": 1e22}"#, "1e+22"),
            (
                "{n:,}",
                r#"{"n": 123456789012345678.0}"#,
                "1.2345678901234568e+17",
            ),
            ("{n:,}", r#"{"n": 1e15}"#, "1,000,000,000,000,000.0"),
            ("{n:,}", r#"{"n": 0.1}"#, "0.1"),
            ("{n:,}", r#"{"n": -0.0}"#, "-0.0"),
            ("{n:,}", r#"{"n": true}"#, "1"),
            ("{n:,}", r#"{"n": false}"#, "0"),
            ("{n}", r#"{"n": 1234567}"#, "1234567"),
            ("{n}", r#"{"n": -1000}"#, "-1000"),
            (
                "{n}",
                r#"{"n": 12345678901234567890}"#,
                "12345678901234567890",
            ),
            ("{n}", r#"{"n": 3.0}"#, "3.0"),
            ("{n}", r#"{"n": 1234.5}"#, "1234.5"),
            ("{n}", r#"{"n": 1e16}"#, "1e+16"),
            ("{n}", r#"{"n": 9999999999999998.0}"#, "9999999999999998.0"),
            ("{n}", r#"{"n": 0.0001}"#, "0.0001"),
            ("{n}", r#"{"n": 0.00001}"#, "1e-05"),
            ("{n}", r#"{"n": 1.5e-7}"#, "1.5e-07"),
            ("{n}", r#"{"n": -1234567.891}"#, "-1234567.891"),
            ("{n}", r#"{"n": 1e22}"#, "1e+22"),
            (
                "{n}",
                r#"{"n": 123456789012345678.0}"#,
                "1.2345678901234568e+17",
            ),
            ("{n}", r#"{"n": 0.1}"#, "0.1"),
            ("{n}", r#"{"n": -0.0}"#, "-0.0"),
            ("{n}", r#"{"n": 5e-324}"#, "5e-324"),
            (
                "{n}",
                r#"{"n": 1.7976931348623157e308}"#,
                "1.7976931348623157e+308",
            ),
            ("{n}", r#"{"n": true}"#, "True"),
            ("{n}", r#"{"n": false}"#, "False"),
            ("{n}", r#"{"n": null}"#, "None"),
            ("{n:}", r#"{"n": 42}"#, "42"),
            ("{s}", r#"{"s": "caf\u00e9 \u2713"}"#, "café ✓"),
            ("{{literal}}", r#"{}"#, "{literal}"),
            ("{{{n}}} }}{{", r#"{"n": 5}"#, "{5} }{"),
            (
                "New signup: {name} ({count:,} total, {ratio} of {n})",
                r#"{"name": "Ada", "count": 10500, "ratio": 0.25, "n": 7}"#,
                "New signup: Ada (10,500 total, 0.25 of 7)",
            ),
            ("{a}{b}{a}", r#"{"a": "x", "b": 2}"#, "x2x"),
        ];
        for (template, json_payload, expected) in cases {
            let value: Value = serde_json::from_str(json_payload).expect("payload is JSON");
            for style in [Style::Plain, Style::Slack] {
                let got = render(template, value.clone(), style);
                assert_eq!(
                    got.as_deref(),
                    Ok(expected),
                    "{template} with {json_payload}"
                );
            }
        }
    }

    #[test]
    #[allow(
        clippy::excessive_precision,
        reason = "the exact tie values are the point of the test"
    )]
    fn float_ties_and_edges_match_python_repr() {
        // (value, format(v, ''), format(v, ',')), expected strings from Python 3.11. Built
        // from Rust literals, not JSON text: serde_json's default float parser is not always
        // correctly rounded. The first three are exact ties, which Python rounds to even; the
        // fourth is 2**-1017, a power of two whose lower neighbour is closer.
        let cases = [
            (
                1059438285926254.25,
                "1059438285926254.2",
                "1,059,438,285,926,254.2",
            ),
            (
                26363981746409.3125,
                "26363981746409.312",
                "26,363,981,746,409.312",
            ),
            (
                -108868734838530.125,
                "-108868734838530.12",
                "-108,868,734,838,530.12",
            ),
            (
                7.120236347223045e-307,
                "7.120236347223045e-307",
                "7.120236347223045e-307",
            ),
            (1.57e-23, "1.57e-23", "1.57e-23"),
            (8.19e25, "8.19e+25", "8.19e+25"),
            (1e23, "1e+23", "1e+23"),
            (
                9223372036854775808.0,
                "9.223372036854776e+18",
                "9.223372036854776e+18",
            ),
            (5e-324, "5e-324", "5e-324"),
        ];
        for (x, plain, grouped) in cases {
            assert_eq!(format_value(&json!(x), false).as_deref(), Ok(plain));
            assert_eq!(format_value(&json!(x), true).as_deref(), Ok(grouped));
        }
    }

    #[test]
    fn arrays_and_objects_render_as_compact_json() {
        let value = json!({"a": [1, "x", {"k": null}], "o": {"b": true}});
        assert_eq!(
            render("{a} {o}", value, Style::Plain).as_deref(),
            Ok(r#"[1,"x",{"k":null}] {"b":true}"#)
        );
    }

    #[test]
    fn thousands_separator_on_non_numbers_is_an_error() {
        let misuse = |field: &str, kind| RenderError::ThousandsOnNonNumber {
            field: Some(field.to_owned()),
            kind,
        };
        let value = json!({"s": "12", "a": [1], "o": {}, "z": null});
        for (template, expected) in [
            ("{s:,}", misuse("s", "string")),
            ("{a:,}", misuse("a", "array")),
            ("{o:,}", misuse("o", "object")),
            ("{z:,}", misuse("z", "null")),
        ] {
            assert_eq!(render(template, value.clone(), Style::Plain), Err(expected));
        }
        assert_eq!(
            render("{s:,}", value, Style::Plain)
                .unwrap_err()
                .to_string(),
            "cannot use ',' (thousands separator) on field 's': its value is a string, not a number"
        );
        let err = format_value(&json!([]), true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot use ',' (thousands separator) on an array value, only on numbers"
        );
    }

    #[test]
    fn missing_field_is_named() {
        let err = render("hi {name}", json!({"nmae": "x"}), Style::Plain).unwrap_err();
        assert_eq!(
            err,
            RenderError::MissingField {
                field: "name".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "the payload has no field 'name', which the template uses"
        );
    }

    #[test]
    fn slack_style_escapes_values_but_not_template_text() {
        let cases = [
            ("<!channel>", "&lt;!channel&gt;"),
            ("<@U1>", "&lt;@U1&gt;"),
            ("<http://x|y>", "&lt;http://x|y&gt;"),
            ("Tom & Jerry", "Tom &amp; Jerry"),
            ("&lt;", "&amp;lt;"),
        ];
        for (value, escaped) in cases {
            let payload = json!({ "v": value });
            let slack = render("<b> {v} & </b>", payload.clone(), Style::Slack).unwrap();
            assert_eq!(slack, format!("<b> {escaped} & </b>"));
            assert_eq!(render("{v}", payload, Style::Plain).unwrap(), value);
            assert_eq!(markup::slack(value), escaped);
        }
    }

    #[test]
    fn discord_style_escapes_markdown_in_values_but_not_template_text() {
        let cases = [
            ("**bold**", r"\*\*bold\*\*"),
            ("||spoiler||", r"\|\|spoiler\|\|"),
            (
                "[click](http://evil.example)",
                r"\[click\]\(http://evil.example\)",
            ),
            ("<@123> <t:0>", r"\<@123\> \<t:0\>"),
            (
                "> # - `x` ~~y~~ a_b \\",
                r"\> \# \- \`x\` \~\~y\~\~ a\_b \\",
            ),
            ("@everyone", "@everyone"),
        ];
        for (value, escaped) in cases {
            let payload = json!({ "v": value });
            let got = render("**{v}**", payload, Style::Discord).unwrap();
            assert_eq!(got, format!("**{escaped}**"));
            assert_eq!(markup::discord(value), escaped);
        }
    }

    #[test]
    fn values_are_flattened_and_truncated() {
        let flat = render("{v}|", json!({"v": "a\r\nb\nc\rd\n\ne"}), Style::Plain);
        assert_eq!(flat.as_deref(), Ok("a b c d  e|"));
        let exactly_200 = "x".repeat(200);
        let long = format!("{exactly_200}y");
        let cut = format!("{}…", "x".repeat(199));
        let multibyte = "é🦀".repeat(150);
        let multibyte_cut: String = multibyte.chars().take(199).chain(['…']).collect();
        for (value, expected) in [
            (exactly_200.as_str(), exactly_200.as_str()),
            (&long, &cut),
            (&multibyte, &multibyte_cut),
        ] {
            let got = render("{v}", json!({ "v": value }), Style::Plain).unwrap();
            assert_eq!(got, expected);
            assert!(got.chars().count() <= 200);
        }
        // Cut first (to 200 characters), then escape.
        let got = render("{v}", json!({ "v": "<".repeat(300) }), Style::Slack).unwrap();
        assert_eq!(got, format!("{}…", "&lt;".repeat(199)));
    }

    #[test]
    fn parse_errors_name_the_template_and_column() {
        let cases = [
            (
                "New signup: {emial",
                r#"template "New signup: {emial" has an unclosed '{' at column 13"#,
            ),
            ("{{ {", r#"template "{{ {" has an unclosed '{' at column 4"#),
            (
                "a } b",
                r#"template "a } b" has a single '}' at column 3; write '}}' for a literal brace"#,
            ),
            (
                "{a}}",
                r#"template "{a}}" has a single '}' at column 4; write '}}' for a literal brace"#,
            ),
            (
                "x {}",
                r#"template "x {}" has an empty field at column 3; fields must be named, as in '{count}'"#,
            ),
            (
                "{:,}",
                r#"template "{:,}" has an empty field at column 1; fields must be named, as in '{count}'"#,
            ),
            (
                "{0}",
                r#"template "{0}" has a positional field '{0}' at column 1; fields must be named"#,
            ),
            (
                "n={12:,}",
                r#"template "n={12:,}" has a positional field '{12}' at column 3; fields must be named"#,
            ),
            (
                "{a.b}",
                r#"template "{a.b}" uses attribute or index access 'a.b' at column 1; only plain field names are supported"#,
            ),
            (
                "ab {a[0]}",
                r#"template "ab {a[0]}" uses attribute or index access 'a[0]' at column 4; only plain field names are supported"#,
            ),
            (
                "{a!r}",
                r#"template "{a!r}" has a conversion '!r' at column 1; conversions are not supported"#,
            ),
            (
                "{a!s:,}",
                r#"template "{a!s:,}" has a conversion '!s' at column 1; conversions are not supported"#,
            ),
            (
                "{n:>10}",
                r#"template "{n:>10}" has an unsupported format spec ':>10' at column 1; only '{field}' and '{field:,}' are supported"#,
            ),
            (
                "{n:,d}",
                r#"template "{n:,d}" has an unsupported format spec ':,d' at column 1; only '{field}' and '{field:,}' are supported"#,
            ),
            (
                "{n:_}",
                r#"template "{n:_}" has an unsupported format spec ':_' at column 1; only '{field}' and '{field:,}' are supported"#,
            ),
            (
                "é🦀 {n:.2f}",
                r#"template "é🦀 {n:.2f}" has an unsupported format spec ':.2f' at column 4; only '{field}' and '{field:,}' are supported"#,
            ),
            (
                "{a:{b}}",
                r#"template "{a:{b}}" has an unsupported format spec ':{b' at column 1; only '{field}' and '{field:,}' are supported"#,
            ),
            (
                "{a b}",
                r#"template "{a b}" has an invalid field name 'a b' at column 1; names are ASCII letters, digits and '_', not starting with a digit"#,
            ),
            (
                "{1a}",
                r#"template "{1a}" has an invalid field name '1a' at column 1; names are ASCII letters, digits and '_', not starting with a digit"#,
            ),
            (
                "{a{b}",
                r#"template "{a{b}" has an invalid field name 'a{b' at column 1; names are ASCII letters, digits and '_', not starting with a digit"#,
            ),
            (
                "{café}",
                r#"template "{café}" has an invalid field name 'café' at column 1; names are ASCII letters, digits and '_', not starting with a digit"#,
            ),
        ];
        for (template, expected) in cases {
            let err = Template::parse(template).expect_err(template);
            assert_eq!(err.to_string(), expected);
        }
        assert_eq!(
            Template::parse("x\n{").unwrap_err(),
            TemplateError::Unclosed {
                template: "x\n{".into(),
                column: 3
            }
        );
    }

    #[test]
    fn fields_and_check_fields() {
        let template = Template::parse("{b} {a:,} {b} {_c9} {{d}}").unwrap();
        assert_eq!(template.source(), "{b} {a:,} {b} {_c9} {{d}}");
        assert_eq!(template.fields(), ["b", "a", "_c9"]);
        assert_eq!(template.check_fields(&["a", "b", "_c9", "extra"]), Ok(()));
        let err = template.check_fields(&["b", "a"]).unwrap_err();
        assert_eq!(
            err,
            TemplateError::UndeclaredField {
                template: template.source().into(),
                field: "_c9".into(),
                column: 15,
            }
        );
        assert_eq!(
            err.to_string(),
            r#"template "{b} {a:,} {b} {_c9} {{d}}" uses the undeclared field '_c9' at column 15"#
        );
        assert!(Template::parse("no fields").unwrap().fields().is_empty());
    }

    #[test]
    fn control_characters_separators_and_bidi_overrides_become_spaces() {
        let value =
            "a\u{b}b\u{c}c\u{85}d\u{2028}e\u{2029}f\u{1b}[1A\u{1b}[2Kg\u{202e}h\u{2067}i\tj\u{7f}k";
        for style in [Style::Plain, Style::Slack] {
            let got = render("<{v}>", json!({ "v": value }), style).unwrap();
            assert_eq!(got, "<a b c d e f [1A [2Kg h i j k>");
        }
        // Still cut at 200 characters, and still escaped for Slack, after flattening.
        let long = format!("<\u{1b}{}", "x".repeat(300));
        let got = render("{v}", json!({ "v": long }), Style::Slack).unwrap();
        assert_eq!(got, format!("&lt; {}…", "x".repeat(197)));
    }

    #[test]
    fn thousands_on_a_non_numeric_field_is_named() {
        let template = Template::parse("{n:,} {s} {s:,}").unwrap();
        assert_eq!(
            template.check_thousands(|_| true, |_| String::new()),
            Ok(())
        );
        let err = template
            .check_thousands(|name| name == "n", |_| "a string".into())
            .unwrap_err();
        assert_eq!(
            err,
            TemplateError::ThousandsOnNonNumber {
                template: "{n:,} {s} {s:,}".into(),
                field: "s".into(),
                declared: "a string".into(),
                column: 11,
            }
        );
        assert_eq!(
            err.to_string(),
            r#"template "{n:,} {s} {s:,}" uses ',' (thousands separator) on field 's' at column 11, which is a string; ',' applies only to integer, signed and number fields"#
        );
    }

    fn assert_grouped(text: &str, plain: &str) {
        let unsigned = text.strip_prefix('-').unwrap_or(text);
        let groups: Vec<&str> = unsigned.split(',').collect();
        assert!((1..=3).contains(&groups[0].len()), "{text}");
        assert!(groups[1..].iter().all(|g| g.len() == 3), "{text}");
        assert_eq!(text.replace(',', ""), plain);
    }

    proptest! {
        #[test]
        fn parse_gives_a_template_or_an_error_naming_it(source in any::<String>()) {
            match Template::parse(&source) {
                Ok(template) => prop_assert_eq!(template.source(), source.as_str()),
                Err(e) => prop_assert!(e.to_string().starts_with("template "), "{}", e),
            }
        }

        #[test]
        fn parse_never_panics_on_brace_soup(source in "[{}a-z0-9_:,!.\\[\\] é]{0,24}") {
            if let Ok(template) = Template::parse(&source) {
                let _ = template.render(&Map::new(), Style::Slack);
            }
        }

        #[test]
        fn any_value_renders_as_one_line_without_control_characters(value in any::<String>()) {
            for style in [Style::Plain, Style::Slack, Style::Discord] {
                let got = render("a {v} b", json!({ "v": value }), style).unwrap();
                prop_assert!(!got.chars().any(crate::sanitize::is_unsafe), "{:?}", got);
                prop_assert!(got.chars().count() <= 4 + 5 * MAX_VALUE_CHARS);
            }
        }

        #[test]
        fn i64_thousands(n in any::<i64>()) {
            let text = render("{n:,}", json!({ "n": n }), Style::Plain).unwrap();
            assert_grouped(&text, &n.to_string());
        }

        #[test]
        fn u64_thousands(n in any::<u64>()) {
            let text = render("{n:,}", json!({ "n": n }), Style::Plain).unwrap();
            assert_grouped(&text, &n.to_string());
        }

        #[test]
        fn f64_round_trips(
            x in any::<u64>().prop_map(f64::from_bits).prop_filter("finite", |x| x.is_finite())
        ) {
            let text = render("{x}", json!({ "x": x }), Style::Plain).unwrap();
            let back: f64 = text.parse().unwrap();
            prop_assert_eq!(back.to_bits(), x.to_bits(), "{}", text);
        }
    }
}
