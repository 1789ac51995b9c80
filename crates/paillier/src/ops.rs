//! Encryption, decryption and the homomorphic operations.

use crate::int::{Complete, Integer};

use crate::ciphertext::Ciphertext;
use crate::error::{Error, FormatError, RangeError, Result, SlotLayoutError};
use crate::keys::{PrivateKey, PublicKey};

impl PublicKey {
    /// Encrypts a signed plaintext with fresh randomness: (1 + m*n) * r^n mod n^2.
    pub fn encrypt(&self, m: &Integer) -> Result<Ciphertext> {
        let rn = self.random_rn()?;
        self.encrypt_with_rn(m, &rn)
    }

    /// Encrypts a signed 64-bit plaintext with fresh randomness.
    pub fn encrypt_i64(&self, m: i64) -> Result<Ciphertext> {
        self.encrypt(&Integer::from(m))
    }

    /// Encrypts with precomputed randomness r^n (from a pool): one multiplication.
    /// Each r^n must be used once only.
    pub fn encrypt_with_rn(&self, m: &Integer, rn: &Integer) -> Result<Ciphertext> {
        let mut c = self.encode_plaintext(m)?;
        c *= self.n();
        c += 1u32;
        c *= rn;
        c %= self.n_squared();
        Ok(Ciphertext(c))
    }

    /// Encrypts with a given r (the textbook form; for known-answer tests).
    pub fn encrypt_with_r(&self, m: &Integer, r: &Integer) -> Result<Ciphertext> {
        if *r <= 0 || r >= self.n() || r.gcd_ref(self.n()).complete() != 1 {
            return Err(Error::Format(FormatError::NotAUnit));
        }
        self.encrypt_with_rn(m, &self.rn_from_r(r))
    }

    /// Enc(a + b) = a * b mod n^2.
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Ciphertext {
        Ciphertext(Integer::from(&a.0 * &b.0) % self.n_squared())
    }

    /// Enc(a - b) = a * b^-1 mod n^2.
    pub fn sub(&self, a: &Ciphertext, b: &Ciphertext) -> Ciphertext {
        self.add(a, &self.neg(b))
    }

    /// Enc(-a) = a^-1 mod n^2.
    pub fn neg(&self, a: &Ciphertext) -> Ciphertext {
        // Ciphertexts are validated units mod n^2 (or products of them).
        Ciphertext(Integer::from(a.0.invert_ref(self.n_squared()).expect("a ciphertext is a unit mod n^2")))
    }

    /// Enc(a + m) for a plaintext m: a * (1 + m*n) mod n^2 (no fresh randomness).
    pub fn add_plain(&self, a: &Ciphertext, m: &Integer) -> Result<Ciphertext> {
        let mut t = self.encode_plaintext(m)?;
        t *= self.n();
        t += 1u32;
        t *= &a.0;
        t %= self.n_squared();
        Ok(Ciphertext(t))
    }

    /// Enc(k * a) for a signed 64-bit k. A negative k uses the inverse
    /// ciphertext and |k|, never an exponent near n.
    pub fn mul_i64(&self, a: &Ciphertext, k: i64) -> Ciphertext {
        let base = if k < 0 { self.neg(a) } else { a.clone() };
        Ciphertext(pow_small(&base.0, k.unsigned_abs(), self.n_squared()))
    }

    /// Enc(k * a) for a signed integer k of any size (|k| is reduced mod n,
    /// which leaves the plaintext unchanged).
    pub fn mul(&self, a: &Ciphertext, k: &Integer) -> Ciphertext {
        let base = if *k < 0 { self.neg(a) } else { a.clone() };
        let e = Integer::from(k.abs_ref()) % self.n();
        Ciphertext(base.0.pow_mod(&e, self.n_squared()).expect("a non-negative exponent always has a power"))
    }

