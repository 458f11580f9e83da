//! Planted fund-raising typologies (the positives of the behavioural rules).
//!
//! Each generator draws its own shape — size, period, ticket style, memo habit, channel mix,
//! timing — from wide ranges, so rules tuned on these streams meet many variants rather than
//! one template. `budget` is the expected number of ledger entries this instance may use; it
//! only bites on small streams, where caps shrink the sizes but never below the minimum that
//! still makes the pattern what its label says.

use crate::model::*;
use crate::time::{after_hours, tod, Tod, DAY, HOUR, MIN};
use crate::util::*;
use rand::Rng as _;

// ---------------------------------------------------------------------------------------------
// Shared building blocks

/// How a scheme prices its tickets (principal per subscription), in yuan.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Tickets {
    Menu(&'static [(u64, u32)]),
    /// `unit × k`, k log-uniform in [lo, hi].
    Mult {
        unit: u64,
        lo: u64,
        hi: u64,
    },
    /// Evasive profile: no round tickets. `lucky_pct` % lucky numbers, the rest log-normal
    /// (median, sigma in %) clamped to [lo, hi] yuan, `cents_pct` % with cents, `ten_pct` %
    /// rounded to 10 yuan, the others to 1 yuan.
    Ragged {
        lucky_pct: u8,
        median: u32,
        sigma_pct: u16,
        lo: u32,
        hi: u32,
        cents_pct: u8,
        ten_pct: u8,
    },
}

/// Lucky-number tickets (yuan).
pub(crate) const LUCKY_YUAN: &[u64] = &[
    6_666, 6_888, 8_888, 9_999, 16_800, 16_888, 18_888, 26_888, 28_888, 36_888, 58_888, 66_666, 68_888,
];

const MENU_SMALL: &[(u64, u32)] = &[(1_000, 2), (2_000, 3), (3_000, 2), (5_000, 5), (10_000, 4)];
const MENU_STD: &[(u64, u32)] = &[
    (5_000, 3),
    (10_000, 6),
    (20_000, 4),
    (30_000, 2),
    (50_000, 4),
    (100_000, 2),
];
const MENU_BIG: &[(u64, u32)] = &[(50_000, 4), (100_000, 5), (200_000, 3), (300_000, 2), (500_000, 1)];
const MENU_LUCKY: &[(u64, u32)] = &[
    (6_666, 2),
    (8_888, 3),
    (16_800, 2),
    (18_888, 2),
    (66_666, 1),
    (88_888, 1),
    (10_000, 2),
];

#[derive(Clone, Copy, Debug)]
pub(crate) struct TicketStyle {
    pub kind: Tickets,
    /// Share of payments that are not a clean ticket (odd top-ups, fees netted off).
    pub nonround: f64,
    pub name: &'static str,
}

impl TicketStyle {
    pub fn draw(rng: &mut Rng, small: bool) -> TicketStyle {
        let nonround = pick_w(rng, &[(0.0, 3), (0.05, 4), (0.15, 3), (0.3, 1)]);
        // Small schemes (total around 100,000 yuan) still sell tickets of a few thousand.
        if small {
            let (kind, name) = pick_w(
                rng,
                &[
                    ((Tickets::Menu(MENU_SMALL), "menu_small"), 4),
                    (
                        (
                            Tickets::Mult {
                                unit: 500,
                                lo: 4,
                                hi: 20,
                            },
                            "mult500",
                        ),
                        4,
                    ),
                    (
                        (
                            Tickets::Mult {
                                unit: 1_000,
                                lo: 2,
                                hi: 20,
                            },
                            "mult1000",
                        ),
                        2,
                    ),
                ],
            );
            return TicketStyle { kind, nonround, name };
        }
        let (kind, name) = pick_w(
            rng,
            &[
                ((Tickets::Menu(MENU_SMALL), "menu_small"), 2),
                ((Tickets::Menu(MENU_STD), "menu_std"), 5),
                ((Tickets::Menu(MENU_BIG), "menu_big"), 2),
                ((Tickets::Menu(MENU_LUCKY), "menu_lucky"), 1),
                (
                    (
                        Tickets::Mult {
                            unit: 500,
                            lo: 2,
                            hi: 60,
                        },
                        "mult500",
                    ),
                    3,
                ),
                (
                    (
                        Tickets::Mult {
                            unit: 1_000,
                            lo: 1,
                            hi: 100,
                        },
                        "mult1000",
                    ),
                    3,
                ),
                (
                    (
                        Tickets::Mult {
                            unit: 10_000,
                            lo: 1,
                            hi: 30,
                        },
                        "mult10000",
                    ),
                    2,
                ),
            ],
        );
        TicketStyle { kind, nonround, name }
    }

    /// A clean ticket (fen).
    pub fn clean(&self, rng: &mut Rng) -> u64 {
        let yuan = match self.kind {
            Tickets::Menu(m) => pick_w(rng, m),
            Tickets::Mult { unit, lo, hi } => unit * log_uniform_int(rng, lo, hi),
            Tickets::Ragged {
                lucky_pct,
                median,
                sigma_pct,
                lo,
                hi,
                cents_pct,
                ten_pct,
            } => {
                if rng.gen_range(0..100u8) < lucky_pct {
                    pick(rng, LUCKY_YUAN)
                } else {
                    let y = lognormal(rng, median as f64, sigma_pct as f64 / 100.0).clamp(lo as f64, hi as f64);
                    let r = rng.gen_range(0..100u8);
                    return if r < cents_pct {
                        fen(y)
                    } else if r < cents_pct.saturating_add(ten_pct) {
                        round_to(fen(y), 10_00)
                    } else {
                        round_to(fen(y), 100)
                    };
                }
            }
        };
        yuan * 100
    }

    /// A payment: usually a clean ticket, sometimes a ragged amount near one.
    pub fn payment(&self, rng: &mut Rng) -> u64 {
        let t = self.clean(rng);
        if chance(rng, self.nonround) {
            let f = unif(rng, 0.55, 1.45);
            let v = (t as f64 * f) as u64;
            if chance(rng, 0.5) {
                round_to(v, 100) // whole yuan but not a round ticket
            } else {
                v.max(1)
            }
        } else {
            t
        }
    }
}

/// The memo habit of a scheme: how often payers write an investment word, a neutral word, or
/// nothing at all.
#[derive(Clone, Debug)]
pub(crate) struct MemoMix {
    pub invest: Vec<u16>,
    pub neutral: Vec<u16>,
    pub p_invest: f64,
    pub p_neutral: f64,
    pub name: &'static str,
}

