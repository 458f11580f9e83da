//! The fastest decoding path: a single forward scan over a flat JSON object whose strings
//! have no escapes — what core-banking exporters write nearly always. Anything else (escapes,
//! nested values, duplicate fields, a malformed number, bytes after the object) makes it
//! return `None`, and the record takes the sonic-rs path, so no input decodes differently:
//! the unit tests check that over mutated records. It saves the serde field machinery, which
//! was most of the decoding time.

use std::borrow::Cow;

use crate::amount::{parse_amount_json_number, parse_amount_text};
use crate::json::Fields;

/// Scan `text` into its fields, or `None` when it is outside the simple subset.
pub(crate) fn scan(text: &str) -> Option<Fields<'_>> {
    let b = text.as_bytes();
    let mut s = Scanner { text, b, i: 0 };
    let mut f = Fields::default();
    let mut seen: u16 = 0;
    s.ws();
    s.eat(b'{')?;
    s.ws();
    if s.peek() == Some(b'}') {
        s.i += 1;
    } else {
        loop {
            s.eat(b'"')?;
            let key = s.plain_string()?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            let slot = field_index(key);
            if let Some(k) = slot {
                // serde rejects a repeated field; the slow path names it.
                if seen & (1 << k) != 0 {
                    return None;
                }
                seen |= 1 << k;
            }
            match slot {
                Some(AMOUNT) => {
                    f.amount = match s.peek()? {
                        b'"' => {
                            s.i += 1;
                            Some(parse_amount_text(s.plain_string()?))
                        }
                        b'-' | b'0'..=b'9' => Some(parse_amount_json_number(s.number()?)),
                        _ => {
                            s.literal(b"null")?;
                            None
                        }
                    }
                }
                Some(CROSS_BORDER) => {
                    f.cross_border = match s.peek()? {
                        b't' => s.literal(b"true").map(|_| Some(true))?,
                        b'f' => s.literal(b"false").map(|_| Some(false))?,
                        _ => s.literal(b"null").map(|_| None)?,
                    }
                }
                Some(k) => {
                    let v = match s.peek()? {
                        b'"' => {
                            s.i += 1;
                            Some(Cow::Borrowed(s.plain_string()?))
                        }
                        _ => s.literal(b"null").map(|_| None)?,
                    };
                    *f.string_mut(k) = v;
                }
                None => s.skip_scalar()?,
            }
            s.ws();
            match s.peek()? {
                b',' => {
                    s.i += 1;
                    s.ws();
                }
                b'}' => {
                    s.i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    s.ws();
    (s.i == b.len()).then_some(f)
}

const AMOUNT: usize = 11;
const CROSS_BORDER: usize = 12;

/// Index of a known field: 0–10 the string fields in [`Fields::string_mut`] order.
fn field_index(key: &str) -> Option<usize> {
    Some(match key {
        "tx_id" => 0,
        "ts" => 1,
        "account" => 2,
        "counterparty" => 3,
        "direction" => 4,
        "currency" => 5,
        "channel" => 6,
        "memo" => 7,
        "account_type" => 8,
        "industry" => 9,
        "region" => 10,
        "amount" => AMOUNT,
        "cross_border" => CROSS_BORDER,
        _ => return None,
    })
}

impl<'a> Fields<'a> {
    fn string_mut(&mut self, k: usize) -> &mut Option<Cow<'a, str>> {
        match k {
            0 => &mut self.tx_id,
            1 => &mut self.ts,
            2 => &mut self.account,
            3 => &mut self.counterparty,
            4 => &mut self.direction,
            5 => &mut self.currency,
            6 => &mut self.channel,
            7 => &mut self.memo,
            8 => &mut self.account_type,
            9 => &mut self.industry,
            _ => &mut self.region,
        }
    }
}

struct Scanner<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `x` that is zero.
#[inline]
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(LO) & !x & HI
}

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    /// The rest of a string whose opening quote was consumed; `None` at an escape, a raw
    /// control character or the end of input. Eight bytes at a time.
    #[inline]
    fn plain_string(&mut self) -> Option<&'a str> {
        let start = self.i;
        let b = self.b;
        let mut j = start;
        while j + 8 <= b.len() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[j..j + 8]);
            let x = u64::from_le_bytes(w);
            // Bytes < 0x20 have their top three bits clear; UTF-8 bytes ≥ 0x80 never match.
            let special = zero_bytes(x ^ (LO * u64::from(b'"')))
                | zero_bytes(x ^ (LO * u64::from(b'\\')))
                | zero_bytes(x & (LO * 0xe0));
            if special != 0 {
                j += (special.trailing_zeros() / 8) as usize;
                return self.finish_string(start, j);
            }
            j += 8;
        }
        while j < b.len() && b[j] != b'"' && b[j] != b'\\' && b[j] >= 0x20 {
            j += 1;
        }
        self.finish_string(start, j)
    }

    #[inline]
    fn finish_string(&mut self, start: usize, j: usize) -> Option<&'a str> {
        if self.b.get(j) != Some(&b'"') {
            return None;
        }
        self.i = j + 1;
        // Both ends sit next to an ASCII quote, so they are character boundaries.
        self.text.get(start..j)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// A JSON number by RFC 8259's grammar, as its text.
    fn number(&mut self) -> Option<&'a str> {
        let start = self.i;
        let b = self.b;
        let digits = |i: &mut usize| {
            let from = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > from
        };
        let mut i = self.i;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => {
                digits(&mut i);
            }
            _ => return None,
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if !digits(&mut i) {
                return None;
            }
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            if !digits(&mut i) {
                return None;
            }
        }
        self.i = i;
        self.text.get(start..i)
    }

    /// An unknown field's value: strings, numbers and literals are skipped here; objects and
    /// arrays go to the full parser.
    fn skip_scalar(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.i += 1;
                self.plain_string().map(|_| ())
            }
            b'-' | b'0'..=b'9' => self.number().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) fn scans(text: &str) -> bool {
    scan(text).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swar_finds_the_first_special_byte() {
        for (s, want) in [
            ("abcdefghij\"", Some("abcdefghij")),
            ("abc\"defghijkl", Some("abc")),
            ("abcdefg\\\"", None),
            ("abcdefgh\u{1}\"", None),
            ("理财认购利息\"", Some("理财认购利息")),
            ("\"", Some("")),
            ("no end", None),
        ] {
            let mut sc = Scanner {
                text: s,
                b: s.as_bytes(),
                i: 0,
            };
            assert_eq!(sc.plain_string(), want, "{s:?}");
        }
    }

    #[test]
    fn numbers_follow_the_json_grammar() {
        for (s, ok) in [
            ("0", true),
            ("-0.5", true),
            ("12e3", true),
            ("1E+2", true),
            ("01", true), // "0" then a stray digit: the caller sees the '1' and gives up
            ("1.", false),
            ("-", false),
            (".5", false),
            ("1e", false),
        ] {
            let mut sc = Scanner {
                text: s,
                b: s.as_bytes(),
                i: 0,
            };
            assert_eq!(sc.number().is_some(), ok, "{s:?}");
        }
        assert!(!scans(r#"{"amount": 01}"#));
    }

    #[test]
    fn falls_back_outside_the_subset() {
        assert!(!scans(r#" {"tx_id":"a", "x": [1]} "#));
        assert!(!scans(r#"{"tx_id":"a","tx_id":"b"}"#));
        assert!(!scans(r#"{"tx_id":"a\n"}"#));
        assert!(!scans(r#"{"tx_id":"a"} x"#));
        assert!(!scans(r#"{"tx_id":"a",}"#));
        assert!(!scans(r#"{"tx_id":1}"#));
        assert!(scans(
            r#" { "tx_id" : "a" , "x" : null, "y": -1.5e3, "cross_border": true } "#
        ));
        assert!(scans("{}"));
    }
}
