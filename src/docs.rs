//! Man pages and shell completions, generated from the clap definitions.
//!
//! The committed files under `man/` and `completions/` are the output of
//! [`generate`]; the test `docs_are_fresh` regenerates them in memory and fails when
//! they differ. Rewrite them with `RACEFREE_REGENERATE_DOCS=1 cargo test docs_are_fresh`.

use std::io;
use std::path::Path;

use clap::Command;
use clap_complete::{Generator, Shell};
use clap_mangen::roff::{Roff, roman};

use crate::{exit, help};

/// One generated file: its path relative to the repository root and its bytes.
pub struct Generated {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// Every man page and completion script, in a stable order.
pub fn generate() -> io::Result<Vec<Generated>> {
    let mut cmd = crate::cli::command();
    cmd.build();
    let mut out = Vec::new();
    man_pages(&cmd, "", &mut out)?;
    for shell in [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Elvish,
        Shell::PowerShell,
    ] {
        let mut bytes = Vec::new();
        clap_complete::generate(shell, &mut crate::cli::command(), "racefree", &mut bytes);
        let name = shell.file_name("racefree");
        out.push(Generated {
            path: format!("completions/{name}"),
            bytes,
        });
    }
    Ok(out)
}

/// Writes every generated file below `root`.
pub fn write_all(root: &Path) -> io::Result<()> {
    for g in generate()? {
        let p = root.join(&g.path);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(p, g.bytes)?;
    }
    Ok(())
}

/// One page for `racefree` and one per subcommand at every depth
/// (`racefree-makedirs.1`, `racefree-ident-lookup.1`, ...).
fn man_pages(cmd: &Command, path: &str, out: &mut Vec<Generated>) -> io::Result<()> {
    let title = if path.is_empty() {
        "racefree".to_string()
    } else {
        format!("racefree-{}", path.replace(' ', "-"))
    };
    let page = cmd.clone().name(title.clone());
    let man = clap_mangen::Man::new(page.clone())
        .title(title.clone())
        .section("1");
    let mut bytes = Vec::new();
    man.render_title(&mut bytes)?;
    man.render_name_section(&mut bytes)?;
    man.render_synopsis_section(&mut bytes)?;
    man.render_description_section(&mut bytes)?;
    if page.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut bytes)?;
    }
    if page.has_subcommands() {
        man.render_subcommands_section(&mut bytes)?;
    }
    render_exit_status(&page, &mut bytes)?;
    render_examples(&page, &mut bytes)?;
    render_see_also(cmd, path, &mut bytes)?;
    man.render_version_section(&mut bytes)?;
    out.push(Generated {
        path: format!("man/{title}.1"),
        bytes,
    });
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let sub_path = if path.is_empty() {
            sub.get_name().to_string()
        } else {
            format!("{path} {}", sub.get_name())
        };
        man_pages(sub, &sub_path, out)?;
    }
    Ok(())
}

/// The text after a command's options in its long help: examples and statuses.
fn after_long_help(cmd: &Command) -> String {
    cmd.get_after_long_help()
        .map(|h| h.to_string())
        .unwrap_or_default()
}

/// The EXIT STATUS section, from the list the command's long help shows.
fn render_exit_status(cmd: &Command, w: &mut dyn io::Write) -> io::Result<()> {
    let help = after_long_help(cmd);
    let mut roff = Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    for (code, what) in exit::statuses_in_help(&help) {
        roff.control("TP", []);
        roff.text([roman(code.to_string())]);
        roff.text([roman(what)]);
    }
    roff.to_writer(w)
}

/// The EXAMPLES section, from the examples the command's long help shows.
fn render_examples(cmd: &Command, w: &mut dyn io::Write) -> io::Result<()> {
    let examples = help::examples_in_help(&after_long_help(cmd));
    if examples.is_empty() {
        return Ok(());
    }
    let mut roff = Roff::new();
    roff.control("SH", ["EXAMPLES"]);
    for (what, lines) in examples {
        roff.control("PP", []);
        roff.text([roman(what)]);
        roff.control("PP", []);
        roff.control("nf", []);
        roff.control("RS", ["4"]);
        for line in lines.lines() {
            roff.text([roman(line)]);
        }
        roff.control("RE", []);
        roff.control("fi", []);
    }
    roff.to_writer(w)
}

fn render_see_also(cmd: &Command, path: &str, w: &mut dyn io::Write) -> io::Result<()> {
    let mut refs: Vec<String> = Vec::new();
    if !path.is_empty() {
        refs.push("racefree(1)".into());
    }
    let prefix = if path.is_empty() {
        "racefree".to_string()
    } else {
        format!("racefree-{}", path.replace(' ', "-"))
    };
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        refs.push(format!("{prefix}-{}(1)", sub.get_name()));
    }
    if refs.is_empty() {
        return Ok(());
    }
    let mut roff = Roff::new();
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(refs.join(", "))]);
    roff.to_writer(w)
}
