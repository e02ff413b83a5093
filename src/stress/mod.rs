//! `racefree stress`: parallel racers that verify makedirs and ident. (Being built.)

use clap::Args as ClapArgs;

use crate::exit::Exit;

#[derive(Debug, ClapArgs)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<Exit> {
    anyhow::bail!("stress is not built yet")
}
