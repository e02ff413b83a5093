//! `racefree ident`: RFC 1413 owner lookup, server and client. (Being built.)

use clap::Args as ClapArgs;

use crate::exit::Exit;

#[derive(Debug, ClapArgs)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<Exit> {
    anyhow::bail!("ident is not built yet")
}
