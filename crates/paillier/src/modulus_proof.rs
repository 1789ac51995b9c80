//! A proof that n is a Paillier-Blum modulus: gcd(n, phi(n)) = 1 and
//! n = p^a q^b with p = q = 3 mod 4 (CGGMP21, eprint 2021/060, Figure 16,
//! "Pi^mod"), made non-interactive by Fiat-Shamir with [`REPETITIONS`]
//! challenges.
//!
//! Why a server asks for it: a client key such as n = p^2 q, or n = pq with
//! p | q - 1, passes every check of [`crate::PublicKey::new`], yet under it
//! the server's masks and re-randomizers randomize only part of the group,
//! and a client that built such a key can read weights from one session.
//! For such an n, gcd(n, phi(n)) > 1, so most y in Z_n have no n-th root and
//! each challenge is answered with probability at most 1/2 (a 3-prime n
//! fails the fourth-root test with probability 1/2 too).
//!
//! What it does not show: that both factors are large (an n with a 40-bit
//! prime factor passes; CGGMP21's Pi^fac would rule that out).
//!
//! Wire form, all numbers big-endian in exactly ceil(|n|/8) bytes: w, then
//! per challenge i: x_i, z_i, and one byte a_i + 2 b_i. The challenges are
//! y_i = SHA-256 expansion of ("ppdnn modulus proof v1", n, w, i) mod n.

use crate::int::Integer;
use crate::int::{IsPrime, Order};
use sha2::{Digest, Sha256};

use crate::ciphertext::to_fixed_bytes;
use crate::error::{Error, ProofError};
use crate::keys::{PrivateKey, PublicKey, secure_pow};
use crate::random::random_below;
use crate::secret::Secret;

/// Challenges of the non-interactive proof. A modulus with three Blum
/// prime factors answers each fourth-root challenge with probability 1/2,
/// and a prover may grind the Fiat-Shamir hash offline, so the count is the
/// proof's security in bits against such a key: 128, as the computational
/// parts of the private mode.
pub const REPETITIONS: usize = 128;

const DOMAIN: &[u8] = b"ppdnn modulus proof v1";

/// One answered challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    x: Integer,
    z: Integer,
    a: bool,
    b: bool,
}

/// A non-interactive proof that a key's n is a Paillier-Blum modulus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModulusProof {
    w: Integer,
    answers: Vec<Answer>,
}

impl ModulusProof {
    /// Bytes of a proof for an n of `n_bytes` bytes.
    pub fn encoded_len(n_bytes: usize) -> usize {
        n_bytes + REPETITIONS * (2 * n_bytes + 1)
    }

    /// The wire form for `key` (see the module docs).
    pub fn to_bytes(&self, key: &PublicKey) -> Vec<u8> {
        let width = key.bits().div_ceil(8) as usize;
        let mut out = Vec::with_capacity(Self::encoded_len(width));
        out.extend(to_fixed_bytes(&self.w, width));
        for a in &self.answers {
            out.extend(to_fixed_bytes(&a.x, width));
            out.extend(to_fixed_bytes(&a.z, width));
            out.push(u8::from(a.a) | (u8::from(a.b) << 1));
        }
        out
    }

