//! Money is integer fen. The records carry yuan as decimal strings ("1234.50"); they are
//! parsed exactly, never through a float.

/// Yuan decimal string (optional sign, at most two decimals) → fen. `None` when it is not one.
pub fn parse_yuan(text: &str) -> Option<i64> {
    let t = text.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (whole, frac) = match digits.split_once('.') {
        Some((w, f)) => (w, f),
        None => (digits, ""),
    };
    if whole.is_empty() || frac.len() > 2 {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac_fen: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    let fen = whole.checked_mul(100)?.checked_add(frac_fen)?;
    Some(if negative { -fen } else { fen })
}

/// A JSON money field: a decimal string or, as some feeds send, a JSON number (read through
/// its decimal text so 0.1 stays 10 fen).
pub fn json_fen(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::String(s) => parse_yuan(s),
        serde_json::Value::Number(n) => parse_yuan(&n.to_string()),
        _ => None,
    }
}

/// fen → "1,234,567.50" for pages.
pub fn format_fen(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    let whole = (abs / 100).to_string();
    // The first group takes what is left over from threes, then a comma before every three.
    let lead = match whole.len() % 3 {
        0 => 3,
        n => n,
    };
    let (head, rest) = whole.split_at(lead.min(whole.len()));
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    grouped.push_str(head);
    for group in rest.as_bytes().chunks(3) {
        grouped.push(',');
        grouped.push_str(std::str::from_utf8(group).unwrap_or_default());
    }
    format!("{sign}{grouped}.{:02}", abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_yuan_exactly() {
        assert_eq!(parse_yuan("1234.5"), Some(123_450));
        assert_eq!(parse_yuan("0.10"), Some(10));
        assert_eq!(parse_yuan("7"), Some(700));
        assert_eq!(parse_yuan("-3.01"), Some(-301));
        assert_eq!(parse_yuan("1.234"), None);
        assert_eq!(parse_yuan("1e3"), None);
        assert_eq!(parse_yuan(""), None);
        assert_eq!(parse_yuan(".5"), None);
        assert_eq!(json_fen(&serde_json::json!(0.1)), Some(10));
    }

    #[test]
    fn formats_with_groups() {
        assert_eq!(format_fen(123_456_750), "1,234,567.50");
        assert_eq!(format_fen(5), "0.05");
        assert_eq!(format_fen(-100_000), "-1,000.00");
        assert_eq!(format_fen(99_999_999), "999,999.99");
        assert_eq!(format_fen(100_000_000), "1,000,000.00");
    }
}
