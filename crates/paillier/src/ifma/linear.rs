//! Linear combinations over shared bases on eight lanes: the server's
//! linear layers. Where it costs fewer products than the bit planes of
//! [`super::planes`], the same algorithm as [`crate::SharedBases::for_rows`]
//! (per-base powers for the magnitudes the rows use, by addition chains,
//! then one product per non-zero weight), with its independent products
//! fed eight at a time: each base's addition chain runs in its own lane,
//! eight bases per task, and the rows' products are chains run in lockstep,
//! sorted by length.
//! Values stay in Montgomery form from the conversion of the bases to the
//! end of each chain.

use rayon::prelude::*;
use rug::Integer;

use super::Ifma;
use super::lanes::{self, LANES, Modulus8};
use super::single::{self, SingleModulus, SingleValue};

#[cfg(test)]
thread_local! {
    /// How often this thread took the bit-plane path (for tests).
    pub(crate) static PLANES_TAKEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Numbers in Montgomery form, `digits` words each, stored end to end.
struct Arena {
    digits: usize,
    data: Vec<u64>,
}

impl Arena {
    fn get(&self, i: usize) -> &[u64] {
        &self.data[i * self.digits..(i + 1) * self.digits]
    }

    fn push(&mut self, x: &[u64]) -> usize {
        self.data.extend_from_slice(x);
        self.data.len() / self.digits - 1
    }
}

/// A step of an addition chain: x^d = x^e * x^f (d = e + f).
type Step = (usize, usize, usize);

/// The steps (d, e, d - e) that build base^d for every wanted magnitude
/// from base^1, each step a product of two earlier powers: the symbolic
/// twin of `multiexp::power`.
fn chain_steps(wanted: &[usize]) -> Vec<Step> {
    let top = wanted.last().copied().unwrap_or(1).max(1);
    let mut known = vec![false; top + 1];
    known[1] = true;
    let mut steps = Vec::new();
    fn build(known: &mut [bool], steps: &mut Vec<Step>, d: usize, hint: usize) {
        if known[d] {
            return;
        }
        let e = if hint < d && known[hint] { hint } else { (1..d).rev().find(|&e| known[e]).unwrap_or(1) };
        build(known, steps, d - e, e.min(d - e));
        steps.push((d, e, d - e));
        known[d] = true;
    }
    let mut last = 1;
    for &d in wanted {
        build(&mut known, &mut steps, d, last);
        last = d;
    }
    steps
}

impl Ifma {
    /// For each row, prod_i bases_i^(row_i) mod m (m the broadcast modulus,
    /// bases below it, weights of at most 12 magnitude bits), as
    /// `SharedBases::for_rows` then `combine_many` compute it.
    /// For each row, prod_i bases_i^(row_i) mod m by bit planes of offset
    /// weights (|w| < 2^bits), whatever the weights: the products depend on
    /// the shapes and `bits` only (see `planes`).
    pub(crate) fn combine_rows_fixed(
        self,
        m: &Modulus8,
        bases: &[Integer],
        rows: &[Vec<i64>],
        bits: u32,
    ) -> Vec<Integer> {
        let ones: &[[u64; LANES]] = bytemuck::cast_slice(m.one());
        let one: Vec<u64> = ones.iter().map(|r| r[0]).collect();
        let converted: Vec<Vec<u64>> = bases
            .par_chunks(LANES)
            .flat_map_iter(|chunk| self.to_mont_digits(&chunk.iter().collect::<Vec<_>>(), m))
            .collect();
        let group = super::planes::plane_cost(bases.len(), rows.len(), bits).group;
        self.combine_rows_by_planes(m, &converted, &one, rows, bits, group)
    }

    pub(crate) fn combine_rows(self, m: &Modulus8, bases: &[Integer], rows: &[Vec<i64>]) -> Vec<Integer> {
        let n = m.digits();
        let mut arena = Arena { digits: n, data: Vec::new() };
        let one = {
            let ones: &[[u64; LANES]] = bytemuck::cast_slice(m.one());
            let lane0: Vec<u64> = ones.iter().map(|r| r[0]).collect();
            arena.push(&lane0)
        };
        // power[i][d] = arena index of bases[i]^d.
        let mut power: Vec<Vec<Option<usize>>> = Vec::with_capacity(bases.len());
        let converted: Vec<Vec<u64>> = bases
            .par_chunks(LANES)
            .flat_map_iter(|chunk| self.to_mont_digits(&chunk.iter().collect::<Vec<_>>(), m))
            .collect();
        let mut steps = Vec::with_capacity(bases.len());
        for (i, x) in converted.iter().enumerate() {
            let mut wanted: Vec<usize> =
                rows.iter().map(|r| r[i].unsigned_abs() as usize).filter(|&d| d > 0).collect();
            wanted.sort_unstable();
            wanted.dedup();
            let top = wanted.last().copied().unwrap_or(1).max(1);
            let mut p = vec![None; top + 1];
            p[1] = Some(arena.push(x));
            power.push(p);
            steps.push(chain_steps(&wanted));
        }
        // Many rows with many distinct magnitudes: bit planes of offset
        // weights cost fewer products than the powers (see `planes`).
        let bits = rows.iter().flatten().map(|w| 64 - w.unsigned_abs().leading_zeros()).max().unwrap_or(0);
        let nonzero = rows.iter().flatten().filter(|&&w| w != 0).count();
        let by_powers = (steps.iter().map(Vec::len).sum::<usize>() + nonzero).div_ceil(LANES) as u64;
        let by_planes = super::planes::plane_cost(bases.len(), rows.len(), bits);
        if bits >= 1 && by_planes.products < by_powers {
            #[cfg(test)]
            PLANES_TAKEN.with(|c| c.set(c.get() + 1));
            let one = arena.get(one).to_vec();
            return self.combine_rows_by_planes(m, &converted, &one, rows, bits, by_planes.group);
        }
        // Each base's chain in its own lane, eight bases (longest chains
        // first) per task, the powers lane-resident until the chains end.
        let mut order: Vec<usize> = (0..bases.len()).filter(|&i| !steps[i].is_empty()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(steps[i].len()));
        let built: Vec<Vec<(usize, usize, Vec<u64>)>> = order
            .par_chunks(LANES)
            .map(|batch| {
                let chains: Vec<(&[u64], &[Step])> =
                    batch.iter().map(|&i| (converted[i].as_slice(), steps[i].as_slice())).collect();
                self.power_chains(&chains, m)
            })
            .collect();
        for (batch, results) in order.chunks(LANES).zip(built) {
            for (lane, d, digits) in results {
                power[batch[lane]][d] = Some(arena.push(&digits));
            }
        }
        // One chain per row and sign, longest first, eight in lockstep.
        let mut chains: Vec<(usize, bool, Vec<usize>)> = Vec::with_capacity(2 * rows.len());
        for (r, row) in rows.iter().enumerate() {
            for negative in [false, true] {
                let terms: Vec<usize> = row
                    .iter()
                    .enumerate()
                    .filter(|&(_, &w)| w != 0 && (w < 0) == negative)
                    .map(|(i, &w)| {
                        power[i][w.unsigned_abs() as usize].expect("every magnitude of the rows was built")
                    })
                    .collect();
                if !terms.is_empty() {
                    chains.push((r, negative, terms));
                }
            }
        }
        chains.sort_by_key(|c| std::cmp::Reverse(c.2.len()));
        let products: Vec<Vec<u64>> = chains
            .par_chunks(LANES)
            .flat_map_iter(|batch| {
                let lists: Vec<Vec<&[u64]>> =
                    batch.iter().map(|(_, _, terms)| terms.iter().map(|&t| arena.get(t)).collect()).collect();
                self.chain_products_mont(&lists, arena.get(one), m)
            })
            .collect();
        let mut pos: Vec<Option<&[u64]>> = vec![None; rows.len()];
        let mut neg: Vec<(usize, &[u64])> = Vec::new();
        for ((r, negative, _), p) in chains.iter().zip(&products) {
            if *negative {
                neg.push((*r, p));
            } else {
                pos[*r] = Some(p);
            }
        }
        // The negative parts' inverses, by Montgomery's trick in a few
        // independent parts (one per thread).
        let part = neg.len().div_ceil(rayon::current_num_threads()).max(4 * LANES);
        let inverses: Vec<Vec<u64>> = neg
            .par_chunks(part)
            .flat_map_iter(|c| self.invert_many_mont(&c.iter().map(|&(_, x)| x).collect::<Vec<_>>(), m))
            .collect();
        let mut inverse: Vec<Option<&[u64]>> = vec![None; rows.len()];
        for (&(r, _), x) in neg.iter().zip(&inverses) {
            inverse[r] = Some(x);
        }
        // pos * neg^-1, converted out of Montgomery form.
        let finals: Vec<Vec<&[u64]>> = (0..rows.len())
            .map(|r| {
                let p = pos[r].unwrap_or(arena.get(one));
                inverse[r].map_or_else(|| vec![p], |q| vec![p, q])
            })
            .collect();
        finals
            .par_chunks(LANES)
            .flat_map_iter(|batch| self.chain_products(batch, arena.get(one), m))
            .collect()
    }
}

impl Ifma {
    /// Up to eight addition chains in lockstep, one per lane: lane l starts
    /// from x_l (Montgomery digits) and its step k sets x_l^d = x_l^e * x_l^f.
    /// Returns every power built, as (lane, d, digits).
    fn power_chains(self, chains: &[(&[u64], &[Step])], m: &Modulus8) -> Vec<(usize, usize, Vec<u64>)> {
        let n = m.digits();
        let longest = chains.iter().map(|c| c.1.len()).max().unwrap_or(0);
        let x = lanes::transpose(std::array::from_fn(|l| chains.get(l).map_or(&[][..], |c| c.0)), n);
        // made[l][d]: the step that built x_l^d.
        let mut made: Vec<Vec<Option<usize>>> =
            chains.iter().map(|c| vec![None; c.1.iter().map(|s| s.0).max().unwrap_or(1) + 1]).collect();
        let mut built: Vec<lanes::Lanes> = Vec::with_capacity(longest);
        let (mut a, mut b) = (vec![lanes::zero_lanes(); n], vec![lanes::zero_lanes(); n]);
        let mut t = lanes::scratch(m);
        for k in 0..longest {
            for (l, (_, steps)) in chains.iter().enumerate() {
                // A lane whose chain has ended multiplies x by x (discarded).
                let (e, f) = steps.get(k).map_or((1, 1), |s| (s.1, s.2));
                let source = |d: usize| match d {
                    1 => &x,
                    _ => &built[made[l][d].expect("a chain step uses only powers built before it")],
                };
                copy_lane(&mut a, source(e), l);
                copy_lane(&mut b, source(f), l);
            }
            let mut p = vec![lanes::zero_lanes(); n];
            // SAFETY: an `Ifma` exists only when the CPU has AVX-512F and IFMA.
            unsafe { lanes::mul(&mut p, &a, &b, m, &mut t) };
            built.push(p);
            for (l, (_, steps)) in chains.iter().enumerate() {
                if let Some(&(d, _, _)) = steps.get(k) {
                    made[l][d] = Some(k);
                }
            }
        }
        let mut out = Vec::new();
        for (l, (_, steps)) in chains.iter().enumerate() {
            for (k, &(d, _, _)) in steps.iter().enumerate() {
                let rows: &[[u64; LANES]] = bytemuck::cast_slice(&built[k]);
                out.push((l, d, rows.iter().map(|r| r[l]).collect()));
            }
        }
        out
    }
}

/// Copies lane `l` of `from` into lane `l` of `to`.
fn copy_lane(to: &mut [std::arch::x86_64::__m512i], from: &[std::arch::x86_64::__m512i], l: usize) {
    let to: &mut [[u64; LANES]] = bytemuck::cast_slice_mut(to);
    let from: &[[u64; LANES]] = bytemuck::cast_slice(from);
    for (t, f) in to.iter_mut().zip(from) {
        t[l] = f[l];
    }
}

/// Pippenger's window for `terms` terms of `bits`-bit magnitudes on eight
/// lanes: the one with the fewest steps. The bucket entries are shared by
/// eight lanes; each (sign, window) pair's running sum is one lane, two
/// products per bucket; the windows are joined by c squarings each.
fn lane_window(terms: usize, bits: u32) -> u32 {
    let steps = |c: u32| -> u64 {
        let windows = bits.div_ceil(c) as u64;
        let entries = (windows * terms as u64).div_ceil(8);
        let running = (2 * windows).div_ceil(8) * 2 * ((1u64 << c) - 1);
        entries + running + u64::from(c) * windows
    };
    (1..=bits.clamp(1, 12)).min_by_key(|&c| steps(c)).unwrap_or(1)
}

impl Ifma {
    /// prod_i bases_i^(w_i) mod m for one row of signed weights (bases below
    /// the broadcast modulus m, units): Pippenger's bucket method with its
    /// independent products on eight lanes. The buckets of every (sign,
    /// window) pair are chains run in lockstep; each pair's running sum is a
    /// lane (or two: halves, when that fills the lanes); the pairs' sums are
    /// put together by a few dozen products on the one-number kernel
    /// ([`single`]) and one GMP inversion.
    pub(crate) fn linear_combination(
        self,
        m: &Modulus8,
        single: &SingleModulus,
        bases: &[&Integer],
        weights: &[i64],
    ) -> Integer {
        let terms: Vec<(usize, u64, bool)> = weights
            .iter()
            .enumerate()
            .filter(|&(_, &w)| w != 0)
            .map(|(i, &w)| (i, w.unsigned_abs(), w < 0))
            .collect();
        let bits = terms.iter().map(|&(_, e, _)| 64 - e.leading_zeros()).max().unwrap_or(0);
        if bits == 0 {
            return Integer::from(1u32);
        }
        let n = m.digits();
        let mut arena = Arena { digits: n, data: Vec::with_capacity((terms.len() + 1) * n) };
        let one = {
            let ones: &[[u64; LANES]] = bytemuck::cast_slice(m.one());
            arena.push(&ones.iter().map(|r| r[0]).collect::<Vec<u64>>())
        };
        // No conversion into Montgomery form: the digits of b stand for
        // b / R, so the products come out as prod b^w / R^(sum w), corrected
        // at the end by one power of R (a few GMP products instead of a
        // Montgomery product per eight bases).
        for &(i, _, _) in &terms {
            arena.push(&super::lanes::to_radix52(bases[i], n));
        }
        let shift: i128 =
            terms.iter().map(|&(_, e, negative)| if negative { -(e as i128) } else { e as i128 }).sum();
        let c = lane_window(terms.len(), bits);
        let windows = bits.div_ceil(c) as usize;
        let size = (1usize << c) - 1;
        // chains[(sign * windows + w) * size + d - 1]: the bases of bucket d.
        let mut chains: Vec<Vec<usize>> = vec![Vec::new(); 2 * windows * size];
        for (t, &(_, e, negative)) in terms.iter().enumerate() {
            for w in 0..windows {
                let d = ((e >> (w as u32 * c)) as usize) & size;
                if d != 0 {
                    chains[(usize::from(negative) * windows + w) * size + d - 1].push(t + 1);
                }
            }
        }
        let mut order: Vec<usize> = (0..chains.len()).filter(|&b| !chains[b].is_empty()).collect();
        order.sort_by_key(|&b| std::cmp::Reverse(chains[b].len()));
        let filled: Vec<Vec<u64>> = order
            .par_chunks(LANES)
            .flat_map_iter(|batch| {
                let lists: Vec<Vec<&[u64]>> =
                    batch.iter().map(|&b| chains[b].iter().map(|&t| arena.get(t)).collect()).collect();
                self.chain_products_mont(&lists, arena.get(one), m)
            })
            .collect();
        let mut bucket: Vec<Option<usize>> = vec![None; chains.len()];
        for (&b, x) in order.iter().zip(&filled) {
            bucket[b] = Some(arena.push(x));
        }
        // One running sum per (sign, window) pair, from the top digit down.
        // With four pairs or fewer, each is split in halves so that all
        // eight lanes work: sum_d d B_d = sum_top (d - h) B_d
        // + h sum_top B_d + sum_bottom d B_d, the bottom half d = 1..=h.
        let pairs: Vec<Vec<Option<&[u64]>>> = (0..2 * windows)
            .map(|p| (1..=size).rev().map(|d| bucket[p * size + d - 1].map(|i| arena.get(i))).collect())
            .collect();
        let h = if 2 * pairs.len() <= LANES { size / 2 } else { 0 };
        let lists: Vec<&[Option<&[u64]>]> = match h {
            0 => pairs.iter().map(Vec::as_slice).collect(),
            _ => pairs.iter().flat_map(|p| [&p[..size - h], &p[size - h..]]).collect(),
        };
        let sums: Vec<(Vec<u64>, Vec<u64>)> = lists
            .par_chunks(LANES)
            .flat_map_iter(|batch| self.running_sums(batch, arena.get(one), m))
            .collect();
        // The rest, a few dozen sequential products, one number at a time:
        // Horner over the windows per sign, then pos / neg * R^shift.
        // SAFETY: an `Ifma` exists only on a CPU with AVX-512F and IFMA.
        unsafe {
            let value = |digits: &[u64]| SingleValue::from_digits(digits, single);
            let pair_sum = |p: usize| match h {
                0 => value(&sums[p].0),
                _ => {
                    let (top, bottom) = (&sums[2 * p], &sums[2 * p + 1]);
                    let lift = single::pow_public(&value(&top.1), h as u128, single);
                    single::mul(&single::mul(&value(&top.0), &lift, single), &value(&bottom.0), single)
                }
            };
            let combine = |sign: usize| {
                let mut acc = pair_sum(sign * windows + windows - 1);
                for w in (0..windows - 1).rev() {
                    acc = single::square_times(&acc, c, single);
                    acc = single::mul(&acc, &pair_sum(sign * windows + w), single);
                }
                acc
            };
            let (pos, neg) = (combine(0), combine(1));
            let inv = single::from_mont(&neg, single)
                .invert(single.modulus())
                .expect("a product of ciphertexts is a unit mod n^2");
            let quotient = single::mul(&pos, &single::to_mont(&inv, single), single);
            // pos / neg = prod b^w / R^shift: multiply by R^shift.
            single::from_mont(&single::mul(&quotient, &single::r_power(shift, single), single), single)
        }
    }
}

#[cfg(test)]
mod tests {
    use rug::Integer;

    use super::{PLANES_TAKEN, chain_steps};
    use crate::ifma::lanes::LANES;
    use crate::ifma::tests::{gmp_combination, ifma, xorshift};

    /// Both algorithms through `combine_rows`: sparse rows take the powers,
    /// a dense uniform layer the bit planes; both equal GMP.
    #[test]
    fn combine_rows_takes_the_cheaper_algorithm_and_both_are_exact() {
        let Some(ifma) = ifma() else { return };
        let modulus = (Integer::from(1u32) << 1023u32).next_prime();
        let m = ifma.modulus([&modulus; LANES], 1024, false);
        let mut next = xorshift(0x1234_5678_9abc_def1);
        let bases: Vec<Integer> =
            (0..64).map(|_| (Integer::from(next()) << 500u32) + next() + 1u32).collect();
        // Sparse rows (one weight in eight non-zero): the powers are cheaper.
        let narrow: Vec<Vec<i64>> = (0..64)
            .map(|_| {
                (0..64)
                    .map(|_| if next().is_multiple_of(8) { (next() % 255) as i64 - 127 } else { 0 })
                    .collect()
            })
            .collect();
        let wide: Vec<Vec<i64>> =
            (0..64).map(|_| (0..64).map(|_| (next() % 255) as i64 - 127).collect()).collect();
        for (rows, planes) in [(&narrow, false), (&wide, true)] {
            let before = PLANES_TAKEN.with(|c| c.get());
            let got = ifma.combine_rows(&m, &bases, rows);
            assert_eq!(PLANES_TAKEN.with(|c| c.get()) > before, planes, "bit planes expected: {planes}");
            for (row, g) in rows.iter().zip(&got) {
                assert_eq!(*g, gmp_combination(&bases, row, &modulus));
            }
        }
    }

    /// Single combinations for every weight width: windows of one to twelve
    /// bits, running sums split in halves (four pairs or fewer, halves of
    /// different lengths) or not, each equal to GMP.
    #[test]
    fn combinations_of_every_width_equal_gmp() {
        let Some(ifma) = ifma() else { return };
        let modulus = (Integer::from(1u32) << 2047u32).next_prime();
        let m = ifma.modulus([&modulus; LANES], 2048, false);
        let single = ifma.single_modulus(&modulus).expect("2048 bits fit");
        let mut next = xorshift(0x1234_5678_9abc_def1);
        let bases: Vec<Integer> =
            (0..22).map(|_| (Integer::from(next()) << 500u32) + next() + 1u32).collect();
        let refs: Vec<&Integer> = bases.iter().collect();
        for bits in (1u32..=12).chain([20, 40, 64]) {
            // 64: any i64, mostly i64::MAX, so that the weights' sum (the
            // power of R that corrects the result) needs more than 64 bits.
            let row: Vec<i64> = match bits {
                64 => (0..22).map(|i| [i64::MAX, i64::MAX, i64::MIN, next() as i64][i % 4]).collect(),
                _ => (0..22).map(|_| (next() as i64) % (1i64 << bits)).collect(),
            };
            let got = ifma.linear_combination(&m, &single, &refs, &row);
            assert_eq!(got, gmp_combination(&bases, &row, &modulus), "{bits}-bit weights");
        }
    }

    #[test]
    fn chains_reach_every_wanted_power_from_earlier_ones() {
        let wanted = [1usize, 2, 3, 7, 64, 100, 127];
        let steps = chain_steps(&wanted);
        let mut known = [false; 128];
        known[1] = true;
        for (d, e, f) in steps {
            assert!(known[e] && known[f] && e + f == d && !known[d]);
            known[d] = true;
        }
        assert!(wanted.iter().all(|&d| known[d]));
    }
}
