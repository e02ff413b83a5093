use super::*;
use std::net::TcpListener;

fn entry(id: u64, querier: &str, age_ms: u64, state: State) -> Entry {
    let ip: IpAddr = querier.parse().unwrap();
    Entry {
        id,
        querier: Querier::of(ip),
        peer: SocketAddr::new(ip, 1),
        accepted: Instant::now() - Duration::from_millis(age_ms),
        fd: -1,
        state,
    }
}

fn q(s: &str) -> Querier {
    Querier::of(s.parse().unwrap())
}

#[test]
fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
    assert_eq!(q("2001:db8:1:2::1"), q("2001:db8:1:2:ffff::9"));
    assert_ne!(q("2001:db8:1:2::1"), q("2001:db8:1:3::1"));
    assert_eq!(q("::ffff:192.0.2.1"), q("192.0.2.1"));
    assert_ne!(q("::ffff:192.0.2.1"), q("::ffff:192.0.2.2"));
    assert_eq!(q("2001:db8:1:2::1").to_string(), "2001:db8:1:2::/64");
    assert_eq!(q("192.0.2.1").to_string(), "192.0.2.1");
}

#[test]
fn the_share_is_half_the_table_by_default_and_never_more_than_it() {
    assert_eq!(Limits::new(256, None).per_querier, 128);
    assert_eq!(Limits::new(1, None).per_querier, 1);
    assert_eq!(Limits::new(3, None).per_querier, 2);
    assert_eq!(Limits::new(10, Some(50)).per_querier, 10);
    assert_eq!(Limits::new(10, Some(0)).per_querier, 1);
}

#[test]
fn a_querier_past_its_share_replaces_its_own_oldest_idle_connection() {
    let limits = Limits::new(10, Some(3));
    let table = [
        entry(0, "127.0.0.2", 300, State::InUse),
        entry(1, "127.0.0.2", 200, State::Idle),
        entry(2, "127.0.0.1", 900, State::Idle),
        entry(3, "127.0.0.2", 100, State::Idle),
    ];
    let why = Crowding::QuerierFull {
        querier: q("127.0.0.2"),
        held: 3,
    };
    assert_eq!(
        decide(&table, q("127.0.0.2"), limits),
        Decision::Evict(1, why)
    );
    // Another querier is admitted: the table has room.
    assert_eq!(decide(&table, q("127.0.0.3"), limits), Decision::Admit);
    // With none of its own idle, the new one is refused, whoever else is idle.
    let busy = [
        entry(0, "127.0.0.2", 300, State::InUse),
        entry(1, "127.0.0.2", 200, State::InUse),
        entry(2, "127.0.0.1", 900, State::Idle),
        entry(3, "127.0.0.2", 100, State::InUse),
    ];
    assert_eq!(decide(&busy, q("127.0.0.2"), limits), Decision::Refuse(why));
    // Evicted entries no longer count against the share.
    let leaving = [
        entry(0, "127.0.0.2", 300, State::InUse),
        entry(1, "127.0.0.2", 200, State::Evicted),
        entry(3, "127.0.0.2", 100, State::Idle),
    ];
    assert_eq!(decide(&leaving, q("127.0.0.2"), limits), Decision::Admit);
}

#[test]
fn a_full_table_evicts_the_oldest_idle_of_whoever_holds_the_most() {
    let limits = Limits::new(6, Some(6));
    let table = [
        entry(0, "127.0.0.1", 900, State::Idle),
        entry(1, "127.0.0.2", 500, State::InUse),
        entry(2, "127.0.0.2", 400, State::Idle),
        entry(3, "127.0.0.2", 300, State::Idle),
        entry(4, "2001:db8::1", 800, State::Idle),
        entry(5, "2001:db8::2", 700, State::Idle),
    ];
    let why = Crowding::TableFull { total: 6 };
    // 127.0.0.2 holds 3: its oldest idle goes, not the older ones of others.
    assert_eq!(
        decide(&table, q("127.0.0.1"), limits),
        Decision::Evict(2, why)
    );
    // Between equal holdings, the older idle connection goes.
    let even = [
        entry(0, "127.0.0.1", 100, State::Idle),
        entry(1, "127.0.0.1", 200, State::InUse),
        entry(2, "127.0.0.2", 50, State::InUse),
        entry(3, "127.0.0.2", 300, State::Idle),
    ];
    let four = Limits::new(4, None);
    assert_eq!(
        decide(&even, q("127.0.0.3"), four),
        Decision::Evict(3, Crowding::TableFull { total: 4 })
    );
    // The biggest holder with nothing idle is passed over for one that has.
    let busy_biggest = [
        entry(0, "127.0.0.2", 100, State::InUse),
        entry(1, "127.0.0.2", 100, State::InUse),
        entry(2, "127.0.0.2", 100, State::InUse),
        entry(3, "127.0.0.1", 10, State::Idle),
    ];
    assert_eq!(
        decide(&busy_biggest, q("127.0.0.3"), Limits::new(4, Some(4))),
        Decision::Evict(3, Crowding::TableFull { total: 4 })
    );
    // Nothing idle anywhere: refused.
    let all_busy = [
        entry(0, "127.0.0.2", 100, State::InUse),
        entry(1, "127.0.0.1", 100, State::InUse),
    ];
    assert_eq!(
        decide(&all_busy, q("127.0.0.3"), Limits::new(2, Some(2))),
        Decision::Refuse(Crowding::TableFull { total: 2 })
    );
}

