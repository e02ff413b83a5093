//! The Debian package: built with cargo-deb, installed on this machine with dpkg, and
//! used the way a person would (man, tab completion, the binary from /usr/bin, the
//! systemd units), then removed, pass or fail. Root only; CI runs it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use crate::testenv::{
    IDENTD_ACCOUNT, IdentdAccount, OwnedConnection, Precondition, PrivateHomeUser, TestEnv, cargo,
    note, require,
};

const PACKAGE: &str = "racefree";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Removes the package when dropped, so a failing assertion still leaves the
/// machine as it was.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let status = Command::new("dpkg").args(["--purge", PACKAGE]).output();
        if !status.is_ok_and(|o| o.status.success()) {
            note("package test: `dpkg --purge racefree` failed; remove it by hand");
        }
    }
}

/// The committed man pages, by file name (`racefree-makedirs.1`, ...).
fn man_pages() -> Vec<String> {
    let mut pages: Vec<String> = std::fs::read_dir(root().join("man"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".1"))
        .collect();
    pages.sort();
    assert!(pages.len() >= 10, "{pages:?}");
    pages
}

/// dpkg's `path-exclude` lines (Debian and Ubuntu minimal images drop
/// /usr/share/man this way) that would keep `path` off the disk.
fn excluded_by_dpkg(path: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/etc/dpkg/dpkg.cfg.d") else {
        return Vec::new();
    };
    let mut hits = Vec::new();
    for e in dir.flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        for line in text.lines() {
            if let Some(pattern) = line.trim().strip_prefix("path-exclude=")
                && glob_matches(pattern, path)
            {
                hits.push(format!("{}: {}", e.path().display(), line.trim()));
            }
        }
    }
    hits
}

/// dpkg's patterns as used for path-exclude: `*` matches any run of characters.
fn glob_matches(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| glob_matches(tail, &rest[i..]))
        }
    }
}

#[test]
fn dpkg_path_exclude_patterns_match_like_dpkg() {
    assert!(glob_matches(
        "/usr/share/man/*",
        "/usr/share/man/man1/racefree.1.gz"
    ));
    assert!(glob_matches(
        "/usr/share/*/man1/*.gz",
        "/usr/share/man/man1/a.1.gz"
    ));
    assert!(!glob_matches(
        "/usr/share/man/*",
        "/usr/share/doc/racefree/README.md"
    ));
    assert!(!glob_matches(
        "/usr/share/man",
        "/usr/share/man/man1/a.1.gz"
    ));
}

