//! The evasive profile's fund-raising schemes: the same typologies as [`crate::schemes`], run
//! the way schemes that expect scrutiny run them. No investment or interest words in memos
//! (blank, or 借款 / 往来款 / 转账 / 还款 / 货款 / 红包 / a name), lucky-number and ragged
//! tickets instead of round ones, no key-sector industry, payout batches spread over hours
//! with ±2 days of jitter, and — the main case — interest paid from a separate account that is
//! funded shortly before each batch and drained by it.
//!
//! Every labelled account of one scheme carries the same scheme id; receivers of the
//! collected money that are in this bank are labelled too (`scheme_receiver`, no rule). What
//! each scheme actually took in and paid out is noted as it is written ([`World::note_flows`])
//! for the labels' scheme lines. A few of the bank's own customers invest in more than one
//! scheme, as real investors do, so sharing people does not make two schemes one.

use crate::model::*;
use crate::schemes::{
    collect, controllers, noise, sweep, MemoMix, Payment, Period, TicketStyle, Tickets, Wave, GIVEN, SURNAMES,
};
use crate::time::{tod, Tod, DAY, HOUR, MIN};
use crate::util::*;
use rand::Rng as _;

/// Memos of sweeps out of an evasive collector.
const EV_SWEEP_MEMOS: &[&str] = &["", "", "", "转账", "往来款", "借款", "货款", "还款"];

/// A scheme account: personal, or corporate without an industry or in an ordinary one; some
/// never carry `account_type`/`industry` at all.
fn ev_account(w: &mut World, rng: &mut Rng, corp_p: f64) -> u32 {
    let a = if chance(rng, corp_p) {
        let ind = pick_w(
            rng,
            &[(IND_NONE, 60), (IND_TRADING, 15), (IND_CONSULTING, 15), (IND_TECH, 10)],
        );
        w.new_our_corporate(rng, ind)
    } else {
        w.new_our_personal(rng)
    };
    if chance(rng, 0.2) {
        w.accts[a as usize].flags |= A_NO_META;
    }
    a
}

fn ev_tickets(rng: &mut Rng, small: bool) -> TicketStyle {
    let lucky_pct = pick_w(rng, &[(0u8, 3), (10, 3), (30, 2), (70, 1)]);
    let (median, lo, hi) = if small {
        (unif(rng, 3_000.0, 15_000.0) as u32, 1_000, 40_000)
    } else {
        (log_uniform(rng, 5_000.0, 30_000.0) as u32, 3_000, 80_000)
    };
    let cents_pct = pick(rng, &[0u8, 0, 5, 20, 50]);
    let ten_pct = pick(rng, &[0u8, 30, 60, 100]).min(100 - cents_pct);
    TicketStyle {
        kind: Tickets::Ragged {
            lucky_pct,
            median,
            sigma_pct: urange(rng, 40, 90) as u16,
            lo,
            hi,
            cents_pct,
            ten_pct,
        },
        nonround: 0.0,
        name: "ragged",
    }
}

fn person_name(rng: &mut Rng) -> String {
    format!("{}{}", pick(rng, &SURNAMES), pick(rng, &GIVEN))
}

/// Disguised memos: a few neutral words and sometimes names, often nothing.
fn ev_memos(w: &mut World, rng: &mut Rng) -> MemoMix {
    const WORDS: [&str; 8] = ["借款", "往来款", "转账", "还款", "货款", "红包", "借款", "转账"];
    let k = urange(rng, 1, 4);
    let mut neutral: Vec<u16> = sample_indices(rng, WORDS.len(), k)
        .into_iter()
        .map(|i| w.memos.id(WORDS[i]))
        .collect();
    let names = chance(rng, 0.3);
    if names {
        for _ in 0..urange(rng, 3, 15) {
            let n = person_name(rng);
            neutral.push(w.memos.dynamic(n));
        }
    }
    let (p_neutral, name) = pick_w(
        rng,
        &[
            ((0.0, "blank"), 3),
            ((0.15, "quiet"), 3),
            ((0.4, "disguised"), 3),
            ((0.8, "disguised_heavy"), 1),
        ],
    );
    MemoMix {
        invest: Vec::new(),
        neutral,
        p_invest: 0.0,
        p_neutral,
        name,
    }
}