/// A connection accepted on `listener`: (client, accepted, peer).
fn accepted_from(listener: &TcpListener) -> (TcpStream, TcpStream, SocketAddr) {
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, peer) = listener.accept().unwrap();
    (client, accepted, peer)
}

#[test]
fn an_evicted_connection_is_shut_down_and_not_answered() {
    use std::io::Read;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let table = Arc::new(Table::new(1, None));
    let (mut old_client, old, old_peer) = accepted_from(&listener);
    let (admitted, evicted) = table.admit(old, old_peer);
    let old = admitted.unwrap();
    assert!(evicted.is_empty());
    // A new one takes the idle one's place at once.
    let (_new_client, new, new_peer) = accepted_from(&listener);
    let (admitted, evicted) = table.admit(new, new_peer);
    let new = admitted.unwrap();
    assert_eq!(evicted.len(), 1);
    assert_eq!(evicted[0].peer, old_peer);
    // The old one's thread reads end of file, and is told not to answer.
    assert_eq!(old.stream().read(&mut [0u8; 1]).unwrap(), 0);
    assert!(!old.start_request());
    drop(old);
    old_client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(old_client.read(&mut [0u8; 1]).unwrap(), 0, "closed");
    // In use, a connection is never evicted: the next one is refused.
    assert!(new.start_request());
    let (_client, third, peer) = accepted_from(&listener);
    let (refused, evicted) = table.admit(third, peer);
    assert!(evicted.is_empty());
    assert!(matches!(
        refused,
        Err(Crowding::QuerierFull { held: 1, .. })
    ));
    // Once it leaves, there is room again.
    drop(new);
    let (_client, fourth, peer) = accepted_from(&listener);
    assert!(table.admit(fourth, peer).0.is_ok());
}

#[test]
fn descriptors_stay_bounded_while_evicted_connections_are_closing() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let table = Arc::new(Table::new(1, None));
    let (_c1, s1, p1) = accepted_from(&listener);
    let first = table.admit(s1, p1).0.unwrap();
    let (_c2, s2, p2) = accepted_from(&listener);
    let second = table.admit(s2, p2).0.unwrap();
    // Both evicted and neither closed by its thread: as many closing as the
    // table holds. The next waits for one of them, and is refused in the end.
    let (_c3, s3, p3) = accepted_from(&listener);
    let start = Instant::now();
    let (refused, evicted) = table.admit(s3, p3);
    assert_eq!(refused.err(), Some(Crowding::TableFull { total: 1 }));
    assert_eq!(evicted.len(), 1);
    assert_eq!(evicted[0].peer, p2);
    assert!(start.elapsed() >= EVICTION_WAIT);
    // One closes: there is room.
    drop(first);
    let (_c4, s4, p4) = accepted_from(&listener);
    assert!(table.admit(s4, p4).0.is_ok());
    drop(second);
}

#[test]
fn a_shrunk_table_keeps_a_default_share_at_half_and_a_given_one_within_it() {
    let default = Table::new(5000, None);
    default.bound_total(149);
    assert_eq!(default.limits(), Limits::new(149, None));
    assert_eq!(default.limits().per_querier, 75);
    let given = Table::new(5000, Some(100));
    given.bound_total(149);
    assert_eq!(given.limits().per_querier, 100);
    given.bound_total(50);
    assert_eq!(given.limits().per_querier, 50);
}

#[test]
fn a_table_is_sized_within_the_descriptor_limit() {
    assert_eq!(total_within(1024), 320);
    assert_eq!(total_within(10), 1);
    assert!(fds_needed(total_within(1024)) <= 1024);
    assert!(
        fds_needed(256) <= 1024,
        "the default table fits the usual 1024"
    );
}