impl MemoMix {
    pub fn pick(&self, rng: &mut Rng) -> u16 {
        let r: f64 = rng.gen();
        if r < self.p_invest && !self.invest.is_empty() {
            pick(rng, &self.invest)
        } else if r < self.p_invest + self.p_neutral && !self.neutral.is_empty() {
            pick(rng, &self.neutral)
        } else {
            0
        }
    }
}

fn invest_words(industry: u8) -> &'static [&'static str] {
    match industry {
        IND_ELDERLY => &[
            "养老床位认购",
            "会员费",
            "养老服务预存",
            "投资",
            "认购",
            "康养项目款",
            "入会费",
        ],
        IND_COOP => &["入股", "股金", "合作社入股", "分红股", "投资款", "认购"],
        IND_EDU => &["课程认购", "教育项目投资", "入股", "项目款", "认购", "投资"],
        _ => &[
            "投资",
            "理财",
            "认购",
            "入股",
            "项目款",
            "投资款",
            "理财认购",
            "认购款",
            "股权认购",
            "基金认购",
            "{M}月理财",
            "项目投资",
        ],
    }
}

pub(crate) const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "罗",
    "高",
];
pub(crate) const GIVEN: [&str; 20] = [
    "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
    "秀兰", "霞",
];

pub(crate) fn draw_memo_mix(w: &mut World, rng: &mut Rng, industry: u8) -> MemoMix {
    let mut invest = w.memos.ids(invest_words(industry));
    if chance(rng, 0.2) {
        // Some payers sign the note with their name ("王芳 认购").
        let words = invest_words(industry);
        for _ in 0..urange(rng, 5, 25) {
            let name = format!("{}{}", pick(rng, &SURNAMES), pick(rng, &GIVEN));
            let sep = if chance(rng, 0.5) { " " } else { "" };
            let id = w.memos.dynamic(format!("{name}{sep}{}", pick(rng, words)));
            invest.push(id);
        }
    }
    let neutral = w.memos.ids(&["转账", "往来款", "转账", "款", "借款", "还款"]);
    let (p_invest, p_neutral, name) = pick_w(
        rng,
        &[
            ((0.85, 0.05, "invest_heavy"), 3),
            ((0.5, 0.25, "mixed"), 4),
            ((0.2, 0.4, "quiet"), 2),
            ((0.0, 0.3, "blank"), 1),
        ],
    );
    MemoMix {
        invest,
        neutral,
        p_invest,
        p_neutral,
        name,
    }
}

/// Industry of a corporate scheme account: mostly the policy's key sectors.
pub(crate) fn scheme_industry(rng: &mut Rng) -> u8 {
    pick_w(
        rng,
        &[
            (IND_INVESTMENT, 34),
            (IND_ELDERLY, 18),
            (IND_COOP, 14),
            (IND_EDU, 14),
            (IND_CONSULTING, 8),
            (IND_TECH, 6),
            (IND_TRADING, 4),
            (IND_AGRICULTURE, 2),
        ],
    )
}

/// A fresh monitored account for a scheme: corporate with probability `corp_p`.
pub(crate) fn scheme_account(w: &mut World, rng: &mut Rng, corp_p: f64) -> (u32, u8) {
    if chance(rng, corp_p) {
        let ind = scheme_industry(rng);
        (w.new_our_corporate(rng, ind), ind)
    } else {
        (w.new_our_personal(rng), IND_NONE)
    }
}

/// How payer arrivals spread over a collection window.
#[derive(Clone, Copy, Debug)]
enum Arrivals {
    Uniform,
    FrontBurst,
    Growing,
    /// Recruitment meetings (推介会): bursts within hours after a few sessions.
    Meetings,
}

pub(crate) struct Payment {
    pub payer: u32,
    pub amount: u64,
    pub t: u32,
    channel: Channel,
}

impl Payment {
    pub fn new(payer: u32, amount: u64, t: u32, channel: Channel) -> Payment {
        Payment {
            payer,
            amount,
            t,
            channel,
        }
    }
}

/// Parameters of one collection wave.
pub(crate) struct Wave<'a> {
    pub start: u32,
    pub window: u32,
    pub payers: usize,
    pub tickets: &'a TicketStyle,
    pub memos: &'a MemoMix,
    pub personal_share: f64,
    /// Payers of earlier waves who may top up (a minority: most payers are new).
    pub previous: &'a [u32],
}

/// Many payers pay into `acct` over the window. Returns payments sorted by time.
pub(crate) fn collect(w: &mut World, rng: &mut Rng, acct: u32, wave: &Wave<'_>) -> Vec<Payment> {
    let arrivals = pick_w(
        rng,
        &[
            (Arrivals::Uniform, 3),
            (Arrivals::FrontBurst, 2),
            (Arrivals::Growing, 2),
            (Arrivals::Meetings, 2),
        ],
    );
    let meetings: Vec<u32> = (0..urange(rng, 1, 4))
        .map(|_| {
            wave.start + rng.gen_range(0..wave.window.max(1)) / DAY * DAY + pick(rng, &[9u32, 10, 14, 15, 19]) * HOUR
        })
        .collect();
    let repeat_p = pick_w(rng, &[(0.0, 3), (0.05, 3), (0.12, 2)]);
    let ch_mix: [(Channel, u32); 4] = [
        (Channel::Mobile, rng.gen_range(2..8)),
        (Channel::Online, rng.gen_range(1..5)),
        (Channel::Transfer, rng.gen_range(1..6)),
        (Channel::Counter, rng.gen_range(0..4)),
    ];
    let mut out: Vec<Payment> = Vec::with_capacity(wave.payers + 4);
    let mut fresh: Vec<u32> = Vec::with_capacity(wave.payers);
    let mut i = 0;
    while i < wave.payers {
        let u: f64 = rng.gen();
        let pos = match arrivals {
            Arrivals::Uniform => u,
            Arrivals::FrontBurst => {
                if chance(rng, 0.55) {
                    u * 0.2
                } else {
                    u
                }
            }
            Arrivals::Growing => u.sqrt(),
            Arrivals::Meetings => -1.0,
        };
        let t = if pos < 0.0 && chance(rng, 0.75) {
            pick(rng, &meetings) + rng.gen_range(0..3 * HOUR)
        } else {
            let p = if pos < 0.0 { u } else { pos.min(0.9999) };
            let day = wave.start / DAY + ((p * wave.window as f64) as u32) / DAY;
            day * DAY + tod(rng, Tod::Daytime)
        };
        let channel = pick_w(rng, &ch_mix);
        // Counter payments happen in banking hours.
        let t = if channel == Channel::Counter {
            t / DAY * DAY + tod(rng, Tod::Business)
        } else {
            t
        };
        let t = t.clamp(wave.start, wave.start + wave.window - 1);
        let payer = if !fresh.is_empty() && chance(rng, repeat_p) {
            pick(rng, &fresh)
        } else if !wave.previous.is_empty() && chance(rng, repeat_p * 0.5) {
            pick(rng, wave.previous)
        } else {
            let p = if chance(rng, wave.personal_share) {
                w.person(rng, 0.22)
            } else {
                w.company(rng, 0.1)
            };
            fresh.push(p);
            i += 1;
            p
        };
        let amount = wave.tickets.payment(rng);
        out.push(Payment {
            payer,
            amount,
            t,
            channel,
        });
    }
    out.sort_by_key(|p| p.t);
    for p in &out {
        let memo = wave.memos.pick(rng);
        w.transfer(p.t, p.payer, acct, p.amount, p.channel, memo);
    }
    out
}

