//! Many rows of weights over the same bases, by bit planes of offset
//! weights: the layers with many outputs (a dense layer's 120 rows over
//! 400 inputs), where per-base powers of every magnitude would cost more
//! than the rows themselves.
//!
//! With weights |w| < 2^b, every w + 2^b lies in [1, 2^(b+1)), so
//!
//!   prod_i x_i^(w_i) = prod_i x_i^(w_i + 2^b) * D^-1,  D = (prod_i x_i)^(2^b),
//!
//! one inverse shared by all rows instead of a division per row. The bases
//! are cut into groups of g; each group gets the table of its 2^g subset
//! products (2^g - g - 1 products, shared by all rows). A row is then
//! Horner's rule over the b + 1 bit planes of its offset weights: per plane,
//! a squaring and one table entry per group. Rows run eight in lockstep
//! (every row has the same sequence); the groups' tables are built eight
//! groups at a time, each table resident in its lane.

use rayon::prelude::*;
use rug::Integer;

use super::Ifma;
use super::lanes::{self, LANES, Lanes, Modulus8};

/// The largest group: tables of 256 entries.
const MAX_GROUP: u32 = 8;

/// The plan of a bit-plane evaluation: group size and cost in products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlaneCost {
    /// Bases per group.
    pub(crate) group: u32,
    /// Eight-lane products (tables, rows and the shared inverse).
    pub(crate) products: u64,
}

/// The cheapest group size for `bases` bases, `rows` rows and weights of
/// `bits` magnitude bits, counted in eight-lane products.
pub(crate) fn plane_cost(bases: usize, rows: usize, bits: u32) -> PlaneCost {
    let planes = u64::from(bits) + 1;
    let batches = rows.div_ceil(LANES) as u64;
    (1..=MAX_GROUP)
        .map(|g| {
            let groups = bases.div_ceil(g as usize) as u64;
            let tables = groups.div_ceil(LANES as u64) * ((1u64 << g) - u64::from(g) - 1);
            let per_batch = planes * groups + planes;
            let shared = (bases as u64).div_ceil(LANES as u64) + u64::from(bits);
            PlaneCost { group: g, products: tables + batches * per_batch + shared }
        })
        .min_by_key(|c| c.products)
        .expect("the range of group sizes is not empty")
}

impl Ifma {
    /// For each row, prod_i x_i^(row_i) mod m, by bit planes (see the
    /// module); `mont` holds the bases in Montgomery form, `one` is
    /// Montgomery's 1, weights have at most `bits` magnitude bits (>= 1).
    pub(crate) fn combine_rows_by_planes(
        self,
        m: &Modulus8,
        mont: &[Vec<u64>],
        one: &[u64],
        rows: &[Vec<i64>],
        bits: u32,
        group: u32,
    ) -> Vec<Integer> {
        let g = group as usize;
        let offset = 1i64 << bits;
        let tables: Vec<Vec<u64>> = mont
            .chunks(g)
            .collect::<Vec<_>>()
            .par_chunks(LANES)
            .flat_map_iter(|batch| self.subset_tables(batch, g, one, m))
            .collect();
        let inverse = self.offset_inverse(m, mont, one, bits);
        // Offset weights, row by row: all in [1, 2^(bits + 1)).
        let shifted: Vec<Vec<u64>> =
            rows.iter().map(|r| r.iter().map(|&w| (w + offset) as u64).collect()).collect();
        shifted
            .par_chunks(LANES)
            .flat_map_iter(|batch| self.rows_by_planes(m, &tables, g, batch, bits, one, &inverse))
            .collect()
    }

    /// The subset-product tables of up to eight groups (one per lane):
    /// entry s of a group's table (digits, 2^g entries of N) is the product
    /// of the group's bases whose bits are set in s.
    fn subset_tables(self, groups: &[&[Vec<u64>]], g: usize, one: &[u64], m: &Modulus8) -> Vec<Vec<u64>> {
        let n = m.digits();
        let size = 1usize << g;
        let base = |j: usize| -> Lanes {
            lanes::transpose(
                std::array::from_fn(|l| groups.get(l).and_then(|gr| gr.get(j)).map_or(one, Vec::as_slice)),
                n,
            )
        };
        let mut table: Vec<Lanes> = Vec::with_capacity(size);
        table.push(lanes::transpose([one; LANES], n));
        // SAFETY: an `Ifma` exists only when the CPU has AVX-512F and IFMA.
        unsafe {
            let mut t = lanes::scratch(m);
            for s in 1..size {
                let low = s.trailing_zeros() as usize;
                let rest = s & (s - 1);
                let entry = if rest == 0 {
                    base(low)
                } else {
                    let mut p = vec![lanes::zero_lanes(); n];
                    lanes::mul(&mut p, &table[rest], &table[1 << low], m, &mut t);
                    p
                };
                table.push(entry);
            }
        }
        let mut out = vec![Vec::with_capacity(size * n); groups.len()];
        for entry in &table {
            for (l, digits) in lanes::untranspose(entry).into_iter().enumerate().take(groups.len()) {
                out[l].extend_from_slice(&digits);
            }
        }
        out
    }