/// Every file the package must put on the system, for these man pages.
fn expected_files(pages: &[String]) -> BTreeSet<String> {
    let mut files: BTreeSet<String> = [
        "/usr/bin/racefree",
        "/usr/share/bash-completion/completions/racefree",
        "/usr/share/zsh/vendor-completions/_racefree",
        "/usr/share/fish/vendor_completions.d/racefree.fish",
        "/usr/lib/systemd/system/racefree-identd.socket",
        "/usr/lib/systemd/system/racefree-identd@.service",
        "/usr/lib/systemd/system/racefree-identd.service",
        "/usr/share/doc/racefree/examples/inetd.conf",
        "/usr/share/doc/racefree/examples/xinetd.d/racefree-identd",
        "/usr/share/doc/racefree/examples/launchers/mpirun.sh",
        "/usr/share/doc/racefree/examples/launchers/slurm.sbatch",
        "/usr/share/doc/racefree/examples/launchers/kubernetes-job.yaml",
        "/usr/share/doc/racefree/copyright",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    files.extend(pages.iter().map(|p| format!("/usr/share/man/man1/{p}.gz")));
    files
}

/// Runs the completion function bash would run for `line` (the cursor at its end)
/// and returns the candidates it offers.
fn bash_completes(completion: &str, line: &str) -> Vec<String> {
    let script = format!(
        r#"source {completion}
COMP_LINE={line:?}; COMP_POINT=${{#COMP_LINE}}
read -ra COMP_WORDS <<< "$COMP_LINE"
[[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
_racefree racefree "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#
    );
    let out = run(Command::new("bash").args(["--norc", "-c", &script]));
    stdout(&out).lines().map(String::from).collect()
}

#[test]
#[cfg_attr(
    not(all(
        has_root,
        has_deb_tools,
        has_man,
        has_cargo_deb,
        has_no_racefree_package
    )),
    ignore = "needs root (dpkg -i installs onto this machine), dpkg, man, systemd-analyze, \
              cargo-deb, and no racefree package installed already"
)]
fn the_debian_package_installs_man_pages_completions_and_units_that_work() {
    require(&[
        Precondition::Root,
        Precondition::DebTools,
        Precondition::Man,
        Precondition::CargoDeb,
        Precondition::NoRacefreePackage,
    ]);
    let cargo = cargo();

    // Build: cargo deb builds the release binary (reused when fresh). --fast only
    // lowers the compression level; the package's contents are the same.
    let env = TestEnv::new();
    let out_dir = env.mkdir("deb");
    let begin = Instant::now();
    run(Command::new(&cargo)
        .current_dir(root())
        .args(["deb", "--locked", "--fast", "--output"])
        .arg(&out_dir));
    note(&format!(
        "package: cargo deb took {:.1} s",
        begin.elapsed().as_secs_f64()
    ));
    let debs: Vec<PathBuf> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    let deb = &debs[0];

    // The package's own description: a short synopsis, the depends computed.
    let control = stdout(&run(Command::new("dpkg-deb").arg("-f").arg(deb).args([
        "Package",
        "Section",
        "Depends",
        "Description",
    ])));
    assert!(control.contains("Package: racefree\n"), "{control}");
    assert!(control.contains("Section: utils\n"), "{control}");
    // adduser: the postinst creates the identd's account with it.
    assert!(control.contains("Depends: adduser, libc6"), "{control}");
    let synopsis = control
        .lines()
        .find_map(|l| l.strip_prefix("Description: "))
        .unwrap();
    assert!(synopsis.len() < 80, "synopsis too long: {synopsis}");
    // Every command, in the synopsis and as an entry of the extended description.
    for command in COMMANDS {
        assert!(synopsis.contains(command), "{command} not in {synopsis:?}");
        assert!(
            control.contains(&format!("\n  {command} ")),
            "{command} has no entry in:\n{control}"
        );
    }
    assert_debug_info_split_off(deb, &out_dir);

    // Another identd's package, as Debian's oidentd declares itself: racefree
    // installs beside it (and binds nothing: its units are not enabled).
    let _other_identd = OtherIdentd::install(&out_dir);
    // Declared first, so dropped last: the account outlives the purge below.
    let account = IdentdAccount::absent();
    let installed = Installed;
    run(Command::new("dpkg").arg("-i").arg(deb));

    // The postinst made the identd's account: a system account with a group of its
    // own, no home and no login; a reinstall (an upgrade runs the same postinst)
    // keeps it as it is.
    let entry = assert_identd_account();
    run(Command::new("dpkg").arg("-i").arg(deb));
    assert_eq!(assert_identd_account(), entry, "changed by a reinstall");
    assert!(
        !ident_servers_installed().is_empty(),
        "the other identd was removed"
    );

    // The copyright file is the committed one, in Debian's format.
    assert_eq!(
        std::fs::read_to_string("/usr/share/doc/racefree/copyright").unwrap(),
        std::fs::read_to_string(root().join("contrib/debian/copyright")).unwrap()
    );

    let pages = man_pages();
    let listed: BTreeSet<String> = stdout(&run(Command::new("dpkg").args(["-L", PACKAGE])))
        .lines()
        .map(String::from)
        .collect();
    let expected = expected_files(&pages);
    let absent: Vec<_> = expected.difference(&listed).collect();
    assert!(absent.is_empty(), "not in the package: {absent:?}");

    // The binary, from /usr/bin and as found on a plain PATH.
    let version = run(Command::new("/usr/bin/racefree").arg("--version"));
    assert_eq!(
        stdout(&version),
        format!("racefree {}\n", env!("CARGO_PKG_VERSION"))
    );
    let found = run(Command::new("bash")
        .args(["--norc", "-c", "command -v racefree"])
        .env("PATH", "/usr/bin:/bin"));
    assert_eq!(stdout(&found), "/usr/bin/racefree\n");

    // Every man page renders with man(1), without a groff warning. Minimal images
    // may tell dpkg not to install /usr/share/man at all: then read the pages from
    // the package itself with `man -l`, and say so.
    let excluded = excluded_by_dpkg("/usr/share/man/man1/racefree.1.gz");
    let on_disk = Path::new("/usr/share/man/man1/racefree.1.gz").exists();
    let extracted = env.mkdir("extracted");
    if !on_disk {
        assert!(
            !excluded.is_empty(),
            "dpkg installed no man page and nothing excludes them"
        );
        note(&format!(
            "package: dpkg is told not to install man pages ({}); reading them from the .deb with man -l",
            excluded.join(", ")
        ));
        run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&extracted));
    }
    for page in &pages {
        let name = page.strip_suffix(".1").unwrap();
        let mut man = Command::new("man");
        man.env("MANWIDTH", "80")
            .env("LC_ALL", "C.UTF-8")
            .env("MANPAGER", "cat")
            .env_remove("MANPATH");
        if on_disk {
            let path = run(Command::new("man").args(["-w", name]));
            assert_eq!(
                stdout(&path),
                format!("/usr/share/man/man1/{page}.gz\n"),
                "man finds another {name}"
            );
            man.args(["--warnings", name]);
        } else {
            man.args(["--warnings", "-l"])
                .arg(extracted.join(format!("usr/share/man/man1/{page}.gz")));
        }
        let out = run(&mut man);
        let text = stdout(&out);
        assert!(
            text.starts_with(&format!("{name}(1)")),
            "{name}: no title line:\n{text}"
        );
        assert!(
            text.contains("\nNAME\n") && text.contains("\nEXIT STATUS\n"),
            "{text}"
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{name}: warnings");
    }

    // bash: the installed completion registers itself and completes subcommands.
    let bash_completion = "/usr/share/bash-completion/completions/racefree";
    let complete = run(Command::new("bash").args([
        "--norc",
        "-c",
        &format!("source {bash_completion}; complete -p racefree"),
    ]));
    let line = stdout(&complete);
    assert!(
        line.starts_with("complete ")
            && line.contains(" -F _racefree ")
            && line.ends_with(" racefree\n"),
        "{line}"
    );
    assert_eq!(bash_completes(bash_completion, "racefree ma"), ["makedirs"]);
    let top = bash_completes(bash_completion, "racefree ");
    for sub in ["makedirs", "ident", "stress"] {
        assert!(top.iter().any(|c| c == sub), "{sub} not offered: {top:?}");
    }
    assert_eq!(
        bash_completes(bash_completion, "racefree stress re"),
        ["report"]
    );
    // zsh and fish read the same generated files as the repository's.
    for (installed, committed) in [
        ("/usr/share/zsh/vendor-completions/_racefree", "_racefree"),
        (
            "/usr/share/fish/vendor_completions.d/racefree.fish",
            "racefree.fish",
        ),
    ] {
        assert_eq!(
            std::fs::read(installed).unwrap(),
            std::fs::read(root().join("completions").join(committed)).unwrap(),
            "{installed}"
        );
    }

    // The units: systemd-analyze verify needs no running systemd; it checks the
    // syntax, that ExecStart exists and is executable, and that the man pages named
    // in Documentation= exist (not when dpkg left the man pages out: said above).
    let units = [
        "/usr/lib/systemd/system/racefree-identd.socket",
        "/usr/lib/systemd/system/racefree-identd@.service",
        "/usr/lib/systemd/system/racefree-identd.service",
    ];
    let mut verify = Command::new("systemd-analyze");
    verify.arg("verify");
    if !on_disk {
        verify.arg("--man=no");
    }
    let verify = run(verify.args(units));
    assert_eq!(
        (
            String::from_utf8_lossy(&verify.stdout).into_owned(),
            String::from_utf8_lossy(&verify.stderr).into_owned()
        ),
        (String::new(), String::new()),
        "systemd-analyze verify"
    );
    // Installed, not enabled: nothing under /etc/systemd/system refers to them.
    let enabled = find_named(Path::new("/etc/systemd/system"), "racefree");
    assert!(enabled.is_empty(), "enabled by the package: {enabled:?}");
    // What the units run, within the capabilities they keep, names the users a
    // server run as nobody cannot.
    units_name_private_homes_and_root_within_their_capabilities();

    // Removal leaves nothing behind but the account, which Debian keeps.
    drop(installed);
    assert!(
        Precondition::NoRacefreePackage.probe().is_ok(),
        "still installed"
    );
    let left: Vec<_> = expected.iter().filter(|f| Path::new(f).exists()).collect();
    assert!(left.is_empty(), "left after purge: {left:?}");
    assert!(
        IdentdAccount::exists(),
        "{IDENTD_ACCOUNT} removed by the purge"
    );
    drop(account);
}

/// racefree's commands, each of which the package's description names.
const COMMANDS: [&str; 6] = ["makedirs", "ident", "stress", "lock", "counter", "write"];

/// The packaged binary carries no debug info, and the racefree-dbgsym .ddeb beside
/// the .deb in `dir` holds it, under the binary's build id: real DWARF, and the
/// symbol table.
fn assert_debug_info_split_off(deb: &Path, dir: &Path) {
    let scratch = TestEnv::new();
    let unpacked = scratch.mkdir("deb");
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&unpacked));
    let binary = Elf::read(&unpacked.join("usr/bin/racefree"));
    assert_eq!(
        binary.debug_sections(),
        Vec::<&str>::new(),
        "the packaged binary"
    );
    let build_id = binary.build_id();

    let ddebs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ddeb"))
        .collect();
    assert_eq!(ddebs.len(), 1, "{ddebs:?}");
    let symbols = scratch.mkdir("ddeb");
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&ddebs[0])
        .arg(&symbols));
    let debug_file = symbols.join(format!(
        "usr/lib/debug/.build-id/{}/{}.debug",
        &build_id[..2],
        &build_id[2..]
    ));
    let debug = Elf::read(&debug_file);
    assert_eq!(debug.build_id(), build_id);
    for section in [".debug_info", ".debug_line", ".symtab"] {
        let size = debug.size_of(section);
        assert!(size > 0, "{}: no {section}", debug_file.display());
    }
    note(&format!(
        "package: /usr/bin/racefree {} bytes; its debug info in racefree-dbgsym: .debug_info {} bytes",
        binary.len,
        debug.size_of(".debug_info")
    ));
}

