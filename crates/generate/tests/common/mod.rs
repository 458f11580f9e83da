//! Shared by the integration tests: running the generator, an independent validator for the
//! spec's record format, and the large-value recomputation.
//!
//! The validator and the large-value recomputation here are written independently of the
//! generator's internals (own RFC 3339 parser, own amount parser), so a bug in the generator's
//! formatting or bookkeeping shows up as a mismatch rather than being reproduced.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};

use fundwatch_generate::labels::{Labels, LargeValueKey};
use fundwatch_generate::{generate, GenerateOptions, GenerateSummary};
use serde_json::Value;

pub struct Run {
    pub stream: Vec<u8>,
    pub labels: Vec<u8>,
    pub summary: GenerateSummary,
}

pub fn run(opts: &GenerateOptions) -> Run {
    let mut stream = Vec::new();
    let mut labels = Vec::new();
    let summary = match generate(opts, &mut stream, &mut labels) {
        Ok(s) => s,
        Err(e) => panic!("generate failed: {e}"),
    };
    Run {
        stream,
        labels,
        summary,
    }
}

pub fn opts(records: u64, seed: u64) -> GenerateOptions {
    GenerateOptions {
        records,
        seed,
        ..GenerateOptions::default()
    }
}

// ---------------------------------------------------------------------------------------------
// An independent validator for the spec's record format

pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Strict RFC 3339 (`T` separator, offset required) to UTC epoch milliseconds.
pub fn parse_ts(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(|c| c.is_ascii_digit()) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d, h, mi, sec) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let dim = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&mo) || d < 1 || d > dim[(mo - 1) as usize] || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = std::str::from_utf8(&b[start..i]).ok()?;
        let padded: String = frac.chars().chain("000".chars()).take(3).collect();
        ms = padded.parse().ok()?;
    }
    let offset_s = match b.get(i)? {
        b'Z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let v = oh * 3600 + om * 60;
            if *c == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    Some(secs * 1000 + ms)
}

