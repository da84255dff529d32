//! `events replay`: the recovery tool. Puts dead letters, a window of
//! history or a file of events back into delivery, keeping every event's id
//! so receivers can drop what they already have.
//!
//! Nothing is sent from here: replayed deliveries go into the retry set, due
//! now and with a fresh attempt budget, and the worker delivers them like any
//! retry. So a replay runs as fast as the queue takes writes, and one that
//! fails half-way can simply be run again.
//!
//! Where the design is silent:
//! - `--to DEST` narrows the destinations and never widens them: an event
//!   type DEST does not route is skipped, as the worker would skip it.
//! - `--limit N` counts events, not deliveries; an event with several dead
//!   letters (one per destination that failed) is one event.
//! - A dead letter whose destination is no longer configured is skipped
//!   (the worker would only dead-letter it again); `--to` redirects it.
//! - Only history and files need `--yes` for Slack: they repeat messages
//!   people have seen. Dead letters were never seen.

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use wildmatch::WildMatch;

use super::{Context, print};
use crate::catalog::{Catalog, ValidationError};
use crate::cli::ReplayArgs;
use crate::config::{Config, DestConfig, DestKind};
use crate::error::UsageError;
use crate::event::{Event, now_ms, parse_ts};
use crate::queue::{self, Delivery, Queue};

/// Deliveries written per queue call.
const BATCH: usize = 1000;
/// Replays longer than this many events show a progress bar (on a terminal).
const PROGRESS_FROM: u64 = 1000;
/// Dry-run output is written in chunks of about this size.
const OUT_CHUNK: usize = 1 << 16;

pub fn run(ctx: &Context, args: ReplayArgs) -> anyhow::Result<()> {
    let config = ctx.config()?;
    let plan = Plan::new(config, &args)?;
    let mut source = Source::new(&args, now_ms())?;
    if matches!(source, Source::Dead) {
        return replay_dead(ctx, config, &plan);
    }
    let slack: Vec<&str> = plan
        .dests
        .iter()
        .filter(|d| d.kind() == DestKind::Slack)
        .map(|d| d.name.as_str())
        .collect();
    let mut total = None;
    if !slack.is_empty() && !args.yes && !plan.dry_run {
        source.make_rereadable()?;
        let mut count = Replay::new(&plan, Mode::Count, None);
        source.feed(config, &mut count, false)?;
        if count.tally.slack_events > 0 {
            confirm(&count.tally, &slack)?;
        }
        total = Some(count.tally.events);
    }
    let mode = if plan.dry_run {
        Mode::Print(String::new())
    } else {
        Mode::Write(queue::open(config)?)
    };
    let progress = (std::io::stderr().is_terminal() && !ctx.quiet).then(|| Progress {
        total,
        ..Progress::default()
    });
    let mut replay = Replay::new(&plan, mode, progress);
    let fed = source.feed(config, &mut replay, true);
    let finished = fed.and_then(|()| replay.flush());
    replay.finish_progress();
    // A summary only for a run that finished: one cut short says in its
    // error exactly what had been scheduled, and nothing more.
    if let Err(err) = finished {
        return Err(err.context(stopped(plan.dry_run, replay.scheduled)));
    }
    summarize(ctx, &plan, &replay.tally);
    if replay.tally.bad_lines > 0 {
        return Err(ValidationError::Invalid(format!(
            "{} input lines were rejected (see above); the others were replayed",
            replay.tally.bad_lines
        ))
        .into());
    }
    Ok(())
}

/// The arguments, checked: which destinations and types, how many, and
/// whether to write at all.
struct Plan<'a> {
    /// Every configured destination, or only `--to`.
    dests: Vec<&'a DestConfig>,
    /// Every configured destination, to find a dead letter's.
    all: &'a [DestConfig],
    to: Option<&'a str>,
    types: Vec<WildMatch>,
    limit: Option<usize>,
    dry_run: bool,
}

