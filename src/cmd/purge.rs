//! `events purge --dead`: removes dead letters on demand, with `replay
//! --dead`'s filters, for an operator who has looked at them and will not
//! replay them. Removal is for good, so it is counted first and confirmed:
//! asked on a terminal, `--yes` elsewhere. The queue does the selecting and
//! keeps the counts `status` shows ([`crate::queue::Admin::purge_dead`]).

use anyhow::Context as _;

use super::Context;
use crate::cli::PurgeArgs;
use crate::error::Error;
use crate::event::now_ms;
use crate::queue::DeadFilter;
use crate::replay::parse_when;

pub fn run(ctx: &Context, args: PurgeArgs) -> anyhow::Result<()> {
    let now = now_ms();
    // Never past now: letters dead-lettered while the operator answers were
    // not counted, so they are not removed.
    let before_ms = match args.before.as_deref() {
        Some(when) => parse_when("--before", when, now)
            .map_err(Error::from)?
            .min(now),
        None => now,
    };
    let filter = DeadFilter::new(Some(before_ms), &args.types, &args.dests);
    let config = ctx.setup()?;
    let mut queue = config.open_queue()?;
    let matching = queue.count_dead(&filter)?;
    if args.dry_run {
        if !ctx.quiet {
            log::info!("would remove {matching} dead letters");
        }
        return Ok(());
    }
    if matching == 0 {
        if !ctx.quiet {
            log::info!("no dead letters match: nothing to remove");
        }
        return Ok(());
    }
    if !args.yes {
        confirm(matching)?;
    }
    let removed = queue
        .purge_dead(&filter)
        .context("the purge stopped part way: run it again to remove the rest")?;
    if !ctx.quiet {
        log::info!("removed {removed} dead letters");
    }
    Ok(())
}

/// Removing is for good: ask at a terminal, refuse elsewhere.
fn confirm(matching: u64) -> anyhow::Result<()> {
    super::confirm(
        format!(
            "this would remove {matching} dead letters for good; pass --yes to do it, or --dry-run to count them"
        ),
        &format!("Remove {matching} dead letters for good?"),
        "not confirmed: nothing was removed",
    )
}
