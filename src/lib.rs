//! racefree: concurrency-safe filesystem and operations primitives.
//!
//! Each subcommand is a module exposing its clap `Args` and one `run`:
//! [`makedirs`] (an idempotent `mkdir -p`), [`ident`] (RFC 1413 lookup, server and
//! client), [`stress`] (parallel racers that verify both), and the primitives shell
//! scripts get wrong: [`lock`] (flock(1) without its traps), [`counter`] (an atomic
//! read-modify-write of a number in a file) and [`write`] (atomic file replacement). [`exit`] is the small
//! shared core: exit statuses and the one place fatal errors are printed.

pub mod child;
pub mod cli;
pub mod counter;
pub mod docs;
pub mod exit;
pub mod help;
pub mod ident;
pub mod lock;
pub mod makedirs;
pub mod owner;
pub mod quote;
pub mod signals;
pub mod startup;
pub mod stress;
pub mod write;

use cli::{Cli, Command};
use exit::Exit;

/// Runs one parsed command line and returns the exit status it earned.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Makedirs(args) => makedirs::cmd::run(args),
        Command::Ident(args) => ident::cmd::run(args),
        Command::Stress(args) => stress::cmd::run(args),
        Command::Lock(args) => lock::cmd::run(args),
        Command::Counter(args) => counter::cmd::run(args),
        Command::Write(args) => write::cmd::run(args),
    }
}