/// Rate per period in parts per million: arbitrary, not a menu of round rates.
fn ev_rate(rng: &mut Rng, period: Period) -> u64 {
    let (lo, hi) = match period {
        Period::Weekly => (20, 80),
        Period::TenDaily => (30, 120),
        Period::SemiMonthly => (50, 150),
        Period::Monthly => (80, 300),
    };
    irange(rng, lo, hi) * 100 + if chance(rng, 0.3) { irange(rng, 1, 99) } else { 0 }
}

/// Batch days every period with ±2 days of jitter, at least 3 days apart, leaving a day at
/// the end (batches may run into the next day).
fn ev_batch_days(rng: &mut Rng, period: Period, first: u32, end_day: u32, max: usize) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::new();
    let mut nominal = first;
    while out.len() < max {
        let j = pick_w(rng, &[(-2i64, 1), (-1, 2), (0, 3), (1, 2), (2, 1)]);
        let d = (nominal as i64 + j).max(0) as u32;
        let d = d.max(out.last().map_or(0, |&l| l + 3));
        if d + 2 >= end_day {
            break;
        }
        out.push(d);
        nominal += period.days();
    }
    out
}

/// How an evasive scheme lays out one payout batch.
struct EvBatch {
    hour: u32,
    spread_s: u32,
    split_p: f64,
    memos: Vec<u16>,
    blank_p: f64,
    channels: [(Channel, u32); 3],
    /// Payouts rounded to whole yuan (else to the fen).
    yuan: bool,
    /// Share of payments a little off the computed amount (fees, rounding by hand).
    noise_p: f64,
}

impl EvBatch {
    fn draw(w: &mut World, rng: &mut Rng) -> EvBatch {
        let words: &[&'static str] = pick(
            rng,
            &[
                &["转账"][..],
                &["还款", "转账"][..],
                &["红包"][..],
                &["往来款"][..],
                &["借款", "还款"][..],
            ],
        );
        EvBatch {
            hour: pick(rng, &[8u32, 9, 10, 11, 13, 14, 15, 16, 19, 20, 21]),
            spread_s: (unif(rng, 1.0, 6.0) * HOUR as f64) as u32,
            split_p: pick(rng, &[0.0, 0.0, 0.15, 0.4]),
            memos: w.memos.ids(words),
            blank_p: pick(rng, &[0.3, 0.6, 0.9, 1.0, 1.0]),
            channels: [
                (Channel::Transfer, rng.gen_range(0..6)),
                (Channel::Mobile, rng.gen_range(1..6)),
                (Channel::Online, rng.gen_range(0..6)),
            ],
            yuan: chance(rng, 0.4),
            noise_p: pick(rng, &[0.0, 0.05, 0.2]),
        }
    }

    /// When the batch starts on `day`.
    fn start(&self, rng: &mut Rng, day: u32) -> u32 {
        day * DAY + self.hour * HOUR + rng.gen_range(0..45 * MIN)
    }
}

/// Interest of each (payee, principal) at `rate_ppm`, as the scheme's spreadsheet computes it.
fn payouts(rng: &mut Rng, style: &EvBatch, payees: &[(u32, u64)], rate_ppm: u64) -> Vec<(u32, u64)> {
    payees
        .iter()
        .map(|&(p, principal)| {
            let mut amt = (principal * rate_ppm + 500_000) / 1_000_000;
            if chance(rng, style.noise_p) {
                amt = (amt as f64 * unif(rng, 0.99, 1.01)) as u64;
            }
            if style.yuan {
                amt = round_to(amt, 100);
            }
            (p, amt.max(1))
        })
        .collect()
}