/// The section table of an ELF64 little-endian file (what a stripped binary lacks,
/// and where its build id is).
struct Elf {
    data: Vec<u8>,
    len: usize,
    /// Name, file offset and size of each section.
    sections: Vec<(String, usize, usize)>,
}

impl Elf {
    fn read(path: &Path) -> Elf {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            data.starts_with(b"\x7fELF\x02\x01"),
            "{}: not a 64-bit little-endian ELF file",
            path.display()
        );
        let u16_at = |o: usize| u16::from_le_bytes(data[o..o + 2].try_into().unwrap()) as usize;
        let u32_at = |o: usize| u32::from_le_bytes(data[o..o + 4].try_into().unwrap()) as usize;
        let u64_at = |o: usize| u64::from_le_bytes(data[o..o + 8].try_into().unwrap()) as usize;
        // e_shoff, e_shentsize, e_shnum, e_shstrndx; in each header sh_name at 0,
        // sh_offset at 0x18, sh_size at 0x20.
        let (table, entry, count) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c));
        let header = |i: usize| table + i * entry;
        let names = u64_at(header(u16_at(0x3e)) + 0x18);
        let sections = (0..count)
            .map(|i| {
                let h = header(i);
                let name = &data[names + u32_at(h)..];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap()];
                let name = String::from_utf8_lossy(name).into_owned();
                (name, u64_at(h + 0x18), u64_at(h + 0x20))
            })
            .collect();
        Elf {
            len: data.len(),
            data,
            sections,
        }
    }

    fn size_of(&self, section: &str) -> usize {
        self.sections
            .iter()
            .find(|(name, ..)| name == section)
            .map_or(0, |&(_, _, size)| size)
    }

    /// The DWARF sections (`.debug_*`, and `.zdebug_*` as older tools compress them).
    fn debug_sections(&self) -> Vec<&str> {
        self.sections
            .iter()
            .map(|(name, ..)| name.as_str())
            .filter(|n| n.starts_with(".debug_") || n.starts_with(".zdebug_"))
            .collect()
    }

    /// The GNU build id, in hex: the note's descriptor (after namesz, descsz, type
    /// and the name "GNU\0").
    fn build_id(&self) -> String {
        let &(_, offset, size) = self
            .sections
            .iter()
            .find(|(name, ..)| name == ".note.gnu.build-id")
            .expect("no .note.gnu.build-id");
        let note = &self.data[offset..offset + size];
        assert_eq!(&note[12..16], b"GNU\0", "{note:?}");
        note[16..].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Installed packages that provide `ident-server`, as Debian's identds do.
fn ident_servers_installed() -> Vec<String> {
    let list = stdout(&run(Command::new("dpkg-query").args([
        "-W",
        "-f",
        "${Package}\t${Provides}\t${db:Status-Abbrev}\n",
    ])));
    list.lines()
        .filter_map(|l| {
            let [name, provides, status] = l.split('\t').collect::<Vec<_>>()[..] else {
                return None;
            };
            let provides_it = provides
                .split(',')
                .any(|p| p.split_whitespace().next() == Some("ident-server"));
            (provides_it && status.starts_with("ii")).then(|| name.to_string())
        })
        .collect()
}

/// An identd package that declares `Provides: ident-server` and `Conflicts:
/// ident-server`, as Debian's oidentd does: the one installed here if there is one,
/// else a stand-in with those fields and no files, installed until dropped, then
/// purged.
struct OtherIdentd {
    stand_in: bool,
}

impl OtherIdentd {
    const NAME: &str = "racefree-test-other-identd";

    fn install(dir: &Path) -> OtherIdentd {
        let installed = ident_servers_installed();
        if !installed.is_empty() {
            note(&format!(
                "package: installing beside this machine's {}",
                installed.join(", ")
            ));
            return OtherIdentd { stand_in: false };
        }
        let tree = dir.join("other-identd");
        std::fs::create_dir_all(tree.join("DEBIAN")).unwrap();
        std::fs::write(
            tree.join("DEBIAN/control"),
            format!(
                "Package: {}\nVersion: 1.0\nArchitecture: all\n\
                 Maintainer: racefree tests <racefree@localhost>\n\
                 Provides: ident-server\nConflicts: ident-server\nReplaces: ident-server\n\
                 Description: stand-in for an identd package that conflicts with the others\n",
                Self::NAME
            ),
        )
        .unwrap();
        let deb = dir.join("other-identd.deb");
        run(Command::new("dpkg-deb")
            .args(["--build", "--root-owner-group"])
            .arg(&tree)
            .arg(&deb));
        run(Command::new("dpkg").arg("-i").arg(&deb));
        OtherIdentd { stand_in: true }
    }
}

impl Drop for OtherIdentd {
    fn drop(&mut self) {
        if self.stand_in {
            let _ = Command::new("dpkg").args(["--purge", Self::NAME]).output();
        }
    }
}

/// The identd's account as the postinst makes it; returns its passwd line.
fn assert_identd_account() -> String {
    let entry = stdout(&run(Command::new("getent").args(["passwd", IDENTD_ACCOUNT])));
    let fields: Vec<&str> = entry.trim_end().split(':').collect();
    let uid: u32 = fields[2].parse().unwrap();
    assert!(uid < 1000, "not a system uid: {entry}");
    assert_eq!(
        fields[5..],
        ["/nonexistent", "/usr/sbin/nologin"],
        "{entry}"
    );
    let group = stdout(&run(Command::new("getent").args(["group", fields[3]])));
    assert!(
        group.starts_with(&format!("{IDENTD_ACCOUNT}:x:{}:", fields[3])),
        "its primary group is not its own: {group}"
    );
    entry
}

/// A shipped unit's settings: every `Key=value` line of `[Service]`, in order.
fn service_settings(unit: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(unit).unwrap();
    let service = text
        .split_once("\n[Service]\n")
        .unwrap_or_else(|| panic!("{unit}: no [Service]"))
        .1;
    service
        .lines()
        .take_while(|l| !l.starts_with('['))
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (key, value) = l.split_once('=').unwrap();
            (key.to_string(), value.to_string())
        })
        .collect()
}

