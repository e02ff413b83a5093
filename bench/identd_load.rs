//! Load generator for `bench/identd.sh` (not a test): C concurrent clients ask an
//! identd on loopback, a new connection per query, for SECS seconds.
//!
//!   identd_load ADDR:PORT CLIENTS SECS
//!
//! Each client holds one loopback connection of its own (owned by this process's
//! user) and asks about it: `PORT_HERE, PORT_THERE`, which any identd on this host
//! answers with `USERID`. Prints one JSON line: queries, queries per second, p50 and
//! p99 latency in milliseconds, and the count of answers that were not a USERID
//! (closed unanswered, another reply, or an I/O error or timeout).
//!
//! Bounded: at most 256 clients and 600 seconds, and loopback addresses only. Each
//! ident connection is closed with a reset (SO_LINGER 0), so the run leaves no
//! TIME_WAIT rows to swell /proc/net/tcp for the servers that follow.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = || -> ! {
        eprintln!("usage: identd_load ADDR:PORT CLIENTS SECS");
        std::process::exit(2)
    };
    if args.len() != 4 {
        usage();
    }
    let identd: SocketAddr = args[1].parse().unwrap_or_else(|_| usage());
    let clients: usize = args[2].parse().unwrap_or_else(|_| usage());
    let secs: u64 = args[3].parse().unwrap_or_else(|_| usage());
    assert!(identd.ip().is_loopback(), "loopback identd only");
    assert!((1..=256).contains(&clients) && (1..=600).contains(&secs));

    let service = TcpListener::bind("127.0.0.1:0").expect("binding the service");
    let conns: Vec<(TcpStream, TcpStream)> = (0..clients)
        .map(|_| {
            let c = TcpStream::connect(service.local_addr().unwrap()).unwrap();
            let (s, _) = service.accept().unwrap();
            (c, s)
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let results: Vec<(Vec<Duration>, Bad)> = std::thread::scope(|scope| {
        let handles: Vec<_> = conns
            .iter()
            .map(|(c, _)| {
                let request = format!(
                    "{}, {}\r\n",
                    c.local_addr().unwrap().port(),
                    c.peer_addr().unwrap().port()
                );
                scope.spawn(move || client(identd, request.as_bytes(), deadline))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut lat: Vec<Duration> = results.iter().flat_map(|(l, _)| l.clone()).collect();
    let closed: u64 = results.iter().map(|(_, b)| b.closed).sum();
    let other: u64 = results.iter().map(|(_, b)| b.other).sum();
    let io: u64 = results.iter().map(|(_, b)| b.io).sum();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "{{\"queries\": {}, \"qps\": {:.1}, \"p50_ms\": {:.3}, \"p99_ms\": {:.3}, \"not_userid\": {}, \"closed_unanswered\": {closed}, \"other_reply\": {other}, \"io_error\": {io}}}",
        lat.len(),
        lat.len() as f64 / secs as f64,
        pct(0.50),
        pct(0.99),
        closed + other + io
    );
}

/// Queries until the deadline; returns each query's latency and the count of
/// replies that were not a USERID (or failed).
fn client(identd: SocketAddr, request: &[u8], deadline: Instant) -> (Vec<Duration>, Bad) {
    let mut lat = Vec::new();
    let mut bad = Bad::default();
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        let t = Instant::now();
        let ok = (|| -> std::io::Result<Outcome> {
            let mut s = TcpStream::connect(identd)?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            s.write_all(request)?;
            let mut got = 0;
            while !buf[..got].contains(&b'\n') && got < buf.len() {
                let n = s.read(&mut buf[got..])?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            let reset = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            let _ = nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Linger, &reset);
            Ok(if buf[..got].windows(6).any(|w| w == b"USERID") {
                Outcome::UserId
            } else if got == 0 {
                Outcome::Closed
            } else {
                Outcome::Other
            })
        })();
        lat.push(t.elapsed());
        match ok {
            Ok(Outcome::UserId) => {}
            Ok(Outcome::Closed) => bad.closed += 1,
            Ok(Outcome::Other) => bad.other += 1,
            Err(_) => bad.io += 1,
        }
    }
    (lat, bad)
}

enum Outcome {
    UserId,
    /// Closed without a reply: the server's connection limit turning it away.
    Closed,
    Other,
}

/// Queries not answered with a USERID, by how.
#[derive(Default, Clone, Copy)]
struct Bad {
    closed: u64,
    other: u64,
    io: u64,
}
