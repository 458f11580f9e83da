//! Account-number dictionary: every account and counterparty string becomes a dense `u32`,
//! so rules compare payers and payees as integers.
//!
//! Lookups run for every record and mostly miss the CPU cache, and the dictionary grows with
//! every distinct account, so both speed and size matter: a hash table of ids over a vector of
//! inline strings (up to 24 bytes inline, which covers bank account numbers) costs about
//! 29 bytes per distinct account, and a hit touches the table slot and one string.
//!
//! Ids are dense and never reused, so the dictionary is append-only: a checkpoint saves its
//! names in order ([`Interner::names`]) and [`Interner::from_names`] gives back the same ids.

use std::hash::BuildHasher;

use compact_str::CompactString;
use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// Dense id of an interned account string.
pub type AccountId = u32;

#[derive(Default)]
pub struct Interner {
    names: Vec<CompactString>,
    table: HashTable<AccountId>,
    hasher: FxBuildHasher,
}

impl Interner {
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `s`, allocating one the first time it is seen.
    #[inline]
    pub fn intern(&mut self, s: &str) -> AccountId {
        let hash = self.hasher.hash_one(s);
        let names = &self.names;
        if let Some(&id) = self.table.find(hash, |&id| names[id as usize] == s) {
            return id;
        }
        let id = self.names.len() as AccountId;
        self.names.push(CompactString::from(s));
        let (names, hasher) = (&self.names, &self.hasher);
        self.table
            .insert_unique(hash, id, |&id| hasher.hash_one(names[id as usize].as_str()));
        id
    }

    /// The id of `s` if it was seen before.
    pub fn get(&self, s: &str) -> Option<AccountId> {
        let hash = self.hasher.hash_one(s);
        self.table.find(hash, |&id| self.names[id as usize] == s).copied()
    }

    /// A dictionary whose ids are the positions of `names`; `Err(name)` on a repeated name.
    pub fn from_names<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Result<Interner, String> {
        let mut i = Interner::new();
        for n in names {
            let n = n.as_ref();
            if i.get(n).is_some() {
                return Err(n.to_owned());
            }
            i.intern(n);
        }
        Ok(i)
    }

    /// Names with ids `range` (clamped to the dictionary).
    pub fn names(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = &str> + '_ {
        let end = range.end.min(self.names.len());
        let start = range.start.min(end);
        self.names[start..end].iter().map(CompactString::as_str)
    }

    pub fn resolve(&self, id: AccountId) -> &str {
        self.names.get(id as usize).map(CompactString::as_str).unwrap_or("")
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn heap_bytes(&self) -> usize {
        let spilled: usize = self
            .names
            .iter()
            .filter(|n| n.is_heap_allocated())
            .map(|n| n.capacity())
            .sum();
        self.names.capacity() * std::mem::size_of::<CompactString>() + spilled + self.table.capacity() * 5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_and_resolves() {
        let mut i = Interner::new();
        let a = i.intern("6222020200001234567");
        let b = i.intern("");
        let c = i.intern("中文账户");
        let long = i.intern("an account number far longer than twenty-four bytes");
        assert_eq!(i.intern("6222020200001234567"), a);
        assert_ne!(a, b);
        assert_eq!(i.resolve(c), "中文账户");
        assert_eq!(i.resolve(b), "");
        assert_eq!(i.resolve(long), "an account number far longer than twenty-four bytes");
        assert_eq!(i.get("nope"), None);
        assert_eq!(i.get("中文账户"), Some(c));
        for n in 0..10_000 {
            i.intern(&format!("acct{n}"));
        }
        assert_eq!(i.resolve(i.get("acct777").unwrap()), "acct777");
        assert_eq!(i.len(), 10_004);

        let back = Interner::from_names(i.names(0..i.len())).unwrap();
        assert_eq!(back.len(), i.len());
        assert_eq!(back.get("acct777"), i.get("acct777"));
        assert_eq!(back.resolve(long), i.resolve(long));
        assert_eq!(i.names(10_002..20_000).count(), 2);
        assert_eq!(Interner::from_names(["a", "b", "a"]).err(), Some("a".to_owned()));
    }
}
