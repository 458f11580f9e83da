//! The compact in-memory world: accounts, memo strings and ledger events.
//!
//! Millions of events are held at once (they must be sorted by event time before anything is
//! written), so an event is 32 bytes of integers: account and counterparty are indices into the
//! account table, the memo an index into an interned table, and every textual detail (account
//! numbers, timestamps, amount spelling) is produced only when the line is formatted.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::time::{Calendar, DAY, HOUR};
use crate::util::{chance, pick, pick_w, Rng};
use rand::Rng as _;

/// Counterparty of cash and ATM entries.
pub(crate) const NONE: u32 = u32::MAX;

/// The wire contract's channels: the same enum the decoder reads them into.
pub(crate) use fundwatch_record::Channel;

pub(crate) const CUR_CNY: u8 = 0;
pub(crate) const CUR_USD: u8 = 1;
pub(crate) const CUR_EUR: u8 = 2;
pub(crate) const CUR_HKD: u8 = 3;
pub(crate) const CURRENCIES: [&str; 4] = ["CNY", "USD", "EUR", "HKD"];

// Event flag bits.
pub(crate) const F_OUT: u8 = 1;
pub(crate) const F_CROSS: u8 = 2;
const F_CUR_SHIFT: u8 = 2; // two bits
pub(crate) const F_TS_Z: u8 = 16;
pub(crate) const F_TS_LOCAL: u8 = 32;
pub(crate) const F_DISPLACED: u8 = 64;

/// One ledger entry of a monitored account.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ev {
    /// Integer fen, > 0.
    pub amount: u64,
    /// Seconds since Beijing midnight of the start day.
    pub ts: u32,
    pub account: u32,
    pub cp: u32,
    pub memo: u16,
    /// Milliseconds; 0 means the written timestamp has no fraction.
    pub ms: u16,
    pub channel: u8,
    pub flags: u8,
}

impl Ev {
    #[inline]
    pub fn out(&self) -> bool {
        self.flags & F_OUT != 0
    }
    #[inline]
    pub fn cross(&self) -> bool {
        self.flags & F_CROSS != 0
    }
    #[inline]
    pub fn currency(&self) -> u8 {
        (self.flags >> F_CUR_SHIFT) & 3
    }
    #[inline]
    pub fn sort_key(&self) -> (u32, u16, u32, u8, u32, u64) {
        (self.ts, self.ms, self.account, self.flags, self.cp, self.amount)
    }
}

/// Extra attributes of a transfer beyond the common ones.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tx {
    pub cross: bool,
    pub currency: u8,
    /// Force the timestamp spelling (`F_TS_Z` / `F_TS_LOCAL`); 0 lets the formatter choose.
    pub ts_fmt: u8,
}

impl Tx {
    fn flags(self) -> u8 {
        (if self.cross { F_CROSS } else { 0 }) | (self.currency << F_CUR_SHIFT) | self.ts_fmt
    }
}

// ---------------------------------------------------------------------------------------------
// Accounts

/// Account number families. The first two are this bank's customers (monitored ledgers).
pub(crate) struct ClassInfo {
    pub prefix: &'static str,
    pub digits: u32,
    pub corporate: bool,
    pub monitored: bool,
    /// Bank cards end with a Luhn check digit.
    pub luhn: bool,
}

pub(crate) const C_OUR_P: u8 = 0;
pub(crate) const C_OUR_C: u8 = 1;
pub(crate) const C_EXT_P0: u8 = 2; // 2..=5 other banks' personal cards
pub(crate) const C_EXT_C0: u8 = 6; // 6..=8 other banks' corporate accounts
pub(crate) const C_FOREIGN0: u8 = 9; // 9..=10
pub(crate) const C_INTERNAL: u8 = 11;
pub(crate) const C_CLEARING: u8 = 12;

