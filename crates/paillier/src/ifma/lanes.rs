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
/// The low 52 bits.
pub(crate) const DIGIT_MASK: u64 = (1 << DIGIT_BITS) - 1;
/// Lanes per vector (one 512-bit register of 64-bit digits).
pub(crate) const LANES: usize = crate::LANES;

/// A number per lane, transposed: element k holds digit k of every lane.
pub(crate) type Lanes = Vec<__m512i>;

/// Digits needed for an odd modulus of `bits` bits: R = 2^(52N) > 4m.
pub(crate) fn digits_for(bits: u32) -> usize {
    (bits + 2).div_ceil(DIGIT_BITS) as usize
}

/// The `digits` radix-2^52 digits of x (0 <= x < 2^(52*digits)), least significant first.
pub(crate) fn to_radix52(x: &Integer, digits: usize) -> Vec<u64> {
    // GMP's own limbs (64-bit on x86-64), borrowed: no copy to wipe.
    let limbs: &[u64] = x.as_limbs();
    let mut out = vec![0u64; digits];
    for (k, d) in out.iter_mut().enumerate() {
        let bit = k * DIGIT_BITS as usize;
        let (w, s) = (bit / 64, bit % 64);
        let Some(&low) = limbs.get(w) else { break };
        let lo = low >> s;
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
pub(crate) fn neg_inverse_52(m0: u64) -> u64 {
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

/// [`transpose`] into an existing number of `out.len()` digits (no
/// allocation): lane by lane, each source read in order (missing digits zero).
pub(crate) fn transpose_into(out: &mut [__m512i], lanes: [&[u64]; LANES]) {
    let rows: &mut [[u64; LANES]] = bytemuck::cast_slice_mut(out);
    for (l, src) in lanes.iter().enumerate() {
        let used = src.len().min(rows.len());
        for (row, &d) in rows[..used].iter_mut().zip(src.iter()) {
            row[l] = d;
        }
        for row in &mut rows[used..] {
            row[l] = 0;
        }
    }
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
        // Each distinct modulus once (a broadcast modulus fills all lanes).
        let (mut r2s, mut ones): (Vec<Integer>, Vec<Integer>) = (Vec::new(), Vec::new());
        for (l, m) in moduli.iter().enumerate() {
            match moduli[..l].iter().position(|earlier| earlier == m) {
                Some(k) => {
                    let (r2, one) = (r2s[k].clone(), ones[k].clone());
                    r2s.push(r2);
                    ones.push(one);
                }
                None => {
                    r2s.push(Integer::from(r.square_ref()) % *m);
                    ones.push(Integer::from(&r % *m));
                }
            }
        }
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
/// per pass, with sixteen products added in between, in independent
/// chains so that their latency overlaps.
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
/// accumulators already holding the product, and `a`, `bs` unused) and
/// md * y_r, where y_r makes position r divisible by 2^52; then carries
/// position R - 1 into R.
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
    let (a, row) = (&a[..n], &mut row[..n + R]);
    let (ys, carry) = head::<R, AB>(row, a, bs, md, mp);
    // Body: every row contributes both halves, in independent chains
    // (a multiplication: low and high halves of even and odd rows; a
    // reduction: low and high halves) so that the products' latency overlaps.
    for p in R..n {
        let mut acc = [row[p], zero, zero, zero];
        for r in 0..R {
            let c = if AB { 2 * (r % 2) } else { 0 };
            if AB {
                acc[c] = _mm512_madd52lo_epu64(acc[c], a[p - r], bs[r]);
                acc[c + 1] = _mm512_madd52hi_epu64(acc[c + 1], a[p - r - 1], bs[r]);
            }
            acc[c] = _mm512_madd52lo_epu64(acc[c], md[p - r], ys[r]);
            acc[c + 1] = _mm512_madd52hi_epu64(acc[c + 1], md[p - r - 1], ys[r]);
        }
        row[p] = if AB {
            _mm512_add_epi64(_mm512_add_epi64(acc[0], acc[1]), _mm512_add_epi64(acc[2], acc[3]))
        } else {
            _mm512_add_epi64(acc[0], acc[1])
        };
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

/// The head of a pass: positions 0..R, completed and cleared one after the
/// other. The products (independent of the ys) are summed first; each y is
/// then scattered into the later head positions as soon as it is known, so
/// that the serial chain from one y to the next is a few instructions long.
/// Returns the ys and the carry out of position R - 1.
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn head<const R: usize, const AB: bool>(
    row: &[__m512i],
    a: &[__m512i],
    bs: [__m512i; R],
    md: &[__m512i],
    mp: __m512i,
) -> ([__m512i; R], __m512i) {
    let zero = _mm512_setzero_si512();
    let mut h: [__m512i; R] = std::array::from_fn(|j| row[j]);
    if AB {
        for (j, hj) in h.iter_mut().enumerate() {
            let mut high = zero;
            for r in 0..=j {
                *hj = _mm512_madd52lo_epu64(*hj, a[j - r], bs[r]);
                if r < j {
                    high = _mm512_madd52hi_epu64(high, a[j - r - 1], bs[r]);
                }
            }
            *hj = _mm512_add_epi64(*hj, high);
        }
    }
    let mut ys = [zero; R];
    let mut carry = zero;
    for j in 0..R {
        let x = _mm512_add_epi64(h[j], carry);
        let y = _mm512_madd52lo_epu64(zero, x, mp);
        carry = _mm512_srli_epi64::<52>(_mm512_madd52lo_epu64(x, md[0], y));
        for k in j + 1..R {
            h[k] = _mm512_madd52lo_epu64(h[k], md[k - j], y);
            h[k] = _mm512_madd52hi_epu64(h[k], md[k - j - 1], y);
        }
        ys[j] = y;
    }
    (ys, carry)
}

/// out = a^2 / R mod m (almost reduced): the cross products a_g a_j (g < j)
/// once, by rows of the upper triangle, doubled, plus the squares; then the
/// Montgomery reduction: about 3N^2 products instead of the 4N^2 of `mul(a, a)`.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn sqr(out: &mut [__m512i], a: &[__m512i], m: &Modulus8, t: &mut [__m512i]) {
    let n = m.digits;
    let (a, md) = (&a[..n], &m.m[..n]);
    t.fill(_mm512_setzero_si512());
    let mut i = 0;
    while i + TRIANGLE <= n {
        triangle::<TRIANGLE>(t, a, i);
        i += TRIANGLE;
    }
    while i < n {
        triangle::<1>(t, a, i);
        i += 1;
    }
    for (g, &x) in a.iter().enumerate() {
        t[2 * g] = _mm512_madd52lo_epu64(_mm512_slli_epi64::<1>(t[2 * g]), x, x);
        t[2 * g + 1] = _mm512_madd52hi_epu64(_mm512_slli_epi64::<1>(t[2 * g + 1]), x, x);
    }
    reduce(out, md, m.m_prime, t, n);
}

/// Rows of the squaring's triangle per pass over the accumulators.
const TRIANGLE: usize = 8;

/// Adds to the accumulators `t` (global positions) the cross products
/// a_g a_j, j > g, of the R rows g = i..i+R: low halves at g + j, high
/// halves at g + j + 1. The pairs within the rows first (a small block
/// whose shape is known at compile time), then the rows times the digits
/// after them (a rectangle, `rectangle`).
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn triangle<const R: usize>(t: &mut [__m512i], a: &[__m512i], i: usize) {
    let bs: [__m512i; R] = std::array::from_fn(|r| a[i + r]);
    let block = &mut t[2 * i..2 * i + 2 * R];
    for r in 0..R {
        for s in r + 1..R {
            block[r + s] = _mm512_madd52lo_epu64(block[r + s], bs[r], bs[s]);
            block[r + s + 1] = _mm512_madd52hi_epu64(block[r + s + 1], bs[r], bs[s]);
        }
    }
    let rest = &a[i + R..];
    let acc = &mut t[2 * i + R..2 * i + 2 * R + rest.len()];
    if rest.len() >= R {
        rectangle(acc, rest, bs);
    } else {
        rectangle_short(acc, rest, bs);
    }
}

/// acc[q] += the low halves of a[q - r] * b_r and the high halves of
/// a[q - r - 1] * b_r over the rows r: the product of an R-digit and an
/// L-digit number (L = a.len() >= R, acc.len() = L + R), carries left in
/// the accumulators.
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn rectangle<const R: usize>(acc: &mut [__m512i], a: &[__m512i], bs: [__m512i; R]) {
    let l = a.len();
    let zero = _mm512_setzero_si512();
    // Head (q < R) and tail (q >= L): which terms exist is known per
    // unrolled step.
    for q in 0..R {
        let mut x = acc[q];
        for r in 0..=q {
            x = _mm512_madd52lo_epu64(x, a[q - r], bs[r]);
            if r < q {
                x = _mm512_madd52hi_epu64(x, a[q - r - 1], bs[r]);
            }
        }
        acc[q] = x;
    }
    let body = &mut acc[R..l];
    for (k, x) in body.iter_mut().enumerate() {
        // Position q = R + k reads a[q - R ..= q].
        let w = &a[k..=k + R];
        let (mut lo, mut hi) = (*x, zero);
        for (r, &b) in bs.iter().enumerate() {
            lo = _mm512_madd52lo_epu64(lo, w[R - r], b);
            hi = _mm512_madd52hi_epu64(hi, w[R - r - 1], b);
        }
        *x = _mm512_add_epi64(lo, hi);
    }
    let (end, last) = (&mut acc[l..l + R], &a[l - R..]);
    for s in 0..R {
        // Position l + s: low halves of rows r > s, high halves of rows r >= s.
        let mut x = end[s];
        for r in s..R {
            if r > s {
                x = _mm512_madd52lo_epu64(x, last[R + s - r], bs[r]);
            }
            x = _mm512_madd52hi_epu64(x, last[R + s - r - 1], bs[r]);
        }
        end[s] = x;
    }
}

/// [`rectangle`] for L < R (the last rows of a squaring), each term checked.
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn rectangle_short<const R: usize>(acc: &mut [__m512i], a: &[__m512i], bs: [__m512i; R]) {
    for (q, x) in acc.iter_mut().enumerate() {
        for (r, &b) in bs.iter().enumerate() {
            if let Some(&d) = q.checked_sub(r).and_then(|j| a.get(j)) {
                *x = _mm512_madd52lo_epu64(*x, d, b);
            }
            if let Some(&d) = q.checked_sub(r + 1).and_then(|j| a.get(j)) {
                *x = _mm512_madd52hi_epu64(*x, d, b);
            }
        }
    }
}

/// Digits per pass of a separate reduction.
const REDUCE_PASS: usize = 4;

/// Montgomery reduction of the 2N accumulators in `t` into `out`, `PASS`
/// digits per pass.
#[target_feature(enable = "avx512f,avx512ifma")]
fn reduce(out: &mut [__m512i], md: &[__m512i], mp: __m512i, t: &mut [__m512i], n: usize) {
    let mut i = 0;
    while i + REDUCE_PASS <= n {
        pass::<REDUCE_PASS, false>(&mut t[i..i + n + REDUCE_PASS], md, [mp; REDUCE_PASS], md, mp);
        i += REDUCE_PASS;
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

/// Entries per group of [`select_shared`]: one two-source permutation picks
/// each lane's entry among sixteen.
pub(crate) const SHARED_GROUP: usize = 16;

/// Like [`select`] for a table shared by all lanes, stored digit-major:
/// digit k of entry j at `table[k * stride + j]`, `stride` a multiple of
/// [`SHARED_GROUP`]. For every digit each group of sixteen entries is loaded
/// and permuted by the lanes' indices (`vpermt2q`), and the lane's group kept
/// by a masked move: every entry is read whatever the index, and no memory
/// address depends on it.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn select_shared(out: &mut [__m512i], table: &[u64], stride: usize, index: __m512i) {
    let groups = stride / SHARED_GROUP;
    let high = _mm512_srli_epi64::<4>(index);
    let masks: Vec<__mmask8> =
        (0..groups).map(|g| _mm512_cmpeq_epi64_mask(high, _mm512_set1_epi64(g as i64))).collect();
    for (o, digit) in out.iter_mut().zip(table.chunks_exact(stride)) {
        let mut x = _mm512_setzero_si512();
        for (group, &mask) in digit.chunks_exact(SHARED_GROUP).zip(&masks) {
            let lo: [u64; LANES] = std::array::from_fn(|i| group[i]);
            let hi: [u64; LANES] = std::array::from_fn(|i| group[LANES + i]);
            let picked = _mm512_permutex2var_epi64(bytemuck::cast(lo), index, bytemuck::cast(hi));
            x = _mm512_mask_mov_epi64(x, mask, picked);
        }
        *o = x;
    }
}