pub fn beijing_day(ms: i64) -> String {
    let (y, m, d) = civil_from_days((ms / 1000 + 8 * 3600).div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The raw JSON text of the `amount` value on the line (string contents or number token).
pub fn raw_amount(line: &str) -> Option<(String, bool)> {
    let p = line.find("\"amount\":")? + "\"amount\":".len();
    let rest = &line[p..];
    if let Some(s) = rest.strip_prefix('"') {
        let end = s.find('"')?;
        Some((s[..end].to_string(), true))
    } else {
        let end = rest.find([',', '}'])?;
        Some((rest[..end].to_string(), false))
    }
}

/// Exact fen from the spec's decimal form: digits, optionally `.` and 1–2 digits, > 0.
pub fn parse_fen(t: &str) -> Option<i64> {
    let (int, frac) = match t.split_once('.') {
        Some((i, f)) => (i, f),
        None => (t, ""),
    };
    if int.is_empty() || !int.bytes().all(|c| c.is_ascii_digit()) || int.len() > 13 {
        return None;
    }
    if t.contains('.') && (frac.is_empty() || frac.len() > 2 || !frac.bytes().all(|c| c.is_ascii_digit())) {
        return None;
    }
    let mut f: i64 = int.parse().ok()?;
    f *= 100;
    if !frac.is_empty() {
        let v: i64 = frac.parse().ok()?;
        f += if frac.len() == 1 { v * 10 } else { v };
    }
    if f <= 0 {
        return None;
    }
    Some(f)
}

#[derive(Debug, Clone)]
pub struct Rec {
    pub tx_id: String,
    pub ts_ms: i64,
    pub account: String,
    pub counterparty: String,
    pub out: bool,
    pub fen: i64,
    pub currency: String,
    pub channel: String,
    pub memo: String,
    pub corporate: bool,
    pub account_type: Option<String>,
    pub industry: Option<String>,
    pub region: Option<String>,
    pub cross_border: bool,
}

pub const CHANNELS: [&str; 8] = [
    "transfer", "cash", "pos", "mobile", "online", "atm", "counter", "payroll",
];

/// Validate one line; `Err` names the first problem.
pub fn validate(line: &str) -> Result<Rec, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("json: {e}"))?;
    let o = v.as_object().ok_or("not an object")?;
    let s = |k: &str| -> Result<String, String> {
        match o.get(k) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(format!("{k} not a string")),
            None => Err(format!("missing {k}")),
        }
    };
    let opt_s = |k: &str| -> Result<Option<String>, String> {
        match o.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{k} not a string")),
        }
    };
    let tx_id = s("tx_id")?;
    if tx_id.is_empty() {
        return Err("empty tx_id".into());
    }
    let ts = s("ts")?;
    let ts_ms = parse_ts(&ts).ok_or_else(|| format!("bad ts {ts:?}"))?;
    let account = s("account")?;
    if account.is_empty() {
        return Err("empty account".into());
    }
    let counterparty = s("counterparty")?;
    let out = match s("direction")?.as_str() {
        "in" => false,
        "out" => true,
        d => return Err(format!("direction {d:?}")),
    };
    let (raw, quoted) = raw_amount(line).ok_or("missing amount")?;
    match o.get("amount") {
        Some(Value::String(_)) if quoted => {}
        Some(Value::Number(_)) if !quoted => {}
        _ => return Err("amount neither string nor number".into()),
    }
    let fen = parse_fen(&raw).ok_or_else(|| format!("bad amount {raw:?}"))?;
    let currency = opt_s("currency")?.unwrap_or_else(|| "CNY".into());
    if currency.len() != 3 || !currency.bytes().all(|c| c.is_ascii_uppercase()) {
        return Err(format!("currency {currency:?}"));
    }
    let channel = opt_s("channel")?.unwrap_or_else(|| "transfer".into());
    if !CHANNELS.contains(&channel.as_str()) {
        return Err(format!("channel {channel:?}"));
    }
    let memo = opt_s("memo")?.unwrap_or_default();
    let account_type = opt_s("account_type")?;
    let corporate = match account_type.as_deref() {
        None | Some("personal") => false,
        Some("corporate") => true,
        Some(t) => return Err(format!("account_type {t:?}")),
    };
    let industry = opt_s("industry")?;
    if industry.is_some() && !corporate {
        return Err("industry on a personal account".into());
    }
    let region = opt_s("region")?;
    if let Some(r) = &region {
        if r.len() != 6 || !r.bytes().all(|c| c.is_ascii_digit()) {
            return Err(format!("region {r:?}"));
        }
    }
    let cross_border = match o.get("cross_border") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("cross_border not a bool".into()),
    };
    if channel == "cash" && !counterparty.is_empty() {
        return Err("cash with a counterparty".into());
    }
    Ok(Rec {
        tx_id,
        ts_ms,
        account,
        counterparty,
        out,
        fen,
        currency,
        channel,
        memo,
        corporate,
        account_type,
        industry,
        region,
        cross_border,
    })
}

pub struct Parsed {
    pub recs: Vec<Rec>,
    pub invalid: Vec<String>,
}

pub fn parse_stream(bytes: &[u8]) -> Parsed {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => panic!("stream is not UTF-8: {e}"),
    };
    let mut recs = Vec::new();
    let mut invalid = Vec::new();
    for line in text.lines() {
        match validate(line) {
            Ok(r) => recs.push(r),
            Err(_) => invalid.push(line.to_string()),
        }
    }
    Parsed { recs, invalid }
}

pub fn read_labels(bytes: &[u8]) -> Labels {
    match Labels::read(bytes) {
        Ok(l) => l,
        Err(e) => panic!("labels do not parse: {e}"),
    }
}

/// Large-value reports recomputed from the records, per the spec's lines.
pub fn recompute_large_value(recs: &[Rec]) -> BTreeSet<LargeValueKey> {
    let mut sums: HashMap<(String, String, bool, &'static str), i64> = HashMap::new();
    let mut hits = BTreeSet::new();
    let mut sorted: Vec<&Rec> = recs.iter().collect();
    sorted.sort_by_key(|r| r.ts_ms);
    for r in sorted {
        if r.currency != "CNY" {
            continue;
        }
        let (line, limit) = if r.channel == "cash" {
            ("cash", 5_000_000)
        } else if r.corporate {
            ("corporate_transfer", 200_000_000)
        } else if r.cross_border {
            ("personal_cross_border", 20_000_000)
        } else {
            ("personal_domestic", 50_000_000)
        };
        let day = beijing_day(r.ts_ms);
        let s = sums.entry((r.account.clone(), day.clone(), r.out, line)).or_insert(0);
        *s += r.fen;
        if *s >= limit {
            hits.insert((
                r.account.clone(),
                day,
                if r.out { "out" } else { "in" }.to_string(),
                line.to_string(),
            ));
        }
    }
    hits
}
