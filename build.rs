//! Probes what some integration tests need (root, IPv6, Net::Ident, ...) and sets
//! one `has_*` cfg per precondition found; a test lacking one is then listed as
//! ignored with its reason, never as passed. Under CI (`CI=true`) every cfg is set,
//! so those tests run and fail naming what is missing. The reasoning, and the
//! probes, are in tests/testenv/preconditions.rs, shared with the tests.

#[path = "tests/testenv/preconditions.rs"]
#[allow(dead_code)]
mod preconditions;

use std::path::PathBuf;

use preconditions::Precondition;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=tests/testenv/preconditions.rs");
    println!("cargo::rerun-if-env-changed=CI");
    // Nothing else of the machine (PATH, /etc/passwd, dpkg's status): every rerun
    // rebuilds the whole package, and the tests change those files themselves. The
    // test binary probes again and touches this stamp when an answer has changed.
    let stamp = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join(preconditions::REPROBE_STAMP);
    if !stamp.exists() {
        // Older than this run, or cargo would take the stamp just made for a change.
        std::fs::File::create(&stamp)
            .and_then(|f| f.set_modified(std::time::SystemTime::UNIX_EPOCH))
            .unwrap_or_else(|e| panic!("creating {}: {e}", stamp.display()));
    }
    println!("cargo::rerun-if-changed={}", stamp.display());

    let ci = preconditions::under_ci();
    let mut set = Vec::new();
    for p in Precondition::ALL {
        println!("cargo::rustc-check-cfg=cfg({})", p.cfg());
        match p.probe() {
            Ok(()) => set.push(p.cfg()),
            Err(_) if ci => set.push(p.cfg()),
            // The test's ignore reason says what it needs; `require` says why it failed.
            Err(_) => {}
        }
    }
    for cfg in &set {
        println!("cargo::rustc-cfg={cfg}");
    }
    // The same list, for the test that looks for a precondition found since
    // (testenv's `built_with`).
    println!(
        "cargo::rustc-env=RACEFREE_TEST_PRECONDITIONS={}",
        set.join(" ")
    );
}
