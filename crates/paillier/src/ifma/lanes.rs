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
/// Lanes per vector (one 512-bit register of 64-bit digits).
pub(crate) const LANES: usize = crate::arith::LANES;

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
/// Operand scanning with the reduction interleaved, four digits of b per
/// pass over the accumulators: each accumulator is loaded and stored once
/// per pass, with sixteen products added in between, in two independent
/// chains (the low and the high halves) so that their latency overlaps.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn mul(out: &mut [__m512i], a: &[__m512i], b: &[__m512i], m: &Modulus8, t: &mut [__m512i]) {
    let n = m.digits;
    let (a, b, md) = (&a[..n], &b[..n], &m.m[..n]);
    t.fill(_mm512_setzero_si512());
    let mut i = 0;
    while i + PASS <= n {
        let bs: [__m512i; PASS] = std::array::from_fn(|r| b[i + r]);
        pass::<PASS, true>(&mut t[i..i + n + PASS], a, bs, md, m.m_prime);
        i += PASS;
    }
    while i < n {
        pass::<1, true>(&mut t[i..=i + n], a, [b[i]], md, m.m_prime);
        i += 1;
    }
    normalize(&mut out[..n], &t[n..2 * n]);
}

/// Digits of b (rows) per pass over the accumulators.
const PASS: usize = 4;

/// One pass of R rows over `row` (N + R accumulators): adds, for each row r,
/// a * b_r (when `AB`: a multiplication; without it, a reduction of
/// accumulators already holding the product, and `a`, `bs` unused) and md * y_r, where y_r
/// makes position r divisible by 2^52; then carries position R - 1 into R.
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn pass<const R: usize, const AB: bool>(
    row: &mut [__m512i],
    a: &[__m512i],
    bs: [__m512i; R],
    md: &[__m512i],
    mp: __m512i,
) {
    let n = md.len();
    let zero = _mm512_setzero_si512();
    let a = &a[..n];
    // Head: positions 0..R, each completed by the earlier rows, then cleared by its y.
    let mut ys = [zero; R];
    let mut carry = zero;
    for j in 0..R {
        let mut x = _mm512_add_epi64(row[j], carry);
        for r in 0..j {
            if AB {
                x = _mm512_madd52lo_epu64(x, a[j - r], bs[r]);
                x = _mm512_madd52hi_epu64(x, a[j - r - 1], bs[r]);
            }
            x = _mm512_madd52lo_epu64(x, md[j - r], ys[r]);
            x = _mm512_madd52hi_epu64(x, md[j - r - 1], ys[r]);
        }
        if AB {
            x = _mm512_madd52lo_epu64(x, a[0], bs[j]);
        }
        let y = _mm512_madd52lo_epu64(zero, x, mp);
        x = _mm512_madd52lo_epu64(x, md[0], y);
        ys[j] = y;
        carry = _mm512_srli_epi64::<52>(x);
    }
    // Body: every row contributes both halves.
    // Four independent chains (low and high halves, even and odd rows) keep
    // the dependency chains short: the products' latency overlaps.
    for p in R..n {
        let mut acc = [row[p], zero, zero, zero];
        for r in 0..R {
            let c = 2 * (r % 2);
            if AB {
                acc[c] = _mm512_madd52lo_epu64(acc[c], a[p - r], bs[r]);
                acc[c + 1] = _mm512_madd52hi_epu64(acc[c + 1], a[p - r - 1], bs[r]);
            }
            acc[c] = _mm512_madd52lo_epu64(acc[c], md[p - r], ys[r]);
            acc[c + 1] = _mm512_madd52hi_epu64(acc[c + 1], md[p - r - 1], ys[r]);
        }
        row[p] = _mm512_add_epi64(_mm512_add_epi64(acc[0], acc[1]), _mm512_add_epi64(acc[2], acc[3]));
    }
    // Tail: positions n..n+R, where the rows run out.
    #[allow(clippy::needless_range_loop)] // p indexes a, md and row at different offsets
    for p in n..n + R {
        let mut x = row[p];
        for r in 0..R {
            let o = p - r;
            if o < n {
                if AB {
                    x = _mm512_madd52lo_epu64(x, a[o], bs[r]);
                }
                x = _mm512_madd52lo_epu64(x, md[o], ys[r]);
            }
            if o <= n {
                if AB {
                    x = _mm512_madd52hi_epu64(x, a[o - 1], bs[r]);
                }
                x = _mm512_madd52hi_epu64(x, md[o - 1], ys[r]);
            }
        }
        row[p] = x;
    }
    row[R] = _mm512_add_epi64(row[R], carry);
}

/// out = a^2 / R mod m (tested against GMP; not yet faster than `mul(a, a)`,
/// which the exponentiation therefore uses): the cross products once, by product scanning
/// (each accumulator summed in registers), doubled, plus the squares; then
/// a separate Montgomery reduction (about 3N^2 products instead of 4N^2).
#[cfg(test)]
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn sqr(out: &mut [__m512i], a: &[__m512i], m: &Modulus8, t: &mut [__m512i]) {
    let n = m.digits;
    let (a, md) = (&a[..n], &m.m[..n]);
    let zero = _mm512_setzero_si512();
    t.fill(zero);
    for (p, tp) in t[..2 * n].iter_mut().enumerate() {
        // Low halves of a_i a_k with i + k = p, high halves with i + k + 1 = p;
        // i < k < n. Four chains, so that the products' latency overlaps.
        let lo = diagonal::<false>(a, p, (p + 1).saturating_sub(n), p.div_ceil(2));
        let hi = match p.checked_sub(1) {
            Some(q) => diagonal::<true>(a, q, q.saturating_sub(n - 1), q.div_ceil(2)),
            None => zero,
        };
        let sum = _mm512_add_epi64(lo, hi);
        let mut x = _mm512_slli_epi64::<1>(sum);
        if p % 2 == 0 {
            x = _mm512_madd52lo_epu64(x, a[p / 2], a[p / 2]);
        } else {
            x = _mm512_madd52hi_epu64(x, a[p / 2], a[p / 2]);
        }
        *tp = x;
    }
    reduce(out, md, m.m_prime, t, n);
}

#[cfg(test)]
/// The sum over i in start..end of the low (or, if HIGH, the high) halves
/// of a_i * a_(q - i), in two chains.
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn diagonal<const HIGH: bool>(a: &[__m512i], q: usize, start: usize, end: usize) -> __m512i {
    let madd =
        |acc, x, y| if HIGH { _mm512_madd52hi_epu64(acc, x, y) } else { _mm512_madd52lo_epu64(acc, x, y) };
    let (mut c0, mut c1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
    let mut i = start;
    while i + 1 < end {
        c0 = madd(c0, a[i], a[q - i]);
        c1 = madd(c1, a[i + 1], a[q - i - 1]);
        i += 2;
    }
    if i < end {
        c0 = madd(c0, a[i], a[q - i]);
    }
    _mm512_add_epi64(c0, c1)
}

/// Montgomery reduction of the 2N accumulators in `t` into `out`, four
/// digits per pass.
#[cfg(test)]
#[target_feature(enable = "avx512f,avx512ifma")]
fn reduce(out: &mut [__m512i], md: &[__m512i], mp: __m512i, t: &mut [__m512i], n: usize) {
    let mut i = 0;
    while i + PASS <= n {
        pass::<PASS, false>(&mut t[i..i + n + PASS], md, [mp; PASS], md, mp);
        i += PASS;
    }
    while i < n {
        pass::<1, false>(&mut t[i..=i + n], md, [mp], md, mp);
        i += 1;
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
