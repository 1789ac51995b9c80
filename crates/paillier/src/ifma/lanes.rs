//! Eight-lane Montgomery arithmetic in radix 2^52 with AVX-512 IFMA.
//!
//! A number of N digits is held "transposed": `Vec<__m512i>` of N vectors,
//! vector k holding digit k of all eight lanes, so one `vpmadd52luq` works on
//! eight independent numbers at once. Each lane has its own modulus (the
//! lanes of one batch may mix p^2 and q^2, or keys). Values stay in
//! Montgomery form x*R mod m (R = 2^(52N)) between conversions, and are only
//! "almost" reduced: every result is below 2m, which R > 4m makes closed
//! under multiplication, so no final subtraction is needed until the
//! conversion out.
//!
//! Every function here runs only on a CPU with AVX-512F and IFMA: they are
//! `#[target_feature]` functions, callable without `unsafe` only from other
//! such functions; `super::Ifma` is the one place that checks the CPU.

use std::arch::x86_64::*;

use rug::Integer;
use rug::integer::Order;
use zeroize::Zeroize;

/// Bits per digit.
pub(crate) const DIGIT_BITS: u32 = 52;
const DIGIT_MASK: u64 = (1 << DIGIT_BITS) - 1;
/// Lanes per vector.
pub(crate) const LANES: usize = 8;

/// A number per lane, transposed: element k holds digit k of every lane.
pub(crate) type Lanes = Vec<__m512i>;

/// Digits needed for an odd modulus of `bits` bits: R = 2^(52N) > 4m.
pub(crate) fn digits_for(bits: u32) -> usize {
    (bits + 2).div_ceil(DIGIT_BITS) as usize
}

/// The `digits` radix-2^52 digits of x (0 <= x < 2^(52*digits)), least significant first.
pub(crate) fn to_radix52(x: &Integer, digits: usize) -> Vec<u64> {
    let limbs: Vec<u64> = x.to_digits(Order::Lsf);
    let mut out = vec![0u64; digits];
    for (k, d) in out.iter_mut().enumerate() {
        let bit = k * DIGIT_BITS as usize;
        let (w, s) = (bit / 64, bit % 64);
        let lo = limbs.get(w).copied().unwrap_or(0) >> s;
        let hi = if s > 12 { limbs.get(w + 1).copied().unwrap_or(0) << (64 - s) } else { 0 };
        *d = (lo | hi) & DIGIT_MASK;
    }
    out
}

/// The integer whose radix-2^52 digits (each below 2^52) are `digits`.
pub(crate) fn from_radix52(digits: &[u64]) -> Integer {
    let bits = digits.len() * DIGIT_BITS as usize;
    let mut limbs = vec![0u64; bits.div_ceil(64) + 1];
    for (k, &d) in digits.iter().enumerate() {
        let bit = k * DIGIT_BITS as usize;
        let (w, s) = (bit / 64, bit % 64);
        limbs[w] |= d << s;
        if s > 12 {
            limbs[w + 1] |= d >> (64 - s);
        }
    }
    let x = Integer::from_digits(&limbs, Order::Lsf);
    limbs.zeroize();
    x
}

/// -m^-1 mod 2^52 for odd m (Newton's iteration doubles the correct bits).
fn neg_inverse_52(m0: u64) -> u64 {
    let mut inv = m0.wrapping_mul(3) ^ 2; // correct to 5 bits
    for _ in 0..4 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(m0.wrapping_mul(inv)));
    }
    inv.wrapping_neg() & DIGIT_MASK
}

/// Builds one transposed number from eight digit vectors.
pub(crate) fn transpose(lanes: [&[u64]; LANES], digits: usize) -> Lanes {
    (0..digits)
        .map(|k| {
            let row: [u64; LANES] = std::array::from_fn(|l| lanes[l].get(k).copied().unwrap_or(0));
            bytemuck::cast(row)
        })
        .collect()
}

