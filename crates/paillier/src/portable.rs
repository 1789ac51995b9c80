//! The portable backend: pure-Rust Montgomery arithmetic on crypto-bigint's
//! heap-allocated Montgomery forms, for targets that have neither GMP nor
//! AVX-512 (the browser's WebAssembly), and selectable on native with
//! `PPDNN_ARITH=portable` so that the tests can check it against the other
//! two, operation by operation.
//!
//! Exponentiations with secret exponents (decryption's CRT halves, the DJN
//! exponents of encryption) are constant-time in the exponent's value: a
//! fixed window over a fixed number of bits, and the fixed-base table's
//! entries read by a scan of the whole row. Public exponents (n in r^n, the
//! server's weights) may take variable time.

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Choice, CtAssign, Odd};
use zeroize::{Zeroize, Zeroizing};

use crate::int::Integer;

/// Bits of a limb of crypto-bigint on this target.
const LIMB_BITS: u32 = crypto_bigint::Limb::BITS;

/// Window of the fixed-base table for DJN randomness: 205 rows of 32
/// entries for a 1024-bit exponent (3.4 MB at 2048-bit keys).
const FIXED_BASE_WINDOW: u32 = 5;

/// An odd modulus above 1 with its Montgomery constants.
#[derive(Clone)]
pub(crate) struct Modulus {
    params: BoxedMontyParams,
    precision: u32,
}

impl std::fmt::Debug for Modulus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Modulus").field("precision", &self.precision).finish_non_exhaustive()
    }
}

impl Modulus {
    /// The constants for `m`. Callers pass the moduli of validated keys
    /// (n^2, p^2, q^2) or odd numbers above 1 they checked.
    pub(crate) fn new<I: Digits>(m: &I) -> Modulus {
        assert!(m.odd_above_one(), "a Montgomery modulus is odd and above 1");
        let precision = m.bits().div_ceil(LIMB_BITS) * LIMB_BITS;
        let odd = Odd::new(to_boxed(m, precision)).expect("checked odd above");
        Modulus { params: BoxedMontyParams::new(odd), precision }
    }

    /// x mod m in Montgomery form (x of any sign and size). A value
    /// already in [0, m) (every secret one: callers reduce them) is
    /// converted without making an integer copy of m.
    pub(crate) fn enter<I: Digits>(&self, x: &I) -> BoxedMontyForm {
        let m = self.params.modulus().as_ref();
        if !x.is_negative() && x.bits() <= self.precision {
            let mut b = to_boxed(x, self.precision);
            if b < *m {
                let form = BoxedMontyForm::new(b.clone(), &self.params);
                b.zeroize();
                return form;
            }
            b.zeroize();
        }
        let m: I = self.modulus();
        BoxedMontyForm::new(to_boxed(&x.reduced(&m), self.precision), &self.params)
    }

    /// The residue in [0, m) that `x` stands for (the temporaries wiped).
    pub(crate) fn leave<I: Digits>(&self, x: &BoxedMontyForm) -> I {
        let mut plain = x.retrieve();
        let out = from_boxed(&plain);
        plain.zeroize();
        out
    }

    /// The modulus as an integer.
    pub(crate) fn modulus<I: Digits>(&self) -> I {
        from_boxed(self.params.modulus().as_ref())
    }

    /// base^exp mod m, constant-time in the value of `exp` (below
    /// 2^exp_bits; only `exp_bits` shows in the time).
    pub(crate) fn pow_secret<I: Digits>(&self, base: &I, exp: &I, exp_bits: u32) -> I {
        debug_assert!(exp.bits() <= exp_bits);
        let mut e = to_boxed(exp, exp_bits.max(1).div_ceil(LIMB_BITS) * LIMB_BITS);
        let mut b = self.enter(base);
        let mut power = b.pow_bounded_exp(&e, exp_bits);
        let out = self.leave(&power);
        e.zeroize();
        b.zeroize();
        power.zeroize();
        out
    }

    /// base^exp mod m for a public exponent `exp` >= 0.
    pub(crate) fn pow_public<I: Digits>(&self, base: &I, exp: &I) -> I {
        self.pow_secret(base, exp, exp.bits())
    }

    /// The product of base_i^(e_i) mod m for small public exponents, by
    /// Pippenger's bucket method (see [`crate::multiexp`]); None for the
    /// empty product.
    pub(crate) fn multi_pow(&self, terms: &[(&Integer, u64)]) -> Option<Integer> {
        let entered: Vec<(BoxedMontyForm, u64)> = terms.iter().map(|&(b, e)| (self.enter(b), e)).collect();
        let refs: Vec<(&BoxedMontyForm, u64)> = entered.iter().map(|(b, e)| (b, *e)).collect();
        crate::multiexp::pippenger(&refs, self).map(|x| self.leave(&x))
    }
}