/// Pay one batch from `acct`, starting at `start`: payments minutes apart (never two hours),
/// spread over hours, sometimes continued the next day. Returns the total.
fn pay(w: &mut World, rng: &mut Rng, acct: u32, start: u32, style: &EvBatch, pays: &[(u32, u64)]) -> u64 {
    let n = pays.len().max(1);
    let spread = style.spread_s as f64 * unif(rng, 0.7, 1.3);
    let mean_gap = spread / n as f64;
    let cut = if n >= 16 && chance(rng, style.split_p) {
        (n as f64 * unif(rng, 0.4, 0.7)) as usize
    } else {
        n
    };
    let order = sample_indices(rng, pays.len(), pays.len());
    let mut t = start;
    let mut total = 0;
    for (k, i) in order.into_iter().enumerate() {
        if k == cut && k > 0 {
            t = (start / DAY + 1) * DAY + style.hour * HOUR + rng.gen_range(0..2 * HOUR);
        }
        let (r, amt) = pays[i];
        let ch = pick_w(rng, &style.channels);
        let memo = if chance(rng, style.blank_p) {
            0
        } else {
            pick(rng, &style.memos)
        };
        w.transfer(w.clamp_t(t), acct, r, amt, ch, memo);
        total += amt;
        let u: f64 = rng.gen::<f64>().max(1e-9);
        t += ((-u.ln() * mean_gap).clamp(20.0, 100.0 * MIN as f64)) as u32;
    }
    total
}

/// Where the payout account's money comes from.
#[derive(Clone, Copy, PartialEq)]
enum Funding {
    /// The payer itself (collect-and-pay): no transfers.
    SelfFunded,
    /// One or a few transfers from `src` hours to two days before each batch.
    PerBatch(u32),
    /// A fresh outside account before each batch.
    PerBatchFresh,
    /// One large injection before the first batch.
    UpFront(u32),
}

impl Funding {
    fn name(self) -> &'static str {
        match self {
            Funding::SelfFunded => "self",
            Funding::PerBatch(_) => "per_batch",
            Funding::PerBatchFresh => "per_batch_outside",
            Funding::UpFront(_) => "up_front",
        }
    }
}

/// Amount just covering `need` (drains the account): a round-ish sum, up a little.
fn cover(rng: &mut Rng, need: u64) -> u64 {
    let unit = pick(rng, &[100u64, 100_00, 1_000_00, 1]);
    let v = (need as f64 * unif(rng, 1.0, 1.05)) as u64;
    v.div_ceil(unit).max(1) * unit
}

fn fund(w: &mut World, rng: &mut Rng, src: u32, dst: u32, before: u32, need: u64) {
    let amt = cover(rng, need);
    let n = pick_w(rng, &[(1usize, 5), (2, 3), (3, 1)]);
    let parts = split_amount(rng, amt, n, 100_00);
    let lead = (log_uniform(rng, 1.0, 46.0) * HOUR as f64) as u32;
    let mut t = before.saturating_sub(lead);
    let memos = w.memos.ids(&["", "", "", "转账", "往来款", "借款"]);
    let memo = pick(rng, &memos);
    for p in parts {
        let ch = pick(rng, &[Channel::Transfer, Channel::Mobile, Channel::Online]);
        w.transfer(t, src, dst, p, ch, memo);
        t += rng.gen_range(2 * MIN..40 * MIN);
    }
}

