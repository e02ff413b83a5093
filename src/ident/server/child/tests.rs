use super::*;

#[test]
fn only_the_exact_listening_line_gives_an_address() {
    let ok = |l: &str| parse_listening(l.as_bytes());
    assert_eq!(
        ok("listening on 127.0.0.1:4113\n"),
        Some("127.0.0.1:4113".parse().unwrap())
    );
    assert_eq!(
        ok("listening on [::1]:113\n"),
        Some("[::1]:113".parse().unwrap())
    );
    assert_eq!(ok("listening on [::]:9\n"), Some("[::]:9".parse().unwrap()));
    for bad in [
        "",
        "\n",
        "listening on 127.0.0.1:4113",      // cut short: no newline
        "listening on 127.0.0.1:4113\r\n",  // CR
        "listening on 127.0.0.1:4113 \n",   // trailing space
        " listening on 127.0.0.1:4113\n",   // leading space
        "Listening on 127.0.0.1:4113\n",    // case
        "listening on  127.0.0.1:4113\n",   // two spaces
        "listening on 127.0.0.1\n",         // no port
        "listening on 127.0.0.1:0\n",       // port 0
        "listening on ::1:113\n",           // IPv6 without brackets
        "listening on 127.0.0.1:4113x\n",   // junk after the port
        "listening on 127.0.0.1:65536\n",   // port out of range
        "listening on localhost:113\n",     // a name, not an address
        "listening on 127.0.0.1:1\nmore\n", // two lines
        "listening on 127.0.0.1:1\0\n",     // a NUL
        "racefree: error: binding 127.0.0.1:1: Address in use\n",
    ] {
        assert_eq!(ok(bad), None, "{bad:?}");
    }
    assert_eq!(parse_listening(b"listening on 127.0.0.1:1\xff\n"), None);
}

fn shell(script: &str) -> anyhow::Result<ServeChild> {
    shell_copying_to(script, io::sink())
}

fn shell_copying_to(
    script: &str,
    copy_to: impl Write + Send + 'static,
) -> anyhow::Result<ServeChild> {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    ServeChild::start_command(cmd, copy_to)
}

fn start_error(script: &str) -> StartError {
    match shell(script) {
        Ok(_) => panic!("{script:?} started"),
        Err(e) => e.downcast().unwrap(),
    }
}

#[test]
fn a_server_that_exits_first_is_reported_with_its_stderr() {
    let e = start_error(
        "echo 'racefree: error: binding 127.0.0.1:7: Address already in use' >&2; exit 1",
    );
    assert_eq!(e.said, Said::Nothing);
    assert_eq!(e.status.and_then(|s| s.code()), Some(1));
    assert_eq!(
        e.stderr,
        "racefree: error: binding 127.0.0.1:7: Address already in use\n"
    );
    assert_eq!(
        e.to_string(),
        "the server exited before listening (exit status: 1): \
         racefree: error: binding 127.0.0.1:7: Address already in use"
    );
}

#[test]
fn a_server_that_says_something_else_is_killed_and_reported() {
    // It would run for a minute: only the kill lets its stderr end this soon.
    // Its stderr line is written before its stdout line, so it is in the pipe
    // when the kill comes.
    let e = start_error("echo 'warming up' >&2; echo 'ready!'; exec sleep 60");
    assert_eq!(e.said, Said::Line("ready!\n".into()));
    assert_eq!(e.status.and_then(|s| s.code()), None);
    assert_eq!(e.stderr, "warming up\n");
    assert_eq!(
        e.to_string(),
        "the server said \"ready!\\n\", not 'listening on ADDR' (signal: 9 (SIGKILL)): \
         warming up"
    );
}

#[test]
fn an_endless_first_line_is_read_only_as_far_as_the_cap() {
    // A line without end: as far as the cap, then it is killed.
    let e = start_error(r"exec tr '\0' x < /dev/zero");
    assert_eq!(e.said, Said::Line("x".repeat(MAX_FIRST_LINE as usize)));
    assert_eq!(e.status.and_then(|s| s.code()), None);
}

#[test]
fn the_reported_stderr_is_one_line_whatever_the_server_wrote() {
    let e = start_error(r"printf 'first\n\n  second\033[2J\n' >&2");
    assert_eq!(
        e.to_string(),
        "the server exited before listening (exit status: 0): first; second\\u{1b}[2J"
    );
    let e = start_error("exit 3");
    assert_eq!(
        e.to_string(),
        "the server exited before listening (exit status: 3); it wrote nothing on stderr"
    );
}

/// A stderr that hands each write to the test.
struct Sent(std::sync::mpsc::Sender<Vec<u8>>);

impl Write for Sent {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = self.0.send(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_listening_servers_later_stderr_is_copied_and_never_blocks_it() {
    // After its line it writes 1 MiB on stderr, far more than a pipe holds, and
    // only then "done" on stdout: that comes only if the pipe is being drained.
    let (tx, rx) = std::sync::mpsc::channel();
    let mut child = shell_copying_to(
        "echo 'listening on 127.0.0.1:4113'; \
         head -c 1048576 /dev/zero | tr '\\0' 'x' >&2; echo done",
        Sent(tx),
    )
    .unwrap();
    assert_eq!(child.addr(), "127.0.0.1:4113".parse().unwrap());
    // All of it reaches our stderr, in order (bounded: a copy that stopped fails
    // here rather than hang below).
    let mut copied = Vec::new();
    while copied.len() < 1 << 20 {
        let chunk = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the copy of the server's stderr stopped short");
        copied.extend(chunk);
    }
    assert_eq!(copied, vec![b'x'; 1 << 20]);
    let mut rest = String::new();
    let stdout = child._stdout.as_mut().unwrap();
    stdout.read_line(&mut rest).unwrap();
    assert_eq!(rest, "done\n");
}

#[test]
fn a_dropped_server_is_killed_and_reaped() {
    let served = shell("echo 'listening on 127.0.0.1:4113'; exec sleep 60").unwrap();
    let pid = served.pid();
    drop(served);
    // Reaped: the pid is no longer a child of ours to wait for.
    let gone = nix::sys::wait::waitpid(
        nix::unistd::Pid::from_raw(pid as i32),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
    assert_eq!(gone, Err(nix::errno::Errno::ECHILD));
}
