//! Ordinary customers (the bulk of the stream) and the large-value boundary cases.
//!
//! Background accounts are unlabelled negatives, so their traffic is built to stay clear of the
//! behavioural typologies: few distinct payers, no repeated near-line cash, no periodic batches,
//! at most one large in-and-out. They do produce a realistic sprinkling of large-value reports
//! (house purchases, big contracts, shop takings banked in cash, remittances).

use crate::model::*;
use crate::time::{tod, Tod, DAY, HOUR, MIN};
use crate::util::*;
use rand::Rng as _;

/// Memo ids used on the hot path, interned once.
pub(crate) struct BgMemos {
    shop: Vec<u16>,
    p2p: Vec<u16>,
    salary: Vec<u16>,
    rent: u16,
    card: u16,
    utility: Vec<u16>,
    wm_buy: Vec<u16>,
    wm_redeem: Vec<u16>,
    interest: Vec<u16>,
    cash_in: Vec<u16>,
    cash_out: Vec<u16>,
    house: Vec<u16>,
    house_in: Vec<u16>,
    retail_in: Vec<u16>,
    funding: Vec<u16>,
    car: u16,
    remit_in: Vec<u16>,
    remit_out: Vec<u16>,
    corp_in: Vec<u16>,
    corp_out: Vec<u16>,
    equipment: Vec<u16>,
    big_contract: Vec<u16>,
    takings: Vec<u16>,
}

impl BgMemos {
    pub fn new(w: &mut World) -> Self {
        let m = &mut w.memos;
        BgMemos {
            shop: m.ids(&[
                "",
                "",
                "",
                "",
                "消费",
                "消费",
                "美团订单",
                "京东购物",
                "超市",
                "餐饮",
                "滴滴出行",
                "话费充值",
                "淘宝",
                "拼多多",
                "加油",
                "停车费",
                "外卖",
                "咖啡",
                "药店",
                "水果",
            ]),
            p2p: m.ids(&[
                "",
                "",
                "",
                "转账",
                "转账",
                "还钱",
                "红包",
                "生活费",
                "AA",
                "借款",
                "饭钱",
                "份子钱",
            ]),
            salary: m.ids(&["工资", "工资", "代发工资", "{P}月工资", "", "奖金", "绩效"]),
            rent: m.id("房租"),
            card: m.id("信用卡还款"),
            utility: m.ids(&["电费", "水费", "燃气费", "话费", "宽带费", "物业费"]),
            wm_buy: m.ids(&["理财产品购买", "购买理财", "稳健理财", "定期理财", "基金申购"]),
            wm_redeem: m.ids(&["理财赎回", "理财到期", "理财收益", "基金赎回"]),
            interest: m.ids(&["结息", "利息", "存款利息"]),
            cash_in: m.ids(&["", "", "存款", "现金存款"]),
            cash_out: m.ids(&["", "", "取款", "现金支取"]),
            house: m.ids(&["购房款", "首付款", "房款"]),
            funding: m.ids(&["", "", "购房资金", "借款", "转账", "首付"]),
            retail_in: m.ids(&["", "", "消费", "货款", "付款"]),
            house_in: m.ids(&["售房款", "房款", "拆迁补偿款", "遗产继承"]),
            car: m.id("购车款"),
            remit_in: m.ids(&["", "汇款", "家用", "工资", "赡养费"]),
            remit_out: m.ids(&["学费", "留学学费", "生活费", "汇款"]),
            corp_in: m.ids(&[
                "货款",
                "货款",
                "服务费",
                "",
                "",
                "合同款",
                "技术服务费",
                "咨询费",
                "发票{N}",
                "租金",
            ]),
            corp_out: m.ids(&[
                "货款",
                "货款",
                "采购款",
                "",
                "服务费",
                "运费",
                "材料款",
                "广告费",
                "办公用品",
            ]),
            equipment: m.ids(&["设备款", "设备采购", "工程款"]),
            big_contract: m.ids(&["工程款", "合同款", "货款"]),
            takings: m.ids(&["营业款", "现金存款", ""]),
        }
    }
}

fn pick_acct(rng: &mut Rng, xs: &[u32]) -> u32 {
    xs[rng.gen_range(0..xs.len())]
}

