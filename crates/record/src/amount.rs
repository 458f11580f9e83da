//! Exact yuan → fen parsing. Amounts arrive as JSON strings (`"5000.00"`), JSON numbers
//! (`5000`, `49.9`, even `4.99e1`) or CSV text; all become integer fen without a float.

use crate::{truncate, Fen, RejectReason};

/// Amounts above this (10^13 yuan) are not bank transactions; refusing them keeps all
/// later sums far from i64 overflow.
const MAX_FEN: i128 = 1_000_000_000_000_000;
pub(crate) const MAX_FEN_I64: i64 = MAX_FEN as i64;

/// Text form, per the schema: `^[0-9]+(\.[0-9]{1,2})?$`. A leading `-` or `+` is recognised
/// only to give a better reason.
pub fn parse_amount_text(s: &str) -> Result<Fen, RejectReason> {
    let t = s.trim();
    if t.is_empty() {
        return Err(RejectReason::AmountMalformed(String::new()));
    }
    let (neg, body) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return Err(RejectReason::AmountMalformed(truncate(s)));
    }
    let frac = frac.unwrap_or("");
    if frac.len() > 2 {
        return Err(RejectReason::AmountDecimals {
            decimals: frac.len(),
            text: truncate(s),
        });
    }
    let mut v: i128 = 0;
    for b in int.bytes() {
        v = v * 10 + i128::from(b - b'0');
        if v > MAX_FEN {
            return Err(RejectReason::AmountTooLarge(truncate(s)));
        }
    }
    let mut f: i128 = 0;
    for (i, b) in frac.bytes().enumerate() {
        f += i128::from(b - b'0') * if i == 0 { 10 } else { 1 };
    }
    finish(v * 100 + f, neg, s)
}

/// JSON number token (RFC 8259 grammar, exponent allowed), exactly.
pub fn parse_amount_json_number(tok: &str) -> Result<Fen, RejectReason> {
    let b = tok.as_bytes();
    let mut i = 0;
    let neg = b.first() == Some(&b'-');
    if neg {
        i += 1;
    }
    // Collect significant digits and the position of the decimal point.
    let mut mant: i128 = 0;
    let mut scale: i32 = 0; // number = mant * 10^(-scale)
    let mut any = false;
    let mut overflow_digits = 0i32;
    while i < b.len() && b[i].is_ascii_digit() {
        push_digit(&mut mant, b[i], &mut overflow_digits);
        any = true;
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            if mant == 0 && b[i] == b'0' {
                scale += 1;
            } else {
                push_digit(&mut mant, b[i], &mut overflow_digits);
                scale += 1;
            }
            any = true;
            i += 1;
        }
    }
    if !any {
        return Err(RejectReason::AmountMalformed(truncate(tok)));
    }
    let mut exp: i32 = 0;
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let eneg = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            exp = exp.saturating_mul(10).saturating_add(i32::from(b[i] - b'0'));
            i += 1;
        }
        if start == i {
            return Err(RejectReason::AmountMalformed(truncate(tok)));
        }
        if eneg {
            exp = -exp;
        }
    }
    if i != b.len() {
        return Err(RejectReason::AmountMalformed(truncate(tok)));
    }
    // Digits dropped for overflow count as integer digits: the number is far too large.
    if overflow_digits > 0 && mant != 0 {
        return Err(RejectReason::AmountTooLarge(truncate(tok)));
    }
    // Strip trailing zeros of the mantissa so `49.900` is 2 decimals, as its value is.
    let mut scale = scale - exp;
    while mant != 0 && mant % 10 == 0 && scale > 0 {
        mant /= 10;
        scale -= 1;
    }
    if mant == 0 {
        return finish(0, neg, tok);
    }
    if scale > 2 {
        return Err(RejectReason::AmountDecimals {
            decimals: scale as usize,
            text: truncate(tok),
        });
    }
    // fen = mant * 10^(2 - scale)
    let mut fen = mant;
    for _ in 0..(2 - scale) {
        fen *= 10;
        if fen > MAX_FEN {
            return Err(RejectReason::AmountTooLarge(truncate(tok)));
        }
    }
    finish(fen, neg, tok)
}

