//! ppdnn's own modular arithmetic on AVX-512 IFMA: eight independent
//! Montgomery products at once (see [`lanes`]), and on them batched
//! constant-time exponentiation ([`pow`]). The GMP path stays as the
//! portable fallback and as the oracle every result here is tested against.
//!
//! This module is the only place that calls the `#[target_feature]`
//! kernels, and [`Ifma`] the only way to reach it: a value of that type
//! exists only once the CPU was seen to have AVX-512F and IFMA.
#![allow(unsafe_code)]

pub(crate) mod lanes;
mod linear;
mod planes;
pub(crate) mod pow;
pub(crate) mod single;

use rug::Integer;
use rug::integer::Order;

use self::lanes::{LANES, Modulus8};
pub use self::pow::OpCount;
use self::pow::SharedTable;
use self::single::SingleModulus;

/// Proof that this CPU has AVX-512F and AVX-512 IFMA: the token every IFMA
/// entry point takes, so that none can run without the check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ifma(());

impl Ifma {
    /// The token, if the CPU has the instructions (checked once per call of
    /// `is_x86_feature_detected!`, which caches).
    pub(crate) fn detect() -> Option<Ifma> {
        (std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512ifma"))
            .then_some(Ifma(()))
    }

    /// Montgomery constants for eight moduli (see [`Modulus8::new`]).
    pub(crate) fn modulus(self, moduli: [&Integer; LANES], bits: u32, secret: bool) -> Modulus8 {
        Modulus8::new(moduli, bits, secret)
    }

    /// Constants for products of one number at a time mod m (odd, > 1);
    /// None when m is too large for [`single`] (more than 16,586 bits).
    pub(crate) fn single_modulus(self, m: &Integer) -> Option<SingleModulus> {
        SingleModulus::new(m)
    }

    /// prod_s x_s^(2^(shift * s)) mod m by Horner's rule, from the last x
    /// down: (x_{S-1}^(2^shift) x_{S-2})^(2^shift) ... x_0, one number at a
    /// time (the chain is sequential). Every x below m; 1 for no x.
    pub(crate) fn horner(self, xs: &[&Integer], shift: u32, m: &SingleModulus) -> Integer {
        let Some((last, rest)) = xs.split_last() else { return Integer::from(1u32) };
        // SAFETY: as in `pow_lanes`.
        unsafe {
            let mut acc = single::to_mont(last, m);
            for x in rest.iter().rev() {
                acc = single::square_times(&acc, shift, m);
                acc = single::mul(&acc, &single::to_mont(x, m), m);
            }
            single::from_mont(&acc, m)
        }
    }

    /// base_i^e_i mod m_i for up to eight lanes (bases below their moduli,
    /// exponents non-negative and below 2^bits), constant-time in the
    /// exponents: the sequence of operations depends on `bits` only. Unused
    /// lanes compute 1^0. Returns the results and the operations performed.
    pub(crate) fn pow_lanes(
        self,
        bases: &[&Integer],
        exps: &[&Integer],
        bits: u32,
        m: &Modulus8,
    ) -> (Vec<Integer>, OpCount) {
        assert!(
            bases.len() <= LANES && bases.len() == exps.len(),
            "at most eight lanes, one exponent per base"
        );
        let unit = Integer::from(1u32);
        let xs: [&Integer; LANES] = std::array::from_fn(|l| bases.get(l).copied().unwrap_or(&unit));
        let mut limbs: Vec<Vec<u64>> = (0..LANES)
            .map(|l| exps.get(l).map(|e| e.to_digits::<u64>(Order::Lsf)).unwrap_or_default())
            .collect();
        let refs: [&[u64]; LANES] = std::array::from_fn(|l| limbs[l].as_slice());
        let mut count = OpCount::default();
        // SAFETY: an `Ifma` exists only when the CPU has AVX-512F and IFMA,
        // the features these functions are compiled for.
        let out = unsafe {
            let mut t = lanes::scratch(m);
            let mut base = lanes::lanes_from(xs, m.digits());
            let mont = lanes::to_mont(&base, m, &mut t);
            lanes::wipe_lanes(&mut base);
            let mut r = pow::pow(&mont, &refs, bits, m, &mut count);
            let out = lanes::from_mont(&r, m, &mut t);
            lanes::wipe_lanes(&mut r);
            out
        };
        limbs.iter_mut().for_each(zeroize::Zeroize::zeroize);
        (out.into_iter().take(bases.len()).collect(), count)
    }

    /// a_i * b_i mod m_i for up to eight lanes (operands below their moduli).
    #[cfg(test)]
    pub(crate) fn mul_lanes(self, a: &[&Integer], b: &[&Integer], m: &Modulus8) -> Vec<Integer> {
        assert!(a.len() <= LANES && a.len() == b.len(), "at most eight lanes, two operands each");
        let unit = Integer::from(1u32);
        let pick = |xs: &[&Integer]| -> [Integer; LANES] {
            std::array::from_fn(|l| xs.get(l).map_or_else(|| unit.clone(), |x| Integer::from(*x)))
        };
        let (xa, xb) = (pick(a), pick(b));
        // SAFETY: as in `pow_lanes`.
        let mut out = unsafe {
            let mut t = lanes::scratch(m);
            let n = m.digits();
            let ma = lanes::to_mont(&lanes::lanes_from(std::array::from_fn(|l| &xa[l]), n), m, &mut t);
            let lb = lanes::lanes_from(std::array::from_fn(|l| &xb[l]), n);
            // (aR) b / R = ab, below 2m.
            let mut p = vec![lanes::zero_lanes(); n];
            lanes::mul(&mut p, &ma, &lb, m, &mut t);
            lanes::lanes_to(&p)
        };
        for (v, modulus) in out.iter_mut().zip(m.moduli()) {
            if *v >= *modulus {
                *v -= modulus;
            }
        }
        out.into_iter().take(a.len()).collect()
    }

    /// The Montgomery forms (digits) of up to eight values below their moduli.
    pub(crate) fn to_mont_digits(self, xs: &[&Integer], m: &Modulus8) -> Vec<Vec<u64>> {
        assert!(xs.len() <= LANES, "at most eight lanes");
        let unit = Integer::from(1u32);
        let all: [&Integer; LANES] = std::array::from_fn(|l| xs.get(l).copied().unwrap_or(&unit));
        // SAFETY: as in `pow_lanes`.
        let mont = unsafe {
            let mut t = lanes::scratch(m);
            lanes::to_mont(&lanes::lanes_from(all, m.digits()), m, &mut t)
        };
        lanes::untranspose(&mont).into_iter().take(xs.len()).collect()
    }

    /// Montgomery products of up to eight pairs of Montgomery forms (digits).
    #[cfg(test)]
    pub(crate) fn mul_digits(self, pairs: &[(&[u64], &[u64])], m: &Modulus8) -> Vec<Vec<u64>> {
        assert!(pairs.len() <= LANES, "at most eight lanes");
        let n = m.digits();
        let one: &[u64] = &[];
        let a = lanes::transpose(std::array::from_fn(|l| pairs.get(l).map_or(one, |p| p.0)), n);
        let b = lanes::transpose(std::array::from_fn(|l| pairs.get(l).map_or(one, |p| p.1)), n);
        let mut out = vec![lanes::zero_lanes(); n];
        // SAFETY: as in `pow_lanes`.
        unsafe {
            let mut t = lanes::scratch(m);
            lanes::mul(&mut out, &a, &b, m, &mut t);
        }
        lanes::untranspose(&out).into_iter().take(pairs.len()).collect()
    }

    /// The products of up to eight chains of Montgomery forms (each chain
    /// non-empty), run in lockstep (a finished chain multiplies by `one`,
    /// Montgomery's 1), converted out and fully reduced.
    pub(crate) fn chain_products(self, chains: &[Vec<&[u64]>], one: &[u64], m: &Modulus8) -> Vec<Integer> {
        let acc = self.chain_lanes(chains, one, m);
        // SAFETY: as in `pow_lanes`.
        let out = unsafe { lanes::from_mont(&acc, m, &mut lanes::scratch(m)) };
        out.into_iter().take(chains.len()).collect()
    }

    /// Like [`Ifma::chain_products`], but the products stay in Montgomery form (digits).
    pub(crate) fn chain_products_mont(
        self,
        chains: &[Vec<&[u64]>],
        one: &[u64],
        m: &Modulus8,
    ) -> Vec<Vec<u64>> {
        let acc = self.chain_lanes(chains, one, m);
        lanes::untranspose(&acc).into_iter().take(chains.len()).collect()
    }

    /// The lockstep chain products of [`Ifma::chain_products`], still in lanes.
    fn chain_lanes(self, chains: &[Vec<&[u64]>], one: &[u64], m: &Modulus8) -> lanes::Lanes {
        assert!(chains.len() <= LANES, "at most eight lanes");
        let n = m.digits();
        let longest = chains.iter().map(Vec::len).max().unwrap_or(0);
        let operand = |k: usize, out: &mut [std::arch::x86_64::__m512i]| {
            lanes::transpose_into(
                out,
                std::array::from_fn(|l| chains.get(l).and_then(|c| c.get(k)).copied().unwrap_or(one)),
            )
        };
        // SAFETY: as in `pow_lanes`.
        unsafe {
            let mut t = lanes::scratch(m);
            let mut acc = vec![lanes::zero_lanes(); n];
            operand(0, &mut acc);
            let mut tmp = vec![lanes::zero_lanes(); n];
            let mut x = vec![lanes::zero_lanes(); n];
            for k in 1..longest {
                operand(k, &mut x);
                lanes::mul(&mut tmp, &acc, &x, m, &mut t);
                std::mem::swap(&mut acc, &mut tmp);
            }
            acc
        }
    }

    /// The inverses of units given in Montgomery form (digits) under the
    /// broadcast modulus `m`, in Montgomery form: Montgomery's trick on
    /// eight lanes (value j in lane j mod 8; prefix products in lockstep,
    /// the eight lanes' totals inverted with one GMP inversion, then back
    /// down), about three products per value instead of an inversion each.
    pub(crate) fn invert_many_mont(self, xs: &[&[u64]], m: &Modulus8) -> Vec<Vec<u64>> {
        let n = m.digits();
        let steps = xs.len().div_ceil(LANES);
        if steps == 0 {
            return Vec::new();
        }
        let ones: &[[u64; LANES]] = bytemuck::cast_slice(m.one());
        let one: Vec<u64> = ones.iter().map(|r| r[0]).collect();
        let operand = |s: usize| -> lanes::Lanes {
            lanes::transpose(std::array::from_fn(|l| xs.get(s * LANES + l).copied().unwrap_or(&one)), n)
        };
        let mut out = vec![Vec::new(); xs.len()];
        // SAFETY: as in `pow_lanes`.
        unsafe {
            let mut t = lanes::scratch(m);
            let mut prefix: Vec<lanes::Lanes> = Vec::with_capacity(steps);
            prefix.push(operand(0));
            for s in 1..steps {
                let mut p = vec![lanes::zero_lanes(); n];
                lanes::mul(&mut p, &prefix[s - 1], &operand(s), m, &mut t);
                prefix.push(p);
            }
            let totals = lanes::from_mont(&prefix[steps - 1], m, &mut t);
            let inverses = invert_lanes(&totals, &m.moduli()[0]);
            // inv holds (x_0 ... x_s)^-1 per lane, in Montgomery form.
            let mut inv =
                lanes::to_mont(&lanes::lanes_from(std::array::from_fn(|l| &inverses[l]), n), m, &mut t);
            let mut single = vec![lanes::zero_lanes(); n];
            let mut next = vec![lanes::zero_lanes(); n];
            for s in (0..steps).rev() {
                let value = if s > 0 {
                    lanes::mul(&mut single, &inv, &prefix[s - 1], m, &mut t);
                    &single
                } else {
                    &inv
                };
                for (l, digits) in lanes::untranspose(value).into_iter().enumerate() {
                    if let Some(slot) = out.get_mut(s * LANES + l) {
                        *slot = digits;
                    }
                }
                if s > 0 {
                    lanes::mul(&mut next, &inv, &operand(s), m, &mut t);
                    std::mem::swap(&mut inv, &mut next);
                }
            }
        }
        out
    }

    /// Pippenger's running sums on up to eight lanes: lane l gets
    /// prod_d B_{l,d}^d over the digits d = len..1, where `buckets[l][len - d]`
    /// is B_{l,d} in Montgomery form, or None for an empty bucket (1).
    /// Two products per digit: running *= B_d, total *= running; lists of
    /// different lengths end together. Returns each lane's total and its
    /// last running product (prod_d B_{l,d}), in Montgomery form.
    pub(crate) fn running_sums(
        self,
        buckets: &[&[Option<&[u64]>]],
        one: &[u64],
        m: &Modulus8,
    ) -> Vec<(Vec<u64>, Vec<u64>)> {
        assert!(buckets.len() <= LANES, "at most eight lanes");
        let n = m.digits();
        let longest = buckets.iter().map(|b| b.len()).max().unwrap_or(0);
        // SAFETY: as in `pow_lanes`.
        let out = unsafe {
            let mut t = lanes::scratch(m);
            let ones = lanes::transpose([one; LANES], n);
            let (mut running, mut total) = (ones.clone(), ones);
            let mut tmp = vec![lanes::zero_lanes(); n];
            let mut b = vec![lanes::zero_lanes(); n];
            for k in 0..longest {
                lanes::transpose_into(
                    &mut b,
                    std::array::from_fn(|l| {
                        // Shorter lists start later: 1s before their top
                        // digit leave both products at 1, while 1s after
                        // their last digit would multiply the total again.
                        buckets
                            .get(l)
                            .and_then(|c| (k + c.len()).checked_sub(longest).and_then(|j| c[j]))
                            .unwrap_or(one)
                    }),
                );
                lanes::mul(&mut tmp, &running, &b, m, &mut t);
                std::mem::swap(&mut running, &mut tmp);
                lanes::mul(&mut tmp, &total, &running, m, &mut t);
                std::mem::swap(&mut total, &mut tmp);
            }
            lanes::untranspose(&total).into_iter().zip(lanes::untranspose(&running))
        };
        out.take(buckets.len()).collect()
    }

    /// x_i^rounds mod m_i by `rounds` successive Montgomery products, the
    /// values kept in Montgomery form throughout (the throughput benchmark).
    pub(crate) fn power_by_products(self, x: &[&Integer], rounds: u64, m: &Modulus8) -> Vec<Integer> {
        assert!(x.len() <= LANES, "at most eight lanes");
        let unit = Integer::from(1u32);
        let xs: [&Integer; LANES] = std::array::from_fn(|l| x.get(l).copied().unwrap_or(&unit));
        // SAFETY: as in `pow_lanes`.
        let out = unsafe {
            let mut t = lanes::scratch(m);
            let n = m.digits();
            let mx = lanes::to_mont(&lanes::lanes_from(xs, n), m, &mut t);
            let mut acc = m.one().clone();
            let mut tmp = vec![lanes::zero_lanes(); n];
            for _ in 0..rounds {
                lanes::mul(&mut tmp, &acc, &mx, m, &mut t);
                std::mem::swap(&mut acc, &mut tmp);
            }
            lanes::from_mont(&acc, m, &mut t)
        };
        out.into_iter().take(x.len()).collect()
    }

    /// Squares x_i mod m_i for up to eight lanes, by the squaring kernel.
    #[cfg(test)]
    pub(crate) fn sqr_lanes(self, x: &[&Integer], m: &Modulus8) -> Vec<Integer> {
        assert!(x.len() <= LANES, "at most eight lanes");
        let unit = Integer::from(1u32);
        let xs: [&Integer; LANES] = std::array::from_fn(|l| x.get(l).copied().unwrap_or(&unit));
        // SAFETY: as in `pow_lanes`.
        let out = unsafe {
            let mut t = lanes::scratch(m);
            let n = m.digits();
            let mx = lanes::to_mont(&lanes::lanes_from(xs, n), m, &mut t);
            let mut s = vec![lanes::zero_lanes(); n];
            lanes::sqr(&mut s, &mx, m, &mut t);
            lanes::from_mont(&s, m, &mut t)
        };
        out.into_iter().take(x.len()).collect()
    }

    /// Converts into Montgomery form and straight back (tests the conversions).
    #[cfg(test)]
    pub(crate) fn round_trip_lanes(self, x: &[&Integer], m: &Modulus8) -> Vec<Integer> {
        let unit = Integer::from(1u32);
        let xs: [&Integer; LANES] = std::array::from_fn(|l| x.get(l).copied().unwrap_or(&unit));
        // SAFETY: as in `pow_lanes`.
        let out = unsafe {
            let mut t = lanes::scratch(m);
            let mx = lanes::to_mont(&lanes::lanes_from(xs, m.digits()), m, &mut t);
            lanes::from_mont(&mx, m, &mut t)
        };
        out.into_iter().take(x.len()).collect()
    }

    /// The fixed-base table for `base` with `window`-bit digits, for
    /// exponents of up to `exponent_bits` bits, under the broadcast modulus `m`.
    pub(crate) fn fixed_base_table(
        self,
        base: &Integer,
        exponent_bits: u32,
        window: u32,
        m: &Modulus8,
    ) -> FixedBaseLanes {
        let modulus = &m.moduli()[0];
        let rows = exponent_bits.max(1).div_ceil(window) as usize;
        let mut row_bases = Vec::with_capacity(rows);
        let mut b = Integer::from(base % modulus);
        for _ in 0..rows {
            row_bases.push(b.clone());
            for _ in 0..window {
                b.square_mut();
                b %= modulus;
            }
        }
        // SAFETY: as in `pow_lanes`.
        let table = unsafe { SharedTable::build(&row_bases, window, m) };
        FixedBaseLanes { table }
    }

    /// base^e_i for up to eight exponents below 2^exponent_bits, from the table.
    pub(crate) fn fixed_base_pow(
        self,
        table: &FixedBaseLanes,
        exps: &[&Integer],
        m: &Modulus8,
    ) -> (Vec<Integer>, OpCount) {
        assert!(exps.len() <= LANES, "at most eight lanes");
        let mut limbs: Vec<Vec<u64>> = (0..LANES)
            .map(|l| exps.get(l).map(|e| e.to_digits::<u64>(Order::Lsf)).unwrap_or_default())
            .collect();
        let refs: [&[u64]; LANES] = std::array::from_fn(|l| limbs[l].as_slice());
        let mut count = OpCount::default();
        // SAFETY: as in `pow_lanes`.
        let out = unsafe {
            let mut t = lanes::scratch(m);
            let mut r = table.table.pow(&refs, m, &mut count);
            let out = lanes::from_mont(&r, m, &mut t);
            lanes::wipe_lanes(&mut r);
            out
        };
        limbs.iter_mut().for_each(zeroize::Zeroize::zeroize);
        (out.into_iter().take(exps.len()).collect(), count)
    }
}

/// The inverses of eight units mod one modulus with one GMP inversion:
/// Montgomery's trick across the lanes (21 products instead of 7 inversions).
fn invert_lanes(xs: &[Integer; LANES], modulus: &Integer) -> [Integer; LANES] {
    let mut prefix: Vec<Integer> = Vec::with_capacity(LANES);
    prefix.push(xs[0].clone());
    for x in &xs[1..] {
        let next = Integer::from(&prefix[prefix.len() - 1] * x) % modulus;
        prefix.push(next);
    }
    let mut inv = Integer::from(prefix[LANES - 1].invert_ref(modulus).expect("a product of units is a unit"));
    let mut out: [Integer; LANES] = Default::default();
    for l in (1..LANES).rev() {
        out[l] = Integer::from(&inv * &prefix[l - 1]) % modulus;
        inv = Integer::from(&inv * &xs[l]) % modulus;
    }
    out[0] = inv;
    out
}

/// A fixed-base table in the IFMA layout (see [`Ifma::fixed_base_table`]).
pub(crate) struct FixedBaseLanes {
    table: SharedTable,
}

impl FixedBaseLanes {
    /// Bytes of the table.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.table.memory_bytes()
    }
}

#[cfg(test)]
mod tests;