pub(crate) static CLASSES: [ClassInfo; 13] = [
    ClassInfo {
        prefix: "622202",
        digits: 13,
        corporate: false,
        monitored: true,
        luhn: true,
    },
    ClassInfo {
        prefix: "120202",
        digits: 13,
        corporate: true,
        monitored: true,
        luhn: false,
    },
    ClassInfo {
        prefix: "621700",
        digits: 13,
        corporate: false,
        monitored: false,
        luhn: true,
    },
    ClassInfo {
        prefix: "622848",
        digits: 13,
        corporate: false,
        monitored: false,
        luhn: true,
    },
    ClassInfo {
        prefix: "622588",
        digits: 10,
        corporate: false,
        monitored: false,
        luhn: true,
    },
    ClassInfo {
        prefix: "621661",
        digits: 13,
        corporate: false,
        monitored: false,
        luhn: true,
    },
    ClassInfo {
        prefix: "330501",
        digits: 14,
        corporate: true,
        monitored: false,
        luhn: false,
    },
    ClassInfo {
        prefix: "440101",
        digits: 12,
        corporate: true,
        monitored: false,
        luhn: false,
    },
    ClassInfo {
        prefix: "310066",
        digits: 15,
        corporate: true,
        monitored: false,
        luhn: false,
    },
    ClassInfo {
        prefix: "HK0120",
        digits: 10,
        corporate: false,
        monitored: false,
        luhn: false,
    },
    ClassInfo {
        prefix: "US0260",
        digits: 11,
        corporate: true,
        monitored: false,
        luhn: false,
    },
    ClassInfo {
        prefix: "955880",
        digits: 10,
        corporate: true,
        monitored: false,
        luhn: false,
    },
    ClassInfo {
        prefix: "243300",
        digits: 12,
        corporate: true,
        monitored: false,
        luhn: false,
    },
];

pub(crate) const IND_NONE: u8 = 0;
pub(crate) const IND_INVESTMENT: u8 = 1;
pub(crate) const IND_ELDERLY: u8 = 2;
pub(crate) const IND_COOP: u8 = 3;
pub(crate) const IND_EDU: u8 = 4;
pub(crate) const IND_RETAIL: u8 = 5;
pub(crate) const IND_CATERING: u8 = 6;
pub(crate) const IND_WHOLESALE: u8 = 7;
pub(crate) const IND_MANUFACTURING: u8 = 8;
pub(crate) const IND_TECH: u8 = 9;
pub(crate) const IND_LOGISTICS: u8 = 10;
pub(crate) const IND_CONSTRUCTION: u8 = 11;
pub(crate) const IND_REAL_ESTATE: u8 = 12;
pub(crate) const IND_CONSULTING: u8 = 13;
pub(crate) const IND_HEALTHCARE: u8 = 14;
pub(crate) const IND_NONPROFIT: u8 = 15;
pub(crate) const IND_AGRICULTURE: u8 = 16;
pub(crate) const IND_TRADING: u8 = 17;

pub(crate) static INDUSTRIES: [&str; 18] = [
    "",
    "investment",
    "elderly_care",
    "cooperative",
    "private_education",
    "retail",
    "catering",
    "wholesale",
    "manufacturing",
    "tech",
    "logistics",
    "construction",
    "real_estate",
    "consulting",
    "healthcare",
    "nonprofit",
    "agriculture",
    "trading",
];

/// Ordinary sectors for background companies, weighted by how common they are.
pub(crate) const ORDINARY_INDUSTRIES: [(u8, u32); 13] = [
    (IND_RETAIL, 16),
    (IND_CATERING, 12),
    (IND_WHOLESALE, 12),
    (IND_MANUFACTURING, 14),
    (IND_TECH, 10),
    (IND_LOGISTICS, 6),
    (IND_CONSTRUCTION, 6),
    (IND_REAL_ESTATE, 3),
    (IND_CONSULTING, 6),
    (IND_HEALTHCARE, 3),
    (IND_AGRICULTURE, 3),
    (IND_TRADING, 6),
    // Legitimate firms in the policy's key sectors exist too; the sector alone proves nothing.
    (IND_INVESTMENT, 3),
];

/// County/district codes of the bank's branches (a handful, as in one provincial deployment
/// plus a few out-of-province branches).
pub(crate) static REGIONS: [&str; 8] = [
    "330106", "330102", "330110", "330122", "330281", "330382", "310115", "440305",
];

