//! `events migrate [--print-sql]`: creates or upgrades the Postgres schema
//! on purpose (every command does it on first use), or prints the SQL that
//! does, for a team's own migration tool. One text serves both
//! ([`crate::queue::postgres::schema_script`]).

use super::Context;
use crate::cli::MigrateArgs;
use crate::error::Error;
use crate::queue::Backend;
use crate::queue::postgres::{self, PostgresQueue};

pub fn run(ctx: &Context, args: MigrateArgs) -> anyhow::Result<()> {
    if args.print_sql {
        let schema = std::env::var("EVENTS_PG_SCHEMA")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "events".to_owned());
        if !postgres::is_plain_name(&schema) {
            return Err(Error::Usage(format!(
                "EVENTS_PG_SCHEMA {schema:?} must be a plain SQL name: lower-case letters, \
                 digits and _, not starting with a digit, at most 63 characters"
            ))
            .into());
        }
        print!("{}", postgres::schema_script(&schema));
        return Ok(());
    }
    let setup = ctx.setup()?;
    let Backend::Postgres { url, schema } = setup.backend() else {
        return Err(Error::Usage(
            "migrate is for Postgres (EVENTS_POSTGRES_URL); Redis and SQLite need no migration"
                .into(),
        )
        .into());
    };
    let queue = PostgresQueue::open(url.expose(), schema, setup.store.options.clone())?;
    let migrated = queue.migrated();
    let done = match migrated.from {
        0 => "created".to_owned(),
        from if from < migrated.to => format!("upgraded from version {from}"),
        _ => "already up to date".to_owned(),
    };
    println!("schema {schema} is at version {} ({done})", migrated.to);
    Ok(())
}
