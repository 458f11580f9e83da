//! Bounded state: names leave the dictionaries and their ids are reused, and nothing the
//! engine emits changes (alerts and traces identical with and without eviction, and after a
//! checkpoint taken past evictions); the engine's heap levels off on endless one-off accounts.

mod common;

use std::sync::Arc;

use common::*;
use fundwatch_engine::{AccountTrace, Alert, Clock, Engine};
use fundwatch_record::Transaction;
use fundwatch_rules::Config;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const T0: &str = "2026-01-05T00:00:00+08:00";

fn config() -> Config {
    Config::from_toml(
        r#"
[engine]
max_history = "30d"
[rules.periodic_batch_small_out]
horizon = "30d"
min_period = "1d"
cooldown = "3d"
[rules.scatter_in_concentrated_out]
cooldown = "3d"
[rules.rapid_pass_through]
cooldown = "3d"
horizon = "4d"
[rules.structuring]
cooldown = "3d"
"#,
    )
    .expect("test config")
}

/// One-off accounts and counterparties, a few repeat accounts, and planted patterns, over
/// `days` (much longer than `max_history`).
fn stream(seed: u64, days: i64, per_day: usize) -> Vec<Transaction<'static>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut s = Stream::default();
    let t0 = ts(T0);
    let mut n = 0u64;
    for d in 0..days {
        for _ in 0..per_day {
            n += 1;
            let (acct, cp) = if rng.gen_bool(0.2) {
                (
                    format!("R{:03}", rng.gen_range(0..50)),
                    format!("RC{:03}", rng.gen_range(0..200)),
                )
            } else {
                (format!("ONE{n:08}"), format!("CPONE{n:08}"))
            };
            let t = t0 + d * DAY + rng.gen_range(0..DAY);
            let amount = yuan(rng.gen_range(10..3_000));
            if rng.gen_bool(0.5) {
                s.inflow(t, &acct, &cp, amount);
            } else {
                s.outflow(t, &acct, &cp, amount);
            }
        }
        if d % 5 == 0 {
            // A collection: many payers, then one transfer on; and a pass-through cycle run.
            let acct = format!("SC{d}");
            let mut total = 0;
            for i in 0..20 {
                let amount = yuan([10_000, 20_000, 50_000][i % 3]);
                total += amount;
                let t = s.inflow(t0 + d * DAY + i as i64 * HOUR, &acct, &format!("{acct}-INV{i}"), amount);
                memo(t, "投资款");
            }
            s.outflow(t0 + (d + 2) * DAY, &acct, &format!("{acct}-BOSS"), total * 9 / 10);
            let mule = format!("MULE{d}");
            for c in 0..6 {
                let t = t0 + (d * 2 + c) * DAY / 2 + 3 * HOUR;
                s.inflow(t, &mule, &format!("{mule}-SRC{c}"), yuan(300_000));
                s.outflow(t + 40 * MIN, &mule, &format!("{mule}-SINK"), yuan(299_000));
            }
        }
    }
    // Arrival order a little shuffled (within the allowed lateness).
    let mut txs = s.sorted();
    for i in 1..txs.len() {
        if rng.gen_bool(0.1) && txs[i].ts_ms - txs[i - 1].ts_ms < 5 * MIN {
            txs.swap(i - 1, i);
        }
    }
    txs
}

fn engine(evict: bool) -> Engine {
    let mut e = Engine::with_chunk_sizes(Arc::new(config()), 256, 64);
    e.set_clock(Clock::Fixed(0));
    e.enable_traces(true);
    e.set_dictionary_eviction(evict);
    e
}

fn feed(e: &mut Engine, txs: &[Transaction<'static>], alerts: &mut Vec<Alert>, traces: &mut Vec<AccountTrace>) {
    for tx in txs {
        e.process(tx, alerts);
        e.drain_traces(traces);
    }
}

#[test]
fn eviction_and_reuse_change_nothing_emitted() {
    let txs = stream(11, 150, 100);
    let (mut a_off, mut t_off) = (Vec::new(), Vec::new());
    let mut off = engine(false);
    feed(&mut off, &txs, &mut a_off, &mut t_off);
    off.flush(&mut a_off);
    off.drain_traces(&mut t_off);

    let (mut a_on, mut t_on) = (Vec::new(), Vec::new());
    let mut on = engine(true);
    // Half way, a checkpoint (taken past evictions) replaces the engine.
    let half = txs.len() / 2;
    feed(&mut on, &txs[..half], &mut a_on, &mut t_on);
    let mid = on.dictionary_stats();
    assert!(mid.accounts_evicted > 0, "{mid:?}");
    let cp = on.checkpoint(&|_| false);
    let objects: std::collections::HashMap<String, Vec<u8>> = cp.objects.into_iter().collect();
    let mut on = Engine::restore(Arc::new(config()), &cp.head, &|n| objects.get(n).cloned()).expect("restores");
    on.set_clock(Clock::Fixed(0));
    on.enable_traces(true);
    assert_eq!(on.dictionary_stats(), mid);
    feed(&mut on, &txs[half..], &mut a_on, &mut t_on);
    on.flush(&mut a_on);
    on.drain_traces(&mut t_on);

    assert!(a_off.len() > 10, "{} alerts", a_off.len());
    assert!(!t_off.is_empty());
    assert_eq!(a_on, a_off);
    assert_eq!(t_on, t_off);
    let d = on.dictionary_stats();
    let all = off.dictionary_stats();
    // Ids were reused (more evicted than free now), and the dictionary stayed far smaller.
    assert!(d.accounts_evicted > d.accounts_free + 1_000, "{d:?}");
    assert!(d.counterparties_evicted > d.counterparties_free + 1_000, "{d:?}");
    assert!(d.accounts + d.accounts_free < all.accounts / 3, "{d:?} against {all:?}");
    assert_eq!(all.accounts_evicted, 0);
}

#[test]
fn heap_levels_off_on_one_off_accounts() {
    let mut e = engine(true);
    let t0 = ts(T0);
    let (mut alerts, mut traces) = (Vec::new(), Vec::new());
    let days = 160;
    let per_day = 800;
    let mut samples = Vec::new();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for d in 0..days {
        let mut s = Stream::default();
        for i in 0..per_day {
            let t = t0 + d * DAY + i * (DAY / per_day);
            let n = d * per_day + i;
            s.inflow(
                t,
                &format!("ONE{n:09}"),
                &format!("CP{n:09}"),
                yuan(rng.gen_range(10..3_000)),
            );
        }
        feed(&mut e, &s.sorted(), &mut alerts, &mut traces);
        samples.push(e.state_size().1);
    }
    let q = samples.len() / 4;
    let first = *samples[..q].iter().max().unwrap_or(&0);
    let last = *samples[3 * q..].iter().max().unwrap_or(&0);
    // 30 days of history out of 160: without eviction the last quarter would be ~3× the first.
    assert!(
        last * 10 <= first * 13,
        "heap {first} bytes in the first quarter, {last} in the last: {samples:?}"
    );
    assert!(e.dictionary_stats().accounts < 60 * per_day as u64);
}
