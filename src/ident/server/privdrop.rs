//! Dropping root for good: supplementary groups, gid, uid, then a check that the
//! drop holds, capabilities included.

use anyhow::{Context, bail};
use nix::unistd::{Gid, Uid, User};

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
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1) only sets a flag of this process.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(context);
    }
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
/// of this process, as `/proc` prints it.
fn capabilities_left() -> anyhow::Result<Option<String>> {
    for task in std::fs::read_dir("/proc/self/task").context("listing /proc/self/task")? {
        let path = task?.path().join("status");
        let status = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for line in status.lines() {
            if let Some((name, value)) = line.split_once(":\t")
                && matches!(name, "CapPrm" | "CapEff" | "CapAmb")
                && value.trim().bytes().any(|b| b != b'0')
            {
                return Ok(Some(format!("{} {line}", path.display())));
            }
        }
    }
    Ok(None)
}
