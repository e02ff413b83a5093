//! `makedirs -m`'s mode parser: two bytes of umask, then the mode text.
#![no_main]

#[path = "../../tests/props/checks.rs"]
#[allow(dead_code)]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [a, b, spec @ ..] = data else { return };
    let Ok(spec) = std::str::from_utf8(spec) else {
        return;
    };
    checks::mode(spec, u32::from(u16::from_le_bytes([*a, *b])));
});
