use super::*;
use crate::ident::lookup;
use crate::ident::nat::{Forward, NatConfig};
use crate::ident::server::LogTarget;
use nix::unistd::Uid;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

#[test]
fn a_request_is_answered_about_the_queriers_own_connection_only() {
    let server = Server::new(ServerConfig::default(), Logger::new(LogTarget::None));
    // A service on 127.0.0.1 and a client of it: the "service host" asks us.
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(service.local_addr().unwrap()).unwrap();
    let (_accepted, _) = service.accept().unwrap();
    let req = proto::Request {
        server_port: client.local_addr().unwrap().port(),
        client_port: service.local_addr().unwrap().port(),
    };
    let here: SocketAddr = "127.0.0.1:113".parse().unwrap();
    let querier: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let me = lookup::user_name(Uid::effective().as_raw());
    let hidden = Answer::Error(ErrorToken::HiddenUser);
    assert_eq!(server.answer(here, querier, req), Answer::User(me));
    // The same ports asked from another address: not the querier's connection.
    let elsewhere: SocketAddr = "127.0.0.5:5000".parse().unwrap();
    assert_eq!(
        server.answer(here, elsewhere, req),
        Answer::Error(ErrorToken::NoUser)
    );
    // Asked on another local address of ours: not that connection either.
    let other_local: SocketAddr = "127.0.0.6:113".parse().unwrap();
    assert_eq!(
        server.answer(other_local, querier, req),
        Answer::Error(ErrorToken::NoUser)
    );

    let numeric = Server::new(
        ServerConfig {
            numeric: true,
            ..ServerConfig::default()
        },
        Logger::new(LogTarget::None),
    );
    assert_eq!(
        numeric.answer(here, querier, req),
        Answer::Uid(Uid::effective().as_raw())
    );
    let hide_me = Server::new(
        ServerConfig {
            hide_uids: vec![Uid::effective().as_raw()],
            ..ServerConfig::default()
        },
        Logger::new(LogTarget::None),
    );
    assert_eq!(hide_me.answer(here, querier, req), hidden);
    let hide_all = Server::new(
        ServerConfig {
            hide_all: true,
            ..ServerConfig::default()
        },
        Logger::new(LogTarget::None),
    );
    assert_eq!(hide_all.answer(here, querier, req), hidden);
}

/// A forward waiting on the host behind holds no helper worker. The helper has
/// one worker; while a forward's host has its question and has not answered, a
/// local lookup is answered, and only then does the host answer, and its answer
/// is relayed about the ports asked. Were the forward made in the helper, the
/// local lookup would wait for the forward's --timeout and the forward would end
/// UNKNOWN-ERROR. The order is forced by the host's stub, not by timing.
#[test]
fn a_forward_waiting_on_the_host_behind_holds_no_helper_worker() {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    let none = || Logger::new(LogTarget::None);
    // The host behind the NAT: its identd reads the question, says so, and
    // answers only when told.
    let lan = TcpListener::bind("127.0.0.1:0").unwrap();
    let forward = Forward {
        identd: lan.local_addr().unwrap(),
        server_port: 4000,
        client_port: 6667,
    };
    let (asked_tx, asked_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let lan_identd = thread::spawn(move || {
        let (conn, _) = lan.accept().unwrap();
        let mut line = String::new();
        BufReader::new(&conn).read_line(&mut line).unwrap();
        asked_tx.send(line).unwrap();
        go_rx.recv().unwrap();
        (&conn).write_all(b"4000 , 6667 : USERID : UNIX : lanuser\r\n")
    });
    // One worker: server port 40000 came from that host (as --nat --forward
    // would find in conntrack); anything else is looked up as the helper does.
    const FORWARDED: u16 = 40000;
    let helper = Helper::in_threads(1, move |t| {
        if t.local.port() == FORWARDED {
            return Findings::Forward(forward);
        }
        owner::find(t, &ServerConfig::default(), &Logger::new(LogTarget::None))
    });
    let config = ServerConfig {
        nat: NatConfig {
            timeout: Duration::from_secs(30),
            ..NatConfig::default()
        },
        ..ServerConfig::default()
    };
    let server = Server::with_helper(config, none(), helper);
    // Ident connections, as the network side holds them.
    let identd = TcpListener::bind("127.0.0.1:0").unwrap();
    let ident_connection = || {
        let querier = TcpStream::connect(identd.local_addr().unwrap()).unwrap();
        let (conn, _) = identd.accept().unwrap();
        (querier, conn)
    };
    let (_querier1, conn1) = ident_connection();
    let asking = {
        let server = server.clone();
        thread::spawn(move || {
            let (local, peer) = (conn1.local_addr().unwrap(), conn1.peer_addr().unwrap());
            server.respond_on(Some(conn1.as_fd()), local, peer, b"40000, 6667")
        })
    };
    // The forward is under way: the host behind has its question.
    assert_eq!(
        asked_rx.recv_timeout(Duration::from_secs(30)).unwrap(),
        "4000, 6667\r\n"
    );
    // A local lookup meanwhile, answered as a server without a helper would.
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(service.local_addr().unwrap()).unwrap();
    let (_served, _) = service.accept().unwrap();
    let line = format!(
        "{}, {}",
        client.local_addr().unwrap().port(),
        service.local_addr().unwrap().port()
    );
    let (_querier2, conn2) = ident_connection();
    let (local, peer) = (conn2.local_addr().unwrap(), conn2.peer_addr().unwrap());
    let expected =
        Server::new(ServerConfig::default(), none()).respond(local, peer, line.as_bytes());
    assert!(expected.contains(" : USERID : "), "{expected}");
    assert_eq!(
        server.respond_on(Some(conn2.as_fd()), local, peer, line.as_bytes()),
        expected
    );
    // Only now does the host behind answer: the forward was still waiting.
    go_tx.send(()).unwrap();
    assert_eq!(
        asking.join().unwrap(),
        "40000, 6667 : USERID : UNIX : lanuser\r\n"
    );
    lan_identd.join().unwrap().unwrap();
}
