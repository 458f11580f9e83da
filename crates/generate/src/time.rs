//! Calendar arithmetic in Beijing time without a date library.
//!
//! Generator time is `u32` seconds since Beijing midnight of the start day, so a Beijing
//! calendar day is simply `t / DAY`; only output converts to UTC (`Z`) or `+08:00` text.

use crate::util::{unif, Rng};

pub(crate) const MIN: u32 = 60;
pub(crate) const HOUR: u32 = 3_600;
pub(crate) const DAY: u32 = 86_400;
/// Beijing is UTC+8 all year (no DST).
pub(crate) const BJ_OFFSET: i64 = 8 * 3_600;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

/// Parse `YYYY-MM-DD` strictly; returns days since the epoch.
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as u32;
        }
        Some(v)
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1971..=2999).contains(&y) || !(1..=12).contains(&m) {
        return None;
    }
    if d == 0 || d > days_in_month(y as i64, m) {
        return None;
    }
    Some(days_from_civil(y as i64, m, d))
}

/// The generator's calendar: day index 0 is the start date (Beijing).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Calendar {
    pub base_epoch_day: i64,
    pub days: u32,
}

impl Calendar {
    pub fn horizon(&self) -> u32 {
        self.days * DAY
    }

    /// (year, month, day) of a day index.
    pub fn ymd(&self, day: u32) -> (i64, u32, u32) {
        civil_from_days(self.base_epoch_day + day as i64)
    }

    /// 0 = Monday … 6 = Sunday (1970-01-01 was a Thursday).
    pub fn weekday(&self, day: u32) -> u32 {
        (self.base_epoch_day + day as i64 + 3).rem_euclid(7) as u32
    }

    pub fn is_weekend(&self, day: u32) -> bool {
        self.weekday(day) >= 5
    }

    /// Move a weekend day back to the Friday before (paydays, tax dates), never before day 0.
    pub fn business_day_on_or_before(&self, day: u32) -> u32 {
        let mut d = day;
        while d > 0 && self.is_weekend(d) {
            d -= 1;
        }
        d
    }

    /// Day indices within the window that fall on day-of-month `dom` (clamped to the month's
    /// length, so 31 means "last day").
    pub fn monthly_days(&self, dom: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let (mut y, mut m, _) = self.ymd(0);
        loop {
            let dd = dom.min(days_in_month(y, m)).max(1);
            let idx = days_from_civil(y, m, dd) - self.base_epoch_day;
            if idx >= self.days as i64 {
                break;
            }
            if idx >= 0 {
                out.push(idx as u32);
            }
            m += 1;
            if m > 12 {
                m = 1;
                y += 1;
            }
        }
        out
    }
}

/// Time-of-day shapes (Beijing local seconds since midnight).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Tod {
    /// Personal activity: quiet nights, busy lunch and evenings.
    Daytime,
    /// Bank counter / office hours 9:00–17:30.
    Business,
    /// Restaurants: lunch and dinner peaks.
    Catering,
    /// Shops 9:00–22:00, evening-weighted.
    Retail,
}

const DAYTIME_W: [u32; 24] = [
    3, 2, 1, 1, 1, 2, 4, 10, 22, 30, 34, 36, 40, 36, 32, 32, 33, 36, 40, 44, 44, 38, 26, 12,
];
const CATERING_W: [u32; 24] = [
    1, 1, 0, 0, 0, 1, 4, 12, 14, 6, 8, 40, 60, 40, 10, 6, 10, 34, 55, 46, 24, 14, 8, 3,
];
const RETAIL_W: [u32; 24] = [
    0, 0, 0, 0, 0, 0, 1, 4, 10, 20, 28, 30, 30, 28, 26, 28, 30, 34, 40, 44, 40, 30, 12, 2,
];

fn weighted_hour(rng: &mut Rng, w: &[u32; 24]) -> u32 {
    use rand::Rng as _;
    let total: u32 = w.iter().sum();
    let mut r = rng.gen_range(0..total);
    for (h, &x) in w.iter().enumerate() {
        if r < x {
            return h as u32;
        }
        r -= x;
    }
    23
}

pub(crate) fn tod(rng: &mut Rng, shape: Tod) -> u32 {
    use rand::Rng as _;
    match shape {
        Tod::Daytime => weighted_hour(rng, &DAYTIME_W) * HOUR + rng.gen_range(0..HOUR),
        Tod::Catering => weighted_hour(rng, &CATERING_W) * HOUR + rng.gen_range(0..HOUR),
        Tod::Retail => weighted_hour(rng, &RETAIL_W) * HOUR + rng.gen_range(0..HOUR),
        Tod::Business => (9 * HOUR) + rng.gen_range(0..(8 * HOUR + 30 * MIN)),
    }
}

/// A time in hours after `t`, uniform in [lo_h, hi_h].
pub(crate) fn after_hours(rng: &mut Rng, t: u32, lo_h: f64, hi_h: f64) -> u32 {
    t + (unif(rng, lo_h, hi_h) * HOUR as f64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for z in [-1000i64, 0, 10_957, 20_454, 20_513, 40_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(parse_date("2026-01-01"), Some(20_454));
        assert_eq!(parse_date("2026-02-29"), None);
        assert_eq!(parse_date("2024-02-29"), Some(days_from_civil(2024, 2, 29)));
        assert_eq!(parse_date("2026-1-01"), None);
    }

    #[test]
    fn weekday_and_months() {
        // 2026-01-01 is a Thursday.
        let c = Calendar {
            base_epoch_day: 20_454,
            days: 120,
        };
        assert_eq!(c.weekday(0), 3);
        assert_eq!(c.monthly_days(10), vec![9, 40, 68, 99]);
        assert_eq!(c.monthly_days(31)[1], 58); // Feb 28
    }
}
