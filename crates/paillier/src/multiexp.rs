//! Linear combinations of ciphertexts with small signed integer weights:
//! sum_i w_i * Enc(x_i) = prod_i c_i^(w_i) mod n^2, computed as one
//! multi-exponentiation instead of one exponentiation per term.
//!
//! Two algorithms, chosen by what is shared:
//! - one combination: Pippenger's bucket method (no table, shared squarings);
//! - many combinations over the same bases (a convolution, a fully connected
//!   layer): Straus with per-base tables of small powers, built once and reused
//!   by every combination.
//!
//! Negative weights go to a second accumulator that is inverted once at the end.

use crate::int::Integer;
use rayon::prelude::*;

use crate::ciphertext::Ciphertext;
use crate::error::{Error, LengthError, Result};
use crate::keys::PublicKey;
use crate::ops::pow_small;

fn check_lengths(bases: usize, weights: usize) -> Result<()> {
    if bases != weights {
        return Err(Error::Length(LengthError::Weights { bases, weights }));
    }
    Ok(())
}

/// acc := acc * x mod m, where acc None stands for 1.
fn mul_into(acc: &mut Option<Integer>, x: &Integer, m: &Integer) {
    #[cfg(test)]
    PLANE_PRODUCTS.with(|c| c.set(c.get() + 1));
    match acc {
        Some(a) => {
            *a *= x;
            *a %= m;
        }
        None => *acc = Some(x.clone()),
    }
}

/// pos * neg^-1 mod m, with None standing for 1.
fn finish(pos: Option<Integer>, neg: Option<Integer>, m: &Integer) -> Integer {
    let pos = pos.unwrap_or_else(|| Integer::from(1u32));
    match neg {
        None => pos,
        Some(neg) => {
            // Products of units are units, so the inverse exists.
            let inv = neg.invert(m).expect("a product of ciphertexts is a unit mod n^2");
            (pos * inv) % m
        }
    }
}

fn bit_len(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// Modular multiplication as [`pippenger`] needs it: GMP's products
/// reduced by division, or the portable backend's Montgomery products.
pub(crate) trait Ring {
    /// A residue in this ring's representation.
    type Element: Clone;
    /// acc := acc * x.
    fn mul_assign(&self, acc: &mut Self::Element, x: &Self::Element);
    /// acc := acc^2.
    fn square_assign(&self, acc: &mut Self::Element);
}

/// GMP's products modulo the given modulus.
struct Gmp<'a>(&'a Integer);

impl Ring for Gmp<'_> {
    type Element = Integer;

    fn mul_assign(&self, acc: &mut Integer, x: &Integer) {
        *acc *= x;
        *acc %= self.0;
    }

    fn square_assign(&self, acc: &mut Integer) {
        acc.square_mut();
        *acc %= self.0;
    }
}

/// acc := acc * x in `ring`, where acc None stands for 1.
fn mul_opt<R: Ring>(ring: &R, acc: &mut Option<R::Element>, x: &R::Element) {
    match acc {
        Some(a) => ring.mul_assign(a, x),
        None => *acc = Some(x.clone()),
    }
}

/// prod base_i^(e_i) in `ring` by Pippenger's bucket method with `c`-bit
/// windows; None for the empty product.
pub(crate) fn pippenger<R: Ring>(terms: &[(&R::Element, u64)], ring: &R) -> Option<R::Element> {
    let bits = terms.iter().map(|&(_, e)| bit_len(e)).max().unwrap_or(0);
    if bits == 0 {
        return None;
    }
    let count = terms.len() as u64;
    // cost(c) = windows * (terms + 2 * buckets) + squarings
    let cost = |c: u32| -> u64 {
        let windows = bits.div_ceil(c) as u64;
        windows * (count + 2 * ((1u64 << c) - 1)) + bits as u64
    };
    let c = (1..=bits.min(16)).min_by_key(|&c| cost(c)).unwrap_or(1);
    let windows = bits.div_ceil(c);
    let mask = (1u64 << c) - 1;
    let mut acc: Option<R::Element> = None;
    let mut buckets: Vec<Option<R::Element>> = vec![None; mask as usize];
    for w in (0..windows).rev() {
        if let Some(a) = acc.as_mut() {
            for _ in 0..c {
                ring.square_assign(a);
            }
        }
        buckets.iter_mut().for_each(|b| *b = None);
        let shift = w * c;
        for &(base, e) in terms {
            let d = (e >> shift) & mask;
            if d != 0 {
                mul_opt(ring, &mut buckets[d as usize - 1], base);
            }
        }
        // sum_d d * bucket[d] as a running product from the top bucket down.
        let mut running: Option<R::Element> = None;
        let mut total: Option<R::Element> = None;
        for b in buckets.iter().rev() {
            if let Some(b) = b {
                mul_opt(ring, &mut running, b);
            }
            if let Some(r) = &running {
                mul_opt(ring, &mut total, r);
            }
        }
        if let Some(t) = total {
            mul_opt(ring, &mut acc, &t);
        }
    }
    acc
}

