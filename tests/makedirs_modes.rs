//! `makedirs -m`: every mode GNU `mkdir -m` accepts gives the same st_mode, and every
//! mode it refuses is refused. GNU mkdir (coreutils) runs in the same test as the
//! oracle, on generated modes covering chmod(1)'s whole symbolic grammar.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::testenv::{Expected, TestEnv, racefree_path, set_umask};

/// A small deterministic generator (xorshift), so a failure names a reproducible case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, from: &'a [&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// One clause of the symbolic grammar: `[ugoa]*([-+=]([rwxXst]*|[ugo]|[0-7]+))+`.
fn clause(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.below(3) {
        s.push_str(rng.pick(&["u", "g", "o", "a"]));
    }
    for _ in 0..1 + rng.below(2) {
        s.push_str(rng.pick(&["+", "-", "="]));
        match rng.below(20) {
            0..=2 => s.push_str(rng.pick(&["u", "g", "o"])),
            3 => s.push_str(rng.pick(&["0", "7", "755", "1777", "2750", "07777"])),
            _ => {
                for _ in 0..rng.below(4) {
                    s.push_str(rng.pick(&["r", "w", "x", "X", "s", "t"]));
                }
            }
        }
    }
    s
}

fn generated_modes(n: usize) -> Vec<String> {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut modes: Vec<String> = [
        "=rx",
        "=",
        "=w",
        "=s",
        "o=t",
        "+t",
        "g-s",
        "-w",
        "00755",
        "755",
        "0700",
        "1777",
        "2755",
        "4755",
        "7777",
        "07777",
        "17777",
        "77777",
        "8",
        "u=rwx,g=rx,o=",
        "a+X",
        "go-w",
        "g=u",
        "u=g+w",
        "=755",
        "u=755",
        "+0755",
        "-7",
        "a=u+t",
        "ug+s",
        "o+s",
        "u+t",
        "=X",
        "-X",
        "u+x,",
        ",u+x",
        ",,",
        "u+-x",
        "=+",
        "",
        "u",
        "rwx",
        "0o7",
        "+",
        "a=",
        "a-rwxst",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    while modes.len() < n {
        let mut m = match rng.below(8) {
            0 => (0..1 + rng.below(5))
                .map(|_| rng.pick(&["0", "1", "2", "4", "5", "7", "8"]))
                .collect(),
            _ => (0..1 + rng.below(3))
                .map(|_| clause(&mut rng))
                .collect::<Vec<_>>()
                .join(","),
        };
        // Now and then a typo, so refusals are compared too.
        if rng.below(10) == 0 {
            let at = rng.below(m.len() + 1);
            m.insert_str(at, rng.pick(&[" ", ",", ";", "q", "U", "8", "-", "="]));
        }
        if !modes.contains(&m) {
            modes.push(m);
        }
    }
    modes
}

/// Runs `program args...` under `umask` in `dir`. Returns exit status, stderr.
fn run_with_umask(program: &Path, args: &[&str], dir: &Path, umask: u32) -> (i32, String) {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir).env("LC_ALL", "C");
    let out = set_umask(&mut cmd, umask).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn mode_of(p: &Path) -> Option<u32> {
    fs::symlink_metadata(p)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

#[test]
fn every_mode_matches_gnu_mkdir_under_several_umasks() {
    let modes = generated_modes(320);
    let env = TestEnv::new();
    let t = env.root();
    // Neither tree may hand a setgid bit down to the directories under test.
    env.chmod(".", 0o755);
    let mkdir = Path::new("mkdir");
    let racefree = racefree_path();
    let mut mismatches = Vec::new();
    let (mut accepted, mut refused) = (0, 0);
    for umask in [0o000, 0o022, 0o027, 0o077, 0o277] {
        for (i, mode) in modes.iter().enumerate() {
            let name = format!("u{umask:03o}-{i}");
            let (gnu_status, _) = run_with_umask(mkdir, &["-m", mode, "--", &name], t, umask);
            let ours_dir = t.join("ours");
            fs::create_dir_all(&ours_dir).unwrap();
            let (our_status, our_err) = run_with_umask(
                &racefree,
                &["makedirs", "-m", mode, "--", &name],
                &ours_dir,
                umask,
            );
            let gnu = (gnu_status == 0).then(|| mode_of(&t.join(&name))).flatten();
            let ours = (our_status == 0)
                .then(|| mode_of(&ours_dir.join(&name)))
                .flatten();
            if gnu_status == 0 {
                accepted += 1;
            } else {
                refused += 1;
                // A refusal is a usage error, said in one line, creating nothing.
                if our_status != 0
                    && (our_status != 2
                        || !our_err.starts_with("racefree: error: invalid mode ")
                        || our_err.lines().count() != 1
                        || ours_dir.join(&name).exists())
                {
                    mismatches.push(format!("-m {mode:?}: refused as {our_status}: {our_err:?}"));
                }
            }
            if gnu != ours || (gnu_status == 0) != (our_status == 0) {
                mismatches.push(format!(
                    "-m {mode:?} under umask {umask:03o}: GNU {} , racefree {} {}",
                    gnu.map_or("refused".into(), |m| format!("{m:04o}")),
                    ours.map_or("refused".into(), |m| format!("{m:04o}")),
                    our_err.trim_end()
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ from GNU mkdir:\n{}",
        mismatches.len(),
        modes.len() * 5,
        mismatches.join("\n")
    );
    // The generator must exercise both sides of the decision.
    assert!(
        accepted > 800 && refused > 100,
        "accepted {accepted}, refused {refused}"
    );
}

#[test]
fn minus_w_is_a_mode_not_an_option() {
    let env = TestEnv::new();
    env.assert_run_under_umask(0o022, ["makedirs", "-m", "-w", "d"], &Expected::QUIET);
    env.assert_dir_mode("d", 0o577);
}