/// The payout side: batches from `acct` to `payees` (who, principal, joined at), funded as
/// `funding` says. Returns the number of batches paid.
#[allow(clippy::too_many_arguments)]
fn run_batches(
    w: &mut World,
    rng: &mut Rng,
    scheme: u32,
    acct: u32,
    payees: &[(u32, u64, u32)],
    period: Period,
    first_day: u32,
    want: usize,
    funding: Funding,
) -> (usize, u64) {
    let style = EvBatch::draw(w, rng);
    let mut rate = ev_rate(rng, period);
    let change_at = if chance(rng, 0.2) {
        urange(rng, 1, want.max(2))
    } else {
        usize::MAX
    };
    let bdays = ev_batch_days(rng, period, first_day, w.cal.days, want);
    if let Funding::UpFront(src) = funding {
        let est: u64 = payees.iter().map(|x| x.1 * rate / 1_000_000).sum::<u64>() * bdays.len() as u64;
        let d = first_day.saturating_sub(urange(rng, 1, 4) as u32);
        fund(w, rng, src, acct, d * DAY + 16 * HOUR, est);
    }
    let mut paid = 0;
    for (k, &d) in bdays.iter().enumerate() {
        if k == change_at {
            rate = (rate as f64 * pick(rng, &[0.8, 0.9, 1.1, 1.25])) as u64;
        }
        // Investors are paid from the first period after they joined.
        let rec: Vec<(u32, u64)> = payees
            .iter()
            .filter(|x| x.2 + period.days() * DAY / 2 <= d * DAY)
            .take(300)
            .map(|x| (x.0, x.1))
            .collect();
        if rec.len() < 8 {
            continue;
        }
        let pays = payouts(rng, &style, &rec, rate);
        let need: u64 = pays.iter().map(|p| p.1).sum();
        let start = style.start(rng, d);
        match funding {
            Funding::PerBatch(src) => fund(w, rng, src, acct, start, need),
            Funding::PerBatchFresh => {
                let src = if chance(rng, 0.5) {
                    w.new_ext_personal(rng)
                } else {
                    w.new_ext_corporate(rng)
                };
                fund(w, rng, src, acct, start, need);
            }
            _ => {}
        }
        let from = w.evs.len();
        pay(w, rng, acct, start, &style, &pays);
        w.note_flows(scheme, from, acct, true);
        paid += 1;
    }
    (paid, rate)
}

/// Collection in waves into `acct`, each followed by sweeps to `dests` keeping
/// `1 - sweep_share` behind. Returns (investor, principal, joined) consolidated per investor,
/// the total collected and the end of the first wave.
struct Raised {
    investors: Vec<(u32, u64, u32)>,
    collected: u64,
    first_end: u32,
    waves: usize,
}

#[allow(clippy::too_many_arguments)]
fn raise(
    w: &mut World,
    rng: &mut Rng,
    scheme: u32,
    acct: u32,
    start: u32,
    first_len: u32,
    later_span: u32,
    payers: usize,
    small: bool,
    dests: &[u32],
    keep: (f64, f64),
) -> Raised {
    let tickets = ev_tickets(rng, small);
    let memos = ev_memos(w, rng);
    let waves = if payers >= 30 {
        pick_w(rng, &[(1usize, 3), (2, 3), (3, 2), (4, 1)])
    } else {
        pick_w(rng, &[(1usize, 3), (2, 1)])
    };
    let personal_share = unif(rng, 0.85, 1.0);
    let mut starts = vec![start];
    for _ in 1..waves {
        starts.push(start + first_len + DAY + rng.gen_range(0..later_span.max(DAY)));
    }
    starts.sort_unstable();
    let mut prev: Vec<u32> = Vec::new();
    let mut investors: Vec<(u32, u64, u32)> = Vec::new();
    let mut collected = 0;
    let mut first_end = start + first_len;
    let mut done = 0;
    for (k, &s) in starts.iter().enumerate() {
        if s + 4 * DAY > w.horizon {
            continue;
        }
        let n = if k == 0 {
            payers.div_ceil(waves).max(8)
        } else {
            (payers / waves).max(5)
        };
        let win = if k == 0 {
            first_len
        } else if chance(rng, 0.4) {
            (unif(rng, 2.0, 5.0) * DAY as f64) as u32
        } else {
            (unif(rng, 5.0, 20.0) * DAY as f64) as u32
        };
        let win = win.min(w.horizon.saturating_sub(s + DAY)).max(DAY);
        let wave = Wave {
            start: s,
            window: win,
            payers: n,
            tickets: &tickets,
            memos: &memos,
            personal_share,
            previous: &prev,
        };
        let from = w.evs.len();
        let mut pays = collect(w, rng, acct, &wave);
        if k == 0 {
            let also = repeat_investors(w, rng, acct, &wave, &pays);
            pays.extend(also);
        }
        w.note_flows(scheme, from, acct, false);
        let total: u64 = pays.iter().map(|p| p.amount).sum();
        collected += total;
        let last = pays.iter().map(|p| p.t).max().unwrap_or(s);
        for p in &pays {
            prev.push(p.payer);
            investors.push((p.payer, p.amount, p.t));
        }
        let share = 1.0 - unif(rng, keep.0, keep.1);
        sweep(w, rng, acct, last, total, share, dests, EV_SWEEP_MEMOS);
        if k == 0 {
            first_end = last;
        }
        done += 1;
    }
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
    Raised {
        investors: merged,
        collected,
        first_end,
        waves: done,
    }
}

