//! The fuzz targets of `fuzz/` (see `tests/fuzz/targets.rs`) on stable: a
//! fixed-seed driver feeding each target random inputs (lengths and bytes
//! biased towards the boundaries), 100,000 or more cases in all, repeatable
//! run to run. The long, coverage-guided runs are `cargo +nightly fuzz run
//! <target>` in `fuzz/`.

#[path = "fuzz/targets.rs"]
mod targets;

use rand::{Rng, SeedableRng};

/// Cases per target.
const CASES: [(&str, u32); 4] = [
    ("orders", 40_000),
    ("ring", 30_000),
    ("store", 20_000),
    ("names", 30_000),
];

/// An input for `target`: random bytes, some turned into the characters
/// and values that the parsers care about.
fn input(target: &str, rng: &mut impl Rng) -> Vec<u8> {
    let len = match rng.gen_range(0..10) {
        0 => rng.gen_range(0..4),
        1..=6 => rng.gen_range(0..300),
        _ => rng.gen_range(0..5000),
    };
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    let alphabet: &[u8] = match target {
        "store" => b"/ab.-_@0/..//.tmp-x",
        "names" => b"aZ09_-/ .\n\xc3\xa9memfd 1234567890",
        _ => &[0, 1, 2, 10, 11, 12, 16, 20, 21, 0xff, 0x7f, 0x80],
    };
    for b in v.iter_mut() {
        if rng.gen_bool(0.7) {
            *b = alphabet[rng.gen_range(0..alphabet.len())];
        }
    }
    if target == "names" && rng.gen_bool(0.3) {
        // Well-formed share text, so that the round trip is exercised.
        let t = format!(
            "memfd {} {} {} {}\n",
            rng.gen::<u32>(),
            rng.gen::<u16>(),
            rng.gen::<u64>(),
            rng.gen_range(0..600)
        );
        v = std::iter::once(2u8).chain(t.bytes()).collect();
    }
    v
}

#[test]
fn fuzz_targets_seeded() {
    let mut total = 0u32;
    for (name, cases) in CASES {
        let (_, target) = targets::TARGETS
            .iter()
            .find(|(n, _)| *n == name)
            .expect("target");
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed ^ name.len() as u64);
        for i in 0..cases {
            let data = input(name, &mut rng);
            let r = std::panic::catch_unwind(|| target(&data));
            assert!(r.is_ok(), "target {name}, case {i}: input {data:?}");
        }
        total += cases;
    }
    assert!(total >= 100_000);
    eprintln!("fuzz driver: {total} cases");
}