#[derive(Debug, Clone, Copy)]
pub(crate) struct Acct {
    pub class: u8,
    pub industry: u8,
    pub region: u8,
    /// `A_*` bits (0 for every account of the standard profile).
    pub flags: u8,
}

/// The account's records never carry `account_type` or `industry` (a feed or branch system
/// that does not fill them in).
pub(crate) const A_NO_META: u8 = 1;

// ---------------------------------------------------------------------------------------------
// Memos

/// Interned memo strings. Templates are filled in per line at output time:
/// `{M}` month of the event (Beijing), `{P}` the month before, `{N}` an invoice-like number.
pub(crate) struct Memos {
    pub list: Vec<Cow<'static, str>>,
    pub template: Vec<bool>,
    index: HashMap<Cow<'static, str>, u16>,
}

impl Memos {
    fn new() -> Self {
        let mut m = Memos {
            list: Vec::new(),
            template: Vec::new(),
            index: HashMap::new(),
        };
        m.id("");
        m
    }

    pub fn id(&mut self, s: &'static str) -> u16 {
        self.intern(Cow::Borrowed(s))
    }

    pub fn ids(&mut self, xs: &[&'static str]) -> Vec<u16> {
        xs.iter().map(|s| self.id(s)).collect()
    }

    /// Dynamic memos (names in notes). Past the u16 space they collapse to blank, which is
    /// still a valid memo; the generators use far fewer.
    pub fn dynamic(&mut self, s: String) -> u16 {
        if self.list.len() >= u16::MAX as usize - 1 {
            return 0;
        }
        self.intern(Cow::Owned(s))
    }

    fn intern(&mut self, s: Cow<'static, str>) -> u16 {
        if let Some(&i) = self.index.get(&s) {
            return i;
        }
        debug_assert!(!s.contains('"') && !s.contains('\\') && !s.contains('\n'));
        let i = self.list.len() as u16;
        self.template.push(s.contains('{'));
        self.list.push(s.clone());
        self.index.insert(s, i);
        i
    }
}

// ---------------------------------------------------------------------------------------------
// Labels collected while planting

pub(crate) const R_SCATTER: u8 = 1;
pub(crate) const R_PERIODIC: u8 = 2;
pub(crate) const R_RAPID: u8 = 4;
pub(crate) const R_STRUCT: u8 = 8;

pub(crate) struct Planted {
    pub account: u32,
    pub typology: &'static str,
    pub rules: u8,
    pub detail: String,
    /// Scheme id (0: none) shared by all labelled accounts of one scheme.
    pub scheme: u32,
    /// `collector`, `payout`, `receiver`; empty: none.
    pub role: &'static str,
}

/// What one scheme actually moved, noted from the ledger entries as they were written (an
/// entry past the horizon is never written, so never counted).
#[derive(Debug, Default)]
pub(crate) struct SchemeFlows {
    /// The generator that planted it (`split_scheme`, …).
    pub typology: &'static str,
    /// (payer, fen) of every investor payment into the collector.
    pub paid_in: Vec<(u32, u64)>,
    /// (payee, fen) of every payment of a payout batch.
    pub paid_out: Vec<(u32, u64)>,
}

// ---------------------------------------------------------------------------------------------
// The world

pub(crate) struct World {
    pub accts: Vec<Acct>,
    pub evs: Vec<Ev>,
    pub memos: Memos,
    pub cal: Calendar,
    pub horizon: u32,
    pub planted: Vec<Planted>,
    /// Monitored background customers; planted cases borrow some as payers, employees,
    /// recipients, so victims and staff also have ordinary lives in the stream.
    pub bg_personal: Vec<u32>,
    pub bg_corporate: Vec<u32>,
    /// Shared external counterparties of everyday life.
    pub ext_merchants: Vec<u32>,
    pub ext_employers: Vec<u32>,
    pub ext_landlords: Vec<u32>,
    pub hospitals: Vec<u32>,
    pub developers: Vec<u32>,
    pub bank_interest: u32,
    pub bank_card: u32,
    pub bank_wealth: u32,
    pub tax_bureau: u32,
    pub social_insurance: u32,
    pub utility: u32,
    pub clearing: Vec<u32>,
    /// Last scheme id handed out by [`World::new_scheme`].
    pub schemes: u32,
    /// Flows of scheme `i + 1` (evasive profile).
    pub flows: Vec<SchemeFlows>,
    /// Background customers who invested in an evasive scheme, some of whom invest in the
    /// next one too.
    pub repeat_investors: Vec<u32>,
    name_salt: u64,
    jit: Rng,
}

impl World {
    pub fn new(cal: Calendar, seed: u64, jit: Rng) -> Self {
        let mut w = World {
            accts: Vec::new(),
            evs: Vec::new(),
            memos: Memos::new(),
            cal,
            horizon: cal.horizon(),
            planted: Vec::new(),
            bg_personal: Vec::new(),
            bg_corporate: Vec::new(),
            ext_merchants: Vec::new(),
            ext_employers: Vec::new(),
            ext_landlords: Vec::new(),
            hospitals: Vec::new(),
            developers: Vec::new(),
            bank_interest: 0,
            bank_card: 0,
            bank_wealth: 0,
            tax_bureau: 0,
            social_insurance: 0,
            utility: 0,
            clearing: Vec::new(),
            schemes: 0,
            flows: Vec::new(),
            repeat_investors: Vec::new(),
            name_salt: crate::util::mix64(seed ^ 0x5EED_0FAC_C0DE),
            jit,
        };
        w.bank_interest = w.add_account(C_INTERNAL, IND_NONE, 0);
        w.bank_card = w.add_account(C_INTERNAL, IND_NONE, 0);
        w.bank_wealth = w.add_account(C_INTERNAL, IND_NONE, 0);
        w.tax_bureau = w.add_account(C_EXT_C0, IND_NONE, 0);
        w.social_insurance = w.add_account(C_EXT_C0 + 1, IND_NONE, 0);
        w.utility = w.add_account(C_EXT_C0 + 2, IND_NONE, 0);
        for _ in 0..4 {
            let c = w.add_account(C_CLEARING, IND_NONE, 0);
            w.clearing.push(c);
        }
        w
    }