impl PublicKey {
    /// Enc(sum_i w_i * x_i) from Enc(x_i) and signed weights, as one
    /// multi-exponentiation (Pippenger). Errors if the lengths differ.
    pub fn linear_combination(&self, bases: &[Ciphertext], weights: &[i64]) -> Result<Ciphertext> {
        self.linear_combination_with(crate::arith::Backend::current(), bases, weights)
    }

    /// [`PublicKey::linear_combination`] on a given backend (Pippenger's
    /// method on both; on IFMA its independent products eight at a time).
    pub fn linear_combination_with(
        &self,
        backend: crate::arith::Backend,
        bases: &[Ciphertext],
        weights: &[i64],
    ) -> Result<Ciphertext> {
        backend.check()?;
        check_lengths(bases.len(), weights.len())?;
        if let Some(ifma) = backend.ifma()
            && let Some(single) = self.n2_single(ifma)
        {
            let values: Vec<&Integer> = bases.iter().map(|c| &c.0).collect();
            return Ok(Ciphertext(ifma.linear_combination(self.n2_lanes(ifma), single, &values, weights)));
        }
        let m = self.n_squared();
        let mut pos = Vec::new();
        let mut neg = Vec::new();
        for (c, &w) in bases.iter().zip(weights) {
            match w.signum() {
                1 => pos.push((&c.0, w.unsigned_abs())),
                -1 => neg.push((&c.0, w.unsigned_abs())),
                _ => {}
            }
        }
        if backend == crate::arith::Backend::Portable {
            let ring = self.portable_n2();
            return Ok(Ciphertext(finish(ring.multi_pow(&pos), ring.multi_pow(&neg), m)));
        }
        Ok(Ciphertext(finish(pippenger(&pos, &Gmp(m)), pippenger(&neg, &Gmp(m)), m)))
    }

    /// The same combination computed naively, one exponentiation per term;
    /// kept as the reference and the benchmark baseline.
    pub fn linear_combination_naive(&self, bases: &[Ciphertext], weights: &[i64]) -> Result<Ciphertext> {
        check_lengths(bases.len(), weights.len())?;
        let mut acc = Integer::from(1u32);
        for (c, &w) in bases.iter().zip(weights) {
            acc *= self.mul_i64(c, w).0;
            acc %= self.n_squared();
        }
        Ok(Ciphertext(acc))
    }
}

impl PublicKey {
    /// Enc(row . x) for every row, over the same ciphertexts Enc(x_i): a
    /// whole linear layer. On GMP this is [`SharedBases::for_rows`] then
    /// [`SharedBases::combine_many`]; on IFMA the same products, eight at a
    /// time. Errors if a row's length differs from the number of ciphertexts.
    pub fn combine_rows(&self, bases: &[Ciphertext], rows: &[Vec<i64>]) -> Result<Vec<Ciphertext>> {
        self.combine_rows_with(crate::arith::Backend::current(), bases, rows)
    }

    /// [`PublicKey::combine_rows`] on a given backend.
    pub fn combine_rows_with(
        &self,
        backend: crate::arith::Backend,
        bases: &[Ciphertext],
        rows: &[Vec<i64>],
    ) -> Result<Vec<Ciphertext>> {
        backend.check()?;
        check_rows(bases.len(), rows)?;
        let max = rows.iter().flatten().map(|w| w.unsigned_abs()).max().unwrap_or(0);
        if let Some(ifma) = backend.ifma()
            && max < EXACT_LIMIT
        {
            let values: Vec<Integer> = bases.iter().map(|c| c.0.clone()).collect();
            let m = self.n2_lanes(ifma);
            return Ok(ifma.combine_rows(m, &values, rows).into_iter().map(Ciphertext).collect());
        }
        SharedBases::for_rows(self, bases, rows)?.combine_many(rows)
    }
}

