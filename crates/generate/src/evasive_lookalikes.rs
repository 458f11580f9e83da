//! The evasive profile's benign look-alikes: everyday collections and payouts a bank sees that
//! share the shape of a scheme (many payers then one big transfer out; many payees paid in a
//! batch, funded just before) once memos are blank. All are labelled with `rules: []`.
//! One of them ([`staff_canteen`]) spans two accounts that share people and money the way a
//! scheme's collector and payout account do.

use crate::model::*;
use crate::schemes::{noise, GIVEN, SURNAMES};
use crate::time::{tod, Tod, DAY, HOUR, MIN};
use crate::util::*;
use rand::Rng as _;

fn name(rng: &mut Rng) -> String {
    format!("{}{}", pick(rng, &SURNAMES), pick(rng, &GIVEN))
}

fn plain_channel(rng: &mut Rng) -> Channel {
    pick_w(
        rng,
        &[(Channel::Mobile, 6), (Channel::Transfer, 2), (Channel::Online, 2)],
    )
}

/// A memo from `words` with probability `1 - blank`, else blank.
fn memo_or_blank(rng: &mut Rng, blank: f64, ids: &[u16]) -> u16 {
    if ids.is_empty() || chance(rng, blank) {
        0
    } else {
        pick(rng, ids)
    }
}

/// A personal or small-business account with an everyday baseline over the whole window.
fn ordinary(w: &mut World, rng: &mut Rng, acct: u32, rate: f64) {
    let days = w.cal.days;
    noise(w, rng, acct, 0, days, rate);
}

// ---------------------------------------------------------------------------------------------
// Family events: gifts from many people within days, then one large payment

