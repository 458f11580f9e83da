//! End-to-end checks of generated streams against the wire contract and their labels.
//!
//! The validator and the large-value recomputation here are written independently of the
//! generator's internals (own RFC 3339 parser, own amount parser), so a bug in the generator's
//! formatting or bookkeeping shows up as a mismatch rather than being reproduced.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use fundwatch_generate::labels::{Labels, LargeValueKey, RULES};
use fundwatch_generate::{generate, GenerateError, GenerateOptions, GenerateSummary};
use serde_json::Value;

struct Run {
    stream: Vec<u8>,
    labels: Vec<u8>,
    summary: GenerateSummary,
}

fn run(opts: &GenerateOptions) -> Run {
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

fn opts(records: u64, seed: u64) -> GenerateOptions {
    GenerateOptions {
        records,
        seed,
        ..GenerateOptions::default()
    }
}

// ---------------------------------------------------------------------------------------------
// An independent validator for the spec's record format

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
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
fn parse_ts(s: &str) -> Option<i64> {
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

fn beijing_day(ms: i64) -> String {
    let (y, m, d) = civil_from_days((ms / 1000 + 8 * 3600).div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The raw JSON text of the `amount` value on the line (string contents or number token).
fn raw_amount(line: &str) -> Option<(String, bool)> {
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
fn parse_fen(t: &str) -> Option<i64> {
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
struct Rec {
    tx_id: String,
    ts_ms: i64,
    account: String,
    counterparty: String,
    out: bool,
    fen: i64,
    currency: String,
    channel: String,
    memo: String,
    corporate: bool,
    account_type: Option<String>,
    industry: Option<String>,
    region: Option<String>,
    cross_border: bool,
}

const CHANNELS: [&str; 8] = [
    "transfer", "cash", "pos", "mobile", "online", "atm", "counter", "payroll",
];

/// Validate one line; `Err` names the first problem.
fn validate(line: &str) -> Result<Rec, String> {
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

struct Parsed {
    recs: Vec<Rec>,
    invalid: Vec<String>,
}

fn parse_stream(bytes: &[u8]) -> Parsed {
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

fn read_labels(bytes: &[u8]) -> Labels {
    match Labels::read(bytes) {
        Ok(l) => l,
        Err(e) => panic!("labels do not parse: {e}"),
    }
}

/// Large-value reports recomputed from the records, per the spec's lines.
fn recompute_large_value(recs: &[Rec]) -> BTreeSet<LargeValueKey> {
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

// ---------------------------------------------------------------------------------------------

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = run(&opts(12_000, 42));
    let b = run(&opts(12_000, 42));
    assert!(a.stream == b.stream, "stream differs between identical runs");
    assert!(a.labels == b.labels, "labels differ between identical runs");
    assert_eq!(a.summary, b.summary);
    let c = run(&opts(12_000, 43));
    assert!(a.stream != c.stream);
    assert!(a.labels != c.labels);
}

#[test]
fn record_count_within_tolerance() {
    for (n, seed, days) in [
        (10_000u64, 1u64, 120u32),
        (25_000, 7, 120),
        (20_000, 3, 45),
        (15_000, 9, 365),
    ] {
        let o = GenerateOptions {
            records: n,
            seed,
            days,
            ..GenerateOptions::default()
        };
        let r = run(&o);
        let lines = r.stream.iter().filter(|&&c| c == b'\n').count() as u64;
        assert_eq!(lines, r.summary.records + r.summary.malformed);
        let lo = n * 95 / 100;
        let hi = n * 105 / 100;
        assert!(
            (lo..=hi).contains(&r.summary.records),
            "n={n} days={days}: got {} records",
            r.summary.records
        );
    }
}

#[test]
fn every_line_is_valid_or_deliberately_malformed() {
    let o = GenerateOptions {
        records: 40_000,
        seed: 5,
        malformed_rate: 0.01,
        ..GenerateOptions::default()
    };
    let r = run(&o);
    let p = parse_stream(&r.stream);
    assert_eq!(
        p.recs.len() as u64,
        r.summary.records,
        "valid lines: first invalid {:?}",
        p.invalid.first()
    );
    assert_eq!(p.invalid.len() as u64, r.summary.malformed);

    // Malformed share ≈ rate (binomial, ±5σ).
    let expected = 0.01 * r.summary.records as f64;
    let sd = expected.sqrt();
    assert!(
        (p.invalid.len() as f64 - expected).abs() < 5.0 * sd,
        "{} malformed, expected ≈{expected}",
        p.invalid.len()
    );

    // The malformed lines are varied.
    let kinds: BTreeSet<&str> = p
        .invalid
        .iter()
        .map(|l| match validate(l) {
            Err(e) if e.starts_with("json") => "json",
            Err(e) if e.starts_with("missing") => "missing",
            Err(e) if e.contains("amount") => "amount",
            Err(e) if e.starts_with("direction") => "direction",
            Err(e) if e.starts_with("bad ts") => "ts",
            _ => "other",
        })
        .collect();
    for k in ["json", "missing", "amount", "direction", "ts"] {
        assert!(kinds.contains(k), "no malformed line of kind {k}: {kinds:?}");
    }

    // tx_id unique across valid lines.
    let ids: HashSet<&str> = p.recs.iter().map(|r| r.tx_id.as_str()).collect();
    assert_eq!(ids.len(), p.recs.len());

    // Spelling variety the contract allows.
    let text = String::from_utf8_lossy(&r.stream);
    assert!(text.contains("+08:00\"") && text.contains("Z\""));
    assert!(p.recs.iter().any(|x| x.ts_ms % 1000 != 0), "no fractional seconds");
    let mut quoted = 0;
    let mut number = 0;
    for l in text.lines().take(5_000) {
        match raw_amount(l) {
            Some((_, true)) => quoted += 1,
            Some((_, false)) => number += 1,
            None => {}
        }
    }
    assert!(
        quoted > 1_000 && number > 1_000,
        "amount forms: {quoted} strings, {number} numbers"
    );
    let currencies: BTreeSet<&str> = p.recs.iter().map(|x| x.currency.as_str()).collect();
    assert!(currencies.contains("CNY") && currencies.len() >= 3, "{currencies:?}");
    let cny = p.recs.iter().filter(|x| x.currency == "CNY").count();
    assert!(cny as f64 > 0.97 * p.recs.len() as f64);
    let channels: BTreeSet<&str> = p.recs.iter().map(|x| x.channel.as_str()).collect();
    assert_eq!(channels.len(), CHANNELS.len(), "{channels:?}");
    assert!(p.recs.iter().any(|x| x.cross_border));
    assert!(p
        .recs
        .iter()
        .any(|x| x.memo.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))));
    let industries: BTreeSet<&str> = p.recs.iter().filter_map(|x| x.industry.as_deref()).collect();
    for k in [
        "investment",
        "elderly_care",
        "cooperative",
        "private_education",
        "retail",
        "wholesale",
    ] {
        assert!(industries.contains(k), "industry {k} missing: {industries:?}");
    }
    let regions: BTreeSet<&str> = p.recs.iter().filter_map(|x| x.region.as_deref()).collect();
    assert!(regions.len() >= 4);

    // Every account keeps one type, industry and region.
    let mut attrs: HashMap<&str, (bool, Option<&str>, Option<&str>)> = HashMap::new();
    for x in &p.recs {
        let a = (x.corporate, x.industry.as_deref(), x.region.as_deref());
        let prev = attrs.entry(x.account.as_str()).or_insert(a);
        assert_eq!(prev.0, a.0, "account {} changes type", x.account);
        if a.0 {
            assert_eq!(prev.1, a.1, "account {} changes industry", x.account);
            assert_eq!(
                x.account_type.as_deref(),
                Some("corporate"),
                "corporate records always say so"
            );
        }
        assert_eq!(prev.2, a.2, "account {} changes region", x.account);
    }
    assert_eq!(attrs.len() as u64, r.summary.accounts);

    // Both ledgers of in-bank transfers appear.
    let monitored: HashSet<&str> = attrs.keys().copied().collect();
    let outs: HashSet<(&str, &str, i64)> = p
        .recs
        .iter()
        .filter(|x| x.out)
        .map(|x| (x.account.as_str(), x.counterparty.as_str(), x.fen))
        .collect();
    let mirrored = p
        .recs
        .iter()
        .filter(|x| !x.out && monitored.contains(x.counterparty.as_str()))
        .filter(|x| outs.contains(&(x.counterparty.as_str(), x.account.as_str(), x.fen)))
        .count();
    assert!(mirrored > 100, "only {mirrored} mirrored in-bank transfers");
}

#[test]
fn arrival_order_is_event_order_up_to_bounded_lateness() {
    let o = GenerateOptions {
        records: 20_000,
        seed: 11,
        disorder_secs: 300,
        disorder_rate: 0.05,
        ..GenerateOptions::default()
    };
    let r = run(&o);
    let p = parse_stream(&r.stream);
    let mut max_seen = i64::MIN;
    let mut late = 0u64;
    for x in &p.recs {
        if x.ts_ms < max_seen {
            late += 1;
            assert!(
                max_seen - x.ts_ms <= 300_000 + 999,
                "lateness {} ms",
                max_seen - x.ts_ms
            );
        }
        max_seen = max_seen.max(x.ts_ms);
    }
    assert!(late > 100, "only {late} late records");
    assert!(
        late <= r.summary.late + 50,
        "{late} out of order, {} displaced",
        r.summary.late
    );

    // No disorder requested → sorted (the sub-second part only orders within a second).
    let o = GenerateOptions {
        disorder_rate: 0.0,
        ..o
    };
    let p = parse_stream(&run(&o).stream);
    assert!(p.recs.windows(2).all(|w| w[0].ts_ms / 1000 <= w[1].ts_ms / 1000));
}

#[test]
fn large_value_labels_match_recomputation() {
    for (n, seed) in [(30_000u64, 21u64), (12_000, 22)] {
        let r = run(&opts(n, seed));
        let p = parse_stream(&r.stream);
        let labels = read_labels(&r.labels);
        let expected = recompute_large_value(&p.recs);
        let got = labels.large_value_keys();
        let missing: Vec<_> = expected.difference(&got).take(5).collect();
        let extra: Vec<_> = got.difference(&expected).take(5).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "missing {missing:?} extra {extra:?}"
        );
        assert_eq!(got.len(), labels.large_value.len(), "duplicate large-value lines");
        assert_eq!(r.summary.large_value_reports, got.len() as u64);
        let lines: BTreeSet<&str> = got.iter().map(|k| k.3.as_str()).collect();
        assert_eq!(lines.len(), 4, "all four lines occur: {lines:?}");

        // The boundary cases are there and behave as designed.
        let boundary: BTreeMap<&str, &str> = labels
            .accounts
            .iter()
            .filter(|a| a.typology == "lv_boundary")
            .map(|a| (a.detail.as_deref().unwrap_or(""), a.account.as_str()))
            .collect();
        let has = |case: &str, line: &str| {
            let a = boundary.get(case).copied().unwrap_or("?");
            got.iter().any(|k| k.0 == a && k.3 == line)
        };
        assert!(has("cash_day_total_exactly_50000", "cash"));
        assert!(!has("cash_single_49999.99", "cash"));
        assert!(!has("cash_day_total_49999.99", "cash"));
        assert!(!has("cash_straddles_beijing_midnight", "cash"));
        assert!(has("cash_same_beijing_day_across_utc_midnight", "cash"));
        assert!(has("cash_single_50000_at_midnight", "cash"));
        assert!(has("cash_running_total_crosses_on_third", "cash"));
        assert!(!has("kinds_and_directions_not_mixed", "cash"));
        assert!(!has("eur_cash_60000", "cash"));
        assert!(has(
            "personal_transfer_exactly_500000_and_499999.99",
            "personal_domestic"
        ));
        assert!(has(
            "cross_border_exactly_200000_and_below_and_usd",
            "personal_cross_border"
        ));
        assert!(!has("cross_border_and_domestic_not_mixed", "personal_cross_border"));
        assert!(has(
            "corporate_day_total_exactly_2000000_and_below",
            "corporate_transfer"
        ));
    }
}

#[test]
fn labels_name_stream_accounts_and_cover_every_typology() {
    let r = run(&opts(10_000, 3));
    let p = parse_stream(&r.stream);
    let labels = read_labels(&r.labels);
    let accounts: HashSet<&str> = p.recs.iter().map(|x| x.account.as_str()).collect();
    for a in &labels.accounts {
        assert!(
            accounts.contains(a.account.as_str()),
            "labelled account {} not in stream",
            a.account
        );
    }
    let typ: BTreeSet<&str> = labels.accounts.iter().map(|a| a.typology.as_str()).collect();
    for t in [
        "scatter_in",
        "ponzi_collect_and_pay",
        "periodic_payout",
        "rapid_pass_through",
        "structuring",
        "qr_merchant",
        "wholesaler",
        "payroll",
        "gig_platform",
        "crowdfunding",
        "salary_same_day",
    ] {
        assert!(typ.contains(t), "typology {t} missing at 10k records");
    }
    for rule in RULES {
        let n = labels.truth(rule).len();
        assert!(n >= 3, "rule {rule}: only {n} positives at 10k records");
        assert_eq!(r.summary.positives_by_rule.get(rule).copied(), Some(n as u64));
    }
    // Look-alikes are negatives for every rule.
    for a in labels.accounts.iter().filter(|a| a.rules.is_empty()) {
        assert!(![
            "scatter_in",
            "ponzi_collect_and_pay",
            "periodic_payout",
            "rapid_pass_through",
            "structuring"
        ]
        .contains(&a.typology.as_str()));
    }

    // Perfect alerts score perfectly; no alerts score zero recall.
    let mut alerts: Vec<(String, String)> = Vec::new();
    for rule in RULES {
        for a in labels.truth(rule) {
            alerts.push((rule.to_string(), a.to_string()));
        }
    }
    let ev = labels.evaluate(alerts.iter().map(|(r, a)| (r.as_str(), a.as_str())));
    for s in &ev.rules {
        assert_eq!((s.precision, s.recall, s.f1), (1.0, 1.0, 1.0), "{}", s.rule);
    }
    let ev = labels.evaluate(std::iter::empty());
    assert!(ev.rules.iter().all(|s| s.recall == 0.0 && s.false_negatives == s.truth));
}

/// The planted cases have the shape their labels claim (loose checks a reasonable detector
/// would need to pass), at a scale with hundreds of cases.
#[test]
fn planted_cases_have_their_shape() {
    let r = run(&opts(120_000, 8));
    let p = parse_stream(&r.stream);
    let labels = read_labels(&r.labels);
    let mut by_acct: HashMap<&str, Vec<&Rec>> = HashMap::new();
    for x in &p.recs {
        by_acct.entry(x.account.as_str()).or_default().push(x);
    }
    for v in by_acct.values_mut() {
        v.sort_by_key(|x| x.ts_ms);
    }
    let has = |a: &str, rule: &str| {
        labels
            .accounts
            .iter()
            .any(|l| l.account == a && l.rules.iter().any(|x| x == rule))
    };
    for l in &labels.accounts {
        let recs = &by_acct[l.account.as_str()];
        if has(&l.account, "scatter_in_concentrated_out") {
            let payers: HashSet<&str> = recs
                .iter()
                .filter(|x| !x.out && !x.counterparty.is_empty())
                .map(|x| x.counterparty.as_str())
                .collect();
            assert!(
                payers.len() >= 10,
                "{}: {} payers ({:?})",
                l.account,
                payers.len(),
                l.detail
            );
        }
        if has(&l.account, "periodic_batch_small_out") {
            // Days with ≥8 distinct recipients of outgoing transfers.
            let mut per_day: BTreeMap<String, HashSet<&str>> = BTreeMap::new();
            for x in recs.iter().filter(|x| x.out) {
                per_day
                    .entry(beijing_day(x.ts_ms))
                    .or_default()
                    .insert(x.counterparty.as_str());
            }
            let batches = per_day.values().filter(|s| s.len() >= 8).count();
            assert!(batches >= 3, "{}: {batches} batches ({:?})", l.account, l.detail);
        }
        if has(&l.account, "rapid_pass_through") {
            let big_in = recs.iter().filter(|x| !x.out && x.fen >= 2_000_000).count();
            assert!(big_in >= 3, "{}: {big_in} sizeable inflows ({:?})", l.account, l.detail);
        }
        if has(&l.account, "structuring") {
            let mut per_day: BTreeMap<(String, bool, bool), i64> = BTreeMap::new();
            for x in recs.iter() {
                *per_day
                    .entry((beijing_day(x.ts_ms), x.out, x.channel == "cash"))
                    .or_insert(0) += x.fen;
            }
            let near = per_day
                .iter()
                .filter(|((_, _, cash), v)| {
                    if *cash {
                        (4_000_000..5_000_000).contains(*v)
                    } else {
                        (40_000_000..50_000_000).contains(*v)
                    }
                })
                .count();
            assert!(near >= 3, "{}: {near} near-line days ({:?})", l.account, l.detail);
        }
    }
    let n_pos: usize = RULES[..4].iter().map(|r| labels.truth(r).len()).sum();
    assert!(n_pos >= 40, "{n_pos} planted positives at 120k records");
}

#[test]
fn invalid_options_are_rejected() {
    let bad = [
        GenerateOptions {
            records: 10,
            ..GenerateOptions::default()
        },
        GenerateOptions {
            start: "2026-02-30".into(),
            ..GenerateOptions::default()
        },
        GenerateOptions {
            start: "yesterday".into(),
            ..GenerateOptions::default()
        },
        GenerateOptions {
            days: 5,
            ..GenerateOptions::default()
        },
        GenerateOptions {
            disorder_rate: 1.5,
            ..GenerateOptions::default()
        },
        GenerateOptions {
            malformed_rate: f64::NAN,
            ..GenerateOptions::default()
        },
    ];
    for o in bad {
        let r = generate(&o, Vec::new(), Vec::new());
        assert!(matches!(r, Err(GenerateError::InvalidOption { .. })), "{o:?} accepted");
    }
}

#[test]
fn io_errors_surface() {
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let r = generate(&opts(10_000, 1), Broken, Vec::new());
    assert!(matches!(r, Err(GenerateError::Io(_))));
}

#[test]
fn command_line_flags() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        g: GenerateOptions,
    }
    let cli = match Cli::try_parse_from([
        "generate",
        "--records",
        "20000",
        "--seed",
        "9",
        "--start",
        "2026-03-01",
        "--days",
        "60",
        "--disorder-secs",
        "120",
        "--disorder-rate",
        "0.05",
        "--malformed-rate",
        "0.001",
    ]) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let g = cli.g;
    assert_eq!(
        (g.records, g.seed, g.start.as_str(), g.days),
        (20_000, 9, "2026-03-01", 60)
    );
    assert_eq!((g.disorder_secs, g.disorder_rate, g.malformed_rate), (120, 0.05, 0.001));
    let d = match Cli::try_parse_from(["generate"]) {
        Ok(c) => c.g,
        Err(e) => panic!("{e}"),
    };
    let def = GenerateOptions::default();
    assert_eq!(
        (d.records, d.seed, d.start, d.days),
        (def.records, def.seed, def.start, def.days)
    );
    assert_eq!(
        (d.disorder_secs, d.disorder_rate, d.malformed_rate),
        (240, 0.02, 0.0005)
    );
}
