//! Event time: RFC 3339 with an offset → UTC epoch milliseconds, and Beijing calendar days.
//!
//! The fast path parses the common `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)` shape by hand
//! (it runs for every record); anything else RFC 3339 allows (lower-case `t`/`z`, a space
//! separator, leap seconds) falls back to chrono, so the two never disagree on what is valid.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};

use crate::{truncate, RejectReason};

const MS_PER_DAY: i64 = 86_400_000;
const BEIJING_OFFSET_MS: i64 = 8 * 3_600_000;

/// Parse an RFC 3339 time with offset into UTC epoch milliseconds (sub-ms digits truncated).
pub fn parse_rfc3339_ms(s: &str) -> Result<i64, RejectReason> {
    if let Some(ms) = fast_parse(s.as_bytes()) {
        return Ok(ms);
    }
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp_millis())
        .map_err(|_| RejectReason::BadTimestamp(truncate(s)))
}

/// A zone-less ISO time (`2026-03-02T09:15:02`, a space instead of `T`, optional fraction)
/// as epoch milliseconds of that wall time counted as UTC; the caller takes the zone off.
pub(crate) fn parse_naive_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
        .map(|d| d.and_utc().timestamp_millis())
}

#[inline]
fn d2(b: &[u8], i: usize) -> Option<i64> {
    let (a, c) = (b[i].wrapping_sub(b'0'), b[i + 1].wrapping_sub(b'0'));
    (a < 10 && c < 10).then_some(i64::from(a) * 10 + i64::from(c))
}

fn fast_parse(b: &[u8]) -> Option<i64> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = d2(b, 0)? * 100 + d2(b, 2)?;
    let month = d2(b, 5)?;
    let day = d2(b, 8)?;
    let hour = d2(b, 11)?;
    let min = d2(b, 14)?;
    let sec = d2(b, 17)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || min > 59 || sec > 59 {
        return None; // leap second and friends: chrono decides
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                ms = ms * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..3 {
            ms *= 10;
        }
    }
    let offset_min = match b.get(i)? {
        b'Z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = d2(b, i + 1)?;
            let om = d2(b, i + 4)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let m = oh * 60 + om;
            if *sign == b'-' {
                -m
            } else {
                m
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + min * 60 + sec - offset_min * 60;
    Some(secs * 1_000 + ms)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The Beijing (UTC+8) calendar day of an instant, as days since 1970-01-01.
#[inline]
pub fn beijing_day(ts_ms: i64) -> i32 {
    (ts_ms + BEIJING_OFFSET_MS).div_euclid(MS_PER_DAY) as i32
}

/// UTC epoch ms of 00:00 Beijing time on `day`.
pub fn beijing_day_start_ms(day: i32) -> i64 {
    i64::from(day) * MS_PER_DAY - BEIJING_OFFSET_MS
}

/// `YYYY-MM-DD` of a Beijing day number.
pub fn format_day(day: i32) -> String {
    let d = Utc.timestamp_millis_opt(i64::from(day) * MS_PER_DAY).single();
    d.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

/// RFC 3339 in Beijing time (`2026-03-02T09:15:02+08:00`), the offset officers read.
pub fn format_rfc3339_ms(ts_ms: i64) -> String {
    let tz = FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset");
    match tz.timestamp_millis_opt(ts_ms).single() {
        Some(d) if ts_ms % 1000 == 0 => d.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        Some(d) => d.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono_ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn fast_path_agrees_with_chrono() {
        for s in [
            "2026-03-02T09:15:02+08:00",
            "2026-03-02T01:15:02Z",
            "2026-03-02T01:15:02.5Z",
            "2026-03-02T01:15:02.123456+05:30",
            "2024-02-29T23:59:59-07:00",
            "1999-12-31T23:59:59.999Z",
            "2100-01-01T00:00:00+14:00",
        ] {
            assert_eq!(fast_parse(s.as_bytes()), Some(chrono_ms(s)), "{s}");
            assert_eq!(parse_rfc3339_ms(s), Ok(chrono_ms(s)));
        }
    }

    #[test]
    fn fallback_and_rejects() {
        assert_eq!(
            parse_rfc3339_ms("2026-03-02t01:15:02z"),
            Ok(chrono_ms("2026-03-02T01:15:02Z"))
        );
        for bad in [
            "2026-03-02T01:15:02",
            "2026-02-30T01:15:02Z",
            "2026-13-02T01:15:02Z",
            "2026-03-02 01:15",
            "yesterday",
            "",
            "2026-03-02T25:15:02Z",
            "2026-03-02T01:15:02+0800",
        ] {
            assert!(
                matches!(parse_rfc3339_ms(bad), Err(RejectReason::BadTimestamp(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn beijing_days() {
        // 2026-03-02T00:00:00+08:00 == 2026-03-01T16:00:00Z
        let midnight = parse_rfc3339_ms("2026-03-02T00:00:00+08:00").unwrap();
        assert_eq!(beijing_day(midnight), beijing_day(midnight - 1) + 1);
        assert_eq!(beijing_day_start_ms(beijing_day(midnight)), midnight);
        assert_eq!(format_day(beijing_day(midnight)), "2026-03-02");
        assert_eq!(format_day(beijing_day(midnight - 1)), "2026-03-01");
        // Same Beijing day whatever offset the record carried.
        let a = parse_rfc3339_ms("2026-03-01T23:30:00Z").unwrap(); // 07:30 on 03-02 Beijing
        assert_eq!(format_day(beijing_day(a)), "2026-03-02");
        assert_eq!(format_rfc3339_ms(a), "2026-03-02T07:30:00+08:00");
    }
}
