//! `events templates`: the catalog as a table, or every message previewed
//! with sample values, so whoever writes messages sees them before anyone in
//! the channel does — as the console prints it, or (`--to DEST`) exactly as
//! one destination would receive it, through its own sender's `prepare`.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Context, key_values, print, table};
use crate::catalog::EventSpec;
use crate::cli::{Format, TemplatesArgs};
use crate::dest::{self, Destination};
use crate::emitter::typed_fields;
use crate::error::Error;
use crate::event::{Event, Payload};
use crate::filter::Verdict;
use crate::route::Route;
use crate::setup::Setup;
use crate::template::Style;

pub fn run(ctx: &Context, args: TemplatesArgs) -> anyhow::Result<()> {
    let to = match &args.to {
        Some(name) => Some(Receiver::new(ctx.setup()?, name)?),
        None => None,
    };
    // With --to, that destination's messages: its own template, if any.
    let catalog = to
        .as_ref()
        .and_then(|r| r.route.config().messages.as_ref())
        .unwrap_or(&ctx.setup()?.catalog);
    let specs: Vec<&EventSpec> = if args.types.is_empty() {
        catalog.iter().collect()
    } else {
        args.types
            .iter()
            .map(|t| catalog.lookup(t).map_err(Error::from))
            .collect::<Result<_, _>>()?
    };
    let overrides = key_values(&args.fields, "--field")?;
    let mut rows = Vec::new();
    for spec in specs {
        let message = if args.preview {
            let typed: Payload =
                typed_fields(catalog, &spec.name, &overrides).map_err(Error::from)?;
            let event = Event::new(spec.name.clone(), spec.sample_payload(&typed));
            Some(match &to {
                Some(receiver) => receiver.preview(&event),
                None => catalog.render(&event, Style::Plain).map_err(Error::from)?,
            })
        } else {
            None
        };
        rows.push((spec, message));
    }
    show(&rows, &args)
}

/// Prints the catalog's rows (with their previews, if any) as `--format`
/// asks.
fn show(rows: &[(&EventSpec, Option<String>)], args: &TemplatesArgs) -> anyhow::Result<()> {
    match args.format {
        Format::Json => {
            let items: Vec<Value> = rows
                .iter()
                .map(|(spec, message)| {
                    let fields: serde_json::Map<String, Value> = spec
                        .fields
                        .iter()
                        .map(|(name, kind)| (name.clone(), json!(type_name(*kind))))
                        .collect();
                    let mut item = json!({
                        "type": spec.name,
                        "fields": fields,
                        "template": spec.template.source(),
                        "custom": spec.custom,
                    });
                    if let Some(message) = message {
                        item["preview"] = json!(message);
                    }
                    item
                })
                .collect();
            print(&format!("{}\n", serde_json::to_string_pretty(&items)?))
        }
        Format::Table => {
            let mut t = if args.preview {
                table::new(&["TYPE", "PREVIEW"])
            } else {
                table::new(&["TYPE", "FIELDS", "TEMPLATE"])
            };
            for (spec, message) in rows {
                match message {
                    Some(message) => t.add_row(vec![spec.name.clone(), message.clone()]),
                    None => t.add_row(vec![
                        spec.name.clone(),
                        spec.fields
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        spec.template.source().to_owned(),
                    ]),
                };
            }
            print(&table::render(&t))
        }
    }
}

/// One destination, previewed: its route (globs and `when`) and its sender.
struct Receiver {
    route: Route,
    dest: Arc<dyn Destination>,
}

impl Receiver {
    fn new(config: &Setup, name: &str) -> anyhow::Result<Receiver> {
        let routes = config.routes().map_err(Error::from)?;
        let id = routes
            .resolve("--to", &[name.to_owned()])
            .map_err(Error::from)?[0];
        let route = routes.get(id).clone();
        let dest = dest::build(
            route.config(),
            &config.catalog,
            config.delivery.http_timeout,
        );
        Ok(Receiver { route, dest })
    }

    /// What the destination makes of `event`, or why it would not get it.
    fn preview(&self, event: &Event) -> String {
        let name = self.route.name();
        match self.route.decide(event) {
            Verdict::Wanted => self
                .dest
                .prepare(event)
                .unwrap_or_else(|e| format!("(not sent to {name}: {e})")),
            Verdict::Unwanted if !self.route.takes(&event.kind) => {
                format!("(not routed to {name}: its events globs do not match this type)")
            }
            Verdict::Unwanted => match &self.route.config().when {
                Some(when) => format!("(not routed to {name}: when {:?} is false)", when.source()),
                None => format!(
                    "(not routed to {name}: an alert never goes to the destination it is about)"
                ),
            },
            Verdict::Failed(e) => format!(
                "(not routed to {name}: when {:?} failed: {})",
                self.route.config().when.as_ref().map_or("", |w| w.source()),
                crate::sanitize::escape(&e)
            ),
        }
    }
}

fn type_name(kind: crate::catalog::FieldType) -> &'static str {
    use crate::catalog::FieldType;
    match kind {
        FieldType::String => "string",
        FieldType::Integer { signed: false } => "integer",
        FieldType::Integer { signed: true } => "signed",
        FieldType::Number => "number",
        FieldType::Boolean => "boolean",
    }
}
