//! Benchmark helper for `bench/ident.sh` (not a test): holds many loopback TCP
//! connections open and measures lookups among them in-process.
//!
//!   ident_sockets hold N      open N sockets (N/2 connections), print tuples to
//!                             look up, then hold them until stdin closes
//!   ident_sockets measure N [RUNS]   open N sockets, then time netlink and /proc lookups,
//!                             a plain read of /proc/net/tcp{,6}, and procfs's parse
//!
//! One process holds at most RLIMIT_NOFILE descriptors (raised to the hard limit,
//! or beyond when the process has CAP_SYS_RESOURCE); bench/ident.sh starts several
//! holders to reach larger totals, since lookups see every socket of the namespace.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use racefree::ident::{Source, Tuple, lookup_owner};

/// Connections per listening port: well inside the ephemeral range (32768-60999),
/// since connect() picks a fresh local port per destination.
const PER_LISTENER: usize = 20_000;

struct Held {
    /// Client ends, as (local, remote).
    tuples: Vec<Tuple>,
    streams: Vec<TcpStream>,
    _listeners: Vec<TcpListener>,
}

impl Drop for Held {
    /// Closes with a reset (SO_LINGER 0), so the connections leave no TIME_WAIT rows
    /// behind to swell /proc/net/tcp for the next run.
    fn drop(&mut self) {
        let reset = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        for s in &self.streams {
            let _ = nix::sys::socket::setsockopt(s, nix::sys::socket::sockopt::Linger, &reset);
        }
    }
}

fn raise_nofile(want: u64) -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read only the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur >= want {
        return Ok(lim.rlim_cur);
    }
    let raised = libc::rlimit {
        rlim_cur: want,
        rlim_max: want.max(lim.rlim_max),
    };
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return Ok(want);
    }
    // Not root: as far as the hard limit goes.
    let soft = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim.rlim_max)
}

fn open(sockets: usize) -> io::Result<Held> {
    let limit = raise_nofile(sockets as u64 + 1000)?;
    let sockets = sockets.min(limit.saturating_sub(1000) as usize);
    let connections = sockets / 2;
    let mut listeners = Vec::new();
    let mut streams = Vec::with_capacity(connections * 2);
    let mut tuples = Vec::with_capacity(connections);
    for i in 0..connections {
        if i % PER_LISTENER == 0 {
            listeners.push(TcpListener::bind("127.0.0.1:0")?);
        }
        let listener = listeners.last().expect("one was just bound");
        let client = TcpStream::connect(listener.local_addr()?)?;
        let (server, _) = listener.accept()?;
        tuples.push(Tuple::new(client.local_addr()?, client.peer_addr()?));
        streams.push(client);
        streams.push(server);
    }
    Ok(Held {
        tuples,
        streams,
        _listeners: listeners,
    })
}

/// The connection whose owned row comes last in /proc/net/tcp, whoever holds it:
/// the worst case for an IPv4 lookup that stops at its match.
fn last_in_proc() -> Tuple {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("reading /proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // f: sl local remote st tx:rx tr:when retrnsmt uid timeout inode
            let (state, inode) = (*f.get(3)?, *f.get(9)?);
            if state == "0A" || inode == "0" {
                return None;
            }
            Some(Tuple::new(parse_v4(f[1])?, parse_v4(f[2])?))
        })
        .last()
        .expect("connections in /proc/net/tcp")
}

/// A connection from an IPv4 client to a dual-stack [::] listener: its server end
/// is a row in /proc/net/tcp6 with mapped addresses, so a /proc lookup of it reads
/// all of tcp before finding it in tcp6.
fn dual_stack_conn() -> io::Result<(Tuple, Vec<TcpStream>, TcpListener)> {
    let listener = TcpListener::bind("[::]:0")?;
    let client = TcpStream::connect(("127.0.0.1", listener.local_addr()?.port()))?;
    let (server, _) = listener.accept()?;
    let t = Tuple::new(server.local_addr()?, server.peer_addr()?).canonical();
    Ok((t, vec![client, server], listener))
}

fn parse_v4(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let ip = u32::from_str_radix(addr, 16).ok()?.to_ne_bytes();
    Some(SocketAddr::from((ip, u16::from_str_radix(port, 16).ok()?)))
}