    /// D^-1 = (prod_i x_i)^-(2^bits) in Montgomery form (digits).
    fn offset_inverse(self, m: &Modulus8, mont: &[Vec<u64>], one: &[u64], bits: u32) -> Vec<u64> {
        let modulus = &m.moduli()[0];
        let chains: Vec<Vec<&[u64]>> = (0..LANES)
            .map(|l| mont.iter().skip(l).step_by(LANES).map(Vec::as_slice).collect())
            .filter(|c: &Vec<&[u64]>| !c.is_empty())
            .collect();
        let parts = self.chain_products(&chains, one, m);
        let mut product = Integer::from(1u32);
        for p in parts {
            product *= p;
            product %= modulus;
        }
        for _ in 0..bits {
            product.square_mut();
            product %= modulus;
        }
        let inverse = product.invert(modulus).expect("a product of ciphertexts is a unit mod n^2");
        self.to_mont_digits(&[&inverse], m).swap_remove(0)
    }

    /// Up to eight rows (offset weights) in lockstep: Horner's rule over the
    /// bit planes, one table entry per group and plane, then times D^-1.
    #[allow(clippy::too_many_arguments)] // the pieces of one evaluation, prepared by the caller
    fn rows_by_planes(
        self,
        m: &Modulus8,
        tables: &[Vec<u64>],
        g: usize,
        rows: &[Vec<u64>],
        bits: u32,
        one: &[u64],
        inverse: &[u64],
    ) -> Vec<Integer> {
        let n = m.digits();
        let entry = |group: usize, plane: u32, lane: usize| -> &[u64] {
            let Some(row) = rows.get(lane) else { return one };
            let weights = &row[group * g..row.len().min((group + 1) * g)];
            let s = weights
                .iter()
                .enumerate()
                .fold(0usize, |s, (j, &w)| s | ((((w >> plane) & 1) as usize) << j));
            &tables[group][s * n..(s + 1) * n]
        };
        // SAFETY: as in `subset_tables`.
        let out = unsafe {
            let mut t = lanes::scratch(m);
            let mut acc = lanes::transpose([one; LANES], n);
            let mut tmp = vec![lanes::zero_lanes(); n];
            let mut x = vec![lanes::zero_lanes(); n];
            for plane in (0..=bits).rev() {
                if plane < bits {
                    lanes::sqr(&mut tmp, &acc, m, &mut t);
                    std::mem::swap(&mut acc, &mut tmp);
                }
                for group in 0..tables.len() {
                    lanes::transpose_into(&mut x, std::array::from_fn(|l| entry(group, plane, l)));
                    if plane == bits && group == 0 {
                        acc.copy_from_slice(&x);
                    } else {
                        lanes::mul(&mut tmp, &acc, &x, m, &mut t);
                        std::mem::swap(&mut acc, &mut tmp);
                    }
                }
            }
            let d = lanes::transpose([inverse; LANES], n);
            lanes::mul(&mut tmp, &acc, &d, m, &mut t);
            lanes::from_mont(&tmp, m, &mut t)
        };
        out.into_iter().take(rows.len()).collect()
    }
}

#[cfg(test)]
mod tests {
    use rug::Integer;

    use super::plane_cost;
    use crate::ifma::lanes::LANES;
    use crate::ifma::tests::{gmp_combination, ifma, xorshift};

    /// Every group size, weights of 1, 7 and 12 bits with their extremes,
    /// partial groups and partial batches of rows: equal to GMP's products
    /// of powers (negative exponents by inversion).
    #[test]
    fn bit_planes_match_gmp() {
        let Some(ifma) = ifma() else { return };
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        // A prime modulus of 1024 bits: every non-zero base is a unit.
        let modulus = (Integer::from(1u32) << 1023u32).next_prime();
        let m = ifma.modulus([&modulus; LANES], 1024, false);
        for (bases, rows, bits, group) in
            [(13, 9, 7, 1), (13, 9, 7, 3), (20, 17, 12, 8), (5, 1, 1, 2), (9, 8, 7, 4)]
        {
            let xs: Vec<Integer> =
                (0..bases).map(|_| (Integer::from(next()) << 64u32) + next() + 2u32).collect();
            let limit = (1i64 << bits) - 1;
            let weights: Vec<Vec<i64>> = (0..rows)
                .map(|r| {
                    (0..bases)
                        .map(|i| match (r + i) % 5 {
                            0 => limit,
                            1 => -limit,
                            2 => 0,
                            _ => (next() % (2 * limit as u64 + 1)) as i64 - limit,
                        })
                        .collect()
                })
                .collect();
            let mont: Vec<Vec<u64>> = xs
                .chunks(LANES)
                .flat_map(|c| ifma.to_mont_digits(&c.iter().collect::<Vec<_>>(), &m))
                .collect();
            let one: Vec<u64> =
                bytemuck::cast_slice::<_, [u64; LANES]>(m.one()).iter().map(|r| r[0]).collect();
            let got = ifma.combine_rows_by_planes(&m, &mont, &one, &weights, bits, group);
            for (r, row) in weights.iter().enumerate() {
                let want = gmp_combination(&xs, row, &modulus);
                assert_eq!(got[r], want, "row {r} of {rows}, {bases} bases, {bits} bits, groups of {group}");
            }
        }
    }

    #[test]
    fn the_cost_model_prefers_big_groups_for_many_rows_and_small_for_few() {
        let many = plane_cost(400, 120, 7);
        assert_eq!(many.group, 8);
        let few = plane_cost(400, 1, 7);
        assert!(few.group < many.group, "{few:?}");
        assert!(plane_cost(400, 120, 7).products < 120 * 400 / 8 * 2);
    }
}