/// Transposes eight integers (each below 2^(52*digits)) into lanes.
pub(crate) fn lanes_from(xs: [&Integer; LANES], digits: usize) -> Lanes {
    let mut ds: Vec<Vec<u64>> = xs.iter().map(|x| to_radix52(x, digits)).collect();
    let out = transpose(std::array::from_fn(|l| ds[l].as_slice()), digits);
    ds.iter_mut().for_each(|d| d.zeroize());
    out
}

/// The eight integers held in `x` (normalized digits).
pub(crate) fn lanes_to(x: &[__m512i]) -> [Integer; LANES] {
    let rows: &[[u64; LANES]] = bytemuck::cast_slice(x);
    std::array::from_fn(|l| {
        let mut d: Vec<u64> = rows.iter().map(|r| r[l]).collect();
        let v = from_radix52(&d);
        d.zeroize();
        v
    })
}

/// The eight lanes' digit vectors of a transposed number.
pub(crate) fn untranspose(x: &[__m512i]) -> [Vec<u64>; LANES] {
    let rows: &[[u64; LANES]] = bytemuck::cast_slice(x);
    std::array::from_fn(|l| rows.iter().map(|r| r[l]).collect())
}

/// Overwrites a transposed number with zeros.
pub(crate) fn wipe_lanes(x: &mut [__m512i]) {
    bytemuck::cast_slice_mut::<__m512i, u64>(x).zeroize();
}

/// The Montgomery constants of eight odd moduli of at most `bits` bits.
pub(crate) struct Modulus8 {
    digits: usize,
    m: Lanes,
    m_prime: __m512i,
    /// R^2 mod m, for the conversion in.
    r2: Lanes,
    /// R mod m: Montgomery's 1.
    one: Lanes,
    moduli: [Integer; LANES],
    /// Whether the moduli are secret (p^2, q^2): then wiped when dropped.
    secret: bool,
}

impl Drop for Modulus8 {
    fn drop(&mut self) {
        if self.secret {
            wipe_lanes(&mut self.m);
            wipe_lanes(&mut self.r2);
            wipe_lanes(&mut self.one);
            self.moduli.iter_mut().for_each(crate::secret::wipe);
        }
    }
}

impl std::fmt::Debug for Modulus8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Modulus8").field("digits", &self.digits).finish_non_exhaustive()
    }
}

impl Modulus8 {
    /// Constants for the eight moduli (odd, positive), sized for `bits`
    /// (at least the largest modulus' size). `secret` moduli are wiped on drop.
    pub(crate) fn new(moduli: [&Integer; LANES], bits: u32, secret: bool) -> Self {
        let digits = digits_for(bits);
        let r = Integer::from(1u32) << (digits as u32 * DIGIT_BITS);
        let mut r2s: Vec<Integer> = moduli.iter().map(|m| Integer::from(r.square_ref()) % *m).collect();
        let mut ones: Vec<Integer> = moduli.iter().map(|m| Integer::from(&r % *m)).collect();
        let m_prime: [u64; LANES] = std::array::from_fn(|l| neg_inverse_52(moduli[l].to_u64_wrapping()));
        let out = Modulus8 {
            digits,
            m: lanes_from(moduli, digits),
            m_prime: bytemuck::cast(m_prime),
            r2: lanes_from(std::array::from_fn(|l| &r2s[l]), digits),
            one: lanes_from(std::array::from_fn(|l| &ones[l]), digits),
            moduli: std::array::from_fn(|l| moduli[l].clone()),
            secret,
        };
        r2s.iter_mut().chain(ones.iter_mut()).for_each(crate::secret::wipe);
        out
    }

    /// Digits per number.
    pub(crate) fn digits(&self) -> usize {
        self.digits
    }

    /// Montgomery's 1 (R mod m) in every lane.
    pub(crate) fn one(&self) -> &Lanes {
        &self.one
    }

    /// The moduli.
    pub(crate) fn moduli(&self) -> &[Integer; LANES] {
        &self.moduli
    }

    /// Bytes of the constants (for memory budgets).
    pub(crate) fn memory_bytes(&self) -> usize {
        3 * self.digits * 64
    }
}

