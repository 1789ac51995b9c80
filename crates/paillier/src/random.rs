//! Random integers from the operating system's CSPRNG.

use crate::error::Result;
use crate::int::Order;
use crate::int::{Complete, Integer};
use zeroize::Zeroize;

/// A uniformly random integer in [0, 2^bits).
pub fn random_bits(bits: u32) -> Result<Integer> {
    let bytes = bits.div_ceil(8) as usize;
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)?;
    let excess = (bytes * 8) as u32 - bits;
    if excess > 0 && !buf.is_empty() {
        buf[0] &= 0xff >> excess;
    }
    let x = Integer::from_digits(&buf, Order::Msf);
    buf.zeroize();
    Ok(x)
}

/// A uniformly random integer in [0, bound) (rejection sampling; `bound`
/// must be positive).
pub fn random_below(bound: &Integer) -> Result<Integer> {
    assert!(*bound > 0, "random_below needs a positive bound");
    let bits = bound.significant_bits();
    loop {
        let x = random_bits(bits)?;
        if &x < bound {
            return Ok(x);
        }
    }
}

/// A uniformly random integer in [1, bound) that is coprime to `bound`
/// (rejection sampling).
pub fn random_unit(bound: &Integer) -> Result<Integer> {
    let bits = bound.significant_bits();
    loop {
        let x = random_bits(bits)?;
        if x > 0 && &x < bound && x.gcd_ref(bound).complete() == 1 {
            return Ok(x);
        }
    }
}
