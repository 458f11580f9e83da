//! Generate a stream to files and print the summary and the wall time:
//! `cargo run --release -p fundwatch-generate --example gen -- RECORDS [SEED] [OUT_DIR] [DAYS] [START]`
use std::fs::File;
use std::time::Instant;

use fundwatch_generate::{generate, GenerateOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let records = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(1_000_000);
    let seed = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let dir = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| std::env::temp_dir().display().to_string());
    let days = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(120);
    let start = args.get(5).cloned().unwrap_or_else(|| "2026-01-01".to_string());
    let opts = GenerateOptions {
        records,
        seed,
        days,
        start,
        ..GenerateOptions::default()
    };
    let out = File::create(format!("{dir}/stream.jsonl"))?;
    let labels = File::create(format!("{dir}/labels.jsonl"))?;
    let t = Instant::now();
    let s = generate(&opts, out, labels)?;
    let secs = t.elapsed().as_secs_f64();
    println!("{s:#?}");
    println!("{:.2} s, {:.0} records/s", secs, s.records as f64 / secs);
    Ok(())
}