impl<'a> Plan<'a> {
    fn new(config: &'a Config, args: &'a ReplayArgs) -> anyhow::Result<Plan<'a>> {
        let all = config.destinations()?;
        let dests = match &args.to {
            None => all.iter().collect(),
            Some(to) => match all.iter().find(|d| &d.name == to) {
                Some(dest) => vec![dest],
                None => {
                    let names: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
                    return Err(UsageError(format!(
                        "--to {to}: no such destination (configured: {})",
                        names.join(", ")
                    ))
                    .into());
                }
            },
        };
        Ok(Plan {
            dests,
            all,
            to: args.to.as_deref(),
            types: args.types.iter().map(|g| WildMatch::new(g)).collect(),
            limit: args.limit,
            dry_run: args.dry_run,
        })
    }

    /// Whether `--type` selects events of type `kind`.
    fn selects(&self, kind: &str) -> bool {
        self.types.is_empty() || self.types.iter().any(|glob| glob.matches(kind))
    }

    /// The destinations an event of type `kind` is replayed to.
    fn targets(&self, kind: &str) -> impl Iterator<Item = &'a DestConfig> {
        self.dests.iter().copied().filter(move |d| d.routes(kind))
    }

    fn reached(&self, count: u64) -> bool {
        self.limit.is_some_and(|limit| count >= limit as u64)
    }
}

/// Where the events come from.
enum Source {
    Dead,
    History { from_ms: i64, until_ms: i64 },
    File(Input),
}

/// A JSON Lines file, stdin, or stdin read into memory so that it can be
/// read twice (once to count, once to replay).
enum Input {
    Path(PathBuf),
    Stdin,
    Buffered(Vec<u8>),
}

impl Source {
    fn new(args: &ReplayArgs, now: i64) -> anyhow::Result<Source> {
        if args.dead {
            return Ok(Source::Dead);
        }
        if let Some(since) = &args.since {
            let from_ms = parse_when("--since", since, now)?;
            if from_ms > now {
                return Err(UsageError(format!(
                    "--since {since} is in the future: there is no history there yet"
                ))
                .into());
            }
            let until_ms = match &args.until {
                Some(until) => parse_when("--until", until, now)?,
                None => now,
            };
            if from_ms >= until_ms {
                return Err(UsageError(format!(
                    "--since {since} is not before {}: the window is empty",
                    args.until
                        .as_deref()
                        .map_or("now".to_owned(), |u| format!("--until {u}"))
                ))
                .into());
            }
            return Ok(Source::History { from_ms, until_ms });
        }
        match &args.file {
            Some(path) if path == Path::new("-") => Ok(Source::File(Input::Stdin)),
            Some(path) => Ok(Source::File(Input::Path(path.clone()))),
            None => unreachable!("clap requires --dead, --since or --file"),
        }
    }

    /// Reads stdin into memory when it is the input, so `feed` can run twice.
    fn make_rereadable(&mut self) -> anyhow::Result<()> {
        if let Source::File(input @ Input::Stdin) = self {
            let mut text = Vec::new();
            std::io::stdin()
                .read_to_end(&mut text)
                .context("cannot read stdin")?;
            *input = Input::Buffered(text);
        }
        Ok(())
    }

    /// Passes every event to `replay`, until its limit. `report` says whether
    /// bad input lines are reported (once, on the pass that replays).
    fn feed(&self, config: &Config, replay: &mut Replay, report: bool) -> anyhow::Result<()> {
        match self {
            Source::Dead => unreachable!("dead letters are replayed by replay_dead"),
            Source::History { from_ms, until_ms } => {
                let mut queue = queue::open(config)?;
                let mut failure = None;
                queue.history(*from_ms, *until_ms, &mut |events| {
                    for event in events {
                        match replay.event(event) {
                            Ok(true) => {}
                            Ok(false) => return false,
                            Err(e) => {
                                failure = Some(e);
                                return false;
                            }
                        }
                    }
                    true
                })?;
                failure.map_or(Ok(()), Err)
            }
            Source::File(Input::Path(path)) => {
                let file = std::fs::File::open(path).map_err(|e| {
                    UsageError(format!("cannot read --file {}: {e}", path.display()))
                })?;
                let name = path.display().to_string();
                feed_lines(
                    std::io::BufReader::new(file),
                    &name,
                    &config.catalog,
                    replay,
                    report,
                )
            }
            Source::File(Input::Stdin) => feed_lines(
                std::io::stdin().lock(),
                "stdin",
                &config.catalog,
                replay,
                report,
            ),
            Source::File(Input::Buffered(text)) => {
                feed_lines(text.as_slice(), "stdin", &config.catalog, replay, report)
            }
        }
    }
}