/// Scratch space for one product: 2N + 1 accumulators.
pub(crate) fn scratch(m: &Modulus8) -> Lanes {
    vec![zero_lanes(); 2 * m.digits + 1]
}

/// A zero vector, constructed without intrinsics (usable anywhere).
pub(crate) fn zero_lanes() -> __m512i {
    bytemuck::cast([0u64; LANES])
}

/// Carries the accumulators t[n..2n] into normalized digits in `out`.
#[target_feature(enable = "avx512f,avx512ifma")]
fn normalize(out: &mut [__m512i], t: &[__m512i]) {
    let mask = _mm512_set1_epi64(DIGIT_MASK as i64);
    let mut carry = _mm512_setzero_si512();
    for (o, &x) in out.iter_mut().zip(t) {
        let x = _mm512_add_epi64(x, carry);
        *o = _mm512_and_si512(x, mask);
        carry = _mm512_srli_epi64::<52>(x);
    }
}

/// out = a * b / R mod m (almost reduced: below 2m when a and b are).
/// `t` is scratch of 2N + 1 vectors; `out` may not alias `a` or `b`
/// (the borrow checker sees to it).
///
/// Operand scanning with the reduction interleaved, two digits of b per
/// pass over the accumulators (each accumulator is loaded and stored once
/// per two digits; eight products go into it in between).
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn mul(out: &mut [__m512i], a: &[__m512i], b: &[__m512i], m: &Modulus8, t: &mut [__m512i]) {
    let n = m.digits;
    let (a, b, md) = (&a[..n], &b[..n], &m.m[..n]);
    t.fill(_mm512_setzero_si512());
    let mut i = 0;
    while i + 1 < n {
        two_rows(&mut t[i..=i + n + 1], a, b[i], b[i + 1], md, m.m_prime);
        i += 2;
    }
    if i < n {
        one_row(&mut t[i..=i + n], a, b[i], md, m.m_prime);
    }
    normalize(&mut out[..n], &t[n..2 * n]);
}

/// Adds a * b0 + m * y0 (y0 making position 0 divisible by 2^52) into
/// `row`, then drops position 0 into position 1 as a carry.
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn one_row(row: &mut [__m512i], a: &[__m512i], b0: __m512i, md: &[__m512i], mp: __m512i) {
    let n = md.len();
    let zero = _mm512_setzero_si512();
    let t0 = _mm512_madd52lo_epu64(row[0], a[0], b0);
    let y = _mm512_madd52lo_epu64(zero, t0, mp);
    let t0 = _mm512_madd52lo_epu64(t0, md[0], y);
    for k in 1..n {
        let mut x = row[k];
        x = _mm512_madd52lo_epu64(x, a[k], b0);
        x = _mm512_madd52lo_epu64(x, md[k], y);
        x = _mm512_madd52hi_epu64(x, a[k - 1], b0);
        x = _mm512_madd52hi_epu64(x, md[k - 1], y);
        row[k] = x;
    }
    row[n] = _mm512_madd52hi_epu64(_mm512_madd52hi_epu64(row[n], a[n - 1], b0), md[n - 1], y);
    row[1] = _mm512_add_epi64(row[1], _mm512_srli_epi64::<52>(t0));
}

