//! The `racefree` binary: parse the arguments, run, map the outcome to an exit status.
//! Everything else lives in the library so tests and later subcommands can call it.

use std::process::ExitCode;

use racefree::{cli, exit};

fn main() -> ExitCode {
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(status) => return status,
    };
    match racefree::run(cli) {
        Ok(status) => status.into(),
        Err(err) => exit::report_fatal(&err).into(),
    }
}