    /// Packs ciphertexts into slots of `slot_bits` bits:
    /// Enc(sum_s a_s * 2^(slot_bits * s)), i.e. prod_s a_s^(2^(slot_bits * s))
    /// mod n^2, by Horner's rule (slot_bits squarings per further slot) on
    /// the backend in use. Enc(0) (the ciphertext 1) for no ciphertexts.
    /// Errors unless 1 <= slot_bits <= 63 ([`crate::SlotCodec::MAX_SLOT_BITS`]).
    pub fn pack_slots(&self, cts: &[Ciphertext], slot_bits: u32) -> Result<Ciphertext> {
        self.pack_slots_with(crate::arith::Backend::current(), cts, slot_bits)
    }

    /// [`PublicKey::pack_slots`] on a given backend: the chain is
    /// sequential, so on IFMA one number at a time with its digits across the
    /// lanes (see `ifma/single.rs`).
    pub fn pack_slots_with(
        &self,
        backend: crate::arith::Backend,
        cts: &[Ciphertext],
        slot_bits: u32,
    ) -> Result<Ciphertext> {
        backend.check()?;
        if !(1..=crate::SlotCodec::MAX_SLOT_BITS).contains(&slot_bits) {
            return Err(Error::SlotLayout(SlotLayoutError::Width { slot_bits, min: 1 }));
        }
        if let Some(ifma) = backend.ifma()
            && let Some(m) = self.n2_single(ifma)
        {
            let xs: Vec<&Integer> = cts.iter().map(|c| &c.0).collect();
            return Ok(Ciphertext(ifma.horner(&xs, slot_bits, m)));
        }
        let shift = Integer::from(1u32) << slot_bits;
        let Some((last, rest)) = cts.split_last() else { return Ok(Ciphertext(Integer::from(1u32))) };
        Ok(rest.iter().rev().fold(last.clone(), |acc, c| self.add(&self.mul(&acc, &shift), c)))
    }

    /// Multiplies in fresh randomness: same plaintext, unlinkable ciphertext.
    pub fn rerandomize(&self, a: &Ciphertext) -> Result<Ciphertext> {
        let rn = self.random_rn()?;
        Ok(self.rerandomize_with_rn(a, &rn))
    }

    /// Re-randomizes with a precomputed r^n (used once only).
    pub fn rerandomize_with_rn(&self, a: &Ciphertext, rn: &Integer) -> Ciphertext {
        Ciphertext(Integer::from(&a.0 * rn) % self.n_squared())
    }
}

/// base^e mod m by left-to-right square-and-multiply with plain GMP
/// multiplications, which beats mpz_powm's setup for exponents of a few bits.
pub(crate) fn pow_small(base: &Integer, e: u64, m: &Integer) -> Integer {
    if e == 0 {
        return Integer::from(1u32);
    }
    if e > 1 << 16 {
        let e = Integer::from(e);
        return Integer::from(base.pow_mod_ref(&e, m).expect("a positive exponent always has a power"));
    }
    let top = 63 - e.leading_zeros();
    let mut acc = base.clone();
    for bit in (0..top).rev() {
        acc.square_mut();
        acc %= m;
        if (e >> bit) & 1 == 1 {
            acc *= base;
            acc %= m;
        }
    }
    acc
}

impl PrivateKey {
    /// Decrypts to the signed plaintext in (-n/2, n/2], by CRT.
    pub fn decrypt(&self, c: &Ciphertext) -> Integer {
        if crate::arith::Backend::current() == crate::arith::Backend::Portable {
            return self.decrypt_portable(c);
        }
        self.public_key().decode_plaintext(self.decrypt_raw(&c.0))
    }

    /// Decrypts a plaintext expected to fit an i64.
    pub fn decrypt_i64(&self, c: &Ciphertext) -> Result<i64> {
        let m = self.decrypt(c);
        m.to_i64().ok_or_else(|| Error::PlaintextRange(RangeError::I64(m.significant_bits())))
    }
}
