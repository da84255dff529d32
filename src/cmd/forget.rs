//! `events forget --email E`: erase one person when they ask to be erased.
//! Counted first and confirmed (asked on a terminal, `--yes` elsewhere), as
//! `purge` is: erasing is for good. The queue finds and erases
//! ([`crate::queue::Admin::forget`]); this prints what it removed, per
//! place, on stdout.
//!
//! `--format json` prints `{"erased": BOOL, "history", "retries",
//! "dead_letters", "attempts", "idempotency_keys"}`, the counts removed (or,
//! with `--dry-run`, `erased` false and the counts that would be).

use serde_json::json;

use super::{Context, key_values, print};
use crate::cli::{ForgetArgs, Format};
use crate::error::Error;
use crate::queue::forget::{Erased, Person};

pub fn run(ctx: &Context, args: ForgetArgs) -> anyhow::Result<()> {
    let person = person(&args)?;
    let config = ctx.setup()?;
    let mut queue = config.open_queue()?;
    if args.dry_run || !args.yes {
        let counted = queue.forget(&person, true)?;
        if args.dry_run || counted.total() == 0 {
            return print(&report(&counted, false, args.format));
        }
        confirm(&counted)?;
    }
    // An error says what was erased before it: nothing, or part.
    let erased = queue.forget(&person, false)?;
    print(&report(&erased, true, args.format))
}

/// The person the flags name; an empty value matches nothing anyone wants.
fn person(args: &ForgetArgs) -> anyhow::Result<Person> {
    let mut fields = key_values(&args.fields, "--field")?;
    if let Some(email) = &args.email {
        fields.push(("email".to_owned(), email.clone()));
    }
    if let Some((key, _)) = fields.iter().find(|(_, value)| value.is_empty()) {
        return Err(Error::Usage(format!(
            "the value to erase for '{key}' is empty: give the value that identifies the person"
        ))
        .into());
    }
    Ok(Person::new(fields).expect("clap requires --email or --field"))
}

fn report(counts: &Erased, erased: bool, format: Format) -> String {
    match format {
        Format::Json => format!(
            "{}\n",
            json!({
                "erased": erased,
                "history": counts.history,
                "retries": counts.retries,
                "dead_letters": counts.dead_letters,
                "attempts": counts.attempts,
                "idempotency_keys": counts.idempotency_keys,
            })
        ),
        Format::Table => {
            let verb = if erased { "removed" } else { "would remove" };
            [
                ("events in the history", counts.history),
                ("retries (with their bodies)", counts.retries),
                ("dead letters", counts.dead_letters),
                ("attempt records", counts.attempts),
                ("idempotency keys", counts.idempotency_keys),
            ]
            .iter()
            .map(|(place, n)| format!("{verb} {n} {place}\n"))
            .collect()
        }
    }
}

/// Erasing is for good: ask at a terminal, refuse elsewhere.
fn confirm(counted: &Erased) -> anyhow::Result<()> {
    let what = format!(
        "{} events, {} retries, {} dead letters, {} attempt records and {} idempotency keys",
        counted.history,
        counted.retries,
        counted.dead_letters,
        counted.attempts,
        counted.idempotency_keys
    );
    super::confirm(
        format!(
            "this would erase {what} for good; pass --yes to do it, or --dry-run to count them"
        ),
        &format!("Erase {what} for good?"),
        "not confirmed: nothing was erased",
    )
}
