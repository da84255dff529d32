//! A webhook's own request shape: extra `headers` and a JSON `body`
//! template, for receivers that expect their own format rather than the
//! event JSON. Both are compiled once, when the configuration loads, and
//! checked against the fields of every event type the destination routes,
//! so a shape that names a missing field never reaches the worker.
//!
//! Body rule: the body is any JSON value. Numbers, booleans and nulls are
//! sent as written; every string is a message template rendered per event
//! (values flattened to one line, as on the console); a string that is
//! exactly one plain `{field}` is replaced by the field's JSON value as it
//! is, keeping its type (`"{row_count}"` → `250000`, not `"250000"`) and its
//! text unflattened (JSON encoding already makes any text safe to carry).
//!
//! Header values are templates too, or `{ env = "NAME" }`: a secret read
//! from the environment at load, never shown in any output.

use serde_json::{Map, Value};

use crate::catalog::{Catalog, TemplateOverrideError};
use crate::event::Event;
use crate::secret::Secret;
use crate::template::{RenderError, Style, Template};

/// Headers the webhook sets itself: a configured one would break the
/// signature, the framing or the routing of the request.
const RESERVED: [&str; 8] = [
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// A `headers` or `body` setting that cannot be used. Each names what to
/// look for in the config file, for the line of the error.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ShapeError {
    #[error("{name:?} is not a valid HTTP header name")]
    BadHeaderName { name: String },
    #[error(
        "the header {name} is set by the webhook itself (signature, content type, host) and cannot be configured"
    )]
    ReservedHeader { name: String },
    #[error("the value of header {name} has characters an HTTP header cannot carry")]
    BadHeaderValue { name: String },
    #[error("the value of header {name} must be a string or {{ env = \"NAME\" }}")]
    HeaderValueType { name: String },
    #[error(
        "the value of header {name} is read from the environment variable {var}, which is not set"
    )]
    MissingEnv { name: String, var: String },
    #[error(
        "the value of header {name} read from {var} has characters an HTTP header cannot carry"
    )]
    BadSecretValue { name: String, var: String },
    #[error("header {name}: {error}")]
    HeaderTemplate {
        name: String,
        error: Box<TemplateOverrideError>,
    },
    #[error("body{path}: {error}")]
    BodyTemplate {
        path: String,
        template: String,
        error: Box<TemplateOverrideError>,
    },
    #[error("body{path}: {what} cannot be sent as JSON")]
    NotJson { path: String, what: &'static str },
}

impl ShapeError {
    /// Text of the config file the error is about: the header's name or
    /// the body's template.
    pub fn needle(&self) -> Option<&str> {
        match self {
            ShapeError::BadHeaderName { name }
            | ShapeError::ReservedHeader { name }
            | ShapeError::BadHeaderValue { name }
            | ShapeError::HeaderValueType { name }
            | ShapeError::MissingEnv { name, .. }
            | ShapeError::BadSecretValue { name, .. }
            | ShapeError::HeaderTemplate { name, .. } => Some(name),
            ShapeError::BodyTemplate { template, .. } => Some(template),
            ShapeError::NotJson { .. } => None,
        }
    }
}

/// A header's value: rendered per event, or a secret sent as it is.
#[derive(Debug, Clone)]
enum HeaderValue {
    Template(Template),
    Secret(Secret),
}