/// Create the shared external counterparties everyday life needs.
pub(crate) fn setup_pools(w: &mut World, rng: &mut Rng, records: u64) {
    let n_merch = (records / 1_500 + 60) as usize;
    for _ in 0..n_merch {
        let a = w.new_ext_corporate(rng);
        w.ext_merchants.push(a);
    }
    for _ in 0..(records / 3_000 + 30) {
        let a = w.new_ext_corporate(rng);
        w.ext_employers.push(a);
    }
    for _ in 0..(records / 2_000 + 40) {
        let a = w.new_ext_personal(rng);
        w.ext_landlords.push(a);
    }
    for _ in 0..(records / 200_000 + 6) {
        let a = w.new_ext_corporate(rng);
        w.hospitals.push(a);
        let d = w.new_ext_corporate(rng);
        w.developers.push(d);
    }
}

pub(crate) fn create_background(w: &mut World, rng: &mut Rng, personal: usize, corporate: usize) {
    for _ in 0..personal {
        let a = w.new_our_personal(rng);
        w.bg_personal.push(a);
    }
    for _ in 0..corporate {
        let ind = pick_w(rng, &ORDINARY_INDUSTRIES);
        let a = w.new_our_corporate(rng, ind);
        w.bg_corporate.push(a);
    }
}

