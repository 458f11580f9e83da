//! Synthetic transaction streams for fundwatch (`fundwatch generate`).
//!
//! This crate owns making seeded, deterministic JSON Lines streams in the wire format of
//! `shared/spec` — ordinary bank traffic with planted illegal fund-raising typologies
//! (scatter-in/concentrated-out, Ponzi interest batches, rapid pass-through, structuring) and
//! benign look-alikes (QR merchants, wholesalers, payroll, gig platforms, crowdfunding, salary
//! spent the same day, legitimate key-sector businesses) — together with the labels file, and
//! the account-level evaluation against those labels ([`labels`]).
//!
//! Pipeline: plan how many of each case the requested size calls for, let every case emit
//! compact integer events (32 bytes each) into one vector, sort by event time, derive the exact
//! large-value reports from the sorted events, then format lines in arrival order (a share of
//! records delivered late, malformed lines mixed in) and write the labels.

// Money literals are written as yuan_fen (`50_000_00` is 50,000.00 yuan in fen), which clippy
// reads as inconsistent grouping.
#![allow(clippy::inconsistent_digit_grouping)]

mod background;
mod evasive;
mod evasive_lookalikes;
pub mod labels;
mod lookalikes;
mod lv;
mod model;
mod output;
mod schemes;
mod time;
mod util;

use std::collections::BTreeMap;
use std::io::Write;

use model::{World, REGIONS, R_PERIODIC, R_RAPID, R_SCATTER, R_STRUCT};
use util::{lognormal, sub_rng, Rng};

pub use labels::{
    AccountLabel, Evaluation, Labels, LabelsError, LargeValueKey, LargeValueLabel, RuleScore, SchemeAccount,
    SchemeLabel, RULES,
};

/// Options of `fundwatch generate`.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateOptions {
    /// Target number of valid records, 10,000 to 50,000,000 (the result is within ±5 %).
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    /// Seed; the same options give byte-identical output.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// First day of the stream, a Beijing calendar date (YYYY-MM-DD).
    #[arg(long, default_value = "2026-01-01")]
    pub start: String,
    /// Number of days the stream covers (at least 21).
    #[arg(long, default_value_t = 120)]
    pub days: u32,
    /// Maximum lateness of out-of-order records, in seconds.
    #[arg(long, default_value_t = 240)]
    pub disorder_secs: u32,
    /// Share of records delivered late (arrival order only; `ts` is unchanged).
    #[arg(long, default_value_t = 0.02)]
    pub disorder_rate: f64,
    /// Extra malformed lines per valid record.
    #[arg(long, default_value_t = 0.0005)]
    pub malformed_rate: f64,
    /// Optional fields to leave out of every record written, comma-separated: `memo`,
    /// `industry`, `channel`, `account_type` (e.g. `--strip memo,industry`). Consumers then see
    /// the spec's defaults (channel `transfer`, account_type `personal`, no memo, no industry),
    /// as from a feed that does not carry them. Labels are unchanged; nothing else moves (the
    /// same events, times and amounts as without `--strip`).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "FIELDS")]
    pub strip: Vec<StripField>,
    /// Which cases are planted. `standard`: the typologies with the signals investigators
    /// look for first (investment and interest memos, round tickets, key-sector industries,
    /// one account collecting and paying). `evasive`: schemes that hide those signals — blank
    /// or disguised memos (借款, 往来款, 红包, a name), lucky-number and ragged tickets, no or
    /// ordinary industry, payout batches spread over hours with ±2 days of jitter, and above all
    /// interest paid from a separate account funded shortly before each batch — among benign
    /// look-alikes a bank really sees (family-event gifts, class fees, group buying, sublet
    /// rent, membership fees, rotating savings clubs, part-time and small-firm pay by plain
    /// transfer, property fees). Evasive labels name each scheme (`scheme`) and the account's
    /// part in it (`role`: collector, payout, receiver).
    #[arg(long, value_enum, default_value_t = Profile::Standard)]
    pub profile: Profile,
}

/// The planted cases a stream gets (`--profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    #[default]
    Standard,
    Evasive,
}

/// An optional record field that `--strip` can leave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StripField {
    Memo,
    Industry,
    Channel,
    #[value(name = "account_type")]
    AccountType,
}

