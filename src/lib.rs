//! racefree: concurrency-safe filesystem and operations primitives.
//!
//! Each subcommand is a module exposing its clap `Args` and one `run`:
//! [`makedirs`] (an idempotent `mkdir -p`), [`ident`] (RFC 1413 lookup, server and
//! client) and [`stress`] (parallel racers that verify both). [`exit`] is the small
//! shared core: exit statuses and the one place fatal errors are printed.

pub mod cli;
pub mod docs;
pub mod exit;
pub mod ident;
pub mod makedirs;
pub mod quote;
pub mod stress;

use cli::{Cli, Command};
use exit::Exit;

/// Runs one parsed command line and returns the exit status it earned.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Makedirs(args) => makedirs::cmd::run(args),
        Command::Ident(args) => ident::run(args),
        Command::Stress(args) => stress::run(args),
    }
}