    /// Parses the wire form for `key` (sizes and ranges checked; the proof
    /// itself by [`PublicKey::verify_modulus_proof`]).
    pub fn from_bytes(key: &PublicKey, bytes: &[u8]) -> Result<Self, Error> {
        let width = key.bits().div_ceil(8) as usize;
        let want = Self::encoded_len(width);
        if bytes.len() != want {
            return Err(ProofError::Length { got: bytes.len(), expected: want }.into());
        }
        let number = |b: &[u8]| {
            let x = Integer::from_digits(b, Order::Msf);
            if &x >= key.n() { Err(Error::from(ProofError::OutOfRange)) } else { Ok(x) }
        };
        let w = number(&bytes[..width])?;
        let answers = bytes[width..]
            .chunks(2 * width + 1)
            .map(|c| {
                let flags = c[2 * width];
                if flags > 3 {
                    return Err(Error::from(ProofError::Flags));
                }
                Ok(Answer {
                    x: number(&c[..width])?,
                    z: number(&c[width..2 * width])?,
                    a: flags & 1 == 1,
                    b: flags & 2 == 2,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(ModulusProof { w, answers })
    }
}

/// The Fiat-Shamir challenges for n and w.
fn challenges(n: &Integer, w: &Integer) -> Vec<Integer> {
    let width = n.significant_bits().div_ceil(8) as usize;
    let (nb, wb) = (to_fixed_bytes(n, width), to_fixed_bytes(w, width));
    (0..REPETITIONS as u64)
        .map(|i| {
            // |n| + 128 bits of hash output, reduced mod n: within 2^-128 of uniform.
            let mut bytes = Vec::with_capacity(width + 16 + 32);
            let mut counter = 0u32;
            while bytes.len() < width + 16 {
                let mut h = Sha256::new();
                h.update(DOMAIN);
                h.update((nb.len() as u64).to_le_bytes());
                h.update(&nb);
                h.update(&wb);
                h.update(i.to_le_bytes());
                h.update(counter.to_le_bytes());
                bytes.extend_from_slice(&h.finalize());
                counter += 1;
            }
            Integer::from_digits(&bytes[..width + 16], Order::Msf) % n
        })
        .collect()
}

/// The Legendre symbol of x mod the odd prime p is 1.
fn is_qr(x: &Integer, p: &Integer) -> bool {
    x.legendre(p) == 1
}

/// (-1)^a w^b y mod n.
fn signed(y: &Integer, w: &Integer, a: bool, b: bool, n: &Integer) -> Integer {
    let mut v = y.clone();
    if b {
        v = Integer::from(&v * w) % n;
    }
    if a {
        v = Integer::from(n - &v) % n;
    }
    v
}

/// The (a, b) and (-1)^a w^b y for which `is_square` holds, if any: for a
/// Blum modulus exactly one of the four is a square mod both primes.
fn square_variant(
    y: &Integer,
    w: &Integer,
    n: &Integer,
    is_square: impl Fn(&Integer) -> bool,
) -> Option<(bool, bool, Integer)> {
    [(false, false), (true, false), (false, true), (true, true)]
        .into_iter()
        .map(|(a, b)| (a, b, signed(y, w, a, b, n)))
        .find(|(_, _, v)| is_square(v))
}

/// The exponent ((p+1)/4)^2 mod (p-1): y to it is a fourth root mod the
/// Blum prime p of a y that is a square mod p (squaring permutes the squares).
fn fourth_root_exp(p: &Integer) -> Integer {
    let e = Secret(Integer::from(p + 1u32) >> 2u32);
    Integer::from(&*e * &*e) % Integer::from(p - 1u32)
}

impl PrivateKey {
    /// The proof that n is a Paillier-Blum modulus, made once per key (and
    /// shared by its clones): what a server asks of a private-mode client.
    pub fn modulus_proof(&self) -> Result<&ModulusProof, Error> {
        if let Some(p) = self.modulus_proof_cell().get() {
            return Ok(p);
        }
        let proof = self.prove_modulus()?;
        Ok(self.modulus_proof_cell().get_or_init(|| proof))
    }

    /// Proves that this key's n is a Paillier-Blum modulus. Needs Blum
    /// primes (p = q = 3 mod 4), which [`crate::generate_keypair`] makes;
    /// an older key without them cannot prove it and should be replaced.
    pub fn prove_modulus(&self) -> Result<ModulusProof, Error> {
        let (p, q) = self.primes();
        let three = |x: &Integer| x.mod_u(4) == 3;
        if !three(p) || !three(q) {
            return Err(ProofError::NotBlum.into());
        }
        let n = self.public_key().n();
        // w with Jacobi symbol -1: a residue mod exactly one of p, q.
        let w = loop {
            let w = random_below(n)?;
            if w.jacobi(n) == -1 {
                break w;
            }
        };
        // Secrets derived from p and q are wiped when dropped; the powers
        // with secret exponents are constant-time, modulo p and q (CRT).
        let phi = Secret(Integer::from(p - 1u32) * Integer::from(q - 1u32));
        let n_inv = Secret(n.clone().invert(&phi).map_err(|_| ProofError::NotBlum)?);
        let n_inv_p = Secret(&*n_inv % Integer::from(p - 1u32));
        let n_inv_q = Secret(&*n_inv % Integer::from(q - 1u32));
        let (ep, eq) = (Secret(fourth_root_exp(p)), Secret(fourth_root_exp(q)));
        let answers = challenges(n, &w)
            .into_iter()
            .map(|y| {
                let (a, b, y4) = square_variant(&y, &w, n, |v| is_qr(v, p) && is_qr(v, q))
                    .ok_or(ProofError::NoFourthRoot)?;
                let xp = Secret(secure_pow(&Integer::from(&y4 % p), &ep, p));
                let xq = Secret(secure_pow(&Integer::from(&y4 % q), &eq, q));
                let x = crt(&xp, &xq, p, q);
                let zp = Secret(secure_pow(&Integer::from(&y % p), &n_inv_p, p));
                let zq = Secret(secure_pow(&Integer::from(&y % q), &n_inv_q, q));
                let z = crt(&zp, &zq, p, q);
                Ok(Answer { x, z, a, b })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(ModulusProof { w, answers })
    }
}

/// The x mod pq with x = xp mod p and x = xq mod q (p prime; q^-1 mod p by
/// Fermat's little theorem, a constant-time power: p and q are secret).
fn crt(xp: &Integer, xq: &Integer, p: &Integer, q: &Integer) -> Integer {
    let q_inv = Secret(secure_pow(&Integer::from(q % p), &Integer::from(p - 2u32), p));
    let mut h = Secret((Integer::from(xp - xq) * &*q_inv) % p);
    if *h < 0 {
        *h += p;
    }
    xq + Integer::from(&*h * q)
}

impl PublicKey {
    /// Checks a proof that n is a Paillier-Blum modulus (see
    /// [`PrivateKey::prove_modulus`]). Costs one n-th power per challenge.
    pub fn verify_modulus_proof(&self, proof: &ModulusProof) -> Result<(), Error> {
        let n = self.n();
        if n.is_even() || n.is_probably_prime(25) != IsPrime::No {
            return Err(ProofError::Rejected.into());
        }
        if proof.answers.len() != REPETITIONS || proof.w.jacobi(n) != -1 {
            return Err(ProofError::Rejected.into());
        }
        let ok = challenges(n, &proof.w).iter().zip(&proof.answers).all(|(y, ans)| {
            let zn = ans.z.pow_mod_ref(n, n).map(Integer::from);
            if zn.as_ref() != Some(y) {
                return false;
            }
            let want = signed(y, &proof.w, ans.a, ans.b, n);
            let x4 = Integer::from(ans.x.pow_mod_ref(&Integer::from(4), n).expect("a positive exponent"));
            x4 == want
        });
        if ok { Ok(()) } else { Err(ProofError::Rejected.into()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyPolicy;
    use crate::testing::test_keypair;

    #[test]
    fn an_honest_proof_verifies_round_trips_and_binds_its_key() {
        let pair = test_keypair(512);
        let proof = pair.private.prove_modulus().unwrap();
        pair.public().verify_modulus_proof(&proof).unwrap();
        let bytes = proof.to_bytes(pair.public());
        assert_eq!(bytes.len(), ModulusProof::encoded_len(64));
        let back = ModulusProof::from_bytes(pair.public(), &bytes).unwrap();
        assert_eq!(back, proof);
        // Another key's proof, a changed answer, a flipped flag, a short proof: refused.
        let other = test_keypair(768);
        let theirs = other.private.prove_modulus().unwrap();
        assert!(ModulusProof::from_bytes(pair.public(), &theirs.to_bytes(other.public())).is_err());
        let mut forged = proof.clone();
        forged.answers[7].x += 1;
        assert_eq!(pair.public().verify_modulus_proof(&forged), Err(ProofError::Rejected.into()));
        let mut forged = proof.clone();
        forged.answers[0].a = !forged.answers[0].a;
        assert!(pair.public().verify_modulus_proof(&forged).is_err());
        let mut short = proof.clone();
        short.answers.pop();
        assert!(pair.public().verify_modulus_proof(&short).is_err());
        assert!(ModulusProof::from_bytes(pair.public(), &bytes[1..]).is_err());
    }

    /// A prime of `bits` bits, 3 mod 4 (from a seeded search: test data).
    fn blum_prime(bits: u32, seed: u64) -> Integer {
        let mut next = crate::testing::xorshift(seed);
        loop {
            let mut x = Integer::from(next()) << (bits - 64);
            x.set_bit(bits - 1, true);
            let p = Integer::from(x.next_prime_ref());
            if p.mod_u(4) == 3 && p.significant_bits() == bits {
                return p;
            }
        }
    }

    /// The best a holder of a degenerate key's factors can do: fourth roots
    /// where they exist, and n-th roots by an inverse of n modulo the part
    /// of phi(n) coprime to n.
    fn cheat(n: &Integer, primes: &[&Integer], phi_coprime: &Integer) -> ModulusProof {
        let w = (2u32..).map(Integer::from).find(|w| w.jacobi(n) == -1).expect("a non-residue");
        let d = n.clone().invert(phi_coprime).expect("n is invertible modulo phi's coprime part");
        let answers = challenges(n, &w)
            .into_iter()
            .map(|y| {
                let z = Integer::from(y.pow_mod_ref(&d, n).expect("positive"));
                let (a, b, v) = square_variant(&y, &w, n, |v| primes.iter().all(|p| is_qr(v, p)))
                    .unwrap_or((false, false, y.clone()));
                // A fourth root modulo each prime, put together by CRT (mod p^2 q
                // the root mod p is a guess: the proof must fail anyway).
                let (p, q) = (primes[0], primes[primes.len() - 1]);
                let xp = Integer::from(&v % p).pow_mod(&fourth_root_exp(p), p).unwrap();
                let xq = Integer::from(&v % q).pow_mod(&fourth_root_exp(q), q).unwrap();
                Answer { x: crt(&xp, &xq, p, q), z, a, b }
            })
            .collect();
        ModulusProof { w, answers }
    }

    #[test]
    fn degenerate_moduli_cannot_prove_themselves() {
        let policy = KeyPolicy::INSECURE_TESTING;
        // n = p^2 q: accepted by key validation, refused by the proof.
        let (p, q) = (blum_prime(170, 11), blum_prime(172, 12));
        let n = Integer::from(&p * &p) * &q;
        let key = PublicKey::new(n.clone(), None, policy).expect("validation alone accepts p^2 q");
        let phi_coprime = Integer::from(&p - 1u32) * Integer::from(&q - 1u32);
        assert_eq!(
            key.verify_modulus_proof(&cheat(&n, &[&p, &q], &phi_coprime)),
            Err(ProofError::Rejected.into())
        );
        // n = p q with p | q - 1.
        let p = blum_prime(200, 13);
        let mut next = crate::testing::xorshift(14);
        let q = loop {
            let k = Integer::from(next() >> 8) * 4 + 2;
            let q: Integer = Integer::from(&k * &p) + 1u32;
            if q.mod_u(4) == 3 && q.is_probably_prime(30) != IsPrime::No {
                break q;
            }
        };
        let n = Integer::from(&p * &q);
        let key = PublicKey::new(n.clone(), None, policy).expect("validation alone accepts p | q - 1");
        let phi_coprime = Integer::from(&p - 1u32) * (Integer::from(&q - 1u32) / &p);
        assert_eq!(
            key.verify_modulus_proof(&cheat(&n, &[&p, &q], &phi_coprime)),
            Err(ProofError::Rejected.into())
        );
        // Control: the same cheat on a well-formed key is a valid proof.
        let (p, q) = (blum_prime(256, 15), blum_prime(256, 16));
        let n = Integer::from(&p * &q);
        let key = PublicKey::new(n.clone(), None, policy).unwrap();
        let phi = Integer::from(&p - 1u32) * Integer::from(&q - 1u32);
        key.verify_modulus_proof(&cheat(&n, &[&p, &q], &phi)).unwrap();
    }
}
