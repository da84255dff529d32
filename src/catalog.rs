//! The catalog: which event types exist, the typed fields each requires and
//! the message template of each. Validation happens here, before anything is
//! written, so a queue never holds an event its worker cannot render.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::config::{ConfigError, Table};
use crate::event::{BadEvent, Event, EventLine, Payload};
use crate::template::{RenderError, Style, Template, TemplateError};

/// The type of a field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    /// A whole number; non-negative unless `signed`.
    Integer {
        signed: bool,
    },
    Number,
    Boolean,
}

impl FieldType {
    /// Parses a config file's type name: `string`, `integer`, `signed`
    /// (a signed integer), `number`, `boolean`.
    pub fn parse(name: &str) -> Option<FieldType> {
        Some(match name {
            "string" => FieldType::String,
            "integer" => FieldType::Integer { signed: false },
            "signed" | "signed integer" => FieldType::Integer { signed: true },
            "number" => FieldType::Number,
            "boolean" | "bool" => FieldType::Boolean,
            _ => return None,
        })
    }

    /// Whether `value` is of this type.
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            FieldType::String => value.is_string(),
            FieldType::Integer { signed: false } => value.is_u64(),
            FieldType::Integer { signed: true } => value.is_i64() || value.is_u64(),
            FieldType::Number => value.is_number(),
            FieldType::Boolean => value.is_boolean(),
        }
    }

    /// Whether Python's `,` (thousands separator) applies to values of this
    /// type: integers and numbers, not strings nor (deliberately) booleans.
    pub fn is_numeric(self) -> bool {
        matches!(self, FieldType::Integer { .. } | FieldType::Number)
    }

    /// Converts a command-line value (`--field k=v`) to this type.
    pub fn from_text(self, text: &str) -> Option<Value> {
        match self {
            FieldType::String => Some(Value::String(text.to_owned())),
            FieldType::Integer { .. } => {
                let clean = text.replace(['_', ','], "");
                let value = clean
                    .parse::<u64>()
                    .map(Value::from)
                    .or_else(|_| clean.parse::<i64>().map(Value::from))
                    .ok()?;
                self.accepts(&value).then_some(value)
            }
            FieldType::Number => text
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .and_then(|f| {
                    text.parse::<i64>()
                        .map(Value::from)
                        .ok()
                        .or_else(|| serde_json::Number::from_f64(f).map(Value::Number))
                }),
            FieldType::Boolean => match text {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
        }
    }

    /// A sample value for `templates --preview`.
    fn sample(self) -> Value {
        match self {
            FieldType::String => "example".into(),
            FieldType::Integer { .. } => 42.into(),
            FieldType::Number => 3.5.into(),
            FieldType::Boolean => true.into(),
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FieldType::String => "a string",
            FieldType::Integer { signed: false } => "a non-negative integer",
            FieldType::Integer { signed: true } => "an integer",
            FieldType::Number => "a number",
            FieldType::Boolean => "true or false",
        })
    }
}

/// One event type: its name, required fields and message template.
#[derive(Debug, Clone)]
pub struct EventSpec {
    pub name: String,
    pub fields: Vec<(String, FieldType)>,
    pub template: Template,
    /// Whether it comes from the config file rather than the built-in catalog.
    pub custom: bool,
}

impl EventSpec {
    /// A spec whose template is checked against its fields: every field it
    /// uses is declared, and `{field:,}` is used only on numeric fields.
    pub fn new(
        name: &str,
        fields: Vec<(String, FieldType)>,
        template: &str,
    ) -> Result<EventSpec, TemplateError> {
        let template = Template::parse(template)?;
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        template.check_fields(&names)?;
        let declared = |field: &str| fields.iter().find(|(n, _)| n == field).map(|(_, t)| *t);
        template.check_thousands(
            |field| declared(field).is_some_and(FieldType::is_numeric),
            |field| declared(field).map(|t| t.to_string()).unwrap_or_default(),
        )?;
        Ok(EventSpec {
            name: name.to_owned(),
            fields,
            template,
            custom: false,
        })
    }

    /// The declared type of `field`.
    pub fn field(&self, field: &str) -> Option<FieldType> {
        self.fields
            .iter()
            .find(|(n, _)| n == field)
            .map(|(_, t)| *t)
    }

