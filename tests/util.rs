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

/// A command running the built binary as `nobody` when we are root, so permission
/// checks apply (root bypasses them); as anyone else, as ourselves. The binary is
/// copied into `dir` (made searchable by all), because the build tree may sit below
/// a directory nobody cannot enter, such as a 0700 mktemp clone in CI.
pub fn racefree_as_nobody(dir: &std::path::Path) -> std::process::Command {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let exe = dir.join("racefree-bin");
    if !exe.exists() {
        // Copied by cp, not std::fs::copy: the copy's write descriptor must never be
        // open in this multi-threaded process, or a child another test thread forks
        // at that instant inherits it, and exec of the copy fails with ETXTBSY
        // until that child has exec'd.
        let status = std::process::Command::new("cp")
            .arg(racefree_path())
            .arg(&exe)
            .status()
            .unwrap();
        assert!(status.success(), "cp of the binary failed");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut cmd = std::process::Command::new(&exe);
    cmd.current_dir(dir);
    if is_root() {
        // SAFETY: setgroups/setgid/setuid are async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(NOBODY) != 0
                    || libc::setuid(NOBODY) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd
}

/// nobody's uid and gid on Debian.
pub const NOBODY: u32 = 65534;

pub fn is_root() -> bool {
    // SAFETY: geteuid never fails.
    unsafe { libc::geteuid() == 0 }
}
