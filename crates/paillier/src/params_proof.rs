//! A proof that ring-Pedersen parameters hide what is committed under them:
//! CGGMP21's Pi^prm (eprint 2021/060, "ring-Pedersen parameters", Figure 17
//! in the 2021 versions), made non-interactive by Fiat-Shamir.
//!
//! The maker of parameters (n_hat, s, t) shows that it knows lambda with
//! s = t^lambda mod n_hat, so s lies in the group t generates. That is what
//! the prover of a factor proof ([`crate::factor_proof`]) needs before it
//! commits to its key's primes under someone else's parameters: with s in
//! `<t>`, a commitment s^p t^mu is t^(lambda p + mu), and a mask mu of 256
//! bits more than n_hat makes it statistically independent of p, whatever
//! n_hat is. Without the proof, a server could choose t of small order
//! (say n_hat prime with n_hat - 1 smooth and t = s^((n_hat - 1)/3)) and
//! read p from the commitment by discrete logarithms: the client's key.
//!
//! Each of [`ROUNDS`] rounds: the maker draws a below phi(n_hat) and sends
//! A = t^a; for the challenge bit e it answers z = a + e lambda mod
//! phi(n_hat); the verifier checks t^z = A s^e mod n_hat. If s is not in
//! `<t>`, no A can be answered for both bits (two answers give
//! s = t^(z1 - z0)), so a cheating maker passes with probability 2^-ROUNDS
//! per attempt. The challenge bits are the first [`ROUNDS`] bits of
//! SHA-256("ppdnn ring-pedersen membership v1", the parameters' wire form,
//! A_1 .. A_ROUNDS in wire form). z is uniform below phi(n_hat) whatever
//! lambda is: the proof shows nothing else.
//!
//! Wire form, for parameters of width w bytes: A_1 .. A_ROUNDS then
//! z_1 .. z_ROUNDS, each big-endian in exactly w bytes (2 ROUNDS w bytes:
//! 65,536 at 2048 bits).

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::ciphertext::to_fixed_bytes;
use crate::error::{Error, FactorProofError};
use crate::int::{Integer, Order};
use crate::keys::secure_pow;
use crate::random::random_below;
use crate::secret::Secret;

/// Rounds of the proof: a maker whose s is not in `<t>` passes with
/// probability 2^-128 per attempt.
pub const ROUNDS: usize = 128;

const DOMAIN: &[u8] = b"ppdnn ring-pedersen membership v1";

/// The proof that s = t^lambda mod n_hat for a lambda its maker knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipProof {
    commitments: Vec<Integer>,
    responses: Vec<Integer>,
}

/// t^z mod n_hat for every (public, non-negative) z, over rayon's threads.
/// On the portable backend (the browser) through a fixed-base table of t,
/// which needs about a fifth of the products of separate powers.
fn powers_of(t: &Integer, exponents: &[Integer], n_hat: &Integer) -> Vec<Integer> {
    if crate::arith::Backend::current() == crate::arith::Backend::Portable {
        let bits = exponents.iter().map(|z| z.significant_bits()).max().unwrap_or(0).max(1);
        let table = crate::portable::FixedBase::new(t, bits, crate::portable::Modulus::new(n_hat));
        return exponents.par_iter().map(|z| table.pow(z)).collect();
    }
    exponents
        .par_iter()
        .map(|z| Integer::from(t.pow_mod_ref(z, n_hat).expect("a non-negative exponent always has a power")))
        .collect()
}

/// The challenge bits for parameters in wire form and the commitments.
fn challenge(params_wire: &[u8], commitments: &[Integer], width: usize) -> [bool; ROUNDS] {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update((params_wire.len() as u64).to_le_bytes());
    h.update(params_wire);
    for a in commitments {
        h.update(to_fixed_bytes(a, width));
    }
    let digest = h.finalize();
    std::array::from_fn(|i| digest[i / 8] >> (7 - i % 8) & 1 == 1)
}

impl MembershipProof {
    /// Bytes of a proof for parameters of `width` bytes.
    pub fn encoded_len(width: usize) -> usize {
        2 * ROUNDS * width
    }

    /// Proves s = t^lambda mod n_hat, knowing lambda and phi(n_hat).
    /// `params_wire` is the parameters' wire form, which the challenge
    /// binds.
    pub(crate) fn prove(
        n_hat: &Integer,
        t: &Integer,
        lambda: &Integer,
        phi: &Integer,
        params_wire: &[u8],
    ) -> Result<Self, Error> {
        let width = params_wire.len().saturating_sub(4) / 3;
        let masks: Vec<Secret> =
            (0..ROUNDS).map(|_| random_below(phi).map(Secret)).collect::<Result<_, _>>()?;
        let commitments: Vec<Integer> = masks.par_iter().map(|a| secure_pow(t, a, n_hat)).collect();
        let bits = challenge(params_wire, &commitments, width);
        let responses = masks
            .iter()
            .zip(bits)
            .map(|(a, e)| if e { Integer::from(&**a + lambda) % phi } else { Integer::from(&**a) })
            .collect();
        Ok(MembershipProof { commitments, responses })
    }

    /// Checks the proof for s and t mod n_hat (`params_wire` their wire
    /// form). Costs [`ROUNDS`] powers of t with exponents of |n_hat| bits,
    /// spread over rayon's threads.
    pub(crate) fn verify(&self, n_hat: &Integer, s: &Integer, t: &Integer, params_wire: &[u8]) -> bool {
        let width = params_wire.len().saturating_sub(4) / 3;
        if self.commitments.len() != ROUNDS || self.responses.len() != ROUNDS {
            return false;
        }
        if self.commitments.iter().any(|a| *a <= 0 || a >= n_hat) {
            return false;
        }
        if self.responses.iter().any(|z| *z < 0) {
            return false;
        }
        let bits = challenge(params_wire, &self.commitments, width);
        let powers = powers_of(t, &self.responses, n_hat);
        (0..ROUNDS).all(|i| {
            let rhs = if bits[i] {
                Integer::from(&self.commitments[i] * s) % n_hat
            } else {
                self.commitments[i].clone()
            };
            powers[i] == rhs
        })
    }

    /// The wire form for parameters of `width` bytes.
    pub fn write(&self, width: usize, out: &mut Vec<u8>) {
        for x in self.commitments.iter().chain(&self.responses) {
            out.extend(to_fixed_bytes(x, width));
        }
    }

    /// Parses the wire form for parameters of `width` bytes (checked by
    /// [`MembershipProof::verify`], not here).
    pub fn parse(bytes: &[u8], width: usize) -> Result<Self, Error> {
        if bytes.len() != Self::encoded_len(width) {
            return Err(FactorProofError::ParamsLength {
                got: bytes.len(),
                expected: Self::encoded_len(width),
            }
            .into());
        }
        let mut numbers = bytes.chunks_exact(width).map(|c| Integer::from_digits(c, Order::Msf));
        let commitments = numbers.by_ref().take(ROUNDS).collect();
        let responses = numbers.collect();
        Ok(MembershipProof { commitments, responses })
    }
}
