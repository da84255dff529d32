//! `events replay`: the recovery tool. Puts dead letters, a window of
//! history or a file of events back into delivery, keeping every event's id
//! so receivers can drop what they already have. What is replayed where is
//! planned by the library ([`crate::replay`]); this command asks before
//! repeating Slack messages, shows progress and sums up.
//!
//! Only history and files need `--yes` for Slack: they repeat messages
//! people have seen. Dead letters were never seen.

use std::fmt::Display;
use std::io::{IsTerminal, Write as _};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Context;
use crate::catalog::ValidationError;
use crate::cli::ReplayArgs;
use crate::error::Error;
use crate::event::now_ms;
use crate::replay::{Chunk, Count, Plan, Replay, ReplayError, Sink, Source, Tally, Write};

/// Replays longer than this many events show a progress bar (on a terminal).
const PROGRESS_FROM: u64 = 1000;

pub fn run(ctx: &Context, args: ReplayArgs) -> anyhow::Result<()> {
    let config = ctx.setup()?;
    let plan = Plan::new(
        config.routes().map_err(Error::from)?,
        args.to.as_deref(),
        &args.types,
        args.limit,
    )
    .map_err(Error::from)?;
    let now = now_ms();
    let mut source = Source::new(
        args.dead,
        args.since.as_deref(),
        args.until.as_deref(),
        args.file.as_deref(),
        now,
    )
    .map_err(Error::from)?;
    let slack = plan.slack();
    let mut total = None;
    if !matches!(source, Source::Dead) && !slack.is_empty() && !args.yes && !args.dry_run {
        source.make_rereadable().map_err(Error::from)?;
        let mut count = Replay::new(&plan, Count);
        count.run(&source, config).map_err(Error::from)?;
        if count.tally().slack_events > 0 {
            confirm(count.tally(), &slack)?;
        }
        total = Some(count.tally().events);
    }
    let sink = if args.dry_run {
        Shown::new(Target::Print, ctx, total)
    } else {
        let queue = config.open_queue()?;
        Shown::new(Target::Write(Write { queue, due_ms: now }), ctx, total)
    };
    let mut replay = Replay::new(&plan, sink);
    let finished = replay.run(&source, config);
    if let Some(bar) = &replay.sink().progress.bar {
        bar.finish_and_clear();
    }
    // A summary only for a run that finished: one cut short says in its
    // error exactly what had been scheduled, and nothing more.
    if let Err(err) = finished {
        let err = anyhow::Error::from(Error::from(err));
        return Err(err.context(stopped(args.dry_run, replay.scheduled())));
    }
    summarize(ctx, &plan, replay.tally(), args.dry_run);
    if replay.tally().bad_lines > 0 {
        return Err(Error::from(ValidationError::Invalid(format!(
            "{} input lines were rejected (see above); the others were replayed",
            replay.tally().bad_lines
        )))
        .into());
    }
    Ok(())
}

/// Where the chunks of this run go.
enum Target {
    /// `--dry-run`: each event printed as a JSON line.
    Print,
    Write(Write),
}

/// A sink that prints or writes, with a progress bar on a terminal and
/// bad input lines logged out of its way.
struct Shown {
    target: Target,
    progress: Progress,
}

impl Shown {
    fn new(target: Target, ctx: &Context, total: Option<u64>) -> Shown {
        let shown = std::io::stderr().is_terminal() && !ctx.quiet;
        Shown {
            target,
            progress: Progress {
                shown,
                total,
                ..Progress::default()
            },
        }
    }
}

impl Sink for Shown {
    fn take(&mut self, chunk: &Chunk) -> Result<(), ReplayError> {
        match &mut self.target {
            Target::Print => {
                let mut out = String::new();
                for event in &chunk.events {
                    out.push_str(&event.to_json_line());
                    out.push('\n');
                }
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(out.as_bytes())
                    .and_then(|()| stdout.flush())
                    .map_err(ReplayError::Output)?;
            }
            Target::Write(write) => write.take(chunk)?,
        }
        self.progress.advance(chunk.first as u64);
        Ok(())
    }

    fn keeps_events(&self) -> bool {
        matches!(self.target, Target::Print)
    }

    fn rejected(&mut self, line: usize, error: &dyn Display) {
        let log = || log::error!("line {line}: {error}");
        match &self.progress.bar {
            Some(bar) => bar.suspend(log),
            None => log(),
        }
    }
}

/// A progress bar on stderr that appears only once a replay gets long.
#[derive(Default)]
struct Progress {
    shown: bool,
    done: u64,
    total: Option<u64>,
    bar: Option<ProgressBar>,
}

impl Progress {
    fn advance(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        } else if self.shown && self.done.max(self.total.unwrap_or(0)) > PROGRESS_FROM {
            let (bar, template) = match self.total {
                Some(total) => (
                    ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()),
                    "{bar:40} {human_pos}/{human_len} events replayed ({eta} left)",
                ),
                None => (
                    ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
                    "{spinner} {human_pos} events replayed",
                ),
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.set_position(self.done);
            self.bar = Some(bar);
        }
    }
}

/// Replaying history or a file to chat repeats messages people have seen:
/// ask at a terminal, refuse elsewhere.
fn confirm(tally: &Tally, slack: &[&str]) -> anyhow::Result<()> {
    let dests = slack.join(", ");
    let n = tally.slack_events;
    super::confirm(
        format!(
            "this would post {n} events to chat destinations ({dests}) again, repeating messages people have seen; pass --yes to do it, --dry-run to see them, or --to another destination"
        ),
        &format!("Replay {n} events to chat destinations ({dests})?"),
        "not confirmed: nothing was replayed",
    )
}

/// What a replay cut short by an error had done: exactly the events and
/// deliveries written to the queue (`scheduled`), which the worker delivers.
fn stopped(dry_run: bool, (events, deliveries): (u64, u64)) -> String {
    if dry_run {
        "the dry run stopped before it finished: the events printed are only part of the window"
            .into()
    } else if events == 0 {
        "replay stopped before anything was scheduled for delivery".into()
    } else {
        format!(
            "replay stopped after scheduling {events} events ({deliveries} deliveries) for delivery; \
             the rest were not (replaying again is safe: events keep their ids)"
        )
    }
}

/// Notes on what was skipped, then the one-line summary, on stderr.
fn summarize(ctx: &Context, plan: &Plan, tally: &Tally, dry_run: bool) {
    if tally.poison > 0 {
        log::warn!(
            "skipped {} poison dead letters: they cannot be decoded, so they stay in the dead letters",
            tally.poison
        );
    }
    if tally.unrouted > 0 {
        let whom = plan
            .to()
            .map_or("any configured destination".to_owned(), |to| {
                format!("destination '{to}'")
            });
        log::warn!(
            "skipped {} events of types not routed to {whom}",
            tally.unrouted
        );
    }
    if tally.gone_count > 0 {
        let names: Vec<&str> = tally.gone.iter().map(String::as_str).collect();
        log::warn!(
            "skipped {} dead letters of destinations no longer configured ({}): pass --to DEST to send them elsewhere",
            tally.gone_count,
            names.join(", ")
        );
    }
    if ctx.quiet {
        return;
    }
    let verb = if dry_run { "would replay" } else { "replayed" };
    log::info!(
        "{verb} {} events ({} deliveries), skipped {}, failed {}",
        tally.events,
        tally.deliveries,
        tally.skipped,
        tally.failed
    );
}
