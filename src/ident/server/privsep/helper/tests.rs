use super::super::record::{REPLY_LEN, channel, decode_reply, encode_request};
use super::*;
use nix::sys::socket::{AddressFamily, ControlMessage, SockFlag};
use std::io::IoSlice;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn only_a_connected_tcp_socket_names_a_tuple_and_its_own_addresses_are_used() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, peer) = listener.accept().unwrap();
    let t = tuple_of(accepted.as_fd(), 80, 4000).unwrap();
    let expect_local = SocketAddr::new(listener.local_addr().unwrap().ip(), 80);
    assert_eq!(
        t,
        Tuple::new(expect_local, SocketAddr::new(peer.ip(), 4000))
    );
    assert!(tuple_of(listener.as_fd(), 80, 4000).is_none(), "a listener");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.connect(client.local_addr().unwrap()).unwrap();
    assert!(tuple_of(udp.as_fd(), 80, 4000).is_none(), "UDP");
    let file = tempfile::tempfile().unwrap();
    assert!(tuple_of(file.as_fd(), 80, 4000).is_none(), "a file");
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    assert!(tuple_of(a.as_fd(), 80, 4000).is_none(), "a Unix socket");
}

/// A worker on one end of a socketpair, as in the helper (no fork needed).
fn worker() -> (OwnedFd, thread::JoinHandle<i32>) {
    let (ours, theirs) = channel().unwrap();
    let config = ServerConfig::default();
    let t = thread::spawn(move || {
        let log = Logger::new(LogTarget::None);
        serve_requests(&theirs, &log, &|t| owner::find(t, &config, &log), &|| {})
    });
    (ours, t)
}

fn request(channel: &OwnedFd, id: u64, ports: (u16, u16), fds: &[RawFd]) -> Findings {
    let r = encode_request(
        id,
        Ask::Lookup {
            server_port: ports.0,
            client_port: ports.1,
        },
    );
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &cmsg };
    sock::sendmsg::<()>(
        channel.as_raw_fd(),
        &[IoSlice::new(&r)],
        cmsgs,
        MsgFlags::empty(),
        None,
    )
    .unwrap();
    let mut buf = [0u8; REPLY_LEN];
    assert_eq!(
        sock::recv(channel.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap(),
        REPLY_LEN
    );
    let (got_id, findings) = decode_reply(&buf);
    assert_eq!(got_id, id);
    findings
}

#[test]
fn the_helper_answers_only_about_the_passed_connections_own_addresses() {
    let (channel, t) = worker();
    // A service and its client: the client's end is the connection asked about.
    let service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(service.local_addr().unwrap()).unwrap();
    let (_served, _) = service.accept().unwrap();
    let (sp, cp) = (
        client.local_addr().unwrap().port(),
        service.local_addr().unwrap().port(),
    );
    // An ident connection from 127.0.0.1 to 127.0.0.1: the pair matches.
    let identd = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let _querier = std::net::TcpStream::connect(identd.local_addr().unwrap()).unwrap();
    let (ident_conn, _) = identd.accept().unwrap();
    let me = nix::unistd::Uid::effective().as_raw();
    assert!(matches!(
        request(&channel, 1, (sp, cp), &[ident_conn.as_raw_fd()]),
        Findings::Owner { uid, .. } if uid == me
    ));
    // The same ports asked on an ident connection from 127.0.0.2: not its business.
    let from2 = nix::sys::socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let two: SocketAddr = "127.0.0.2:0".parse().unwrap();
    sock::bind(from2.as_raw_fd(), &SockaddrStorage::from(two)).unwrap();
    sock::connect(
        from2.as_raw_fd(),
        &SockaddrStorage::from(identd.local_addr().unwrap()),
    )
    .unwrap();
    let (ident_conn2, _) = identd.accept().unwrap();
    assert_eq!(
        request(&channel, 2, (sp, cp), &[ident_conn2.as_raw_fd()]),
        Findings::NoOwner
    );
    // No descriptor, two, a listener, a port 0: refused, never answered.
    assert_eq!(request(&channel, 3, (sp, cp), &[]), Findings::LookupFailed);
    assert_eq!(
        request(
            &channel,
            4,
            (sp, cp),
            &[ident_conn.as_raw_fd(), ident_conn2.as_raw_fd()]
        ),
        Findings::LookupFailed
    );
    assert_eq!(
        request(&channel, 5, (sp, cp), &[identd.as_raw_fd()]),
        Findings::LookupFailed
    );
    assert_eq!(
        request(&channel, 6, (0, cp), &[ident_conn.as_raw_fd()]),
        Findings::LookupFailed
    );
    // A record of the wrong size ends the helper: it trusts nothing after that.
    sock::send(channel.as_raw_fd(), &[0u8; 3], MsgFlags::empty()).unwrap();
    assert_eq!(t.join().unwrap(), 1);
}

/// A reload request makes the worker call `reload` and send nothing back; one
/// with a descriptor, or any request the encoder never writes, is refused.
#[test]
fn a_reload_request_reloads_without_a_reply_and_a_malformed_one_is_refused() {
    let (ours, theirs) = channel().unwrap();
    let reloads = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&reloads);
    let t = thread::spawn(move || {
        let log = Logger::new(LogTarget::None);
        let reload = || {
            counted.fetch_add(1, Ordering::SeqCst);
        };
        serve_requests(&theirs, &log, &|_| Findings::NoOwner, &reload)
    });
    let send = |record: &[u8], fds: &[RawFd]| {
        let cmsg = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &cmsg };
        sock::sendmsg::<()>(
            ours.as_raw_fd(),
            &[IoSlice::new(record)],
            cmsgs,
            MsgFlags::empty(),
            None,
        )
        .unwrap();
    };
    let reply = || {
        let mut buf = [0u8; REPLY_LEN];
        assert_eq!(
            sock::recv(ours.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap(),
            REPLY_LEN
        );
        decode_reply(&buf)
    };
    let identd = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let _querier = std::net::TcpStream::connect(identd.local_addr().unwrap()).unwrap();
    let (conn, _) = identd.accept().unwrap();
    let lookup = |id| {
        encode_request(
            id,
            Ask::Lookup {
                server_port: 1,
                client_port: 2,
            },
        )
    };
    send(&encode_request(1, Ask::Reload), &[]);
    // One worker answers in order: the reply to the next lookup comes after
    // the reload has run, and is the first reply there is.
    send(&lookup(2), &[conn.as_raw_fd()]);
    assert_eq!(reply(), (2, Findings::NoOwner));
    assert_eq!(reloads.load(Ordering::SeqCst), 1);
    send(&encode_request(3, Ask::Reload), &[conn.as_raw_fd()]);
    assert_eq!(
        reply(),
        (3, Findings::LookupFailed),
        "a reload with a descriptor"
    );
    let mut padded = lookup(4);
    padded[15] = 1;
    send(&padded, &[conn.as_raw_fd()]);
    assert_eq!(
        reply(),
        (4, Findings::LookupFailed),
        "a request with padding set"
    );
    assert_eq!(reloads.load(Ordering::SeqCst), 1);
    drop(ours);
    assert_eq!(t.join().unwrap(), 0);
}

#[test]
fn the_helper_ends_when_the_network_side_closes_its_end() {
    let (channel, t) = worker();
    drop(channel);
    assert_eq!(t.join().unwrap(), 0);
}