fn push_digit(mant: &mut i128, d: u8, overflow: &mut i32) {
    if *mant > MAX_FEN * 10 {
        *overflow += 1;
    } else {
        *mant = *mant * 10 + i128::from(d - b'0');
    }
}

fn finish(fen: i128, neg: bool, text: &str) -> Result<Fen, RejectReason> {
    if neg || fen == 0 {
        return Err(RejectReason::AmountNotPositive(truncate(text)));
    }
    if fen > MAX_FEN {
        return Err(RejectReason::AmountTooLarge(truncate(text)));
    }
    Ok(fen as Fen)
}

/// `123456` fen → `"1234.56"`.
pub fn format_fen(fen: Fen) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let a = fen.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_amounts() {
        assert_eq!(parse_amount_text("5000.00"), Ok(500_000));
        assert_eq!(parse_amount_text("5000"), Ok(500_000));
        assert_eq!(parse_amount_text("49.9"), Ok(4_990));
        assert_eq!(parse_amount_text("0.01"), Ok(1));
        assert!(matches!(
            parse_amount_text("1.234"),
            Err(RejectReason::AmountDecimals { decimals: 3, .. })
        ));
        assert!(matches!(
            parse_amount_text("0.00"),
            Err(RejectReason::AmountNotPositive(_))
        ));
        assert!(matches!(
            parse_amount_text("-5"),
            Err(RejectReason::AmountNotPositive(_))
        ));
        assert!(matches!(
            parse_amount_text("abc"),
            Err(RejectReason::AmountMalformed(_))
        ));
        assert!(matches!(parse_amount_text("1."), Err(RejectReason::AmountMalformed(_))));
        assert!(matches!(parse_amount_text(".5"), Err(RejectReason::AmountMalformed(_))));
        assert!(matches!(
            parse_amount_text("1e3"),
            Err(RejectReason::AmountMalformed(_))
        ));
        assert!(matches!(parse_amount_text(""), Err(RejectReason::AmountMalformed(_))));
        assert!(matches!(
            parse_amount_text("99999999999999999999999"),
            Err(RejectReason::AmountTooLarge(_))
        ));
    }

    #[test]
    fn json_numbers() {
        assert_eq!(parse_amount_json_number("5000"), Ok(500_000));
        assert_eq!(parse_amount_json_number("49.9"), Ok(4_990));
        assert_eq!(parse_amount_json_number("49.90"), Ok(4_990));
        assert_eq!(parse_amount_json_number("49.900"), Ok(4_990));
        assert_eq!(parse_amount_json_number("4.99e1"), Ok(4_990));
        assert_eq!(parse_amount_json_number("1E3"), Ok(100_000));
        assert_eq!(parse_amount_json_number("0.01"), Ok(1));
        assert_eq!(parse_amount_json_number("1e-2"), Ok(1));
        assert!(matches!(
            parse_amount_json_number("0.001"),
            Err(RejectReason::AmountDecimals { decimals: 3, .. })
        ));
        assert!(matches!(
            parse_amount_json_number("1.005"),
            Err(RejectReason::AmountDecimals { decimals: 3, .. })
        ));
        assert!(matches!(
            parse_amount_json_number("-1"),
            Err(RejectReason::AmountNotPositive(_))
        ));
        assert!(matches!(
            parse_amount_json_number("0"),
            Err(RejectReason::AmountNotPositive(_))
        ));
        assert!(matches!(
            parse_amount_json_number("1e30"),
            Err(RejectReason::AmountTooLarge(_))
        ));
        assert!(matches!(
            parse_amount_json_number("123456789012345678901234567890123456789012"),
            Err(RejectReason::AmountTooLarge(_))
        ));
    }

    #[test]
    fn formats() {
        assert_eq!(format_fen(500_000), "5000.00");
        assert_eq!(format_fen(1), "0.01");
        assert_eq!(format_fen(-4_990), "-49.90");
    }
}
