//! One number at a time on AVX-512 IFMA, for chains that cannot be batched
//! (the squarings of Horner's rule that pack a dense layer's outputs into
//! slots; the last few dozen products of a single linear combination): the
//! number's radix-2^52 digits lie *across* the lanes, eight
//! consecutive digits per vector, and one Montgomery product runs digit by
//! digit of the multiplier with every vector of the accumulator updated at
//! once (almost Montgomery multiplication, as in OpenSSL's RSAZ-AVX512).
//!
//! The accumulators are not normalized inside a product: a position takes
//! at most 4N products below 2^52 each (N <= 319 digits), below 2^63, so
//! the 64-bit lanes cannot overflow; the result is carried into 52-bit
//! digits once at the end. Values are "almost" reduced (below 2m) as in
//! [`super::lanes`]. It serves public ciphertexts only, and is
//! variable-time where that is free: the normalization's rare carry ripple,
//! and [`pow_public`]'s square-and-multiply.

use std::arch::x86_64::*;

use rug::Integer;

use super::lanes::{DIGIT_BITS, DIGIT_MASK, digits_for, from_radix52, neg_inverse_52, to_radix52};

/// Digits per vector.
const PER_VECTOR: usize = 8;
/// The vector counts a kernel is compiled for; a number takes the smallest
/// that holds its digits and one to spare (unused vectors stay zero). At
/// most 40: 319 digits, moduli up to 16,586 bits (n^2 of 8,192-bit keys).
const VECTOR_COUNTS: [usize; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 16, 20, 24, 32, 40];

/// The constants of one odd modulus for single-number products.
pub(crate) struct SingleModulus {
    /// Digits N (R = 2^(52N) > 4m); vectors of every number.
    digits: usize,
    vectors: usize,
    m: Vec<__m512i>,
    /// m shifted up by one digit (digit k holds m's digit k - 1): the high
    /// halves of m_k * y land one position up.
    m_up: Vec<__m512i>,
    m_prime: u64,
    /// R^2 mod m, for the conversion in.
    r2: Vec<u64>,
    modulus: Integer,
}

impl std::fmt::Debug for SingleModulus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleModulus").field("digits", &self.digits).finish_non_exhaustive()
    }
}

/// A vector of zeros, built without intrinsics.
fn zero() -> __m512i {
    bytemuck::cast([0u64; PER_VECTOR])
}

/// Digits (each below 2^52) as `vectors` vectors; missing digits zero.
fn wide_from(digits: &[u64], vectors: usize) -> Vec<__m512i> {
    let mut out = vec![zero(); vectors];
    let flat: &mut [u64] = bytemuck::cast_slice_mut(&mut out);
    flat[..digits.len()].copy_from_slice(digits);
    out
}

impl SingleModulus {
    /// The constants of an odd modulus m > 1, or None when m needs more
    /// than 40 vectors (above 16,586 bits).
    pub(crate) fn new(modulus: &Integer) -> Option<Self> {
        let bits = modulus.significant_bits();
        let digits = digits_for(bits);
        // One digit to spare: the high half of the top digit's products
        // lands at position N.
        let needed = (digits + 1).div_ceil(PER_VECTOR);
        let vectors = VECTOR_COUNTS.into_iter().find(|&v| v >= needed)?;
        if modulus.is_even() || *modulus <= 1 {
            return None;
        }
        let m_digits = to_radix52(modulus, digits);
        let mut up = vec![0u64; digits + 1];
        up[1..].copy_from_slice(&m_digits);
        let r = Integer::from(1u32) << (digits as u32 * DIGIT_BITS);
        let r2 = Integer::from(r.square_ref()) % modulus;
        Some(SingleModulus {
            digits,
            vectors,
            m: wide_from(&m_digits, vectors),
            m_up: wide_from(&up, vectors),
            m_prime: neg_inverse_52(m_digits[0]),
            r2: to_radix52(&r2, digits),
            modulus: modulus.clone(),
        })
    }

    /// The modulus.
    pub(crate) fn modulus(&self) -> &Integer {
        &self.modulus
    }

    /// Bytes of the constants (for memory budgets).
    pub(crate) fn memory_bytes(&self) -> usize {
        2 * 64 * self.vectors + 8 * self.r2.len() + self.modulus.significant_bits() as usize / 8
    }
}

/// A value in Montgomery form (x R mod m, below 2m): normalized digits in
/// the modulus' vector count.
#[derive(Clone)]
pub(crate) struct SingleValue(Vec<__m512i>);