/// Move `share` of `total` out in 1–3 transfers to the scheme's 1–2 destinations, starting
/// `delay` after `after`. Returns the time of the last transfer.
/// Memos of the standard profile's sweeps.
pub(crate) const SWEEP_MEMOS: &[&str] = &["", "", "转账", "往来款", "投资款", "借款", "项目投资", "货款"];

/// Move `share` of `total` out in 1–3 transfers to the scheme's 1–2 destinations, starting
/// `delay` after `after`, with one memo drawn from `memo_words`. Returns the time of the last
/// transfer.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sweep(
    w: &mut World,
    rng: &mut Rng,
    acct: u32,
    after: u32,
    total: u64,
    share: f64,
    dests: &[u32],
    memo_words: &[&'static str],
) -> (u32, u64) {
    let n = pick_w(rng, &[(1usize, 4), (2, 3), (3, 2)]);
    let moved = (total as f64 * share) as u64;
    let unit = if moved > 200_000_00 && chance(rng, 0.5) {
        10_000_00
    } else if chance(rng, 0.6) {
        100
    } else {
        1
    };
    let parts = split_amount(rng, moved.max(1), n, unit);
    let memos = w.memos.ids(memo_words);
    let memo_style = pick(rng, &memos);
    // Hours to a couple of days after the last inflow, but never past the end of the stream
    // (a sweep cut off by the window would leave a half-planted case).
    let room_h = (w.horizon.saturating_sub(after + 4 * HOUR) as f64 / HOUR as f64 / 2.0).max(0.05);
    let delay_h = log_uniform(rng, 0.01, 47.0).min(room_h);
    let mut t = after_hours(rng, after, 0.5, 1.0) + (delay_h * HOUR as f64) as u32;
    let mut last = t;
    for p in parts {
        let dest = pick(rng, dests);
        let ch = pick(
            rng,
            &[Channel::Transfer, Channel::Online, Channel::Online, Channel::Counter],
        );
        t = w.clamp_t(t);
        w.transfer(t, acct, dest, p, ch, memo_style);
        last = t;
        t += (log_uniform(rng, 0.02, 3.0).min(room_h / 4.0) * HOUR as f64) as u32;
    }
    (last, moved)
}

/// Where collected money goes: the controller's personal card, a shell company, sometimes an
/// account in this bank (which then shows the mirror entry).
pub(crate) fn controllers(w: &mut World, rng: &mut Rng) -> Vec<u32> {
    let n = pick_w(rng, &[(1usize, 5), (2, 4)]);
    (0..n)
        .map(|_| match rng.gen_range(0..10) {
            0 => {
                let ind = pick(rng, &[IND_TRADING, IND_CONSULTING, IND_TECH]);
                w.new_our_corporate(rng, ind)
            }
            1..=4 => w.new_ext_personal(rng),
            _ => w.new_ext_corporate(rng),
        })
        .collect()
}

/// Light everyday traffic so a scheme account is not a pure textbook case.
pub(crate) fn noise(w: &mut World, rng: &mut Rng, acct: u32, from_day: u32, to_day: u32, rate: f64) {
    let shop_memos = w.memos.ids(&["", "消费", "美团", "京东", "超市", "话费充值", "餐饮"]);
    let p2p_memos = w.memos.ids(&["", "转账", "红包", "还钱"]);
    let corp = w.corporate(acct);
    for day in from_day..to_day.min(w.cal.days) {
        for _ in 0..poisson(rng, rate) {
            let t = day * DAY + tod(rng, Tod::Daytime);
            if corp {
                let m = w.memos.id(pick(rng, &["服务费", "办公用品", "物业费", "房租", ""]));
                let cp = w.ext_merchants[rng.gen_range(0..w.ext_merchants.len())];
                w.transfer(
                    t,
                    acct,
                    cp,
                    fen(lognormal(rng, 800.0, 1.0).min(60_000.0)),
                    Channel::Online,
                    m,
                );
            } else if chance(rng, 0.8) {
                let cp = w.ext_merchants[rng.gen_range(0..w.ext_merchants.len())];
                let ch = pick(rng, &[Channel::Pos, Channel::Mobile, Channel::Mobile, Channel::Online]);
                let memo = pick(rng, &shop_memos);
                w.transfer(t, acct, cp, fen(lognormal(rng, 45.0, 0.9).min(5_000.0)), ch, memo);
            } else {
                let cp = w.new_ext_personal(rng);
                let memo = pick(rng, &p2p_memos);
                w.transfer(
                    t,
                    acct,
                    cp,
                    fen(lognormal(rng, 300.0, 0.8).min(5_000.0)),
                    Channel::Mobile,
                    memo,
                );
            }
        }
    }
}

/// A payout period and how its days are laid out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Period {
    Weekly,
    TenDaily,
    SemiMonthly,
    Monthly,
}

impl Period {
    pub fn days(self) -> u32 {
        match self {
            Period::Weekly => 7,
            Period::TenDaily => 10,
            Period::SemiMonthly => 15,
            Period::Monthly => 30,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Period::Weekly => "weekly",
            Period::TenDaily => "ten_daily",
            Period::SemiMonthly => "semi_monthly",
            Period::Monthly => "monthly",
        }
    }