/// What the Montgomery arithmetic needs of an integer type: rug's on
/// native, the pure-Rust one ([`crate::int::portable_int`]) on WebAssembly
/// (and in its tests on native).
pub(crate) trait Digits: Sized {
    /// |self| as little-endian bytes.
    fn le_bytes(&self) -> Vec<u8>;
    /// The non-negative integer of these little-endian bytes.
    fn from_le_bytes(bytes: &[u8]) -> Self;
    /// self mod m, in [0, m).
    fn reduced(&self, m: &Self) -> Self;
    /// Bits of |self|.
    fn bits(&self) -> u32;
    /// Whether self is odd and above 1.
    fn odd_above_one(&self) -> bool;
    /// Whether self is below zero.
    fn is_negative(&self) -> bool;
}

macro_rules! digits {
    ($t:ty, $order:expr) => {
        impl Digits for $t {
            fn le_bytes(&self) -> Vec<u8> {
                self.to_digits::<u8>($order)
            }
            fn from_le_bytes(bytes: &[u8]) -> Self {
                <$t>::from_digits(bytes, $order)
            }
            fn reduced(&self, m: &Self) -> Self {
                if *self >= 0 && self < m {
                    return self.clone();
                }
                let r = <$t>::from(self % m);
                if r < 0 { r + m } else { r }
            }
            fn bits(&self) -> u32 {
                self.significant_bits()
            }
            fn odd_above_one(&self) -> bool {
                self.is_odd() && *self > 1
            }
            fn is_negative(&self) -> bool {
                *self < 0
            }
        }
    };
}

#[cfg(not(target_arch = "wasm32"))]
digits!(rug::Integer, rug::integer::Order::Lsf);
#[cfg(any(target_arch = "wasm32", test, feature = "portable-int"))]
digits!(crate::int::portable_int::Integer, crate::int::portable_int::Order::Lsf);

impl crate::multiexp::Ring for Modulus {
    type Element = BoxedMontyForm;

    fn mul_assign(&self, acc: &mut BoxedMontyForm, x: &BoxedMontyForm) {
        *acc = acc.mul(x);
    }

    fn square_assign(&self, acc: &mut BoxedMontyForm) {
        *acc = acc.square();
    }
}

/// Powers of one base with secret exponents of a fixed size from a table
/// (Montgomery forms): row i holds base^(d * 2^(w i)) for every w-bit digit
/// d, and an exponent's power is the product of one entry per row, each
/// selected by scanning its whole row.
pub(crate) struct FixedBase {
    modulus: Modulus,
    rows: Vec<Vec<BoxedUint>>,
    exp_bits: u32,
}

impl FixedBase {
    /// The table of `base` for exponents below 2^exp_bits.
    pub(crate) fn new(base: &Integer, exp_bits: u32, modulus: Modulus) -> FixedBase {
        let w = FIXED_BASE_WINDOW;
        let one = BoxedMontyForm::one(&modulus.params);
        let mut g = modulus.enter(base);
        let rows = (0..exp_bits.div_ceil(w))
            .map(|_| {
                let mut row = Vec::with_capacity(1 << w);
                let mut x = one.clone();
                for _ in 0..1u32 << w {
                    row.push(x.as_montgomery().clone());
                    x = x.mul(&g);
                }
                // x is now g^(2^w): the next row's base.
                g = x;
                row
            })
            .collect();
        FixedBase { modulus, rows, exp_bits }
    }

    /// base^exp mod m for a secret exp below 2^exp_bits: the same products
    /// and reads whatever its value.
    pub(crate) fn pow(&self, exp: &Integer) -> Integer {
        debug_assert!(*exp >= 0 && exp.significant_bits() <= self.exp_bits);
        let w = FIXED_BASE_WINDOW;
        let mut bits = to_boxed(exp, self.rows.len() as u32 * w);
        let words = bits.as_words();
        let mut acc = BoxedMontyForm::one(&self.modulus.params);
        let mut entry = BoxedUint::zero_with_precision(self.modulus.precision);
        for (i, row) in self.rows.iter().enumerate() {
            let digit = window(words, i as u32 * w, w);
            for (d, candidate) in row.iter().enumerate() {
                entry.ct_assign(candidate, Choice::from_u32_eq(d as u32, digit));
                #[cfg(test)]
                tests::SCANNED.with(|c| c.set(c.get() + 1));
            }
            #[cfg(test)]
            tests::PRODUCTS.with(|c| c.set(c.get() + 1));
            let mut factor = BoxedMontyForm::from_montgomery(entry.clone(), &self.modulus.params);
            acc = acc.mul(&factor);
            factor.zeroize();
        }
        let out = self.modulus.leave(&acc);
        bits.zeroize();
        entry.zeroize();
        acc.zeroize();
        out
    }

    /// Bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.rows.iter().map(|r| r.len() * self.modulus.precision as usize / 8).sum()
    }
}

/// The `w` bits of a little-endian word array from bit `start` (w < 32).
fn window(words: &[crypto_bigint::Word], start: u32, w: u32) -> u32 {
    let word_bits = crypto_bigint::Word::BITS;
    let mut out = 0u32;
    for k in 0..w {
        let bit = start + k;
        let word = words.get((bit / word_bits) as usize).copied().unwrap_or(0);
        out |= (((word >> (bit % word_bits)) & 1) as u32) << k;
    }
    out
}

