//! The names a config file uses, looked up: users, hosts and services. The one
//! place in this module that asks the system; everything else takes a [`Names`],
//! so tests give it a table.

use std::ffi::CString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

/// How a config's names are looked up, as oidentd looks them up.
pub trait Names {
    /// getpwnam(3): the uid of the user with this login name. Used for `user NAME`
    /// blocks (at load) and for the check that a spoofed reply names no other user
    /// (at each query).
    fn uid_of(&self, user: &str) -> Option<u32>;
    /// What oidentd takes a host to be: the first address getaddrinfo(3) gives
    /// with no hints. Called only for text that is no literal address.
    fn address_of(&self, host: &str) -> Option<IpAddr>;
    /// getservbyname(3) for tcp: a service name's port.
    fn port_of(&self, service: &str) -> Option<u16>;
}

/// The host's own databases: passwd through NSS, hosts through getaddrinfo
/// (DNS included: a host name in a config costs a lookup when that file is read,
/// at load for the system file and at each query for a user's), services(5).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemNames;

/// getservbyname returns a pointer to static storage: one caller at a time.
static SERVICES: Mutex<()> = Mutex::new(());

impl Names for SystemNames {
    fn uid_of(&self, user: &str) -> Option<u32> {
        match nix::unistd::User::from_name(user) {
            Ok(Some(u)) => Some(u.uid.as_raw()),
            _ => None,
        }
    }

    fn address_of(&self, host: &str) -> Option<IpAddr> {
        let host = CString::new(host).ok()?;
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        // SAFETY: `host` is a valid C string; null hints and service are allowed;
        // `res` receives a list that is freed below and not used after.
        let rc = unsafe {
            libc::getaddrinfo(host.as_ptr(), std::ptr::null(), std::ptr::null(), &mut res)
        };
        if rc != 0 || res.is_null() {
            return None;
        }
        // SAFETY: getaddrinfo succeeded, so `res` points to a valid addrinfo whose
        // ai_addr, when non-null, holds a sockaddr of the family it names and of
        // ai_addrlen bytes; the list is freed once, after the copy out.
        unsafe {
            let ai = &*res;
            let sa = ai.ai_addr;
            let addr = if sa.is_null() {
                None
            } else {
                match i32::from((*sa).sa_family) {
                    libc::AF_INET if ai.ai_addrlen as usize >= size_of::<libc::sockaddr_in>() => {
                        let sin = &*(sa as *const libc::sockaddr_in);
                        Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                            sin.sin_addr.s_addr,
                        ))))
                    }
                    libc::AF_INET6 if ai.ai_addrlen as usize >= size_of::<libc::sockaddr_in6>() => {
                        let sin6 = &*(sa as *const libc::sockaddr_in6);
                        Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
                    }
                    _ => None,
                }
            };
            libc::freeaddrinfo(res);
            addr
        }
    }

    fn port_of(&self, service: &str) -> Option<u16> {
        let name = CString::new(service).ok()?;
        let _one_at_a_time = SERVICES.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: both arguments are valid C strings; the result, when non-null,
        // points to a servent in static storage that the lock keeps other callers
        // of this function from overwriting until s_port is copied out.
        let port = unsafe {
            let ent = libc::getservbyname(name.as_ptr(), c"tcp".as_ptr());
            if ent.is_null() {
                return None;
            }
            (*ent).s_port
        };
        // s_port holds the port in network byte order in its low 16 bits.
        Some(u16::from_be(port as u16))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_databases_answer_as_oidentd_asks_them() {
        let names = SystemNames;
        assert_eq!(names.uid_of("root"), Some(0));
        assert_eq!(names.uid_of("no-such-user-racefree"), None);
        // inet_aton's short forms, which getaddrinfo reads and std does not.
        assert_eq!(
            names.address_of("127.1"),
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)))
        );
        assert_eq!(names.port_of("no-such-service-racefree"), None);
    }
}
