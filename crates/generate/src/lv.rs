//! Expected large-value reports (大额交易), computed exactly from the ledger entries written.
//!
//! This is not planted: every valid record counts, planted or background, so the label set is
//! exactly what a correct implementation of the PBOC lines must report for this stream.

use std::collections::HashMap;

use crate::model::{Channel, World, CUR_CNY};
use crate::time::DAY;

/// Line kinds, in label order.
pub(crate) const LINE_NAMES: [&str; 4] = [
    "cash",
    "corporate_transfer",
    "personal_domestic",
    "personal_cross_border",
];
/// Inclusive thresholds in fen, same order.
pub(crate) const LINE_FEN: [u64; 4] = [50_000_00, 2_000_000_00, 500_000_00, 200_000_00];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Hit {
    pub account: u32,
    pub day: u32,
    pub out: bool,
    pub line: u8,
}

/// `w.evs` must be sorted by event time.
pub(crate) fn compute(w: &World) -> Vec<Hit> {
    let mut hits = Vec::new();
    // Per-day running totals; events are time-sorted so a day's map is dropped when it ends.
    let mut sums: HashMap<u64, u64> = HashMap::new();
    let mut cur_day = u32::MAX;
    for e in &w.evs {
        if e.currency() != CUR_CNY {
            continue;
        }
        let day = e.ts / DAY;
        if day != cur_day {
            sums.clear();
            cur_day = day;
        }
        let line: u8 = if e.channel == Channel::Cash as u8 {
            0
        } else if w.corporate(e.account) {
            1
        } else if e.cross() {
            3
        } else {
            2
        };
        let key = ((e.account as u64) << 8) | ((e.out() as u64) << 4) | line as u64;
        let s = sums.entry(key).or_insert(0);
        if *s == u64::MAX {
            continue; // already reported for this account/day/direction/kind
        }
        *s += e.amount;
        if *s >= LINE_FEN[line as usize] {
            *s = u64::MAX;
            hits.push(Hit {
                account: e.account,
                day,
                out: e.out(),
                line,
            });
        }
    }
    hits
}
