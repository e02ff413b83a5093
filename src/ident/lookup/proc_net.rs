//! The `/proc/net/tcp{,6}` source: find a tuple without parsing the table.
//!
//! Each row starts `%4d: LLLLLLLL:PPPP RRRRRRRR:QQQQ ST ...`: the addresses in hex as
//! the kernel holds them (IPv4 as one 32-bit word in host order, IPv6 as four such
//! words), the ports as plain hex numbers. We write the wanted tuple in exactly that
//! form once, search the raw bytes for it (memchr's memmem), and parse only a row it
//! hits; the scan stops at the first row that answers.
//!
//! Why not procfs, which the project otherwise uses for /proc: `procfs::net::tcp()`
//! parses every row into a `TcpNetEntry` before we can look at any. Measured in
//! process by `bench/ident.sh` at 21,000 loopback sockets (2-core VM, medians of 40
//! interleaved runs): procfs's `tcp()` plus `tcp6()` 131 ms, a plain read of the two
//! files 97 ms, this scan 64 ms for an IPv4 hit on tcp's last row (tcp6 is never
//! read) and 77 ms for a dual-stack hit in tcp6; as whole processes against `cat`
//! of both files, 0.78x and 0.93x (bench/RESULTS-ident.md). The kernel's formatting
//! of the table is most of the cost; parsing every row adds a third on top. The
//! tests still use procfs, as a reader independent of this one, to check states.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use memchr::memmem;

use super::row::{Matcher, Row, TcpState};
use super::single_flight::{ScanPanicked, SingleFlight};
use super::tuple::Tuple;

/// Reads happen in chunks this big: /proc/net/tcp is generated per read call, so
/// fewer, larger reads cost less, and a hit early in the file ends the scan early.
const CHUNK: usize = 256 * 1024;

/// Finds the first row of `wanted` (already canonical) that `matcher` accepts,
/// looking in `/proc/net/tcp` for IPv4 and in `/proc/net/tcp6` for native and
/// IPv4-mapped IPv6 (an IPv4 client of a dual-stack listener lives there).
pub(crate) fn find(wanted: &Tuple, matcher: Matcher) -> anyhow::Result<Option<Row>> {
    find_in(Path::new("/proc/net"), wanted, matcher)
}

