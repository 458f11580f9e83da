//! The committed fixtures are exactly what `fundwatch generate` makes with the options
//! recorded here, so anyone can rebuild them (and a change to the generator that alters them
//! is noticed and the fixtures regenerated on purpose).

use std::path::Path;

use fundwatch_generate::{generate, GenerateOptions};

fn check(name: &str, opts: GenerateOptions) {
    let mut out = Vec::new();
    let mut labels = Vec::new();
    generate(&opts, &mut out, &mut labels).expect("generate");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let want = std::fs::read(dir.join(format!("{name}.jsonl"))).unwrap();
    let want_labels = std::fs::read(dir.join(format!("{name}.labels.jsonl"))).unwrap();
    assert!(
        out == want,
        "{name}.jsonl differs from the generator's output; regenerate it (README, Fixtures)"
    );
    assert!(
        labels == want_labels,
        "{name}.labels.jsonl differs from the generator's output"
    );
}

#[test]
fn fixtures_are_reproducible_from_the_generator() {
    // fundwatch generate --records 20000 --seed 77 --days 90 --start 2026-06-01
    check("stream-20k", GenerateOptions::stream_20k());
    // fundwatch generate --records 50000 --seed 2026 --days 120
    check(
        "stream-50k",
        GenerateOptions {
            records: 50_000,
            seed: 2026,
            days: 120,
            ..Default::default()
        },
    );
}