pub(crate) fn family_event(w: &mut World, rng: &mut Rng, budget: f64) {
    let acct = w.new_our_personal(rng);
    let days = w.cal.days;
    let (event, words, big): (&str, &[&'static str], &[&'static str]) = pick(
        rng,
        &[
            (
                "wedding",
                &["礼金", "红包", "随礼", "贺礼", "新婚快乐", "份子钱", "百年好合"][..],
                &["", "酒席款", "婚宴尾款", "购车款", "首付款"][..],
            ),
            (
                "funeral",
                &["帛金", "奠仪", "随礼", "节哀", "礼金"][..],
                &["", "丧葬费", "殡仪服务费", "酒席款"][..],
            ),
            (
                "baby",
                &["满月红包", "红包", "礼金", "随礼", "宝宝红包"][..],
                &["", "酒席款", "月子中心", "购车款"][..],
            ),
            (
                "school",
                &["升学红包", "红包", "贺礼", "礼金", "金榜题名"][..],
                &["", "酒席款", "学费", "购车款"][..],
            ),
        ],
    );
    let guests = (log_uniform_int(rng, 20, 200) as f64).min(budget * 0.8).max(20.0) as usize;
    let span = urange(rng, 1, 4) as u32;
    let d0 = rng.gen_range(3..days.saturating_sub(span + 25).max(4));
    let memos = w.memos.ids(words);
    let mut memos = memos;
    if chance(rng, 0.4) {
        for _ in 0..urange(rng, 3, 12) {
            let n = name(rng);
            memos.push(w.memos.dynamic(n));
        }
    }
    let blank = unif(rng, 0.3, 0.9);
    const GIFT: &[(u64, u32)] = &[
        (200, 6),
        (300, 3),
        (500, 10),
        (600, 8),
        (666, 5),
        (800, 6),
        (888, 5),
        (1_000, 10),
        (1_200, 3),
        (1_314, 2),
        (1_666, 2),
        (2_000, 5),
        (2_888, 1),
        (3_000, 2),
        (5_000, 2),
        (6_666, 1),
        (10_000, 1),
    ];
    let mut total = 0u64;
    for _ in 0..guests {
        let day = d0 + pick_w(rng, &[(0u32, 5), (1, 3), (2, 1), (3, 1)]).min(span);
        let t = day * DAY + tod(rng, Tod::Daytime);
        let a = if chance(rng, 0.1) {
            round_to(fen(lognormal(rng, 700.0, 0.6)), pick(rng, &[100u64, 10_00]))
        } else {
            pick_w(rng, GIFT) * 100
        };
        let p = w.person_except(rng, 0.25, acct);
        let ch = pick_w(
            rng,
            &[(Channel::Mobile, 8), (Channel::Transfer, 1), (Channel::Online, 1)],
        );
        let memo = memo_or_blank(rng, blank, &memos);
        w.transfer(t, p, acct, a, ch, memo);
        total += a;
    }
    // One large payment a few days later: the banquet hall, a car, a flat's down-payment.
    let to = if chance(rng, 0.3) {
        pick(rng, &w.developers.clone())
    } else {
        w.new_ext_corporate(rng)
    };
    let bigm = w.memos.ids(big);
    let t = (d0 + span + urange(rng, 1, 20) as u32).min(days - 1) * DAY + tod(rng, Tod::Business);
    let a = round_to(
        (total as f64 * unif(rng, 0.6, 1.6)) as u64,
        pick(rng, &[1u64, 100, 100_00]),
    );
    let memo = memo_or_blank(rng, 0.5, &bigm);
    w.transfer(
        t,
        acct,
        to,
        a,
        pick(rng, &[Channel::Transfer, Channel::Online, Channel::Counter]),
        memo,
    );
    let rate = unif(rng, 0.2, 0.9).min(budget / days as f64);
    ordinary(w, rng, acct, rate);
    w.label(
        acct,
        "family_event",
        0,
        format!(
            "event={} guests={} days={} gifts_yuan={}",
            event,
            guests,
            span,
            total / 100
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// Class / school / training fees collected by a teacher or parent rep and passed on

pub(crate) fn class_fees(w: &mut World, rng: &mut Rng, budget: f64) {
    let corp = chance(rng, 0.35);
    let acct = if corp {
        let ind = pick(rng, &[IND_NONE, IND_CONSULTING, IND_TECH]);
        w.new_our_corporate(rng, ind)
    } else {
        w.new_our_personal(rng)
    };
    let days = w.cal.days;
    let fee = if chance(rng, 0.6) {
        pick(rng, &[350u64, 800, 960, 1_200, 1_580, 2_680, 3_580, 4_500, 680, 1_880]) * 100
    } else {
        round_to(fen(log_uniform(rng, 200.0, 5_000.0)), pick(rng, &[100u64, 10_00, 1]))
    };
    let term_gap = urange(rng, 60, 130) as u32;
    let terms = (1 + days / term_gap).min(3);
    let parents_n = (log_uniform_int(rng, 20, 60) as f64)
        .min(budget / terms as f64)
        .max(15.0) as usize;
    let parents: Vec<u32> = (0..parents_n).map(|_| w.person_except(rng, 0.25, acct)).collect();
    let memos = w.memos.ids(&["班费", "学费", "培训费", "资料费", "课时费", "报名费"]);
    let mut memos = memos;
    for _ in 0..urange(rng, 0, 10) {
        let n = format!("{}学费", name(rng));
        memos.push(w.memos.dynamic(n));
    }
    let blank = unif(rng, 0.2, 0.9);
    let school = w.new_ext_corporate(rng);
    let up_memos = w.memos.ids(&["", "学费", "代收学费", "培训费", "转账"]);
    let mut d = rng.gen_range(0..days.saturating_sub(20).max(1));
    let mut done = 0;
    while d + 16 < days && done < terms {
        let window = urange(rng, 5, 14) as u32;
        let mut total = 0u64;
        let mut last = d * DAY;
        for &p in &parents {
            if chance(rng, 0.05) {
                continue;
            }
            let t = (d + rng.gen_range(0..window)) * DAY + tod(rng, Tod::Daytime);
            let memo = memo_or_blank(rng, blank, &memos);
            w.transfer(t, p, acct, fee, plain_channel(rng), memo);
            total += fee;
            last = last.max(t);
        }
        let parts = pick_w(rng, &[(1usize, 3), (2, 2)]);
        let mut t = (last / DAY + urange(rng, 1, 4) as u32) * DAY + tod(rng, Tod::Business);
        let memo = pick(rng, &up_memos);
        for a in split_amount(rng, total, parts, fee) {
            w.transfer(w.clamp_t(t), acct, school, a, Channel::Online, memo);
            t += rng.gen_range(10 * MIN..26 * HOUR);
        }
        done += 1;
        d += term_gap;
    }
    if !corp {
        let rate = unif(rng, 0.2, 0.7);
        ordinary(w, rng, acct, rate);
    }
    w.label(
        acct,
        "class_fees",
        0,
        format!("parents={} fee_yuan={} terms={}", parents_n, fee as f64 / 100.0, done),
    );
}

// ---------------------------------------------------------------------------------------------
// Group buying (团购): a community organiser collects k × unit price, pays the supplier

pub(crate) fn group_buying(w: &mut World, rng: &mut Rng, budget: f64) {
    let acct = w.new_our_personal(rng);
    let days = w.cal.days;
    let community: Vec<u32> = (0..urange(rng, 40, 200))
        .map(|_| w.person_except(rng, 0.25, acct))
        .collect();
    let items = w.memos.ids(&[
        "团购",
        "接龙",
        "车厘子",
        "大米",
        "土鸡蛋",
        "牛排",
        "水果",
        "海鲜",
        "拼单",
    ]);
    let blank = unif(rng, 0.3, 0.9);
    let every = urange(rng, 4, 15) as u32;
    let rounds = (days / every).max(1) as f64;
    let per_round = (log_uniform(rng, 15.0, 120.0)).min(budget / rounds).max(12.0) as usize;
    let mut d = rng.gen_range(0..every);
    let mut done = 0;
    let sup_memo = w.memos.ids(&["", "货款", "转账"]);
    while d + 4 < days {
        let price = if chance(rng, 0.6) {
            pick(
                rng,
                &[
                    89_90u64, 158_00, 368_00, 39_90, 128_00, 199_00, 59_80, 268_00, 25_80, 168_00,
                ],
            )
        } else {
            fen(log_uniform(rng, 20.0, 400.0))
        };
        let supplier = w.new_ext_corporate(rng);
        let close = urange(rng, 1, 3) as u32;
        let n = urange(rng, per_round / 2 + 1, per_round);
        let mut total = 0;
        for i in sample_indices(rng, community.len(), n.min(community.len())) {
            let k = pick_w(rng, &[(1u64, 10), (2, 4), (3, 2), (5, 1)]);
            let t = (d + rng.gen_range(0..close)) * DAY + tod(rng, Tod::Daytime);
            let memo = memo_or_blank(rng, blank, &items);
            w.transfer(t, community[i], acct, price * k, Channel::Mobile, memo);
            total += price * k;
        }
        let t = (d + close + urange(rng, 0, 2) as u32) * DAY + tod(rng, Tod::Business);
        let a = (total as f64 * unif(rng, 0.85, 0.97)) as u64;
        let memo = pick(rng, &sup_memo);
        w.transfer(w.clamp_t(t), acct, supplier, a, plain_channel(rng), memo);
        done += 1;
        d += every + rng.gen_range(0..every / 2 + 1);
    }
    let rate = unif(rng, 0.2, 0.8);
    ordinary(w, rng, acct, rate);
    w.label(
        acct,
        "group_buying",
        0,
        format!(
            "rounds={} buyers_per_round={} community={}",
            done,
            per_round,
            community.len()
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// Sublet manager (二房东): the same rent from many tenants, a transfer to the owner

pub(crate) fn rent_collection(w: &mut World, rng: &mut Rng, budget: f64) {
    let acct = w.new_our_personal(rng);
    let days = w.cal.days;
    let months = (days / 30).max(1) as f64;
    let n = (urange(rng, 10, 40) as f64).min(budget / months).max(10.0) as usize;
    let base = log_uniform(rng, 900.0, 4_000.0);
    let tenants: Vec<(u32, u64, u32)> = (0..n)
        .map(|_| {
            let r = base * unif(rng, 0.7, 1.3);
            let rent = if chance(rng, 0.8) {
                round_to(fen(r), pick(rng, &[50_00u64, 100_00]))
            } else {
                round_to(fen(r), 100)
            };
            (w.person_except(rng, 0.2, acct), rent, urange(rng, 0, 5) as u32)
        })
        .collect();
    let memos = w.memos.ids(&["房租", "{M}月房租", "房租", "租金", "水电房租"]);
    let mut memos = memos;
    for _ in 0..urange(rng, 0, 8) {
        let room = format!("{}{:02}房租", irange(rng, 1, 6), irange(rng, 1, 12));
        memos.push(w.memos.dynamic(room));
    }
    let blank = unif(rng, 0.2, 0.8);
    let owner = if chance(rng, 0.7) {
        w.new_ext_personal(rng)
    } else {
        w.new_ext_corporate(rng)
    };
    let own_memo = w.memos.ids(&["", "房租", "租金", "转账"]);
    let dom = pick(rng, &[1u32, 5, 10, 15, 20, 25]);
    let mut cycles = 0;
    for pd in w.cal.monthly_days(dom) {
        let mut total = 0;
        let mut last = pd * DAY;
        for &(t_, rent, late) in &tenants {
            let day = (pd + late + pick_w(rng, &[(0u32, 6), (1, 2), (3, 1)])).min(days - 1);
            let t = day * DAY + tod(rng, Tod::Daytime);
            let memo = memo_or_blank(rng, blank, &memos);
            w.transfer(t, t_, acct, rent, plain_channel(rng), memo);
            total += rent;
            last = last.max(t);
        }
        let t = (last / DAY + urange(rng, 1, 7) as u32) * DAY + tod(rng, Tod::Business);
        let a = round_to((total as f64 * unif(rng, 0.78, 0.92)) as u64, 100_00);
        let memo = pick(rng, &own_memo);
        w.transfer(w.clamp_t(t), acct, owner, a, plain_channel(rng), memo);
        cycles += 1;
    }
    let rate = unif(rng, 0.2, 0.8);
    ordinary(w, rng, acct, rate);
    w.label(
        acct,
        "rent_collection",
        0,
        format!("tenants={} months={} base_rent_yuan={:.0}", n, cycles, base),
    );
}

// ---------------------------------------------------------------------------------------------
// Club / association membership: one annual fee from many members, paid on to a venue

pub(crate) fn membership_fees(w: &mut World, rng: &mut Rng, budget: f64) {
    let corp = chance(rng, 0.5);
    let acct = if corp {
        let ind = pick(rng, &[IND_NONPROFIT, IND_NONE, IND_NONPROFIT]);
        w.new_our_corporate(rng, ind)
    } else {
        w.new_our_personal(rng)
    };
    let days = w.cal.days;
    let fee = pick(rng, &[300u64, 500, 800, 1_200, 1_680, 2_000, 3_600, 980, 1_500]) * 100;
    let n = (log_uniform_int(rng, 30, 200) as f64).min(budget).max(20.0) as usize;
    let window = urange(rng, 14, 42).min(days as usize - 10) as u32;
    let d0 = rng.gen_range(0..days.saturating_sub(window + 10).max(1));
    let memos = w.memos.ids(&["会费", "年费", "活动费", "入会费", "俱乐部年费"]);
    let blank = unif(rng, 0.2, 0.9);
    let mut total = 0;
    let mut last = d0 * DAY;
    for _ in 0..n {
        // Most pay early, stragglers later.
        let u: f64 = rng.gen();
        let day = d0 + ((u * u) * window as f64) as u32;
        let t = day * DAY + tod(rng, Tod::Daytime);
        let p = w.person_except(rng, 0.25, acct);
        let memo = memo_or_blank(rng, blank, &memos);
        w.transfer(t, p, acct, fee, plain_channel(rng), memo);
        total += fee;
        last = last.max(t);
    }
    let venue = w.new_ext_corporate(rng);
    let vm = w.memos.ids(&["", "场地费", "场租", "活动费"]);
    let memo = pick(rng, &vm);
    let parts = urange(rng, 1, 3);
    let mut t = d0 * DAY + window * DAY / 2 + tod(rng, Tod::Business);
    let paid = (total as f64 * unif(rng, 0.6, 0.95)) as u64;
    for a in split_amount(rng, paid, parts, 100_00) {
        t = t.max(last / 2 + d0 * DAY / 2);
        w.transfer(w.clamp_t(t), acct, venue, a, Channel::Online, memo);
        t += rng.gen_range(DAY..10 * DAY);
    }
    if !corp {
        let rate = unif(rng, 0.2, 0.7);
        ordinary(w, rng, acct, rate);
    }
    w.label(
        acct,
        "membership_fees",
        0,
        format!("members={} fee_yuan={} window_days={}", n, fee / 100, window),
    );
}

// ---------------------------------------------------------------------------------------------
// Rotating savings club (互助会 / 标会): everyone pays in each period, one member takes the pot

pub(crate) fn rotating_savings(w: &mut World, rng: &mut Rng, budget: f64) {
    let acct = w.new_our_personal(rng);
    let days = w.cal.days;
    let step = pick(rng, &[15u32, 30, 30]);
    let periods = (days / step).max(1) as usize;
    let m = (urange(rng, 8, 30) as f64).min(budget / periods as f64).max(8.0) as usize;
    let c = pick(rng, &[1_000u64, 2_000, 3_000, 5_000, 10_000, 1_500, 2_500]) * 100;
    let members: Vec<u32> = (0..m).map(|_| w.person_except(rng, 0.3, acct)).collect();
    let memos = w.memos.ids(&["会钱", "互助金", "{M}月会款", "会款", "转账"]);
    let blank = unif(rng, 0.3, 0.9);
    let order = sample_indices(rng, m, m);
    let mut d = rng.gen_range(0..step.min(10));
    let mut k = 0;
    while d + 3 < days && k < m {
        let mut last = d * DAY;
        for &p in &members {
            let t = (d + pick_w(rng, &[(0u32, 5), (1, 3), (2, 1)])) * DAY + tod(rng, Tod::Daytime);
            let memo = memo_or_blank(rng, blank, &memos);
            w.transfer(t, p, acct, c, plain_channel(rng), memo);
            last = last.max(t);
        }
        let winner = members[order[k]];
        let pot = c * (m as u64 - 1);
        let t = last + rng.gen_range(HOUR..30 * HOUR);
        let memo = memo_or_blank(rng, blank, &memos);
        w.transfer(w.clamp_t(t), acct, winner, pot, plain_channel(rng), memo);
        k += 1;
        d += step;
    }
    let rate = unif(rng, 0.2, 0.8);
    ordinary(w, rng, acct, rate);
    w.label(
        acct,
        "rotating_savings",
        0,
        format!(
            "members={} contribution_yuan={} every_days={} rounds={}",
            m,
            c / 100,
            step,
            k
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// Part-time pay by plain transfer, funded by the owner just before

pub(crate) fn parttime_pay(w: &mut World, rng: &mut Rng, budget: f64) {
    let corp = chance(rng, 0.6);
    let acct = if corp {
        let ind = pick(rng, &[IND_CATERING, IND_RETAIL, IND_LOGISTICS, IND_NONE, IND_TECH]);
        w.new_our_corporate(rng, ind)
    } else {
        w.new_our_personal(rng)
    };
    let days = w.cal.days;
    let weekly = chance(rng, 0.6);
    let step = if weekly { 7 } else { 30 };
    let pays = (days / step).max(1) as f64;
    let n = (log_uniform_int(rng, 8, 60) as f64).min(budget / pays / 1.1).max(8.0) as usize;
    let hourly = unif(rng, 18.0, 40.0);
    let workers: Vec<(u32, f64)> = (0..n)
        .map(|_| (w.person_except(rng, 0.25, acct), hourly * unif(rng, 0.9, 1.2)))
        .collect();
    let owner = if chance(rng, 0.5) {
        w.person_except(rng, 0.5, acct)
    } else {
        w.new_ext_personal(rng)
    };
    let memos = w.memos.ids(&["工资", "兼职", "{M}月兼职费", "辛苦费"]);
    let blank = unif(rng, 0.7, 1.0);
    let own_memos = w.memos.ids(&["", "", "转账", "备用金"]);
    let hour = pick(rng, &[10u32, 14, 17, 20, 21]);
    let mut d = rng.gen_range(1..step.min(days - 2));
    let mut done = 0;
    while d + 1 < days {
        let turnout = unif(rng, 0.6, 0.95);
        let present: Vec<usize> = (0..n).filter(|_| chance(rng, turnout)).collect();
        let amounts: Vec<(u32, u64)> = present
            .iter()
            .map(|&i| {
                let hours = if weekly {
                    unif(rng, 4.0, 40.0)
                } else {
                    unif(rng, 20.0, 160.0)
                };
                let a = fen(hours.round() * workers[i].1);
                (workers[i].0, if chance(rng, 0.5) { round_to(a, 100) } else { a })
            })
            .collect();
        let total: u64 = amounts.iter().map(|x| x.1).sum();
        let start = d * DAY + hour * HOUR + rng.gen_range(0..HOUR);
        let lead = (log_uniform(rng, 0.5, 20.0) * HOUR as f64) as u32;
        let fund = round_to(
            (total as f64 * unif(rng, 1.0, 1.1)) as u64,
            pick(rng, &[100_00u64, 1_000_00]),
        );
        let memo = pick(rng, &own_memos);
        w.transfer(start.saturating_sub(lead), owner, acct, fund, plain_channel(rng), memo);
        let mut t = start;
        for (p, a) in amounts {
            let memo = memo_or_blank(rng, blank, &memos);
            w.transfer(w.clamp_t(t), acct, p, a, plain_channel(rng), memo);
            t += rng.gen_range(30..12 * MIN);
        }
        done += 1;
        d += step + pick_w(rng, &[(0u32, 6), (1, 1)]);
    }
    if !corp {
        let rate = unif(rng, 0.2, 0.6);
        ordinary(w, rng, acct, rate);
    }
    w.label(
        acct,
        "parttime_pay",
        0,
        format!("workers={} weekly={} paydays={}", n, weekly, done),
    );
}

// ---------------------------------------------------------------------------------------------
// A small firm paying the same salary each month by plain transfer

pub(crate) fn fixed_salary(w: &mut World, rng: &mut Rng, budget: f64) {
    let ind = pick(
        rng,
        &[
            IND_NONE,
            IND_RETAIL,
            IND_CATERING,
            IND_TECH,
            IND_CONSULTING,
            IND_CONSTRUCTION,
        ],
    );
    let acct = w.new_our_corporate(rng, ind);
    let days = w.cal.days;
    let months = (days / 30).max(1) as f64;
    let n = (urange(rng, 6, 40) as f64).min(budget / months / 1.3).max(6.0) as usize;
    let round = chance(rng, 0.6);
    let staff: Vec<(u32, u64)> = (0..n)
        .map(|_| {
            let s = fen(log_uniform(rng, 3_000.0, 15_000.0));
            (
                w.person(rng, 0.3),
                if round { round_to(s, 100_00) } else { round_to(s, 100) },
            )
        })
        .collect();
    let dom = pick(rng, &[5u32, 10, 15, 20, 25, 28]);
    let hour = pick(rng, &[9u32, 10, 14, 16]);
    let customers: Vec<u32> = (0..urange(rng, 3, 15)).map(|_| w.company(rng, 0.15)).collect();
    let rev_memos = w.memos.ids(&["", "货款", "服务费", "合同款"]);
    let mut prev = 0;
    let mut done = 0;
    for pd in w.cal.monthly_days(dom) {
        let pd = w.cal.business_day_on_or_before(pd);
        let total: u64 = staff.iter().map(|x| x.1).sum();
        for _ in 0..urange(rng, 2, 6) {
            let d = rng.gen_range(prev..pd.max(prev + 1));
            let a = fen(total as f64 / 100.0 * lognormal(rng, 0.4, 0.4));
            let c = pick(rng, &customers);
            let m = pick(rng, &rev_memos);
            w.transfer(d * DAY + tod(rng, Tod::Business), c, acct, a, Channel::Online, m);
        }
        let mut t = pd * DAY + hour * HOUR + rng.gen_range(0..40 * MIN);
        for &(p, s) in &staff {
            w.transfer(t, acct, p, s, plain_channel(rng), 0);
            t += rng.gen_range(20..8 * MIN);
        }
        prev = pd;
        done += 1;
    }
    w.label(
        acct,
        "fixed_salary",
        0,
        format!("staff={} payday={} months={}", n, dom, done),
    );
}

// ---------------------------------------------------------------------------------------------
// Property fees: area × price per m² from many residents each quarter, contractors paid

pub(crate) fn property_fees(w: &mut World, rng: &mut Rng, budget: f64) {
    let ind = pick(rng, &[IND_REAL_ESTATE, IND_NONE]);
    let acct = w.new_our_corporate(rng, ind);
    let days = w.cal.days;
    let quarters = (days / 90 + 1) as f64;
    let n = (log_uniform_int(rng, 50, 300) as f64).min(budget / quarters).max(30.0) as usize;
    let price_fen = pick(rng, &[150u64, 180, 220, 250, 280, 320, 350]); // per m² per month
    let residents: Vec<(u32, u64)> = (0..n)
        .map(|_| {
            let area_cm2 = if chance(rng, 0.5) {
                irange(rng, 50, 180) * 100
            } else {
                irange(rng, 5_000, 18_000)
            };
            (w.person(rng, 0.25), area_cm2)
        })
        .collect();
    let memos = w.memos.ids(&["物业费", "{M}月物业费", "物业管理费", "物业费"]);
    let mut memos = memos;
    for _ in 0..urange(rng, 0, 10) {
        let r = format!("{}栋{}物业费", irange(rng, 1, 20), irange(rng, 101, 2_802));
        memos.push(w.memos.dynamic(r));
    }
    let blank = unif(rng, 0.2, 0.8);
    let contractors: Vec<u32> = (0..urange(rng, 2, 5)).map(|_| w.new_ext_corporate(rng)).collect();
    let cm = w.memos.ids(&["", "保洁费", "安保服务费", "电梯维保", "绿化费"]);
    let mut d = rng.gen_range(0..20u32);
    let mut done = 0;
    while d + 20 < days {
        let window = urange(rng, 14, 30) as u32;
        let mut total = 0;
        for &(p, area) in &residents {
            if chance(rng, 0.1) {
                continue; // arrears
            }
            let fee = area * price_fen * 3 / 100;
            let u: f64 = rng.gen();
            let t = (d + (u * u * window as f64) as u32) * DAY + tod(rng, Tod::Daytime);
            let memo = memo_or_blank(rng, blank, &memos);
            w.transfer(t, p, acct, fee, plain_channel(rng), memo);
            total += fee;
        }
        let mut t = (d + window + urange(rng, 1, 7) as u32) * DAY + tod(rng, Tod::Business);
        let paid = (total as f64 * unif(rng, 0.5, 0.85)) as u64;
        for (i, a) in split_amount(rng, paid, contractors.len(), 100).into_iter().enumerate() {
            let memo = pick(rng, &cm);
            w.transfer(
                w.clamp_t(t),
                acct,
                contractors[i % contractors.len()],
                a,
                Channel::Online,
                memo,
            );
            t += rng.gen_range(HOUR..3 * DAY);
        }
        done += 1;
        d += 90;
    }
    w.label(
        acct,
        "property_fees",
        0,
        format!("residents={} price_fen_m2_month={} quarters={}", n, price_fen, done),
    );
}

// ---------------------------------------------------------------------------------------------
// A firm's payroll account and its staff canteen: the same people paid by one account and
// paying the other, money flowing between the two, and no scheme

pub(crate) fn staff_canteen(w: &mut World, rng: &mut Rng, budget: f64) {
    let ind = pick(
        rng,
        &[IND_MANUFACTURING, IND_LOGISTICS, IND_CONSTRUCTION, IND_TECH, IND_NONE],
    );
    let payroll = w.new_our_corporate(rng, ind);
    // The canteen is run by a contractor: a small catering firm or a person's own card.
    let canteen = if chance(rng, 0.5) {
        let ind = pick(rng, &[IND_CATERING, IND_NONE]);
        w.new_our_corporate(rng, ind)
    } else {
        w.new_our_personal(rng)
    };
    let main = w.company_except(rng, 0.3, payroll);
    let supplier = w.new_ext_corporate(rng);
    let days = w.cal.days;
    let months = (days / 30).max(1) as f64;
    // Entries per person: a salary a month and a meal-card top-up on about a tenth of days.
    let n = (urange(rng, 10, 50) as f64)
        .min(budget / (months + 0.1 * days as f64))
        .max(8.0) as usize;
    let staff: Vec<(u32, u64)> = (0..n)
        .map(|_| {
            let s = round_to(fen(log_uniform(rng, 3_500.0, 9_000.0)), 100);
            (w.person_except(rng, 0.35, canteen), s)
        })
        .collect();
    // Most of the staff eat there and top up their meal card a few times a month.
    let eaters: Vec<u32> = staff.iter().filter(|_| chance(rng, 0.8)).map(|x| x.0).collect();
    let topup = pick(rng, &[100u64, 200, 300, 500]) * 100;
    let pay_memos = w.memos.ids(&["", "", "工资", "{M}月工资"]);
    let card_memos = w.memos.ids(&["", "", "饭卡充值", "餐费", "充值"]);
    let fund_memos = w.memos.ids(&["", "工资款", "转账"]);
    let sub_memos = w.memos.ids(&["", "餐补", "{M}月餐费补贴"]);
    let dom = pick(rng, &[5u32, 10, 15, 25]);
    let hour = pick(rng, &[9u32, 10, 14]);
    let mut months_paid = 0;
    for pd in w.cal.monthly_days(dom) {
        let pd = w.cal.business_day_on_or_before(pd);
        let total: u64 = staff.iter().map(|x| x.1).sum();
        // Funded from the firm's main account the day before, about what payday needs.
        let f = (total as f64 * unif(rng, 1.0, 1.03)) as u64;
        let memo = pick(rng, &fund_memos);
        w.transfer(
            pd.saturating_sub(1) * DAY + tod(rng, Tod::Business),
            main,
            payroll,
            round_to(f, 1_000_00).max(total),
            Channel::Online,
            memo,
        );
        let mut t = pd * DAY + hour * HOUR + rng.gen_range(0..40 * MIN);
        for &(p, s) in &staff {
            let memo = pick(rng, &pay_memos);
            w.transfer(w.clamp_t(t), payroll, p, s, Channel::Transfer, memo);
            t += rng.gen_range(20..6 * MIN);
        }
        // The firm's monthly meal subsidy to the canteen.
        let sub = round_to(fen(eaters.len() as f64 * unif(rng, 150.0, 300.0)), 100_00).max(100_00);
        let memo = pick(rng, &sub_memos);
        w.transfer(
            (pd + 1) * DAY + tod(rng, Tod::Business),
            main,
            canteen,
            sub,
            Channel::Online,
            memo,
        );
        months_paid += 1;
    }
    // Meal-card top-ups on working days, weekly payments to the food supplier.
    let mut takings = 0u64;
    for day in 0..days {
        for &p in &eaters {
            if chance(rng, 0.12) {
                let memo = pick(rng, &card_memos);
                let t = day * DAY + pick(rng, &[7u32, 11, 12, 17]) * HOUR + rng.gen_range(0..HOUR);
                w.transfer(t, p, canteen, topup, plain_channel(rng), memo);
                takings += topup;
            }
        }
        if day % 7 == 6 && takings > 0 {
            let a = round_to((takings as f64 * unif(rng, 0.7, 0.9)) as u64, 100).max(100);
            w.transfer(
                day * DAY + tod(rng, Tod::Business),
                canteen,
                supplier,
                a,
                Channel::Online,
                0,
            );
            takings = 0;
        }
    }
    w.label(
        payroll,
        "staff_payroll",
        0,
        format!("staff={} payday={} months={}", n, dom, months_paid),
    );
    w.label(
        canteen,
        "staff_canteen",
        0,
        format!(
            "eaters={} topup_yuan={} payroll_account={}",
            eaters.len(),
            topup / 100,
            w.account_name(payroll)
        ),
    );
}
