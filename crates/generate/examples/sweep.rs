//! Robustness sweep: many small streams over odd window lengths and seeds (debug build checks
//! overflow and empty ranges), reporting record counts outside ±5 %.
use fundwatch_generate::{generate, GenerateOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let records: Vec<u64> = match args.get(1) {
        Some(s) => s.split(',').filter_map(|x| x.parse().ok()).collect(),
        None => vec![10_000, 20_000],
    };
    let seeds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(12);
    let days = [
        21u32, 22, 23, 25, 28, 29, 30, 31, 35, 40, 45, 59, 60, 61, 75, 90, 91, 120, 180, 365, 400,
    ];
    let starts = ["2026-01-01", "2024-02-28", "2025-12-31", "2026-01-31", "2023-07-15"];
    let (mut n, mut off, mut worst) = (0, 0, 0.0f64);
    for seed in 0..seeds {
        for (i, &d) in days.iter().enumerate() {
            let records = records[(seed as usize + i) % records.len()];
            let o = GenerateOptions {
                records,
                seed,
                days: d,
                start: starts[(seed as usize + i) % starts.len()].to_string(),
                disorder_secs: [0, 1, 240, 3600][(seed as usize) % 4],
                disorder_rate: [0.0, 0.02, 0.5, 1.0][i % 4],
                malformed_rate: [0.0, 0.0005, 0.1, 1.0][(seed as usize + 1) % 4],
                ..Default::default()
            };
            match generate(&o, std::io::sink(), std::io::sink()) {
                Ok(s) => {
                    let dev = s.records as f64 / records as f64 - 1.0;
                    worst = worst.max(dev.abs());
                    if dev.abs() > 0.05 {
                        off += 1;
                        println!(
                            "count off: records={records} days={d} seed={seed} -> {} ({:+.1}%)",
                            s.records,
                            dev * 100.0
                        );
                    }
                    n += 1;
                }
                Err(e) => println!("error {o:?}: {e}"),
            }
        }
    }
    println!("{n} runs ok, {off} outside ±5 %, worst {:.1} %", worst * 100.0);
}