/// Two consecutive digits b0, b1 in one pass: position 0 is cleared by y0,
/// position 1 (which then holds everything of digit b0) by y1.
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn two_rows(row: &mut [__m512i], a: &[__m512i], b0: __m512i, b1: __m512i, md: &[__m512i], mp: __m512i) {
    let n = md.len();
    let zero = _mm512_setzero_si512();
    let t0 = _mm512_madd52lo_epu64(row[0], a[0], b0);
    let y0 = _mm512_madd52lo_epu64(zero, t0, mp);
    let t0 = _mm512_madd52lo_epu64(t0, md[0], y0);
    let mut t1 = row[1];
    t1 = _mm512_madd52lo_epu64(t1, a[1], b0);
    t1 = _mm512_madd52lo_epu64(t1, md[1], y0);
    t1 = _mm512_madd52hi_epu64(t1, a[0], b0);
    t1 = _mm512_madd52hi_epu64(t1, md[0], y0);
    t1 = _mm512_add_epi64(t1, _mm512_srli_epi64::<52>(t0));
    t1 = _mm512_madd52lo_epu64(t1, a[0], b1);
    let y1 = _mm512_madd52lo_epu64(zero, t1, mp);
    let t1 = _mm512_madd52lo_epu64(t1, md[0], y1);
    for k in 2..n {
        let mut x = row[k];
        x = _mm512_madd52lo_epu64(x, a[k], b0);
        x = _mm512_madd52lo_epu64(x, md[k], y0);
        x = _mm512_madd52hi_epu64(x, a[k - 1], b0);
        x = _mm512_madd52hi_epu64(x, md[k - 1], y0);
        x = _mm512_madd52lo_epu64(x, a[k - 1], b1);
        x = _mm512_madd52lo_epu64(x, md[k - 1], y1);
        x = _mm512_madd52hi_epu64(x, a[k - 2], b1);
        x = _mm512_madd52hi_epu64(x, md[k - 2], y1);
        row[k] = x;
    }
    let mut x = row[n];
    x = _mm512_madd52hi_epu64(x, a[n - 1], b0);
    x = _mm512_madd52hi_epu64(x, md[n - 1], y0);
    x = _mm512_madd52lo_epu64(x, a[n - 1], b1);
    x = _mm512_madd52lo_epu64(x, md[n - 1], y1);
    x = _mm512_madd52hi_epu64(x, a[n - 2], b1);
    x = _mm512_madd52hi_epu64(x, md[n - 2], y1);
    row[n] = x;
    row[n + 1] = _mm512_madd52hi_epu64(_mm512_madd52hi_epu64(row[n + 1], a[n - 1], b1), md[n - 1], y1);
    row[2] = _mm512_add_epi64(row[2], _mm512_srli_epi64::<52>(t1));
}

/// out = a^2 / R mod m: the cross products once, doubled, then the squares
/// and a separate Montgomery reduction (about 3N^2 instead of 4N^2 products).
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn sqr(out: &mut [__m512i], a: &[__m512i], m: &Modulus8, t: &mut [__m512i]) {
    let n = m.digits;
    let (a, md, mp) = (&a[..n], &m.m[..n], m.m_prime);
    let zero = _mm512_setzero_si512();
    t.fill(zero);
    for i in 0..n {
        let ai = a[i];
        for k in i + 1..n {
            t[i + k] = _mm512_madd52lo_epu64(t[i + k], ai, a[k]);
            t[i + k + 1] = _mm512_madd52hi_epu64(t[i + k + 1], ai, a[k]);
        }
    }
    for i in 0..n {
        let (lo, hi) = (2 * i, 2 * i + 1);
        t[lo] = _mm512_madd52lo_epu64(_mm512_slli_epi64::<1>(t[lo]), a[i], a[i]);
        t[hi] = _mm512_madd52hi_epu64(_mm512_slli_epi64::<1>(t[hi]), a[i], a[i]);
    }
    reduce(out, md, mp, t, n);
}