impl StripField {
    fn bit(self) -> u8 {
        match self {
            StripField::Memo => output::STRIP_MEMO,
            StripField::Industry => output::STRIP_INDUSTRY,
            StripField::Channel => output::STRIP_CHANNEL,
            StripField::AccountType => output::STRIP_ACCOUNT_TYPE,
        }
    }
}

impl GenerateOptions {
    /// The options that made `fixtures/stream-20k.jsonl` (the demo's stream): `fundwatch
    /// generate --records 20000 --seed 77 --days 90 --start 2026-06-01`.
    pub fn stream_20k() -> GenerateOptions {
        GenerateOptions {
            records: 20_000,
            seed: 77,
            days: 90,
            start: "2026-06-01".into(),
            ..Default::default()
        }
    }
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            records: 100_000,
            seed: 1,
            start: "2026-01-01".to_string(),
            days: 120,
            disorder_secs: 240,
            disorder_rate: 0.02,
            malformed_rate: 0.0005,
            strip: Vec::new(),
            profile: Profile::Standard,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid option --{option}: {reason}")]
    InvalidOption { option: &'static str, reason: String },
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing labels: {0}")]
    Labels(#[from] LabelsError),
}

/// What was generated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GenerateSummary {
    /// Valid records written.
    pub records: u64,
    /// Malformed lines written (in addition to `records`).
    pub malformed: u64,
    /// Records delivered out of event-time order.
    pub late: u64,
    /// Distinct monitored accounts with at least one record.
    pub accounts: u64,
    /// Positive accounts per rule id (large_value: accounts with at least one report).
    pub positives_by_rule: BTreeMap<String, u64>,
    /// Labelled accounts per typology, look-alikes included.
    pub accounts_by_typology: BTreeMap<String, u64>,
    /// Expected large-value reports (lines in the labels file).
    pub large_value_reports: u64,
    /// First and last Beijing day covered.
    pub first_day: String,
    pub last_day: String,
}

/// Lower bound on `--records`: every typology keeps a few cases of a minimum size, which only
/// fits the ±5 % tolerance from here on.
pub const MIN_RECORDS: u64 = 10_000;

/// Upper bound on `--records`; the event table is held in memory (32 bytes per record).
pub const MAX_RECORDS: u64 = 50_000_000;

struct Checked {
    profile: Profile,
    records: u64,
    seed: u64,
    base_epoch_day: i64,
    days: u32,
}

fn check(opts: &GenerateOptions) -> Result<Checked, GenerateError> {
    let bad = |option: &'static str, reason: String| GenerateError::InvalidOption { option, reason };
    if !(MIN_RECORDS..=MAX_RECORDS).contains(&opts.records) {
        return Err(bad(
            "records",
            format!(
                "{} is outside {MIN_RECORDS}..={MAX_RECORDS} (below that the planted cases alone exceed the target)",
                opts.records
            ),
        ));
    }
    let base = time::parse_date(&opts.start).ok_or_else(|| {
        bad(
            "start",
            format!("{:?} is not a date YYYY-MM-DD (1971–2999)", opts.start),
        )
    })?;
    if !(21..=3_660).contains(&opts.days) {
        return Err(bad(
            "days",
            format!("{} is outside 21..=3660 (monthly payout schemes need room)", opts.days),
        ));
    }
    for (name, v) in [
        ("disorder-rate", opts.disorder_rate),
        ("malformed-rate", opts.malformed_rate),
    ] {
        if !(0.0..=1.0).contains(&v) || v.is_nan() {
            return Err(bad(name, format!("{v} is not a share in 0..=1")));
        }
    }
    if opts.disorder_secs > 86_400 {
        return Err(bad("disorder-secs", format!("{} exceeds one day", opts.disorder_secs)));
    }
    Ok(Checked {
        profile: opts.profile,
        records: opts.records,
        seed: opts.seed,
        base_epoch_day: base,
        days: opts.days,
    })
}

type Gen = fn(&mut World, &mut Rng, f64);

/// How many of each case a stream gets: `per_million` instances per million records (at
/// least `min`), each sized to about `mean_events` ledger entries at full scale. On small
/// streams the count stays at `min` and each instance's budget shrinks instead.
struct Kind {
    tag: u64,
    per_million: f64,
    min: u64,
    mean_events: f64,
    gen: Gen,
}

const KINDS: &[Kind] = &[
    Kind {
        tag: 101,
        per_million: 90.0,
        min: 3,
        mean_events: 140.0,
        gen: schemes::scatter_in,
    },
    Kind {
        tag: 102,
        per_million: 70.0,
        min: 3,
        mean_events: 450.0,
        gen: schemes::ponzi,
    },
    Kind {
        tag: 103,
        per_million: 60.0,
        min: 3,
        mean_events: 350.0,
        gen: schemes::periodic_payout,
    },
    Kind {
        tag: 104,
        per_million: 90.0,
        min: 3,
        mean_events: 50.0,
        gen: schemes::rapid_pass_through,
    },
    Kind {
        tag: 105,
        per_million: 90.0,
        min: 3,
        mean_events: 20.0,
        gen: schemes::structuring,
    },
    Kind {
        tag: 201,
        per_million: 30.0,
        min: 2,
        mean_events: 3_000.0,
        gen: lookalikes::qr_merchant,
    },
    Kind {
        tag: 202,
        per_million: 50.0,
        min: 2,
        mean_events: 350.0,
        gen: lookalikes::wholesaler,
    },
    Kind {
        tag: 203,
        per_million: 50.0,
        min: 2,
        mean_events: 450.0,
        gen: lookalikes::payroll,
    },
    Kind {
        tag: 204,
        per_million: 12.0,
        min: 2,
        mean_events: 3_000.0,
        gen: lookalikes::gig_platform,
    },
    Kind {
        tag: 205,
        per_million: 50.0,
        min: 2,
        mean_events: 350.0,
        gen: lookalikes::crowdfunding,
    },
    Kind {
        tag: 206,
        per_million: 150.0,
        min: 3,
        mean_events: 60.0,
        gen: lookalikes::salary_same_day,
    },
    Kind {
        tag: 207,
        per_million: 12.0,
        min: 1,
        mean_events: 300.0,
        gen: lookalikes::school_tuition,
    },
    Kind {
        tag: 208,
        per_million: 12.0,
        min: 1,
        mean_events: 400.0,
        gen: lookalikes::care_home,
    },
    Kind {
        tag: 209,
        per_million: 10.0,
        min: 1,
        mean_events: 400.0,
        gen: lookalikes::coop_purchase,
    },
];

/// The evasive profile: schemes that hide the easy signals, the standard pass-through and
/// structuring cases, the standard look-alikes and the evasive ones.
const EVASIVE_KINDS: &[Kind] = &[
    Kind {
        tag: 301,
        per_million: 80.0,
        min: 4,
        mean_events: 420.0,
        gen: evasive::split_scheme,
    },
    Kind {
        tag: 302,
        per_million: 40.0,
        min: 2,
        mean_events: 380.0,
        gen: evasive::collect_and_pay,
    },
    Kind {
        tag: 303,
        per_million: 40.0,
        min: 2,
        mean_events: 300.0,
        gen: evasive::periodic_payout,
    },
    Kind {
        tag: 304,
        per_million: 60.0,
        min: 3,
        mean_events: 120.0,
        gen: evasive::scatter_in,
    },
    Kind {
        tag: 104,
        per_million: 90.0,
        min: 3,
        mean_events: 50.0,
        gen: schemes::rapid_pass_through,
    },
    Kind {
        tag: 105,
        per_million: 90.0,
        min: 3,
        mean_events: 20.0,
        gen: schemes::structuring,
    },
    Kind {
        tag: 201,
        per_million: 30.0,
        min: 2,
        mean_events: 3_000.0,
        gen: lookalikes::qr_merchant,
    },
    Kind {
        tag: 202,
        per_million: 50.0,
        min: 2,
        mean_events: 350.0,
        gen: lookalikes::wholesaler,
    },
    Kind {
        tag: 203,
        per_million: 30.0,
        min: 2,
        mean_events: 450.0,
        gen: lookalikes::payroll,
    },
    Kind {
        tag: 204,
        per_million: 8.0,
        min: 1,
        mean_events: 3_000.0,
        gen: lookalikes::gig_platform,
    },
    Kind {
        tag: 205,
        per_million: 30.0,
        min: 2,
        mean_events: 350.0,
        gen: lookalikes::crowdfunding,
    },
    Kind {
        tag: 206,
        per_million: 100.0,
        min: 3,
        mean_events: 60.0,
        gen: lookalikes::salary_same_day,
    },
    Kind {
        tag: 207,
        per_million: 8.0,
        min: 1,
        mean_events: 300.0,
        gen: lookalikes::school_tuition,
    },
    Kind {
        tag: 208,
        per_million: 8.0,
        min: 1,
        mean_events: 400.0,
        gen: lookalikes::care_home,
    },
    Kind {
        tag: 209,
        per_million: 8.0,
        min: 1,
        mean_events: 400.0,
        gen: lookalikes::coop_purchase,
    },
    Kind {
        tag: 401,
        per_million: 60.0,
        min: 3,
        mean_events: 130.0,
        gen: evasive_lookalikes::family_event,
    },
    Kind {
        tag: 402,
        per_million: 30.0,
        min: 3,
        mean_events: 120.0,
        gen: evasive_lookalikes::class_fees,
    },
    Kind {
        tag: 403,
        per_million: 25.0,
        min: 3,
        mean_events: 300.0,
        gen: evasive_lookalikes::group_buying,
    },
    Kind {
        tag: 404,
        per_million: 30.0,
        min: 3,
        mean_events: 150.0,
        gen: evasive_lookalikes::rent_collection,
    },
    Kind {
        tag: 405,
        per_million: 20.0,
        min: 3,
        mean_events: 120.0,
        gen: evasive_lookalikes::membership_fees,
    },
    Kind {
        tag: 406,
        per_million: 25.0,
        min: 3,
        mean_events: 120.0,
        gen: evasive_lookalikes::rotating_savings,
    },
    Kind {
        tag: 407,
        per_million: 30.0,
        min: 3,
        mean_events: 250.0,
        gen: evasive_lookalikes::parttime_pay,
    },
    Kind {
        tag: 408,
        per_million: 30.0,
        min: 3,
        mean_events: 120.0,
        gen: evasive_lookalikes::fixed_salary,
    },
    Kind {
        tag: 409,
        per_million: 15.0,
        min: 3,
        mean_events: 250.0,
        gen: evasive_lookalikes::property_fees,
    },
    Kind {
        tag: 410,
        per_million: 15.0,
        min: 2,
        mean_events: 300.0,
        gen: evasive_lookalikes::staff_canteen,
    },
];

const TAG_WORLD: u64 = 1;
const TAG_POOLS: u64 = 2;
const TAG_BOUNDARY: u64 = 3;
const TAG_BG_P: u64 = 4;
const TAG_BG_C: u64 = 5;
const TAG_FILL: u64 = 6;

/// Build the whole world of events for the checked options.
fn build(c: &Checked) -> World {
    let cal = time::Calendar {
        base_epoch_day: c.base_epoch_day,
        days: c.days,
    };
    let mut w = World::new(cal, c.seed, sub_rng(c.seed, TAG_WORLD, 0));
    w.evs.reserve((c.records + c.records / 16) as usize);
    let n = c.records as f64;
    let mut rng = sub_rng(c.seed, TAG_POOLS, 0);
    background::setup_pools(&mut w, &mut rng, c.records);

    // Background customers exist before the planted cases so that victims, employees and
    // donors can be the bank's own customers. Their traffic is generated last, sized to fill
    // whatever the planted cases left of the requested total.
    let per_day_p = 0.45;
    let per_day_c = 2.5;
    let n_p = ((0.55 * n) / (per_day_p * c.days as f64)).max(30.0) as usize;
    let n_c = ((0.17 * n) / (per_day_c * c.days as f64)).max(5.0) as usize;
    background::create_background(&mut w, &mut rng, n_p, n_c);

    let kinds = match c.profile {
        Profile::Standard => KINDS,
        Profile::Evasive => EVASIVE_KINDS,
    };
    for k in kinds {
        let want = k.per_million * n / 1e6;
        let count = (want.round() as u64).max(k.min);
        let fit = (want / count as f64).min(1.0);
        // On small streams the minimum pattern sizes inflate each case beyond its share; a
        // further cut keeps the planted share of the stream about the same at every size.
        let budget = k.mean_events * fit * if fit < 1.0 { 0.5 + 0.5 * fit } else { 1.0 };
        for i in 0..count {
            let mut r = sub_rng(c.seed, k.tag, i);
            (k.gen)(&mut w, &mut r, budget);
        }
    }
    let sets = (c.records / 400_000).max(1);
    for i in 0..sets {
        let mut r = sub_rng(c.seed, TAG_BOUNDARY, i);
        background::boundary_set(&mut w, &mut r);
    }

    // Fill: spread what is left over the background accounts in a shuffled order; each account
    // takes its share of what remains, so early over- or under-shoot is absorbed by the rest.
    let memos = background::BgMemos::new(&mut w);
    let mut order: Vec<(bool, u32)> = w
        .bg_personal
        .iter()
        .map(|&a| (false, a))
        .chain(w.bg_corporate.iter().map(|&a| (true, a)))
        .collect();
    let mut shuffle_rng = sub_rng(c.seed, TAG_FILL, 0);
    rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut shuffle_rng);
    let corp_weight = per_day_c / per_day_p;
    let mut weight_left: f64 = order
        .iter()
        .map(|(corp, _)| if *corp { corp_weight } else { 1.0 })
        .sum();
    for (i, &(corp, a)) in order.iter().enumerate() {
        let left = c.records as f64 - w.evs.len() as f64;
        let wgt = if corp { corp_weight } else { 1.0 };
        let share = (left.max(0.0) / weight_left.max(1.0)) * wgt;
        weight_left -= wgt;
        let mut r = sub_rng(c.seed, if corp { TAG_BG_C } else { TAG_BG_P }, i as u64);
        // Activity varies a lot between customers (mean-one log-normal factor).
        // Never more than what is left: with few accounts the last draws would overshoot.
        let target = (share * lognormal(&mut r, 1.0, 0.7) / (0.245f64).exp()).min(left.max(0.0));
        if corp {
            background::corporate(&mut w, &mut r, &memos, a, target);
        } else {
            background::personal(&mut w, &mut r, &memos, a, target);
        }
    }
    // Top up with extra customers if the total is still short (bounded: each new customer
    // adds entries with overwhelming probability, the cap only rules out an endless loop).
    let mut extra = 0u64;
    while (w.evs.len() as u64) < c.records * 995 / 1000 && extra < c.records {
        let mut r = sub_rng(c.seed, TAG_FILL, 1 + extra);
        let a = w.new_our_personal(&mut r);
        let left = c.records as f64 - w.evs.len() as f64;
        background::personal(&mut w, &mut r, &memos, a, left.min(per_day_p * c.days as f64 * 2.0));
        extra += 1;
    }
    w
}

