//! `cargo run --release -p fundwatch-engine --example one_off_accounts -- RECORDS DAYS [keep]`:
//! feed the engine (default config, account traces on, as `replay --cases` runs it) a stream
//! in which four records in five name an account and a counterparty never seen before and
//! never seen again, spread evenly over DAYS, and print the process's resident memory, the
//! engine's own heap estimate and the dictionary sizes at every tenth of the stream. With
//! `keep`, dictionary eviction is off, to compare against. A measurement of bounded state
//! (issue 12, `benches/memory.sh`), not a test: it checks nothing.
//!
//! The records are made as they are fed, so the generator itself holds nothing.

use std::borrow::Cow;
use std::sync::Arc;

use fundwatch_engine::{Clock, Engine};
use fundwatch_record::{parse_rfc3339_ms, AccountType, Channel, Direction, Transaction};
use fundwatch_rules::Config;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DAY_MS: i64 = 86_400_000;

/// Resident set and its peak, KiB, from /proc (0 where there is none).
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parse = |i: usize, default: u64| args.get(i).and_then(|a| a.parse::<u64>().ok()).unwrap_or(default);
    let records = parse(0, 5_000_000);
    let days = parse(1, 200).max(1);
    let keep = args.get(2).is_some_and(|a| a == "keep");

    let mut engine = Engine::new(Arc::new(Config::default()));
    engine.set_clock(Clock::Fixed(0));
    engine.enable_traces(true);
    engine.set_dictionary_eviction(!keep);

    let t0 = parse_rfc3339_ms("2026-01-01T00:00:00+08:00").unwrap_or(0);
    let step = (days as i64 * DAY_MS) / records.max(1) as i64;
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let (mut alerts, mut traces) = (Vec::new(), Vec::new());
    let started = std::time::Instant::now();
    println!(
        "{records} records over {days} days, dictionary eviction {}",
        if keep { "off" } else { "on" }
    );
    println!(
        "{:>6} {:>11} {:>9} {:>9} {:>11} {:>10} {:>11} {:>9} {:>8}",
        "done", "records", "RSS MiB", "peak MiB", "engine MiB", "rows held", "accounts", "cps", "evicted"
    );
    for n in 0..records {
        // One record in five is one of 10,000 regular accounts paying one of 40,000 regular
        // counterparties; the rest are one-off names on both sides.
        let (account, counterparty) = if rng.gen_bool(0.2) {
            (
                format!("6222{:012}", rng.gen_range(0..10_000u64)),
                format!("6228{:012}", rng.gen_range(0..40_000u64)),
            )
        } else {
            (format!("6217{n:012}"), format!("6230{n:012}"))
        };
        let tx = Transaction {
            tx_id: Cow::Owned(format!("TX{n:012}")),
            ts_ms: t0 + n as i64 * step,
            account: Cow::Owned(account),
            counterparty: Cow::Owned(counterparty),
            direction: if rng.gen_bool(0.5) {
                Direction::In
            } else {
                Direction::Out
            },
            amount: rng.gen_range(1_000..300_000),
            is_cny: true,
            currency: Cow::Borrowed("CNY"),
            channel: Channel::Transfer,
            memo: Cow::Borrowed(""),
            account_type: AccountType::Personal,
            industry: Cow::Borrowed(""),
            region: Cow::Borrowed("330106"),
            cross_border: false,
        };
        engine.process(&tx, &mut alerts);
        engine.drain_traces(&mut traces);
        alerts.clear();
        traces.clear();
        if (n + 1) % (records / 10).max(1) == 0 || n + 1 == records {
            let (rss, peak) = rss_kib();
            let (rows, bytes) = engine.state_size();
            let d = engine.dictionary_stats();
            println!(
                "{:>5}% {:>11} {:>9.0} {:>9.0} {:>11.0} {:>10} {:>11} {:>9} {:>8}",
                (n + 1) * 100 / records,
                n + 1,
                rss as f64 / 1024.0,
                peak as f64 / 1024.0,
                bytes as f64 / (1024.0 * 1024.0),
                rows,
                d.accounts,
                d.counterparties,
                d.accounts_evicted + d.counterparties_evicted
            );
        }
    }
    println!(
        "{:.1} s, {:.0} records/s",
        started.elapsed().as_secs_f64(),
        records as f64 / started.elapsed().as_secs_f64()
    );
}
