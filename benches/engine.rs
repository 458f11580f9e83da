//! Throughput of the three stages over the committed fixture stream: JSON decoding alone,
//! the engine alone (pre-decoded records), and both (what `replay` does per record).
//!
//! `cargo bench --bench engine`; pin to one core with `taskset -c 0 cargo bench …` to match
//! the replay benchmark in the README.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fundwatch_engine::{Clock, Engine};
use fundwatch_record::{decode_json, Transaction};
use fundwatch_rules::Config;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/stream-50k.jsonl");

fn lines(data: &[u8]) -> Vec<&[u8]> {
    data.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect()
}

fn bench(c: &mut Criterion) {
    let data = std::fs::read(FIXTURE).expect("fixture stream (run from the repository root)");
    let lines = lines(&data);
    let decoded: Vec<Transaction<'static>> = lines
        .iter()
        .filter_map(|l| decode_json(l).ok())
        .map(Transaction::into_owned)
        .collect();
    let config = Arc::new(Config::default());

    let mut g = c.benchmark_group("fixture-50k");
    g.sample_size(10);
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("decode_only", |b| {
        b.iter(|| {
            let mut ok = 0u64;
            for l in &lines {
                ok += u64::from(decode_json(l).is_ok());
            }
            ok
        })
    });
    g.throughput(Throughput::Elements(decoded.len() as u64));
    g.bench_function("engine_only", |b| {
        b.iter_batched(
            || {
                let mut e = Engine::new(config.clone());
                e.set_clock(Clock::Fixed(0));
                e
            },
            |mut e| {
                let mut out = Vec::new();
                for t in &decoded {
                    e.process(t, &mut out);
                }
                e.flush(&mut out);
                out.len()
            },
            BatchSize::LargeInput,
        )
    });
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("decode_and_engine", |b| {
        b.iter_batched(
            || {
                let mut e = Engine::new(config.clone());
                e.set_clock(Clock::Fixed(0));
                e
            },
            |mut e| {
                let mut out = Vec::new();
                for l in &lines {
                    if let Ok(t) = decode_json(l) {
                        e.process(&t, &mut out);
                    }
                }
                e.flush(&mut out);
                out.len()
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