/// `WHEN`: an RFC 3339 time, or a duration ago (`90m`, `2h`, `7d`; `-90m`
/// reads naturally as "90 minutes back" and means the same).
fn parse_when(flag: &str, text: &str, now: i64) -> anyhow::Result<i64> {
    if let Some(time) = parse_ts(text) {
        return Ok(time.timestamp_millis());
    }
    let ago = text.strip_prefix('-').unwrap_or(text);
    match humantime::parse_duration(ago) {
        Ok(ago) => Ok(now - i64::try_from(ago.as_millis()).unwrap_or(i64::MAX).min(now)),
        Err(_) => Err(UsageError(format!(
            "{flag} {text:?} is neither an RFC 3339 time (2026-11-27T09:00:00Z) nor a duration ago (90m, 2h, 7d)"
        ))
        .into()),
    }
}

/// Replays JSON Lines (`emit --stdin`'s format), each validated against the
/// catalog; a bad line is reported with its number and the rest go on.
fn feed_lines(
    input: impl BufRead,
    name: &str,
    catalog: &Catalog,
    replay: &mut Replay,
    report: bool,
) -> anyhow::Result<()> {
    for line in crate::jsonl::read_events(input, catalog) {
        let line = line.with_context(|| format!("cannot read {name}"))?;
        match line.event {
            Ok(event) => {
                if !replay.event(event)? {
                    break;
                }
            }
            Err(e) => {
                replay.tally.bad_lines += 1;
                replay.tally.failed += 1;
                if report {
                    replay.suspend(|| log::error!("line {}: {e}", line.number));
                }
            }
        }
    }
    Ok(())
}

/// What a replay did (or would do).
#[derive(Debug, Default)]
struct Tally {
    /// Events replayed (an event with several dead letters counts once).
    events: u64,
    deliveries: u64,
    /// Selected but not replayable: poison, routed nowhere, destination gone.
    skipped: u64,
    /// Bad input lines, and events a failed queue write left out.
    failed: u64,
    poison: u64,
    unrouted: u64,
    gone: BTreeSet<String>,
    gone_count: u64,
    bad_lines: u64,
    /// Events with a delivery to a Slack destination.
    slack_events: u64,
}

/// What happens to the deliveries.
enum Mode {
    /// Only count them (before asking for confirmation).
    Count,
    /// `--dry-run`: print each event as a JSON line.
    Print(String),
    /// Write them into the queue's retry set, in batches.
    Write(Box<dyn Queue>),
}

/// Turns replayed events into deliveries: counted, printed or written.
struct Replay<'p, 'a> {
    plan: &'p Plan<'a>,
    mode: Mode,
    batch: Vec<Delivery>,
    /// Events in `batch`, not yet written.
    unwritten: u64,
    /// Events and deliveries written to the queue so far.
    scheduled: (u64, u64),
    tally: Tally,
    progress: Option<Progress>,
}

impl<'p, 'a> Replay<'p, 'a> {
    fn new(plan: &'p Plan<'a>, mode: Mode, progress: Option<Progress>) -> Replay<'p, 'a> {
        Replay {
            plan,
            mode,
            batch: Vec::new(),
            unwritten: 0,
            scheduled: (0, 0),
            tally: Tally::default(),
            progress,
        }
    }

