//! Ciphertexts and their encodings.

use crate::int::Order;
use crate::int::{Complete, Integer};
use rayon::prelude::*;

use crate::error::{CiphertextError, Error, FormatError, Result};
use crate::keys::PublicKey;

/// The first ciphertext of a batch that failed validation.
#[derive(Debug, thiserror::Error)]
#[error("ciphertext {index}: {error}")]
pub struct BadCiphertext {
    /// Its position in the batch, from 0.
    pub index: usize,
    /// Why it was refused.
    pub error: Error,
}

/// A Paillier ciphertext: a unit of Z_{n^2} for the key it was made under.
///
/// Ciphertexts from outside must enter through [`PublicKey::ciphertext`] (or
/// the byte and decimal decoders), which check 0 < c < n^2 and gcd(c, n) = 1.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Ciphertext(pub(crate) Integer);

impl Ciphertext {
    /// The residue c.
    pub fn value(&self) -> &Integer {
        &self.0
    }

    /// Consumes the ciphertext, returning its residue.
    pub fn into_value(self) -> Integer {
        self.0
    }
}

impl PublicKey {
    /// Validates a residue from outside as a ciphertext under this key:
    /// 0 < c < n^2 and gcd(c, n) = 1.
    pub fn ciphertext(&self, c: Integer) -> Result<Ciphertext> {
        self.check_range(&c)?;
        if c.gcd_ref(self.n()).complete() != 1 {
            return Err(shares_a_factor());
        }
        Ok(Ciphertext(c))
    }

    /// 0 < c < n^2.
    fn check_range(&self, c: &Integer) -> Result<()> {
        if *c <= 0 {
            return Err(Error::InvalidCiphertext(CiphertextError::NotPositive));
        }
        if c >= self.n_squared() {
            return Err(Error::InvalidCiphertext(CiphertextError::TooLarge));
        }
        Ok(())
    }

    /// Decodes and validates ciphertexts of [`PublicKey::ciphertext_bytes`]
    /// bytes each, stored end to end: the checks of
    /// [`PublicKey::ciphertext_from_bytes`] for every one, with the
    /// coprimality checks batched (the product of all mod n is a unit iff
    /// each is: one gcd instead of one per ciphertext). On failure, the
    /// first bad ciphertext's position and why.
    pub fn ciphertexts_from_bytes(&self, data: &[u8]) -> std::result::Result<Vec<Ciphertext>, BadCiphertext> {
        let width = self.ciphertext_bytes();
        if !data.len().is_multiple_of(width) {
            return Err(BadCiphertext {
                index: data.len() / width,
                error: Error::InvalidCiphertext(CiphertextError::Width {
                    got: data.len() % width,
                    bits: self.bits(),
                    width,
                }),
            });
        }
        let values: Vec<Integer> = data
            .par_chunks(width)
            .enumerate()
            .map(|(index, bytes)| {
                let c = Integer::from_digits(bytes, Order::Msf);
                self.check_range(&c).map(|()| c).map_err(|error| BadCiphertext { index, error })
            })
            .collect::<std::result::Result<_, _>>()?;
        let n = self.n();
        let product = values
            .par_iter()
            .map(|c| Integer::from(c % n))
            .reduce(|| Integer::from(1u32), |a, b| Integer::from(&a * &b) % n);
        if product.gcd_ref(n).complete() != 1 {
            let index = values
                .iter()
                .position(|c| c.gcd_ref(n).complete() != 1)
                .expect("a product shares a factor with n only if one of its factors does");
            return Err(BadCiphertext { index, error: shares_a_factor() });
        }
        Ok(values.into_iter().map(Ciphertext).collect())
    }

    /// Encodes a ciphertext as big-endian unsigned bytes of the fixed width
    /// [`PublicKey::ciphertext_bytes`].
    pub fn ciphertext_to_bytes(&self, c: &Ciphertext) -> Vec<u8> {
        to_fixed_bytes(&c.0, self.ciphertext_bytes())
    }

    /// Decodes and validates a ciphertext of exactly [`PublicKey::ciphertext_bytes`] bytes.
    pub fn ciphertext_from_bytes(&self, bytes: &[u8]) -> Result<Ciphertext> {
        if bytes.len() != self.ciphertext_bytes() {
            return Err(Error::InvalidCiphertext(CiphertextError::Width {
                got: bytes.len(),
                bits: self.bits(),
                width: self.ciphertext_bytes(),
            }));
        }
        self.ciphertext(Integer::from_digits(bytes, Order::Msf))
    }

    /// Parses and validates a ciphertext written as a decimal number.
    pub fn ciphertext_from_decimal(&self, text: &str) -> Result<Ciphertext> {
        self.ciphertext(parse_decimal(text, "ciphertext")?)
    }
}

fn shares_a_factor() -> Error {
    Error::InvalidCiphertext(CiphertextError::SharesFactor)
}

/// Big-endian unsigned bytes of `x`, left-padded with zeros to `width`.
/// `x` must be non-negative and fit; the caller guarantees it (a residue mod n^2).
pub fn to_fixed_bytes(x: &Integer, width: usize) -> Vec<u8> {
    let digits = x.to_digits::<u8>(Order::Msf);
    let mut out = vec![0u8; width.saturating_sub(digits.len())];
    out.extend_from_slice(&digits);
    out
}

/// Parses a decimal integer (an optional leading '-', then digits only),
/// naming `what` in the error.
pub fn parse_decimal(text: &str, what: &str) -> Result<Integer> {
    let t = text.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Format(FormatError::NotDecimal { what: what.to_string(), text: abbreviate(t) }));
    }
    Integer::from_str_radix(t, 10)
        .map_err(|_| Error::Format(FormatError::NotDecimal { what: what.to_string(), text: abbreviate(t) }))
}

fn abbreviate(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}