fn hold(n: usize) -> io::Result<()> {
    let held = open(n)?;
    let (mapped, _streams, _listener) = dual_stack_conn()?;
    let last = last_in_proc();
    // A port pair no connection uses: a miss, which /proc reads twice by policy.
    let miss = Tuple::new(
        "127.0.0.1:1".parse().unwrap(),
        "127.0.0.1:2".parse().unwrap(),
    );
    let mut out = io::stdout().lock();
    writeln!(out, "sockets {}", held.tuples.len() * 2)?;
    writeln!(out, "tcp_in_use {}", tcp_in_use())?;
    writeln!(out, "last {} {}", last.local, last.remote)?;
    writeln!(out, "mapped {} {}", mapped.local, mapped.remote)?;
    writeln!(out, "miss {} {}", miss.local, miss.remote)?;
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);
    // Hold until the script closes our stdin.
    let mut sink = Vec::new();
    io::stdin().lock().read_to_end(&mut sink)?;
    Ok(())
}

/// `TCP: inuse N` from /proc/net/sockstat and sockstat6: every TCP socket of the
/// namespace, whichever process holds it.
fn tcp_in_use() -> u64 {
    ["/proc/net/sockstat", "/proc/net/sockstat6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|text| {
            let line = text.lines().find(|l| l.starts_with("TCP"))?.to_string();
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inuse")?;
            words.next()?.parse::<u64>().ok()
        })
        .sum()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn time_each(runs: usize, mut f: impl FnMut(usize)) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..runs)
        .map(|i| {
            let start = Instant::now();
            f(i);
            start.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn timed(mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn report(what: &str, times: &[Duration]) {
    println!(
        "{what:<44} median {:>9.1} us   p99 {:>9.1} us   ({} runs)",
        percentile(times, 0.5).as_secs_f64() * 1e6,
        percentile(times, 0.99).as_secs_f64() * 1e6,
        times.len()
    );
}

fn measure(n: usize, runs: usize) -> io::Result<()> {
    let held = open(n)?;
    println!(
        "this process holds {} sockets; the kernel has {} TCP sockets in use (/proc/net/sockstat)",
        held.tuples.len() * 2,
        tcp_in_use()
    );
    let (mapped, _streams, _listener) = dual_stack_conn()?;
    let last = last_in_proc();

    if racefree::ident::lookup::resolve(Source::Netlink).is_ok() {
        let runs = 20_000;
        let times = time_each(runs, |i| {
            let t = &held.tuples[(i * 7919) % held.tuples.len()];
            let owner = lookup_owner(t, Source::Netlink).expect("netlink lookup");
            assert!(owner.is_some(), "no owner for a held connection {t}");
        });
        report("netlink lookup (random held connection)", &times);
    } else {
        println!("netlink sock_diag unavailable: not measured");
    }

    // The four /proc measurements are interleaved run by run, so drift in the
    // machine's speed (this is a VM) hits them all alike.
    // The plain read uses the same 256 KiB reads as the lookup, so only the work
    // on the bytes differs.
    let mut buf = vec![0u8; 256 * 1024];
    let mut plain_read = || {
        for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let mut f = std::fs::File::open(path).unwrap();
            while f.read(&mut buf).unwrap() > 0 {}
        }
    };
    let v4_hit = || assert!(lookup_owner(&last, Source::Proc).unwrap().is_some());
    let mapped_hit = || assert!(lookup_owner(&mapped, Source::Proc).unwrap().is_some());
    let procfs_parse = || {
        let mut rows = procfs::net::tcp().unwrap();
        rows.extend(procfs::net::tcp6().unwrap());
        assert!(
            rows.iter()
                .any(|r| r.local_address == last.local && r.remote_address == last.remote)
        );
    };
    let mut times: [Vec<Duration>; 4] = Default::default();
    for _ in 0..runs {
        times[0].push(timed(&mut plain_read));
        times[1].push(timed(v4_hit));
        times[2].push(timed(mapped_hit));
        times[3].push(timed(procfs_parse));
    }
    for t in &mut times {
        t.sort();
    }
    let [read, hit, hit6, procfs] = &times;
    report("read /proc/net/tcp + tcp6 (256 KiB reads)", read);
    report("/proc lookup, IPv4, match on tcp's last row", hit);
    report("/proc lookup, dual-stack, match in tcp6", hit6);
    report("procfs::net::tcp() + tcp6(), parse all rows", procfs);
    let ratio =
        |t: &[Duration]| percentile(t, 0.5).as_secs_f64() / percentile(read, 0.5).as_secs_f64();
    println!(
        "median / plain read: IPv4 lookup {:.2}, dual-stack lookup {:.2}, procfs parse {:.2}",
        ratio(hit),
        ratio(hit6),
        ratio(procfs)
    );
    Ok(())
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = |i: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    match args.first().map(String::as_str) {
        Some("hold") => hold(n(1)),
        Some("measure") => measure(n(1), args.get(2).and_then(|s| s.parse().ok()).unwrap_or(40)),
        _ => {
            eprintln!("usage: ident_sockets hold N | measure N [RUNS]");
            std::process::exit(2);
        }
    }
}
