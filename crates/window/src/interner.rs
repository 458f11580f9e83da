//! Account-number dictionary: every account and counterparty string becomes a dense `u32`,
//! so rules compare payers and payees as integers.
//!
//! Lookups run for every record and mostly miss the CPU cache, and the dictionary grows with
//! every distinct account, so both speed and size matter: a hash table of ids over a vector of
//! entries (an inline string of up to 24 bytes, which covers bank account numbers, and the
//! minute the name was last seen) costs about 37 bytes per distinct name, and a hit touches
//! the table slot and one entry (the last-seen stamp shares the string's cache line).
//!
//! Names leave ([`Interner::evict`]): the engine frees the ids of names it has not seen for
//! longer than any of its state can remember, and [`Interner::intern`] reuses freed ids
//! (last freed first) before growing. A checkpoint saves the names by id
//! ([`Interner::names`], a freed slot as ""), the stamps and the free list, and
//! [`Interner::from_parts`] gives back the same dictionary. [`Interner::edits_in`] tells which
//! ranges of ids changed in place since a checkpoint encoded them.

use std::hash::BuildHasher;

use compact_str::CompactString;
use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// Dense id of an interned account string.
pub type AccountId = u32;

/// Stamp of a freed slot.
const FREE: u32 = u32::MAX;
/// Ids per edit counter ([`Interner::edits_in`]).
const EDIT_BLOCK_SHIFT: u32 = 6;

/// Minutes since the epoch, rounded up, of an event time: a stamp is never earlier than the
/// time it stands for, so a test "seen before t" on it is conservative.
#[inline]
pub fn minute_stamp(ts_ms: i64) -> u32 {
    (ts_ms.max(0) / 60_000 + i64::from(ts_ms.max(0) % 60_000 != 0)).min(i64::from(FREE - 1)) as u32
}

/// The latest event time (ms) a stamp may stand for.
#[inline]
pub fn stamp_ms(stamp: u32) -> i64 {
    i64::from(stamp) * 60_000
}

struct Entry {
    name: CompactString,
    /// [`minute_stamp`] of the newest event time the name was interned at; `FREE` when the
    /// slot is free.
    seen: u32,
}

#[derive(Default)]
pub struct Interner {
    entries: Vec<Entry>,
    table: HashTable<AccountId>,
    hasher: FxBuildHasher,
    /// Freed ids, reused last first.
    free: Vec<AccountId>,
    /// Per block of 2^EDIT_BLOCK_SHIFT ids, how often a name in it was freed or replaced.
    edits: Vec<u32>,
}

impl Interner {
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `s`, allocating one the first time it is seen (without a last-seen time).
    #[inline]
    pub fn intern(&mut self, s: &str) -> AccountId {
        self.intern_at(s, i64::MIN)
    }