/// Investors who are in more than one scheme: 5–10 % of a first wave's payers on top of it,
/// the bank's own background customers, half of them (when there are any) people who already
/// put money into an earlier scheme. Every monitored personal payer of the wave may invest
/// again in a later one.
fn repeat_investors(w: &mut World, rng: &mut Rng, acct: u32, wave: &Wave<'_>, pays: &[Payment]) -> Vec<Payment> {
    let mut out: Vec<Payment> = Vec::new();
    if w.bg_personal.is_empty() {
        return out;
    }
    let n = ((wave.payers as f64 * unif(rng, 0.05, 0.10)).round() as usize).max(1);
    let ch = [Channel::Mobile, Channel::Mobile, Channel::Online, Channel::Transfer];
    for _ in 0..n {
        let earlier = !w.repeat_investors.is_empty() && chance(rng, 0.5);
        let payer = if earlier {
            pick(rng, &w.repeat_investors)
        } else {
            pick(rng, &w.bg_personal)
        };
        if payer == acct || pays.iter().chain(out.iter()).any(|p| p.payer == payer) {
            continue;
        }
        let day = (wave.start + rng.gen_range(0..wave.window.max(1))) / DAY;
        let t = (day * DAY + tod(rng, Tod::Daytime)).clamp(wave.start, wave.start + wave.window - 1);
        let amount = wave.tickets.payment(rng);
        let channel = pick(rng, &ch);
        let memo = wave.memos.pick(rng);
        w.transfer(t, payer, acct, amount, channel, memo);
        out.push(Payment::new(payer, amount, t, channel));
    }
    for p in pays.iter().chain(out.iter()) {
        if w.monitored(p.payer) && !w.corporate(p.payer) && !w.repeat_investors.contains(&p.payer) {
            w.repeat_investors.push(p.payer);
        }
    }
    out
}

fn periods_fitting(days: u32, slack: u32) -> Vec<Period> {
    let mut periods = vec![Period::Weekly, Period::TenDaily, Period::SemiMonthly, Period::Monthly];
    periods.retain(|p| p.days() * 3 + slack <= days);
    periods
}

/// First-wave length in seconds: weeks, or a short 2–5 day push.
fn first_wave(rng: &mut Rng, max_days: u32) -> u32 {
    let d = if chance(rng, 0.3) {
        unif(rng, 2.0, 5.0)
    } else {
        log_uniform(rng, 6.0, 30.0)
    };
    (d.min(max_days.max(2) as f64) * DAY as f64) as u32
}

fn label_receivers(w: &mut World, dests: &[u32], scheme: u32) {
    for &d in dests {
        if w.monitored(d) && !w.planted.iter().any(|p| p.account == d) {
            w.label_scheme(d, "scheme_receiver", 0, String::new(), scheme, "receiver");
        }
    }
}