impl PublicKey {
    /// Enc(row . x) for every row, as [`PublicKey::combine_rows`], with a
    /// schedule of products that depends on the shapes and `bits` alone,
    /// never on the weights' values (|w| < 2^bits, checked): bit planes of
    /// the offset weights w + 2^bits, in [1, 2^(bits+1)), Horner's rule over
    /// the planes with one subset-product table entry per group of bases and
    /// plane (the empty subset's entry 1 included), times one shared
    /// (prod x_i)^-(2^bits). No zero weight is skipped and no sign splits a
    /// row. On IFMA the products are fixed-width Montgomery products; on GMP
    /// the schedule is the same but GMP's products are not constant-time.
    /// What still depends on the weights: which table entries are read
    /// (the memory access pattern).
    pub fn combine_rows_fixed(
        &self,
        bases: &[Ciphertext],
        rows: &[Vec<i64>],
        bits: u32,
    ) -> Result<Vec<Ciphertext>> {
        self.combine_rows_fixed_with(crate::arith::Backend::current(), bases, rows, bits)
    }

    /// [`PublicKey::combine_rows_fixed`] on a given backend.
    pub fn combine_rows_fixed_with(
        &self,
        backend: crate::arith::Backend,
        bases: &[Ciphertext],
        rows: &[Vec<i64>],
        bits: u32,
    ) -> Result<Vec<Ciphertext>> {
        backend.check()?;
        check_rows(bases.len(), rows)?;
        let bits = bits.clamp(1, 16);
        if let Some((r, i)) = rows
            .iter()
            .enumerate()
            .find_map(|(r, row)| row.iter().position(|w| w.unsigned_abs() >= 1 << bits).map(|i| (r, i)))
        {
            return Err(Error::Length(LengthError::WeightTooWide { row: r, index: i, bits }));
        }
        let values: Vec<Integer> = bases.iter().map(|c| c.0.clone()).collect();
        if let Some(ifma) = backend.ifma() {
            let m = self.n2_lanes(ifma);
            return Ok(ifma.combine_rows_fixed(m, &values, rows, bits).into_iter().map(Ciphertext).collect());
        }
        Ok(planes_gmp(&values, rows, bits, self.n_squared()).into_iter().map(Ciphertext).collect())
    }
}

/// Bases per group of [`planes_gmp`]'s subset tables.
const GMP_GROUP: usize = 4;

#[cfg(test)]
thread_local! {
    /// Products [`planes_gmp`] has made (tests compare schedules).
    static PLANE_PRODUCTS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// The fewest bits of any factor [`planes_gmp`] has multiplied.
    static NARROWEST_FACTOR: std::cell::Cell<u32> = const { std::cell::Cell::new(u32::MAX) };
}

/// a * b mod m, counted in tests.
fn product(a: &Integer, b: &Integer, m: &Integer) -> Integer {
    #[cfg(test)]
    PLANE_PRODUCTS.with(|c| c.set(c.get() + 1));
    #[cfg(test)]
    NARROWEST_FACTOR.with(|c| c.set(c.get().min(a.significant_bits()).min(b.significant_bits())));
    wide(Integer::from(a * b) % m, m)
}

/// x + m for a residue x: the same class mod m, as wide as m whatever x
/// is, so that no product takes less time because a factor is short (a
/// client's degenerate ciphertext 1 + n k, or a product of them, would be).
fn wide(x: Integer, m: &Integer) -> Integer {
    x + m
}

/// The bit-plane evaluation of [`PublicKey::combine_rows_fixed`] with rug's
/// products: the same products, in the same order, for any weights below
/// 2^bits in magnitude.
fn planes_gmp(bases: &[Integer], rows: &[Vec<i64>], bits: u32, m: &Integer) -> Vec<Integer> {
    // 1 as m + 1, and every table entry and product as its residue + m:
    // as wide as any, so that no product takes less time for a short
    // factor (the empty subset's one-limb 1, or a client's degenerate base).
    let one = Integer::from(m + 1u32);
    let tables: Vec<Vec<Integer>> = bases
        .chunks(GMP_GROUP)
        .map(|group| {
            let mut t = vec![one.clone()];
            for s in 1..1usize << group.len() {
                let low = s.trailing_zeros() as usize;
                let rest = s & (s - 1);
                t.push(if rest == 0 {
                    wide(group[low].clone(), m)
                } else {
                    product(&t[rest], &t[1 << low], m)
                });
            }
            t
        })
        .collect();
    // D^-1 = (prod x_i)^-(2^bits), shared by every row.
    let mut d = one.clone();
    for x in bases {
        d = product(&d, &wide(x.clone(), m), m);
    }
    for _ in 0..bits {
        d = product(&d, &d, m);
    }
    let inverse = wide(d.invert(m).expect("a product of ciphertexts is a unit mod n^2"), m);
    let offset = 1i64 << bits;
    rows.par_iter()
        .map(|row| {
            let shifted: Vec<u64> = row.iter().map(|&w| (w + offset) as u64).collect();
            let mut acc = one.clone();
            for plane in (0..=bits).rev() {
                if plane < bits {
                    acc = product(&acc, &acc, m);
                }
                for (group, table) in shifted.chunks(GMP_GROUP).zip(&tables) {
                    let s = group
                        .iter()
                        .enumerate()
                        .fold(0usize, |s, (j, &w)| s | ((((w >> plane) & 1) as usize) << j));
                    acc = product(&acc, &table[s], m);
                }
            }
            product(&acc, &inverse, m) - m
        })
        .collect()
}

