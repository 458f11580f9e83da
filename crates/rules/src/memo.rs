//! Payment notes (交易附言) reduced to tag bits once, when a record enters the window, so rules
//! count "investment-worded inflows" without keeping or rescanning text. One Aho-Corasick
//! pass per memo matches every configured keyword.

use aho_corasick::{AhoCorasick, MatchKind};

use crate::config::MemoKeywords;

/// Bit set of memo classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoTags(pub u8);

impl MemoTags {
    pub const INVESTMENT: u8 = 1;
    pub const PAYOUT: u8 = 1 << 1;
    pub const SALARY: u8 = 1 << 2;
    pub const GOODS: u8 = 1 << 3;
    pub const CONSUMPTION: u8 = 1 << 4;
    pub const DONATION: u8 = 1 << 5;
    pub const COMMISSION: u8 = 1 << 6;
    /// The memo was not blank.
    pub const PRESENT: u8 = 1 << 7;

    #[inline]
    pub fn has(self, bits: u8) -> bool {
        self.0 & bits != 0
    }
}

pub struct MemoTagger {
    matcher: Option<AhoCorasick>,
    /// Tag bit of each pattern, by pattern index.
    tags: Vec<u8>,
}

impl MemoTagger {
    pub fn new(k: &MemoKeywords) -> Self {
        let mut patterns = Vec::new();
        let mut tags = Vec::new();
        for (bit, list) in [
            (MemoTags::INVESTMENT, &k.investment),
            (MemoTags::PAYOUT, &k.payout),
            (MemoTags::SALARY, &k.salary),
            (MemoTags::GOODS, &k.goods),
            (MemoTags::CONSUMPTION, &k.consumption),
            (MemoTags::DONATION, &k.donation),
            (MemoTags::COMMISSION, &k.commission),
        ] {
            for w in list {
                patterns.push(w.clone());
                tags.push(bit);
            }
        }
        // Overlapping search is not needed: tags are OR-ed, and standard matching of every
        // non-overlapping occurrence finds each keyword that is not inside another one.
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .ok();
        MemoTagger { matcher, tags }
    }

    pub fn tag(&self, memo: &str) -> MemoTags {
        let memo = memo.trim();
        if memo.is_empty() {
            return MemoTags(0);
        }
        let mut bits = MemoTags::PRESENT;
        if let Some(m) = &self.matcher {
            for hit in m.find_overlapping_iter(memo) {
                bits |= self.tags[hit.pattern().as_usize()];
            }
        }
        MemoTags(bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_chinese_memos() {
        let t = MemoTagger::new(&MemoKeywords::default());
        assert_eq!(t.tag(""), MemoTags(0));
        assert_eq!(t.tag("  "), MemoTags(0));
        assert!(t.tag("理财认购").has(MemoTags::INVESTMENT));
        assert!(t.tag("3月利息").has(MemoTags::PAYOUT));
        assert!(t.tag("10月工资").has(MemoTags::SALARY));
        assert!(t.tag("爱心捐款").has(MemoTags::DONATION));
        assert!(t.tag("货款").has(MemoTags::GOODS));
        let both = t.tag("投资分红");
        assert!(both.has(MemoTags::INVESTMENT) && both.has(MemoTags::PAYOUT));
        let plain = t.tag("转账");
        assert!(plain.has(MemoTags::PRESENT));
        assert_eq!(plain.0 & !MemoTags::PRESENT, 0);
    }
}