    pub fn add_account(&mut self, class: u8, industry: u8, region: u8) -> u32 {
        let i = self.accts.len() as u32;
        self.accts.push(Acct {
            class,
            industry,
            region,
            flags: 0,
        });
        i
    }

    pub fn monitored(&self, a: u32) -> bool {
        a != NONE && CLASSES[self.accts[a as usize].class as usize].monitored
    }

    pub fn corporate(&self, a: u32) -> bool {
        CLASSES[self.accts[a as usize].class as usize].corporate
    }

    fn region(rng: &mut Rng) -> u8 {
        // Most customers sit in the home city's districts.
        pick_w(
            rng,
            &[(0, 30), (1, 22), (2, 16), (3, 8), (4, 8), (5, 6), (6, 5), (7, 5)],
        )
    }

    pub fn new_our_personal(&mut self, rng: &mut Rng) -> u32 {
        let r = Self::region(rng);
        self.add_account(C_OUR_P, IND_NONE, r)
    }

    pub fn new_our_corporate(&mut self, rng: &mut Rng, industry: u8) -> u32 {
        let r = Self::region(rng);
        self.add_account(C_OUR_C, industry, r)
    }

    pub fn new_ext_personal(&mut self, rng: &mut Rng) -> u32 {
        let c = C_EXT_P0 + rng.gen_range(0..4u8);
        self.add_account(c, IND_NONE, 0)
    }

    pub fn new_ext_corporate(&mut self, rng: &mut Rng) -> u32 {
        let c = C_EXT_C0 + rng.gen_range(0..3u8);
        self.add_account(c, IND_NONE, 0)
    }

    pub fn new_foreign(&mut self, rng: &mut Rng) -> u32 {
        let c = C_FOREIGN0 + rng.gen_range(0..2u8);
        self.add_account(c, IND_NONE, 0)
    }

    /// A personal counterparty: sometimes one of the bank's own background customers (so both
    /// ledgers appear), otherwise a fresh card at another bank.
    pub fn person(&mut self, rng: &mut Rng, our_share: f64) -> u32 {
        if !self.bg_personal.is_empty() && chance(rng, our_share) {
            pick(rng, &self.bg_personal)
        } else {
            self.new_ext_personal(rng)
        }
    }

