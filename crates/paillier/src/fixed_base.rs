//! Fixed-base exponentiation with a precomputed table (for DJN randomness).

use crate::int::Integer;
use rayon::prelude::*;

/// Powers of one base for fast exponentiation by exponents of a fixed size.
///
/// With window w the table holds, for each w-bit digit position j and digit
/// d in 1..2^w, the value base^(d * 2^(w*j)) mod m. An exponent of E bits then
/// costs ceil(E/w) multiplications and no squaring.
#[derive(Clone)]
pub struct FixedBaseTable {
    modulus: Integer,
    window: u32,
    exponent_bits: u32,
    /// rows[j][d-1] = base^(d * 2^(w*j)).
    rows: Vec<Vec<Integer>>,
    /// modulus + 1: congruent to 1 and as long as a table entry, multiplied
    /// in for a zero digit so that every digit costs one full multiplication.
    one: Integer,
}

impl FixedBaseTable {
    /// Builds the table for exponents below 2^exponent_bits. `window` is clamped to 1..=12.
    pub fn new(base: &Integer, exponent_bits: u32, window: u32, modulus: &Integer) -> Self {
        let window = window.clamp(1, 12);
        let positions = exponent_bits.div_ceil(window) as usize;
        let digits = (1usize << window) - 1;
        // Row j's base is base^(2^(w*j)): w squarings from the previous one.
        let mut row_bases = Vec::with_capacity(positions);
        let mut b = Integer::from(base % modulus);
        for _ in 0..positions {
            row_bases.push(b.clone());
            for _ in 0..window {
                b.square_mut();
                b %= modulus;
            }
        }
        let rows = row_bases
            .par_iter()
            .map(|row_base| {
                let mut row = Vec::with_capacity(digits);
                row.push(row_base.clone());
                for d in 1..digits {
                    let next = Integer::from(&row[d - 1] * row_base) % modulus;
                    row.push(next);
                }
                row
            })
            .collect();
        FixedBaseTable {
            modulus: modulus.clone(),
            window,
            exponent_bits,
            rows,
            one: Integer::from(modulus + 1u32),
        }
    }

    /// The window width in bits.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// Bytes the table's entries occupy (limbs only), for memory budgets.
    pub fn memory_bytes(&self) -> usize {
        let entry = self.modulus.significant_bits().div_ceil(64) as usize * 8;
        self.rows.iter().map(|r| r.len() * entry).sum()
    }

    /// Bytes a table for `exponent_bits`-bit exponents with `window`-bit
    /// windows takes under a modulus of `modulus_bits` bits, before building it.
    pub fn estimate_bytes(exponent_bits: u32, window: u32, modulus_bits: u32) -> usize {
        let window = window.clamp(1, 12);
        let rows = exponent_bits.div_ceil(window) as usize;
        rows * ((1usize << window) - 1) * (modulus_bits.div_ceil(64) as usize * 8)
    }

    /// base^e mod m for 0 <= e < 2^exponent_bits. Larger exponents are
    /// reduced to their low exponent_bits bits' worth of windows plus a plain
    /// exponentiation for the rest, so the result is always correct.
    ///
    /// The exponent is secret (DJN randomness): every window costs one
    /// multiplication by a full-length operand, a zero digit included, so the
    /// count of operations does not depend on it. The table entry is still
    /// selected by the digit (an index into memory): cache timing is not
    /// hidden, as docs/SECURITY.md says.
    pub fn pow(&self, e: &Integer) -> Integer {
        let mut acc = Integer::from(1u32);
        let w = self.window;
        let mask = (1u32 << w) - 1;
        for (j, row) in self.rows.iter().enumerate() {
            let d = digit(e, j as u32 * w, w) & mask;
            let factor = if d == 0 { &self.one } else { &row[d as usize - 1] };
            acc *= factor;
            acc %= &self.modulus;
        }
        if e.significant_bits() > self.exponent_bits.div_ceil(w) * w {
            // Not reached for DJN exponents; kept so the function is total.
            let high = Integer::from(e >> (self.rows.len() as u32 * w));
            let base_high = self.rows_base_power();
            let extra =
                base_high.pow_mod(&high, &self.modulus).expect("a non-negative exponent always has a power");
            acc *= extra;
            acc %= &self.modulus;
        }
        acc
    }

    /// base^(2^(w * positions)), the base for exponent bits beyond the table.
    fn rows_base_power(&self) -> Integer {
        let last = &self.rows[self.rows.len() - 1];
        Integer::from(&last[last.len() - 1] * &last[0]) % &self.modulus
    }
}

/// The `w`-bit digit of `e` starting at bit `start`.
pub(crate) fn digit(e: &Integer, start: u32, w: u32) -> u32 {
    let mut d = 0u32;
    for i in (0..w).rev() {
        d = (d << 1) | e.get_bit(start + i) as u32;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_pow_mod() {
        let m = Integer::from(1_000_003u64) * Integer::from(999_983u64);
        let base = Integer::from(123_457u64);
        for window in [1, 3, 4, 8] {
            let t = FixedBaseTable::new(&base, 40, window, &m);
            for e in [0u64, 1, 2, 255, 256, 123_456_789, (1 << 40) - 1, 1 << 45, u64::MAX] {
                let e = Integer::from(e);
                let want = base.clone().pow_mod(&e, &m).unwrap();
                assert_eq!(t.pow(&e), want, "window {window} e {e}");
            }
        }
    }
}
