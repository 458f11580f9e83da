//! Small random helpers shared by the generators.
//!
//! Every planted case and every background account draws from its own ChaCha stream derived
//! from (seed, tag, index), so adding or resizing one typology never shifts the draws of another,
//! and the whole stream is a pure function of the options.

use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson, StandardNormal};

pub(crate) type Rng = ChaCha8Rng;

/// SplitMix64 finaliser: a cheap, well-mixed hash for deriving seeds and per-line choices.
#[inline]
pub(crate) fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Independent stream for one (tag, index) under the user's seed.
pub(crate) fn sub_rng(seed: u64, tag: u64, idx: u64) -> Rng {
    Rng::seed_from_u64(mix64(seed ^ mix64(tag.wrapping_mul(0x100_0000_01B3) ^ mix64(idx))))
}

#[inline]
pub(crate) fn chance(rng: &mut Rng, p: f64) -> bool {
    rng.gen::<f64>() < p
}

#[inline]
pub(crate) fn unif(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    if hi <= lo {
        return lo;
    }
    rng.gen_range(lo..hi)
}

/// Inclusive integer range that tolerates `hi < lo` (returns `lo`).
#[inline]
pub(crate) fn irange(rng: &mut Rng, lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        return lo;
    }
    rng.gen_range(lo..=hi)
}

#[inline]
pub(crate) fn urange(rng: &mut Rng, lo: usize, hi: usize) -> usize {
    irange(rng, lo as u64, hi as u64) as usize
}

/// Log-uniform in [lo, hi]: sizes of schemes span orders of magnitude, small ones more common.
pub(crate) fn log_uniform(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    if hi <= lo {
        return lo;
    }
    (lo.ln() + rng.gen::<f64>() * (hi.ln() - lo.ln())).exp()
}

pub(crate) fn log_uniform_int(rng: &mut Rng, lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        return lo;
    }
    (log_uniform(rng, lo as f64, hi as f64 + 0.999).floor() as u64).clamp(lo, hi)
}

/// Log-normal with the given median; used for amounts and activity levels.
pub(crate) fn lognormal(rng: &mut Rng, median: f64, sigma: f64) -> f64 {
    let z: f64 = StandardNormal.sample(rng);
    median * (sigma * z).exp()
}

pub(crate) fn poisson(rng: &mut Rng, lambda: f64) -> u32 {
    if lambda <= 0.0 || !lambda.is_finite() {
        return 0;
    }
    if lambda < 12.0 {
        // Knuth: exact and cheap for the small rates that dominate background traffic.
        let l = (-lambda).exp();
        let mut k = 0u32;
        let mut p = 1.0f64;
        loop {
            p *= rng.gen::<f64>();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }
    match Poisson::new(lambda) {
        Ok(d) => {
            let v: f64 = d.sample(rng);
            v.max(0.0) as u32
        }
        Err(_) => lambda as u32,
    }
}

#[inline]
pub(crate) fn pick<T: Copy>(rng: &mut Rng, xs: &[T]) -> T {
    xs[rng.gen_range(0..xs.len())]
}

/// Weighted choice; weights need not sum to anything in particular.
pub(crate) fn pick_w<T: Copy>(rng: &mut Rng, xs: &[(T, u32)]) -> T {
    let total: u32 = xs.iter().map(|x| x.1).sum();
    let mut r = rng.gen_range(0..total.max(1));
    for &(v, w) in xs {
        if r < w {
            return v;
        }
        r -= w;
    }
    xs[xs.len() - 1].0
}

/// Yuan (as a float draw) to integer fen, at least one fen. Floats only shape the draw; the
/// amount that is stored and written is this integer.
#[inline]
pub(crate) fn fen(yuan: f64) -> u64 {
    ((yuan * 100.0).round() as i64).max(1) as u64
}

/// Round fen to a multiple of `unit` fen (at least one unit).
#[inline]
pub(crate) fn round_to(fen: u64, unit: u64) -> u64 {
    (((fen + unit / 2) / unit).max(1)) * unit
}

/// Split `total` into `n` positive parts with random weights; parts are rounded to `unit`
/// except the last, which takes the remainder so the sum is exact.
pub(crate) fn split_amount(rng: &mut Rng, total: u64, n: usize, unit: u64) -> Vec<u64> {
    let n = n.max(1);
    if n == 1 || total < (n as u64) * unit * 2 {
        return vec![total];
    }
    let ws: Vec<f64> = (0..n).map(|_| unif(rng, 0.4, 1.6)).collect();
    let sum: f64 = ws.iter().sum();
    let mut parts = Vec::with_capacity(n);
    let mut left = total;
    for w in &ws[..n - 1] {
        let p = round_to((total as f64 * w / sum) as u64, unit).min(left.saturating_sub(unit));
        if p == 0 {
            continue;
        }
        parts.push(p);
        left -= p;
    }
    if left > 0 {
        parts.push(left);
    }
    parts
}

/// Random subset of `k` distinct indices out of `n` (k ≤ n), in random order.
pub(crate) fn sample_indices(rng: &mut Rng, n: usize, k: usize) -> Vec<usize> {
    rand::seq::index::sample(rng, n, k.min(n)).into_vec()
}
