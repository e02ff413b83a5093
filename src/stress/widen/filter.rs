//! The racer's side of widening: the seccomp filter that reports its changes to a
//! listener, built before the fork, installed between fork and exec, and the
//! listener sent to the round over a socket.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// The calls held back, and how each is told apart: always, or only when the
/// flags argument at the given index asks for writing or creating.
#[cfg(target_arch = "x86_64")]
mod calls {
    pub const AUDIT_ARCH: u32 = 0xC000_003E;
    pub const ALWAYS: &[i64] = &[
        libc::SYS_mkdir,
        libc::SYS_mkdirat,
        libc::SYS_rmdir,
        libc::SYS_rename,
        libc::SYS_renameat,
        libc::SYS_renameat2,
        libc::SYS_link,
        libc::SYS_linkat,
        libc::SYS_symlink,
        libc::SYS_symlinkat,
        libc::SYS_unlink,
        libc::SYS_unlinkat,
        libc::SYS_creat,
        libc::SYS_mknod,
        libc::SYS_mknodat,
        libc::SYS_openat2,
    ];
    pub const WRITING: &[(i64, u32)] = &[(libc::SYS_open, 1), (libc::SYS_openat, 2)];
}

#[cfg(target_arch = "aarch64")]
mod calls {
    pub const AUDIT_ARCH: u32 = 0xC000_00B7;
    pub const ALWAYS: &[i64] = &[
        libc::SYS_mkdirat,
        libc::SYS_renameat,
        libc::SYS_renameat2,
        libc::SYS_linkat,
        libc::SYS_symlinkat,
        libc::SYS_unlinkat,
        libc::SYS_mknodat,
        libc::SYS_openat2,
    ];
    pub const WRITING: &[(i64, u32)] = &[(libc::SYS_openat, 2)];
}

/// An open's flags that make it a change: writing, truncating or creating.
const WRITING_FLAGS: u32 = (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC) as u32;

/// The filter every racer installs, built before any fork (the child only points
/// the kernel at it).
#[derive(Clone, Debug)]
pub struct Filter(Vec<libc::sock_filter>);

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: usize, jf: usize) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: jt as u8,
        jf: jf as u8,
        k,
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
impl Filter {
    /// The classic BPF program: another architecture's calls (a 32-bit binary) run
    /// as they are; the calls of [`calls`] are reported; the rest run.
    pub fn new() -> Filter {
        use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_RET, BPF_W};
        let (always, writing) = (calls::ALWAYS.len(), calls::WRITING.len());
        // Layout: arch check (2), load nr (1), a jump per call, allow (1), then two
        // instructions per flags check, allow, notify. Jumps only go forward.
        let checks = 3 + always + writing + 1;
        let allow = checks + 2 * writing;
        let notify = allow + 1;
        let mut p = vec![
            stmt(BPF_LD | BPF_W | BPF_ABS, 4),
            jump(BPF_JMP | BPF_JEQ | BPF_K, calls::AUDIT_ARCH, 0, allow - 2),
            stmt(BPF_LD | BPF_W | BPF_ABS, 0),
        ];
        for &nr in calls::ALWAYS {
            let here = p.len() + 1;
            p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, nr as u32, notify - here, 0));
        }
        for (i, &(nr, _)) in calls::WRITING.iter().enumerate() {
            let here = p.len() + 1;
            p.push(jump(
                BPF_JMP | BPF_JEQ | BPF_K,
                nr as u32,
                checks + 2 * i - here,
                0,
            ));
        }
        p.push(stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW));
        for &(_, arg) in calls::WRITING {
            // The low half of argument `arg` (seccomp_data's args start at 16).
            p.push(stmt(BPF_LD | BPF_W | BPF_ABS, 16 + 8 * arg));
            let here = p.len() + 1;
            p.push(jump(
                BPF_JMP | BPF_JSET | BPF_K,
                WRITING_FLAGS,
                notify - here,
                allow - here,
            ));
        }
        p.push(stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW));
        p.push(stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_USER_NOTIF));
        debug_assert_eq!(p.len(), notify + 1);
        Filter(p)
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
impl Filter {
    pub fn new() -> Filter {
        Filter(Vec::new())
    }
}

impl Filter {
    /// In the child, between fork and exec: installs the filter and sends its
    /// listener over `sock`. Only async-signal-safe calls, no allocation.
    pub fn install(&self, sock: RawFd) -> io::Result<()> {
        let listener = self.listen()?;
        let sent = send_fd(sock, listener);
        // SAFETY: closes the child's own copy; the parent holds the one it received.
        unsafe { libc::close(listener) };
        sent
    }

    /// Installs the filter on the calling thread with a new listener, with
    /// no_new_privs only where the thread may not install it without (not root).
    fn listen(&self) -> io::Result<RawFd> {
        if self.0.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::ENOSYS));
        }
        let prog = libc::sock_fprog {
            len: self.0.len() as u16,
            filter: self.0.as_ptr().cast_mut(),
        };
        let seccomp = || {
            // SAFETY: seccomp(2) reads the program `prog` points at, which lives
            // for the call.
            unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                    &raw const prog,
                )
            }
        };
        let mut fd = seccomp();
        if fd < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EACCES) {
            // SAFETY: prctl with integer arguments.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return Err(io::Error::last_os_error());
            }
            fd = seccomp();
        }
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(fd as RawFd)
    }

    /// Whether this host lets a racer install the filter: tried on a thread of its
    /// own, which ends at once (a filter binds only the thread that installs it).
    pub fn available(&self) -> Result<(), String> {
        let filter = self.clone();
        let tried = std::thread::spawn(move || {
            filter.listen().map(|fd| {
                // SAFETY: the listener this thread just made, closed once.
                drop(unsafe { OwnedFd::from_raw_fd(fd) })
            })
        })
        .join()
        .map_err(|_| "the probe panicked".to_string())?;
        tried.map_err(|e| match e.raw_os_error() {
            Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
            None => e.to_string(),
        })
    }
}

impl Default for Filter {
    fn default() -> Self {
        Filter::new()
    }
}

/// Sends `fd` over the socket `sock`, in one message of one byte.
fn send_fd(sock: RawFd, fd: RawFd) -> io::Result<()> {
    #[repr(C)]
    union Control {
        buf: [u8; 64],
        _align: libc::cmsghdr,
    }
    let mut byte = 0u8;
    let mut iov = libc::iovec {
        iov_base: (&raw mut byte).cast(),
        iov_len: 1,
    };
    let mut control = Control { buf: [0; 64] };
    // SAFETY: CMSG_SPACE is arithmetic; the header and the descriptor are written
    // inside `control`, which is large and aligned enough for one descriptor.
    unsafe {
        let space = libc::CMSG_SPACE(size_of::<RawFd>() as u32) as usize;
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = (&raw mut control.buf).cast();
        msg.msg_controllen = space;
        let cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        if libc::sendmsg(sock, &raw const msg, libc::MSG_NOSIGNAL) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
