//! Helpers shared by the integration tests.

use assert_cmd::Command;

/// The built `racefree` binary, found through cargo (never a hard-coded path).
pub fn racefree() -> Command {
    assert_cmd::cargo::cargo_bin_cmd!("racefree")
}

/// The path of the built binary, for tests that spawn many processes themselves.
pub fn racefree_path() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin!("racefree").to_path_buf()
}
