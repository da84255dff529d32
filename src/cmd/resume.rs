//! `events resume DEST`: lifts a destination's pause; every worker sends
//! what it held within about a second, in event order, once each.

use super::Context;
use crate::cli::ResumeArgs;
use crate::event::{format_ts_ms, now_ms};
use crate::queue::HoldKind;

pub fn run(ctx: &Context, args: ResumeArgs) -> anyhow::Result<()> {
    let config = ctx.setup()?;
    let routes = config.routes().map_err(crate::Error::from)?;
    let route = routes
        .lookup("resume", &args.dest)
        .map_err(crate::Error::from)?;
    let name = route.name();
    let mut queue = config.open_queue()?;
    let paused = queue
        .holds()?
        .into_iter()
        .find(|(dest, hold)| dest == name && hold.kind() == HoldKind::Pause)
        .map(|(_, hold)| hold)
        .filter(|hold| hold.in_force(now_ms()));
    // One that ended by itself is cleared too.
    queue.remove_hold(name, HoldKind::Pause)?;
    if ctx.quiet {
        return Ok(());
    }
    let Some(hold) = paused else {
        log::info!("{name} was not paused: nothing to resume");
        return Ok(());
    };
    let waiting = queue.waiting(name)?;
    log::info!(
        "resumed {name} (paused since {}, {}): workers send its {waiting} waiting {} within a second",
        format_ts_ms(hold.since_ms),
        crate::sanitize::escape(&hold.why()),
        if waiting == 1 {
            "delivery"
        } else {
            "deliveries"
        },
    );
    Ok(())
}