/// Generate a stream into `out` and its labels into `labels`.
pub fn generate<W: Write, L: Write>(
    opts: &GenerateOptions,
    out: W,
    labels: L,
) -> Result<GenerateSummary, GenerateError> {
    let c = check(opts)?;
    let mut w = build(&c);
    w.evs.sort_unstable_by_key(|e| e.sort_key());
    let hits = lv::compute(&w);

    let cfg = output::OutCfg {
        seed: c.seed,
        disorder_secs: opts.disorder_secs,
        disorder_rate: opts.disorder_rate,
        malformed_rate: opts.malformed_rate,
        strip: opts.strip.iter().fold(0, |b, f| b | f.bit()),
    };
    let stats = output::write_stream(&mut w, &cfg, out)?;

    // Distinct monitored accounts that actually appear.
    let mut seen = vec![false; w.accts.len()];
    for e in &w.evs {
        seen[e.account as usize] = true;
    }
    let accounts = seen.iter().filter(|s| **s).count() as u64;

    let lab = make_labels(&w, &hits, &seen);
    let mut labels_out = std::io::BufWriter::new(labels);
    lab.write(&mut labels_out)?;
    labels_out.flush()?;

    let mut positives_by_rule: BTreeMap<String, u64> = BTreeMap::new();
    for r in RULES {
        positives_by_rule.insert(r.to_string(), lab.truth(r).len() as u64);
    }
    let mut accounts_by_typology: BTreeMap<String, u64> = BTreeMap::new();
    for a in &lab.accounts {
        *accounts_by_typology.entry(a.typology.clone()).or_insert(0) += 1;
    }
    let day = |d: u32| {
        let (y, m, dd) = time::civil_from_days(c.base_epoch_day + d as i64);
        format!("{y:04}-{m:02}-{dd:02}")
    };
    Ok(GenerateSummary {
        records: stats.records,
        malformed: stats.malformed,
        late: stats.displaced,
        accounts,
        positives_by_rule,
        accounts_by_typology,
        large_value_reports: lab.large_value.len() as u64,
        first_day: day(0),
        last_day: day(c.days - 1),
    })
}

