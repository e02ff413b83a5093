//! `ident serve`'s line framer: the first byte says how many of the next bytes
//! give the sizes of the reads the stream (the rest) arrives in.
#![no_main]

#[path = "../../tests/props/checks.rs"]
#[allow(dead_code)]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 8).min(rest.len());
    let (cuts, stream) = rest.split_at(n);
    let cuts: Vec<usize> = cuts.iter().map(|&c| usize::from(c % 16) + 1).collect();
    checks::framer(stream, if cuts.is_empty() { &[usize::MAX] } else { &cuts });
});