fn stream_noise(w: &mut World, rng: &mut Rng, acct: u32, p: f64, rate: f64) {
    if chance(rng, p) {
        let days = w.cal.days;
        let r = rate * unif(rng, 0.5, 1.5);
        noise(w, rng, acct, 0, days, r);
    }
}

// ---------------------------------------------------------------------------------------------
// The main case: collector A, separate payout account P

/// When and how large a scheme's collection is, drawn the same way for a split scheme and a
/// one-account one: destinations, size, first wave, number of payout periods, start.
struct ScheduledRaise {
    dests: Vec<u32>,
    small: bool,
    first_len: u32,
    want: usize,
    payers: usize,
    start_day: u32,
    /// Later waves start within this much after the first.
    later: u32,
}

fn schedule_raise(w: &mut World, rng: &mut Rng, budget: f64, period: Period, big: (u64, u64)) -> ScheduledRaise {
    let days = w.cal.days;
    let dests = controllers(w, rng);
    let small = chance(rng, 0.3);
    let first_len = first_wave(rng, days.saturating_sub(period.days() * 3 + 8));
    let room = days.saturating_sub(first_len / DAY + 6) / period.days();
    let want = urange(rng, 3, (room as usize).clamp(3, 10));
    let cap = ((3.0 * budget) / (1.0 + want as f64 * 0.9)).max(10.0) as u64;
    let payers = if small {
        irange(rng, 8, 20)
    } else {
        log_uniform_int(rng, big.0, big.1).min(cap).max(10)
    } as usize;
    let span = first_len / DAY + period.days() * want as u32 + 4;
    let start_day = rng.gen_range(0..=days.saturating_sub(span));
    let later = period.days() * want as u32 * DAY * 7 / 10;
    ScheduledRaise {
        dests,
        small,
        first_len,
        want,
        payers,
        start_day,
        later,
    }
}

pub(crate) fn split_scheme(w: &mut World, rng: &mut Rng, budget: f64) {
    let days = w.cal.days;
    let periods = periods_fitting(days, 10);
    if periods.is_empty() {
        return;
    }
    let period = pick(rng, &periods);
    let scheme = w.new_scheme("split_scheme");
    let collector = ev_account(w, rng, 0.4);
    let payout = ev_account(w, rng, 0.25);
    let ScheduledRaise {
        dests,
        small,
        first_len,
        want,
        payers,
        start_day,
        later,
    } = schedule_raise(w, rng, budget, period, (15, 250));
    let keep = pick(rng, &[(0.1, 0.3), (0.2, 0.5), (0.0, 0.1)]);
    let r = raise(
        w,
        rng,
        scheme,
        collector,
        start_day * DAY,
        first_len,
        later,
        payers,
        small,
        &dests,
        keep,
    );
    // Most of the collector's investors are paid; a few come from elsewhere (cash, another
    // collector, other banks).
    let overlap = unif(rng, 0.6, 1.0);
    let k = ((r.investors.len() as f64 * overlap).ceil() as usize).min(r.investors.len());
    let mut payees: Vec<(u32, u64, u32)> = sample_indices(rng, r.investors.len(), k)
        .into_iter()
        .map(|i| r.investors[i])
        .collect();
    let extra = ((k as f64) * unif(rng, 0.0, 0.25)) as usize;
    let extra = extra.max(8usize.saturating_sub(payees.len()));
    let tickets = ev_tickets(rng, small);
    for _ in 0..extra {
        let p = w.person(rng, 0.2);
        payees.push((p, tickets.clean(rng), 0));
    }
    let funding = match rng.gen_range(0..10) {
        0..=2 => Funding::PerBatch(collector),
        3..=5 => Funding::PerBatch(if chance(rng, 0.5) {
            pick(rng, &dests)
        } else {
            w.new_ext_personal(rng)
        }),
        6 | 7 => Funding::PerBatchFresh,
        _ => Funding::UpFront(if chance(rng, 0.5) { collector } else { pick(rng, &dests) }),
    };
    let first_batch = r.first_end / DAY + period.days() + rng.gen_range(0..3);
    let (batches, rate) = run_batches(w, rng, scheme, payout, &payees, period, first_batch, want, funding);
    stream_noise(w, rng, collector, 0.4, 0.3);
    stream_noise(w, rng, payout, 0.5, 0.3);
    w.label_scheme(
        collector,
        "split_collector",
        R_SCATTER,
        format!(
            "payers={} waves={} first_wave_days={} collected_yuan={} payout_account={}",
            r.investors.len(),
            r.waves,
            first_len / DAY,
            r.collected / 100,
            w.account_name(payout)
        ),
        scheme,
        "collector",
    );
    let detail = format!(
        "payees={} from_collector={} period={} rate_ppm={} batches={} funding={}",
        payees.len(),
        k,
        period.name(),
        rate,
        batches,
        funding.name()
    );
    if batches >= 3 {
        w.label_scheme(payout, "split_payout", R_PERIODIC, detail, scheme, "payout");
    } else {
        // Cut short by the end of the window: not a periodic pattern anyone could see.
        w.label_scheme(payout, "scheme_receiver", 0, detail, scheme, "receiver");
    }
    label_receivers(w, &dests, scheme);
}

