//! (being written)
use super::Context;
use crate::cli::StatusArgs;
pub fn run(_ctx: &Context, _args: StatusArgs) -> anyhow::Result<()> { Ok(()) }
