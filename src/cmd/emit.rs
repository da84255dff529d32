//! `events emit`: validate, then write one event (or JSON Lines from stdin,
//! in pipelined batches), then print the id.

use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;

use anyhow::Context as _;
use serde_json::Value;

use super::{Context, key_values, print};
use crate::catalog::{Catalog, ValidationError};
use crate::cli::EmitArgs;
use crate::emitter::{Emitter, typed_fields};
use crate::error::Error;
use crate::event::Event;
use crate::jsonl::read_events;
use crate::queue::QueueError;
use crate::template::Style;

/// Events written per pipelined batch with `--stdin`.
const BATCH: usize = 1000;

pub fn run(ctx: &Context, args: EmitArgs) -> anyhow::Result<()> {
    let config = ctx.setup()?;
    let mut emitter = Emitter::new(config.clone())?;
    if args.stdin {
        return emit_stdin(ctx, &mut emitter, args.dry_run);
    }
    let kind = args
        .event_type
        .clone()
        .expect("clap requires a type without --stdin");
    let event = Event::new(kind.clone(), payload(&emitter, &kind, &args)?);
    emitter
        .catalog()
        .validate(&event.kind, &event.payload)
        .map_err(Error::from)?;
    if args.dry_run {
        let message = emitter
            .catalog()
            .render(&event, Style::Plain)
            .map_err(Error::from)?;
        return print(&format!("{}\n{message}\n", event.to_json_line()));
    }
    if config.disabled {
        log::debug!("EVENTS_DISABLED is set: the event is valid and was not written");
        return Ok(());
    }
    let written = match &args.idempotency_key {
        Some(key) => emitter.emit_idempotent(key, event),
        None => emitter.emit_event(event),
    };
    match written {
        Ok(id) => print(&format!("{id}\n")),
        // The event is on the primary: print its id as for any written
        // event (a retry would write it twice), and fail for the replicas.
        Err(Error::Queue(QueueError::NotReplicated(e))) => {
            if let Some(id) = &e.id {
                print(&format!("{id}\n"))?;
            }
            Err(Error::Queue(QueueError::NotReplicated(e)).into())
        }
        Err(e) => Err(e.into()),
    }
}

/// The payload from `--json`, then the per-field flags, then `--field`.
fn payload(
    emitter: &Emitter,
    kind: &str,
    args: &EmitArgs,
) -> anyhow::Result<crate::event::Payload> {
    let catalog = emitter.catalog();
    catalog.lookup(kind).map_err(Error::from)?;
    let mut payload = match &args.json {
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(Error::from(ValidationError::Invalid(
                    "--json must be a JSON object".into(),
                ))
                .into());
            }
            Err(e) => {
                return Err(Error::from(ValidationError::Invalid(format!(
                    "--json is not valid JSON: {e}"
                )))
                .into());
            }
        },
        None => Default::default(),
    };
    let flags = [
        ("email", &args.email),
        ("importer_name", &args.importer_name),
        ("plan", &args.plan),
        ("row_count", &args.row_count),
        ("error", &args.error),
    ];
    let mut pairs: Vec<(String, String)> = flags
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| ((*k).to_owned(), v.clone())))
        .collect();
    pairs.extend(key_values(&args.fields, "--field")?);
    payload.extend(typed_fields(catalog, kind, &pairs).map_err(Error::from)?);
    Ok(payload)
}

/// Reads JSON Lines; every bad line is reported with its number and the
/// good ones still go in. Fails (exit 2) when any line was bad.
///
/// A second thread reads, parses and validates the lines while this one
/// writes the batch before, so Redis and the parsing work side by side.
/// The batches and their order are those of reading on one thread.
fn emit_stdin(ctx: &Context, emitter: &mut Emitter, dry_run: bool) -> anyhow::Result<()> {
    let (batches, reader) = read_batches(emitter.catalog().clone());
    let mut written = 0usize;
    let mut out = String::new();
    for mut batch in batches {
        if dry_run {
            for event in &batch {
                out.push_str(&event.to_json_line());
                out.push('\n');
            }
            if out.len() > 1 << 16 {
                print(&std::mem::take(&mut out))?;
            }
        } else {
            flush(emitter, &mut batch, &mut written)?;
        }
    }
    // The reader has sent everything: it is done, or failed to read.
    let bad = reader
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))?;
    print(&out)?;
    if !ctx.quiet && !dry_run {
        log::info!(
            "wrote {written} events{}",
            if bad > 0 {
                format!(", rejected {bad} lines")
            } else {
                String::new()
            }
        );
    }
    if bad > 0 {
        return Err(Error::from(ValidationError::Invalid(format!(
            "{bad} input lines were rejected (see above); the others were written"
        )))
        .into());
    }
    Ok(())
}

/// Reads stdin on a thread of its own into batches of up to `BATCH` valid
/// events, reporting each bad line as it goes; the thread answers how many
/// lines were bad. It is not joined on a failed write, so that a failure
/// never waits for more input: it ends with the process, or at its next
/// batch once nobody takes it.
fn read_batches(catalog: Catalog) -> (Receiver<Vec<Event>>, JoinHandle<anyhow::Result<usize>>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(2);
    let reader = std::thread::spawn(move || -> anyhow::Result<usize> {
        let mut batch = Vec::with_capacity(BATCH);
        let mut bad = 0usize;
        for line in read_events(std::io::stdin().lock(), &catalog) {
            let line = line.context("cannot read stdin")?;
            match line.event {
                Ok(event) => batch.push(event),
                Err(e) => {
                    bad += 1;
                    log::error!("line {}: {e}", line.number);
                }
            }
            if batch.len() == BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if tx.send(full).is_err() {
                    return Ok(bad);
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(batch);
        }
        Ok(bad)
    });
    (rx, reader)
}

fn flush(emitter: &mut Emitter, batch: &mut Vec<Event>, written: &mut usize) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    match emitter.append_checked(batch) {
        Ok(()) => {}
        // The batch is on the primary; stop, since the next would not fare
        // better, and say how much was written and confirmed.
        Err(Error::Queue(QueueError::NotReplicated(e))) => {
            return Err(Error::Queue(QueueError::NotReplicated(e))).with_context(|| {
                format!(
                    "{} events were written; the last {} are on the primary only",
                    *written + batch.len(),
                    batch.len()
                )
            });
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("{written} events were written before this failure"));
        }
    }
    *written += batch.len();
    batch.clear();
    Ok(())
}
