//! `cargo run --release -p fundwatch-replay --example replay_cases -- INPUT [CASES]`: replay a
//! stream with the default config, with the case stage when CASES is given, and print the
//! summary. A quick way to measure the linking stage without building the whole CLI.

use std::path::PathBuf;
use std::sync::Arc;

use fundwatch_engine::Clock;
use fundwatch_replay::{replay, ReplayOptions};
use fundwatch_rules::Config;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(input) = args.first() else {
        eprintln!("usage: replay_cases INPUT [CASES]");
        std::process::exit(2);
    };
    let opts = ReplayOptions {
        input: PathBuf::from(input),
        alerts: PathBuf::from("/dev/null"),
        dead_letter: None,
        near_misses: None,
        config: Arc::new(Config::default()),
        cases: args.get(1).map(PathBuf::from),
        traces: args.get(2).map(PathBuf::from),
        route_dir: None,
        progress: false,
        clock: Clock::Fixed(0),
    };
    match replay(&opts) {
        Ok(s) => println!("{s}"),
        Err(e) => {
            eprintln!("replay failed: {e}");
            std::process::exit(1);
        }
    }
}