fn check_rows(bases: usize, rows: &[Vec<i64>]) -> Result<()> {
    for (r, row) in rows.iter().enumerate() {
        if row.len() != bases {
            return Err(Error::Length(LengthError::Row { row: r, weights: row.len(), bases }));
        }
    }
    Ok(())
}

/// Fills t[d-1] = base^d (t[0] holds the base), from the largest known power
/// below d when there is one: t[e-1] * t[d-e-1], computing the gap recursively.
fn power(t: &mut [Option<Integer>], d: usize, hint: usize, m: &Integer) {
    if t[d - 1].is_some() {
        return;
    }
    let e = if hint < d && t[hint - 1].is_some() {
        hint
    } else {
        (1..d).rev().find(|&e| t[e - 1].is_some()).unwrap_or(1)
    };
    power(t, d - e, e.min(d - e), m);
    let (Some(a), Some(b)) = (&t[e - 1], &t[d - e - 1]) else { return };
    let p = Integer::from(a * b) % m;
    t[d - 1] = Some(p);
}

/// Per-base tables of small powers, for evaluating many linear combinations
/// over the same ciphertexts (Straus' method with shared tables).
///
/// With window w, a base's table holds c^1 .. c^(2^w - 1); a combination whose
/// weights have b bits then costs about ceil(b/w) multiplications a term plus
/// 2w squarings a window, and no exponentiation at all.
pub struct SharedBases {
    modulus: Integer,
    window: u32,
    /// tables[i][d-1] = bases[i]^d for d < 2^window (windowed mode), or, in
    /// exact mode (window 0), Some(bases[i]^d) for the magnitudes d the rows use.
    tables: Vec<Vec<Option<Integer>>>,
}

/// Weight magnitudes up to which [`SharedBases::for_rows`] tabulates exact powers.
const EXACT_LIMIT: u64 = 1 << 12;

impl SharedBases {
    /// Builds the tables (in parallel) for combinations with weights of up to
    /// `weight_bits` magnitude bits, expecting `combinations` of them; the
    /// window minimizes table cost plus evaluation cost. Larger weights still
    /// work, with more windows.
    pub fn new(key: &PublicKey, bases: &[Ciphertext], weight_bits: u32, combinations: usize) -> Self {
        let b = weight_bits.clamp(1, 63) as u64;
        let m = bases.len() as u64;
        let k = combinations.max(1) as u64;
        let cost = |w: u32| -> u64 {
            let windows = b.div_ceil(w as u64);
            m * ((1u64 << w) - 2) + k * windows * (m + 2 * w as u64)
        };
        let window = (1..=(b as u32).min(10)).min_by_key(|&w| cost(w)).unwrap_or(1);
        Self::with_window(key, bases, window)
    }

    /// Builds the tables with an explicit window of 1 to 12 bits.
    pub fn with_window(key: &PublicKey, bases: &[Ciphertext], window: u32) -> Self {
        let window = window.clamp(1, 12);
        let modulus = key.n_squared().clone();
        let size = (1usize << window) - 1;
        let tables = bases
            .par_iter()
            .map(|c| {
                let mut t: Vec<Option<Integer>> = Vec::with_capacity(size);
                let mut x = c.0.clone();
                t.push(Some(x.clone()));
                for _ in 1..size {
                    x *= &c.0;
                    x %= &modulus;
                    t.push(Some(x.clone()));
                }
                t
            })
            .collect();
        SharedBases { modulus, window, tables }
    }

