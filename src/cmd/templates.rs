//! `events templates`: the catalog as a table, or every message previewed
//! with sample values, so whoever writes messages sees them before anyone in
//! the channel does.

use serde_json::{Value, json};

use super::{Context, key_values, print, table};
use crate::catalog::EventSpec;
use crate::cli::{Format, TemplatesArgs};
use crate::emitter::typed_fields;
use crate::event::{Event, Payload};
use crate::template::Style;

pub fn run(ctx: &Context, args: TemplatesArgs) -> anyhow::Result<()> {
    let catalog = &ctx.config()?.catalog;
    let specs: Vec<&EventSpec> = if args.types.is_empty() {
        catalog.iter().collect()
    } else {
        args.types
            .iter()
            .map(|t| catalog.lookup(t))
            .collect::<Result<_, _>>()?
    };
    let overrides = key_values(&args.fields, "--field")?;
    let mut rows = Vec::new();
    for spec in specs {
        let message = if args.preview {
            let known: Vec<(String, String)> = overrides.clone();
            let typed: Payload = typed_fields(catalog, &spec.name, &known)?;
            let event = Event::new(spec.name.clone(), spec.sample_payload(&typed));
            Some(catalog.render(&event, Style::Plain)?)
        } else {
            None
        };
        rows.push((spec, message));
    }
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
            for (spec, message) in &rows {
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