// ---------------------------------------------------------------------------------------------
// One account collecting and paying, evasively

pub(crate) fn collect_and_pay(w: &mut World, rng: &mut Rng, budget: f64) {
    let days = w.cal.days;
    let periods = periods_fitting(days, 10);
    if periods.is_empty() {
        return;
    }
    let period = pick(rng, &periods);
    let scheme = w.new_scheme("collect_and_pay");
    let acct = ev_account(w, rng, 0.45);
    let ScheduledRaise {
        dests,
        small,
        first_len,
        want,
        payers,
        start_day,
        later,
    } = schedule_raise(w, rng, budget, period, (12, 200));
    let r = raise(
        w,
        rng,
        scheme,
        acct,
        start_day * DAY,
        first_len,
        later,
        payers,
        small,
        &dests,
        (0.15, 0.4),
    );
    let mut payees = r.investors.clone();
    let tickets = ev_tickets(rng, small);
    for _ in 0..8usize.saturating_sub(payees.len()) {
        let p = w.person(rng, 0.2);
        payees.push((p, tickets.clean(rng), 0));
    }
    // Some top up from the controller before batches when the kept share runs low.
    let funding = if chance(rng, 0.35) {
        Funding::PerBatch(pick(rng, &dests))
    } else {
        Funding::SelfFunded
    };
    let first_batch = r.first_end / DAY + period.days() + rng.gen_range(0..3);
    let (batches, rate) = run_batches(w, rng, scheme, acct, &payees, period, first_batch, want, funding);
    stream_noise(w, rng, acct, 0.4, 0.3);
    let (typology, rules) = if batches >= 3 {
        ("evasive_collect_and_pay", R_SCATTER | R_PERIODIC)
    } else {
        ("evasive_scatter_in", R_SCATTER)
    };
    w.label_scheme(
        acct,
        typology,
        rules,
        format!(
            "payers={} waves={} period={} rate_ppm={} batches={} funding={} collected_yuan={}",
            r.investors.len(),
            r.waves,
            period.name(),
            rate,
            batches,
            funding.name(),
            r.collected / 100
        ),
        scheme,
        "collector",
    );
    label_receivers(w, &dests, scheme);
}

// ---------------------------------------------------------------------------------------------
// Interest paid from an account whose collection happened outside the bank

