//! The targets on stable: a fixed-seed driver feeding a target random
//! inputs (lengths and bytes biased towards the boundaries), repeatable
//! run to run. The long, coverage-guided runs are `cargo +nightly fuzz run
//! <target>` in `fuzz/`.

use rand::{Rng, SeedableRng};

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

/// Run `target` (named `name`, as `fuzz_targets/<name>.rs`) on `cases`
/// inputs from the seed of its name; panics naming the first input that
/// made the target panic. Returns `cases`.
pub fn run(name: &str, cases: u32, target: fn(&[u8])) -> u32 {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed ^ name.len() as u64);
    for i in 0..cases {
        let data = input(name, &mut rng);
        let r = std::panic::catch_unwind(|| target(&data));
        assert!(r.is_ok(), "target {name}, case {i}: input {data:?}");
    }
    eprintln!("fuzz {name}: {cases} cases");
    cases
}