    /// Sample values for every field: realistic ones for the catalog's usual
    /// field names, overridden by `overrides`.
    pub fn sample_payload(&self, overrides: &Payload) -> Payload {
        let mut payload = Payload::new();
        for (name, kind) in &self.fields {
            let value = match name.as_str() {
                "email" => "ada@example.com".into(),
                "importer_name" => "CRM contacts".into(),
                "plan" => "pro".into(),
                "row_count" => 1_234_567.into(),
                "error" => "row 12: invalid date".into(),
                "dest" => "segment".into(),
                "count" => 3.into(),
                "since" => "2026-11-27T09:00:00.000Z".into(),
                _ => kind.sample(),
            };
            payload.insert(name.clone(), value);
        }
        payload.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        payload
    }
}

/// Input that does not fit the catalog. Exit status 2.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValidationError {
    #[error("unknown event type '{given}'{}", suggestion.as_ref().map(|s| format!("; did you mean '{s}'?")).unwrap_or_default())]
    UnknownType {
        given: String,
        suggestion: Option<String>,
    },
    #[error("event type '{kind}' requires field '{field}' ({expected})")]
    MissingField {
        kind: String,
        field: String,
        expected: String,
    },
    #[error("field '{field}' of '{kind}' must be {expected}, not {got}")]
    BadField {
        kind: String,
        field: String,
        expected: String,
        got: String,
    },
    #[error("the message of '{kind}' cannot be rendered: {reason}")]
    Render { kind: String, reason: String },
    /// An id or type that is not one printable word.
    #[error(transparent)]
    Token(#[from] crate::event::BadToken),
    #[error("{0}")]
    Invalid(String),
}

/// The built-in event types, for the library's typed API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    UserSignup,
    UserFirstImport,
    SubscriptionStarted,
    SubscriptionCancelled,
    SubscriptionPaymentFailed,
    ImporterCreated,
    ImportCompleted,
    ImportFailed,
    /// Raised by the worker itself when deliveries are dead-lettered.
    DeadLetters,
    /// Raised by the worker itself when a destination's breaker opens.
    DestinationDown,
}

impl EventType {
    pub const ALL: [EventType; 10] = [
        EventType::UserSignup,
        EventType::UserFirstImport,
        EventType::SubscriptionStarted,
        EventType::SubscriptionCancelled,
        EventType::SubscriptionPaymentFailed,
        EventType::ImporterCreated,
        EventType::ImportCompleted,
        EventType::ImportFailed,
        EventType::DeadLetters,
        EventType::DestinationDown,
    ];