fn make_labels(w: &World, hits: &[lv::Hit], seen: &[bool]) -> Labels {
    let mut labels = Labels::default();
    for p in &w.planted {
        // Labels only name accounts that appear in the stream; a case squeezed out entirely
        // (only possible at the very edge of tiny windows) is not a positive anyone could find.
        if !seen[p.account as usize] {
            continue;
        }
        let mut rules = Vec::new();
        for (bit, id) in [
            (R_SCATTER, RULES[0]),
            (R_PERIODIC, RULES[1]),
            (R_RAPID, RULES[2]),
            (R_STRUCT, RULES[3]),
        ] {
            if p.rules & bit != 0 {
                rules.push(id.to_string());
            }
        }
        labels.accounts.push(AccountLabel {
            account: w.account_name(p.account),
            typology: p.typology.to_string(),
            rules,
            detail: if p.detail.is_empty() {
                None
            } else {
                Some(p.detail.clone())
            },
            scheme: (p.scheme != 0).then(|| format!("S{:06}", p.scheme)),
            role: (!p.role.is_empty()).then(|| p.role.to_string()),
        });
    }
    let mut lvs: Vec<LargeValueLabel> = hits
        .iter()
        .map(|h| {
            let (y, m, d) = time::civil_from_days(w.cal.base_epoch_day + h.day as i64);
            LargeValueLabel {
                account: w.account_name(h.account),
                day: format!("{y:04}-{m:02}-{d:02}"),
                direction: if h.out { "out" } else { "in" }.to_string(),
                line: lv::LINE_NAMES[h.line as usize].to_string(),
            }
        })
        .collect();
    lvs.sort();
    labels.large_value = lvs;
    labels.schemes = scheme_lines(w, seen);
    labels
}

