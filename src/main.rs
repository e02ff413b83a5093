//! The `racefree` binary: parse the arguments, run, map the outcome to an exit status.
//! Everything else lives in the library so tests and later subcommands can call it.

use std::process::ExitCode;

use clap::Parser;
use racefree::ident::server;
use racefree::{cli::Cli, exit};

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = match racefree::cli::parse_primitive_fast(&argv) {
        Some(cli) => Ok(cli),
        None => Cli::try_parse_from(&argv),
    };
    let cli = match parsed {
        Ok(cli) => cli,
        // Under inetd fd 2 may be the client's socket: a usage error goes to syslog.
        Err(err) if err.use_stderr() && server::started_by_a_superserver() => {
            server::log_usage_error_quietly(&err.to_string());
            return exit::Exit::Usage.into();
        }
        Err(err) => err.exit(),
    };
    match racefree::run(cli) {
        Ok(status) => status.into(),
        Err(err) => exit::report_fatal(&err).into(),
    }
}
