//! Replay planning: which events a replay selects (dead letters, a window
//! of history, a file), where each goes (routing, `--to`), how many
//! (`--limit`), and the deliveries it makes of them, handed on in chunks to
//! be counted, printed or written. `events replay` adds only the prompt,
//! the progress bar and the summary.
//!
//! Nothing is sent from here: replayed deliveries go into the retry set,
//! due now and with a fresh attempt budget, and the worker delivers them
//! like any retry. Where the design is silent:
//! - `--to DEST` narrows the destinations and never widens them: an event
//!   type DEST does not route is skipped, as the worker would skip it.
//! - `--limit N` counts events, not deliveries; an event with several dead
//!   letters (one per destination that failed) is one event.
//! - A dead letter whose destination is no longer configured is skipped
//!   (the worker would only dead-letter it again); `--to` redirects it.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Display;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;

use wildmatch::WildMatch;

use crate::catalog::Catalog;
use crate::event::{Event, parse_ts};
use crate::queue::{self, Delivery, QueueError, StoredDeadLetter};
use crate::route::{POISON_DEST, Route, Routes, UnknownDestination};
use crate::setup::Setup;

/// Why a replay could not be planned or made.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A flag, or the file it names, is wrong (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// The queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// An input could not be read.
    #[error("cannot read {name}")]
    Read {
        name: String,
        #[source]
        source: std::io::Error,
    },
    /// What was replayed could not be printed.
    #[error("cannot write to stdout")]
    Output(#[source] std::io::Error),
}

/// Deliveries per chunk: per queue write, and per piece of a dry run's
/// output.
pub const CHUNK: usize = 1000;

/// Where the events come from.
pub enum Source {
    Dead,
    History { from_ms: i64, until_ms: i64 },
    File(Input),
}

/// A JSON Lines file, stdin, or stdin read into memory so that it can be
/// read twice (once to count, once to replay).
pub enum Input {
    Path(PathBuf),
    Stdin,
    Buffered(Vec<u8>),
}

impl Source {
    /// The source `--dead`, `--since`/`--until` or `--file` names, with
    /// times relative to `now` (ms since the epoch).
    pub fn new(
        dead: bool,
        since: Option<&str>,
        until: Option<&str>,
        file: Option<&Path>,
        now: i64,
    ) -> Result<Source, ReplayError> {
        if dead {
            return Ok(Source::Dead);
        }
        if let Some(since) = since {
            let from_ms = parse_when("--since", since, now)?;
            if from_ms > now {
                return Err(ReplayError::Usage(format!(
                    "--since {since} is in the future: there is no history there yet"
                )));
            }
            let until_ms = match until {
                Some(until) => parse_when("--until", until, now)?,
                None => now,
            };
            if from_ms >= until_ms {
                return Err(ReplayError::Usage(format!(
                    "--since {since} is not before {}: the window is empty",
                    until.map_or("now".to_owned(), |u| format!("--until {u}"))
                )));
            }
            return Ok(Source::History { from_ms, until_ms });
        }
        match file {
            Some(path) if path == Path::new("-") => Ok(Source::File(Input::Stdin)),
            Some(path) => Ok(Source::File(Input::Path(path.to_owned()))),
            None => Err(ReplayError::Usage(
                "say what to replay: --dead, --since WHEN or --file PATH".into(),
            )),
        }
    }

    /// Reads stdin into memory when it is the input, so it can be fed twice.
    pub fn make_rereadable(&mut self) -> Result<(), ReplayError> {
        if let Source::File(input @ Input::Stdin) = self {
            let mut text = Vec::new();
            std::io::stdin()
                .read_to_end(&mut text)
                .map_err(|source| ReplayError::Read {
                    name: "stdin".into(),
                    source,
                })?;
            *input = Input::Buffered(text);
        }
        Ok(())
    }
}