/// The command line of a shipped unit, wrapped in setpriv so that it runs within
/// what the unit lets it keep, as systemd would run it: the capability bounding set
/// of `CapabilityBoundingSet=` (less `without`), and no_new_privs for
/// `NoNewPrivileges=yes`. (systemd itself is not running here: setpriv applies the
/// same two kernel settings before exec.)
fn within_unit_limits(unit: &str, without: &[&str]) -> Vec<String> {
    let settings = service_settings(unit);
    let value = |key: &str| -> Vec<&str> {
        settings
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let [bounding] = value("CapabilityBoundingSet")[..] else {
        panic!("{unit}: not one CapabilityBoundingSet=");
    };
    let mut caps = String::from("-all");
    for cap in bounding.split_whitespace() {
        if !without.contains(&cap) {
            caps += ",+";
            caps += &cap.strip_prefix("CAP_").unwrap().to_ascii_lowercase();
        }
    }
    assert_eq!(value("NoNewPrivileges"), ["yes"], "{unit}");
    let [exec] = value("ExecStart")[..] else {
        panic!("{unit}: not one ExecStart=");
    };
    let mut cmd: Vec<String> = ["setpriv", "--inh-caps=-all", "--no-new-privs"]
        .map(String::from)
        .into();
    cmd.push(format!("--bounding-set={caps}"));
    cmd.extend(exec.split_whitespace().map(String::from));
    cmd
}

/// Kills a process and its group (a server and the helpers it forked) on drop.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        // Only while the leader is unreaped: its pid, and so the group's id, cannot
        // have been reused by then.
        if let Ok(None) = self.0.try_wait() {
            let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
            let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = self.0.wait();
        }
    }
}

