//! Preconditions of the tests that need the machine set up the way CI sets it up
//! (root, Debian's tools, cargo-deb, Open MPI). Under CI=true a missing one fails
//! the test; elsewhere the test says, on the terminal, that it was skipped.

use std::io::Write;
use std::process::{Command, Stdio};

/// True when the test must stop here: `missing` names what is not there.
pub fn unmet(test: &str, missing: &[String]) -> bool {
    if missing.is_empty() {
        return false;
    }
    let why = missing.join("; ");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: CI must provide: {why}");
    }
    // Straight to fd 2, not eprintln!: libtest captures that for passing tests.
    let _ = writeln!(std::io::stderr(), "skipped: {test}: needs {why}");
    true
}

/// Whether `program --version`-like `args` run and exit 0.
pub fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Prints a line on the terminal even when the test passes (timings, what was
/// looked at instead of what was asked).
pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