/// `WHEN`: an RFC 3339 time, or a duration ago (`90m`, `2h`, `7d`; `-90m`
/// reads naturally as "90 minutes back" and means the same).
pub fn parse_when(flag: &str, text: &str, now: i64) -> Result<i64, ReplayError> {
    if let Some(time) = parse_ts(text) {
        return Ok(time.timestamp_millis());
    }
    let ago = text.strip_prefix('-').unwrap_or(text);
    match humantime::parse_duration(ago) {
        Ok(ago) => Ok(now - i64::try_from(ago.as_millis()).unwrap_or(i64::MAX).min(now)),
        Err(_) => Err(ReplayError::Usage(format!(
            "{flag} {text:?} is neither an RFC 3339 time (2026-11-27T09:00:00Z) nor a duration ago (90m, 2h, 7d)"
        ))),
    }
}

/// What to replay where: the routes (all, or `--to`'s), the `--type`
/// globs and the `--limit`.
pub struct Plan {
    /// The routes replayed to: every configured one, or only `--to`.
    routes: Routes,
    /// Every configured route, to find a dead letter's destination.
    all: Routes,
    to: Option<String>,
    types: Vec<WildMatch>,
    limit: Option<usize>,
}

/// Where one dead letter goes back to.
#[derive(Debug, PartialEq, Eq)]
enum LetterTargets {
    /// Its destination is no longer configured (and no `--to` redirects it).
    Gone(String),
    /// These destinations, possibly none.
    To(Vec<String>),
}

impl Plan {
    pub fn new(
        all: Routes,
        to: Option<&str>,
        types: &[String],
        limit: Option<usize>,
    ) -> Result<Plan, UnknownDestination> {
        let routes = match to {
            None => all.clone(),
            Some(to) => all.only(&all.resolve("--to", &[to.to_owned()])?),
        };
        Ok(Plan {
            routes,
            all,
            to: to.map(str::to_owned),
            types: types.iter().map(|g| WildMatch::new(g)).collect(),
            limit,
        })
    }

    /// `--to`, if given.
    pub fn to(&self) -> Option<&str> {
        self.to.as_deref()
    }

    /// The chat destinations (Slack, Discord, Teams) a replay may post to:
    /// repeating history there repeats messages people have seen.
    pub fn slack(&self) -> Vec<&str> {
        self.routes
            .iter()
            .filter(|r| r.kind().is_chat())
            .map(Route::name)
            .collect()
    }

    /// Whether `--type` selects events of type `kind`.
    fn selects(&self, kind: &str) -> bool {
        self.types.is_empty() || self.types.iter().any(|glob| glob.matches(kind))
    }

    fn reached(&self, events: u64) -> bool {
        self.limit.is_some_and(|limit| events >= limit as u64)
    }

    /// The destinations a dead letter of `event`, dead at `dest`, goes
    /// back to: its own unless it is poison or `--to` redirects it, in
    /// which case wherever the event's type routes.
    fn letter_targets(&self, event: &Event, dest: &str) -> LetterTargets {
        if dest == POISON_DEST || self.to.is_some() {
            LetterTargets::To(names(self.routes.of(event)))
        } else if self.all.named(dest).is_some() {
            LetterTargets::To(vec![dest.to_owned()])
        } else {
            LetterTargets::Gone(dest.to_owned())
        }
    }
}

fn names<'a>(routes: impl Iterator<Item = &'a Route>) -> Vec<String> {
    routes.map(|r| r.name().to_owned()).collect()
}

/// A delivery of `event` to `dest` with a fresh attempt budget.
fn fresh(event: Event, dest: String) -> Delivery {
    Delivery {
        event,
        dest,
        attempts: 0,
        last_error: None,
    }
}

/// What a replay did (or would do).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Events replayed (an event with several dead letters counts once).
    pub events: u64,
    pub deliveries: u64,
    /// Selected but not replayable: poison, routed nowhere, destination gone.
    pub skipped: u64,
    /// Bad input lines.
    pub failed: u64,
    pub poison: u64,
    pub unrouted: u64,
    /// Destinations of dead letters skipped because they are gone.
    pub gone: BTreeSet<String>,
    pub gone_count: u64,
    pub bad_lines: u64,
    /// Events with a delivery to a chat destination (Slack, Discord, Teams).
    pub slack_events: u64,
}

