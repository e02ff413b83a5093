//! Sandboxes that refuse one kind of socket, as container runtimes' and systemd's
//! seccomp filters do: a child whose `socket(DOMAIN, _, PROTOCOL)` fails with a
//! chosen errno, everything else allowed. Used for netlink sock_diag blocked, and
//! for a host without IPv6. The filter is the kernel's own (seccomp BPF, installed
//! between fork and exec), so the binary under test meets the refusal exactly where
//! a sandbox would put it.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// seccomp_data's `arch` for this build's architecture (linux/audit.h).
const AUDIT_ARCH: u32 = if cfg!(target_arch = "x86_64") {
    0xc000_003e
} else if cfg!(target_arch = "aarch64") {
    0xc000_00b7
} else {
    panic!("seccomp fixture: add this architecture's AUDIT_ARCH")
};

/// NETLINK_SOCK_DIAG (linux/netlink.h).
const NETLINK_SOCK_DIAG: u32 = 4;

/// Offsets in `struct seccomp_data`: nr, arch, then args[] (u64 each, the low word
/// first on these little-endian machines).
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0: u32 = 16;
const ARG2: u32 = 16 + 2 * 8;

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

/// `if A == k` falls through, else jumps to the instruction `to`; `at` is this one's.
fn unless_eq(k: u32, at: usize, to: usize) -> libc::sock_filter {
    libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt: 0,
        jf: (to - at - 1) as u8,
        k,
    }
}

/// The filter: socket(domain, any, protocol or any) returns `errno`.
fn program(domain: i32, protocol: Option<u32>, errno: i32) -> Vec<libc::sock_filter> {
    let load = |offset| stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset);
    let ret = |k| stmt(libc::BPF_RET | libc::BPF_K, k);
    // (what to load, what it must equal); then refuse; then allow.
    let mut checks = vec![
        (ARCH, AUDIT_ARCH),
        (NR, libc::SYS_socket as u32),
        (ARG0, domain as u32),
    ];
    checks.extend(protocol.map(|p| (ARG2, p)));
    let allow = 2 * checks.len() + 1;
    let mut prog = Vec::new();
    for (offset, k) in checks {
        prog.push(load(offset));
        prog.push(unless_eq(k, prog.len(), allow));
    }
    prog.push(ret(
        libc::SECCOMP_RET_ERRNO | (errno as u32 & libc::SECCOMP_RET_DATA)
    ));
    prog.push(ret(libc::SECCOMP_RET_ALLOW));
    prog
}

/// Runs `cmd` where opening a NETLINK_SOCK_DIAG socket fails with `errno`.
pub fn deny_sock_diag(cmd: &mut Command, errno: i32) -> &mut Command {
    deny_socket(cmd, libc::AF_NETLINK, Some(NETLINK_SOCK_DIAG), errno)
}

/// Runs `cmd` on what looks like a host without IPv6: an AF_INET6 socket fails
/// with EAFNOSUPPORT, as on a kernel booted with ipv6.disable=1.
pub fn deny_ipv6(cmd: &mut Command) -> &mut Command {
    deny_socket(cmd, libc::AF_INET6, None, libc::EAFNOSUPPORT)
}

/// Runs `cmd` where `socket(domain, _, protocol)` fails with `errno` (any
/// protocol when `None`).
fn deny_socket(cmd: &mut Command, domain: i32, protocol: Option<u32>, errno: i32) -> &mut Command {
    let mut filter = program(domain, protocol, errno);
    // SAFETY: between fork and exec only prctl runs, which is async-signal-safe; the
    // filter's memory was allocated before the fork and is only read here (the
    // kernel copies it). PR_SET_NO_NEW_PRIVS lets an unprivileged caller install it.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as libc::c_ushort,
                filter: filter.as_mut_ptr(),
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &prog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}
