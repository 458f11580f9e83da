//! `cargo run --release -p fundwatch-backtest --example case_check -- RECORDS SEED DIR`:
//! generate an evasive stream, replay it with the case stage and score the cases against the
//! generator's truth (what `fundwatch generate`, `replay --cases` and `score-cases` do, without
//! building the whole CLI).

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;

use fundwatch_backtest::cases::{read_cases, score_cases};
use fundwatch_engine::Clock;
use fundwatch_generate::labels::Labels;
use fundwatch_generate::{generate, GenerateOptions, Profile};
use fundwatch_replay::{replay, ReplayOptions};
use fundwatch_rules::Config;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let records: u64 = args.first().map_or(Ok(1_000_000), |s| s.parse())?;
    let seed: u64 = args.get(1).map_or(Ok(5), |s| s.parse())?;
    let dir = PathBuf::from(args.get(2).map_or("/tmp/case-check", String::as_str));
    std::fs::create_dir_all(&dir)?;
    let (stream, labels, cases) = (
        dir.join("stream.jsonl"),
        dir.join("labels.jsonl"),
        dir.join("cases.jsonl"),
    );
    let opts = GenerateOptions {
        profile: Profile::Evasive,
        records,
        seed,
        ..GenerateOptions::default()
    };
    generate(&opts, File::create(&stream)?, File::create(&labels)?)?;
    let summary = replay(&ReplayOptions {
        input: stream,
        alerts: dir.join("alerts.jsonl"),
        dead_letter: None,
        near_misses: None,
        config: Arc::new(Config::default()),
        cases: Some(cases.clone()),
        traces: None,
        route_dir: None,
        progress: false,
        clock: Clock::Fixed(0),
    })?;
    println!("{summary}");
    let labels = Labels::read(BufReader::new(File::open(&labels)?))?;
    let cases = read_cases(BufReader::new(File::open(&cases)?))?;
    let score = score_cases(&labels, &cases);
    let mut v = serde_json::to_value(&score)?;
    if let Some(m) = v.as_object_mut() {
        m.remove("details");
    }
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