/// Montgomery reduction of the 2N accumulators in `t` into `out`, two
/// digits per pass.
#[target_feature(enable = "avx512f,avx512ifma")]
fn reduce(out: &mut [__m512i], md: &[__m512i], mp: __m512i, t: &mut [__m512i], n: usize) {
    let zero = _mm512_setzero_si512();
    let mut i = 0;
    while i + 1 < n {
        let row = &mut t[i..=i + n + 1];
        let y0 = _mm512_madd52lo_epu64(zero, row[0], mp);
        let t0 = _mm512_madd52lo_epu64(row[0], md[0], y0);
        let mut t1 = _mm512_madd52lo_epu64(row[1], md[1], y0);
        t1 = _mm512_madd52hi_epu64(t1, md[0], y0);
        t1 = _mm512_add_epi64(t1, _mm512_srli_epi64::<52>(t0));
        let y1 = _mm512_madd52lo_epu64(zero, t1, mp);
        let t1 = _mm512_madd52lo_epu64(t1, md[0], y1);
        for k in 2..n {
            let mut x = _mm512_madd52lo_epu64(row[k], md[k], y0);
            x = _mm512_madd52hi_epu64(x, md[k - 1], y0);
            x = _mm512_madd52lo_epu64(x, md[k - 1], y1);
            row[k] = _mm512_madd52hi_epu64(x, md[k - 2], y1);
        }
        let mut x = _mm512_madd52hi_epu64(row[n], md[n - 1], y0);
        x = _mm512_madd52lo_epu64(x, md[n - 1], y1);
        row[n] = _mm512_madd52hi_epu64(x, md[n - 2], y1);
        row[n + 1] = _mm512_madd52hi_epu64(row[n + 1], md[n - 1], y1);
        row[2] = _mm512_add_epi64(row[2], _mm512_srli_epi64::<52>(t1));
        i += 2;
    }
    if i < n {
        let row = &mut t[i..=i + n];
        let y = _mm512_madd52lo_epu64(zero, row[0], mp);
        let t0 = _mm512_madd52lo_epu64(row[0], md[0], y);
        for k in 1..n {
            let x = _mm512_madd52lo_epu64(row[k], md[k], y);
            row[k] = _mm512_madd52hi_epu64(x, md[k - 1], y);
        }
        row[n] = _mm512_madd52hi_epu64(row[n], md[n - 1], y);
        row[1] = _mm512_add_epi64(row[1], _mm512_srli_epi64::<52>(t0));
    }
    normalize(&mut out[..n], &t[n..2 * n]);
}

/// x*R mod m (below 2m) from x < m in normal form.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn to_mont(x: &[__m512i], m: &Modulus8, t: &mut [__m512i]) -> Lanes {
    let mut out = vec![zero_lanes(); m.digits];
    mul(&mut out, x, &m.r2, m, t);
    out
}

/// The eight values x/R mod m, fully reduced into [0, m), as integers.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn from_mont(x: &[__m512i], m: &Modulus8, t: &mut [__m512i]) -> [Integer; LANES] {
    let mut unit = vec![zero_lanes(); m.digits];
    unit[0] = _mm512_set1_epi64(1);
    let mut out = vec![zero_lanes(); m.digits];
    mul(&mut out, x, &unit, m, t);
    let mut values = lanes_to(&out);
    wipe_lanes(&mut out);
    wipe_lanes(t);
    for (v, modulus) in values.iter_mut().zip(&m.moduli) {
        // (x + y m) / R < m + 1: at most one subtraction.
        if *v >= *modulus {
            *v -= modulus;
        }
    }
    values
}

/// Selects, per lane, entry `index[lane]` of `table` into `out`, reading
/// every entry (masked blends), so memory access does not depend on the index.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn select(out: &mut [__m512i], table: &[Lanes], index: __m512i) {
    out.fill(_mm512_setzero_si512());
    for (j, entry) in table.iter().enumerate() {
        let hit = _mm512_cmpeq_epi64_mask(index, _mm512_set1_epi64(j as i64));
        for (o, &e) in out.iter_mut().zip(entry) {
            *o = _mm512_mask_blend_epi64(hit, *o, e);
        }
    }
}

/// Like [`select`] for a table shared by all lanes, stored as plain digit
/// rows of `digits` each (entry j at `table[j*digits..]`).
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn select_shared(out: &mut [__m512i], table: &[u64], digits: usize, index: __m512i) {
    out.fill(_mm512_setzero_si512());
    for (j, entry) in table.chunks_exact(digits).enumerate() {
        let hit = _mm512_cmpeq_epi64_mask(index, _mm512_set1_epi64(j as i64));
        for (o, &e) in out.iter_mut().zip(entry) {
            *o = _mm512_mask_mov_epi64(*o, hit, _mm512_set1_epi64(e as i64));
        }
    }
}