/// One scheme line per scheme with a labelled (seen) collector or payout account, from the
/// flows noted as its entries were written.
fn scheme_lines(w: &World, seen: &[bool]) -> Vec<SchemeLabel> {
    let mut members: BTreeMap<u32, Vec<&model::Planted>> = BTreeMap::new();
    for p in &w.planted {
        if p.scheme != 0 && seen[p.account as usize] && !p.role.is_empty() {
            let m = members.entry(p.scheme).or_default();
            if !m.iter().any(|q| q.account == p.account) {
                m.push(p);
            }
        }
    }
    let region = |a: u32| {
        w.monitored(a)
            .then(|| REGIONS[w.accts[a as usize].region as usize].to_string())
    };
    let mut out = Vec::new();
    for (scheme, ps) in members {
        let role = |r: &str| ps.iter().find(|p| p.role == r).map(|p| p.account);
        let (collector, payout) = (role("collector"), role("payout"));
        let Some(lead) = collector.or(payout) else {
            continue; // cut short: only receivers were labelled
        };
        let Some(f) = w.flows.get(scheme as usize - 1) else {
            continue;
        };
        let distinct = |xs: &[(u32, u64)]| {
            xs.iter()
                .map(|x| x.0)
                .collect::<std::collections::BTreeSet<u32>>()
                .len() as u64
        };
        let (investors, raised) = if collector.is_some() {
            (distinct(&f.paid_in), f.paid_in.iter().map(|x| x.1).sum::<u64>())
        } else {
            (distinct(&f.paid_out), 0)
        };
        let paid_back: u64 = f.paid_out.iter().map(|x| x.1).sum();
        let accounts: Vec<SchemeAccount> = ps
            .iter()
            .map(|p| SchemeAccount {
                account: w.account_name(p.account),
                role: p.role.to_string(),
                region: region(p.account),
            })
            .collect();
        let mut regions: Vec<String> = accounts.iter().filter_map(|a| a.region.clone()).collect();
        regions.sort();
        regions.dedup();
        out.push(SchemeLabel {
            scheme: format!("S{scheme:06}"),
            typology: f.typology.to_string(),
            investors,
            raised: labels::format_yuan(raised),
            paid_back: labels::format_yuan(paid_back),
            lead_region: region(lead),
            regions,
            accounts,
        });
    }
    out
}