pub(crate) fn periodic_payout(w: &mut World, rng: &mut Rng, budget: f64) {
    let days = w.cal.days;
    let periods = periods_fitting(days, 4);
    if periods.is_empty() {
        return;
    }
    let period = pick(rng, &periods);
    let scheme = w.new_scheme("periodic_payout");
    let acct = ev_account(w, rng, 0.3);
    let small = chance(rng, 0.3);
    let tickets = ev_tickets(rng, small);
    let max_batches = ((days - 3) / period.days()) as usize;
    let want = urange(rng, 3, max_batches.clamp(3, 12));
    let cap = ((3.0 * budget) / (want as f64 + 0.5)).max(8.0) as u64;
    let n = if small {
        irange(rng, 8, 20)
    } else {
        log_uniform_int(rng, 10, 250).min(cap).max(8)
    } as usize;
    let our_share = unif(rng, 0.0, 0.35);
    let payees: Vec<(u32, u64, u32)> = (0..n)
        .map(|_| {
            let p = w.person(rng, our_share);
            let k = pick_w(rng, &[(1u32, 6), (2, 2), (3, 1)]);
            let principal: u64 = (0..k).map(|_| tickets.clean(rng)).sum();
            (p, principal, 0)
        })
        .collect();
    let span = period.days() * want as u32 + 3;
    let first = rng.gen_range(2..=days.saturating_sub(span).max(2));
    // An in-bank funder is labelled a receiver, once the scheme is labelled at all.
    let (funder, funder_ours) = match rng.gen_range(0..10) {
        0..=2 => (ev_account(w, rng, 0.5), true),
        3..=6 => (w.new_ext_personal(rng), false),
        _ => (w.new_ext_corporate(rng), false),
    };
    let funding = match rng.gen_range(0..10) {
        0..=5 => Funding::PerBatch(funder),
        6 | 7 => Funding::PerBatchFresh,
        _ => Funding::UpFront(funder),
    };
    let (batches, rate) = run_batches(w, rng, scheme, acct, &payees, period, first, want, funding);
    stream_noise(w, rng, acct, 0.5, 0.3);
    if batches < 3 {
        return;
    }
    w.label_scheme(
        acct,
        "evasive_periodic_payout",
        R_PERIODIC,
        format!(
            "payees={} period={} rate_ppm={} batches={} funding={}",
            n,
            period.name(),
            rate,
            batches,
            funding.name()
        ),
        scheme,
        "payout",
    );
    if funder_ours {
        w.label_scheme(funder, "scheme_receiver", 0, String::new(), scheme, "receiver");
    }
}

// ---------------------------------------------------------------------------------------------
// Collection only: many payers, concentrated out, no payouts in this bank

pub(crate) fn scatter_in(w: &mut World, rng: &mut Rng, budget: f64) {
    let days = w.cal.days;
    let scheme = w.new_scheme("scatter_in");
    let acct = ev_account(w, rng, 0.45);
    let dests = controllers(w, rng);
    let small = chance(rng, 0.35);
    let payers = if small {
        irange(rng, 8, 20)
    } else {
        log_uniform_int(rng, 12, 250).min((3.0 * budget) as u64).max(10)
    } as usize;
    let first_len = first_wave(rng, days / 2);
    let later = (days / 2) * DAY;
    let start_day = rng.gen_range(0..=days.saturating_sub(first_len / DAY + days / 2 + 8));
    let r = raise(
        w,
        rng,
        scheme,
        acct,
        start_day * DAY,
        first_len,
        later,
        payers,
        small,
        &dests,
        (0.0, 0.25),
    );
    stream_noise(w, rng, acct, 0.5, 0.3);
    w.label_scheme(
        acct,
        "evasive_scatter_in",
        R_SCATTER,
        format!(
            "payers={} waves={} first_wave_days={} collected_yuan={}",
            r.investors.len(),
            r.waves,
            first_len / DAY,
            r.collected / 100
        ),
        scheme,
        "collector",
    );
    label_receivers(w, &dests, scheme);
}
