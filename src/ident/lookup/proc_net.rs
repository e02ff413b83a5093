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
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    // Rows as the kernel writes them (6.x, x86-64), header included.
    const HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    fn v4_row(sl: u32, local: &str, remote: &str, st: &str, uid: u32, inode: u64) -> String {
        format!(
            "{sl:4}: {local} {remote} {st} 00000000:00000000 00:00000000 00000000 {uid:5}        0 {inode} 1 0000000000000000 20 4 30 10 -1\n"
        )
    }

    fn table(rows: &[String]) -> Vec<u8> {
        let mut s = HEADER.to_string();
        for r in rows {
            s.push_str(r);
        }
        s.into_bytes()
    }

    fn find_in(bytes: &[u8], wanted: &Tuple, matcher: Matcher) -> Option<Row> {
        let needle = &needles(wanted)[0].1;
        scan(&mut &bytes[..], needle, wanted, matcher).unwrap()
    }

    #[test]
    fn addresses_print_in_host_order_like_the_kernel() {
        if cfg!(target_endian = "little") {
            assert_eq!(hex_addr(&"127.0.0.1".parse().unwrap()), "0100007F");
            assert_eq!(
                hex_addr(&"::1".parse().unwrap()),
                "00000000000000000000000001000000"
            );
            assert_eq!(
                hex_addr(&"::ffff:127.0.0.1".parse().unwrap()),
                "0000000000000000FFFF00000100007F"
            );
        }
        let t = Tuple::new(sa("127.0.0.1:80"), sa("10.0.0.2:4660"));
        let n = needles(&t);
        assert_eq!(n[0].0, "/proc/net/tcp");
        assert_eq!(n[1].0, "/proc/net/tcp6");
        for (_, needle) in n {
            let text = String::from_utf8(needle).unwrap();
            let (local, remote) = text.trim_end().split_once(' ').unwrap();
            assert_eq!(
                parse_hex_endpoint(local).map(crate::ident::lookup::tuple::canonical_addr),
                Some(sa("127.0.0.1:80"))
            );
            assert_eq!(
                parse_hex_endpoint(remote).map(crate::ident::lookup::tuple::canonical_addr),
                Some(sa("10.0.0.2:4660"))
            );
        }
    }

    #[test]
    fn only_the_matching_row_is_found_whatever_its_state() {
        let t = Tuple::new(sa("127.0.0.1:40000"), sa("127.0.0.1:80"));
        let bytes = table(&[
            v4_row(0, "0100007F:0050", "00000000:0000", "0A", 0, 100),
            v4_row(1, "0100007F:0050", "0100007F:9C40", "01", 0, 101),
            v4_row(2, "0100007F:9C40", "0100007F:0050", "04", 1000, 102),
        ]);
        let row = find_in(&bytes, &t, Matcher::FourTuple).unwrap();
        assert_eq!(
            (row.uid, row.inode, row.state),
            (1000, 102, TcpState::FinWait1)
        );
        assert_eq!(row.tuple, t);
        assert_eq!(find_in(&bytes, &t, Matcher::EstablishedOnly), None);
    }

    #[test]
    fn a_time_wait_row_is_skipped_for_a_later_owned_one() {
        let t = Tuple::new(sa("127.0.0.1:40000"), sa("127.0.0.1:80"));
        let bytes = table(&[
            v4_row(0, "0100007F:9C40", "0100007F:0050", "06", 0, 0),
            v4_row(1, "0100007F:9C40", "0100007F:0050", "01", 1000, 77),
        ]);
        let row = find_in(&bytes, &t, Matcher::FourTuple).unwrap();
        assert_eq!((row.uid, row.inode), (1000, 77));
        let only_tw = table(&[v4_row(0, "0100007F:9C40", "0100007F:0050", "06", 0, 0)]);
        assert_eq!(find_in(&only_tw, &t, Matcher::FourTuple), None);
    }

    #[test]
    fn a_needle_in_the_wrong_column_is_not_a_row() {
        // The remote pair followed by text that looks like our local pair is not a hit;
        // nor is a hit inside a line that does not start with "NNN: ".
        let t = Tuple::new(sa("127.0.0.1:40000"), sa("127.0.0.1:80"));
        let mut bytes = table(&[v4_row(0, "0100007F:0050", "0100007F:9C40", "01", 5, 1)]);
        bytes.extend_from_slice(b"garbage 0100007F:9C40 0100007F:0050 01 0:0 0:0 0 5 0 9\n");
        bytes.extend_from_slice(b"  x: 0100007F:9C40 0100007F:0050 01 0:0 0:0 0 5 0 9\n");
        assert_eq!(find_in(&bytes, &t, Matcher::FourTuple), None);
    }

    #[test]
    fn a_row_split_across_reads_is_still_found() {
        struct Dribble<'a>(&'a [u8], usize);
        impl Read for Dribble<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = self.1.min(self.0.len()).min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let t = Tuple::new(sa("127.0.0.1:40000"), sa("127.0.0.1:80"));
        let mut rows: Vec<String> = (0..50)
            .map(|i| {
                v4_row(
                    i,
                    "0100007F:0050",
                    "0100007F:1000",
                    "01",
                    0,
                    500 + u64::from(i),
                )
            })
            .collect();
        rows.push(v4_row(50, "0100007F:9C40", "0100007F:0050", "08", 1000, 9));
        let bytes = table(&rows);
        let needle = &needles(&t)[0].1;
        for step in [1, 7, 64, 149, 150, 151] {
            let row = scan(&mut Dribble(&bytes, step), needle, &t, Matcher::FourTuple).unwrap();
            assert_eq!(row.map(|r| r.inode), Some(9), "step {step}");
        }
        // A last row without its newline (a truncated read) still counts.
        let cut = &bytes[..bytes.len() - 1];
        assert_eq!(
            scan(&mut &cut[..], needle, &t, Matcher::FourTuple)
                .unwrap()
                .map(|r| r.inode),
            Some(9)
        );
    }

    #[test]
    fn ipv6_rows_parse_back_including_mapped_ones() {
        let t = Tuple::new(sa("[::ffff:127.0.0.1]:40000"), sa("[::ffff:127.0.0.1]:80")).canonical();
        let needle = needles(&t)[1].1.clone();
        let text = String::from_utf8(needle.clone()).unwrap();
        let (local, remote) = text.trim_end().split_once(' ').unwrap();
        let row = v4_row(3, local, remote, "05", 1000, 31);
        let bytes = table(&[row]);
        let got = scan(&mut &bytes[..], &needle, &t, Matcher::FourTuple)
            .unwrap()
            .unwrap();
        assert_eq!((got.inode, got.state), (31, TcpState::FinWait2));
        assert_eq!(got.tuple.canonical(), t);
    }

    #[test]
    fn a_missing_table_is_an_empty_one_but_an_unreadable_one_is_an_error() {
        // A kernel booted with ipv6.disable=1 has no /proc/net/tcp6: nothing is in it.
        let t = Tuple::new(sa("127.0.0.1:40000"), sa("127.0.0.1:80"));
        let needle = &needles(&t)[1].1;
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("tcp6");
        assert_eq!(
            scan_table(&missing, needle, &t, Matcher::FourTuple).unwrap(),
            None
        );
        // Any other failure still is one: a directory cannot be read as a table.
        assert!(scan_table(dir.path(), needle, &t, Matcher::FourTuple).is_err());
    }

    #[test]
    fn hostile_rows_do_not_panic() {
        let t = Tuple::new(sa("127.0.0.1:40000"), sa("127.0.0.1:80"));
        let needle = &needles(&t)[0].1;
        let n = String::from_utf8(needle.clone()).unwrap();
        for evil in [
            format!("   0: {n}"),
            format!("   0: {n}\n"),
            format!("   0: {n}ZZ 1 2 3 4 5 6\n"),
            format!("   0: {n}01 a b c 99999999999 x y\n"),
            format!("   0: {n}01 a b c 5 x \u{fffd}\n"),
            format!("\u{0}: {n}01 a b c 5 x 3\n"),
        ] {
            assert_eq!(
                find_in(evil.as_bytes(), &t, Matcher::FourTuple),
                None,
                "{evil:?}"
            );
        }
    }

    #[test]
    fn one_pass_answers_many_wants_each_with_its_own_row() {
        let t = |l: &str, r: &str| Tuple::new(sa(l), sa(r));
        let wants = [
            Want {
                tuple: t("127.0.0.1:40000", "127.0.0.1:80"),
                matcher: Matcher::FourTuple,
            },
            Want {
                tuple: t("127.0.0.1:40001", "127.0.0.1:80"),
                matcher: Matcher::FourTuple,
            },
            // Asked twice: both askers are answered.
            Want {
                tuple: t("127.0.0.1:40001", "127.0.0.1:80"),
                matcher: Matcher::FourTuple,
            },
            // Not in the table.
            Want {
                tuple: t("127.0.0.1:40002", "127.0.0.1:80"),
                matcher: Matcher::FourTuple,
            },
            // Only a FIN_WAIT1 row: the control matcher refuses it, ours takes it.
            Want {
                tuple: t("127.0.0.1:40003", "127.0.0.1:80"),
                matcher: Matcher::EstablishedOnly,
            },
            Want {
                tuple: t("127.0.0.1:40003", "127.0.0.1:80"),
                matcher: Matcher::FourTuple,
            },
        ];
        let bytes = table(&[
            v4_row(0, "0100007F:0050", "00000000:0000", "0A", 0, 100),
            // TIME_WAIT first, then the owned row of the same tuple.
            v4_row(1, "0100007F:9C40", "0100007F:0050", "06", 0, 0),
            v4_row(2, "0100007F:9C41", "0100007F:0050", "01", 1001, 201),
            v4_row(3, "0100007F:9C40", "0100007F:0050", "01", 1000, 200),
            v4_row(4, "0100007F:9C43", "0100007F:0050", "04", 1003, 203),
        ]);
        let mut keys: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
        for (i, w) in wants.iter().enumerate() {
            keys.entry(needles(&w.tuple)[0].1.clone())
                .or_default()
                .push(i);
        }
        let mut found = vec![None; wants.len()];
        scan_many(&mut &bytes[..], &keys, &wants, &mut found).unwrap();
        let inodes: Vec<Option<u64>> = found.iter().map(|r| r.map(|r| r.inode)).collect();
        assert_eq!(
            inodes,
            [Some(200), Some(201), Some(201), None, None, Some(203)]
        );
        // And each answer is what the one-want scan finds.
        for (w, got) in wants.iter().zip(&found) {
            let needle = &needles(&w.tuple)[0].1;
            assert_eq!(
                &scan(&mut &bytes[..], needle, &w.tuple, w.matcher).unwrap(),
                got
            );
        }
    }

    #[test]
    fn coalesced_lookups_from_many_threads_find_their_own_live_connections() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let pairs: Vec<_> = (0..16)
            .map(|_| {
                let c = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
                let (s, _) = listener.accept().unwrap();
                (c, s)
            })
            .collect();
        std::thread::scope(|scope| {
            for (c, s) in &pairs {
                for end in [c, s] {
                    scope.spawn(move || {
                        let t = Tuple::new(end.local_addr().unwrap(), end.peer_addr().unwrap());
                        for _ in 0..20 {
                            let row = find_coalesced(&t, Matcher::FourTuple).unwrap().unwrap();
                            assert_eq!(row.tuple, t);
                            assert_eq!(row.uid, nix::unistd::Uid::effective().as_raw());
                        }
                    });
                }
            }
        });
    }
}