/// |x| as a `BoxedUint` of `precision` bits (it must fit).
/// The byte buffers between the two representations are wiped after use.
fn to_boxed<I: Digits>(x: &I, precision: u32) -> BoxedUint {
    let bytes = Zeroizing::new(x.le_bytes());
    BoxedUint::from_le_slice(&bytes, precision.max(LIMB_BITS))
        .expect("the value fits the precision asked for")
}

fn from_boxed<I: Digits>(x: &BoxedUint) -> I {
    let bytes = Zeroizing::new(x.to_le_bytes().into_vec());
    I::from_le_bytes(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::int::Order;
    use proptest::prelude::*;

    thread_local! {
        /// Table entries [`FixedBase::pow`] has read, and products made.
        pub(super) static SCANNED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
        pub(super) static PRODUCTS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// The fixed-base power reads every entry of every row and makes one
    /// product per row whatever the exponent: the same counts for 0, 1,
    /// all ones and a random one.
    #[test]
    fn the_fixed_base_power_does_the_same_work_for_every_exponent() {
        let m = odd(&[0x5b; 64]);
        let table = FixedBase::new(&Integer::from(7u32), 256, Modulus::new(&m));
        let counts: Vec<(usize, usize)> = [
            Integer::new(),
            Integer::from(1u32),
            (Integer::from(1u32) << 256u32) - 1u32,
            Integer::from_digits(&[0xa7u8; 32], Order::Lsf),
        ]
        .iter()
        .map(|e| {
            SCANNED.with(|c| c.set(0));
            PRODUCTS.with(|c| c.set(0));
            assert_eq!(table.pow(e), Integer::from(Integer::from(7u32).pow_mod_ref(e, &m).unwrap()));
            (SCANNED.with(|c| c.get()), PRODUCTS.with(|c| c.get()))
        })
        .collect();
        let rows = 256usize.div_ceil(FIXED_BASE_WINDOW as usize);
        assert!(counts.iter().all(|&c| c == (rows << FIXED_BASE_WINDOW, rows)), "{counts:?}");
    }

    fn odd(bytes: &[u8]) -> Integer {
        let mut m = Integer::from_digits(bytes, Order::Lsf);
        m.set_bit(0, true);
        m.set_bit(bytes.len() as u32 * 8, true);
        m
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn pow_matches_gmp(m in prop::collection::vec(any::<u8>(), 1..80),
                           b in prop::collection::vec(any::<u8>(), 0..100),
                           e in prop::collection::vec(any::<u8>(), 0..40)) {
            let m = odd(&m);
            let b = Integer::from_digits(&b, Order::Lsf);
            let e = Integer::from_digits(&e, Order::Lsf);
            let modulus = Modulus::new(&m);
            let want = Integer::from(b.pow_mod_ref(&e, &m).unwrap());
            prop_assert_eq!(modulus.pow_public(&b, &e), want.clone());
            prop_assert_eq!(modulus.pow_secret(&b, &e, e.significant_bits() + 7), want);
        }

        #[test]
        fn fixed_base_matches_gmp(m in prop::collection::vec(any::<u8>(), 8..64),
                                  b in prop::collection::vec(any::<u8>(), 1..64),
                                  e in prop::collection::vec(any::<u8>(), 0..24)) {
            let m = odd(&m);
            let b = Integer::from_digits(&b, Order::Lsf) % &m;
            let table = FixedBase::new(&b, 24 * 8, Modulus::new(&m));
            let e = Integer::from_digits(&e, Order::Lsf);
            prop_assert_eq!(table.pow(&e), Integer::from(b.pow_mod_ref(&e, &m).unwrap()));
        }

        #[test]
        fn multi_pow_matches_gmp(m in prop::collection::vec(any::<u8>(), 8..64),
                                 terms in prop::collection::vec((prop::collection::vec(any::<u8>(), 1..64), 0u64..5000), 0..12)) {
            let m = odd(&m);
            let bases: Vec<Integer> = terms.iter().map(|(b, _)| Integer::from_digits(b, Order::Lsf)).collect();
            let refs: Vec<(&Integer, u64)> = bases.iter().zip(&terms).map(|(b, (_, e))| (b, *e)).collect();
            let want = refs.iter().fold(Integer::from(1u32), |acc, (b, e)| {
                acc * Integer::from(b.pow_mod_ref(&Integer::from(*e), &m).unwrap()) % &m
            });
            let got = Modulus::new(&m).multi_pow(&refs).unwrap_or_else(|| Integer::from(1u32) % &m);
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn negative_and_large_values_are_reduced() {
        let m = Integer::from(1_000_003u32);
        let modulus = Modulus::new(&m);
        let x = modulus.enter(&Integer::from(-5));
        assert_eq!(modulus.leave::<Integer>(&x), Integer::from(999_998u32));
        let y = modulus.enter(&(Integer::from(7) + &m * Integer::from(12345)));
        assert_eq!(modulus.leave::<Integer>(&y), Integer::from(7));
    }
}