/// The product a * b / R mod m (below 2m when a, b are), digits normalized.
/// `b` gives its digits as a slice of at least N.
#[target_feature(enable = "avx512f,avx512ifma")]
fn amm<const V: usize>(a: &[__m512i], b: &[u64], m: &SingleModulus) -> [__m512i; V] {
    let n = m.digits;
    let a: &[__m512i; V] = a.try_into().expect("V is the modulus' vector count");
    let md: &[__m512i; V] = m.m[..V].try_into().expect("V is the modulus' vector count");
    let mu: &[__m512i; V] = m.m_up[..V].try_into().expect("V is the modulus' vector count");
    // a shifted up by one digit: the high halves of a_k * b_i land at k + 1.
    let mut au = [_mm512_setzero_si512(); V];
    au[0] = _mm512_alignr_epi64::<7>(a[0], _mm512_setzero_si512());
    for v in 1..V {
        au[v] = _mm512_alignr_epi64::<7>(a[v], a[v - 1]);
    }
    let mp = _mm512_set1_epi64(m.m_prime as i64);
    let lane0 = _mm512_setzero_si512();
    let mut acc = [_mm512_setzero_si512(); V];
    for &bi in &b[..n] {
        let bv = _mm512_set1_epi64(bi as i64);
        // a * b_i, into fresh registers: off the chain through digit 0.
        let p: [__m512i; V] = std::array::from_fn(|v| {
            _mm512_madd52hi_epu64(_mm512_madd52lo_epu64(_mm512_setzero_si512(), a[v], bv), au[v], bv)
        });
        // y = (acc_0 + p_0) m' mod 2^52 = acc_0 m' + p_0 m' (only the low 52
        // bits are ever used), broadcast from lane 0: one product on the chain.
        let w = _mm512_madd52lo_epu64(_mm512_setzero_si512(), p[0], mp);
        let y = _mm512_permutexvar_epi64(lane0, _mm512_madd52lo_epu64(w, acc[0], mp));
        for v in 0..V {
            let high = _mm512_madd52hi_epu64(p[v], mu[v], y);
            acc[v] = _mm512_add_epi64(_mm512_madd52lo_epu64(acc[v], md[v], y), high);
        }
        // Position 0 is now divisible by 2^52: drop it, carrying its top bits.
        let carry = _mm512_maskz_srli_epi64::<52>(1, acc[0]);
        for v in 0..V - 1 {
            acc[v] = _mm512_alignr_epi64::<1>(acc[v + 1], acc[v]);
        }
        acc[V - 1] = _mm512_alignr_epi64::<1>(_mm512_setzero_si512(), acc[V - 1]);
        acc[0] = _mm512_add_epi64(acc[0], carry);
    }
    normalize(&mut acc);
    acc
}

/// Carries 64-bit accumulators into 52-bit digits (the value fits V vectors).
#[target_feature(enable = "avx512f,avx512ifma")]
fn normalize<const V: usize>(acc: &mut [__m512i; V]) {
    let mask = _mm512_set1_epi64(DIGIT_MASK as i64);
    // Two rounds of carrying every digit into the next at once leave digits
    // of at most 2^52; a remaining 2^52 (rare) is rippled one digit at a time.
    for _ in 0..2 {
        let mut prev = _mm512_setzero_si512();
        for x in acc.iter_mut() {
            let high = _mm512_srli_epi64::<52>(*x);
            let carried = _mm512_alignr_epi64::<7>(high, prev);
            prev = high;
            *x = _mm512_add_epi64(_mm512_and_si512(*x, mask), carried);
        }
    }
    if acc.iter().any(|&x| _mm512_cmpgt_epu64_mask(x, mask) != 0) {
        let flat: &mut [u64] = bytemuck::cast_slice_mut(acc.as_mut_slice());
        let mut carry = 0u64;
        for d in flat.iter_mut() {
            let x = *d + carry;
            *d = x & DIGIT_MASK;
            carry = x >> DIGIT_BITS;
        }
    }
}

/// Runs `$body` with `$v` bound to the const vector count `$n` (one of
/// [`VECTOR_COUNTS`]).
macro_rules! with_vectors {
    ($n:expr, $v:ident => $body:expr; $($count:literal)*) => {
        match $n {
            $($count => {
                const $v: usize = $count;
                $body
            })*
            _ => unreachable!("SingleModulus::new picks one of VECTOR_COUNTS"),
        }
    };
}