    /// Replays one event to every destination that routes it; false once
    /// the limit is reached.
    fn event(&mut self, event: Event) -> anyhow::Result<bool> {
        if self.plan.reached(self.tally.events) {
            return Ok(false);
        }
        if !self.plan.selects(&event.kind) {
            return Ok(true);
        }
        let targets: Vec<&DestConfig> = self.plan.targets(&event.kind).collect();
        if targets.is_empty() {
            self.tally.unrouted += 1;
            self.tally.skipped += 1;
            return Ok(true);
        }
        self.tally.events += 1;
        self.tally.deliveries += targets.len() as u64;
        if targets.iter().any(|d| d.kind() == DestKind::Slack) {
            self.tally.slack_events += 1;
        }
        match &mut self.mode {
            Mode::Count => {}
            Mode::Print(out) => {
                out.push_str(&event.to_json_line());
                out.push('\n');
                if out.len() >= OUT_CHUNK {
                    print(&std::mem::take(out))?;
                }
            }
            Mode::Write(_) => {
                self.unwritten += 1;
                for dest in targets {
                    self.batch.push(Delivery {
                        event: event.clone(),
                        dest: dest.name.clone(),
                        attempts: 0,
                        last_error: None,
                    });
                }
                if self.batch.len() >= BATCH {
                    self.flush()?;
                }
            }
        }
        if let Some(progress) = &mut self.progress {
            progress.advance(1);
        }
        Ok(!self.plan.reached(self.tally.events))
    }

    /// Writes (or prints) what is buffered.
    fn flush(&mut self) -> anyhow::Result<()> {
        match &mut self.mode {
            Mode::Count => {}
            Mode::Print(out) => print(&std::mem::take(out))?,
            Mode::Write(queue) => {
                if !self.batch.is_empty() {
                    queue.enqueue(&self.batch, now_ms())?;
                    self.scheduled.0 += self.unwritten;
                    self.scheduled.1 += self.batch.len() as u64;
                    self.batch.clear();
                }
                self.unwritten = 0;
            }
        }
        Ok(())
    }

