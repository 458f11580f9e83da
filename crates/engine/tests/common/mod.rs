//! Hand-built streams for engine tests.
#![allow(dead_code)]

use std::borrow::Cow;
use std::sync::Arc;

use fundwatch_engine::{Alert, Clock, Engine};
use fundwatch_record::{parse_rfc3339_ms, AccountType, Channel, Direction, Transaction};
use fundwatch_rules::Config;

pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 24 * HOUR;
pub const MIN: i64 = 60_000;

pub fn ts(s: &str) -> i64 {
    parse_rfc3339_ms(s).expect("test timestamp")
}

pub fn yuan(y: i64) -> i64 {
    y * 100
}

#[derive(Default)]
pub struct Stream {
    pub txs: Vec<Transaction<'static>>,
}

impl Stream {
    pub fn add(
        &mut self,
        ts_ms: i64,
        account: &str,
        counterparty: &str,
        direction: Direction,
        amount: i64,
    ) -> &mut Transaction<'static> {
        let n = self.txs.len();
        self.txs.push(Transaction {
            tx_id: Cow::Owned(format!("T{n:07}")),
            ts_ms,
            account: Cow::Owned(account.to_owned()),
            counterparty: Cow::Owned(counterparty.to_owned()),
            direction,
            amount,
            is_cny: true,
            currency: Cow::Borrowed("CNY"),
            channel: Channel::Transfer,
            memo: Cow::Borrowed(""),
            account_type: AccountType::Personal,
            industry: Cow::Borrowed(""),
            region: Cow::Borrowed("330106"),
            cross_border: false,
        });
        self.txs.last_mut().expect("just pushed")
    }

    pub fn inflow(&mut self, ts_ms: i64, account: &str, payer: &str, amount: i64) -> &mut Transaction<'static> {
        self.add(ts_ms, account, payer, Direction::In, amount)
    }

    pub fn outflow(&mut self, ts_ms: i64, account: &str, payee: &str, amount: i64) -> &mut Transaction<'static> {
        self.add(ts_ms, account, payee, Direction::Out, amount)
    }

    /// Records in event-time order (tests build them in any order).
    pub fn sorted(&self) -> Vec<Transaction<'static>> {
        let mut v = self.txs.clone();
        v.sort_by_key(|t| t.ts_ms);
        v
    }
}

pub fn memo(t: &mut Transaction<'static>, m: &str) {
    t.memo = Cow::Owned(m.to_owned());
}

pub fn run_with(cfg: Config, txs: &[Transaction<'static>]) -> (Vec<Alert>, Engine) {
    let mut e = Engine::new(Arc::new(cfg));
    e.set_clock(Clock::Fixed(0));
    let mut out = Vec::new();
    for t in txs {
        e.process(t, &mut out);
    }
    e.flush(&mut out);
    (out, e)
}

pub fn run(txs: &[Transaction<'static>]) -> Vec<Alert> {
    run_with(Config::default(), txs).0
}

pub fn rules_for<'a>(alerts: &'a [Alert], account: &str) -> Vec<&'a str> {
    alerts
        .iter()
        .filter(|a| a.account == account)
        .map(|a| a.rule.as_str())
        .collect()
}

pub fn count(alerts: &[Alert], rule: &str) -> usize {
    alerts.iter().filter(|a| a.rule == rule).count()
}

/// Alerts and the hits that scored below the line (near misses), for tests that look at the
/// score parts of both.
pub fn run_with_near_misses(txs: &[Transaction<'static>]) -> (Vec<Alert>, Vec<Alert>) {
    let mut e = Engine::new(Arc::new(Config::default()));
    e.set_clock(Clock::Fixed(0));
    e.keep_near_misses(true);
    let mut out = Vec::new();
    for t in txs {
        e.process(t, &mut out);
    }
    e.flush(&mut out);
    let near = e.take_near_misses();
    (out, near)
}

/// The score part `signal` of the best-scoring hit of `rule` on `account` (alert or near miss).
pub fn score_part(alerts: &[Alert], near: &[Alert], account: &str, rule: &str, signal: &str) -> Option<f64> {
    alerts
        .iter()
        .chain(near)
        .filter(|a| a.account == account && a.rule == rule)
        .max_by(|a, b| a.score.total_cmp(&b.score))
        .map(|a| {
            a.evidence["score_breakdown"]
                .get(signal)
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0)
        })
}
