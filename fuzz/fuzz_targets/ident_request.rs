//! `ident serve`'s request parser on any bytes (tests/props/checks.rs, `request`).
#![no_main]

#[path = "../../tests/props/checks.rs"]
#[allow(dead_code)]
mod checks;

libfuzzer_sys::fuzz_target!(|line: &[u8]| checks::request(line));
