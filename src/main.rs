//! The `racefree` binary: parse the arguments, run, map the outcome to an exit status.
//! Everything else lives in the library so tests and later subcommands can call it.
//!
//! `main` is the C entry point, not Rust's: `lock`, `counter` and `write` run once
//! per item of a shell loop, so start-up is most of what they cost, and Rust's own
//! start-up reads /proc/self/maps (glibc's pthread_getattr_np, to place a stack
//! guard) and sets up an alternate signal stack before any of our code runs
//! (bench/RESULTS-primitives.md measures the difference). What of it matters to a
//! command-line tool, [`racefree::startup::init`] does itself: standard descriptors
//! that are closed are opened on /dev/null, and SIGPIPE is ignored so that a closed
//! pipe is an EPIPE error we report. A panic still prints its message and exits 101.
// Under `cargo test` the test harness brings its own main.
#![cfg_attr(not(test), no_main)]

#[cfg(not(test))]
use std::ffi::{c_char, c_int};

#[cfg(not(test))]
use racefree::{cli, exit};

#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    racefree::startup::init();
    let status = std::panic::catch_unwind(|| {
        let cli = match cli::parse() {
            Ok(cli) => cli,
            Err(status) => return status,
        };
        match racefree::run(cli) {
            Ok(status) => status,
            Err(err) => exit::report_fatal(&err),
        }
    });
    // process::exit flushes standard output, as returning from Rust's main would.
    std::process::exit(status.map_or(101, |s| c_int::from(s.code())))
}