/// Everyday life of one personal customer, sized to about `target` ledger entries.
pub(crate) fn personal(w: &mut World, rng: &mut Rng, m: &BgMemos, acct: u32, target: f64) {
    let days = w.cal.days;
    // Some accounts are opened or go quiet during the window.
    let (d0, d1) = if chance(rng, 0.1) {
        let a = rng.gen_range(0..days / 2);
        if chance(rng, 0.5) {
            (a, days)
        } else {
            (0, days - a)
        }
    } else {
        (0, days)
    };
    let active = (d1 - d0).max(1) as f64;
    let months = active / 30.0;
    let mut fixed = 0.0;

    let mut employed = chance(rng, 0.75);
    let mut rent = chance(rng, 0.25);
    let mut card = chance(rng, 0.45);
    let mut utilities = chance(rng, 0.6);
    let monthly = |e: bool, r: bool, c: bool, u: bool| {
        months * (e as u8 as f64 + r as u8 as f64 + c as u8 as f64 + 1.5 * u as u8 as f64)
    };
    // Quiet customers (small targets on sparse streams) drop the monthly habits first, so
    // the requested total holds for any window length.
    for step in 0..4 {
        if monthly(employed, rent, card, utilities) <= 0.7 * target {
            break;
        }
        match step {
            0 => utilities = false,
            1 => card = false,
            2 => rent = false,
            _ => employed = false,
        }
    }
    fixed += monthly(employed, rent, card, utilities);

    let in_window = |d: u32| d >= d0 && d < d1;
    if employed {
        let employer = pick_acct(rng, &w.ext_employers);
        let salary = lognormal(rng, 7_000.0, 0.5).clamp(2_500.0, 60_000.0);
        let dom = pick(rng, &[1u32, 5, 8, 10, 10, 15, 15, 20, 25, 28, 31]);
        let ch = if chance(rng, 0.6) {
            Channel::Payroll
        } else {
            Channel::Transfer
        };
        let memo = pick(rng, &m.salary);
        for d in w.cal.monthly_days(dom) {
            let d = w.cal.business_day_on_or_before(d);
            if in_window(d) {
                let t = d * DAY + 8 * HOUR + rng.gen_range(0..8 * HOUR);
                w.transfer(t, employer, acct, fen(salary * unif(rng, 0.95, 1.05)), ch, memo);
            }
        }
    }
    if rent {
        let landlord = pick_acct(rng, &w.ext_landlords);
        let amt = round_to(fen(lognormal(rng, 3_000.0, 0.5).clamp(800.0, 20_000.0)), 100_00);
        let dom = rng.gen_range(1..29);
        for d in w.cal.monthly_days(dom) {
            if in_window(d) {
                w.transfer(
                    d * DAY + tod(rng, Tod::Daytime),
                    acct,
                    landlord,
                    amt,
                    Channel::Mobile,
                    m.rent,
                );
            }
        }
    }
    if card {
        let dom = rng.gen_range(1..29);
        let med = lognormal(rng, 2_500.0, 0.7);
        for d in w.cal.monthly_days(dom) {
            if in_window(d) {
                let a = fen(lognormal(rng, med, 0.5).clamp(50.0, 80_000.0));
                w.transfer(
                    d * DAY + tod(rng, Tod::Daytime),
                    acct,
                    w.bank_card,
                    a,
                    Channel::Online,
                    m.card,
                );
            }
        }
    }
    if utilities {
        for d in w.cal.monthly_days(rng.gen_range(1..29)) {
            if in_window(d) {
                let memo = pick(rng, &m.utility);
                let cp = w.utility;
                w.transfer(
                    d * DAY + tod(rng, Tod::Daytime),
                    acct,
                    cp,
                    fen(lognormal(rng, 150.0, 0.6)),
                    Channel::Mobile,
                    memo,
                );
                if chance(rng, 0.5) {
                    let memo = pick(rng, &m.utility);
                    w.transfer(
                        d * DAY + tod(rng, Tod::Daytime),
                        acct,
                        cp,
                        fen(lognormal(rng, 80.0, 0.6)),
                        Channel::Mobile,
                        memo,
                    );
                }
            }
        }
    }
    // Quarterly interest settlement on the 21st of Mar/Jun/Sep/Dec.
    if chance(rng, 0.9) {
        let memo = pick(rng, &m.interest);
        let amt = fen(lognormal(rng, 12.0, 1.6).clamp(0.01, 8_000.0));
        for d in w.cal.monthly_days(21) {
            let (_, mo, _) = w.cal.ymd(d);
            if mo % 3 == 0 && in_window(d) {
                let t = d * DAY + rng.gen_range(0..2 * HOUR);
                w.transfer(t, w.bank_interest, acct, amt, Channel::Transfer, memo);
                fixed += 1.0;
            }
        }
    }
    // Bank wealth-management products: round amounts and 理财 memos, entirely legitimate.
    if chance(rng, 0.12) && active > 40.0 {
        let n = urange(rng, 1, 3);
        for _ in 0..n {
            let p = pick_w(
                rng,
                &[
                    (10_000u64, 4),
                    (20_000, 4),
                    (30_000, 3),
                    (50_000, 4),
                    (100_000, 3),
                    (200_000, 2),
                    (300_000, 1),
                    (500_000, 1),
                ],
            ) * 100;
            let d = d0 + rng.gen_range(0..(active as u32 - 35).max(1));
            let memo = pick(rng, &m.wm_buy);
            w.transfer(
                d * DAY + tod(rng, Tod::Daytime),
                acct,
                w.bank_wealth,
                p,
                Channel::Online,
                memo,
            );
            let hold = pick(rng, &[30u32, 35, 60, 90, 91, 180]);
            if d + hold < d1 {
                let y = p + (p as f64 * unif(rng, 0.002, 0.012)) as u64;
                let memo = pick(rng, &m.wm_redeem);
                w.transfer(
                    (d + hold) * DAY + rng.gen_range(8 * HOUR..10 * HOUR),
                    w.bank_wealth,
                    acct,
                    y,
                    Channel::Transfer,
                    memo,
                );
            }
            fixed += 2.0;
        }
    }
    // Counter cash, rare; a few bank a big sum once (a large-value report, nothing more).
    let r: f64 = rng.gen();
    if r < 0.012 {
        let d = d0 + rng.gen_range(0..active as u32);
        let a = if chance(rng, 0.3) {
            50_000_00
        } else {
            round_to(fen(unif(rng, 50_000.0, 160_000.0)), 100_00)
        };
        w.cash(
            d * DAY + tod(rng, Tod::Business),
            acct,
            chance(rng, 0.25),
            a,
            pick(rng, &m.cash_in),
            0,
        );
    } else if r < 0.017 {
        let d = d0 + rng.gen_range(0..active as u32);
        let a = irange(rng, 40_000_00, 49_990_00);
        w.cash(
            d * DAY + tod(rng, Tod::Business),
            acct,
            false,
            a,
            pick(rng, &m.cash_in),
            0,
        );
    }
    // Large legitimate transfers.
    let r: f64 = rng.gen();
    if r < 0.012 {
        let dev = pick_acct(rng, &w.developers);
        let total = round_to(fen(log_uniform(rng, 600_000.0, 6_000_000.0)), 1_000_00);
        let d = d0 + rng.gen_range(0..active as u32);
        let memo = pick(rng, &m.house);
        let t = d * DAY + tod(rng, Tod::Business);
        // The money is usually there from a relative or a loan shortly before.
        let src = w.new_ext_personal(rng);
        let lead = rng.gen_range(2 * DAY..20 * DAY);
        let ts = if t > lead + DAY { t - lead } else { t / 2 + 9 * HOUR };
        w.transfer(ts, src, acct, total, Channel::Transfer, pick(rng, &m.funding));
        w.transfer(t, acct, dev, total, Channel::Counter, memo);
    } else if r < 0.02 {
        let src = w.new_ext_personal(rng);
        let d = d0 + rng.gen_range(0..active as u32);
        let a = round_to(fen(log_uniform(rng, 450_000.0, 3_000_000.0)), 100_00);
        w.transfer(
            d * DAY + tod(rng, Tod::Business),
            src,
            acct,
            a,
            Channel::Counter,
            pick(rng, &m.house_in),
        );
    } else if r < 0.026 {
        let dealer = pick_acct(rng, &w.ext_merchants);
        let d = d0 + rng.gen_range(0..active as u32);
        let a = round_to(fen(unif(rng, 120_000.0, 480_000.0)), 100);
        w.transfer(d * DAY + tod(rng, Tod::Business), acct, dealer, a, Channel::Pos, m.car);
    }
    // Cross-border remittances.
    if chance(rng, 0.04) {
        let foreign = w.new_foreign(rng);
        let n = urange(rng, 1, 4);
        let inbound = chance(rng, 0.65);
        for _ in 0..n {
            let d = d0 + rng.gen_range(0..active as u32);
            let t = d * DAY + tod(rng, Tod::Business);
            let (cur, amt) = if chance(rng, 0.55) {
                (CUR_CNY, round_to(fen(log_uniform(rng, 5_000.0, 320_000.0)), 100))
            } else {
                let c = pick(rng, &[CUR_USD, CUR_USD, CUR_HKD, CUR_EUR]);
                (c, round_to(fen(log_uniform(rng, 500.0, 60_000.0)), 100))
            };
            let x = Tx {
                cross: true,
                currency: cur,
                ts_fmt: 0,
            };
            if inbound {
                w.transfer_x(t, foreign, acct, amt, Channel::Transfer, pick(rng, &m.remit_in), x);
            } else {
                w.transfer_x(t, acct, foreign, amt, Channel::Online, pick(rng, &m.remit_out), x);
            }
            fixed += 1.0;
        }
    }

    // Variable part: shopping, person-to-person, ATM. Sized to hit the target.
    let variable = ((target - fixed).max(0.5)) / active;
    let spend_rate = variable * 0.82;
    let p2p_rate = variable * 0.12;
    let atm_rate = variable * 0.06;
    let contacts: Vec<u32> = (0..urange(rng, 2, 9))
        .map(|_| w.person_except(rng, 0.25, acct))
        .collect();
    let fav: Vec<u32> = (0..urange(rng, 3, 12))
        .map(|_| pick_acct(rng, &w.ext_merchants))
        .collect();
    let spend_med = lognormal(rng, 45.0, 0.5);
    let in_share = unif(rng, 0.2, 0.6);
    let mobile_first = chance(rng, 0.7);
    for d in d0..d1 {
        for _ in 0..poisson(rng, spend_rate) {
            let t = d * DAY + tod(rng, Tod::Daytime);
            let cp = if chance(rng, 0.6) {
                pick(rng, &fav)
            } else {
                pick_acct(rng, &w.ext_merchants)
            };
            let ch = match rng.gen_range(0..10) {
                0..=5 => {
                    if mobile_first {
                        Channel::Mobile
                    } else {
                        Channel::Pos
                    }
                }
                6 | 7 => Channel::Pos,
                _ => Channel::Online,
            };
            let a = fen(lognormal(rng, spend_med, 1.0).clamp(0.5, 20_000.0));
            w.transfer(t, acct, cp, a, ch, pick(rng, &m.shop));
        }
        for _ in 0..poisson(rng, p2p_rate) {
            let t = d * DAY + tod(rng, Tod::Daytime);
            let c = pick(rng, &contacts);
            let a = if chance(rng, 0.5) {
                pick(rng, &[50u64, 100, 200, 200, 300, 500, 500, 1_000, 2_000, 5_000]) * 100
            } else {
                fen(lognormal(rng, 260.0, 1.0).clamp(1.0, 30_000.0))
            };
            let memo = pick(rng, &m.p2p);
            let ch = if chance(rng, 0.8) {
                Channel::Mobile
            } else {
                Channel::Transfer
            };
            if chance(rng, in_share) {
                w.transfer(t, c, acct, a, ch, memo);
            } else {
                w.transfer(t, acct, c, a, ch, memo);
            }
        }
        for _ in 0..poisson(rng, atm_rate) {
            let t = d * DAY + tod(rng, Tod::Daytime);
            let a = pick(rng, &[2u64, 3, 5, 5, 10, 10, 20, 30]) * 100_00;
            w.atm(t, acct, a, pick(rng, &m.cash_out));
        }
    }
}

