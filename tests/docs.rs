//! The committed man pages and completions must match the clap definitions.

use std::path::Path;

#[test]
fn docs_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("RACEFREE_REGENERATE_DOCS").is_some() {
        racefree::docs::write_all(root).expect("writing man pages and completions");
    }
    let mut stale = Vec::new();
    for g in racefree::docs::generate().expect("generating docs") {
        let committed = std::fs::read(root.join(&g.path)).unwrap_or_default();
        if committed != g.bytes {
            stale.push(g.path);
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated docs: {stale:?}\nrun `RACEFREE_REGENERATE_DOCS=1 cargo test --test tests docs_are_fresh` to regenerate them"
    );
}

#[test]
fn every_man_page_documents_exit_status() {
    for g in racefree::docs::generate().expect("generating docs") {
        if g.path.starts_with("man/") {
            let text = String::from_utf8(g.bytes).unwrap();
            let section = text
                .split_once(".SH \"EXIT STATUS\"")
                .map(|(_, rest)| rest.split(".SH ").next().unwrap_or(""))
                .unwrap_or_else(|| panic!("{} has no EXIT STATUS section", g.path));
            // Each command declares its statuses beside its Args; one that forgot
            // would get an empty section. Every command documents at least 0 and 2.
            for code in ["0", "2"] {
                assert!(
                    section.lines().any(|l| l == code),
                    "{}'s EXIT STATUS lists no status {code}:\n{section}",
                    g.path
                );
            }
        }
    }
}

/// A usage error is printed as every other error is (README's convention): one line
/// `racefree: error: ...`, then at most one line of usage; nothing else, exit 2.
#[test]
fn usage_errors_are_one_error_line_and_one_usage_line() {
    use crate::testenv::{Expected, TestEnv};
    let env = TestEnv::new();
    env.assert_run(
        ["makedirs", "--bogus"],
        &Expected::failure(
            2,
            "racefree: error: unexpected argument '--bogus' found; to pass '--bogus' as a value, use '-- --bogus'\n\
             Usage: racefree makedirs [OPTIONS] [PATH]... (see --help)\n",
        ),
    );
    env.assert_run(
        ["frob"],
        &Expected::failure(
            2,
            "racefree: error: unrecognized subcommand 'frob'\nUsage: racefree <COMMAND> (see --help)\n",
        ),
    );
    // Help is not an error: it still goes to stdout, exit 0.
    env.racefree(["makedirs", "--help"]).assert().success();
}