    pub fn company(&mut self, rng: &mut Rng, our_share: f64) -> u32 {
        if !self.bg_corporate.is_empty() && chance(rng, our_share) {
            pick(rng, &self.bg_corporate)
        } else {
            self.new_ext_corporate(rng)
        }
    }

    /// Like [`World::person`] but never `me` (nobody pays themselves).
    pub fn person_except(&mut self, rng: &mut Rng, our_share: f64, me: u32) -> u32 {
        let p = self.person(rng, our_share);
        if p == me {
            self.new_ext_personal(rng)
        } else {
            p
        }
    }

    pub fn company_except(&mut self, rng: &mut Rng, our_share: f64, me: u32) -> u32 {
        let c = self.company(rng, our_share);
        if c == me {
            self.new_ext_corporate(rng)
        } else {
            c
        }
    }

    pub fn label(&mut self, account: u32, typology: &'static str, rules: u8, detail: String) {
        self.planted.push(Planted {
            account,
            typology,
            rules,
            detail,
            scheme: 0,
            role: "",
        });
    }

    /// A new scheme id for [`World::label_scheme`], planted by generator `typology`.
    pub fn new_scheme(&mut self, typology: &'static str) -> u32 {
        self.schemes += 1;
        self.flows.push(SchemeFlows {
            typology,
            ..SchemeFlows::default()
        });
        self.schemes
    }

    /// Note the entries written since `from` (an index into `evs`) on `acct`'s own ledger
    /// in direction `out` as scheme `scheme`'s investor payments (`out == false`) or payout
    /// payments (`out == true`).
    pub fn note_flows(&mut self, scheme: u32, from: usize, acct: u32, out: bool) {
        let Some(f) = scheme.checked_sub(1).and_then(|i| self.flows.get_mut(i as usize)) else {
            return;
        };
        let dst = if out { &mut f.paid_out } else { &mut f.paid_in };
        dst.extend(
            self.evs[from..]
                .iter()
                .filter(|e| e.account == acct && e.out() == out && e.cp != NONE)
                .map(|e| (e.cp, e.amount)),
        );
    }

    /// Label an account that belongs to scheme `scheme` in role `role`.
    #[allow(clippy::too_many_arguments)]
    pub fn label_scheme(
        &mut self,
        account: u32,
        typology: &'static str,
        rules: u8,
        detail: String,
        scheme: u32,
        role: &'static str,
    ) {
        self.planted.push(Planted {
            account,
            typology,
            rules,
            detail,
            scheme,
            role,
        });
    }

    // -- emitting ledger entries ------------------------------------------------------------

    #[inline]
    fn ms(&mut self) -> u16 {
        // Three in four timestamps are whole seconds; the rest carry milliseconds.
        let r: u32 = self.jit.gen();
        if r & 3 == 0 {
            ((r >> 8) % 999 + 1) as u16
        } else {
            0
        }
    }

    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn push(&mut self, t: u32, account: u32, cp: u32, amount: u64, ch: Channel, memo: u16, fl: u8) {
        if t >= self.horizon || amount == 0 {
            return;
        }
        let ms = self.ms();
        self.evs.push(Ev {
            amount,
            ts: t,
            account,
            cp,
            memo,
            ms,
            channel: ch as u8,
            flags: fl,
        });
    }

    /// A transfer from `from` to `to`: one ledger entry per monitored side.
    pub fn transfer(&mut self, t: u32, from: u32, to: u32, amount: u64, ch: Channel, memo: u16) {
        self.transfer_x(t, from, to, amount, ch, memo, Tx::default());
    }

    #[allow(clippy::too_many_arguments)]
    pub fn transfer_x(&mut self, t: u32, from: u32, to: u32, amount: u64, ch: Channel, memo: u16, x: Tx) {
        let fl = x.flags();
        if self.monitored(from) {
            self.push(t, from, to, amount, ch, memo, fl | F_OUT);
        }
        if self.monitored(to) {
            // The credit side posts a moment later, as core banking does; never past the end.
            let lag = if x.ts_fmt != 0 { 0 } else { self.jit.gen_range(0..3u32) };
            let ti = (t + lag).min(self.horizon.saturating_sub(1).max(t));
            self.push(ti, to, from, amount, ch, memo, fl);
        }
    }

