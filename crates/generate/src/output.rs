//! Writing the stream: JSON Lines in arrival order, with the spelling variety real feeds have,
//! a bounded share of late arrivals, and malformed lines mixed in.
//!
//! Lines are assembled by hand into one reused buffer: every string we emit is either digits,
//! a fixed ASCII token or an interned memo checked to need no escaping, so going through a JSON
//! serializer would only cost time at ten million lines.

use std::io::{self, Write};

use rand::Rng as _;

use crate::model::*;
use crate::time::{civil_from_days, BJ_OFFSET, DAY};
use crate::util::{mix64, pick, sub_rng, Rng};

pub(crate) struct OutCfg {
    pub seed: u64,
    pub disorder_secs: u32,
    pub disorder_rate: f64,
    pub malformed_rate: f64,
    /// `STRIP_*` bits: optional fields left out of every line.
    pub strip: u8,
}

pub(crate) const STRIP_MEMO: u8 = 1;
pub(crate) const STRIP_INDUSTRY: u8 = 2;
pub(crate) const STRIP_CHANNEL: u8 = 4;
pub(crate) const STRIP_ACCOUNT_TYPE: u8 = 8;

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct OutStats {
    pub records: u64,
    pub malformed: u64,
    pub displaced: u64,
}

const TAG_DISORDER: u64 = 0xD150;
const TAG_MALFORMED: u64 = 0xBAD;

/// Write all events of `w` (already sorted by event time). Sets `F_DISPLACED` on late events.
pub(crate) fn write_stream<W: Write>(w: &mut World, cfg: &OutCfg, out: W) -> io::Result<OutStats> {
    let mut out = io::BufWriter::with_capacity(1 << 20, out);
    let mut stats = OutStats::default();

    // Late arrivals: each chosen record is delivered after everything with an earlier event
    // time than `ts + delay`, so lateness never exceeds `disorder_secs`.
    let mut late: Vec<(u32, u32)> = Vec::new();
    if cfg.disorder_secs > 0 && cfg.disorder_rate > 0.0 {
        let mut rng = sub_rng(cfg.seed, TAG_DISORDER, 0);
        for (i, e) in w.evs.iter_mut().enumerate() {
            if rng.gen::<f64>() < cfg.disorder_rate {
                e.flags |= F_DISPLACED;
                let arrive = e.ts.saturating_add(rng.gen_range(1..=cfg.disorder_secs));
                late.push((arrive, i as u32));
            }
        }
        late.sort_unstable();
    }
    stats.displaced = late.len() as u64;

    let mut mrng = sub_rng(cfg.seed, TAG_MALFORMED, 0);
    let mut buf: Vec<u8> = Vec::with_capacity(512);
    let mut seq: u64 = 0;
    let mut li = 0usize;
    let evs = &w.evs;
    let world: &World = w;
    let mut emit = |idx: usize, seq: &mut u64, out: &mut io::BufWriter<W>, stats: &mut OutStats| -> io::Result<()> {
        let e = &evs[idx];
        buf.clear();
        format_record(&mut buf, world, cfg, e, *seq, Broken::None);
        buf.push(b'\n');
        out.write_all(&buf)?;
        *seq += 1;
        stats.records += 1;
        if cfg.malformed_rate > 0.0 && mrng.gen::<f64>() < cfg.malformed_rate {
            buf.clear();
            malformed(&mut buf, world, cfg, e, *seq, &mut mrng);
            buf.push(b'\n');
            out.write_all(&buf)?;
            *seq += 1;
            stats.malformed += 1;
        }
        Ok(())
    };
    for (i, e) in evs.iter().enumerate() {
        while li < late.len() && late[li].0 <= e.ts {
            emit(late[li].1 as usize, &mut seq, &mut out, &mut stats)?;
            li += 1;
        }
        if e.flags & F_DISPLACED == 0 {
            emit(i, &mut seq, &mut out, &mut stats)?;
        }
    }
    while li < late.len() {
        emit(late[li].1 as usize, &mut seq, &mut out, &mut stats)?;
        li += 1;
    }
    out.flush()?;
    Ok(stats)
}

