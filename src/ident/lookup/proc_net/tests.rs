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
