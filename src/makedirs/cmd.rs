use clap::Args as ClapArgs;

use crate::exit::Exit;

#[derive(Debug, ClapArgs)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<Exit> {
    anyhow::bail!("makedirs is not built yet")
}
