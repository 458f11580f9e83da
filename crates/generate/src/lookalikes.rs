//! Benign look-alikes: legitimate businesses and people whose traffic resembles a typology on
//! one axis (many payers, batch payouts, money in and out the same day) and differs on the
//! signals investigators use (amount texture, memos, payer novelty, cadence, destinations).
//! All are labelled with `rules: []`.

use crate::model::*;
use crate::schemes::noise;
use crate::time::{tod, Tod, DAY, HOUR, MIN};
use crate::util::*;
use rand::Rng as _;

fn active_window(w: &World, rng: &mut Rng, want_days: u32) -> (u32, u32) {
    let d = want_days.clamp(1, w.cal.days);
    let start = rng.gen_range(0..=w.cal.days - d);
    (start, start + d)
}

/// Non-round small price: cents most of the time, x.50 or whole yuan sometimes.
fn retail_price(rng: &mut Rng, median: f64, sigma: f64, max: f64) -> u64 {
    let y = lognormal(rng, median, sigma).clamp(1.0, max);
    let f = fen(y);
    match rng.gen_range(0..10) {
        0..=6 => f,
        7 | 8 => round_to(f, 50),
        _ => round_to(f, 100),
    }
}

// ---------------------------------------------------------------------------------------------
// QR merchants / shops: many payers, tiny non-round tickets, daily sweep to the owner.

