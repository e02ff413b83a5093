//! The stage a round of program racers runs on: its directory set from a template
//! and a setup command, the check of what the racers left there (both through
//! `sh -c`), and the sequential run, the same programs one after another, which
//! says whether the command and the check hold at all when nothing races.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Failed, Program, run, shell};
use crate::stress::snapshot;

/// Lines a failed program's output shows.
pub const LINES_SHOWN: usize = 3;

/// A round's stage, as the arm's options give it.
#[derive(Clone, Debug, Default)]
pub struct Stage {
    pub template: Option<PathBuf>,
    pub setup: Option<String>,
    pub check: Option<String>,
    /// How long each program, the setup and the check may run.
    pub timeout: Duration,
    /// The status each program must exit with.
    pub expect: i32,
}

/// What failed on the stage: a program of the sequential run, or what the setup or
/// the check said.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    Racer(Failed),
    Said(String),
}

impl Stage {
    /// Copies the template into `dir`, then runs the setup there, with `env` (the
    /// round's variables): what failed, if anything did.
    pub fn set(&self, dir: &Path, env: &[(String, String)]) -> anyhow::Result<Option<String>> {
        if let Some(t) = &self.template {
            snapshot::copy_tree(t, dir)?;
        }
        self.shell("--setup", self.setup.as_deref(), dir, env)
    }

    /// Runs the check in `dir`, with `env`: what failed, if it did.
    pub fn check(&self, dir: &Path, env: &[(String, String)]) -> anyhow::Result<Option<String>> {
        self.shell("--check", self.check.as_deref(), dir, env)
    }

    /// The sequential run, in the fresh directory `dir`: the stage set, each of
    /// `programs` run to its end in turn (the first that does not exit as expected
    /// ends it), then checked with `env`.
    pub fn sequential(
        &self,
        dir: &Path,
        programs: &[Program],
        env: &[(String, String)],
    ) -> anyhow::Result<Option<Fault>> {
        if let Some(said) = self.set(dir, env)? {
            return Ok(Some(Fault::Said(said)));
        }
        for (racer, p) in programs.iter().enumerate() {
            let e = run(p, self.timeout)?;
            if !e.exited_with(self.expect) {
                let f = e.failed(racer as u32, self.timeout, LINES_SHOWN);
                return Ok(Some(Fault::Racer(f)));
            }
        }
        Ok(self.check(dir, env)?.map(Fault::Said))
    }

    fn shell(
        &self,
        what: &str,
        cmd: Option<&str>,
        dir: &Path,
        env: &[(String, String)],
    ) -> anyhow::Result<Option<String>> {
        let Some(cmd) = cmd else {
            return Ok(None);
        };
        let template = Program {
            argv: Vec::new(),
            dir: dir.to_path_buf(),
            env: env.to_vec(),
        };
        shell(what, cmd, template, self.timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, dir: &Path) -> Program {
        Program {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            dir: dir.to_path_buf(),
            env: Vec::new(),
        }
    }

    #[test]
    fn the_sequential_run_names_what_failed_first() {
        let t = tempfile::tempdir().unwrap();
        let template = tempfile::tempdir().unwrap();
        std::fs::write(template.path().join("seed"), "1\n").unwrap();
        let stage = Stage {
            template: Some(template.path().to_path_buf()),
            setup: Some("test -f seed && echo 0 > n".into()),
            check: Some("test \"$(cat n)\" = \"$N\"".into()),
            timeout: Duration::from_secs(30),
            expect: 0,
        };
        let env = [("N".to_string(), "2".to_string())];
        let add = sh("n=$(cat n); echo $((n+1)) > n", t.path());
        assert_eq!(
            stage
                .sequential(t.path(), &[add.clone(), add.clone()], &env)
                .unwrap(),
            None
        );
        let d = t.path().join("again");
        std::fs::create_dir(&d).unwrap();
        let add = Program {
            dir: d.clone(),
            ..add
        };
        let three = [add.clone(), add.clone(), add.clone()];
        assert_eq!(
            stage.sequential(&d, &three, &env).unwrap(),
            Some(Fault::Said("--check exited 1".into()))
        );
        let d = t.path().join("third");
        std::fs::create_dir(&d).unwrap();
        let fails = sh("echo no >&2; exit 3", &d);
        match stage.sequential(&d, &[add, fails], &env).unwrap() {
            Some(Fault::Racer(f)) => assert_eq!(f.line(), "racer 1 exited 3: no"),
            other => panic!("{other:?}"),
        }
        let bad = Stage {
            setup: Some("echo broken >&2; false".into()),
            ..stage
        };
        assert_eq!(
            bad.set(t.path(), &env).unwrap(),
            Some("--setup exited 1: broken".into())
        );
    }
}
