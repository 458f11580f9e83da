//! How each labelled typology scored: for every rule, the best score each labelled account
//! reached (alerts and near misses alike), grouped by typology, next to the account-level
//! evaluation. Shows how far positives sit above the confirmation line and look-alikes below
//! it, which a precision/recall table hides.
//!
//! `cargo run --release -p fundwatch-backtest --example typology_scores -- STREAM LABELS [CONFIG] [RULE]`
use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use fundwatch_backtest::DecodedStream;
use fundwatch_engine::{Clock, Engine};
use fundwatch_generate::labels::Labels;
use fundwatch_rules::{Config, RuleId};

/// One labelled account's best hit: (score, alerted, account, score parts or evidence).
type Scored<'a> = (f64, bool, &'a str, &'a str);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(stream), Some(labels)) = (args.get(1), args.get(2)) else {
        return Err("usage: typology_scores STREAM LABELS [CONFIG|-] [RULE]".into());
    };
    let cfg = match args.get(3).filter(|s| *s != "-") {
        Some(p) => Config::from_toml(&std::fs::read_to_string(p)?)?,
        None => Config::default(),
    };
    let only = args.get(4).map(String::as_str);
    let labels = Labels::read(BufReader::new(File::open(labels)?))?;
    let stream = DecodedStream::load(Path::new(stream))?;
    let mut engine = Engine::new(Arc::new(cfg));
    engine.set_clock(Clock::Fixed(0));
    engine.keep_near_misses(true);
    let mut alerts = Vec::new();
    stream.for_each(|tx| engine.process(tx, &mut alerts));
    engine.flush(&mut alerts);
    let near = engine.take_near_misses();
    println!(
        "{} records, {} alerts, {} near misses",
        stream.len(),
        alerts.len(),
        near.len()
    );
    println!(
        "{}",
        labels.evaluate(alerts.iter().map(|a| (a.rule.as_str(), a.account.as_str())))
    );

    // (rule, account) -> (best score, alerted, breakdown of the best)
    let mut best: BTreeMap<(&str, &str), (f64, bool, String)> = BTreeMap::new();
    for (a, alerted) in alerts.iter().map(|a| (a, true)).chain(near.iter().map(|a| (a, false))) {
        let e = best
            .entry((a.rule.as_str(), a.account.as_str()))
            .or_insert((f64::MIN, false, String::new()));
        if (alerted && !e.1) || (alerted == e.1 && a.score > e.0) {
            // VERBOSE=3 shows the whole evidence but the sampled tx_ids.
            let bd = if std::env::var("VERBOSE").is_ok_and(|v| v == "3") {
                let mut ev = a.evidence.clone();
                ev.retain(|k, _| !k.ends_with("tx_ids") && k != "event_starts");
                serde_json::Value::Object(ev).to_string()
            } else {
                a.evidence
                    .get("score_breakdown")
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            };
            *e = (a.score, alerted, bd);
        }
    }
    // VERBOSE=1: misses and false alerts with their score parts; VERBOSE=2: every account.
    let verbose = std::env::var("VERBOSE").map_or(0, |v| v.parse().unwrap_or(1));
    for rule in RuleId::ALL.iter().map(|r| r.as_str()).filter(|r| *r != "large_value") {
        if only.is_some_and(|o| o != rule) {
            continue;
        }
        println!("== {rule}");
        let mut groups: BTreeMap<(bool, &str), Vec<Scored<'_>>> = BTreeMap::new();
        for l in &labels.accounts {
            let pos = l.rules.iter().any(|r| r == rule);
            let got = best.get(&(rule, l.account.as_str()));
            if !pos && got.is_none() {
                continue;
            }
            let (s, al, bd) = got.map_or((f64::NAN, false, ""), |(s, a, b)| (*s, *a, b.as_str()));
            groups
                .entry((!pos, l.typology.as_str()))
                .or_default()
                .push((s, al, l.account.as_str(), bd));
        }
        for ((neg, typ), xs) in &groups {
            let mut sc: Vec<f64> = xs.iter().map(|x| x.0).filter(|s| !s.is_nan()).collect();
            sc.sort_by(f64::total_cmp);
            let alerted = xs.iter().filter(|x| x.1).count();
            let q = |f: f64| {
                sc.get(((sc.len() as f64 - 1.0) * f) as usize)
                    .copied()
                    .unwrap_or(f64::NAN)
            };
            println!(
                "  {} {typ:<28} n={:<4} alerted={:<4} scored={:<4} min/med/max {:>5.1} {:>5.1} {:>5.1}",
                if *neg { "neg" } else { "POS" },
                xs.len(),
                alerted,
                sc.len(),
                q(0.0),
                q(0.5),
                q(1.0)
            );
            if verbose > 0 {
                for (s, al, acct, bd) in xs {
                    // Misses of positives and alerts of look-alikes, with what drove them.
                    if *neg == *al || verbose > 1 {
                        println!("      {acct} {s:.1} {bd}");
                    }
                }
            }
        }
        let unlabelled: Vec<f64> = best
            .iter()
            .filter(|((r, a), v)| *r == rule && v.1 && !labels.accounts.iter().any(|l| l.account == *a))
            .map(|(_, v)| v.0)
            .collect();
        if !unlabelled.is_empty() {
            println!(
                "  neg (unlabelled background) alerted={} {:?}",
                unlabelled.len(),
                unlabelled
            );
        }
        if verbose > 0 {
            for ((_, a), (s, _, bd)) in best
                .iter()
                .filter(|((r, a), v)| *r == rule && v.1 && !labels.accounts.iter().any(|l| l.account == *a))
            {
                println!("      {a} {s:.1} {bd}");
            }
        }
    }
    Ok(())
}
