//! Wiping secret big integers from memory.

use rug::Integer;

/// Overwrites every limb GMP allocated for `x` with zeros, then sets it to 0.
///
/// `rug::Integer` does not implement `Zeroize`; this reaches the limbs through
/// GMP's documented `mpz_limbs_modify` and writes them with volatile stores.
pub(crate) fn wipe(x: &mut Integer) {
    unsafe {
        let raw = x.as_raw_mut();
        let alloc = (*raw).alloc;
        if alloc > 0 {
            let limbs = gmp_mpfr_sys::gmp::mpz_limbs_modify(raw, alloc as gmp_mpfr_sys::gmp::size_t);
            for i in 0..alloc as usize {
                std::ptr::write_volatile(limbs.add(i), 0);
            }
            gmp_mpfr_sys::gmp::mpz_limbs_finish(raw, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wipe_zeroes_value() {
        let mut x = Integer::from(123456789u64) << 300;
        wipe(&mut x);
        assert_eq!(x, 0);
    }
}