    /// Tables for exactly the combinations `rows` (one weight per base each):
    /// each base gets the powers c^|w| for the distinct magnitudes its column
    /// uses, built by an addition chain over the sorted magnitudes, so that a
    /// combination then costs one multiplication per non-zero weight and no
    /// squaring. Falls back to [`SharedBases::new`] for weights of more than
    /// 12 bits. Other rows can still be combined (missing powers are computed).
    pub fn for_rows(key: &PublicKey, bases: &[Ciphertext], rows: &[Vec<i64>]) -> Result<Self> {
        check_rows(bases.len(), rows)?;
        let max = rows.iter().flatten().map(|w| w.unsigned_abs()).max().unwrap_or(0);
        if max >= EXACT_LIMIT {
            return Ok(Self::new(key, bases, bit_len(max), rows.len()));
        }
        let modulus = key.n_squared().clone();
        let tables = bases
            .par_iter()
            .enumerate()
            .map(|(i, c)| {
                let mut wanted: Vec<usize> =
                    rows.iter().map(|r| r[i].unsigned_abs() as usize).filter(|&d| d > 0).collect();
                wanted.sort_unstable();
                wanted.dedup();
                let top = wanted.last().copied().unwrap_or(0);
                // t[0] always holds the base, for magnitudes outside the given rows.
                let mut t: Vec<Option<Integer>> = vec![None; top.max(1)];
                t[0] = Some(c.0.clone());
                let mut last = 1usize;
                for d in wanted {
                    power(&mut t, d, last, &modulus);
                    last = d;
                }
                t
            })
            .collect();
        Ok(SharedBases { modulus, window: 0, tables })
    }

    /// The chosen window width.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// How many bases the tables cover.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// Whether there are no bases.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// Enc(sum_i w_i x_i) for one row of weights (one per base).
    pub fn combine(&self, weights: &[i64]) -> Result<Ciphertext> {
        check_lengths(self.tables.len(), weights.len())?;
        let terms: Vec<(usize, i64)> = weights.iter().copied().enumerate().filter(|&(_, w)| w != 0).collect();
        self.combine_terms(&terms)
    }

    /// Enc(sum w x) for a sparse row: (base index, weight) pairs. Errors on an
    /// index out of range.
    pub fn combine_terms(&self, terms: &[(usize, i64)]) -> Result<Ciphertext> {
        let m = &self.modulus;
        let w = self.window;
        if let Some(&(i, _)) = terms.iter().find(|&&(i, _)| i >= self.tables.len()) {
            return Err(Error::Length(LengthError::BaseIndex { index: i, bases: self.tables.len() }));
        }
        if w == 0 {
            return Ok(self.combine_exact(terms));
        }
        let bits = terms.iter().map(|&(_, x)| bit_len(x.unsigned_abs())).max().unwrap_or(0);
        let windows = bits.div_ceil(w);
        let mask = (1u64 << w) - 1;
        let mut pos: Option<Integer> = None;
        let mut neg: Option<Integer> = None;
        for win in (0..windows).rev() {
            for acc in [&mut pos, &mut neg].into_iter().flatten() {
                for _ in 0..w {
                    acc.square_mut();
                    *acc %= m;
                }
            }
            let shift = win * w;
            for &(i, x) in terms {
                let d = (x.unsigned_abs() >> shift) & mask;
                if d != 0 {
                    let acc = if x > 0 { &mut pos } else { &mut neg };
                    if let Some(p) = &self.tables[i][d as usize - 1] {
                        mul_into(acc, p, m);
                    }
                }
            }
        }
        Ok(Ciphertext(finish(pos, neg, m)))
    }

    /// One multiplication per term from the exact tables; a magnitude the
    /// tables lack is computed from the base.
    fn combine_exact(&self, terms: &[(usize, i64)]) -> Ciphertext {
        let m = &self.modulus;
        let mut pos: Option<Integer> = None;
        let mut neg: Option<Integer> = None;
        for &(i, x) in terms {
            let d = x.unsigned_abs() as usize;
            if d == 0 {
                continue;
            }
            let acc = if x > 0 { &mut pos } else { &mut neg };
            match self.tables[i].get(d - 1) {
                Some(Some(p)) => mul_into(acc, p, m),
                _ => {
                    // Only for rows that were not given to for_rows.
                    let base = self.tables[i].first().and_then(Option::as_ref);
                    if let Some(base) = base {
                        mul_into(acc, &pow_small(base, d as u64, m), m);
                    }
                }
            }
        }
        Ciphertext(finish(pos, neg, m))
    }