/// Everyday life of one ordinary company, sized to about `target` ledger entries.
pub(crate) fn corporate(w: &mut World, rng: &mut Rng, m: &BgMemos, acct: u32, target: f64) {
    let days = w.cal.days;
    let ind = w.accts[acct as usize].industry;
    let shop = ind == IND_RETAIL || ind == IND_CATERING;
    let n_cust = urange(rng, 3, 40);
    let n_sup = urange(rng, 2, 20);
    let customers: Vec<u32> = (0..n_cust)
        .map(|_| {
            if shop || chance(rng, 0.15) {
                w.person_except(rng, 0.2, acct)
            } else {
                w.company_except(rng, 0.1, acct)
            }
        })
        .collect();
    let suppliers: Vec<u32> = (0..n_sup).map(|_| w.company_except(rng, 0.1, acct)).collect();
    let scale = log_uniform(rng, 1_500.0, 150_000.0);
    let shop_ticket = log_uniform(rng, 30.0, 400.0);
    let months = days as f64 / 30.0;
    let staff = if chance(rng, 0.6) { urange(rng, 1, 9) } else { 0 };
    // Small targets (sparse streams): fewer staff, and no monthly tax run at all if even that
    // would not fit.
    let staff = staff.min(((0.5 * target / months) - 2.0).max(0.0) as usize);
    let taxes = target > 4.0 * months;
    let fixed = months * (taxes as u8 as f64 * 2.0 + staff as f64);
    let variable = ((target - fixed).max(1.0)) / days as f64;
    // Shops: many small sales in, fewer and larger supplier payments out.
    let in_rate = variable
        * if shop {
            unif(rng, 0.85, 0.95)
        } else {
            unif(rng, 0.45, 0.65)
        };
    let out_rate = variable - in_rate;
    let tax_memo = w.memos.id("税款");
    let si_memo = w.memos.id("社保");
    let wage_memo = w.memos.id(pick(rng, &["工资", "{P}月工资", "工资"]));
    let cross = chance(rng, if ind == IND_TRADING { 0.5 } else { 0.04 });
    let foreign = if cross { w.new_foreign(rng) } else { NONE };
    for d in 0..days {
        let weekend = w.cal.is_weekend(d);
        let k = if weekend && !shop { 0.25 } else { 1.0 };
        for _ in 0..poisson(rng, in_rate * k) {
            let t = d * DAY + tod(rng, if shop { Tod::Retail } else { Tod::Business });
            let c = pick(rng, &customers);
            // Shops sell to walk-in customers; firms invoice other firms (and a few people).
            let (a, memo) = if shop {
                (
                    fen(lognormal(rng, shop_ticket, 0.8).clamp(1.0, 20_000.0)),
                    pick(rng, &m.retail_in),
                )
            } else if !w.corporate(c) {
                (
                    fen(lognormal(rng, scale, 0.9).clamp(1.0, 200_000.0)),
                    pick(rng, &m.corp_in),
                )
            } else {
                (
                    fen(lognormal(rng, scale, 0.9).clamp(1.0, 1_500_000.0)),
                    pick(rng, &m.corp_in),
                )
            };
            let ch = if shop {
                pick(rng, &[Channel::Pos, Channel::Mobile, Channel::Transfer])
            } else {
                pick(rng, &[Channel::Transfer, Channel::Online, Channel::Online])
            };
            if cross && chance(rng, 0.2) {
                let cur = pick(rng, &[CUR_USD, CUR_CNY, CUR_USD, CUR_EUR, CUR_HKD]);
                w.transfer_x(
                    t,
                    foreign,
                    acct,
                    a,
                    Channel::Transfer,
                    memo,
                    Tx {
                        cross: true,
                        currency: cur,
                        ts_fmt: 0,
                    },
                );
            } else {
                w.transfer(t, c, acct, a, ch, memo);
            }
        }
        for _ in 0..poisson(rng, out_rate * k) {
            let t = d * DAY + tod(rng, Tod::Business);
            let s = pick(rng, &suppliers);
            let med = if shop {
                shop_ticket * 0.7 * in_rate / out_rate.max(1e-9)
            } else {
                scale * 0.8
            };
            let a = fen(lognormal(rng, med, 0.9).clamp(1.0, 1_500_000.0));
            let memo = pick(rng, &m.corp_out);
            w.transfer(t, acct, s, a, Channel::Online, memo);
        }
        // Shops bank their cash takings once a week or so.
        if shop && !weekend && chance(rng, 0.15) {
            // Takings banked at the counter: mostly well under the cash line, now and then over it.
            let a = round_to(
                fen(lognormal(rng, scale.min(12_000.0), 0.6).clamp(1_000.0, 120_000.0)),
                100,
            );
            w.cash(
                d * DAY + tod(rng, Tod::Business),
                acct,
                false,
                a,
                pick(rng, &m.takings),
                0,
            );
        }
    }
    let payday = pick(rng, &[5u32, 10, 15, 25]);
    let staff_acc: Vec<(u32, u64)> = (0..staff)
        .map(|_| (w.person(rng, 0.3), fen(lognormal(rng, 6_000.0, 0.4))))
        .collect();
    for d in w.cal.monthly_days(15) {
        let d = w.cal.business_day_on_or_before(d);
        if !taxes {
            break;
        }
        let t = d * DAY + tod(rng, Tod::Business);
        w.transfer(
            t,
            acct,
            w.tax_bureau,
            fen(scale * unif(rng, 0.3, 3.0)),
            Channel::Online,
            tax_memo,
        );
        if staff > 0 {
            w.transfer(
                t + 300,
                acct,
                w.social_insurance,
                fen(staff as f64 * unif(rng, 1_000.0, 2_000.0)),
                Channel::Online,
                si_memo,
            );
        }
    }
    for d in w.cal.monthly_days(payday) {
        let d = w.cal.business_day_on_or_before(d);
        let mut t = d * DAY + tod(rng, Tod::Business);
        for &(e, s) in &staff_acc {
            w.transfer(
                t,
                acct,
                e,
                (s as f64 * unif(rng, 0.95, 1.05)) as u64,
                Channel::Transfer,
                wage_memo,
            );
            t += rng.gen_range(30..1_200);
        }
    }
    // Occasional very large legitimate movements.
    let r: f64 = rng.gen();
    if r < 0.03 {
        let v = w.new_ext_corporate(rng);
        let d = rng.gen_range(0..days);
        let a = round_to(fen(log_uniform(rng, 1_800_000.0, 15_000_000.0)), 1_000_00);
        let memo = pick(rng, &m.equipment);
        let np = urange(rng, 1, 2);
        let parts = split_amount(rng, a, np, 1_000_00);
        let mut t = d * DAY + tod(rng, Tod::Business);
        for p in parts {
            w.transfer(w.clamp_t(t), acct, v, p, Channel::Transfer, memo);
            t += rng.gen_range(10 * MIN..3 * HOUR);
        }
    } else if r < 0.05 {
        let c = w.new_ext_corporate(rng);
        let d = rng.gen_range(0..days);
        let a = round_to(fen(log_uniform(rng, 1_500_000.0, 8_000_000.0)), 100);
        w.transfer(
            d * DAY + tod(rng, Tod::Business),
            c,
            acct,
            a,
            Channel::Transfer,
            pick(rng, &m.big_contract),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Large-value boundary cases: exact lines, one fen below, Beijing-midnight straddles, kinds and
// directions that must not be summed together, non-CNY. Each is a separate account so every
// case shows up (or not) on its own in the labels.

pub(crate) fn boundary_set(w: &mut World, rng: &mut Rng) {
    let days = w.cal.days;
    let pick_day = |rng: &mut Rng| rng.gen_range(1..days - 1);
    let dep = w.memos.id("存款");
    let z = F_TS_Z;
    let loc = F_TS_LOCAL;
    let mut cases: Vec<(u32, &'static str, bool)> = Vec::new();

    // 1. Cash day total exactly 50,000.00 (30,000 + 20,000) → reported.
    let a = w.new_our_personal(rng);
    let d = pick_day(rng);
    w.cash(d * DAY + 10 * HOUR, a, false, 30_000_00, dep, 0);
    w.cash(d * DAY + 15 * HOUR + 20 * MIN, a, false, 20_000_00, dep, 0);
    cases.push((a, "cash_day_total_exactly_50000", true));

    // 2. A single 49,999.99 → not reported.
    let a = w.new_our_personal(rng);
    w.cash(pick_day(rng) * DAY + 11 * HOUR, a, false, 49_999_99, dep, 0);
    cases.push((a, "cash_single_49999.99", true));

    // 3. 29,999.99 + 20,000.00 → 49,999.99, not reported.
    let a = w.new_our_personal(rng);
    let d = pick_day(rng);
    w.cash(d * DAY + 9 * HOUR + 40 * MIN, a, false, 29_999_99, dep, 0);
    w.cash(d * DAY + 16 * HOUR, a, false, 20_000_00, dep, 0);
    cases.push((a, "cash_day_total_49999.99", true));

    // 4. 30,000 at 23:59:3x and 30,000 at 00:00:2x Beijing, written in UTC: same UTC day,
    //    different Beijing days → not reported.
    let a = w.new_our_personal(rng);
    let d = pick_day(rng);
    w.cash(d * DAY + DAY - 30, a, false, 30_000_00, dep, z);
    w.cash((d + 1) * DAY + 25, a, false, 30_000_00, dep, z);
    cases.push((a, "cash_straddles_beijing_midnight", true));

    // 5. 07:50 and 08:30 Beijing, written in UTC (different UTC days) → same Beijing day, reported.
    let a = w.new_our_personal(rng);
    let d = pick_day(rng);
    w.cash(d * DAY + 7 * HOUR + 50 * MIN, a, false, 30_000_00, dep, z);
    w.cash(d * DAY + 8 * HOUR + 30 * MIN, a, false, 25_000_00, dep, z);
    cases.push((a, "cash_same_beijing_day_across_utc_midnight", true));

    // 6. Personal domestic transfer of exactly 500,000.00 (reported) and, another day,
    //    499,999.99 (not).
    let a = w.new_our_personal(rng);
    let src = w.new_ext_personal(rng);
    let d = pick_day(rng);
    let memo = w.memos.id("房款");
    w.transfer_x(
        d * DAY + 10 * HOUR,
        src,
        a,
        500_000_00,
        Channel::Counter,
        memo,
        Tx {
            ts_fmt: loc,
            ..Tx::default()
        },
    );
    let d2 = if d + 3 < days { d + 3 } else { d - 3 };
    w.transfer(d2 * DAY + 14 * HOUR, a, src, 499_999_99, Channel::Online, memo);
    cases.push((a, "personal_transfer_exactly_500000_and_499999.99", false));

    // 7. Cross-border personal: 200,000.00 CNY (reported), 199,999.99 (not), USD 300,000 (not:
    //    non-CNY is out of scope).
    let a = w.new_our_personal(rng);
    let f = w.new_foreign(rng);
    let memo = w.memos.id("汇款");
    let d = pick_day(rng);
    let cb = Tx {
        cross: true,
        currency: CUR_CNY,
        ts_fmt: 0,
    };
    w.transfer_x(d * DAY + 10 * HOUR, f, a, 200_000_00, Channel::Transfer, memo, cb);
    let d2 = if d + 5 < days { d + 5 } else { d - 5 };
    w.transfer_x(d2 * DAY + 10 * HOUR, f, a, 199_999_99, Channel::Transfer, memo, cb);
    let d3 = if d + 9 < days { d + 9 } else { d - 9 };
    w.transfer_x(
        d3 * DAY + 10 * HOUR,
        f,
        a,
        300_000_00,
        Channel::Transfer,
        memo,
        Tx {
            cross: true,
            currency: CUR_USD,
            ts_fmt: 0,
        },
    );
    cases.push((a, "cross_border_exactly_200000_and_below_and_usd", true));

    // 8. Corporate: 1,200,000 + 800,000 out the same day (reported), 1,999,999.99 another day (not).
    let a = w.new_our_corporate(rng, IND_MANUFACTURING);
    let v = w.new_ext_corporate(rng);
    let memo = w.memos.id("设备款");
    let d = pick_day(rng);
    w.transfer(d * DAY + 10 * HOUR, a, v, 1_200_000_00, Channel::Transfer, memo);
    w.transfer(d * DAY + 16 * HOUR, a, v, 800_000_00, Channel::Online, memo);
    let d2 = if d + 4 < days { d + 4 } else { d - 4 };
    w.transfer(d2 * DAY + 10 * HOUR, a, v, 1_999_999_99, Channel::Transfer, memo);
    cases.push((a, "corporate_day_total_exactly_2000000_and_below", false));

    // 9. Kinds and directions are summed separately: cash 40,000 + transfer 20,000 in; cash
    //    30,000 in + cash 30,000 out the same day → nothing reported.
    let a = w.new_our_personal(rng);
    let src = w.new_ext_personal(rng);
    let d = pick_day(rng);
    let p2p = w.memos.id("转账");
    w.cash(d * DAY + 10 * HOUR, a, false, 40_000_00, dep, 0);
    w.transfer(d * DAY + 12 * HOUR, src, a, 20_000_00, Channel::Mobile, p2p);
    let d2 = if d + 2 < days { d + 2 } else { d - 2 };
    w.cash(d2 * DAY + 10 * HOUR, a, false, 30_000_00, dep, 0);
    w.cash(d2 * DAY + 15 * HOUR, a, true, 30_000_00, dep, 0);
    cases.push((a, "kinds_and_directions_not_mixed", true));

    // 10. A single 50,000.00 cash deposit at 00:00:00 Beijing written with +08:00 → reported
    //     on that day.
    let a = w.new_our_personal(rng);
    let d = pick_day(rng);
    w.cash(d * DAY, a, false, 50_000_00, dep, loc);
    cases.push((a, "cash_single_50000_at_midnight", true));

    // 11. Personal: cross-border 150,000 + domestic 400,000 the same day → neither line.
    let a = w.new_our_personal(rng);
    let f = w.new_foreign(rng);
    let src = w.new_ext_personal(rng);
    let d = pick_day(rng);
    let memo = w.memos.id("汇款");
    w.transfer_x(d * DAY + 9 * HOUR, f, a, 150_000_00, Channel::Transfer, memo, cb);
    w.transfer(d * DAY + 11 * HOUR, src, a, 400_000_00, Channel::Counter, p2p);
    cases.push((a, "cross_border_and_domestic_not_mixed", false));

    // 12. EUR cash 60,000 → out of scope (non-CNY).
    let a = w.new_our_personal(rng);
    let d = pick_day(rng);
    let memo = w.memos.id("外币存款");
    w.transfer_x(
        d * DAY + 10 * HOUR,
        NONE,
        a,
        60_000_00,
        Channel::Cash,
        memo,
        Tx {
            cross: false,
            currency: CUR_EUR,
            ts_fmt: 0,
        },
    );
    cases.push((a, "eur_cash_60000", true));

    // 13. Running total crossing the line on the third deposit (20k + 20k + 10k.01).
    let a = w.new_our_personal(rng);
    let d = pick_day(rng);
    w.cash(d * DAY + 9 * HOUR, a, false, 20_000_00, dep, 0);
    w.cash(d * DAY + 12 * HOUR, a, false, 20_000_00, dep, 0);
    w.cash(d * DAY + 17 * HOUR, a, false, 10_000_01, dep, 0);
    cases.push((a, "cash_running_total_crosses_on_third", true));

    // Everyday card spending only where it cannot blur the case (it is a transfer kind, so it
    // would add to the personal-domestic total of the transfer cases).
    for (a, name, may_noise) in cases {
        if may_noise && chance(rng, 0.7) {
            // A month of light card spending, not the whole window (keeps tiny streams on target).
            let from = rng.gen_range(0..days - 20);
            crate::schemes::noise(w, rng, a, from, from + 30, 0.15);
        }
        w.label(a, "lv_boundary", 0, name.to_string());
    }
}