    /// Runs `f` (which writes to stderr) with the progress bar out of the way.
    fn suspend(&self, f: impl FnOnce()) {
        match self.progress.as_ref().and_then(|p| p.bar.as_ref()) {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    fn finish_progress(&mut self) {
        if let Some(bar) = self.progress.take().and_then(|p| p.bar) {
            bar.finish_and_clear();
        }
    }
}

/// A progress bar on stderr that appears only once a replay gets long.
#[derive(Default)]
struct Progress {
    done: u64,
    total: Option<u64>,
    bar: Option<ProgressBar>,
}

impl Progress {
    fn with_total(total: u64) -> Progress {
        Progress {
            total: Some(total),
            ..Progress::default()
        }
    }

    fn advance(&mut self, n: u64) {
        self.done += n;
        if self.bar.is_none() && self.done.max(self.total.unwrap_or(0)) > PROGRESS_FROM {
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
        } else if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }
}

/// Replaying history or a file to Slack repeats messages people have seen:
/// ask at a terminal, refuse elsewhere.
fn confirm(tally: &Tally, slack: &[&str]) -> anyhow::Result<()> {
    let dests = slack.join(", ");
    let n = tally.slack_events;
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(UsageError(format!(
            "this would post {n} events to Slack ({dests}) again, repeating messages people have seen; pass --yes to do it, --dry-run to see them, or --to another destination"
        ))
        .into());
    }
    eprint!("Replay {n} events to Slack ({dests})? [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("cannot read the answer from stdin")?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(UsageError("not confirmed: nothing was replayed".into()).into())
    }
}

/// `--dead`: each dead letter back to the destination that failed (or
/// `--to`), with a fresh attempt budget; the dead letter is removed in the
/// same write. An event with several dead letters (one per destination that
/// failed) counts, prints and is limited as one event.
fn replay_dead(ctx: &Context, config: &Config, plan: &Plan) -> anyhow::Result<()> {
    let mut queue = queue::open(config)?;
    let letters = queue.dead_letters()?;
    let mut tally = Tally::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut chosen: Vec<Letter> = Vec::new();
    let mut out = String::new();
    for stored in letters {
        let event = match stored.letter.event {
            Ok(event) => event,
            Err(_) => {
                if plan.types.is_empty() {
                    tally.poison += 1;
                    tally.skipped += 1;
                }
                continue;
            }
        };
        let first = !seen.contains(&event.id);
        if !plan.selects(&event.kind) || (first && plan.reached(seen.len() as u64)) {
            continue;
        }
        let dest = stored.letter.dest;
        let targets: Vec<String> = if dest == "*" || plan.to.is_some() {
            plan.targets(&event.kind).map(|d| d.name.clone()).collect()
        } else if plan.all.iter().any(|d| d.name == dest) {
            vec![dest]
        } else {
            tally.gone_count += 1;
            tally.skipped += 1;
            tally.gone.insert(dest);
            continue;
        };
        if targets.is_empty() {
            tally.unrouted += 1;
            tally.skipped += 1;
            continue;
        }
        if first {
            seen.insert(event.id.clone());
            tally.events += 1;
            if plan.dry_run {
                out.push_str(&event.to_json_line());
                out.push('\n');
            }
        }
        tally.deliveries += targets.len() as u64;
        let deliveries = targets
            .into_iter()
            .map(|dest| {
                let delivery = Delivery {
                    event: event.clone(),
                    dest,
                    attempts: 0,
                    last_error: None,
                };
                (stored.key.clone(), delivery)
            })
            .collect();
        chosen.push(Letter { first, deliveries });
    }
    if plan.dry_run {
        print(&out)?;
        summarize(ctx, plan, &tally);
        return Ok(());
    }
    let show = std::io::stderr().is_terminal() && !ctx.quiet;
    let mut progress = show.then(|| Progress::with_total(tally.events));
    let (mut events, mut deliveries) = (0u64, 0u64);
    let mut result = Ok(());
    let mut letters = chosen.iter().peekable();
    while letters.peek().is_some() {
        // A letter's deliveries stay in one write, which removes the letter.
        let (mut batch, mut firsts) = (Vec::new(), 0);
        while batch.len() < BATCH
            && let Some(letter) = letters.next()
        {
            batch.extend(letter.deliveries.iter().cloned());
            firsts += u64::from(letter.first);
        }
        if let Err(e) = queue.requeue_dead(&batch, now_ms()) {
            result = Err(anyhow::Error::from(e).context(stopped(false, (events, deliveries))));
            break;
        }
        events += firsts;
        deliveries += batch.len() as u64;
        if let Some(progress) = &mut progress {
            progress.advance(firsts);
        }
    }
    if let Some(bar) = progress.and_then(|p| p.bar) {
        bar.finish_and_clear();
    }
    result?;
    summarize(ctx, plan, &tally);
    Ok(())
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

/// One dead letter chosen for replay: its deliveries, each paired with the
/// letter's key, and whether it is the first letter of its event.
struct Letter {
    first: bool,
    deliveries: Vec<(String, Delivery)>,
}

/// Notes on what was skipped, then the one-line summary, on stderr.
fn summarize(ctx: &Context, plan: &Plan, tally: &Tally) {
    if tally.poison > 0 {
        log::warn!(
            "skipped {} poison dead letters: they cannot be decoded, so they stay in the dead letters",
            tally.poison
        );
    }
    if tally.unrouted > 0 {
        let whom = plan
            .to
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
    let verb = if plan.dry_run {
        "would replay"
    } else {
        "replayed"
    };
    log::info!(
        "{verb} {} events ({} deliveries), skipped {}, failed {}",
        tally.events,
        tally.deliveries,
        tally.skipped,
        tally.failed
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn when_is_a_time_or_a_duration_ago() {
        assert_eq!(parse_when("--since", "2h", NOW).unwrap(), NOW - 7_200_000);
        assert_eq!(parse_when("--since", "90m", NOW).unwrap(), NOW - 5_400_000);
        assert_eq!(
            parse_when("--since", "7d", NOW).unwrap(),
            NOW - 7 * 86_400_000
        );
        assert_eq!(parse_when("--since", "-5m", NOW).unwrap(), NOW - 300_000);
        assert_eq!(
            parse_when("--since", "2026-11-27T10:00:00+01:00", NOW).unwrap(),
            parse_ts("2026-11-27T09:00:00Z").unwrap().timestamp_millis()
        );
        let err = parse_when("--until", "yesterday", NOW).unwrap_err();
        assert!(err.is::<UsageError>());
        assert!(err.to_string().contains("--until \"yesterday\""), "{err}");
    }
}