    /// Rate per period in parts per million of principal. "Analyst" rates are 0.035 % a day,
    /// which makes every payout a multiple of 0.175 yuan per 500 yuan of principal.
    pub fn draw_rate(self, rng: &mut Rng) -> (u64, bool) {
        let analyst = chance(rng, 0.2);
        if analyst {
            return (350 * self.days() as u64, true);
        }
        let r = match self {
            Period::Weekly => pick(rng, &[3_000u64, 4_000, 5_000, 6_000, 8_000, 10_000]),
            Period::TenDaily => pick(rng, &[5_000u64, 6_000, 8_000, 10_000, 12_000]),
            Period::SemiMonthly => pick(rng, &[6_000u64, 8_000, 10_000, 12_500, 15_000]),
            Period::Monthly => pick(rng, &[10_000u64, 12_000, 15_000, 18_000, 20_000, 25_000, 30_000]),
        };
        (r, false)
    }
}

/// Batch days: `first`, then every period with ±1 day jitter, until `end_day`.
pub(crate) fn batch_days(w: &World, rng: &mut Rng, period: Period, first: u32, end_day: u32, max: usize) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::new();
    // Calendar schedules: fixed days of the month (every 10th; 1st/11th/21st; 1st/16th), which
    // makes the gaps uneven (Feb, 31-day months) — detectors must tolerate that.
    let (_, _, first_dom) = w.cal.ymd(first);
    let calendar: Option<Vec<u32>> = match period {
        Period::Monthly if chance(rng, 0.7) => Some(vec![first_dom]),
        Period::TenDaily if chance(rng, 0.5) => {
            Some(pick(rng, &[&[1u32, 11, 21][..], &[5, 15, 25][..], &[10, 20, 31][..]]).to_vec())
        }
        Period::SemiMonthly if chance(rng, 0.5) => {
            Some(pick(rng, &[&[1u32, 16][..], &[15, 31][..], &[5, 20][..]]).to_vec())
        }
        _ => None,
    };
    if let Some(doms) = calendar {
        let mut days: Vec<u32> = doms
            .iter()
            .flat_map(|&d| w.cal.monthly_days(d))
            .filter(|&d| d >= first)
            .collect();
        days.sort_unstable();
        days.dedup();
        for d in days {
            if out.len() >= max {
                break;
            }
            let dd = (d as i64 + jitter_day(rng)).max(first as i64) as u32;
            let dd = dd.max(out.last().map_or(0, |&l| l + 2));
            if dd < end_day {
                out.push(dd);
            }
        }
        if out.len() >= 3.min(max) {
            return out;
        }
        out.clear();
    }
    let mut nominal = first;
    while nominal < end_day && out.len() < max {
        let dd = (nominal as i64 + jitter_day(rng)).max(0) as u32;
        let dd = dd.max(out.last().map_or(0, |&l| l + 2));
        if dd >= end_day {
            break;
        }
        out.push(dd);
        nominal += period.days();
    }
    out
}

fn jitter_day(rng: &mut Rng) -> i64 {
    pick_w(rng, &[(-1i64, 2), (0, 6), (1, 2)])
}

/// One payout batch: many recipients, payments seconds to minutes apart, the whole batch
/// within minutes to a few hours.
pub(crate) struct BatchStyle {
    pub hour: u32,
    pub duration_s: u32,
    pub round_yuan: bool,
    pub memos: Vec<u16>,
    pub blank_p: f64,
    pub channels: [(Channel, u32); 3],
}

impl BatchStyle {
    pub fn draw(w: &mut World, rng: &mut Rng) -> BatchStyle {
        let words: &[&'static str] = pick(
            rng,
            &[
                &["利息", "利息", "{M}月利息"][..],
                &["分红", "{M}月分红", "分红款"][..],
                &["收益", "理财收益", "{M}月收益", "本期收益"][..],
                &["返利", "返利", "推广返利"][..],
                &["利息", "收益", "分红", "返利"][..],
            ],
        );
        BatchStyle {
            hour: pick(rng, &[8u32, 9, 9, 10, 10, 11, 14, 15, 16, 19, 20, 21]),
            duration_s: (log_uniform(rng, 4.0, 240.0) * MIN as f64) as u32,
            round_yuan: chance(rng, 0.2),
            memos: w.memos.ids(words),
            blank_p: pick(rng, &[0.0, 0.05, 0.2, 0.5, 1.0]),
            channels: [
                (Channel::Transfer, rng.gen_range(1..6)),
                (Channel::Online, rng.gen_range(1..6)),
                (Channel::Mobile, rng.gen_range(0..3)),
            ],
        }
    }
}

/// Pay each (recipient, principal) its interest at `rate_ppm`. Returns the batch total.
pub(crate) fn pay_batch(
    w: &mut World,
    rng: &mut Rng,
    acct: u32,
    day: u32,
    style: &BatchStyle,
    rate_ppm: u64,
    recipients: &[(u32, u64)],
) -> u64 {
    let n = recipients.len().max(1) as u32;
    let start = day * DAY + style.hour * HOUR + rng.gen_range(0..30 * MIN);
    let gap = (style.duration_s / n).max(3);
    let mut t = start;
    let mut total = 0;
    let ch = pick_w(rng, &style.channels);
    let order = sample_indices(rng, recipients.len(), recipients.len());
    for i in order {
        let (r, principal) = recipients[i];
        // Half-up rounding to the fen, as a bank's interest module would.
        let mut amt = (principal * rate_ppm + 500_000) / 1_000_000;
        if style.round_yuan {
            amt = round_to(amt, 100);
        }
        let memo = if chance(rng, style.blank_p) {
            0
        } else {
            pick(rng, &style.memos)
        };
        w.transfer(w.clamp_t(t), acct, r, amt.max(1), ch, memo);
        total += amt;
        t += (gap as f64 * unif(rng, 0.3, 1.7)) as u32 + 1;
    }
    total
}

// ---------------------------------------------------------------------------------------------
// 1. 分散转入、集中转出