/// out = a * b / R mod m for a (vectors) and b (flat digits, at least N).
#[target_feature(enable = "avx512f,avx512ifma")]
fn product_into(out: &mut [__m512i], a: &[__m512i], b: &[u64], m: &SingleModulus) {
    with_vectors!(m.vectors, V => out.copy_from_slice(&amm::<V>(a, b, m)); 1 2 3 4 5 6 7 8 10 12 15 16 20 24 32 40);
}

/// The product of a (vectors) and b (flat digits, at least N).
#[target_feature(enable = "avx512f,avx512ifma")]
fn product(a: &[__m512i], b: &[u64], m: &SingleModulus) -> SingleValue {
    let mut out = vec![zero(); m.vectors];
    product_into(&mut out, a, b, m);
    SingleValue(out)
}

impl SingleValue {
    /// The digits, flat.
    fn digits(&self) -> &[u64] {
        bytemuck::cast_slice(&self.0)
    }

    /// A value from its Montgomery-form digits (below 2m, normalized), as
    /// the eight-lane kernels leave them.
    pub(crate) fn from_digits(digits: &[u64], m: &SingleModulus) -> SingleValue {
        SingleValue(wide_from(&digits[..m.digits.min(digits.len())], m.vectors))
    }
}

/// x R mod m from x < 2^(52N).
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn to_mont(x: &Integer, m: &SingleModulus) -> SingleValue {
    product(&wide_from(&to_radix52(x, m.digits), m.vectors), &m.r2, m)
}

/// Montgomery's 1: R mod m.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn one(m: &SingleModulus) -> SingleValue {
    to_mont(&Integer::from(1u32), m)
}

/// x * y, both in Montgomery form.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn mul(x: &SingleValue, y: &SingleValue, m: &SingleModulus) -> SingleValue {
    product(&x.0, y.digits(), m)
}

/// x^(2^k) by k squarings.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn square_times(x: &SingleValue, k: u32, m: &SingleModulus) -> SingleValue {
    let (mut acc, mut next) = (x.clone(), x.clone());
    for _ in 0..k {
        product_into(&mut next.0, &acc.0, acc.digits(), m);
        std::mem::swap(&mut acc, &mut next);
    }
    acc
}

/// x^e by left-to-right square-and-multiply: variable-time in e (public
/// exponents only).
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn pow_public(x: &SingleValue, e: u128, m: &SingleModulus) -> SingleValue {
    if e == 0 {
        return one(m);
    }
    let mut acc = x.clone();
    for bit in (0..127 - e.leading_zeros()).rev() {
        acc = square_times(&acc, 1, m);
        if (e >> bit) & 1 == 1 {
            acc = mul(&acc, x, m);
        }
    }
    acc
}

/// The Montgomery form of R^e (e of either sign): the power of R (whose
/// Montgomery form is R^2) or of R^-1 (whose Montgomery form is 1).
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn r_power(e: i128, m: &SingleModulus) -> SingleValue {
    let base = if e >= 0 { m.r2.clone() } else { vec![1] };
    pow_public(&SingleValue(wide_from(&base, m.vectors)), e.unsigned_abs(), m)
}

/// The value x/R mod m, fully reduced into [0, m).
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn from_mont(x: &SingleValue, m: &SingleModulus) -> Integer {
    let mut unit = vec![0u64; m.digits];
    unit[0] = 1;
    let out = product(&x.0, &unit, m);
    let mut value = from_radix52(&out.digits()[..m.digits]);
    // (x + y m) / R < m + 1: at most one subtraction.
    if value >= m.modulus {
        value -= &m.modulus;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_ripples_a_carry_through_full_digits() {
        let Some(_) = super::super::Ifma::detect() else {
            eprintln!("this CPU has no AVX-512 IFMA: the single-number kernel is NOT tested here");
            return;
        };
        // Digits 2^52 - 1 everywhere but the top, and 2^52 + 5 at the bottom:
        // the carry out of digit 0 must ripple up to the top digit.
        let mut digits = [DIGIT_MASK; 3 * PER_VECTOR];
        digits[0] = DIGIT_MASK + 6;
        digits[3 * PER_VECTOR - 1] = 0;
        let mut acc: [__m512i; 3] = bytemuck::cast(digits);
        // SAFETY: the CPU has IFMA (checked above).
        #[allow(unsafe_code)]
        unsafe {
            normalize(&mut acc)
        };
        let flat: [u64; 3 * PER_VECTOR] = bytemuck::cast(acc);
        let mut want = [0u64; 3 * PER_VECTOR];
        want[0] = 5;
        want[3 * PER_VECTOR - 1] = 1;
        assert_eq!(flat, want);
    }
}