/// Replayed deliveries, handed on together. One event's deliveries, and
/// one dead letter's, are never split between two chunks.
#[derive(Debug, Default)]
pub struct Chunk {
    /// The events first replayed in this chunk, in order (what a dry run
    /// prints; an event with several dead letters appears once). Empty for
    /// a sink that does not keep them ([`Sink::keeps_events`]).
    pub events: Vec<Event>,
    /// How many events were first replayed in this chunk, kept or not.
    pub first: usize,
    /// New deliveries, from history or a file.
    pub deliveries: Vec<Delivery>,
    /// Deliveries that each replace the dead letter of the key they carry.
    pub requeued: Vec<(String, Delivery)>,
}

impl Chunk {
    pub fn len(&self) -> usize {
        self.deliveries.len() + self.requeued.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.first == 0
    }
}

/// Where chunks go: counted only, printed, or written to the queue.
pub trait Sink {
    /// Takes one chunk; an error stops the replay.
    fn take(&mut self, chunk: &Chunk) -> Result<(), ReplayError>;

    /// A bad input line, by its number: the replay goes on without it.
    fn rejected(&mut self, _line: usize, _error: &dyn Display) {}

    /// Whether the sink reads [`Chunk::events`]. One that does not gets
    /// each event moved into its (last) delivery instead of copied.
    fn keeps_events(&self) -> bool {
        true
    }
}

/// Counts only: the chunks go nowhere.
pub struct Count;

impl Sink for Count {
    fn take(&mut self, _chunk: &Chunk) -> Result<(), ReplayError> {
        Ok(())
    }

    fn keeps_events(&self) -> bool {
        false
    }
}

/// Writes chunks into the queue's retry set, due `due_ms`: each one write,
/// which for dead letters also removes them.
pub struct Write {
    pub queue: Box<dyn queue::Queue>,
    pub due_ms: i64,
}

impl Sink for Write {
    fn take(&mut self, chunk: &Chunk) -> Result<(), ReplayError> {
        if !chunk.deliveries.is_empty() {
            self.queue.enqueue(&chunk.deliveries, self.due_ms)?;
        }
        if !chunk.requeued.is_empty() {
            self.queue.requeue_dead(&chunk.requeued, self.due_ms)?;
        }
        Ok(())
    }

    fn keeps_events(&self) -> bool {
        false
    }
}

/// Turns selected events and dead letters into chunks of deliveries.
pub struct Replay<'p, S> {
    plan: &'p Plan,
    sink: S,
    chunk: Chunk,
    tally: Tally,
    /// Events and deliveries the sink has taken so far.
    scheduled: (u64, u64),
    /// The events of dead letters replayed so far.
    seen: HashSet<String>,
}

