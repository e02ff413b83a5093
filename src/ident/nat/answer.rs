//! What `--nat` makes the server say: its one hook for a tuple the lookup found no
//! owner for, and the answers naming a container's user or relaying another host's.

use std::time::Duration;

use super::forward::{self, Forward};
use super::netns;
use super::resolve::{NatConfig, Resolution, resolve};
use crate::ident::lookup::{Owner, Tuple};
use crate::ident::proto::{Answer, ErrorToken, ReplyKind, is_wire_safe};

/// What a server hook does with a tuple its lookup found no owner for.
#[derive(Debug)]
pub enum Unowned {
    /// A connection of this host after all (a trusted proxy's query): the server's
    /// own policy (hiding, `--numeric`) decides what to say about this owner.
    Owner(Owner),
    /// The reply to give.
    Answer(Answer),
    /// Ask this host behind this one, and relay its answer ([`forwarded`]).
    Forward(Forward),
}

/// The server's one hook: called when the lookup of `tuple` found no owner.
/// `numeric` and `hide_all` are the server's flags; `log` takes error lines.
pub fn unowned(
    nat: &NatConfig,
    tuple: &Tuple,
    numeric: bool,
    hide_all: bool,
    log: impl Fn(&str),
) -> Unowned {
    if !nat.translate && nat.proxies.is_empty() {
        return Unowned::Answer(Answer::Error(ErrorToken::NoUser));
    }
    match resolve(nat, tuple, Some(tuple.remote.ip())) {
        Ok(Resolution::Proxied(owner)) => Unowned::Owner(owner),
        Ok(Resolution::Container { found, .. }) => {
            Unowned::Answer(container_answer(&found, numeric, hide_all))
        }
        Ok(Resolution::Elsewhere { forward, .. }) => Unowned::Forward(forward),
        Ok(Resolution::NoUser(_)) => Unowned::Answer(Answer::Error(ErrorToken::NoUser)),
        Err(e) => {
            log(&format!("--nat: looking up {tuple}: {e:#}"));
            Unowned::Answer(Answer::Error(ErrorToken::UnknownError))
        }
    }
}

/// The reply naming a container's user. `--hide-all` hides them too; `--hide` and
/// `.noident` concern this host's users only (a container's uids are its own).
pub fn container_answer(found: &netns::Found, numeric: bool, hide_all: bool) -> Answer {
    if hide_all {
        return Answer::Error(ErrorToken::HiddenUser);
    }
    match (&found.name, found.inside_uid) {
        (Some(name), Some(_)) if !numeric && is_wire_safe(name) => Answer::User(name.clone()),
        (_, Some(uid)) => Answer::Uid(uid),
        // Unmapped in the container: only this host's number names it.
        (_, None) => Answer::Uid(found.outside_uid),
    }
}

/// The reply relaying another host's: `--hide-all` hides it when it names someone
/// (a relayed NO-USER stays one).
pub fn relayed_answer(reply: &ReplyKind, hide_all: bool) -> Answer {
    if hide_all && matches!(reply, ReplyKind::UserId { .. }) {
        return Answer::Error(ErrorToken::HiddenUser);
    }
    forward::relay(reply)
}

/// Makes a forward query and says what to reply: the other host's answer, relayed
/// ([`relayed_answer`]), or UNKNOWN-ERROR when it could not be asked or its reply
/// was not one (logged with `log`). Bounded by `timeout`. Under `ident serve
/// --user` this runs on the unprivileged side: the privileged helper only said
/// whom to ask, so it is never held by a host that does not answer.
pub fn forwarded(
    forward: &Forward,
    timeout: Duration,
    hide_all: bool,
    log: impl Fn(&str),
) -> Answer {
    let what = || {
        format!(
            "--forward: asking identd at {} about {}, {}",
            forward.identd, forward.server_port, forward.client_port
        )
    };
    if !forward.is_sound() {
        log(&format!("{}: not a query to make", what()));
        return Answer::Error(ErrorToken::UnknownError);
    }
    match forward.ask(timeout) {
        Ok(reply) => relayed_answer(&reply, hide_all),
        Err(e) => {
            log(&format!("{}: {e:#}", what()));
            Answer::Error(ErrorToken::UnknownError)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ident::lookup::TcpState;

    fn t(local: &str, remote: &str) -> Tuple {
        Tuple::new(local.parse().unwrap(), remote.parse().unwrap())
    }

    fn container(name: Option<&str>, inside: Option<u32>) -> netns::Found {
        netns::Found {
            pid: 1,
            outside_uid: 101000,
            inside_uid: inside,
            name: name.map(String::from),
            state: TcpState::FinWait2,
            inode: 7,
        }
    }

    #[test]
    fn a_container_user_is_named_from_the_container() {
        assert_eq!(
            container_answer(&container(Some("ircuser"), Some(1000)), false, false),
            Answer::User("ircuser".into())
        );
        assert_eq!(
            container_answer(&container(Some("ircuser"), Some(1000)), true, false),
            Answer::Uid(1000)
        );
        assert_eq!(
            container_answer(&container(None, Some(1000)), false, false),
            Answer::Uid(1000)
        );
        assert_eq!(
            container_answer(&container(Some("a b"), Some(1000)), false, false),
            Answer::Uid(1000)
        );
        assert_eq!(
            container_answer(&container(None, None), false, false),
            Answer::Uid(101000)
        );
        assert_eq!(
            container_answer(&container(Some("ircuser"), Some(1000)), false, true),
            Answer::Error(ErrorToken::HiddenUser)
        );
    }

    #[test]
    fn hide_all_hides_a_relayed_answer_only_when_it_names_someone() {
        let user = ReplyKind::UserId {
            os: "UNIX".into(),
            charset: None,
            user: "lanuser".into(),
        };
        assert_eq!(relayed_answer(&user, false), Answer::User("lanuser".into()));
        assert_eq!(
            relayed_answer(&user, true),
            Answer::Error(ErrorToken::HiddenUser)
        );
        assert_eq!(
            relayed_answer(&ReplyKind::Error("NO-USER".into()), true),
            Answer::Error(ErrorToken::NoUser)
        );
    }

    #[test]
    fn a_forward_that_is_no_query_to_make_is_not_made() {
        // Port 0 and the unspecified address would reach this host itself: refused
        // before any connection (a connection would be logged as a failure instead).
        for bad in ["0.0.0.0:113", "198.18.2.2:0", "[::ffff:198.18.2.2]:113"] {
            let forward = Forward {
                identd: bad.parse().unwrap(),
                server_port: 40000,
                client_port: 6667,
            };
            let logged = std::cell::RefCell::new(Vec::new());
            let got = forwarded(&forward, Duration::from_secs(1), false, |m| {
                logged.borrow_mut().push(m.to_string())
            });
            assert_eq!(got, Answer::Error(ErrorToken::UnknownError), "{bad}");
            assert_eq!(
                logged.into_inner(),
                vec![format!(
                    "--forward: asking identd at {forward} about 40000, 6667: not a query to make",
                    forward = forward.identd
                )]
            );
        }
    }

    #[test]
    fn without_nat_or_proxies_the_hook_says_no_user_and_reads_nothing() {
        let nat = NatConfig::default();
        let got = unowned(
            &nat,
            &t("198.19.0.1:1", "198.19.0.2:2"),
            false,
            false,
            |m| panic!("logged {m}"),
        );
        assert!(matches!(
            got,
            Unowned::Answer(Answer::Error(ErrorToken::NoUser))
        ));
    }
}