// ---------------------------------------------------------------------------------------------
// Formatting

#[derive(Clone, Copy, PartialEq)]
enum Broken<'a> {
    None,
    /// Leave out a required field (index into REQUIRED).
    Omit(usize),
    Amount(&'a str),
    Direction(&'a str),
    Ts(&'a str),
}

const REQUIRED: [&str; 6] = ["tx_id", "ts", "account", "counterparty", "direction", "amount"];

/// The wire contract's fields, as the decoder names them.
use fundwatch_record::Field as F;

const ORDER_A: [F; 13] = [
    F::TxId,
    F::Ts,
    F::Account,
    F::Counterparty,
    F::Direction,
    F::Amount,
    F::Currency,
    F::Channel,
    F::Memo,
    F::AccountType,
    F::Industry,
    F::Region,
    F::CrossBorder,
];
// Some upstream systems emit a different key order; consumers must not care.
const ORDER_B: [F; 13] = [
    F::TxId,
    F::Account,
    F::AccountType,
    F::Region,
    F::Industry,
    F::Direction,
    F::Amount,
    F::Currency,
    F::Ts,
    F::Channel,
    F::Counterparty,
    F::CrossBorder,
    F::Memo,
];

#[inline]
fn push_uint(buf: &mut Vec<u8>, mut v: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut i = 20;
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let digits = 20 - i;
    for _ in digits..width {
        buf.push(b'0');
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Yuan text from fen: `full` always writes two decimals, otherwise trailing zeros go.
fn push_amount(buf: &mut Vec<u8>, fen: u64, full: bool) {
    push_uint(buf, fen / 100, 1);
    let c = fen % 100;
    if full {
        buf.push(b'.');
        push_uint(buf, c, 2);
    } else if c != 0 {
        buf.push(b'.');
        if c % 10 == 0 {
            push_uint(buf, c / 10, 1);
        } else {
            push_uint(buf, c, 2);
        }
    }
}

/// RFC 3339 time of generator seconds `ts` (+ `ms`), as UTC `Z` or Beijing `+08:00`.
fn push_ts(buf: &mut Vec<u8>, base_epoch_day: i64, ts: u32, ms: u16, utc: bool, frac: u64) {
    let (day, sod) = if utc {
        let s = ts as i64 - BJ_OFFSET;
        (
            base_epoch_day + s.div_euclid(DAY as i64),
            s.rem_euclid(DAY as i64) as u64,
        )
    } else {
        (base_epoch_day + (ts / DAY) as i64, (ts % DAY) as u64)
    };
    let (y, m, d) = civil_from_days(day);
    push_uint(buf, y as u64, 4);
    buf.push(b'-');
    push_uint(buf, m as u64, 2);
    buf.push(b'-');
    push_uint(buf, d as u64, 2);
    buf.push(b'T');
    push_uint(buf, sod / 3600, 2);
    buf.push(b':');
    push_uint(buf, sod / 60 % 60, 2);
    buf.push(b':');
    push_uint(buf, sod % 60, 2);
    if ms != 0 {
        buf.push(b'.');
        match frac {
            0 | 1 => push_uint(buf, ms as u64, 3),
            2 => {
                // Shortest form: .5, .25, .125
                let mut v = ms as u64;
                let mut width = 3;
                while v % 10 == 0 {
                    v /= 10;
                    width -= 1;
                }
                push_uint(buf, v, width);
            }
            _ => {
                push_uint(buf, ms as u64, 3);
                buf.extend_from_slice(b"000");
            }
        }
    }
    if utc {
        buf.push(b'Z');
    } else {
        buf.extend_from_slice(b"+08:00");
    }
}

fn push_memo(buf: &mut Vec<u8>, w: &World, e: &Ev, h: u64) {
    let id = e.memo as usize;
    let text = &w.memos.list[id];
    if !w.memos.template[id] {
        buf.extend_from_slice(text.as_bytes());
        return;
    }
    let (_, month, _) = civil_from_days(w.cal.base_epoch_day + (e.ts / DAY) as i64);
    let mut rest = text.as_ref();
    while let Some(p) = rest.find('{') {
        buf.extend_from_slice(&rest.as_bytes()[..p]);
        let tail = &rest[p..];
        if let Some(t) = tail.strip_prefix("{M}") {
            push_uint(buf, month as u64, 1);
            rest = t;
        } else if let Some(t) = tail.strip_prefix("{P}") {
            push_uint(buf, if month == 1 { 12 } else { month as u64 - 1 }, 1);
            rest = t;
        } else if let Some(t) = tail.strip_prefix("{N}") {
            push_uint(buf, mix64(h ^ e.amount) % 100_000_000, 8);
            rest = t;
        } else {
            buf.push(b'{');
            rest = &tail[1..];
        }
    }
    buf.extend_from_slice(rest.as_bytes());
}

fn key(buf: &mut Vec<u8>, first: &mut bool, k: &str) {
    if !*first {
        buf.push(b',');
    }
    *first = false;
    buf.push(b'"');
    buf.extend_from_slice(k.as_bytes());
    buf.extend_from_slice(b"\":");
}

fn format_record(buf: &mut Vec<u8>, w: &World, cfg: &OutCfg, e: &Ev, seq: u64, broken: Broken<'_>) {
    let h = mix64(cfg.seed ^ seq.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let acct = &w.accts[e.account as usize];
    let info = &CLASSES[acct.class as usize];
    let order: &[F; 13] = if (h >> 40) & 15 == 0 { &ORDER_B } else { &ORDER_A };
    let mut first = true;
    buf.push(b'{');
    for &f in order {
        match f {
            F::TxId => {
                if broken == Broken::Omit(0) {
                    continue;
                }
                key(buf, &mut first, "tx_id");
                buf.extend_from_slice(b"\"TX");
                let (y, m, d) = civil_from_days(w.cal.base_epoch_day + (e.ts / DAY) as i64);
                push_uint(buf, y as u64, 4);
                push_uint(buf, m as u64, 2);
                push_uint(buf, d as u64, 2);
                push_uint(buf, seq, 9);
                buf.push(b'"');
            }
            F::Ts => {
                if broken == Broken::Omit(1) {
                    continue;
                }
                key(buf, &mut first, "ts");
                if let Broken::Ts(raw) = broken {
                    buf.extend_from_slice(raw.as_bytes());
                    continue;
                }
                let utc = if e.flags & F_TS_Z != 0 {
                    true
                } else if e.flags & F_TS_LOCAL != 0 {
                    false
                } else {
                    (h >> 4) & 15 < 6
                };
                buf.push(b'"');
                push_ts(buf, w.cal.base_epoch_day, e.ts, e.ms, utc, (h >> 8) & 3);
                buf.push(b'"');
            }
            F::Account => {
                if broken == Broken::Omit(2) {
                    continue;
                }
                key(buf, &mut first, "account");
                buf.push(b'"');
                w.write_account(buf, e.account);
                buf.push(b'"');
            }
            F::Counterparty => {
                if broken == Broken::Omit(3) {
                    continue;
                }
                key(buf, &mut first, "counterparty");
                buf.push(b'"');
                w.write_account(buf, e.cp);
                buf.push(b'"');
            }
            F::Direction => {
                if broken == Broken::Omit(4) {
                    continue;
                }
                key(buf, &mut first, "direction");
                if let Broken::Direction(raw) = broken {
                    buf.extend_from_slice(raw.as_bytes());
                    continue;
                }
                buf.extend_from_slice(if e.out() { b"\"out\"" } else { b"\"in\"" });
            }
            F::Amount => {
                if broken == Broken::Omit(5) {
                    continue;
                }
                key(buf, &mut first, "amount");
                if let Broken::Amount(raw) = broken {
                    buf.extend_from_slice(raw.as_bytes());
                    continue;
                }
                match h & 15 {
                    0..=7 => {
                        buf.push(b'"');
                        push_amount(buf, e.amount, true);
                        buf.push(b'"');
                    }
                    8 | 9 => {
                        buf.push(b'"');
                        push_amount(buf, e.amount, false);
                        buf.push(b'"');
                    }
                    10..=13 => push_amount(buf, e.amount, false),
                    _ => push_amount(buf, e.amount, true),
                }
            }
            F::Currency => {
                let c = e.currency();
                if c == CUR_CNY && (h >> 10) & 7 >= 5 {
                    continue;
                }
                key(buf, &mut first, "currency");
                buf.push(b'"');
                buf.extend_from_slice(CURRENCIES[c as usize].as_bytes());
                buf.push(b'"');
            }
            F::Channel => {
                let ch = Channel::from_u8(e.channel);
                if cfg.strip & STRIP_CHANNEL != 0 {
                    continue;
                }
                if ch == Channel::Transfer && (h >> 13) & 3 == 0 {
                    continue;
                }
                key(buf, &mut first, "channel");
                buf.push(b'"');
                buf.extend_from_slice(ch.as_str().as_bytes());
                buf.push(b'"');
            }
            F::Memo => {
                if cfg.strip & STRIP_MEMO != 0 || (e.memo == 0 && (h >> 15) & 1 == 0) {
                    continue;
                }
                key(buf, &mut first, "memo");
                buf.push(b'"');
                push_memo(buf, w, e, h);
                buf.push(b'"');
            }
            F::AccountType => {
                if cfg.strip & STRIP_ACCOUNT_TYPE != 0
                    || acct.flags & A_NO_META != 0
                    || (!info.corporate && (h >> 16) & 7 >= 6)
                {
                    continue;
                }
                key(buf, &mut first, "account_type");
                buf.extend_from_slice(if info.corporate {
                    b"\"corporate\""
                } else {
                    b"\"personal\""
                });
            }
            F::Industry => {
                if cfg.strip & STRIP_INDUSTRY != 0
                    || acct.flags & A_NO_META != 0
                    || !info.corporate
                    || acct.industry == IND_NONE
                {
                    continue;
                }
                key(buf, &mut first, "industry");
                buf.push(b'"');
                buf.extend_from_slice(INDUSTRIES[acct.industry as usize].as_bytes());
                buf.push(b'"');
            }
            F::Region => {
                key(buf, &mut first, "region");
                buf.push(b'"');
                buf.extend_from_slice(REGIONS[acct.region as usize].as_bytes());
                buf.push(b'"');
            }
            F::CrossBorder => {
                if e.cross() {
                    key(buf, &mut first, "cross_border");
                    buf.extend_from_slice(b"true");
                } else if (h >> 19) & 15 == 0 {
                    key(buf, &mut first, "cross_border");
                    buf.extend_from_slice(b"false");
                }
            }
        }
    }
    buf.push(b'}');
}

// ---------------------------------------------------------------------------------------------
// Malformed lines: the ways real feeds go wrong. They are extra lines, never labelled.

const NOT_JSON: [&str; 6] = [
    "ERROR upstream timeout after 30000 ms",
    "<html><body><h1>502 Bad Gateway</h1></body></html>",
    "TX,2026-01-01T10:00:00+08:00,6222020000000000000,,in,100.00",
    "{tx_id: 'T1', amount: 100}",
    "交易流水导出失败",
    "\"just a string\" trailing",
];
const BAD_NEG: [&str; 3] = ["\"-{A}\"", "-{A}", "\"-0.01\""];
const BAD_ZERO: [&str; 4] = ["\"0.00\"", "0", "\"0\"", "0.00"];
const BAD_DEC: [&str; 3] = ["\"{A}5\"", "{A}5", "\"12.345\""];
const BAD_TEXT: [&str; 8] = [
    "\"abc\"",
    "\"一千元\"",
    "\"\"",
    "null",
    "true",
    "\"1,000.00\"",
    "\"¥500\"",
    "\"5000元\"",
];
const BAD_DIR: [&str; 5] = ["\"sideways\"", "\"\"", "\"both\"", "null", "1"];
const BAD_TS: [&str; 8] = [
    "\"2026-02-30T10:00:00+08:00\"",
    "\"2026-03-02 09:15:02\"",
    "\"yesterday\"",
    "\"2026-03-02T25:61:00Z\"",
    "\"\"",
    "\"1767225600\"",
    "1767225600",
    "\"2026-03-02T09:15:02\"",
];

fn malformed(buf: &mut Vec<u8>, w: &World, cfg: &OutCfg, e: &Ev, seq: u64, rng: &mut Rng) {
    let fill = |tpl: &str, e: &Ev| -> String {
        let mut b = Vec::new();
        push_amount(&mut b, e.amount, true);
        tpl.replace("{A}", &String::from_utf8_lossy(&b))
    };
    match rng.gen_range(0..9) {
        0 => buf.extend_from_slice(pick(rng, &NOT_JSON).as_bytes()),
        1 => {
            format_record(buf, w, cfg, e, seq, Broken::None);
            // Cut strictly inside the object (never after the closing brace), on a char
            // boundary so the line stays UTF-8.
            let len = buf.len();
            let mut cut = rng.gen_range(len / 5..len - 1);
            while cut > 1 && (buf[cut] & 0xC0) == 0x80 {
                cut -= 1;
            }
            buf.truncate(cut);
        }
        2 => format_record(buf, w, cfg, e, seq, Broken::Omit(rng.gen_range(0..REQUIRED.len()))),
        3 => {
            let s = fill(pick(rng, &BAD_NEG), e);
            format_record(buf, w, cfg, e, seq, Broken::Amount(&s))
        }
        4 => format_record(buf, w, cfg, e, seq, Broken::Amount(pick(rng, &BAD_ZERO))),
        5 => {
            let s = fill(pick(rng, &BAD_DEC), e);
            format_record(buf, w, cfg, e, seq, Broken::Amount(&s))
        }
        6 => format_record(buf, w, cfg, e, seq, Broken::Amount(pick(rng, &BAD_TEXT))),
        7 => format_record(buf, w, cfg, e, seq, Broken::Direction(pick(rng, &BAD_DIR))),
        _ => format_record(buf, w, cfg, e, seq, Broken::Ts(pick(rng, &BAD_TS))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amt(f: u64, full: bool) -> String {
        let mut b = Vec::new();
        push_amount(&mut b, f, full);
        String::from_utf8(b).unwrap_or_default()
    }

    #[test]
    fn amounts_spelled_exactly() {
        assert_eq!(amt(500_000, true), "5000.00");
        assert_eq!(amt(500_000, false), "5000");
        assert_eq!(amt(4_990, false), "49.9");
        assert_eq!(amt(4_999_999, false), "49999.99");
        assert_eq!(amt(17, false), "0.17");
        assert_eq!(amt(5, true), "0.05");
        assert_eq!(amt(50, false), "0.5");
    }

    #[test]
    fn timestamps_in_both_offsets() {
        let base = crate::time::days_from_civil(2026, 3, 2);
        let mut b = Vec::new();
        push_ts(&mut b, base, 9 * 3600 + 15 * 60 + 2, 0, false, 0);
        assert_eq!(String::from_utf8_lossy(&b), "2026-03-02T09:15:02+08:00");
        b.clear();
        push_ts(&mut b, base, 9 * 3600 + 15 * 60 + 2, 0, true, 0);
        assert_eq!(String::from_utf8_lossy(&b), "2026-03-02T01:15:02Z");
        b.clear();
        push_ts(&mut b, base, 3600, 500, true, 2);
        assert_eq!(String::from_utf8_lossy(&b), "2026-03-01T17:00:00.5Z");
        b.clear();
        push_ts(&mut b, base, 3600, 7, false, 3);
        assert_eq!(String::from_utf8_lossy(&b), "2026-03-02T01:00:00.007000+08:00");
    }
}
