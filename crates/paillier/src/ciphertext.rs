//! Ciphertexts and their encodings.

use rug::integer::Order;
use rug::{Complete, Integer};

use crate::error::{Error, Result};
use crate::keys::PublicKey;

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
        if c <= 0 {
            return Err(Error::InvalidCiphertext("not positive".into()));
        }
        if &c >= self.n_squared() {
            return Err(Error::InvalidCiphertext("not below n^2".into()));
        }
        if c.gcd_ref(self.n()).complete() != 1 {
            return Err(Error::InvalidCiphertext("shares a factor with n".into()));
        }
        Ok(Ciphertext(c))
    }

    /// Encodes a ciphertext as big-endian unsigned bytes of the fixed width
    /// [`PublicKey::ciphertext_bytes`].
    pub fn ciphertext_to_bytes(&self, c: &Ciphertext) -> Vec<u8> {
        to_fixed_bytes(&c.0, self.ciphertext_bytes())
    }

    /// Decodes and validates a ciphertext of exactly [`PublicKey::ciphertext_bytes`] bytes.
    pub fn ciphertext_from_bytes(&self, bytes: &[u8]) -> Result<Ciphertext> {
        if bytes.len() != self.ciphertext_bytes() {
            return Err(Error::InvalidCiphertext(format!(
                "{} bytes where a {}-bit key's ciphertexts take {}",
                bytes.len(),
                self.bits(),
                self.ciphertext_bytes()
            )));
        }
        self.ciphertext(Integer::from_digits(bytes, Order::Msf))
    }

    /// Parses and validates a ciphertext written as a decimal number.
    pub fn ciphertext_from_decimal(&self, text: &str) -> Result<Ciphertext> {
        self.ciphertext(parse_decimal(text, "ciphertext")?)
    }
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
        return Err(Error::Format(format!("{what} is not a decimal integer: {:?}", abbreviate(t))));
    }
    Integer::from_str_radix(t, 10).map_err(|e| Error::Format(format!("{what} is not a decimal integer: {e}")))
}

fn abbreviate(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}