/// The installed units' commands, each run within the capabilities its unit keeps
/// (see [`within_unit_limits`]): racefree-identd@.service socket-activated per
/// connection as racefree-identd.socket does it, and the standalone
/// racefree-identd.service binding port 113 itself. Each names a user whose home is
/// 0700 and root. Controls: without CAP_DAC_READ_SEARCH the private home cannot be
/// checked (HIDDEN-USER), and without CAP_NET_BIND_SERVICE port 113 cannot be bound.
fn units_name_private_homes_and_root_within_their_capabilities() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;

    let user = PrivateHomeUser::create("un");
    let names = [(user.uid, user.name.as_str()), (0, "root")];
    let spawn = |cmd: &[String]| {
        Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap()
    };

    // Per connection: systemd-socket-activate accepts, and passes each connection
    // as fd 3 with LISTEN_FDS and LISTEN_PID, as the socket unit does.
    let ip: std::net::IpAddr = "127.0.0.24".parse().unwrap();
    let port = std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd: Vec<String> = vec![
        "systemd-socket-activate".into(),
        "--accept".into(),
        format!("--listen={ip}:{port}"),
    ];
    cmd.extend(within_unit_limits(
        "/usr/lib/systemd/system/racefree-identd@.service",
        &[],
    ));
    let activator = Stopped(spawn(&cmd));
    let begin = Instant::now();
    while std::net::TcpStream::connect((ip, port)).is_err() {
        assert!(
            begin.elapsed() < crate::testenv::DEADLINE,
            "systemd-socket-activate never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for (uid, name) in names {
        let conn = OwnedConnection::new(uid, ip);
        assert_eq!(
            conn.ask_identd(port),
            format!("USERID : UNIX : {name}"),
            "racefree-identd@.service"
        );
    }
    drop(activator);

    // Standalone, on port 113 of an address of its own.
    let standalone = "/usr/lib/systemd/system/racefree-identd.service";
    let ip: std::net::IpAddr = "127.0.0.23".parse().unwrap();
    let serve = |without: &[&str]| {
        let mut cmd = within_unit_limits(standalone, without);
        let listen = cmd.iter().position(|a| a == "[::]:113").unwrap();
        cmd[listen] = format!("{ip}:113");
        cmd.extend(["--log".into(), "none".into()]);
        let mut child = spawn(&cmd);
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        (Stopped(child), line)
    };
    let (server, line) = serve(&[]);
    assert_eq!(line, format!("listening on {ip}:113\n"), "{standalone}");
    for (uid, name) in names {
        let conn = OwnedConnection::new(uid, ip);
        assert_eq!(
            conn.ask_identd(113),
            format!("USERID : UNIX : {name}"),
            "{standalone}"
        );
    }
    drop(server);

    let (server, _) = serve(&["CAP_DAC_READ_SEARCH"]);
    let conn = OwnedConnection::new(user.uid, ip);
    assert_eq!(conn.ask_identd(113), "ERROR : HIDDEN-USER", "the control");
    drop(server);

    let (mut server, line) = serve(&["CAP_NET_BIND_SERVICE"]);
    assert_eq!(line, "", "bound port 113 without CAP_NET_BIND_SERVICE");
    let status = server.0.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(server.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("113") && stderr.contains("ermission"),
        "{stderr}"
    );
}