impl<'p, S: Sink> Replay<'p, S> {
    pub fn new(plan: &'p Plan, sink: S) -> Replay<'p, S> {
        Replay {
            plan,
            sink,
            chunk: Chunk::default(),
            tally: Tally::default(),
            scheduled: (0, 0),
            seen: HashSet::new(),
        }
    }

    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// Events and deliveries handed to the sink without error so far: what
    /// a replay cut short had done.
    pub fn scheduled(&self) -> (u64, u64) {
        self.scheduled
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Replays every event of `source` (reading the queue and catalog
    /// `config` names), then hands on what is left.
    pub fn run(&mut self, source: &Source, config: &Setup) -> Result<(), ReplayError> {
        self.feed(source, config)?;
        self.flush()
    }

    fn feed(&mut self, source: &Source, config: &Setup) -> Result<(), ReplayError> {
        match source {
            Source::Dead => {
                for letter in config.open_queue()?.dead_letters()? {
                    self.letter(letter)?;
                }
                Ok(())
            }
            Source::History { from_ms, until_ms } => self.history(config, *from_ms, *until_ms),
            Source::File(Input::Path(path)) => {
                let file = std::fs::File::open(path).map_err(|e| {
                    ReplayError::Usage(format!("cannot read --file {}: {e}", path.display()))
                })?;
                let name = path.display().to_string();
                self.lines(std::io::BufReader::new(file), &name, &config.catalog)
            }
            Source::File(Input::Stdin) => {
                self.lines(std::io::stdin().lock(), "stdin", &config.catalog)
            }
            Source::File(Input::Buffered(text)) => {
                self.lines(text.as_slice(), "stdin", &config.catalog)
            }
        }
    }

    /// Replays the events of history between `from_ms` and `until_ms`. A
    /// second thread reads (and decodes) the next page while this one
    /// schedules the page before, so reading and writing overlap; the
    /// events arrive in the order one thread would have read them.
    fn history(&mut self, config: &Setup, from_ms: i64, until_ms: i64) -> Result<(), ReplayError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Event>>(1);
        std::thread::scope(|scope| {
            let reader = scope.spawn(move || -> Result<(), ReplayError> {
                // Nobody takes the pages any more once the replay stopped.
                let mut take = |events| tx.send(events).is_ok();
                config.open_queue()?.history(from_ms, until_ms, &mut take)?;
                Ok(())
            });
            let failure = self.take_pages(rx).err();
            let read = reader
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            failure.map_or(read, Err)
        })
    }

    /// Replays pages of events until they end, the limit is reached or the
    /// sink fails; dropping `pages` then tells the reader to stop.
    fn take_pages(&mut self, pages: Receiver<Vec<Event>>) -> Result<(), ReplayError> {
        for events in pages {
            for event in events {
                if !self.event(event)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Replays JSON Lines (`emit --stdin`'s format), each validated against
    /// the catalog; a bad line goes to the sink with its number and the
    /// rest go on.
    fn lines(
        &mut self,
        input: impl BufRead,
        name: &str,
        catalog: &Catalog,
    ) -> Result<(), ReplayError> {
        for line in crate::jsonl::read_events(input, catalog) {
            let line = line.map_err(|source| ReplayError::Read {
                name: name.to_owned(),
                source,
            })?;
            match line.event {
                Ok(event) => {
                    if !self.event(event)? {
                        break;
                    }
                }
                Err(e) => {
                    self.tally.bad_lines += 1;
                    self.tally.failed += 1;
                    self.sink.rejected(line.number, &e);
                }
            }
        }
        Ok(())
    }

    /// Replays one event of history or a file to every destination that
    /// routes it; false once the limit is reached.
    pub fn event(&mut self, event: Event) -> Result<bool, ReplayError> {
        if self.plan.reached(self.tally.events) {
            return Ok(false);
        }
        if !self.plan.selects(&event.kind) {
            return Ok(true);
        }
        let targets: Vec<&Route> = self.plan.routes.of(&event).collect();
        if targets.is_empty() {
            self.tally.unrouted += 1;
            self.tally.skipped += 1;
            return Ok(true);
        }
        self.tally.events += 1;
        self.tally.deliveries += targets.len() as u64;
        if targets.iter().any(|r| r.kind().is_chat()) {
            self.tally.slack_events += 1;
        }
        let mut dests: Vec<String> = targets.iter().map(|r| r.name().to_owned()).collect();
        let last = dests.pop().expect("at least one target");
        for dest in dests {
            self.chunk.deliveries.push(fresh(event.clone(), dest));
        }
        self.chunk.first += 1;
        let kept = self.sink.keeps_events().then(|| event.clone());
        self.chunk.deliveries.push(fresh(event, last));
        self.chunk.events.extend(kept);
        self.flush_full()?;
        Ok(!self.plan.reached(self.tally.events))
    }

    /// Replays one dead letter to the destination that failed (or `--to`),
    /// removing it in the same write. An event with several dead letters
    /// counts, prints and is limited as one event.
    pub fn letter(&mut self, stored: StoredDeadLetter) -> Result<(), ReplayError> {
        let Ok(event) = stored.letter.event else {
            if self.plan.types.is_empty() {
                self.tally.poison += 1;
                self.tally.skipped += 1;
            }
            return Ok(());
        };
        let first = !self.seen.contains(&event.id);
        if !self.plan.selects(&event.kind) || (first && self.plan.reached(self.tally.events)) {
            return Ok(());
        }
        let targets = match self.plan.letter_targets(&event, &stored.letter.dest) {
            LetterTargets::Gone(dest) => {
                self.tally.gone_count += 1;
                self.tally.skipped += 1;
                self.tally.gone.insert(dest);
                return Ok(());
            }
            LetterTargets::To(targets) => targets,
        };
        if targets.is_empty() {
            self.tally.unrouted += 1;
            self.tally.skipped += 1;
            return Ok(());
        }
        self.tally.deliveries += targets.len() as u64;
        for dest in targets {
            let delivery = fresh(event.clone(), dest);
            self.chunk.requeued.push((stored.key.clone(), delivery));
        }
        if first {
            self.seen.insert(event.id.clone());
            self.tally.events += 1;
            self.chunk.first += 1;
            if self.sink.keeps_events() {
                self.chunk.events.push(event);
            }
        }
        self.flush_full()
    }

    fn flush_full(&mut self) -> Result<(), ReplayError> {
        if self.chunk.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands what is gathered to the sink.
    pub fn flush(&mut self) -> Result<(), ReplayError> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.chunk);
        self.sink.take(&chunk)?;
        self.scheduled.0 += chunk.first as u64;
        self.scheduled.1 += chunk.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::dest::DestConfig;
    use crate::queue::DeadLetter;
    use crate::secret::Secret;

    const NOW: i64 = 1_800_000_000_000;

    fn routes() -> Routes {
        let dest = |name: &str, settings, events: &[&str]| DestConfig {
            name: name.into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            ..settings
        };
        let slack = DestConfig::slack("", Secret::new("https://hooks.example/x"));
        Routes::new(
            &[
                dest("slack", slack, &["user.*"]),
                dest("console", DestConfig::console(""), &["*"]),
            ],
            None,
            Duration::from_secs(1),
        )
    }

    /// Keeps every chunk it takes.
    #[derive(Default)]
    struct Keep(Vec<Chunk>);

    impl Sink for Keep {
        fn take(&mut self, chunk: &Chunk) -> Result<(), ReplayError> {
            self.0.push(Chunk {
                events: chunk.events.clone(),
                first: chunk.first,
                deliveries: chunk.deliveries.clone(),
                requeued: chunk.requeued.clone(),
            });
            Ok(())
        }
    }

    fn event(kind: &str) -> Event {
        Event::new(kind, Default::default())
    }

    fn letter(key: &str, event: &Event, dest: &str) -> StoredDeadLetter {
        StoredDeadLetter {
            key: key.into(),
            letter: DeadLetter {
                event: Ok(event.clone()),
                dest: dest.into(),
                attempts: 3,
                error: "HTTP 500".into(),
                at_ms: NOW,
            },
        }
    }

    fn dests(deliveries: &[Delivery]) -> Vec<&str> {
        deliveries.iter().map(|d| d.dest.as_str()).collect()
    }

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
        assert!(err.to_string().contains("--until \"yesterday\""), "{err}");
    }

    #[test]
    fn history_is_routed_typed_and_limited_by_events() {
        let plan = Plan::new(
            routes(),
            None,
            &["user.*".into(), "billing.*".into()],
            Some(2),
        )
        .unwrap();
        let mut replay = Replay::new(&plan, Keep::default());
        assert!(
            replay.event(event("import.completed")).unwrap(),
            "not selected"
        );
        assert!(replay.event(event("user.signup")).unwrap());
        assert!(!replay.event(event("billing.failed")).unwrap(), "the limit");
        assert!(!replay.event(event("user.signup")).unwrap());
        replay.flush().unwrap();
        let chunks = &replay.sink().0;
        assert_eq!(chunks.len(), 1);
        assert_eq!(
            dests(&chunks[0].deliveries),
            ["slack", "console", "console"]
        );
        assert!(chunks[0].deliveries.iter().all(|d| d.attempts == 0));
        assert_eq!(chunks[0].events.len(), 2);
        let tally = replay.tally();
        assert_eq!(
            (tally.events, tally.deliveries, tally.slack_events),
            (2, 3, 1)
        );
        assert_eq!(replay.scheduled(), (2, 3));
    }

    #[test]
    fn to_narrows_and_an_unrouted_type_is_skipped() {
        let plan = Plan::new(routes(), Some("slack"), &[], None).unwrap();
        assert_eq!(plan.slack(), ["slack"]);
        let mut replay = Replay::new(&plan, Keep::default());
        replay.event(event("billing.failed")).unwrap();
        replay.event(event("user.signup")).unwrap();
        replay.flush().unwrap();
        assert_eq!(dests(&replay.sink().0[0].deliveries), ["slack"]);
        assert_eq!((replay.tally().unrouted, replay.tally().skipped), (1, 1));
        let err = Plan::new(routes(), Some("nope"), &[], None).err().unwrap();
        assert_eq!(
            err.to_string(),
            "--to nope: no such destination (configured: slack, console)"
        );
    }

    #[test]
    fn dead_letters_go_back_where_they_failed_once_per_event() {
        let plan = Plan::new(routes(), None, &[], Some(1)).unwrap();
        let mut replay = Replay::new(&plan, Keep::default());
        let (one, two) = (event("user.signup"), event("user.signup"));
        replay.letter(letter("d1", &one, "slack")).unwrap();
        replay.letter(letter("d2", &one, "console")).unwrap();
        replay.letter(letter("d3", &two, "console")).unwrap();
        replay.letter(letter("d4", &one, "gone")).unwrap();
        let mut poison = letter("d5", &one, POISON_DEST);
        poison.letter.event = Err("garbage".into());
        replay.letter(poison).unwrap();
        replay.flush().unwrap();
        let chunk = &replay.sink().0[0];
        let requeued: Vec<(&str, &str)> = chunk
            .requeued
            .iter()
            .map(|(key, d)| (key.as_str(), d.dest.as_str()))
            .collect();
        assert_eq!(requeued, [("d1", "slack"), ("d2", "console")]);
        assert_eq!(chunk.events.len(), 1, "one event, limited to one");
        let tally = replay.tally();
        assert_eq!((tally.events, tally.deliveries), (1, 2));
        assert_eq!((tally.gone_count, tally.poison, tally.skipped), (1, 1, 2));
        assert!(tally.gone.contains("gone"));
    }

    #[test]
    fn a_poison_letter_that_decodes_goes_where_its_type_routes() {
        let plan = Plan::new(routes(), None, &[], None).unwrap();
        let mut replay = Replay::new(&plan, Keep::default());
        replay
            .letter(letter("d1", &event("user.signup"), POISON_DEST))
            .unwrap();
        replay.flush().unwrap();
        assert_eq!(
            dests(
                &replay.sink().0[0]
                    .requeued
                    .iter()
                    .map(|(_, d)| d.clone())
                    .collect::<Vec<_>>()
            ),
            ["slack", "console"]
        );
    }

    #[test]
    fn chunks_hold_whole_events_of_about_chunk_deliveries() {
        let plan = Plan::new(routes(), None, &[], None).unwrap();
        let mut replay = Replay::new(&plan, Keep::default());
        for _ in 0..CHUNK {
            // Two deliveries each: slack and console.
            replay.event(event("user.signup")).unwrap();
        }
        replay.flush().unwrap();
        let sizes: Vec<usize> = replay.sink().0.iter().map(Chunk::len).collect();
        assert_eq!(sizes, [CHUNK, CHUNK]);
        assert_eq!(replay.scheduled(), (CHUNK as u64, 2 * CHUNK as u64));
    }
}
