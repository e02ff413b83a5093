//! Dropping root for good: supplementary groups, gid, uid, then a check that the
//! drop holds, capabilities included.

use anyhow::{Context, bail};
use nix::unistd::{Gid, Uid, User};
use procfs::process::Process;

/// The password entry of `--user`'s NAME; an unknown name is a usage error.
pub fn target(name: &str) -> anyhow::Result<User> {
    User::from_name(name)
        .with_context(|| format!("looking up user {name}"))?
        .ok_or_else(|| crate::exit::usage(format!("--user: no user named {name}")))
}

/// Drops to `user` (supplementary groups, gid, uid, in that order; glibc applies
/// each to every thread) and checks that the drop holds: real, effective and saved
/// ids all changed, no capability is left in any thread, and root cannot be
/// regained. No-new-privileges is set too, so no exec could gain any back.
pub fn drop_privileges(user: &User) -> anyhow::Result<()> {
    let context = || {
        format!(
            "dropping privileges to {} (uid {}, gid {})",
            user.name, user.uid, user.gid
        )
    };
    nix::unistd::setgroups(&[user.gid]).with_context(context)?;
    nix::unistd::setgid(user.gid).with_context(context)?;
    nix::unistd::setuid(user.uid).with_context(context)?;
    nix::sys::prctl::set_no_new_privs().with_context(context)?;
    verify_dropped(user.uid, user.gid).with_context(context)
}

fn verify_dropped(uid: Uid, gid: Gid) -> anyhow::Result<()> {
    let r = nix::unistd::getresuid()?;
    let g = nix::unistd::getresgid()?;
    if [r.real, r.effective, r.saved] != [uid; 3] || [g.real, g.effective, g.saved] != [gid; 3] {
        bail!("the ids did not all change");
    }
    if nix::unistd::getgroups()?.iter().any(|&x| x != gid) {
        bail!("supplementary groups remain");
    }
    if !uid.is_root() {
        if let Some(left) = capabilities_left()? {
            bail!("capabilities remain: {left}");
        }
        if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
            bail!("root could be regained");
        }
    }
    Ok(())
}

/// The first nonzero permitted, effective or ambient capability set of any thread
/// of this process, named with its thread and printed as `/proc` prints it.
fn capabilities_left() -> anyhow::Result<Option<String>> {
    let tasks = Process::myself()
        .and_then(|me| me.tasks())
        .context("listing /proc/self/task")?;
    for task in tasks {
        let task = task.context("reading /proc/self/task")?;
        let status = task
            .status()
            .with_context(|| format!("reading /proc/self/task/{}/status", task.tid))?;
        let sets = [
            ("CapPrm", status.capprm),
            ("CapEff", status.capeff),
            ("CapAmb", status.capamb.unwrap_or(0)),
        ];
        if let Some((name, set)) = sets.into_iter().find(|&(_, set)| set != 0) {
            return Ok(Some(format!("thread {} {name}:\t{set:016x}", task.tid)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Held against an independent reading of this process's own status: any
    /// capability there is one the check must see.
    #[test]
    fn a_capability_this_process_holds_is_found() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let holds_some = status.lines().any(|line| {
            line.split_once(":\t").is_some_and(|(name, value)| {
                matches!(name, "CapPrm" | "CapEff" | "CapAmb")
                    && value.trim().bytes().any(|b| b != b'0')
            })
        });
        let found = capabilities_left().unwrap();
        assert_eq!(found.is_some(), holds_some, "{found:?}\n{status}");
        if let Some(line) = found {
            assert!(line.starts_with("thread "), "{line}");
        }
    }
}
