//! Dropping root for good: supplementary groups, gid, uid, then a check that the
//! drop holds.

use anyhow::{Context, bail};
use nix::unistd::{Gid, Uid, User};

/// Drops to `name` (supplementary groups, gid, uid, in that order) and checks that
/// the drop holds: real, effective and saved ids all changed, and root cannot be
/// regained.
pub fn drop_privileges(name: &str) -> anyhow::Result<()> {
    let user = User::from_name(name)
        .with_context(|| format!("looking up user {name}"))?
        .ok_or_else(|| crate::exit::usage(format!("--user: no user named {name}")))?;
    let context = || {
        format!(
            "dropping privileges to {name} (uid {}, gid {})",
            user.uid, user.gid
        )
    };
    nix::unistd::setgroups(&[user.gid]).with_context(context)?;
    nix::unistd::setgid(user.gid).with_context(context)?;
    nix::unistd::setuid(user.uid).with_context(context)?;
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
    if !uid.is_root() && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        bail!("root could be regained");
    }
    Ok(())
}