pub(crate) fn qr_merchant(w: &mut World, rng: &mut Rng, budget: f64) {
    let catering = chance(rng, 0.5);
    let corp = chance(rng, 0.45);
    let acct = if corp {
        w.new_our_corporate(rng, if catering { IND_CATERING } else { IND_RETAIL })
    } else {
        // 个体工商户 often collect on the owner's personal account.
        w.new_our_personal(rng)
    };
    let mut per_day = log_uniform(rng, 20.0, 300.0);
    let mut days = (budget / (per_day * 1.05)).round().max(3.0) as u32;
    if days <= 3 {
        per_day = per_day.min((budget / 3.5).max(20.0));
        days = 3;
    }
    let days = days.min(w.cal.days);
    let (d0, d1) = active_window(w, rng, days);
    let median = log_uniform(rng, 12.0, 120.0);
    let sigma = unif(rng, 0.45, 0.95);
    let regulars: Vec<u32> = (0..urange(rng, 20, 200)).map(|_| w.person(rng, 0.15)).collect();
    let regular_p = unif(rng, 0.2, 0.6);
    let pos_w = rng.gen_range(1..10u32);
    let memo_blank = unif(rng, 0.3, 0.9);
    let memos = w.memos.ids(&[
        "消费",
        "消费",
        "货款",
        "扫码支付",
        "付款",
        "商品",
        if catering { "餐费" } else { "购物" },
    ]);
    let cadence = pick_w(rng, &[(1u32, 6), (2, 3), (3, 2)]);
    let sweep_evening = chance(rng, 0.6);
    let owner = if chance(rng, 0.4) {
        w.person(rng, 1.0)
    } else {
        w.new_ext_personal(rng)
    };
    let sweep_memos = w.memos.ids(&["", "", "转账", "营业款", "提现", "货款"]);
    let sweep_memo = pick(rng, &sweep_memos);
    let shape = if catering { Tod::Catering } else { Tod::Retail };
    let mut takings = 0u64;
    let suppliers: Vec<u32> = (0..urange(rng, 1, 4)).map(|_| w.new_ext_corporate(rng)).collect();
    let supplier_memo = w.memos.id("货款");
    let mut payers_total = 0u64;
    for day in d0..d1 {
        let wk = if w.cal.is_weekend(day) {
            if catering {
                1.25
            } else {
                1.1
            }
        } else {
            1.0
        };
        let f = unif(rng, 0.8, 1.2);
        let n = poisson(rng, per_day * wk * f);
        for _ in 0..n {
            let t = day * DAY + tod(rng, shape);
            let payer = if chance(rng, regular_p) {
                pick(rng, &regulars)
            } else {
                w.new_ext_personal(rng)
            };
            let a = retail_price(rng, median, sigma, 3_000.0);
            let ch = if rng.gen_range(0..10) < pos_w {
                Channel::Pos
            } else {
                Channel::Mobile
            };
            let memo = if chance(rng, memo_blank) { 0 } else { pick(rng, &memos) };
            w.transfer(t, payer, acct, a, ch, memo);
            takings += a;
            payers_total += 1;
        }
        if (day - d0) % cadence == cadence - 1 || day + 1 == d1 {
            let t = if sweep_evening {
                day * DAY + 21 * HOUR + rng.gen_range(0..150 * MIN)
            } else {
                (day + 1) * DAY + 8 * HOUR + rng.gen_range(0..2 * HOUR)
            };
            let share = unif(rng, 0.85, 1.0);
            let a = if chance(rng, 0.5) {
                round_to((takings as f64 * share) as u64, 100)
            } else {
                (takings as f64 * share) as u64
            };
            w.transfer(w.clamp_t(t), acct, owner, a, Channel::Mobile, sweep_memo);
            takings = 0;
        }
        if corp && chance(rng, 0.12) {
            let t = day * DAY + tod(rng, Tod::Business);
            let sup = pick(rng, &suppliers);
            w.transfer(
                t,
                acct,
                sup,
                fen(lognormal(rng, median * per_day * 2.0, 0.5)),
                Channel::Online,
                supplier_memo,
            );
        }
    }
    w.label(
        acct,
        "qr_merchant",
        0,
        format!(
            "days={} payers_per_day={:.0} median_yuan={:.0} sweep_every_days={} payments={}",
            d1 - d0,
            per_day,
            median,
            cadence,
            payers_total
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// Wholesalers: steady business customers paying invoices, suppliers paid in turn.

pub(crate) fn wholesaler(w: &mut World, rng: &mut Rng, budget: f64) {
    let ind = pick(
        rng,
        &[
            IND_WHOLESALE,
            IND_WHOLESALE,
            IND_MANUFACTURING,
            IND_TRADING,
            IND_AGRICULTURE,
        ],
    );
    let acct = w.new_our_corporate(rng, ind);
    let days = w.cal.days;
    let n_cust = urange(rng, 5, 30);
    let n_sup = urange(rng, 3, 10);
    let staff = urange(rng, 3, 15);
    let cadences = [7u32, 7, 10, 14, 15, 30];
    // Expected entries a day ≈ Σ 1/cadence over customers and suppliers plus monthly items; on
    // small streams the account is seen for only part of the window.
    let per_day = (n_cust + n_sup) as f64 / 12.0 + (3 + staff) as f64 / 30.0;
    let span = ((2.0 * budget / per_day) as u32).clamp(45.min(days), days);
    let (d0, d1) = active_window(w, rng, span);
    let scale = log_uniform(rng, 5_000.0, 300_000.0);
    let memos = w
        .memos
        .ids(&["货款", "货款", "货款", "发票{N}", "材料款", "合同款", "", "{M}月货款"]);
    let mut invoiced = 0u64;
    for _ in 0..n_cust {
        let cust = if chance(rng, 0.85) {
            w.company(rng, 0.2)
        } else {
            w.person(rng, 0.2)
        };
        let cad = pick(rng, &cadences);
        let med = scale * lognormal(rng, 1.0, 0.6);
        let sig = unif(rng, 0.2, 0.6);
        let mut d = d0 + rng.gen_range(0..cad);
        let ch = pick(
            rng,
            &[Channel::Transfer, Channel::Online, Channel::Online, Channel::Counter],
        );
        while d < d1 {
            let t = d * DAY + tod(rng, Tod::Business);
            let mut a = fen(lognormal(rng, med, sig).min(30_000_000.0));
            if chance(rng, 0.1) {
                a = round_to(a, 1_000_00);
            }
            let memo = pick(rng, &memos);
            w.transfer(t, cust, acct, a, ch, memo);
            invoiced += a;
            d = (d as i64 + cad as i64 + pick(rng, &[-2i64, -1, 0, 0, 1, 2])).max(d as i64 + 1) as u32;
        }
    }
    // Suppliers absorb most of the revenue.
    let per_day_out = invoiced as f64 * unif(rng, 0.7, 0.9) / (d1 - d0).max(1) as f64;
    for _ in 0..n_sup {
        let sup = w.company(rng, 0.15);
        let cad = pick(rng, &cadences);
        let mut d = d0 + rng.gen_range(0..cad);
        while d < d1 {
            let t = d * DAY + tod(rng, Tod::Business);
            let a = fen((per_day_out * cad as f64 / n_sup as f64 * lognormal(rng, 1.0, 0.3) / 100.0).max(500.0));
            let memo = pick(rng, &memos);
            w.transfer(t, acct, sup, a, Channel::Online, memo);
            d += cad;
        }
    }
    let revenue = invoiced / (d1 - d0).max(1) as u64;
    monthly_overheads(w, rng, acct, staff, staff, revenue, (d0, d1));
    w.label(
        acct,
        "wholesaler",
        0,
        format!(
            "customers={} suppliers={} invoice_scale_yuan={:.0}",
            n_cust, n_sup, scale
        ),
    );
}

/// Tax, social insurance, utilities, and a small staff paid by plain transfer.
/// `staff` are paid here by plain transfer; `headcount` (≥ staff) is who social insurance covers,
/// including employees paid by a separate payroll run.
fn monthly_overheads(
    w: &mut World,
    rng: &mut Rng,
    acct: u32,
    staff: usize,
    headcount: usize,
    daily_revenue: u64,
    (d0, d1): (u32, u32),
) {
    let tax_memo = w.memos.id(pick(rng, &["增值税", "税款", "代扣税款"]));
    let si_memo = w.memos.id("社保");
    let ut_memo = w.memos.id(pick(rng, &["电费", "水电费", "物业费"]));
    let wage_memo = w.memos.id(pick(rng, &["工资", "{P}月工资", "工资"]));
    let employees: Vec<(u32, u64)> = (0..staff)
        .map(|_| (w.person(rng, 0.3), fen(lognormal(rng, 6_500.0, 0.35).max(2_500.0))))
        .collect();
    let payday = pick(rng, &[5u32, 10, 15, 20, 25]);
    for d in w.cal.monthly_days(15) {
        let d = w.cal.business_day_on_or_before(d);
        if d < d0 || d >= d1 {
            continue;
        }
        let t = d * DAY + tod(rng, Tod::Business);
        let tax = fen((daily_revenue as f64 / 100.0) * 30.0 * unif(rng, 0.01, 0.04)).max(100);
        w.transfer(t, acct, w.tax_bureau, tax, Channel::Online, tax_memo);
        if headcount > 0 {
            let si = fen(headcount as f64 * unif(rng, 1_200.0, 2_000.0));
            w.transfer(t + 600, acct, w.social_insurance, si, Channel::Online, si_memo);
        }
        let t2 = (d + 3).min(w.cal.days - 1) * DAY + tod(rng, Tod::Business);
        w.transfer(
            t2,
            acct,
            w.utility,
            fen(lognormal(rng, 3_000.0, 0.6)),
            Channel::Online,
            ut_memo,
        );
    }
    for d in w.cal.monthly_days(payday) {
        let d = w.cal.business_day_on_or_before(d);
        if d < d0 || d >= d1 {
            continue;
        }
        let mut t = d * DAY + tod(rng, Tod::Business);
        for &(e, s) in &employees {
            let a = (s as f64 * unif(rng, 0.95, 1.05)) as u64;
            let ch = if chance(rng, 0.7) {
                Channel::Transfer
            } else {
                Channel::Online
            };
            w.transfer(t, acct, e, a, ch, wage_memo);
            t += rng.gen_range(20..600);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Payroll (代发工资): monthly batch to the same employees, varied salaries with cents.

pub(crate) fn payroll(w: &mut World, rng: &mut Rng, budget: f64) {
    let ind = pick(
        rng,
        &[
            IND_MANUFACTURING,
            IND_TECH,
            IND_CATERING,
            IND_LOGISTICS,
            IND_CONSTRUCTION,
            IND_RETAIL,
            IND_HEALTHCARE,
            IND_EDU,
        ],
    );
    let acct = w.new_our_corporate(rng, ind);
    let dom = pick(rng, &[5u32, 8, 10, 10, 15, 15, 20, 25, 28, 31]);
    let paydays: Vec<u32> = w
        .cal
        .monthly_days(dom)
        .into_iter()
        .map(|d| w.cal.business_day_on_or_before(d))
        .collect();
    let months = paydays.len().max(1) as f64;
    let cap = ((2.0 * budget) / (months * 1.1 + 1.0)).max(10.0) as u64;
    let n = log_uniform_int(rng, 10, 500).min(cap) as usize;
    let median = log_uniform(rng, 4_000.0, 15_000.0);
    let mut staff: Vec<(u32, u64)> = (0..n)
        .map(|_| (w.person(rng, 0.3), fen(lognormal(rng, median, 0.35).max(2_000.0))))
        .collect();
    let memo = w
        .memos
        .id(pick(rng, &["工资", "代发工资", "{P}月工资", "工资款", "工资", ""]));
    let bonus_memo = w.memos.id(pick(rng, &["年终奖", "奖金", "工资"]));
    let hour = pick(rng, &[9u32, 10, 11, 14, 15, 16]);
    let dur = (unif(rng, 2.0, 60.0) * MIN as f64) as u32;
    let churn = unif(rng, 0.0, 0.04);
    let customers: Vec<u32> = (0..urange(rng, 5, 40)).map(|_| w.company(rng, 0.15)).collect();
    let rev_memos = w.memos.ids(&["货款", "服务费", "", "合同款", "发票{N}"]);
    let bonus_month = chance(rng, 0.35);
    let mut prev = 0u32;
    for (k, &pd) in paydays.iter().enumerate() {
        let total: u64 = staff.iter().map(|x| x.1).sum();
        // Business inflows over the month fund the payroll (plus margin).
        let inflows = urange(rng, 3, 12);
        for _ in 0..inflows {
            let d = rng.gen_range(prev..pd.max(prev + 1));
            let t = d * DAY + tod(rng, Tod::Business);
            let a = fen(total as f64 / 100.0 * 1.4 / inflows as f64 * lognormal(rng, 1.0, 0.4));
            let c = pick(rng, &customers);
            let m = pick(rng, &rev_memos);
            w.transfer(t, c, acct, a, Channel::Online, m);
        }
        let (y, mo, _) = w.cal.ymd(pd);
        let _ = y;
        let bonus = bonus_month && (mo == 1 || mo == 2) && k == 0;
        let mut t = pd * DAY + hour * HOUR + rng.gen_range(0..30 * MIN);
        let gap = (dur / staff.len().max(1) as u32).max(1);
        for &(e, s) in &staff {
            let mut a = (s as f64 * unif(rng, 0.93, 1.07)) as u64;
            if bonus {
                a = (a as f64 * unif(rng, 1.5, 3.0)) as u64;
            }
            let ch = if chance(rng, 0.9) {
                Channel::Payroll
            } else {
                Channel::Transfer
            };
            w.transfer(t, acct, e, a.max(100), ch, if bonus { bonus_memo } else { memo });
            t += (gap as f64 * unif(rng, 0.5, 1.5)) as u32;
        }
        // Staff turnover: a few leave, replacements start next month.
        for x in staff.iter_mut() {
            if chance(rng, churn) {
                *x = (w.person(rng, 0.3), fen(lognormal(rng, median, 0.35).max(2_000.0)));
            }
        }
        prev = pd;
    }
    let revenue = (staff.iter().map(|x| x.1).sum::<u64>() / 20).max(1);
    let days = w.cal.days;
    monthly_overheads(w, rng, acct, 0, staff.len(), revenue, (0, days));
    w.label(
        acct,
        "payroll",
        0,
        format!(
            "employees={} payday={} batch_minutes={} months={}",
            n,
            dom,
            dur / 60,
            paydays.len()
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// Gig platforms: commissions to many changing workers, daily or weekly.

pub(crate) fn gig_platform(w: &mut World, rng: &mut Rng, budget: f64) {
    let ind = pick(rng, &[IND_TECH, IND_LOGISTICS, IND_TECH]);
    let acct = w.new_our_corporate(rng, ind);
    let daily = chance(rng, 0.6);
    let step = if daily { 1 } else { 7 };
    let mut per_batch = log_uniform(rng, 20.0, 300.0);
    let mut batches = (budget / (per_batch * 1.02)).round().max(3.0) as u32;
    let max_batches = w.cal.days / step;
    if batches > max_batches {
        batches = max_batches;
    }
    if per_batch * batches as f64 > 2.5 * budget {
        per_batch = (budget / batches as f64).max(20.0);
    }
    let span = (batches * step).min(w.cal.days);
    let (d0, _) = active_window(w, rng, span);
    let pool_n = ((per_batch * unif(rng, 2.0, 10.0)) as usize).max(40);
    let mut pool: Vec<u32> = (0..pool_n).map(|_| w.person(rng, 0.1)).collect();
    let median = if daily {
        log_uniform(rng, 60.0, 500.0)
    } else {
        log_uniform(rng, 300.0, 2_500.0)
    };
    let words: &[&'static str] = pick(
        rng,
        &[
            &["佣金", "佣金结算"][..],
            &["劳务费", "劳务报酬"][..],
            &["结算", "配送费结算", "骑手结算"][..],
            &["服务费结算", "结算", "佣金"][..],
        ],
    );
    let memos = w.memos.ids(words);
    let blank = unif(rng, 0.0, 0.3);
    let hour = pick(rng, &[1u32, 2, 3, 10, 12, 16, 18]);
    let fund_memo = w.memos.id(pick(rng, &["结算款", "备付金", "", "平台结算"]));
    let clearing = pick(rng, &w.clearing.clone());
    let mut paid = 0;
    for b in 0..batches {
        let d = d0 + b * step;
        if d >= w.cal.days {
            break;
        }
        let n = ((per_batch * unif(rng, 0.6, 1.4)) as usize).clamp(5, pool.len());
        let who = sample_indices(rng, pool.len(), n);
        let mut total = 0u64;
        let mut amounts = Vec::with_capacity(n);
        for _ in 0..n {
            let a = fen(lognormal(rng, median, 0.7).clamp(5.0, 50_000.0));
            amounts.push(a);
            total += a;
        }
        let ft = d * DAY + (hour * HOUR).saturating_sub(rng.gen_range(HOUR..6 * HOUR).min(hour * HOUR));
        w.transfer(
            ft,
            clearing,
            acct,
            total + fen(unif(rng, 100.0, 5_000.0)),
            Channel::Transfer,
            fund_memo,
        );
        let mut t = d * DAY + hour * HOUR + rng.gen_range(0..20 * MIN);
        for (i, a) in who.into_iter().zip(amounts) {
            let memo = if chance(rng, blank) { 0 } else { pick(rng, &memos) };
            w.transfer(t, acct, pool[i], a, Channel::Transfer, memo);
            t += rng.gen_range(1..20);
        }
        paid += 1;
        // Workers come and go.
        for _ in 0..(pool.len() / 50).max(1) {
            let i = rng.gen_range(0..pool.len());
            pool[i] = w.person(rng, 0.1);
        }
    }
    w.label(
        acct,
        "gig_platform",
        0,
        format!(
            "cadence={} batches={} per_batch={:.0} pool={} median_yuan={:.0}",
            if daily { "daily" } else { "weekly" },
            paid,
            per_batch,
            pool_n,
            median
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// Charity / medical crowdfunding: many small round-ish donations, then the hospital is paid.

const DONATIONS: &[(u64, u32)] = &[
    (1_000, 18),
    (2_000, 18),
    (5_000, 20),
    (10_000, 18),
    (20_000, 8),
    (50_000, 4),
    (100_000, 2),
    (500, 3),
    (880, 2),
    (6_600, 2),
    (8_800, 2),
    (52_000, 1),
    (200_000, 1),
];

pub(crate) fn crowdfunding(w: &mut World, rng: &mut Rng, budget: f64) {
    let corp = chance(rng, 0.3);
    let acct = if corp {
        w.new_our_corporate(rng, IND_NONPROFIT)
    } else {
        w.new_our_personal(rng)
    };
    let n = log_uniform_int(rng, 30, 2_000).min((2.5 * budget) as u64).max(30) as usize;
    let dur = urange(rng, 3, 20) as u32;
    let start = rng.gen_range(0..w.cal.days.saturating_sub(dur + 12).max(1));
    let memos = w.memos.ids(&[
        "捐款",
        "爱心",
        "医疗救助",
        "加油",
        "早日康复",
        "爱心捐款",
        "一点心意",
        "加油！早日康复",
    ]);
    let blank = unif(rng, 0.1, 0.5);
    let mut total = 0u64;
    let mut last = start * DAY;
    let decay = unif(rng, 1.5, 5.0);
    for _ in 0..n {
        let u: f64 = rng.gen::<f64>().max(1e-9);
        let d = ((-u.ln() * dur as f64 / decay) as u32).min(dur - 1);
        let t = (start + d) * DAY + tod(rng, Tod::Daytime);
        let a = if chance(rng, 0.1) {
            fen(lognormal(rng, 40.0, 0.8).clamp(1.0, 3_000.0))
        } else {
            pick_w(rng, DONATIONS)
        };
        let donor = w.person(rng, 0.15);
        let memo = if chance(rng, blank) { 0 } else { pick(rng, &memos) };
        let ch = if chance(rng, 0.7) {
            Channel::Mobile
        } else {
            Channel::Online
        };
        w.transfer(t, donor, acct, a, ch, memo);
        total += a;
        last = last.max(t);
    }
    let hospital = pick(rng, &w.hospitals.clone());
    let hmemos = w.memos.ids(&["医疗费", "住院费", "手术费", "治疗费用", "住院押金"]);
    let transfers = pick_w(rng, &[(1usize, 6), (2, 4)]);
    let share = unif(rng, 0.7, 1.0);
    let parts = split_amount(rng, (total as f64 * share) as u64, transfers, 100);
    let mut t = (last / DAY + urange(rng, 1, 10) as u32) * DAY + tod(rng, Tod::Business);
    for p in parts {
        let memo = pick(rng, &hmemos);
        w.transfer(w.clamp_t(t), acct, hospital, p, Channel::Transfer, memo);
        let next = t + urange(rng, 1, 6) as u32 * DAY;
        t = if next < w.horizon { next } else { t + 2 * HOUR };
    }
    w.label(
        acct,
        "crowdfunding",
        0,
        format!("donors={} days={} raised_yuan={}", n, dur, total / 100),
    );
}

// ---------------------------------------------------------------------------------------------
// Salary spent the same day: rent and card repayment within hours, once a month.

pub(crate) fn salary_same_day(w: &mut World, rng: &mut Rng, budget: f64) {
    let acct = w.new_our_personal(rng);
    let salary = fen(lognormal(rng, 14_000.0, 0.6).clamp(5_000.0, 80_000.0));
    let employer = pick(rng, &w.ext_employers.clone());
    let dom = pick(rng, &[1u32, 5, 10, 10, 15, 15, 20, 25, 28]);
    let rent = round_to(
        fen(lognormal(rng, salary as f64 / 100.0 * 0.3, 0.3).clamp(1_500.0, 15_000.0)),
        100_00,
    );
    let landlord = pick(rng, &w.ext_landlords.clone());
    let also_family = chance(rng, 0.5);
    let family = w.new_ext_personal(rng);
    let smemo = w.memos.id(pick(rng, &["工资", "{P}月工资", "代发工资", "工资"]));
    let rmemo = w.memos.id(pick(rng, &["房租", "{M}月房租", "房租"]));
    let cmemo = w.memos.id(pick(rng, &["信用卡还款", "还款", "信用卡还款"]));
    let fmemo = w.memos.id(pick(rng, &["生活费", "给家里", "转账", ""]));
    let mut cycles = 0;
    for pd in w.cal.monthly_days(dom) {
        let pd = w.cal.business_day_on_or_before(pd);
        let s = (salary as f64 * unif(rng, 0.97, 1.03)) as u64;
        let t = pd * DAY + 9 * HOUR + rng.gen_range(0..3 * HOUR);
        w.transfer(t, employer, acct, s, Channel::Payroll, smemo);
        let spend_share = unif(rng, 0.7, 1.0);
        let target = (s as f64 * spend_share) as u64;
        let mut to = t + (unif(rng, 0.3, 6.0) * HOUR as f64) as u32;
        let r = rent.min(target);
        w.transfer(to, acct, landlord, r, Channel::Mobile, rmemo);
        let mut left = target - r;
        if also_family && left > 100_000 {
            to += rng.gen_range(5 * MIN..HOUR);
            let f = round_to((left as f64 * unif(rng, 0.1, 0.4)) as u64, 100_00);
            w.transfer(to, acct, family, f.min(left), Channel::Mobile, fmemo);
            left = left.saturating_sub(f);
        }
        if left > 0 {
            to += rng.gen_range(5 * MIN..2 * HOUR);
            w.transfer(to, acct, w.bank_card, left, Channel::Online, cmemo);
        }
        cycles += 1;
    }
    let rate = unif(rng, 0.2, 1.0).min(budget / w.cal.days as f64);
    noise(w, rng, acct, 0, w.cal.days, rate);
    w.label(
        acct,
        "salary_same_day",
        0,
        format!("salary_yuan={} payday={} months={}", salary / 100, dom, cycles),
    );
}

// ---------------------------------------------------------------------------------------------
// Key-sector businesses that are legitimate: a private school's term fees, a care home's
// monthly fees, a cooperative buying produce from farmers.

pub(crate) fn school_tuition(w: &mut World, rng: &mut Rng, budget: f64) {
    let acct = w.new_our_corporate(rng, IND_EDU);
    let parents = log_uniform_int(rng, 30, 300).min((2.0 * budget) as u64).max(30) as usize;
    let prices: Vec<u64> = (0..urange(rng, 1, 3))
        .map(|_| pick(rng, &[3_980u64, 4_800, 6_800, 9_800, 12_800, 16_800, 19_800, 26_800]) * 100)
        .collect();
    let memos = w
        .memos
        .ids(&["学费", "培训费", "春季学期学费", "课程费", "学费", "报名费"]);
    let blank = unif(rng, 0.1, 0.4);
    let window = urange(rng, 7, 21) as u32;
    let start = rng.gen_range(0..w.cal.days.saturating_sub(window).max(1));
    for _ in 0..parents {
        let d = start + rng.gen_range(0..window);
        let t = d * DAY + tod(rng, Tod::Daytime);
        let p = w.person(rng, 0.2);
        let memo = if chance(rng, blank) { 0 } else { pick(rng, &memos) };
        let ch = pick(rng, &[Channel::Mobile, Channel::Online, Channel::Pos]);
        w.transfer(t, p, acct, pick(rng, &prices), ch, memo);
    }
    // Refunds for a few who drop out.
    let refund_memo = w.memos.id("退费");
    for _ in 0..urange(rng, 0, 3) {
        let d = (start + window + urange(rng, 1, 20) as u32).min(w.cal.days - 1);
        let p = w.new_ext_personal(rng);
        w.transfer(
            d * DAY + tod(rng, Tod::Business),
            acct,
            p,
            pick(rng, &prices) / 2,
            Channel::Online,
            refund_memo,
        );
    }
    let rent_memo = w.memos.id("房租");
    let landlord = w.new_ext_corporate(rng);
    for d in w.cal.monthly_days(pick(rng, &[1u32, 5, 25])) {
        let a = round_to(fen(lognormal(rng, 60_000.0, 0.5)), 100_00);
        w.transfer(
            d * DAY + tod(rng, Tod::Business),
            acct,
            landlord,
            a,
            Channel::Online,
            rent_memo,
        );
    }
    let months = (w.cal.days as f64 / 30.0).max(1.0);
    let staff = urange(rng, 8, 40).min((budget / months) as usize).max(3);
    let days = w.cal.days;
    monthly_overheads(w, rng, acct, staff, staff, 20_000_00, (0, days));
    w.label(
        acct,
        "school_tuition",
        0,
        format!(
            "parents={} prices={:?} window_days={}",
            parents,
            prices.iter().map(|p| p / 100).collect::<Vec<_>>(),
            window
        ),
    );
}

pub(crate) fn care_home(w: &mut World, rng: &mut Rng, budget: f64) {
    let acct = w.new_our_corporate(rng, IND_ELDERLY);
    let months = w.cal.monthly_days(1).len().max(1) as f64 + 1.0;
    let residents = (urange(rng, 20, 150) as f64).min(2.0 * budget / months).max(10.0) as usize;
    let families: Vec<(u32, u64, u32)> = (0..residents)
        .map(|_| {
            let fee = round_to(
                fen(unif(rng, 3_000.0, 9_000.0)),
                if chance(rng, 0.7) { 100_00 } else { 100 },
            );
            (w.person(rng, 0.25), fee, urange(rng, 1, 10) as u32)
        })
        .collect();
    let memos = w
        .memos
        .ids(&["护理费", "床位费", "{M}月费用", "养老服务费", "伙食费", ""]);
    let memo_of: Vec<u16> = families.iter().map(|_| pick(rng, &memos)).collect();
    for d in w.cal.monthly_days(1) {
        for (i, &(f, fee, dom)) in families.iter().enumerate() {
            let day = (d + dom - 1 + rng.gen_range(0..3)).min(w.cal.days - 1);
            let t = day * DAY + tod(rng, Tod::Daytime);
            let ch = pick(rng, &[Channel::Mobile, Channel::Online, Channel::Transfer]);
            w.transfer(t, f, acct, fee, ch, memo_of[i]);
        }
    }
    let sup = w.new_ext_corporate(rng);
    let food = w.memos.id(pick(rng, &["食材款", "货款", "采购款"]));
    let mut d = rng.gen_range(0..7);
    while d < w.cal.days {
        w.transfer(
            d * DAY + tod(rng, Tod::Business),
            acct,
            sup,
            fen(lognormal(rng, 400.0 * residents as f64, 0.3)),
            Channel::Online,
            food,
        );
        d += 7;
    }
    let months = (w.cal.days as f64 / 30.0).max(1.0);
    let staff = urange(rng, 10, 40).min((budget / months) as usize).max(3);
    let days = w.cal.days;
    monthly_overheads(w, rng, acct, staff, staff, 0, (0, days));
    w.label(acct, "care_home", 0, format!("residents={}", residents));
}

pub(crate) fn coop_purchase(w: &mut World, rng: &mut Rng, budget: f64) {
    let acct = w.new_our_corporate(rng, IND_COOP);
    let rounds = urange(rng, 3, 8);
    let per = ((urange(rng, 20, 150) as f64)
        .min(2.0 * budget / rounds as f64)
        .max(10.0)) as usize;
    let farmers: Vec<u32> = (0..per * 2).map(|_| w.person(rng, 0.3)).collect();
    let memos = w.memos.ids(&["收购款", "粮款", "{M}月粮款", "茶叶款", "收购款", ""]);
    let memo = pick(rng, &memos);
    let buyer = w.new_ext_corporate(rng);
    let bmemo = w.memos.id("货款");
    // Harvest purchases are irregular: gaps from 2 days to several weeks.
    let mut d = rng.gen_range(0..10u32);
    let mut done = 0;
    let mut last_gap = 100u32;
    for _ in 0..rounds {
        if d >= w.cal.days {
            break;
        }
        let k = urange(rng, per / 2 + 1, per);
        let who = sample_indices(rng, farmers.len(), k);
        let mut t = d * DAY + tod(rng, Tod::Business);
        let mut total = 0;
        for i in who {
            let kg = unif(rng, 50.0, 3_000.0);
            let price = unif(rng, 2.2, 9.5);
            let a = fen(kg * price);
            w.transfer(w.clamp_t(t), acct, farmers[i], a, Channel::Transfer, memo);
            total += a;
            t += rng.gen_range(30..900);
        }
        let bt = (d + urange(rng, 3, 15) as u32).min(w.cal.days - 1) * DAY + tod(rng, Tod::Business);
        w.transfer(
            bt,
            buyer,
            acct,
            (total as f64 * unif(rng, 1.05, 1.3)) as u64,
            Channel::Transfer,
            bmemo,
        );
        // Never two similar gaps in a row, so the purchases do not form a period.
        let mut g = pick(rng, &[2u32, 3, 5, 9, 12, 16, 21, 26]);
        while g.abs_diff(last_gap) < 3 {
            g = pick(rng, &[2u32, 3, 5, 9, 12, 16, 21, 26]);
        }
        last_gap = g;
        d += g;
        done += 1;
    }
    w.label(
        acct,
        "coop_purchase",
        0,
        format!("rounds={} farmers_per_round={}", done, per),
    );
}
