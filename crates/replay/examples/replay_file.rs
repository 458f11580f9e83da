//! `cargo run --release -p fundwatch-replay --example replay_file -- INPUT [CONFIG|-] [ALERTS] [DEAD_LETTERS]`:
//! replay a stream with a config file (`-` or none: the built-in one; `[input]` included) and
//! print the summary; alerts and dead letters go to the files given. Measures replay, the
//! mapped decoder included, without building the CLI.

use std::path::PathBuf;
use std::sync::Arc;

use fundwatch_engine::Clock;
use fundwatch_replay::{replay, ReplayOptions};
use fundwatch_rules::Config;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(input) = args.first() else {
        eprintln!("usage: replay_file INPUT [CONFIG|-] [ALERTS] [DEAD_LETTERS]");
        std::process::exit(2);
    };
    let config = match args.get(1).filter(|p| p.as_str() != "-") {
        Some(path) => match Config::load(path.as_ref()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        },
        None => Config::default(),
    };
    let opts = ReplayOptions {
        input: PathBuf::from(input),
        alerts: PathBuf::from(args.get(2).map_or("/dev/null", String::as_str)),
        dead_letter: args.get(3).map(PathBuf::from),
        near_misses: None,
        config: Arc::new(config),
        cases: None,
        traces: None,
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
