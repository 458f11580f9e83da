//! Config value types that people write by hand: durations (`"90s"`, `"10m"`, `"6h"`, `"30d"`,
//! `"2w"`) and money in yuan (`"50000.00"` or `50000`), held exactly as milliseconds and fen.

use std::fmt;

use fundwatch_record::{format_fen, parse_amount_text, Fen};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A span of event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(pub i64);

impl Span {
    pub const fn ms(self) -> i64 {
        self.0
    }
    pub const fn minutes(m: i64) -> Span {
        Span(m * 60_000)
    }
    pub const fn hours(h: i64) -> Span {
        Span(h * 3_600_000)
    }
    pub const fn days(d: i64) -> Span {
        Span(d * 86_400_000)
    }
    pub fn as_days(self) -> f64 {
        self.0 as f64 / 86_400_000.0
    }
    pub fn parse(s: &str) -> Result<Span, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: i64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a duration like \"90s\", \"10m\", \"6h\", \"30d\" or \"2w\""))?;
        let mult = match unit.trim() {
            "ms" => 1,
            "s" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            other => {
                return Err(format!(
                    "unknown duration unit {other:?} in {s:?} (use ms, s, m, h, d or w)"
                ))
            }
        };
        n.checked_mul(mult)
            .map(Span)
            .ok_or_else(|| format!("duration {s:?} is too long"))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let ms = self.0;
        for (unit, size) in [
            ("w", 7 * 86_400_000),
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
        ] {
            if ms != 0 && ms % size == 0 {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"10m\", \"6h\" or \"30d\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
                Span::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// An amount of money, written in yuan, held in fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Yuan(pub Fen);

impl Yuan {
    pub const fn fen(self) -> Fen {
        self.0
    }
    pub const fn whole(y: i64) -> Yuan {
        Yuan(y * 100)
    }
}

impl fmt::Display for Yuan {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&format_fen(self.0))
    }
}

impl Serialize for Yuan {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_fen(self.0))
    }
}

impl<'de> Deserialize<'de> for Yuan {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Yuan;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an amount in yuan such as \"50000.00\" or 50000")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Yuan, E> {
                parse_amount_text(v).map(Yuan).map_err(|e| E::custom(e.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Yuan, E> {
                if v <= 0 {
                    return Err(E::custom(format!("amount must be positive, got {v}")));
                }
                v.checked_mul(100)
                    .map(Yuan)
                    .ok_or_else(|| E::custom("amount is too large"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Yuan, E> {
                i64::try_from(v)
                    .map_err(|_| E::custom("amount is too large"))
                    .and_then(|v| self.visit_i64(v))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Yuan, E> {
                Err(E::custom(
                    "write amounts with decimals as strings (\"49.90\"), so they stay exact",
                ))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans() {
        assert_eq!(Span::parse("10m"), Ok(Span::minutes(10)));
        assert_eq!(Span::parse("30d"), Ok(Span::days(30)));
        assert_eq!(Span::parse("2w"), Ok(Span::days(14)));
        assert!(Span::parse("10 parsecs").is_err());
        assert!(Span::parse("m").is_err());
        assert_eq!(Span::days(30).to_string(), "30d");
        assert_eq!(Span::hours(36).to_string(), "36h");
        assert_eq!(Span::days(14).to_string(), "2w");
    }
}
