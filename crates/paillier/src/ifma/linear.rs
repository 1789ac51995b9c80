//! Linear combinations over shared bases on eight lanes: the server's
//! linear layers. The same algorithm as [`crate::SharedBases::for_rows`]
//! (per-base powers for the magnitudes the rows use, by addition chains,
//! then one product per non-zero weight), with its independent products
//! fed eight at a time: the chains' k-th steps of all bases form one level,
//! and the rows' products are chains run in lockstep, sorted by length.
//! Values stay in Montgomery form from the conversion of the bases to the
//! end of each chain.

use rayon::prelude::*;
use rug::Integer;

use super::Ifma;
use super::lanes::{LANES, Modulus8};

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

/// The steps (d, e, d - e) that build base^d for every wanted magnitude
/// from base^1, each step a product of two earlier powers: the symbolic
/// twin of `multiexp::power`.
fn chain_steps(wanted: &[usize]) -> Vec<(usize, usize, usize)> {
    let top = wanted.last().copied().unwrap_or(1).max(1);
    let mut known = vec![false; top + 1];
    known[1] = true;
    let mut steps = Vec::new();
    fn build(known: &mut [bool], steps: &mut Vec<(usize, usize, usize)>, d: usize, hint: usize) {
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
    pub(crate) fn combine_rows(self, m: &Modulus8, bases: &[Integer], rows: &[Vec<i64>]) -> Vec<Integer> {
        let n = m.digits();
        let modulus = &m.moduli()[0];
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
        // Level k: the k-th step of every base's chain.
        let levels = steps.iter().map(Vec::len).max().unwrap_or(0);
        for k in 0..levels {
            let work: Vec<(usize, usize, usize, usize)> = steps
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.get(k).map(|&(d, e, f)| (i, d, e, f)))
                .collect();
            let results: Vec<Vec<u64>> = work
                .par_chunks(LANES)
                .flat_map_iter(|batch| {
                    let pairs: Vec<(&[u64], &[u64])> = batch
                        .iter()
                        .map(|&(i, _, e, f)| {
                            let at = |d: usize| {
                                power[i][d].expect("a chain step uses only powers built before it")
                            };
                            (arena.get(at(e)), arena.get(at(f)))
                        })
                        .collect();
                    self.mul_digits(&pairs, m)
                })
                .collect();
            for (&(i, d, _, _), r) in work.iter().zip(&results) {
                power[i][d] = Some(arena.push(r));
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
        let products: Vec<Integer> = chains
            .par_chunks(LANES)
            .flat_map_iter(|batch| {
                let lists: Vec<Vec<&[u64]>> =
                    batch.iter().map(|(_, _, terms)| terms.iter().map(|&t| arena.get(t)).collect()).collect();
                self.chain_products(&lists, arena.get(one), m)
            })
            .collect();
        let mut pos = vec![Integer::from(1u32); rows.len()];
        let mut neg: Vec<Option<Integer>> = vec![None; rows.len()];
        for ((r, negative, _), p) in chains.iter().zip(products) {
            if *negative {
                neg[*r] = Some(p);
            } else {
                pos[*r] = p;
            }
        }
        pos.into_par_iter()
            .zip(neg)
            .map(|(p, q)| match q {
                None => p,
                Some(q) => {
                    let inv = q.invert(modulus).expect("a product of ciphertexts is a unit mod n^2");
                    (p * inv) % modulus
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::chain_steps;

    #[test]
    fn chains_reach_every_wanted_power_from_earlier_ones() {
        let wanted = [1usize, 2, 3, 7, 64, 100, 127];
        let steps = chain_steps(&wanted);
        let mut known = vec![false; 128];
        known[1] = true;
        for (d, e, f) in steps {
            assert!(known[e] && known[f] && e + f == d && !known[d]);
            known[d] = true;
        }
        assert!(wanted.iter().all(|&d| known[d]));
    }
}
