//! Which reported calls are part of the race: those that change something below
//! the round's directory, read from the racer's own arguments.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::unistd::Pid;

/// Which arguments of a reported call name the paths it changes: the directory
/// argument (none: the working directory) and the path argument of each.
fn path_args(nr: i64) -> &'static [(Option<usize>, usize)] {
    #[cfg(target_arch = "x86_64")]
    match nr {
        libc::SYS_mkdir
        | libc::SYS_rmdir
        | libc::SYS_unlink
        | libc::SYS_creat
        | libc::SYS_mknod
        | libc::SYS_open => return &[(None, 0)],
        libc::SYS_rename | libc::SYS_link => return &[(None, 0), (None, 1)],
        libc::SYS_symlink => return &[(None, 1)],
        _ => {}
    }
    match nr {
        libc::SYS_mkdirat
        | libc::SYS_unlinkat
        | libc::SYS_mknodat
        | libc::SYS_openat
        | libc::SYS_openat2 => &[(Some(0), 1)],
        libc::SYS_renameat | libc::SYS_renameat2 | libc::SYS_linkat => {
            &[(Some(0), 1), (Some(2), 3)]
        }
        libc::SYS_symlinkat => &[(Some(1), 2)],
        _ => &[],
    }
}

/// Whether a reported call changes something below one of `scope`'s directories
/// (the round's, as given and resolved): an open of /dev/null or a log elsewhere
/// is no part of the race, and is let go at once. A path that cannot be read
/// counts as below.
pub(super) fn in_scope(notif: &libc::seccomp_notif, scope: &[PathBuf]) -> bool {
    let pid = notif.pid as i32;
    let args = path_args(i64::from(notif.data.nr));
    if args.is_empty() || scope.is_empty() {
        return true;
    }
    args.iter().any(|&(dir, path)| {
        let Some(bytes) = read_path(pid, notif.data.args[path]) else {
            return true;
        };
        let p = Path::new(OsStr::from_bytes(&bytes));
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            let base = match dir.map(|d| notif.data.args[d] as i32) {
                None | Some(libc::AT_FDCWD) => format!("/proc/{pid}/cwd"),
                Some(fd) => format!("/proc/{pid}/fd/{fd}"),
            };
            match std::fs::read_link(base) {
                Ok(b) => b.join(p),
                Err(_) => return true,
            }
        };
        scope.iter().any(|s| full.starts_with(s))
    })
}

/// A NUL-terminated path in another process's memory, read a page at most at a
/// time (a string that ends just before an unmapped page must still be read).
fn read_path(pid: i32, addr: u64) -> Option<Vec<u8>> {
    const PAGE: u64 = 4096;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    let mut got = 0usize;
    while got < buf.len() {
        let at = addr.checked_add(got as u64)?;
        let chunk = ((PAGE - at % PAGE) as usize).min(buf.len() - got);
        let n = process_vm_readv(
            Pid::from_raw(pid),
            &mut [io::IoSliceMut::new(&mut buf[got..got + chunk])],
            &[RemoteIoVec {
                base: at as usize,
                len: chunk,
            }],
        )
        .ok()?;
        if n == 0 {
            return None;
        }
        if let Some(end) = buf[got..got + n].iter().position(|&b| b == 0) {
            buf.truncate(got + end);
            return Some(buf);
        }
        got += n;
    }
    None
}
