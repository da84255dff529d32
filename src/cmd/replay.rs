//! (being written)
use super::Context;
use crate::cli::ReplayArgs;
pub fn run(_ctx: &Context, _args: ReplayArgs) -> anyhow::Result<()> { Ok(()) }