    /// The type's name on the wire, e.g. `user.signup`.
    pub fn as_str(self) -> &'static str {
        self.spec().0
    }

    fn spec(
        self,
    ) -> (
        &'static str,
        &'static [(&'static str, FieldType)],
        &'static str,
    ) {
        const S: FieldType = FieldType::String;
        const N: FieldType = FieldType::Integer { signed: false };
        match self {
            EventType::UserSignup => ("user.signup", &[("email", S)], "New signup: {email}"),
            EventType::UserFirstImport => (
                "user.first_import",
                &[("email", S), ("importer_name", S)],
                "First import: {email} via {importer_name}",
            ),
            EventType::SubscriptionStarted => (
                "subscription.started",
                &[("email", S), ("plan", S)],
                "New subscriber: {email} ({plan})",
            ),
            EventType::SubscriptionCancelled => (
                "subscription.cancelled",
                &[("email", S), ("plan", S)],
                "Churned: {email} ({plan})",
            ),
            EventType::SubscriptionPaymentFailed => (
                "subscription.payment_failed",
                &[("email", S)],
                "Payment failed: {email}",
            ),
            EventType::ImporterCreated => (
                "importer.created",
                &[("email", S), ("importer_name", S)],
                "New importer: {importer_name} by {email}",
            ),
            EventType::ImportCompleted => (
                "import.completed",
                &[("email", S), ("importer_name", S), ("row_count", N)],
                "Import: {row_count:,} rows by {email}",
            ),
            EventType::ImportFailed => (
                "import.failed",
                &[("email", S), ("importer_name", S), ("error", S)],
                "Import failed: {email} - {error}",
            ),
            EventType::DeadLetters => (
                crate::alert::ALERT_TYPE,
                &[("dest", S), ("count", N), ("error", S)],
                "Dead letters: {count:,} deliveries to {dest} failed: {error}",
            ),
            EventType::DestinationDown => (
                crate::alert::DOWN_TYPE,
                &[("dest", S), ("error", S), ("since", S)],
                "Destination down: {dest} ({error}); holding deliveries",
            ),
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for EventType {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<EventType> for String {
    fn from(t: EventType) -> String {
        t.as_str().to_owned()
    }
}

/// A destination's `template` that does not fit a type it routes.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{}{error}", kind.as_ref().map(|k| format!("for event type {k}: ")).unwrap_or_default())]
pub struct TemplateOverrideError {
    /// The type whose fields it does not fit; `None` when it does not parse.
    pub kind: Option<String>,
    pub error: TemplateError,
}

/// Every event type known to this process: the built-ins, then the config
/// file's additions, in that order.
#[derive(Debug, Clone)]
pub struct Catalog {
    specs: Vec<EventSpec>,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog::builtin()
    }
}

impl Catalog {
    /// The built-in catalog.
    pub fn builtin() -> Catalog {
        let specs = EventType::ALL
            .iter()
            .map(|t| {
                let (name, fields, template) = t.spec();
                let fields = fields.iter().map(|(n, k)| ((*n).to_owned(), *k)).collect();
                EventSpec::new(name, fields, template).expect("built-in templates are valid")
            })
            .collect();
        Catalog { specs }
    }

    /// Adds a type, or replaces the one of the same name.
    pub fn insert(&mut self, spec: EventSpec) {
        match self.specs.iter_mut().find(|s| s.name == spec.name) {
            Some(slot) => *slot = spec,
            None => self.specs.push(spec),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &EventSpec> {
        self.specs.iter()
    }

    pub fn get(&self, name: &str) -> Option<&EventSpec> {
        self.specs.iter().find(|s| s.name == name)
    }

    /// This catalog with `template` as the message of every type `globs`
    /// match: a destination's own `template`, checked against each such
    /// type's fields. The error names the type. The built-in alert
    /// (`events.dead_letters`) keeps its own message: a destination's
    /// template is written for product events, and a `"*"` glob must not
    /// make it name fields an alert does not have.
    pub fn with_template(
        &self,
        globs: &[String],
        template: &str,
    ) -> Result<Catalog, TemplateOverrideError> {
        Template::parse(template).map_err(|error| TemplateOverrideError { kind: None, error })?;
        let globs: Vec<wildmatch::WildMatch> =
            globs.iter().map(|g| wildmatch::WildMatch::new(g)).collect();
        let mut catalog = self.clone();
        for spec in &mut catalog.specs {
            if crate::alert::is_alert(&spec.name) || !globs.iter().any(|g| g.matches(&spec.name)) {
                continue;
            }
            let custom = spec.custom;
            *spec = EventSpec::new(&spec.name, spec.fields.clone(), template).map_err(|error| {
                TemplateOverrideError {
                    kind: Some(spec.name.clone()),
                    error,
                }
            })?;
            spec.custom = custom;
        }
        Ok(catalog)
    }

    /// The spec of `name`, or an error suggesting the nearest known type.
    pub fn lookup(&self, name: &str) -> Result<&EventSpec, ValidationError> {
        self.get(name).ok_or_else(|| ValidationError::UnknownType {
            given: crate::sanitize::escape(name).into_owned(),
            suggestion: self.nearest(name),
        })
    }

    fn nearest(&self, name: &str) -> Option<String> {
        nearest(name, self.specs.iter().map(|s| s.name.as_str())).map(str::to_owned)
    }

    /// Checks that `payload` has every field `kind` requires, each of the
    /// declared type, and that its message renders, so `emit` and
    /// `emit --dry-run` accept exactly the same events. Fields beyond the
    /// declared ones are allowed: they travel with the event (Segment
    /// properties, webhook bodies).
    pub fn validate(&self, kind: &str, payload: &Payload) -> Result<(), ValidationError> {
        self.render_payload(kind, payload, Style::Plain).map(drop)
    }

    /// Checks the fields of `payload` against `kind`, then renders it.
    fn render_payload(
        &self,
        kind: &str,
        payload: &Payload,
        style: Style,
    ) -> Result<String, ValidationError> {
        let spec = self.lookup(kind)?;
        for (field, expected) in &spec.fields {
            match payload.get(field) {
                None | Some(Value::Null) => {
                    return Err(ValidationError::MissingField {
                        kind: kind.to_owned(),
                        field: field.clone(),
                        expected: expected.to_string(),
                    });
                }
                Some(value) if !expected.accepts(value) => {
                    return Err(ValidationError::BadField {
                        kind: kind.to_owned(),
                        field: field.clone(),
                        expected: expected.to_string(),
                        got: describe_value(value),
                    });
                }
                Some(_) => {}
            }
        }
        spec.template
            .render(payload, style)
            .map_err(|e| render_error(kind, e))
    }

    /// Reads one line of JSON Lines input (`emit --stdin`, `replay --file`)
    /// into a validated event; the error says what is wrong with the line.
    /// Control characters in the error (serde echoes unknown keys as they
    /// are) are escaped, so it is safe to print.
    pub fn parse_line(&self, line: &str) -> Result<Event, BadLine> {
        let parsed: EventLine = serde_json::from_str(line).map_err(BadLine::NotEvent)?;
        let event = parsed.into_event()?;
        self.validate(&event.kind, &event.payload)?;
        Ok(event)
    }

    /// Checks a complete event: its id and type (see
    /// [`crate::event::check_token`]), then [`Catalog::validate`].
    pub fn validate_event(&self, event: &Event) -> Result<(), ValidationError> {
        event.check_tokens()?;
        self.validate(&event.kind, &event.payload)
    }

    /// Validates `event` and renders its message in `style`.
    pub fn render(&self, event: &Event, style: Style) -> Result<String, ValidationError> {
        self.render_payload(&event.kind, &event.payload, style)
    }
}

/// Why a line of JSON Lines input is not an event (see
/// [`Catalog::parse_line`]). The message is safe to print: control
/// characters (serde echoes unknown keys as they are) are escaped.
#[derive(Debug, thiserror::Error)]
pub enum BadLine {
    #[error("not a valid event: {}", escaped(.0))]
    NotEvent(serde_json::Error),
    #[error("{}", escaped(.0))]
    Event(#[from] BadEvent),
    #[error("{}", escaped(.0))]
    Invalid(#[from] ValidationError),
}

fn escaped(error: &dyn fmt::Display) -> String {
    crate::sanitize::escape(&error.to_string()).into_owned()
}

fn render_error(kind: &str, error: RenderError) -> ValidationError {
    ValidationError::Render {
        kind: kind.to_owned(),
        reason: error.to_string(),
    }
}

/// A short description of a JSON value for error messages.
fn describe_value(value: &Value) -> String {
    let text = value.to_string();
    let text = crate::sanitize::escape(&text);
    let shown: String = text.chars().take(40).collect();
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(n) if n.is_i64() && !n.is_u64() => "a negative integer",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    if shown.len() < text.len() {
        format!("{kind} ({shown}…)")
    } else {
        format!("{kind} ({shown})")
    }
}

/// The catalog with the config file's `[[event]]` tables applied, in
/// order: each adds a type or overrides a built-in's template (and, if it
/// sets them, its fields). An error names the file, line and key.
pub fn with_tables(mut catalog: Catalog, tables: &[Table]) -> Result<Catalog, ConfigError> {
    for table in tables {
        table.only(&["type", "fields", "template"], |_| None)?;
        let kind = table.require::<String>("type")?;
        let template = table.require::<String>("template")?;
        let name = kind.get_ref();
        if !valid_type_name(name) {
            return Err(table.at(
                kind.span(),
                "type",
                format!(
                    "{name:?} is not a valid event type name (letters, digits, '_', '-' and '.')"
                ),
            ));
        }
        let fields = match table.get::<toml::Table>("fields")? {
            Some(fields) => {
                let mut parsed = Vec::new();
                for (field, kind) in fields.get_ref() {
                    let kind = kind.as_str().and_then(FieldType::parse).ok_or_else(|| {
                        table.at(
                            fields.span(),
                            &format!("fields.{field}"),
                            format!("unknown field type {kind} (expected \"string\", \"integer\", \"signed\", \"number\" or \"boolean\")"),
                        )
                    })?;
                    parsed.push((field.clone(), kind));
                }
                parsed
            }
            None => catalog
                .get(name)
                .map(|s| s.fields.clone())
                .unwrap_or_default(),
        };
        let mut spec = EventSpec::new(name, fields, template.get_ref())
            .map_err(|e| table.at(template.span(), "template", e))?;
        spec.custom = catalog.get(name).is_none_or(|s| s.custom);
        catalog.insert(spec);
    }
    Ok(catalog)
}

/// Event type names: letters, digits, `_`, `-` and `.`.
fn valid_type_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The name among `names` nearest to `name` (a typo's distance away), for
/// a "did you mean" in an error.
pub fn nearest<'a>(name: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    names
        .map(|n| (strsim::damerau_levenshtein(name, n), n))
        .filter(|(d, n)| *d <= 3.max(n.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(v: Value) -> Payload {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_destination_template_for_every_type_leaves_the_alert_its_own_message() {
        let own = Catalog::builtin()
            .with_template(&["*".to_owned()], "Growth: {email}")
            .expect("the alert's fields are not asked of a product template");
        let alert = crate::alert::event("segment", 3, "HTTP 401");
        assert_eq!(
            own.render(&alert, Style::Plain).unwrap(),
            "Dead letters: 3 deliveries to segment failed: HTTP 401"
        );
    }

    #[test]
    fn a_destination_template_replaces_only_the_types_its_globs_match() {
        let globs = ["subscription.started".to_owned(), "*.cancelled".to_owned()];
        let own = Catalog::builtin()
            .with_template(&globs, "{email} on {plan} :money_with_wings:")
            .unwrap();
        let event = |kind: &str| Event {
            id: "evt_1".into(),
            kind: kind.into(),
            ts: "2026-01-01T00:00:00Z".into(),
            payload: payload(json!({"email": "a@b.c", "plan": "pro"})),
        };
        assert_eq!(
            own.render(&event("subscription.started"), Style::Plain)
                .unwrap(),
            "a@b.c on pro :money_with_wings:"
        );
        assert_eq!(
            own.render(&event("subscription.cancelled"), Style::Plain)
                .unwrap(),
            "a@b.c on pro :money_with_wings:"
        );
        assert_eq!(
            own.render(&event("user.signup"), Style::Plain).unwrap(),
            "New signup: a@b.c"
        );
    }

    #[test]
    fn a_destination_template_must_fit_every_type_it_routes() {
        let err = Catalog::builtin()
            .with_template(&["subscription.*".to_owned()], "{email} ({plan})")
            .unwrap_err();
        assert_eq!(err.kind.as_deref(), Some("subscription.payment_failed"));
        assert_eq!(
            err.to_string(),
            "for event type subscription.payment_failed: template \"{email} ({plan})\" uses the undeclared field 'plan' at column 10"
        );
        let err = Catalog::builtin()
            .with_template(&["nothing.*".to_owned()], "{email")
            .unwrap_err();
        assert_eq!(err.kind, None);
    }

    #[test]
    fn unknown_type_suggests_the_nearest() {
        let err = Catalog::builtin()
            .validate("user.sigup", &Payload::new())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown event type 'user.sigup'; did you mean 'user.signup'?"
        );
        let err = Catalog::builtin()
            .validate("zzz", &Payload::new())
            .unwrap_err();
        assert_eq!(err.to_string(), "unknown event type 'zzz'");
    }

    #[test]
    fn missing_and_ill_typed_fields_are_named() {
        let c = Catalog::builtin();
        let err = c
            .validate(
                "import.completed",
                &payload(json!({"email": "a@b", "importer_name": "x"})),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "event type 'import.completed' requires field 'row_count' (a non-negative integer)"
        );
        let err = c
            .validate(
                "import.completed",
                &payload(json!({"email": "a@b", "importer_name": "x", "row_count": -3})),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "field 'row_count' of 'import.completed' must be a non-negative integer, not a negative integer (-3)"
        );
    }

    #[test]
    fn every_builtin_renders_its_sample() {
        let c = Catalog::builtin();
        for spec in c.iter() {
            let event = Event::new(spec.name.clone(), spec.sample_payload(&Payload::new()));
            assert!(!c.render(&event, Style::Slack).unwrap().is_empty());
        }
    }

    #[test]
    fn field_types_parse_command_line_text() {
        let n = FieldType::Integer { signed: false };
        assert_eq!(n.from_text("1_234"), Some(json!(1234)));
        assert_eq!(n.from_text("-1"), None);
        assert_eq!(
            FieldType::Integer { signed: true }.from_text("-1"),
            Some(json!(-1))
        );
        assert_eq!(FieldType::Number.from_text("2.5"), Some(json!(2.5)));
        assert_eq!(FieldType::Boolean.from_text("yes"), None);
    }
}