    /// The id of `s`, seen at event time `ts_ms` (its stamp becomes the newest such time).
    #[inline]
    pub fn intern_at(&mut self, s: &str, ts_ms: i64) -> AccountId {
        let hash = self.hasher.hash_one(s);
        let stamp = minute_stamp(ts_ms);
        let entries = &mut self.entries;
        if let Some(&id) = self.table.find(hash, |&id| entries[id as usize].name == s) {
            let e = &mut entries[id as usize];
            e.seen = e.seen.max(stamp);
            return id;
        }
        let entry = Entry {
            name: CompactString::from(s),
            seen: stamp,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.entries[id as usize] = entry;
                self.edited(id);
                id
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as AccountId
            }
        };
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.table
            .insert_unique(hash, id, |&id| hasher.hash_one(entries[id as usize].name.as_str()));
        id
    }

    fn edited(&mut self, id: AccountId) {
        let block = (id >> EDIT_BLOCK_SHIFT) as usize;
        if block >= self.edits.len() {
            self.edits.resize(block + 1, 0);
        }
        self.edits[block] = self.edits[block].wrapping_add(1);
    }

    /// The id of `s` if it is in the dictionary.
    pub fn get(&self, s: &str) -> Option<AccountId> {
        let hash = self.hasher.hash_one(s);
        self.table
            .find(hash, |&id| self.entries[id as usize].name == s)
            .copied()
    }

    /// Free every name whose stamp stands for a time before `before_ms` and that `keep`
    /// does not hold on to, in id order; returns the freed ids. Names interned without a
    /// time are stamped 0 and go as soon as `keep` lets them. One pass over the dictionary.
    pub fn evict(&mut self, before_ms: i64, mut keep: impl FnMut(AccountId) -> bool) -> Vec<AccountId> {
        let mut freed = Vec::new();
        for id in 0..self.entries.len() as AccountId {
            let seen = self.entries[id as usize].seen;
            if seen == FREE || stamp_ms(seen) >= before_ms || keep(id) {
                continue;
            }
            let name = std::mem::take(&mut self.entries[id as usize].name);
            let hash = self.hasher.hash_one(name.as_str());
            if let Ok(slot) = self.table.find_entry(hash, |&x| x == id) {
                slot.remove();
            }
            self.entries[id as usize].seen = FREE;
            self.edited(id);
            freed.push(id);
        }
        // Reused last first: pushing in id order makes the lowest ids go last, which keeps
        // the live ids (and the per-id vectors of the engine) dense from below over time.
        self.free.extend(freed.iter().rev());
        freed
    }

    /// A dictionary whose ids are the positions of `names`, with stamps `seen` (one per name,
    /// or none: all 0) and the free list `free` (those slots' names must be ""); `Err` names
    /// what is inconsistent (a repeated name, a bad free id).
    pub fn from_parts<S: AsRef<str>>(
        names: impl IntoIterator<Item = S>,
        seen: &[u32],
        free: &[AccountId],
    ) -> Result<Interner, String> {
        let mut is_free: Vec<bool> = Vec::new();
        for &id in free {
            let id = id as usize;
            if id >= is_free.len() {
                is_free.resize(id + 1, false);
            }
            if std::mem::replace(&mut is_free[id], true) {
                return Err(format!("free id {id} is repeated"));
            }
        }
        let mut i = Interner::new();
        for n in names {
            let n = n.as_ref();
            let id = i.entries.len();
            if is_free.get(id).copied().unwrap_or(false) {
                if !n.is_empty() {
                    return Err(format!("free id {id} names {n:?}"));
                }
                i.entries.push(Entry {
                    name: CompactString::default(),
                    seen: FREE,
                });
                continue;
            }
            if i.get(n).is_some() {
                return Err(format!("repeats {n:?}"));
            }
            i.intern(n);
            i.entries[id].seen = match seen {
                [] => 0,
                s => *s.get(id).ok_or("fewer stamps than names")?,
            };
            if i.entries[id].seen == FREE {
                return Err("a stamp marks a live slot free".into());
            }
        }
        if !seen.is_empty() && seen.len() != i.entries.len() {
            return Err("more stamps than names".into());
        }
        if is_free.len() > i.entries.len() {
            return Err("a free id is out of range".into());
        }
        i.free = free.to_vec();
        Ok(i)
    }

    /// A dictionary whose ids are the positions of `names` (none free); `Err(name)` on a
    /// repeated name.
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

    /// Names with ids `range` (clamped to the dictionary); a free slot is "".
    pub fn names(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = &str> + '_ {
        let end = range.end.min(self.entries.len());
        let start = range.start.min(end);
        self.entries[start..end].iter().map(|e| e.name.as_str())
    }

    /// Every slot's stamp, by id (a free slot's is `u32::MAX`).
    pub fn stamps(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries.iter().map(|e| e.seen)
    }

    /// The free list, in the order it is used from the back.
    pub fn free_ids(&self) -> &[AccountId] {
        &self.free
    }

    /// A number that grows whenever a name with an id in `range` is freed or replaced (and
    /// only then): a range whose number is unchanged holds the same names.
    pub fn edits_in(&self, range: std::ops::Range<usize>) -> u64 {
        if range.is_empty() {
            return 0;
        }
        let first = range.start >> EDIT_BLOCK_SHIFT;
        let last = (range.end - 1) >> EDIT_BLOCK_SHIFT;
        (first..=last)
            .filter_map(|b| self.edits.get(b))
            .map(|&n| u64::from(n))
            .sum()
    }

    pub fn resolve(&self, id: AccountId) -> &str {
        self.entries.get(id as usize).map(|e| e.name.as_str()).unwrap_or("")
    }

    /// Slots, live and free: every id is below this.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Names in the dictionary.
    pub fn live(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    /// Free slots waiting for reuse.
    pub fn freed(&self) -> usize {
        self.free.len()
    }

    pub fn heap_bytes(&self) -> usize {
        let spilled: usize = self
            .entries
            .iter()
            .filter(|e| e.name.is_heap_allocated())
            .map(|e| e.name.capacity())
            .sum();
        // A table slot is its id plus one control byte.
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + spilled
            + self.table.capacity() * (std::mem::size_of::<AccountId>() + 1)
            + self.free.capacity() * std::mem::size_of::<AccountId>()
            + self.edits.capacity() * 4
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

    #[test]
    fn evicted_ids_are_reused_and_round_trip() {
        const MIN: i64 = 60_000;
        let mut i = Interner::new();
        let cash = i.intern("");
        for n in 0..200i64 {
            // Names n seen at minute n; name 150 seen again at minute 500.
            i.intern_at(&format!("a{n}"), n * MIN);
        }
        i.intern_at("a150", 500 * MIN);
        let before = i.edits_in(0..64);
        // Everything seen before minute 100 goes, except what `keep` holds (a7).
        let a7 = i.get("a7").unwrap();
        let freed = i.evict(100 * MIN, |id| id == a7 || id == cash);
        assert_eq!(freed.len(), 99, "a0..a99 less a7");
        assert!(i.edits_in(0..64) > before);
        assert_eq!(i.live(), 1 + 200 - 99);
        assert_eq!(i.get("a3"), None);
        assert_eq!(i.get("a7"), Some(a7));
        assert_eq!(i.get("a150").map(|id| i.resolve(id)), Some("a150"));
        assert_eq!(i.get(""), Some(cash), "the empty name is not confused with free slots");
        // Reuse: the freed ids, lowest first, before the dictionary grows.
        let len = i.len();
        let x = i.intern_at("new-x", 600 * MIN);
        assert_eq!(x, freed[0]);
        assert_eq!(i.len(), len);
        assert_eq!(i.resolve(x), "new-x");

        let stamps: Vec<u32> = i.stamps().collect();
        let back = Interner::from_parts(i.names(0..i.len()), &stamps, i.free_ids()).unwrap();
        assert_eq!(back.stamps().collect::<Vec<_>>(), stamps);
        assert_eq!(back.free_ids(), i.free_ids());
        assert_eq!(back.get("new-x"), Some(x));
        assert_eq!(back.get("a150"), i.get("a150"));
        assert_eq!(back.get(""), Some(cash));
        let mut a = i;
        let mut b = back;
        for n in 0..300 {
            let s = format!("later{n}");
            assert_eq!(a.intern_at(&s, 700 * MIN), b.intern_at(&s, 700 * MIN));
        }
        // A free id naming a live slot is refused.
        let stamps: Vec<u32> = a.stamps().collect();
        assert!(Interner::from_parts(a.names(0..a.len()), &stamps, &[x]).is_err());
        assert!(Interner::from_parts(["a", "b"], &[1], &[]).is_err());
    }
}
