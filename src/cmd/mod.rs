//! The subcommands: one file each, an args struct (in `cli.rs`) plus the
//! function that runs it, dispatched from `run`.

mod dashboard;
mod digest;
mod emit;
mod forget;
mod generate;
mod inspect;
mod migrate;
mod pause;
mod purge;
mod replay;
mod resume;
mod status;
mod table;
mod tail;
mod templates;
mod work;

use std::cell::OnceCell;

use anyhow::Context as _;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::config::Global;
use crate::error::Error;
use crate::setup::Setup;

/// What every subcommand may need: the global options and what `setup`
/// built from the configuration, once on first use (`completions` and `man` never load it).
pub struct Context {
    pub global: Global,
    pub verbose: bool,
    pub quiet: bool,
    setup: OnceCell<Setup>,
}

impl Context {
    fn new(args: GlobalArgs) -> Context {
        Context {
            global: Global {
                redis_url: args.redis_url,
                postgres_url: args.postgres_url,
                db: args.db,
                config: args.config,
            },
            verbose: args.verbose,
            quiet: args.quiet,
            setup: OnceCell::new(),
        }
    }

    pub fn setup(&self) -> anyhow::Result<&Setup> {
        if let Some(setup) = self.setup.get() {
            return Ok(setup);
        }
        let setup = Setup::load(&self.global).map_err(Error::from)?;
        Ok(self.setup.get_or_init(|| setup))
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Context::new(cli.global);
    init_logging(&ctx);
    match cli.command {
        Command::Emit(args) => emit::run(&ctx, args),
        Command::Work(args) => work::run(&ctx, args),
        Command::Replay(args) => replay::run(&ctx, args),
        Command::Purge(args) => purge::run(&ctx, args),
        Command::Tail(args) => tail::run(&ctx, args),
        Command::Templates(args) => templates::run(&ctx, args),
        Command::Status(args) => status::run(&ctx, args),
        Command::Digest(args) => digest::run(&ctx, args),
        Command::Inspect(args) => inspect::run(&ctx, args),
        Command::Forget(args) => forget::run(&ctx, args),
        Command::Pause(args) => pause::run(&ctx, args),
        Command::Resume(args) => resume::run(&ctx, args),
        Command::Migrate(args) => migrate::run(&ctx, args),
        Command::Dashboard(args) => dashboard::run(&ctx, args),
        Command::Completions(args) => generate::completions(args),
        Command::Man(args) => generate::man(args),
    }
}

/// Reports a panic (a bug) as one line on stderr, never a backtrace.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("events: error: internal error{place}: {message} (please report it)");
    }));
}

/// Loads `.env` from the working directory (only there: never a parent's),
/// without overriding variables already set.
///
/// A syntax error names the file and line, never the content: dotenvy's
/// error carries the rest of the line (or of the file, after an unclosed
/// quote), which holds passwords, webhook URLs and signing secrets.
pub fn load_dotenv() -> anyhow::Result<()> {
    let _ = PROCESS_ENV.set(std::env::vars_os().map(|(name, _)| name).collect());
    match dotenvy::from_path(DOTENV) {
        Ok(()) => Ok(()),
        Err(e) => Ok(dotenv_error(e)?),
    }
}

const DOTENV: &str = ".env";

/// The names the process environment had before `.env` was loaded: those
/// `.env` never overrides, at start or on a reload.
static PROCESS_ENV: std::sync::OnceLock<std::collections::HashSet<std::ffi::OsString>> =
    std::sync::OnceLock::new();

/// The environment as it would be if the process started now: its own
/// variables, then `.env` as it reads now (a variable since removed from
/// `.env` is unset). For a worker's reload.
pub fn reread_env() -> Result<impl Fn(&str) -> Option<String>, Error> {
    let mut dotenv = std::collections::HashMap::new();
    match dotenvy::from_path_iter(DOTENV) {
        Ok(entries) => {
            for entry in entries {
                match entry {
                    Ok((name, value)) => {
                        dotenv.insert(name, value);
                    }
                    Err(e) => dotenv_error(e)?,
                }
            }
        }
        Err(e) => dotenv_error(e)?,
    }
    Ok(move |name: &str| {
        let own = PROCESS_ENV
            .get()
            .is_none_or(|names| names.contains(std::ffi::OsStr::new(name)));
        if own {
            std::env::var(name).ok()
        } else {
            dotenv.get(name).cloned()
        }
    })
}

/// A `.env` that cannot be read: missing is fine; otherwise an error naming
/// the file (and line), never its content.
fn dotenv_error(e: dotenvy::Error) -> Result<(), Error> {
    match e {
        dotenvy::Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        dotenvy::Error::LineParse(entry, _) => {
            let line = std::fs::read_to_string(DOTENV)
                .ok()
                .and_then(|text| {
                    let start = text.find(entry.trim_end())?;
                    Some(text[..start].matches('\n').count() + 1)
                })
                .map_or(String::new(), |n| format!("{n}:"));
            Err(Error::Usage(format!(
                "{DOTENV}:{line} syntax error (expected KEY=VALUE, with quotes closed on the same entry)"
            )))
        }
        dotenvy::Error::Io(e) => Err(Error::Usage(format!(
            "cannot read {DOTENV} in the working directory: {e}"
        ))),
        _ => Err(Error::Usage(format!(
            "cannot read {DOTENV} in the working directory"
        ))),
    }
}

/// Diagnostics on stderr: `-q` only warnings and errors, `-v` debug; an
/// explicit `RUST_LOG` wins. Libraries' own debug logs are never shown, even
/// when `RUST_LOG` asks: an HTTP client's request log would carry webhook
/// URLs, which are secrets.
fn init_logging(ctx: &Context) {
    let level = if ctx.quiet {
        "warn"
    } else if ctx.verbose {
        "debug"
    } else {
        "info"
    };
    let env = env_logger::Env::default().default_filter_or(format!("events={level},warn"));
    let _ = env_logger::Builder::from_env(env)
        .format(|out, record| {
            use std::io::Write;
            let ours = record.target().starts_with("events");
            if !ours && record.level() > log::Level::Warn {
                return Ok(());
            }
            match record.level() {
                log::Level::Error => writeln!(out, "events: error: {}", record.args()),
                log::Level::Warn => writeln!(out, "events: warning: {}", record.args()),
                _ => writeln!(out, "events: {}", record.args()),
            }
        })
        .try_init();
}

/// Splits `KEY=VALUE` arguments.
pub fn key_values(args: &[String], flag: &str) -> anyhow::Result<Vec<(String, String)>> {
    args.iter()
        .map(|arg| match arg.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(Error::Usage(format!("{flag} expects KEY=VALUE, not {arg:?}")).into()),
        })
        .collect()
}

/// Writes `text` to stdout; a closed pipe is reported as such so `main` can
/// exit quietly.
/// What cannot be undone is asked about at a terminal and refused
/// elsewhere (a cron job, a pipe) with `refusal`, which says how to go on
/// (`--yes`, `--dry-run`). `question` is asked on stderr; anything but `y`
/// or `yes` is an error saying `declined`.
pub fn confirm(refusal: String, question: &str, declined: &str) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal};
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(Error::Usage(refusal).into());
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("cannot read the answer from stdin")?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(Error::Usage(declined.to_owned()).into())
    }
}

pub fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}