    /// Cash over the counter (`channel = cash`, no counterparty).
    pub fn cash(&mut self, t: u32, account: u32, out: bool, amount: u64, memo: u16, ts_fmt: u8) {
        let fl = if out { F_OUT } else { 0 } | ts_fmt;
        self.push(t, account, NONE, amount, Channel::Cash, memo, fl);
    }

    pub fn atm(&mut self, t: u32, account: u32, amount: u64, memo: u16) {
        self.push(t, account, NONE, amount, Channel::Atm, memo, F_OUT);
    }

    /// Keep a planned time inside the window. Cases are laid out to fit; this only guards the
    /// last day, folding overflow into its business hours rather than piling it on the final
    /// second.
    pub fn clamp_t(&self, t: u32) -> u32 {
        if t < self.horizon {
            t
        } else {
            (self.horizon - DAY) + 10 * HOUR + (t % (6 * HOUR))
        }
    }

    // -- account numbers --------------------------------------------------------------------

    /// Append the account number of `a` to `buf`. Digits are a bijective scramble of the index
    /// (multiplier coprime to 10) so numbers look random yet can never collide.
    pub fn write_account(&self, buf: &mut Vec<u8>, a: u32) {
        if a == NONE {
            return;
        }
        let info = &CLASSES[self.accts[a as usize].class as usize];
        buf.extend_from_slice(info.prefix.as_bytes());
        let body_digits = if info.luhn { info.digits - 1 } else { info.digits };
        let modulus = 10u128.pow(body_digits);
        let salt = (self.name_salt as u128) % modulus;
        let v = ((a as u128) * 6_364_136_223_846_793_007u128 + salt) % modulus;
        let start = buf.len();
        let mut tmp = [b'0'; 20];
        let mut x = v;
        for i in (0..body_digits as usize).rev() {
            tmp[i] = b'0' + (x % 10) as u8;
            x /= 10;
        }
        buf.extend_from_slice(&tmp[..body_digits as usize]);
        if info.luhn {
            let prefix_start = start - info.prefix.len();
            let check = luhn_check(&buf[prefix_start..]);
            buf.push(check);
        }
    }

    pub fn account_name(&self, a: u32) -> String {
        let mut b = Vec::with_capacity(24);
        self.write_account(&mut b, a);
        String::from_utf8_lossy(&b).into_owned()
    }
}

/// Luhn check digit over ASCII digits (non-digits are ignored).
fn luhn_check(digits: &[u8]) -> u8 {
    let mut sum = 0u32;
    let mut double = true;
    for &c in digits.iter().rev() {
        if !c.is_ascii_digit() {
            continue;
        }
        let mut d = (c - b'0') as u32;
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
    }
    b'0' + ((10 - sum % 10) % 10) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::sub_rng;

    #[test]
    fn event_is_compact() {
        assert!(std::mem::size_of::<Ev>() <= 32);
    }

    #[test]
    fn account_numbers_unique_and_luhn_valid() {
        let cal = Calendar {
            base_epoch_day: 20_454,
            days: 30,
        };
        let mut w = World::new(cal, 7, sub_rng(7, 1, 1));
        let mut rng = sub_rng(7, 2, 2);
        for i in 0..20_000u32 {
            match i % 4 {
                0 => w.new_our_personal(&mut rng),
                1 => w.new_our_corporate(&mut rng, IND_TECH),
                2 => w.new_ext_personal(&mut rng),
                _ => w.new_ext_corporate(&mut rng),
            };
        }
        let mut seen = std::collections::HashSet::new();
        for a in 0..w.accts.len() as u32 {
            let n = w.account_name(a);
            assert!(seen.insert(n.clone()), "duplicate {n}");
            if CLASSES[w.accts[a as usize].class as usize].luhn {
                let body = &n.as_bytes()[..n.len() - 1];
                assert_eq!(luhn_check(body), *n.as_bytes().last().unwrap_or(&0));
            }
        }
    }
}
