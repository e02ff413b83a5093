//! Probes what some integration tests need (root, IPv6, Net::Ident, ...) and sets
//! one `has_*` cfg per precondition found; a test lacking one is then listed as
//! ignored with its reason, never as passed. Under CI (`CI=true`) every cfg is set,
//! so those tests run and fail naming what is missing. The reasoning, and the
//! probes, are in tests/testenv/preconditions.rs, shared with the tests.

#[path = "tests/testenv/preconditions.rs"]
#[allow(dead_code)]
mod preconditions;

use preconditions::Precondition;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=tests/testenv/preconditions.rs");
    println!("cargo::rerun-if-env-changed=CI");
    // Tools are looked up on PATH (mpirun, kubernetes-validate, cargo-deb, ...).
    println!("cargo::rerun-if-env-changed=PATH");
    // Re-probe when a package is installed or a user added.
    println!("cargo::rerun-if-changed=/var/lib/dpkg/status");
    println!("cargo::rerun-if-changed=/etc/passwd");
    let ci = preconditions::under_ci();
    for p in Precondition::ALL {
        println!("cargo::rustc-check-cfg=cfg({})", p.cfg());
        match p.probe() {
            Ok(()) => println!("cargo::rustc-cfg={}", p.cfg()),
            Err(_) if ci => println!("cargo::rustc-cfg={}", p.cfg()),
            // The test's ignore reason says what it needs; `require` says why it failed.
            Err(_) => {}
        }
    }
}