/// [`find`] in the tables of another directory like `/proc/net`: `/proc/PID/net`
/// holds the tables of PID's network namespace (`ident --nat` looks in containers).
pub(crate) fn find_in(
    net_dir: &Path,
    wanted: &Tuple,
    matcher: Matcher,
) -> anyhow::Result<Option<Row>> {
    for (path, needle) in needles(wanted) {
        let path = net_dir.join(Path::new(path).file_name().unwrap_or_default());
        let found = scan_table(&path, &needle, wanted, matcher)
            .with_context(|| format!("reading {} for {wanted}", path.display()))?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// The tables to read and the tuple as each prints it.
fn needles(wanted: &Tuple) -> Vec<(&'static str, Vec<u8>)> {
    match (wanted.local.ip(), wanted.remote.ip()) {
        (IpAddr::V4(l), IpAddr::V4(r)) => {
            let v4 = hex_tuple(
                &IpAddr::V4(l),
                wanted.local.port(),
                &IpAddr::V4(r),
                wanted.remote.port(),
            );
            let v6 = hex_tuple(
                &IpAddr::V6(l.to_ipv6_mapped()),
                wanted.local.port(),
                &IpAddr::V6(r.to_ipv6_mapped()),
                wanted.remote.port(),
            );
            vec![("/proc/net/tcp", v4), ("/proc/net/tcp6", v6)]
        }
        (l, r) => vec![(
            "/proc/net/tcp6",
            hex_tuple(&l, wanted.local.port(), &r, wanted.remote.port()),
        )],
    }
}

/// `LOCAL:PORT REMOTE:PORT ` in /proc's hex form. The trailing space pins the end of
/// the remote port, so the needle cannot match a prefix of a longer field.
pub(crate) fn hex_tuple(
    local: &IpAddr,
    local_port: u16,
    remote: &IpAddr,
    remote_port: u16,
) -> Vec<u8> {
    format!(
        "{}:{local_port:04X} {}:{remote_port:04X} ",
        hex_addr(local),
        hex_addr(remote)
    )
    .into_bytes()
}

/// The kernel prints each 32-bit word of an address with `%08X` of its in-memory
/// value, so the bytes come out in host order: 127.0.0.1 is `0100007F` on x86.
pub(crate) fn hex_addr(ip: &IpAddr) -> String {
    let octets: Vec<u8> = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    octets
        .chunks_exact(4)
        .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
        .collect()
}

/// Scans one table file. A table that does not exist is empty: a kernel booted with
/// `ipv6.disable=1` has no `/proc/net/tcp6`, and an IPv4 miss in `/proc/net/tcp`
/// must still end in "no owner", not in an error. Any other failure is one.
fn scan_table(
    path: &Path,
    needle: &[u8],
    wanted: &Tuple,
    matcher: Matcher,
) -> io::Result<Option<Row>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    scan(&mut file, needle, wanted, matcher)
}

/// [`scan`] with the needle `wanted` (already canonical) has in the table named:
/// tcp6 when `ipv6_table`, else tcp (which holds no IPv6 tuple).
pub(crate) fn scan_for(
    reader: &mut impl Read,
    wanted: &Tuple,
    ipv6_table: bool,
    matcher: Matcher,
) -> io::Result<Option<Row>> {
    let table = if ipv6_table {
        "/proc/net/tcp6"
    } else {
        "/proc/net/tcp"
    };
    match needles(wanted).into_iter().find(|(path, _)| *path == table) {
        Some((_, needle)) => scan(reader, &needle, wanted, matcher),
        None => Ok(None),
    }
}

/// The scan over any reader, so tests can feed it crafted tables.
pub(crate) fn scan(
    reader: &mut impl Read,
    needle: &[u8],
    wanted: &Tuple,
    matcher: Matcher,
) -> io::Result<Option<Row>> {
    let finder = memmem::Finder::new(needle);
    let mut found = None;
    for_each_rows(reader, |rows| {
        found = finder
            .find_iter(rows)
            .filter_map(|hit| row_at(rows, hit, needle.len()))
            .find(|row| matcher.accepts(row, wanted));
        found.is_some()
    })?;
    Ok(found)
}

/// Feeds `on_rows` the table in runs of whole rows (the last row of the file may
/// lack its newline), until it returns true (done) or the file ends.
fn for_each_rows(reader: &mut impl Read, mut on_rows: impl FnMut(&[u8]) -> bool) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    // buf[..filled] holds unscanned bytes; everything before the last '\n' is whole rows.
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            // A single row longer than the buffer: not a table we understand.
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a row longer than 256 KiB",
            ));
        }
        let n = match reader.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        filled += n;
        let whole = if n == 0 {
            filled
        } else {
            match memchr::memrchr(b'\n', &buf[..filled]) {
                Some(i) => i + 1,
                None => continue,
            }
        };
        if on_rows(&buf[..whole]) || n == 0 {
            return Ok(());
        }
        // Keep the partial last row, and enough of it for a needle split across reads.
        buf.copy_within(whole..filled, 0);
        filled -= whole;
    }
}

/// One lookup waiting for a coalesced scan.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Want {
    pub tuple: Tuple,
    pub matcher: Matcher,
}

/// Why a coalesced scan failed, shared by every lookup it was serving.
#[derive(Clone, Debug)]
pub(crate) struct ScanError(Arc<str>);

impl From<ScanPanicked> for ScanError {
    fn from(_: ScanPanicked) -> Self {
        ScanError("the scan of /proc/net/tcp panicked".into())
    }
}

type Flight =
    SingleFlight<Want, Option<Row>, ScanError, fn(&[Want]) -> Result<Vec<Option<Row>>, ScanError>>;

/// [`find`], coalesced with every other lookup of this process: one read of the
/// tables serves every lookup that arrived before it started (see
/// [`super::single_flight`]). A lone lookup reads for itself, as [`find`] does.
pub(crate) fn find_coalesced(wanted: &Tuple, matcher: Matcher) -> anyhow::Result<Option<Row>> {
    static FLIGHT: OnceLock<Flight> = OnceLock::new();
    FLIGHT
        .get_or_init(|| SingleFlight::new(find_all as fn(&[Want]) -> _))
        .call(Want {
            tuple: *wanted,
            matcher,
        })
        .map_err(|e| anyhow::anyhow!("{}", e.0))
}

