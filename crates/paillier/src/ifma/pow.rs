//! Constant-time exponentiation on eight lanes: fixed windows, every table
//! entry read for every window (masked selection), the same sequence of
//! squarings and multiplications whatever the exponents.

use std::arch::x86_64::*;

use super::lanes::{self, Lanes, Modulus8, zero_lanes};

/// Window width of the variable-base exponentiation: 32-entry tables.
pub(crate) const WINDOW: u32 = 5;

/// The operations an exponentiation performed, for the test that the
/// sequence does not depend on the exponent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OpCount {
    /// Montgomery multiplications.
    pub muls: u64,
    /// Montgomery squarings.
    pub sqrs: u64,
    /// Full table scans (masked selections).
    pub scans: u64,
}

/// The `w`-bit digit of a little-endian limb vector starting at bit `start`
/// (bits past the end read as zero). Reads the limbs by position only.
pub(crate) fn limb_digit(limbs: &[u64], start: u32, w: u32) -> u64 {
    let (word, shift) = ((start / 64) as usize, start % 64);
    let lo = limbs.get(word).copied().unwrap_or(0) >> shift;
    let hi = if shift + w > 64 && shift > 0 {
        limbs.get(word + 1).copied().unwrap_or(0) << (64 - shift)
    } else {
        0
    };
    (lo | hi) & ((1u64 << w) - 1)
}

/// The vector of the eight lanes' digits at bit `start`.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn digit_vector(exps: &[&[u64]; lanes::LANES], start: u32, w: u32) -> __m512i {
    let d: [u64; lanes::LANES] = std::array::from_fn(|l| limb_digit(exps[l], start, w));
    bytemuck::cast(d)
}

/// base^e per lane, all in Montgomery form; `bits` bounds every exponent
/// (limbs little-endian) and alone decides the sequence of operations.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn pow(
    base: &[__m512i],
    exps: &[&[u64]; lanes::LANES],
    bits: u32,
    m: &Modulus8,
    count: &mut OpCount,
) -> Lanes {
    let n = m.digits();
    let mut t = lanes::scratch(m);
    let size = 1usize << WINDOW;
    let mut table: Vec<Lanes> = Vec::with_capacity(size);
    table.push(m.one().clone());
    table.push(base[..n].to_vec());
    for j in 2..size {
        let mut next = vec![zero_lanes(); n];
        lanes::mul(&mut next, &table[j - 1], base, m, &mut t);
        count.muls += 1;
        table.push(next);
    }
    let windows = bits.max(1).div_ceil(WINDOW);
    let mut acc = vec![zero_lanes(); n];
    let mut tmp = vec![zero_lanes(); n];
    let mut sel = vec![zero_lanes(); n];
    lanes::select(&mut acc, &table, digit_vector(exps, (windows - 1) * WINDOW, WINDOW));
    count.scans += 1;
    for win in (0..windows - 1).rev() {
        for _ in 0..WINDOW {
            lanes::sqr(&mut tmp, &acc, m, &mut t);
            std::mem::swap(&mut acc, &mut tmp);
            count.sqrs += 1;
        }
        lanes::select(&mut sel, &table, digit_vector(exps, win * WINDOW, WINDOW));
        count.scans += 1;
        lanes::mul(&mut tmp, &acc, &sel, m, &mut t);
        std::mem::swap(&mut acc, &mut tmp);
        count.muls += 1;
    }
    for x in table.iter_mut().chain([&mut tmp, &mut sel, &mut t]) {
        lanes::wipe_lanes(x);
    }
    acc
}

/// A fixed-base table shared by all lanes: for each window position j and
/// digit d < 2^w, base^(d * 2^(w j)) in Montgomery form, stored row by row,
/// digit-major within a row (see [`lanes::select_shared`]).
pub(crate) struct SharedTable {
    window: u32,
    rows: usize,
    digits: usize,
    /// Entries per digit: 2^w rounded up to a whole group (unused ones zero).
    stride: usize,
    entries: Vec<u64>,
}

impl SharedTable {
    /// Builds the table from the row bases base^(2^(w j)) (one per window
    /// position, normal form, below the modulus), eight rows at a time.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn build(row_bases: &[rug::Integer], window: u32, m: &Modulus8) -> Self {
        let n = m.digits();
        let size = 1usize << window;
        let stride = size.next_multiple_of(lanes::SHARED_GROUP);
        let mut entries = vec![0u64; row_bases.len() * n * stride];
        let mut t = lanes::scratch(m);
        let one_digits: &[[u64; lanes::LANES]] = bytemuck::cast_slice(m.one());
        for (batch, chunk) in row_bases.chunks(lanes::LANES).enumerate() {
            let unit = rug::Integer::from(1u32);
            let xs: [&rug::Integer; lanes::LANES] = std::array::from_fn(|l| chunk.get(l).unwrap_or(&unit));
            let base = lanes::to_mont(&lanes::lanes_from(xs, n), m, &mut t);
            let mut power = base.clone();
            let mut next = vec![zero_lanes(); n];
            for d in 0..size {
                let digits: &[[u64; lanes::LANES]] = match d {
                    0 => one_digits,
                    _ => bytemuck::cast_slice(&power),
                };
                for l in 0..chunk.len() {
                    let row = &mut entries[(batch * lanes::LANES + l) * n * stride..][..n * stride];
                    for (k, digit) in digits.iter().enumerate() {
                        row[k * stride + d] = digit[l];
                    }
                }
                if d >= 1 && d + 1 < size {
                    lanes::mul(&mut next, &power, &base, m, &mut t);
                    std::mem::swap(&mut power, &mut next);
                }
            }
        }
        SharedTable { window, rows: row_bases.len(), digits: n, stride, entries }
    }

    /// Bytes of the entries.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.entries.len() * 8
    }

    /// The eight lanes' base^e in Montgomery form, for exponents below
    /// 2^(w * rows): one selection and one multiplication per window, whatever e.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn pow(&self, exps: &[&[u64]; lanes::LANES], m: &Modulus8, count: &mut OpCount) -> Lanes {
        let n = self.digits;
        let mut t = lanes::scratch(m);
        let mut acc = vec![zero_lanes(); n];
        let mut tmp = vec![zero_lanes(); n];
        let mut sel = vec![zero_lanes(); n];
        for (j, row) in self.entries.chunks_exact(n * self.stride).enumerate() {
            let d = digit_vector(exps, j as u32 * self.window, self.window);
            let dest = if j == 0 { &mut acc } else { &mut sel };
            lanes::select_shared(dest, row, self.stride, d);
            count.scans += 1;
            if j > 0 {
                lanes::mul(&mut tmp, &acc, &sel, m, &mut t);
                std::mem::swap(&mut acc, &mut tmp);
                count.muls += 1;
            }
        }
        debug_assert_eq!(self.rows * n * self.stride, self.entries.len());
        for x in [&mut tmp, &mut sel, &mut t] {
            lanes::wipe_lanes(x);
        }
        acc
    }
}
