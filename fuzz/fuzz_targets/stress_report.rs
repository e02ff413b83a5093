//! `stress report`'s loader on any bytes: a report header, then a NUL, then the
//! rounds stream (`racefree::stress::report::load_report`). Whatever the input, an
//! error or a count, never a panic, an abort or an allocation the input did not pay for.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (header, rounds) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let mut rounds = rounds;
    let _ = racefree::stress::report::load_report(header, &mut rounds);
});
