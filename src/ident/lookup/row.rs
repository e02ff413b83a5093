//! A row of the kernel's socket table, as either source reports it, and the one
//! decision over it: does this row answer for the connection asked about?

use std::fmt;

use serde::Serialize;

use super::tuple::Tuple;

/// The kernel's TCP states (include/net/tcp_states.h), as /proc and sock_diag number them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    NewSynRecv,
    BoundInactive,
    /// A number this build does not know.
    Other(u8),
}

impl TcpState {
    pub fn from_kernel(n: u8) -> TcpState {
        match n {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 => TcpState::SynRecv,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Close,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            12 => TcpState::NewSynRecv,
            13 => TcpState::BoundInactive,
            n => TcpState::Other(n),
        }
    }

    /// The name `ss` and the kernel use.
    pub fn name(self) -> String {
        match self {
            TcpState::Established => "ESTABLISHED".into(),
            TcpState::SynSent => "SYN_SENT".into(),
            TcpState::SynRecv => "SYN_RECV".into(),
            TcpState::FinWait1 => "FIN_WAIT1".into(),
            TcpState::FinWait2 => "FIN_WAIT2".into(),
            TcpState::TimeWait => "TIME_WAIT".into(),
            TcpState::Close => "CLOSE".into(),
            TcpState::CloseWait => "CLOSE_WAIT".into(),
            TcpState::LastAck => "LAST_ACK".into(),
            TcpState::Listen => "LISTEN".into(),
            TcpState::Closing => "CLOSING".into(),
            TcpState::NewSynRecv => "NEW_SYN_RECV".into(),
            TcpState::BoundInactive => "BOUND_INACTIVE".into(),
            TcpState::Other(n) => format!("STATE_{n}"),
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for TcpState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// One row of the kernel's table as a source reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    pub tuple: Tuple,
    pub state: TcpState,
    pub uid: u32,
    pub inode: u64,
    /// The interface the socket is bound to (0: none), where the source says:
    /// sock_diag does, /proc does not (None).
    pub interface: Option<u32>,
}

/// Which rows count as the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matcher {
    /// The 4-tuple only: racefree's behaviour.
    FourTuple,
    /// The 4-tuple and state ESTABLISHED: the classic identd, known to answer nothing
    /// for a half-closed connection. Only for stress's control arm.
    EstablishedOnly,
}

impl Matcher {
    /// The one decision: does this row answer for `wanted`? Sources call it on every
    /// row whose tuple matched their fast pre-filter, so it re-checks the tuple.
    pub(crate) fn accepts(self, row: &Row, wanted: &Tuple) -> bool {
        if !row.tuple.canonical().same_ends(wanted) || row.inode == 0 {
            return false;
        }
        // A link-local connection asked about on one interface: a row on another,
        // or one whose interface the source cannot tell, is someone else's.
        if let Some(scope) = wanted.link_local_scope()
            && row.interface != Some(scope)
        {
            return false;
        }
        match self {
            // LISTEN is not a connection: sock_diag answers an exact-lookup miss with
            // the listener on the local port, whose tuple differs anyway.
            Matcher::FourTuple => row.state != TcpState::Listen,
            Matcher::EstablishedOnly => row.state == TcpState::Established,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn row(local: &str, remote: &str, state: TcpState, inode: u64) -> Row {
        Row {
            tuple: Tuple::new(sa(local), sa(remote)),
            state,
            uid: 1000,
            inode,
            interface: None,
        }
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_scoped_link_local_question_is_answered_only_by_a_row_on_that_interface() {
        let scoped = Tuple::new(sa("[fe80::1%3]:22"), sa("[fe80::2%3]:4000"));
        assert_eq!(scoped.canonical(), scoped);
        assert_eq!(scoped.canonical().scope_id(), 3);
        let unscoped = Tuple::new(sa("[fe80::1]:22"), sa("[fe80::2]:4000"));
        assert_eq!(unscoped.scope_id(), 0);
        assert!(unscoped.same_ends(&scoped) && scoped.same_ends(&unscoped));
        let on = |interface| Row {
            interface,
            ..row("[fe80::1]:22", "[fe80::2]:4000", TcpState::Established, 9)
        };
        // sock_diag's row on interface 3 answers; one on 4 is another connection.
        assert!(Matcher::FourTuple.accepts(&on(Some(3)), &scoped.canonical()));
        assert!(!Matcher::FourTuple.accepts(&on(Some(4)), &scoped.canonical()));
        // A /proc row cannot say which interface it is on: it does not answer.
        assert!(!Matcher::FourTuple.accepts(&on(None), &scoped.canonical()));
        // Asked without an interface, a link-local tuple matches on any.
        for interface in [None, Some(3), Some(4)] {
            assert!(Matcher::FourTuple.accepts(&on(interface), &unscoped));
        }
        // A scope on a global address is not compared.
        let global = Tuple::new(sa("[2001:db8::1%3]:22"), sa("[2001:db8::2%3]:4000"));
        let global_row = row(
            "[2001:db8::1]:22",
            "[2001:db8::2]:4000",
            TcpState::Established,
            9,
        );
        assert!(Matcher::FourTuple.accepts(&global_row, &global.canonical()));
        let other_port = Tuple::new(sa("[fe80::1%3]:23"), sa("[fe80::2%3]:4000"));
        assert!(!other_port.same_ends(&scoped));
    }

    #[test]
    fn every_state_with_an_inode_is_an_owner() {
        let wanted = Tuple::new(sa("127.0.0.1:5000"), sa("127.0.0.1:80"));
        for n in [1u8, 2, 3, 4, 5, 7, 8, 9, 11, 12] {
            let r = row(
                "127.0.0.1:5000",
                "127.0.0.1:80",
                TcpState::from_kernel(n),
                42,
            );
            assert!(Matcher::FourTuple.accepts(&r, &wanted), "state {n}");
        }
    }

    #[test]
    fn inode_zero_listen_and_other_tuples_are_not_owners() {
        let wanted = Tuple::new(sa("127.0.0.1:5000"), sa("127.0.0.1:80"));
        let tw = row("127.0.0.1:5000", "127.0.0.1:80", TcpState::TimeWait, 0);
        assert!(!Matcher::FourTuple.accepts(&tw, &wanted));
        let orphan = row("127.0.0.1:5000", "127.0.0.1:80", TcpState::FinWait2, 0);
        assert!(!Matcher::FourTuple.accepts(&orphan, &wanted));
        let listener = row("127.0.0.1:5000", "0.0.0.0:0", TcpState::Listen, 7);
        assert!(!Matcher::FourTuple.accepts(&listener, &wanted));
        let swapped = row("127.0.0.1:80", "127.0.0.1:5000", TcpState::Established, 7);
        assert!(!Matcher::FourTuple.accepts(&swapped, &wanted));
        let mapped = row(
            "[::ffff:127.0.0.1]:5000",
            "[::ffff:127.0.0.1]:80",
            TcpState::Established,
            7,
        );
        assert!(Matcher::FourTuple.accepts(&mapped, &wanted));
    }

    #[test]
    fn the_control_matcher_rejects_half_closed_connections() {
        let wanted = Tuple::new(sa("127.0.0.1:5000"), sa("127.0.0.1:80"));
        let fw1 = row("127.0.0.1:5000", "127.0.0.1:80", TcpState::FinWait1, 42);
        assert!(Matcher::FourTuple.accepts(&fw1, &wanted));
        assert!(!Matcher::EstablishedOnly.accepts(&fw1, &wanted));
        let est = row("127.0.0.1:5000", "127.0.0.1:80", TcpState::Established, 42);
        assert!(Matcher::EstablishedOnly.accepts(&est, &wanted));
    }

    #[test]
    fn state_names_match_the_kernel() {
        assert_eq!(TcpState::from_kernel(4).name(), "FIN_WAIT1");
        assert_eq!(TcpState::from_kernel(8).name(), "CLOSE_WAIT");
        assert_eq!(TcpState::from_kernel(200).name(), "STATE_200");
    }
}
