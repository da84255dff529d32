//! `events pause DEST [--for DURATION]`: stops every worker sending to a
//! destination, through a hold recorded in the queue (see
//! [`crate::queue::hold`]); its deliveries wait there without spending an
//! attempt until `events resume` or the end of `--for`.
//!
//! Alerts (`events.dead_letters`) routed to a paused destination wait with
//! everything else sent there. A pause dead-letters nothing, so it raises
//! no alert of its own; alerts about other destinations' dead letters still
//! go wherever else they are routed.

use super::Context;
use crate::alert::ALERT_TYPE;
use crate::cli::PauseArgs;
use crate::event::{format_ts_ms, now_ms};
use crate::queue::{Hold, HoldKind};

pub fn run(ctx: &Context, args: PauseArgs) -> anyhow::Result<()> {
    let config = ctx.setup()?;
    let routes = config.routes().map_err(crate::Error::from)?;
    let route = routes
        .lookup("pause", &args.dest)
        .map_err(crate::Error::from)?;
    let name = route.name();
    let mut queue = config.open_queue()?;
    let now = now_ms();
    let previous = queue
        .holds()?
        .into_iter()
        .find(|(dest, hold)| dest == name && hold.kind() == HoldKind::Pause)
        .map(|(_, hold)| hold);
    let until = args
        .duration
        .map(|d| now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
    let hold = Hold::paused(previous.as_ref(), &who(), now, until);
    queue.put_hold(name, &hold)?;
    let waiting = queue.waiting(name)?;
    if ctx.quiet {
        return Ok(());
    }
    let again = previous.is_some_and(|p| p.in_force(now));
    let until = match hold.until_ms {
        Some(until) => format!("until {}", format_ts_ms(until)),
        None => "until `events resume`".to_owned(),
    };
    log::info!(
        "{} {name} {until}: workers stop sending to it within a second; {waiting} {} waiting",
        if again { "still pausing" } else { "paused" },
        if waiting == 1 {
            "delivery"
        } else {
            "deliveries"
        },
    );
    if route.takes(ALERT_TYPE) {
        log::info!("{name} also receives {ALERT_TYPE} alerts: they wait too");
    }
    Ok(())
}

/// Who is pausing, as `status` shows it: host, user and pid.
fn who() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown user".into());
    format!("{host} {user} pid {}", std::process::id())
}
