//! oidentd.conf: the bytes up to the first NUL as a system file, the rest as a
//! user's file. Each parses or says where it does not; what parses prints back to
//! itself; decisions on the two keep oidentd's rules (`checks::oidentd_conf`).
#![no_main]

#[path = "../../tests/props/checks.rs"]
#[allow(dead_code)]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (system, user) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    checks::oidentd_conf(system, user);
});