pub(crate) fn scatter_in(w: &mut World, rng: &mut Rng, budget: f64) {
    let corp_p = 0.45;
    let (acct, ind) = scheme_account(w, rng, corp_p);
    let small = chance(rng, 0.3);
    let tickets = TicketStyle::draw(rng, small);
    let memos = draw_memo_mix(w, rng, ind);
    let cycles = pick_w(rng, &[(1usize, 11), (2, 5), (3, 2), (4, 2)]);
    let cap = (3.0 * budget / cycles as f64).max(10.0) as u64;
    let (lo, hi) = if small { (10, 25) } else { (10, 300) };
    let mut windows: Vec<u32> = (0..cycles)
        .map(|_| (log_uniform(rng, 2.0, 30.0) * DAY as f64) as u32)
        .collect();
    let gaps: Vec<u32> = (0..cycles)
        .map(|_| (unif(rng, 1.0, 20.0) * DAY as f64) as u32)
        .collect();
    // Fit into the window; shrink the collection spans if the stream is short.
    let need = |ws: &[u32]| -> u32 { ws.iter().sum::<u32>() + gaps.iter().take(ws.len()).sum::<u32>() + 3 * DAY };
    while need(&windows) > w.horizon && windows.len() > 1 {
        windows.pop();
    }
    if need(&windows) > w.horizon {
        windows[0] = (w.horizon / 2).max(2 * DAY);
    }
    let span = need(&windows).min(w.horizon);
    let start_day = rng.gen_range(0..=(w.horizon - span) / DAY);
    let dests = controllers(w, rng);
    let personal_share = unif(rng, 0.82, 1.0);
    let out_share_lo = unif(rng, 0.6, 0.95);
    let mut t = start_day * DAY;
    let mut all: Vec<u32> = Vec::new();
    let mut sizes = Vec::new();
    let mut collected_total = 0u64;
    for (c, &win) in windows.iter().enumerate() {
        let payers = log_uniform_int(rng, lo, hi).min(cap) as usize;
        sizes.push(payers);
        let wave = Wave {
            start: t,
            window: win,
            payers,
            tickets: &tickets,
            memos: &memos,
            personal_share,
            previous: &all,
        };
        let pays = collect(w, rng, acct, &wave);
        let total: u64 = pays.iter().map(|p| p.amount).sum();
        collected_total += total;
        let last = pays.last().map_or(t, |p| p.t);
        all.extend(pays.iter().map(|p| p.payer));
        let share = unif(rng, out_share_lo, 1.0);
        let (end, _) = sweep(w, rng, acct, last, total, share, &dests, SWEEP_MEMOS);
        t = (end / DAY + 1) * DAY + gaps[c];
    }
    let noisy = chance(rng, 0.4);
    if noisy {
        noise(w, rng, acct, start_day.saturating_sub(20), t / DAY + 10, 0.3);
    }
    w.label(
        acct,
        "scatter_in",
        R_SCATTER,
        format!(
            "cycles={} payers={:?} tickets={} memo={} collected_yuan={} noise={}",
            windows.len(),
            sizes,
            tickets.name,
            memos.name,
            collected_total / 100,
            noisy
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// 1+2. Ponzi: collect, move principal out, pay "interest" to the investors

pub(crate) fn ponzi(w: &mut World, rng: &mut Rng, budget: f64) {
    let (acct, ind) = scheme_account(w, rng, 0.65);
    let small = chance(rng, 0.25);
    let tickets = TicketStyle::draw(rng, small);
    let memos = draw_memo_mix(w, rng, ind);
    let days = w.cal.days;
    // Period must leave room for a collection window and at least three batches.
    let mut periods = vec![Period::Weekly, Period::TenDaily, Period::SemiMonthly, Period::Monthly];
    periods.retain(|p| p.days() * 3 + 8 <= days);
    if periods.is_empty() {
        return;
    }
    let period = pick(rng, &periods);
    let (rate, analyst) = period.draw_rate(rng);
    let window_days = unif(rng, 2.0, (days - period.days() * 3 - 4).min(30) as f64).max(2.0);
    let max_batches = ((days as f64 - window_days - 2.0) / period.days() as f64) as usize;
    let want_batches = urange(rng, 3, max_batches.clamp(3, 12));
    let span_days = window_days as u32 + period.days() * want_batches as u32 + 3;
    let start_day = rng.gen_range(0..=days.saturating_sub(span_days));
    let dests = controllers(w, rng);
    let personal_share = unif(rng, 0.85, 1.0);
    let style = BatchStyle::draw(w, rng);

    // Size against the budget: payers once, recipients once per batch.
    let overlap = unif(rng, 0.4, 1.0);
    let per_unit = 1.0 + want_batches as f64 * 0.9;
    let cap = ((3.0 * budget) / per_unit).max(10.0) as u64;
    let payers = log_uniform_int(rng, 10, 200).min(cap) as usize;
    let waves = if payers >= 30 {
        pick_w(rng, &[(1usize, 5), (2, 3), (3, 2)])
    } else {
        1
    };

    let first_wave_len = (window_days * DAY as f64) as u32;
    let mut investors: Vec<(u32, u64, u32)> = Vec::new(); // (who, principal, since)
    let mut wave_starts = vec![start_day * DAY];
    for _ in 1..waves {
        let s =
            start_day * DAY + first_wave_len + rng.gen_range(DAY..(period.days() * want_batches as u32).max(2) * DAY);
        wave_starts.push(s);
    }
    wave_starts.sort_unstable();
    let mut prev: Vec<u32> = Vec::new();
    let mut collected = 0u64;
    let mut first_batch_day = 0u32;
    for (k, &ws) in wave_starts.iter().enumerate() {
        if k > 0 && ws + 4 * DAY > w.horizon {
            continue;
        }
        let n = if k == 0 {
            payers.div_ceil(waves).max(10)
        } else {
            (payers / waves).max(5)
        };
        let win = if k == 0 {
            first_wave_len
        } else {
            (unif(rng, 2.0, 12.0) * DAY as f64) as u32
        };
        let win = win.min(w.horizon.saturating_sub(ws + DAY)).max(DAY);
        let wave = Wave {
            start: ws,
            window: win,
            payers: n,
            tickets: &tickets,
            memos: &memos,
            personal_share,
            previous: &prev,
        };
        let pays = collect(w, rng, acct, &wave);
        let total: u64 = pays.iter().map(|p| p.amount).sum();
        collected += total;
        let last = pays.last().map_or(ws, |p| p.t);
        for p in &pays {
            prev.push(p.payer);
            investors.push((p.payer, p.amount, p.t));
        }
        // Principal leaves for the controllers; what stays funds the interest.
        let share = unif(rng, 0.6, 0.92);
        sweep(w, rng, acct, last, total, share, &dests, SWEEP_MEMOS);
        if k == 0 {
            first_batch_day = last / DAY + period.days() + rng.gen_range(0..3);
        }
    }
    // Offline investors (cash, other channels) who also receive interest, so that payers make
    // up `overlap` of the recipients.
    let n_payer_recipients = investors.len();
    let offline = ((n_payer_recipients as f64) * (1.0 - overlap) / overlap).round() as usize;
    let offline = offline.max(8usize.saturating_sub(n_payer_recipients));
    for _ in 0..offline {
        let p = w.person(rng, 0.2);
        investors.push((p, tickets.clean(rng), 0));
    }
    // Consolidate principals per investor (top-ups add up).
    investors.sort_by_key(|x| x.0);
    let mut merged: Vec<(u32, u64, u32)> = Vec::new();
    for x in investors {
        match merged.last_mut() {
            Some(m) if m.0 == x.0 => {
                m.1 += x.1;
                m.2 = m.2.min(x.2);
            }
            _ => merged.push(x),
        }
    }
    // Half the schemes collapse after the planned batches; the rest pay on while the budget of
    // ledger entries allows.
    let collapse = chance(rng, 0.5);
    let affordable = ((3.0 * budget) / merged.len().clamp(8, 300) as f64) as usize;
    let max_b = if collapse {
        want_batches
    } else {
        affordable.clamp(want_batches, 24)
    };
    let bdays = batch_days(w, rng, period, first_batch_day, days, max_b);
    let mut paid_batches = 0;
    for &d in &bdays {
        // Investors are paid from the first period after they joined.
        let rec: Vec<(u32, u64)> = merged
            .iter()
            .filter(|x| x.2 + period.days() * DAY / 2 <= d * DAY)
            .map(|x| (x.0, x.1))
            .collect();
        if rec.len() < 8 {
            continue;
        }
        let rec: Vec<(u32, u64)> = rec.into_iter().take(300).collect();
        pay_batch(w, rng, acct, d, &style, rate, &rec);
        paid_batches += 1;
    }
    if chance(rng, 0.35) {
        noise(w, rng, acct, start_day, (start_day + span_days + 20).min(days), 0.25);
    }
    // Should the payouts have fallen short of three batches, this is only a collection scheme.
    let (typology, rules) = if paid_batches >= 3 {
        ("ponzi_collect_and_pay", R_SCATTER | R_PERIODIC)
    } else {
        ("scatter_in", R_SCATTER)
    };
    w.label(
        acct,
        typology,
        rules,
        format!(
            "payers={} waves={} offline={} period={} rate_ppm={} analyst={} batches={} tickets={} memo={} collected_yuan={}",
            n_payer_recipients,
            waves,
            offline,
            period.name(),
            rate,
            analyst,
            paid_batches,
            tickets.name,
            memos.name,
            collected / 100
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// 2. 定期批量小额转出 (interest payer whose collection happened elsewhere)

pub(crate) fn periodic_payout(w: &mut World, rng: &mut Rng, budget: f64) {
    let (acct, _) = scheme_account(w, rng, 0.6);
    let days = w.cal.days;
    let mut periods = vec![Period::Weekly, Period::TenDaily, Period::SemiMonthly, Period::Monthly];
    periods.retain(|p| p.days() * 3 + 4 <= days);
    if periods.is_empty() {
        return;
    }
    let period = pick(rng, &periods);
    let (rate, analyst) = period.draw_rate(rng);
    let small = chance(rng, 0.3);
    let tickets = TicketStyle::draw(rng, small);
    let max_batches = ((days - 2) / period.days()) as usize;
    let want = urange(rng, 3, max_batches.clamp(3, 14));
    let cap = ((3.0 * budget) / (want as f64 + 0.5)).max(8.0) as u64;
    let n0 = log_uniform_int(rng, 8, 300).min(cap).max(8) as usize;
    let growth = pick(rng, &[0.0, 0.0, 0.05, 0.1, 0.2]);
    let drop = pick(rng, &[0.0, 0.02, 0.05]);
    let span = period.days() * want as u32 + 2;
    let first = rng.gen_range(1..=days.saturating_sub(span).max(1));
    let style = BatchStyle::draw(w, rng);
    let our_share = unif(rng, 0.0, 0.35);
    let mut investors: Vec<(u32, u64)> = (0..n0)
        .map(|_| (w.person(rng, our_share), tickets.clean(rng)))
        .collect();
    // Funding from the controller: one large injection, or top-ups before each batch.
    let funder = if chance(rng, 0.3) {
        w.new_our_corporate(rng, IND_INVESTMENT)
    } else {
        w.new_ext_corporate(rng)
    };
    let per_batch_funding = chance(rng, 0.6);
    let fund_memo = w.memos.id(pick(rng, &["", "转账", "往来款", "资金调拨", "备用金"]));
    let bdays = batch_days(w, rng, period, first, days, want);
    let est_batch: u64 = investors.iter().map(|x| x.1 * rate / 1_000_000).sum();
    if !per_batch_funding {
        let amt = round_to(est_batch * bdays.len() as u64 * 11 / 10, 10_000_00);
        let t = first.saturating_sub(1) * DAY + tod(rng, Tod::Business);
        w.transfer(t, funder, acct, amt, Channel::Transfer, fund_memo);
    }
    let mut batches = 0;
    for &d in &bdays {
        if per_batch_funding {
            let amt = round_to((est_batch as f64 * unif(rng, 1.0, 1.25)) as u64 + 1, 1_000_00);
            let fd = d.saturating_sub(urange(rng, 0, 2) as u32);
            let t = fd * DAY + tod(rng, Tod::Business).min(style.hour * HOUR);
            w.transfer(t.saturating_sub(HOUR), funder, acct, amt, Channel::Transfer, fund_memo);
        }
        pay_batch(w, rng, acct, d, &style, rate, &investors[..investors.len().min(300)]);
        batches += 1;
        // The investor base drifts: newcomers join, a few stop being paid.
        let add = (investors.len() as f64 * growth * unif(rng, 0.5, 1.5)) as usize;
        for _ in 0..add {
            investors.push((w.person(rng, our_share), tickets.clean(rng)));
        }
        if investors.len() > 8 {
            investors.retain(|_| !chance(rng, drop));
        }
    }
    if chance(rng, 0.35) {
        noise(w, rng, acct, first.saturating_sub(20), first + span + 20, 0.2);
    }
    w.label(
        acct,
        "periodic_payout",
        R_PERIODIC,
        format!(
            "recipients={} period={} rate_ppm={} analyst={} batches={} batch_minutes={} tickets={}",
            n0,
            period.name(),
            rate,
            analyst,
            batches,
            style.duration_s / 60,
            tickets.name
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// 3. 快进快出

pub(crate) fn rapid_pass_through(w: &mut World, rng: &mut Rng, _budget: f64) {
    let (acct, _) = if chance(rng, 0.65) {
        (w.new_our_personal(rng), IND_NONE)
    } else {
        let ind = pick(
            rng,
            &[IND_TRADING, IND_TECH, IND_CONSULTING, IND_WHOLESALE, IND_INVESTMENT],
        );
        (w.new_our_corporate(rng, ind), ind)
    };
    let days = w.cal.days;
    let cycles = urange(rng, 3, 15);
    // Leave a week of slack after the span: cycles pushed apart may run past it.
    let span_days = (log_uniform(rng, 3.0, 60.0) as u32)
        .max(cycles as u32 / 2 + 1)
        .min(days.saturating_sub(9).max(2));
    let start_day = rng.gen_range(0..=days.saturating_sub(span_days + 8));
    // Cycle times: spread across the span, at least 6 hours apart.
    let mut starts: Vec<u32> = (0..cycles)
        .map(|_| start_day * DAY + rng.gen_range(0..span_days * DAY))
        .collect();
    starts.sort_unstable();
    for i in 1..starts.len() {
        if starts[i] < starts[i - 1] + 6 * HOUR {
            starts[i] = starts[i - 1] + 6 * HOUR + rng.gen_range(0..4 * HOUR);
        }
    }
    let scale = pick_w(
        rng,
        &[
            ((20_000.0, 100_000.0), 3),
            ((50_000.0, 500_000.0), 4),
            ((200_000.0, 2_000_000.0), 3),
        ],
    );
    let round_p = unif(rng, 0.0, 0.7);
    let upstream: Vec<u32> = (0..urange(rng, 1, 4))
        .map(|_| {
            if chance(rng, 0.6) {
                w.new_ext_corporate(rng)
            } else {
                w.new_ext_personal(rng)
            }
        })
        .collect();
    let downstream: Vec<u32> = (0..urange(rng, 1, 5))
        .map(|_| match rng.gen_range(0..10) {
            0 => w.new_our_personal(rng),
            1..=5 => w.new_ext_personal(rng),
            _ => w.new_ext_corporate(rng),
        })
        .collect();
    let fresh_sources = chance(rng, 0.3);
    let memos = w
        .memos
        .ids(&["", "", "转账", "货款", "往来款", "还款", "借款", "服务费"]);
    let memo_p = unif(rng, 0.0, 0.8);
    let delay_hi_h = pick(rng, &[0.5, 2.0, 4.0, 6.0]);
    let mut cycle_total = 0u64;
    let mut carry = 0u64;
    let mut done = 0;
    for &s in &starts {
        if s + 12 * HOUR >= w.horizon {
            break;
        }
        let s = if s % DAY < 7 * HOUR {
            s / DAY * DAY + tod(rng, Tod::Business)
        } else {
            s
        };
        let m = pick_w(rng, &[(1usize, 5), (2, 3), (3, 2)]);
        let mut t = s;
        let mut inflow = 0u64;
        for _ in 0..m {
            let y = log_uniform(rng, scale.0, scale.1);
            let a = if chance(rng, round_p) {
                round_to(fen(y), 10_000_00)
            } else if chance(rng, 0.5) {
                round_to(fen(y), 100)
            } else {
                fen(y)
            };
            let src = if fresh_sources {
                w.new_ext_personal(rng)
            } else {
                pick(rng, &upstream)
            };
            let memo = if chance(rng, memo_p) { pick(rng, &memos) } else { 0 };
            let ch = pick(rng, &[Channel::Transfer, Channel::Online, Channel::Mobile]);
            w.transfer(t, src, acct, a, ch, memo);
            inflow += a;
            t += (log_uniform(rng, 0.02, 1.0) * HOUR as f64) as u32;
        }
        // 90–100 % leaves within minutes to a few hours; residue stays, occasionally cleared.
        let share = unif(rng, 0.9, 1.0);
        let mut out_total = ((inflow as f64) * share) as u64;
        if chance(rng, 0.3) {
            out_total += carry;
            carry = 0;
        }
        carry += inflow.saturating_sub(out_total);
        let n_out = pick_w(rng, &[(1usize, 4), (2, 4), (3, 2)]);
        let unit = if chance(rng, 0.5) { 100 } else { 1 };
        let parts = split_amount(rng, out_total, n_out, unit);
        let mut to = t + (log_uniform(rng, 0.05, delay_hi_h) * HOUR as f64) as u32;
        for p in parts {
            let d = pick(rng, &downstream);
            let memo = if chance(rng, memo_p) { pick(rng, &memos) } else { 0 };
            let ch = pick(rng, &[Channel::Transfer, Channel::Online, Channel::Mobile]);
            w.transfer(w.clamp_t(to), acct, d, p, ch, memo);
            to += (log_uniform(rng, 0.005, 0.5) * HOUR as f64) as u32;
        }
        cycle_total += inflow;
        done += 1;
    }
    if chance(rng, 0.5) {
        noise(
            w,
            rng,
            acct,
            start_day.saturating_sub(15),
            start_day + span_days + 15,
            0.4,
        );
    }
    w.label(
        acct,
        "rapid_pass_through",
        R_RAPID,
        format!(
            "cycles={} span_days={} max_delay_h={} through_yuan={} upstream={} downstream={}",
            done,
            span_days,
            delay_hi_h,
            cycle_total / 100,
            if fresh_sources { 0 } else { upstream.len() },
            downstream.len()
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// 4. 拆分交易

#[derive(Clone, Copy, Debug, PartialEq)]
enum StructVariant {
    CashUnderLine,
    SplitDay,
    TransferUnder500k,
    CashOutUnderLine,
}

/// A just-under-the-line amount in fen: structurers favour 49,000 / 49,500 / 49,900 but some
/// use ragged amounts to look natural.
fn under_line(rng: &mut Rng, line_yuan: u64, lo_frac: f64) -> u64 {
    let line = line_yuan * 100;
    match rng.gen_range(0..4) {
        0 => {
            let steps = [1_000u64, 500, 200, 100, 50];
            let step = pick(rng, &steps) * line_yuan / 50_000;
            line - step.max(1) * 100 * urange(rng, 1, 5) as u64
        }
        1 => line - irange(rng, 1, 99), // 49,999.xx
        _ => {
            let lo = (line as f64 * lo_frac) as u64;
            irange(rng, lo, line - 1)
        }
    }
}

pub(crate) fn structuring(w: &mut World, rng: &mut Rng, _budget: f64) {
    let corp = chance(rng, 0.15);
    let acct = if corp {
        let ind = pick(rng, &[IND_RETAIL, IND_TRADING, IND_CATERING, IND_CONSTRUCTION]);
        w.new_our_corporate(rng, ind)
    } else {
        w.new_our_personal(rng)
    };
    let mut variant = pick_w(
        rng,
        &[
            (StructVariant::CashUnderLine, 40),
            (StructVariant::SplitDay, 25),
            (StructVariant::TransferUnder500k, 15),
            (StructVariant::CashOutUnderLine, 20),
        ],
    );
    if corp && variant == StructVariant::TransferUnder500k {
        variant = StructVariant::CashUnderLine;
    }
    let days = w.cal.days;
    let k = match variant {
        StructVariant::CashUnderLine | StructVariant::CashOutUnderLine => urange(rng, 3, 10),
        _ => urange(rng, 3, 8),
    };
    let span = (urange(rng, k.max(2), k.max(10) + 4) as u32).min(days - 1);
    let start = rng.gen_range(0..=days - span - 1);
    let mut ds: Vec<u32> = sample_indices(rng, span as usize, k)
        .into_iter()
        .map(|d| start + d as u32)
        .collect();
    ds.sort_unstable();
    // A careless structurer sometimes tops one day over the line (only when enough clean days remain).
    let slip = k >= 4 && chance(rng, 0.15);
    let slip_day = pick(rng, &ds);
    let cash_memos = w.memos.ids(&["", "", "", "存款", "现金存款", "货款", "营业款"]);
    let out_memos = w.memos.ids(&["", "", "取款", "现金支取", "备用金"]);
    let tr_memos = w.memos.ids(&["", "转账", "往来款", "借款", "还款", "货款"]);
    let dest = if chance(rng, 0.5) {
        w.new_ext_personal(rng)
    } else {
        w.new_ext_corporate(rng)
    };
    let transfers_out = chance(rng, 0.7);
    // Cash taken out, or money sent on, has to come from somewhere: one or two large credits
    // a few days before the first withdrawal (not right before each, which would be a
    // pass-through rather than structuring).
    if variant == StructVariant::CashOutUnderLine || (variant == StructVariant::TransferUnder500k && transfers_out) {
        let per = if variant == StructVariant::CashOutUnderLine {
            48_000_00u64
        } else {
            480_000_00
        };
        let need = (per as f64 * k as f64 * unif(rng, 1.0, 1.2)) as u64;
        let first = ds[0];
        let src = if chance(rng, 0.5) {
            w.new_ext_personal(rng)
        } else {
            w.new_ext_corporate(rng)
        };
        let memo = pick(rng, &tr_memos);
        let n = urange(rng, 1, 2);
        for p in split_amount(rng, need, n, 1_000_00) {
            let d = first.saturating_sub(urange(rng, 1, 5) as u32);
            w.transfer(d * DAY + tod(rng, Tod::Business), src, acct, p, Channel::Transfer, memo);
        }
    }
    let mut total = 0u64;
    for &d in &ds {
        match variant {
            StructVariant::CashUnderLine | StructVariant::CashOutUnderLine => {
                let out = variant == StructVariant::CashOutUnderLine;
                let a = under_line(rng, 50_000, 0.9);
                let memo = pick(rng, if out { &out_memos } else { &cash_memos });
                w.cash(d * DAY + tod(rng, Tod::Business), acct, out, a, memo, 0);
                total += a;
                if slip && d == slip_day {
                    w.cash(
                        d * DAY + 17 * HOUR + rng.gen_range(0..HOUR),
                        acct,
                        out,
                        fen(unif(rng, 2_000.0, 20_000.0)),
                        memo,
                        0,
                    );
                }
            }
            StructVariant::SplitDay => {
                let parts = urange(rng, 2, 4);
                let day_total = if chance(rng, 0.15) {
                    4_999_999
                } else {
                    irange(rng, 4_500_000, 4_999_999)
                };
                let unit = if chance(rng, 0.6) { 100_00 } else { 1 };
                let mut amounts = split_amount(rng, day_total, parts, unit);
                if slip && d == slip_day {
                    amounts.push(fen(unif(rng, 1_000.0, 15_000.0)));
                }
                let mut t = d * DAY + 9 * HOUR + rng.gen_range(0..2 * HOUR);
                for a in amounts {
                    let memo = pick(rng, &cash_memos);
                    w.cash(t, acct, false, a, memo, 0);
                    total += a;
                    t += (unif(rng, 0.3, 2.5) * HOUR as f64) as u32;
                }
            }
            StructVariant::TransferUnder500k => {
                let a = under_line(rng, 500_000, 0.9);
                let memo = pick(rng, &tr_memos);
                let t = d * DAY + tod(rng, Tod::Business);
                let ch = pick(rng, &[Channel::Transfer, Channel::Online, Channel::Counter]);
                if transfers_out {
                    w.transfer(t, acct, dest, a, ch, memo);
                } else {
                    w.transfer(t, dest, acct, a, ch, memo);
                }
                total += a;
            }
        }
    }
    // The deposited cash usually moves on afterwards, by transfer.
    if matches!(variant, StructVariant::CashUnderLine | StructVariant::SplitDay) && chance(rng, 0.6) {
        let last = *ds.last().unwrap_or(&start);
        let t = (last + 1).min(days - 1) * DAY + tod(rng, Tod::Business);
        let memo = pick(rng, &tr_memos);
        w.transfer(t, acct, dest, round_to(total * 9 / 10, 100), Channel::Online, memo);
    }
    // Card spending is a transfer kind: it would blur day totals just under 500,000.
    if variant != StructVariant::TransferUnder500k && chance(rng, 0.5) {
        noise(w, rng, acct, start.saturating_sub(10), start + span + 10, 0.5);
    }
    let name = match variant {
        StructVariant::CashUnderLine => "cash_in_under_50k",
        StructVariant::SplitDay => "split_day_cash_under_50k",
        StructVariant::TransferUnder500k => "transfer_under_500k",
        StructVariant::CashOutUnderLine => "cash_out_under_50k",
    };
    w.label(
        acct,
        "structuring",
        R_STRUCT,
        format!("variant={} days={} span_days={} slip={}", name, k, span, slip),
    );
}
