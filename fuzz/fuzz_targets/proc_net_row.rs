//! The /proc/net/tcp row matcher. The input is read as a generated table (rows over a
//! small pool of addresses, junk lines, the tuple asked for, read sizes) checked
//! against the naive reference, then as raw table bytes that must not panic it.
#![no_main]

#[path = "../../tests/props/checks.rs"]
#[allow(dead_code)]
mod checks;

use std::net::{IpAddr, SocketAddr};

use checks::{GenRow, TableCase};
use libfuzzer_sys::arbitrary::{Result, Unstructured};

fn endpoint(u: &mut Unstructured, v6: bool) -> Result<SocketAddr> {
    let ips: &[&str] = if v6 {
        &["127.0.0.1", "10.1.2.3", "::1", "2001:db8::9", "::ffff:127.0.0.1"]
    } else {
        &["127.0.0.1", "10.1.2.3"]
    };
    let ip: IpAddr = u.choose(ips)?.parse().unwrap();
    let port = *u.choose(&[1u16, 113, 0x8000, 65535, 0])?;
    Ok(SocketAddr::new(ip, port))
}

fn case(u: &mut Unstructured) -> Result<TableCase> {
    let v6: bool = u.arbitrary()?;
    let mut rows = Vec::new();
    for _ in 0..u.int_in_range(0..=16)? {
        rows.push(GenRow {
            local: endpoint(u, v6)?,
            remote: endpoint(u, v6)?,
            state: u.arbitrary()?,
            uid: u.arbitrary()?,
            inode: if u.ratio(1, 4)? { 0 } else { u.arbitrary()? },
        });
    }
    let mut junk = Vec::new();
    for _ in 0..u.int_in_range(0..=2)? {
        let at = u.int_in_range(0..=16)?;
        let len = u.int_in_range(0..=40)?;
        let line: Vec<u8> = u
            .bytes(len)?
            .iter()
            .filter(|&&b| b != b':' && b != b'\n')
            .copied()
            .collect();
        junk.push((at, line));
    }
    let wanted = if !rows.is_empty() && u.arbitrary()? {
        let r = u.choose(&rows)?;
        (r.local, r.remote)
    } else {
        (endpoint(u, v6)?, endpoint(u, v6)?)
    };
    let mut reads = Vec::new();
    for _ in 0..u.int_in_range(0..=4)? {
        reads.push(u.int_in_range(1..=400)?);
    }
    Ok(TableCase {
        ipv6_table: v6,
        rows,
        junk,
        wanted,
        established_only: u.arbitrary()?,
        reads,
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(c) = case(&mut Unstructured::new(data)) {
        checks::table(&c);
    }
    let local: SocketAddr = "127.0.0.1:113".parse().unwrap();
    let remote: SocketAddr = "10.1.2.3:32768".parse().unwrap();
    checks::table_bytes(data, (local, remote), false);
    checks::table_bytes(data, (local, remote), true);
});