/// The rows of every want, in one pass over each table: `/proc/net/tcp` for the
/// IPv4 wants, then `/proc/net/tcp6` for what is still missing (IPv4-mapped and
/// native IPv6). One want takes [`find`]'s path, which stops at the first hit.
fn find_all(wants: &[Want]) -> Result<Vec<Option<Row>>, ScanError> {
    let failed = |e: anyhow::Error| ScanError(format!("{e:#}").into());
    if let [one] = wants {
        return Ok(vec![find(&one.tuple, one.matcher).map_err(failed)?]);
    }
    let mut found = vec![None; wants.len()];
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        // The wanted tuples as this table prints them, to the wants they answer.
        let mut keys: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
        for (i, w) in wants.iter().enumerate() {
            if found[i].is_none() {
                for (p, needle) in needles(&w.tuple) {
                    if p == path {
                        keys.entry(needle).or_default().push(i);
                    }
                }
            }
        }
        if keys.is_empty() {
            continue;
        }
        let result = match File::open(path) {
            Ok(mut file) => scan_many(&mut file, &keys, wants, &mut found),
            // A missing table is an empty one (see scan_table).
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        };
        result
            .with_context(|| format!("reading {path} for {} lookups", keys.len()))
            .map_err(failed)?;
    }
    Ok(found)
}

/// One pass over a table for many wants: each row's address pair is looked up in
/// `keys` (every key has the table's needle length), so the pass costs the same
/// for thirty-two wants as for two. Stops when every want has its row.
pub(crate) fn scan_many(
    reader: &mut impl Read,
    keys: &HashMap<Vec<u8>, Vec<usize>>,
    wants: &[Want],
    found: &mut [Option<Row>],
) -> io::Result<()> {
    let Some(len) = keys.keys().next().map(Vec::len) else {
        return Ok(());
    };
    let mut missing: usize = keys.values().map(Vec::len).sum();
    for_each_rows(reader, |rows| {
        let mut start = 0;
        while start < rows.len() {
            let end = memchr::memchr(b'\n', &rows[start..]).map_or(rows.len(), |i| start + i);
            let row = &rows[start..end];
            // `NNN: ` then the address pair.
            if let Some(colon) = memchr::memchr(b':', row) {
                let hit = start + colon + 2;
                if let Some(idxs) = rows.get(hit..hit + len).and_then(|k| keys.get(k))
                    && let Some(r) = row_at(rows, hit, len)
                {
                    for &i in idxs {
                        if found[i].is_none() && wants[i].matcher.accepts(&r, &wants[i].tuple) {
                            found[i] = Some(r);
                            missing -= 1;
                        }
                    }
                }
            }
            if missing == 0 {
                return true;
            }
            start = end + 1;
        }
        false
    })
}

/// Parses the row in which the needle was found at `hit`, if the hit is really the
/// row's address pair (right after `NNN: `) and the row is well formed. The tuple
/// is the wanted one (the needle says so); `Matcher::accepts` compares it again.
fn row_at(buf: &[u8], hit: usize, needle_len: usize) -> Option<Row> {
    let start = memchr::memrchr(b'\n', &buf[..hit]).map_or(0, |i| i + 1);
    let prefix = &buf[start..hit];
    let sl = prefix.trim_ascii_start().strip_suffix(b": ")?;
    if sl.is_empty() || !sl.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let end = memchr::memchr(b'\n', &buf[hit..]).map_or(buf.len(), |i| hit + i);
    let addresses = std::str::from_utf8(&buf[hit..hit + needle_len]).ok()?;
    let rest = std::str::from_utf8(&buf[hit + needle_len..end]).ok()?;
    // After the addresses: st tx:rx tr:when retrnsmt uid timeout inode ...
    let mut fields = rest.split_ascii_whitespace();
    let state = u8::from_str_radix(fields.next()?, 16).ok()?;
    let uid = fields.nth(3)?.parse().ok()?;
    let inode = fields.nth(1)?.parse().ok()?;
    let mut ends = addresses.split_ascii_whitespace().map(parse_hex_endpoint);
    let local = ends.next()??;
    let remote = ends.next()??;
    Some(Row {
        tuple: Tuple::new(local, remote),
        state: TcpState::from_kernel(state),
        uid,
        inode,
        // /proc/net/tcp6 prints no interface.
        interface: None,
    })
}

/// `0100007F:0050` or a 32-digit IPv6 form back to a socket address.
pub(crate) fn parse_hex_endpoint(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..addr.len() / 8)
        .map(|i| u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<_>>()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let ip = match (addr.len(), bytes.len()) {
        (8, 4) => IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        (32, 16) => IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests;
