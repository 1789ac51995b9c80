//! Wiping secret big integers from memory.
//!
//! What this reaches: the limbs GMP allocated for an `Integer` at the moment
//! it is wiped. What it cannot reach: copies GMP made in its own scratch space
//! during an operation (freed without wiping by GMP's allocator), and limbs
//! left behind when GMP reallocated a growing integer. docs/SECURITY.md says so.
//! On WebAssembly (no GMP) the pure-Rust integer overwrites the digits it
//! uses at the moment it is wiped, with the same limits.
#![allow(unsafe_code)]

use std::ops::{Deref, DerefMut};

use crate::int::Integer;
#[cfg(not(target_arch = "wasm32"))]
use zeroize::Zeroize;

/// Overwrites the digits of `x` in use with zeros, then sets it to 0.
#[cfg(target_arch = "wasm32")]
pub(crate) fn wipe(x: &mut Integer) {
    x.wipe();
}

/// Overwrites every limb GMP allocated for `x` with zeros, then sets it to 0.
#[cfg(not(target_arch = "wasm32"))]
///
/// `rug::Integer` does not implement `Zeroize`; this reaches the limbs through
/// GMP's documented `mpz_limbs_modify` and wipes them with `zeroize`.
pub(crate) fn wipe(x: &mut Integer) {
    // SAFETY: `as_raw_mut` gives the live mpz_t of `x`; `mpz_limbs_modify`
    // with its own `alloc` returns a pointer to exactly `alloc` limbs that GMP
    // owns for it (no reallocation happens, since alloc limbs are already
    // there); `mpz_limbs_finish(.., 0)` then makes the value 0, which is a
    // valid state for the limbs we zeroed.
    unsafe {
        let raw = x.as_raw_mut();
        let alloc = (*raw).alloc;
        if alloc > 0 {
            let limbs = gmp_mpfr_sys::gmp::mpz_limbs_modify(raw, alloc as gmp_mpfr_sys::gmp::size_t);
            std::slice::from_raw_parts_mut(limbs, alloc as usize).zeroize();
            gmp_mpfr_sys::gmp::mpz_limbs_finish(raw, 0);
        }
    }
}

/// An `Integer` holding a secret (a prime, phi, an intermediate that reveals
/// a factor): wiped when dropped, on every path, error paths included.
#[derive(Default)]
pub(crate) struct Secret(pub(crate) Integer);

impl Secret {
    /// Moves the value out (leaving 0 behind, which the drop then wipes).
    pub(crate) fn take(mut self) -> Integer {
        std::mem::take(&mut self.0)
    }
}

impl Deref for Secret {
    type Target = Integer;
    fn deref(&self) -> &Integer {
        &self.0
    }
}

impl DerefMut for Secret {
    fn deref_mut(&mut self) -> &mut Integer {
        &mut self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    /// The limbs of `x`: pointer and allocated count.
    fn limbs(x: &Integer) -> (*const gmp_mpfr_sys::gmp::limb_t, usize) {
        let raw = x.as_raw();
        // SAFETY: reading the fields of a live mpz_t.
        unsafe { ((*raw).d.as_ptr() as *const _, (*raw).alloc as usize) }
    }

    #[test]
    fn wipe_zeroes_every_allocated_limb() {
        let mut x = (Integer::from(0x1234_5678_9abc_def1u64) << 300) + 0xffu32;
        let (ptr, alloc) = limbs(&x);
        assert!(alloc >= 5);
        // SAFETY: x is alive and owns `alloc` limbs at `ptr`.
        let before = unsafe { std::slice::from_raw_parts(ptr, alloc) }.iter().filter(|&&l| l != 0).count();
        assert!(before >= 2, "the test value must have non-zero limbs");
        wipe(&mut x);
        assert_eq!(x, 0);
        let (ptr2, alloc2) = limbs(&x);
        assert_eq!((ptr2, alloc2), (ptr, alloc), "wiping must not reallocate");
        // SAFETY: x is still alive (value 0) and still owns the same limbs.
        let after = unsafe { std::slice::from_raw_parts(ptr, alloc) };
        assert!(after.iter().all(|&l| l == 0), "limbs left: {after:x?}");
    }

    #[test]
    fn secret_take_leaves_nothing_behind() {
        let s = Secret(Integer::from(77u32));
        assert_eq!(s.take(), 77);
    }
}