/// Entries below `dir` whose names contain `part`.
fn find_named(dir: &Path, part: &str) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return hits;
    };
    for e in entries.flatten() {
        let path = e.path();
        if e.file_name().to_string_lossy().contains(part) {
            hits.push(path.clone());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            hits.extend(find_named(&path, part));
        }
    }
    hits
}

#[test]
#[cfg_attr(not(has_man), ignore = "needs man (Debian package man-db)")]
fn cargo_install_works_and_man_finds_the_pages_installed_beside_it_by_hand() {
    require(&[Precondition::Man]);
    let cargo = cargo();
    // A scratch root stands in for ~/.cargo.
    let prefix = TestEnv::new();
    let begin = Instant::now();
    run(Command::new(&cargo)
        .current_dir(root())
        .args(["install", "--locked", "--offline", "--path", "."])
        .arg("--root")
        .arg(prefix.root()));
    note(&format!(
        "package: cargo install took {:.1} s",
        begin.elapsed().as_secs_f64()
    ));
    let bin = prefix.root().join("bin");
    let version = run(Command::new(bin.join("racefree")).arg("--version"));
    assert_eq!(
        stdout(&version),
        format!("racefree {}\n", env!("CARGO_PKG_VERSION"))
    );
    // The release profile leaves the debug info out (the profiling profile keeps it).
    let installed = Elf::read(&bin.join("racefree"));
    assert_eq!(installed.debug_sections(), Vec::<&str>::new());
    note(&format!("package: cargo install: {} bytes", installed.len));

    // README's step for the man pages, and man finding them from PATH alone.
    let man1 = prefix.root().join("share/man/man1");
    let mut install = Command::new("install");
    install.arg("-Dm644").arg("-t").arg(&man1);
    for page in man_pages() {
        install.arg(root().join("man").join(page));
    }
    run(&mut install);
    let path_var = format!("{}:/usr/bin:/bin", bin.display());
    for name in ["racefree", "racefree-makedirs", "racefree-stress-report"] {
        let found = run(Command::new("man")
            .args(["-w", name])
            .env("PATH", &path_var)
            .env_remove("MANPATH"));
        assert_eq!(
            stdout(&found),
            format!("{}/{name}.1\n", man1.display()),
            "man -w {name}"
        );
    }
}

