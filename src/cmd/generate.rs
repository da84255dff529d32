//! `events completions` and `events man`: shell completions and man pages
//! generated from the clap definitions, so they can never drift from the
//! real flags (the committed copies are checked fresh by a test).

use anyhow::Context as _;
use clap::CommandFactory;

use super::print;
use crate::cli::{Cli, CompletionsArgs, ManArgs};

pub fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "events", &mut out);
    print(&String::from_utf8_lossy(&out))
}

pub fn man(args: ManArgs) -> anyhow::Result<()> {
    let command = Cli::command();
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(command, &dir)
                .with_context(|| format!("cannot write man pages into {}", dir.display()))
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(command).render(&mut out)?;
            print(&String::from_utf8_lossy(&out))
        }
    }
}