    /// Many combinations over the same bases, in parallel.
    pub fn combine_many(&self, rows: &[Vec<i64>]) -> Result<Vec<Ciphertext>> {
        rows.par_iter().map(|r| self.combine(r)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arith::Backend;
    use crate::testing::{test_keypair, xorshift};

    /// The products `f` makes, counted on one worker thread (the counter is
    /// per thread, and a one-thread pool runs all of `f`'s parallel work).
    fn products(f: impl FnOnce() + Send) -> usize {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        pool.install(|| {
            PLANE_PRODUCTS.with(|c| c.set(0));
            f();
            PLANE_PRODUCTS.with(|c| c.get())
        })
    }

    /// A client's degenerate ciphertexts (1 + n k, randomness 1) are short,
    /// and so are their products; on the GMP schedule every factor of every
    /// product is as wide as n^2 all the same, so no product's time depends
    /// on the weights through its operands' length. (Control, checked
    /// while building: with `wide` the identity, the narrowest factor is
    /// about half as wide and this test fails.)
    #[test]
    fn the_gmp_schedule_multiplies_only_full_width_factors() {
        let pk = test_keypair(1024).public().clone();
        let m = pk.n_squared().clone();
        let bases: Vec<Integer> = (1..=9).map(|k| pk.n() * Integer::from(k) + 1u32).collect();
        let rows = vec![vec![3, -7, 0, 127, -127, 1, 2, 0, 5], vec![0; 9]];
        let narrowest = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| {
            NARROWEST_FACTOR.with(|c| c.set(u32::MAX));
            let out = planes_gmp(&bases, &rows, 7, &m);
            assert!(out.iter().all(|x| *x >= 0 && *x < m), "results are residues");
            NARROWEST_FACTOR.with(|c| c.get())
        });
        assert!(narrowest >= m.significant_bits(), "a factor of {narrowest} bits");
    }

    fn setup() -> (PublicKey, Vec<Ciphertext>, Vec<Vec<Vec<i64>>>) {
        let pair = test_keypair(1024);
        let pk = pair.public().clone();
        let mut next = xorshift(77);
        let bases: Vec<Ciphertext> =
            (0..13).map(|i| pk.encrypt(&Integer::from(i * 1000 + 7)).unwrap()).collect();
        let rows = |f: &mut dyn FnMut() -> i64| -> Vec<Vec<i64>> {
            (0..5).map(|_| (0..13).map(|_| f()).collect()).collect()
        };
        let weights = vec![
            rows(&mut || 0),
            rows(&mut || -127),
            rows(&mut || 127),
            rows(&mut || (next() % 255) as i64 - 127),
            rows(&mut || if next().is_multiple_of(4) { (next() % 255) as i64 - 127 } else { 0 }),
        ];
        (pk, bases, weights)
    }

    #[test]
    fn the_fixed_schedule_gives_the_same_combinations_on_both_backends() {
        let (pk, bases, weights) = setup();
        for rows in &weights {
            let want = pk.combine_rows_with(Backend::Gmp, &bases, rows).unwrap();
            assert_eq!(pk.combine_rows_fixed_with(Backend::Gmp, &bases, rows, 7).unwrap(), want);
            if Backend::current() != Backend::Gmp {
                assert_eq!(pk.combine_rows_fixed(&bases, rows, 7).unwrap(), want);
            }
        }
        let too_wide = vec![vec![128i64; 13]];
        assert!(pk.combine_rows_fixed(&bases, &too_wide, 7).is_err());
    }

    /// The fixed schedule makes the same products for every weight matrix of
    /// a shape (all zero, all -127, all 127, dense random, sparse random);
    /// the control: the adaptive combination's count follows the weights.
    #[test]
    fn the_fixed_schedule_does_not_depend_on_the_weights() {
        let (pk, bases, weights) = setup();
        let fixed: Vec<usize> = weights
            .iter()
            .map(|rows| products(|| drop(pk.combine_rows_fixed_with(Backend::Gmp, &bases, rows, 7).unwrap())))
            .collect();
        assert!(fixed.iter().all(|&c| c == fixed[0] && c > 0), "{fixed:?}");
        let adaptive: Vec<usize> = weights
            .iter()
            .map(|rows| products(|| drop(pk.combine_rows_with(Backend::Gmp, &bases, rows).unwrap())))
            .collect();
        assert!(adaptive.iter().any(|&c| c != adaptive[0]), "the control lacks power: {adaptive:?}");
    }
}