/// The .deb's copyright file (contrib/debian/copyright, in Debian's machine-readable
/// format) names the holders LICENSE-MIT names, under Cargo.toml's license, with
/// LICENSE-MIT's text and where Debian keeps the Apache-2.0 text.
#[test]
fn the_debian_copyright_file_names_the_holders_and_both_licenses() {
    let read = |name: &str| std::fs::read_to_string(root().join(name)).unwrap();
    let copyright = read("contrib/debian/copyright");
    assert_eq!(env!("CARGO_PKG_LICENSE"), "MIT OR Apache-2.0");
    let mit = read("LICENSE-MIT");
    let (notice, text) = mit.split_once("\n\n").unwrap();
    let holders = notice.strip_prefix("Copyright (c) ").unwrap();
    let files = format!("\nFiles: *\nCopyright: {holders}\nLicense: Expat or Apache-2.0\n");
    assert!(copyright.contains(&files), "no {files:?} in:\n{copyright}");
    // Debian's folding: each line indented by one space, an empty one written " .".
    let folded: String = text
        .trim_end()
        .lines()
        .map(|l| {
            if l.is_empty() {
                " .\n".to_string()
            } else {
                format!(" {l}\n")
            }
        })
        .collect();
    assert!(
        copyright.contains(&format!("\nLicense: Expat\n{folded}\n")),
        "LICENSE-MIT's text is not the Expat paragraph of:\n{copyright}"
    );
    assert!(
        read("LICENSE-APACHE").contains("Apache License\n                        Version 2.0,")
    );
    assert!(
        copyright.contains("\nLicense: Apache-2.0\n")
            && copyright.contains("/usr/share/common-licenses/Apache-2.0"),
        "{copyright}"
    );
}
