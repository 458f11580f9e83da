//! Overlap and union estimates from the bottom-k samples traces carry.
//!
//! A bottom-k sample of a set is its k smallest hashes. Two samples are compared below the
//! smaller of their thresholds (the largest hash each kept, or "everything" when a sample
//! holds the whole set): the hashes of either set below that threshold are a uniform sample
//! of both, so the share found in both estimates the overlap's share, exactly when both
//! samples are whole sets.

use fundwatch_engine::MemberSet;

/// The threshold below which a sample is complete: its largest hash when it is a true
/// sample of a larger set, else `u64::MAX` (it holds every member).
fn threshold(s: &MemberSet) -> u64 {
    if (s.sketch.len() as u64) < s.count {
        s.sketch.last().copied().unwrap_or(u64::MAX)
    } else {
        u64::MAX
    }
}

/// Estimated members of `a` that are also in `b`.
pub fn shared(a: &MemberSet, b: &MemberSet) -> f64 {
    let t = threshold(a).min(threshold(b));
    let sa: Vec<u64> = a.sketch.iter().copied().filter(|&h| h <= t).collect();
    if sa.is_empty() {
        return 0.0;
    }
    let both = sa.iter().filter(|h| b.sketch.binary_search(h).is_ok()).count();
    // The share of a's sample in b, scaled to a's size.
    both as f64 / sa.len() as f64 * a.count as f64
}

/// Estimated size of the union of several sets (exact when every sample is whole).
pub fn union_count(sets: &[&MemberSet]) -> f64 {
    match sets {
        [] => 0.0,
        [one] => one.count as f64,
        _ => {
            let t = sets.iter().map(|s| threshold(s)).min().unwrap_or(u64::MAX);
            let mut all: Vec<u64> = sets
                .iter()
                .flat_map(|s| s.sketch.iter().copied().filter(|&h| h <= t))
                .collect();
            all.sort_unstable();
            all.dedup();
            if t == u64::MAX {
                return all.len() as f64;
            }
            // Distinct hashes below t are a t/2^64 share of the union.
            all.len() as f64 / (t as f64 / u64::MAX as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fundwatch_engine::trace::{member_hash, SKETCH};

    fn set(names: impl Iterator<Item = String>) -> MemberSet {
        let mut h: Vec<u64> = names.map(|n| member_hash(&n)).collect();
        h.sort_unstable();
        h.dedup();
        let count = h.len() as u64;
        h.truncate(SKETCH);
        MemberSet {
            count,
            fen: 0,
            sketch: h,
        }
    }

    #[test]
    fn small_sets_are_exact() {
        let a = set((0..40).map(|i| format!("p{i}")));
        let b = set((20..100).map(|i| format!("p{i}")));
        assert_eq!(shared(&a, &b), 20.0);
        assert_eq!(union_count(&[&a, &b]), 100.0);
    }

    #[test]
    fn large_sets_are_close() {
        let a = set((0..20_000).map(|i| format!("p{i}")));
        let b = set((10_000..50_000).map(|i| format!("p{i}")));
        let s = shared(&a, &b);
        assert!((s - 10_000.0).abs() < 1_500.0, "{s}");
        let u = union_count(&[&a, &b]);
        assert!((u - 50_000.0).abs() < 5_000.0, "{u}");
    }
}