/// A body template node.
#[derive(Debug, Clone)]
enum Node {
    Literal(Value),
    /// `"{field}"`: the field's own JSON value.
    Field(String),
    Text(Template),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

/// A webhook's configured headers and body; the default is neither (the
/// event JSON, and only the webhook's own headers).
#[derive(Debug, Clone, Default)]
pub struct Shape {
    headers: Vec<(String, HeaderValue)>,
    body: Option<Node>,
}

impl Shape {
    /// Compiles `headers` and `body` as written in the config file, every
    /// template checked against the types `globs` route; `env` gives the
    /// secrets' values.
    pub fn compile(
        headers: Option<&toml::Table>,
        body: Option<&toml::Value>,
        catalog: &Catalog,
        globs: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Shape, ShapeError> {
        let check = |source: &str| catalog.with_template(globs, source).map(drop);
        let mut shape = Shape::default();
        for (name, value) in headers.into_iter().flatten() {
            shape.headers.push(header(name, value, &check, env)?);
        }
        if let Some(body) = body {
            shape.body = Some(node(body, "", &check)?);
        }
        Ok(shape)
    }

    /// The body sent for `event`: the template rendered, or the event JSON
    /// when there is none. The worker's own alert is always the event JSON:
    /// a body written for product events cannot name its fields.
    pub fn body(&self, event: &Event) -> Result<String, UnfitEvent> {
        match &self.body {
            Some(node) if !crate::alert::is_alert(&event.kind) => {
                Ok(render(node, &event.payload)?.to_string())
            }
            _ => Ok(event.to_json_line()),
        }
    }

    /// The configured headers for `event`, in order. A templated header the
    /// worker's alert lacks the fields for is left out of its request.
    pub fn headers(&self, event: &Event) -> Result<Vec<(&str, String)>, UnfitEvent> {
        let alert = crate::alert::is_alert(&event.kind);
        let mut out = Vec::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            match value {
                HeaderValue::Secret(secret) => {
                    out.push((name.as_str(), secret.expose().to_owned()))
                }
                HeaderValue::Template(template) => {
                    match template.render(&event.payload, Style::Plain) {
                        Ok(text) => out.push((name.as_str(), text)),
                        Err(_) if alert => {}
                        Err(error) => {
                            return Err(UnfitEvent::Header {
                                name: name.clone(),
                                error,
                            });
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

fn header(
    name: &str,
    value: &toml::Value,
    check: &dyn Fn(&str) -> Result<(), TemplateOverrideError>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, HeaderValue), ShapeError> {
    let named = || name.to_owned();
    let lower = name.to_ascii_lowercase();
    if ureq::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(ShapeError::BadHeaderName { name: named() });
    }
    if RESERVED.contains(&lower.as_str()) {
        return Err(ShapeError::ReservedHeader { name: named() });
    }
    let value = match value {
        toml::Value::String(source) => {
            if ureq::http::HeaderValue::from_str(source).is_err() {
                return Err(ShapeError::BadHeaderValue { name: named() });
            }
            check(source).map_err(|error| ShapeError::HeaderTemplate {
                name: named(),
                error: Box::new(error),
            })?;
            HeaderValue::Template(Template::parse(source).expect("checked above"))
        }
        toml::Value::Table(table) if table.len() == 1 && table.contains_key("env") => {
            let Some(var) = table["env"].as_str() else {
                return Err(ShapeError::HeaderValueType { name: named() });
            };
            let var = var.to_owned();
            let secret = env(&var).ok_or_else(|| ShapeError::MissingEnv {
                name: named(),
                var: var.clone(),
            })?;
            if ureq::http::HeaderValue::from_str(&secret).is_err() {
                return Err(ShapeError::BadSecretValue { name: named(), var });
            }
            HeaderValue::Secret(Secret::new(secret))
        }
        _ => return Err(ShapeError::HeaderValueType { name: named() }),
    };
    Ok((name.to_owned(), value))
}

/// Compiles one body value at `path` (`.a.b[2]`, for errors).
fn node(
    value: &toml::Value,
    path: &str,
    check: &dyn Fn(&str) -> Result<(), TemplateOverrideError>,
) -> Result<Node, ShapeError> {
    let not_json = |what| ShapeError::NotJson {
        path: path.to_owned(),
        what,
    };
    Ok(match value {
        toml::Value::String(source) => {
            check(source).map_err(|error| ShapeError::BodyTemplate {
                path: path.to_owned(),
                template: source.clone(),
                error: Box::new(error),
            })?;
            let template = Template::parse(source).expect("checked above");
            match template.lone_field() {
                Some(field) => Node::Field(field.to_owned()),
                None => Node::Text(template),
            }
        }
        toml::Value::Integer(n) => Node::Literal(Value::from(*n)),
        toml::Value::Float(f) => Node::Literal(
            serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .ok_or_else(|| not_json("a NaN or infinite number"))?,
        ),
        toml::Value::Boolean(b) => Node::Literal(Value::Bool(*b)),
        toml::Value::Datetime(_) => return Err(not_json("a TOML date or time")),
        toml::Value::Array(items) => Node::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| node(item, &format!("{path}[{i}]"), check))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(table) => Node::Object(
            table
                .iter()
                .map(|(key, item)| Ok((key.clone(), node(item, &format!("{path}.{key}"), check)?)))
                .collect::<Result<_, ShapeError>>()?,
        ),
    })
}

/// Why the body or a header cannot be made for an event: the receiver
/// can never take it as it is.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnfitEvent {
    #[error("the payload has no field '{0}', which the body uses")]
    MissingField(String),
    #[error(transparent)]
    Body(#[from] RenderError),
    #[error("header {name}: {error}")]
    Header { name: String, error: RenderError },
}

fn render(node: &Node, payload: &Map<String, Value>) -> Result<Value, UnfitEvent> {
    Ok(match node {
        Node::Literal(value) => value.clone(),
        Node::Field(field) => payload
            .get(field)
            .cloned()
            .ok_or_else(|| UnfitEvent::MissingField(field.clone()))?,
        Node::Text(template) => Value::String(template.render(payload, Style::Plain)?),
        Node::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| render(item, payload))
                .collect::<Result<_, _>>()?,
        ),
        Node::Object(entries) => Value::Object(
            entries
                .iter()
                .map(|(key, item)| Ok((key.clone(), render(item, payload)?)))
                .collect::<Result<_, UnfitEvent>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(headers: &str, body: &str) -> Result<Shape, ShapeError> {
        let headers: toml::Table = toml::from_str(headers).unwrap();
        let body: toml::Table = toml::from_str(body).unwrap();
        Shape::compile(
            Some(&headers),
            body.get("body"),
            &Catalog::builtin(),
            &["import.completed".to_owned()],
            &|name| (name == "TOKEN").then(|| "Bearer s3cret".to_owned()),
        )
    }

    fn import() -> Event {
        let payload = json!({"email": "a@b.c", "importer_name": "CRM\nnew", "row_count": 250_000});
        Event::new("import.completed", payload.as_object().unwrap().clone())
    }

    #[test]
    fn a_body_renders_strings_and_keeps_a_lone_fields_type() {
        let shape = compile(
            "",
            r#"body = { text = "{row_count:,} rows by {email}", rows = "{row_count}", who = "{email}", tags = ["import", "{importer_name}"], via = "via {importer_name}", n = 1, ok = true }"#,
        )
        .unwrap();
        let body: Value = serde_json::from_str(&shape.body(&import()).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"text": "250,000 rows by a@b.c", "rows": 250_000, "who": "a@b.c", "tags": ["import", "CRM\nnew"], "via": "via CRM new", "n": 1, "ok": true})
        );
    }

    #[test]
    fn headers_render_and_secrets_are_never_described() {
        let shape = compile(
            r#"X-Rows = "{row_count}"
Authorization = { env = "TOKEN" }"#,
            "",
        )
        .unwrap();
        assert_eq!(
            shape.headers(&import()).unwrap(),
            [
                ("X-Rows", "250000".to_owned()),
                ("Authorization", "Bearer s3cret".to_owned())
            ]
        );
        let shown = format!("{shape:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn bad_and_reserved_header_names_and_unknown_fields_are_refused() {
        let refused = |headers: &str, body: &str| compile(headers, body).unwrap_err();
        assert_eq!(
            refused(r#""Bad Name" = "x""#, ""),
            ShapeError::BadHeaderName {
                name: "Bad Name".into()
            }
        );
        for name in ["Content-Type", "webhook-signature", "HOST"] {
            assert!(matches!(
                refused(&format!("{name} = \"x\""), ""),
                ShapeError::ReservedHeader { .. }
            ));
        }
        assert!(matches!(
            refused(r#"Authorization = { env = "UNSET" }"#, ""),
            ShapeError::MissingEnv { .. }
        ));
        let err = refused("", r#"body = { user = { plan = "{plan}" } }"#);
        assert_eq!(err.needle(), Some("{plan}"));
        assert_eq!(
            err.to_string(),
            "body.user.plan: for event type import.completed: template \"{plan}\" uses the undeclared field 'plan' at column 1"
        );
        assert!(matches!(
            refused("", "body = { at = 1979-05-27 }"),
            ShapeError::NotJson { .. }
        ));
    }

    #[test]
    fn the_alert_keeps_the_event_json_and_its_static_headers() {
        let shape = compile(
            r#"X-Rows = "{row_count}"
X-Source = "events""#,
            r#"body = { rows = "{row_count}" }"#,
        )
        .unwrap();
        let alert = crate::alert::event("hook", 2, "HTTP 500");
        assert_eq!(shape.body(&alert).unwrap(), alert.to_json_line());
        assert_eq!(
            shape.headers(&alert).unwrap(),
            [("X-Source", "events".to_owned())]
        );
    }

    #[test]
    fn an_event_the_body_or_a_header_cannot_be_made_for_says_which() {
        let shape = compile(
            r#"X-Rows = "{row_count}""#,
            r#"body = { rows = "{row_count}" }"#,
        )
        .unwrap();
        let mut event = import();
        event.payload.remove("row_count");
        assert_eq!(
            shape.headers(&event).unwrap_err().to_string(),
            "header X-Rows: the payload has no field 'row_count', which the template uses"
        );
        let err = shape.body(&event).unwrap_err();
        assert_eq!(err, UnfitEvent::MissingField("row_count".into()));
        assert_eq!(
            err.to_string(),
            "the payload has no field 'row_count', which the body uses"
        );
    }
}
