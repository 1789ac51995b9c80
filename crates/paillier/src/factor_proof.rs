//! A proof that a key's n has no small factor: CGGMP21's "no small factor"
//! proof Pi^fac (eprint 2021/060, Figure 28 in the 2021 versions), made
//! non-interactive by Fiat-Shamir, with the parameters ell = [`ELL`] = 256
//! and epsilon = [`EPSILON`] = 512 that CGGMP21 (and LFDT-Lockness's
//! paillier-zk) use at the 128-bit security level.
//!
//! The prover (a client, who knows p and q with n = pq) commits to p and q
//! under the verifier's ring-Pedersen parameters ([`RingPedersen`]: an RSA
//! modulus n_hat and s, t in its squares with s = t^lambda) and shows that
//! its commitments open to factors of n whose size is within
//! 2^(ell + epsilon) of sqrt(n).
//!
//! # What it shows
//!
//! Take two accepting answers to one first message, with challenges e != e'.
//! CGGMP21's extraction (under the strong RSA assumption for n_hat, with
//! log_t s unknown to the prover) yields integers a = (z1 - z1')/(e - e') and
//! b = (z2 - z2')/(e - e') with a b = n. The verifier's range check
//! |z1|, |z2| <= 2^(ell+epsilon) isqrt(n) bounds |a| and |b| by
//! 2^(ell+epsilon+1) sqrt(n), hence each of them, being n divided by the
//! other, is at least sqrt(n) / 2^(ell+epsilon+1), which is at least
//! 2^((|n|-1)/2 - ell - epsilon - 1) = 2^((|n|-1)/2 - 769).
//! So: **the prover knows a split n = a b with both a, b >= 2^((|n|-1)/2 - 769)**:
//! 2^254.5 for |n| = 2048, 2^766.5 for |n| = 3072 ([`proven_factor_bits`]
//! gives the floor of that exponent). Alone, that does not make every prime
//! factor large (an n of three or more primes may hide a small one inside a
//! balanced split); together with [`crate::ModulusProof`] (n = pq with two
//! distinct primes), the only splits are {p, q} and {1, n}, and 1 is below
//! the bound, so **both primes of n exceed 2^254 at 2048 bits**. For
//! |n| <= 1,539 bits the bound is at most 1 and the proof shows nothing.
//!
//! Soundness error: one challenge per first message, e a 256-bit hash, so a
//! prover making Q hash queries cheats with probability about Q 2^-256.
//! Honest-verifier zero knowledge is statistical: every mask's range exceeds
//! what it hides by a factor of 2^255 or more.
//!
//! # Why the parameters need no safe primes
//!
//! CGGMP21 takes n_hat as a product of safe primes because there each party
//! proves statements under parameters of a party it does not trust, and its
//! reductions are phrased for the group of squares mod such an n_hat; here
//! the parameters protect only their maker, the verifier (our semi-honest
//! server), and the honest prover's privacy needs no more than s in `<t>`
//! (then every commitment s^a t^b is statistically hiding, whatever the
//! primes), which an honest generator guarantees. What soundness needs is
//! that the prover can neither factor n_hat, nor find log_t s, nor take
//! non-trivial roots in Z*_n_hat, the usual assumptions for an RSA modulus
//! of random primes (Damgard and Fujisaki, 2002, argue binding and
//! extraction in such groups without safe primes). A client that does not
//! trust the server needs more: that s is in `<t>`, or its commitments to
//! p and q could reveal them. The parameters therefore carry CGGMP21's
//! Pi^prm ([`crate::params_proof`]), made with lambda when they are
//! generated, and a prover checks it ([`RingPedersen::check_membership`])
//! before it commits to anything under them
//! ([`PrivateKey::prove_factors`] refuses otherwise).
//!
//! # Wire forms
//!
//! Parameters: a 4-byte big-endian width w (bytes of n_hat), then n_hat, s
//! and t, each big-endian in exactly w bytes (the "parameters' wire form",
//! which [`RingPedersen::digest`] hashes), then their membership proof
//! ([`crate::params_proof`], 2 x 128 x w bytes).
//!
//! Proof, for an n of |n| bits and an n_hat of |n_hat| bits: the five
//! commitments P, Q, A, B, T (each in [1, n_hat), big-endian in exactly
//! ceil(|n_hat|/8) bytes), then the signed numbers sigma, z1, z2, w1, w2, v.
//! A signed number of a field of k bits is a sign byte (0 for x >= 0, 1 for
//! x < 0) and |x| < 2^k big-endian in exactly ceil(k/8) bytes, with no
//! negative zero; k is ell + |n| + |n_hat| for sigma, ell + epsilon +
//! ceil(|n|/2) for z1 and z2, ell + epsilon + |n_hat| + 1 for w1 and w2, and
//! ell + epsilon + |n| + |n_hat| + 1 for v (what an honest prover's numbers
//! need). At |n| = |n_hat| = 2048 a proof takes 3,593 bytes.
//!
//! The challenge e is the SHA-256 digest, read as a 256-bit number, of
//! ("ppdnn factor proof v1", the byte length of n, n, the parameters'
//! [`RingPedersen::digest`], the byte length of the first message, and the
//! first message: P, Q, A, B, T and sigma in wire form).

use std::cmp::Ordering;

use crate::int::Order;
use crate::int::{Complete, Integer};
use sha2::{Digest, Sha256};

use crate::ciphertext::to_fixed_bytes;
use crate::error::{Error, FactorProofError};
use crate::keys::{PrivateKey, PublicKey, random_prime, secure_pow};
use crate::params_proof::MembershipProof;
use crate::random::{random_below, random_unit};
use crate::secret::Secret;
use std::sync::{Arc, OnceLock};

/// CGGMP21's ell: the slack, in bits, of the masks of the commitments'
/// randomness (the challenge is ell bits too).
pub const ELL: u32 = 256;

/// CGGMP21's epsilon: the extra slack, in bits, of the masks of p and q.
pub const EPSILON: u32 = 512;

/// Bits of the Fiat-Shamir challenge e (a SHA-256 digest).
pub const CHALLENGE_BITS: u32 = 256;

/// The smallest n_hat accepted, in bits (2047: a 2048-bit product of two
/// 1024-bit primes made elsewhere may be a bit short).
pub const MIN_PARAMS_BITS: u32 = 2047;

/// The largest n_hat accepted or generated, in bits.
pub const MAX_PARAMS_BITS: u32 = 8192;

/// Times the prover draws fresh masks when a response falls outside the
/// verifier's range (for a key's own p and q, each try fails with
/// probability below 2^-510).
const PROVER_ATTEMPTS: usize = 8;

const DOMAIN: &[u8] = b"ppdnn factor proof v1";
const PARAMS_DOMAIN: &[u8] = b"ppdnn ring-pedersen parameters v1";

/// The exponent of the bound the proof gives for an n of `n_bits` bits:
/// the prover knows a split n = a b with |a|, |b| >= 2^e for e =
/// (|n| - 1)/2 - ell - epsilon - 1, rounded down here, and 0 when that is
/// not positive (for |n| <= 1,539 bits the proof shows nothing). 254 at
/// 2048 bits, 766 at 3072.
pub fn proven_factor_bits(n_bits: u32) -> u32 {
    (n_bits.saturating_sub(1) / 2).saturating_sub(ELL + EPSILON + 1)
}

/// The verifier's ring-Pedersen parameters: an RSA modulus n_hat and
/// s, t in Z*_n_hat with t a square and s = t^lambda. The verifier (the
/// server) generates them once ([`RingPedersen::generate`]) and publishes
/// them ([`RingPedersen::to_bytes`]); it needs no secret to verify.
#[derive(Debug, Clone)]
pub struct RingPedersen {
    n_hat: Integer,
    s: Integer,
    t: Integer,
    /// The maker's proof that s is in `<t>`.
    membership: MembershipProof,
    /// Whether `membership` verifies, once checked.
    checked: Arc<OnceLock<bool>>,
}

/// Parameters are equal when their n_hat, s and t are (whatever their
/// proofs' randomness).
impl PartialEq for RingPedersen {
    fn eq(&self, other: &Self) -> bool {
        (&self.n_hat, &self.s, &self.t) == (&other.n_hat, &other.s, &other.t)
    }
}

impl Eq for RingPedersen {}

impl RingPedersen {
    /// Generates parameters with an n_hat of exactly `bits` bits (even, from
    /// 2048 to [`MAX_PARAMS_BITS`]): n_hat = p q for random primes of
    /// bits/2 bits, t = r^2 for a random unit r, s = t^lambda for a random
    /// lambda < phi(n_hat). The primes, r and lambda are wiped before it
    /// returns: verifying needs none of them.
    pub fn generate(bits: u32) -> Result<Self, Error> {
        if !bits.is_multiple_of(2) || bits <= MIN_PARAMS_BITS || bits > MAX_PARAMS_BITS {
            return Err(FactorProofError::ParamsBits(bits).into());
        }
        let (n_hat, phi) = loop {
            // Primes with their top two bits set: the product has exactly `bits` bits.
            let p = random_prime(bits / 2)?;
            let q = random_prime(bits / 2)?;
            if *p == *q {
                continue;
            }
            let phi = Secret(Integer::from(&*p - 1u32) * Integer::from(&*q - 1u32));
            break (Integer::from(&*p * &*q), phi);
        };
        loop {
            let r = Secret(random_unit(&n_hat)?);
            let t = Integer::from(r.square_ref()) % &n_hat;
            let lambda = Secret(random_below(&phi)?);
            let s = secure_pow(&t, &lambda, &n_hat);
            let mut params = RingPedersen {
                n_hat: n_hat.clone(),
                s,
                t,
                membership: MembershipProof::default(),
                checked: Arc::default(),
            };
            // Redrawn in the rare case of s or t in {0, 1, -1}, or s = t.
            if params.validate().is_ok() {
                params.membership =
                    MembershipProof::prove(&params.n_hat, &params.t, &lambda, &phi, &params.params_wire())?;
                return Ok(params);
            }
        }
    }

    /// Checks, once, the maker's proof that s is in the group t generates
    /// (CGGMP21's Pi^prm, [`crate::params_proof`]): without it, a
    /// commitment s^p t^mu need not hide p. [`PrivateKey::prove_factors`]
    /// calls it before committing to anything. Costs 128 powers mod n_hat
    /// with exponents of |n_hat| bits, the first time.
    pub fn check_membership(&self) -> Result<(), Error> {
        let ok = *self
            .checked
            .get_or_init(|| self.membership.verify(&self.n_hat, &self.s, &self.t, &self.params_wire()));
        if ok { Ok(()) } else { Err(FactorProofError::ParamsUnproven.into()) }
    }

    /// What a verifier can check of parameters it was handed rather than
    /// made (a server's `--factor-params` file): n_hat is not a prime and
    /// has no factor below 2^16. A prime n_hat (whose order the maker
    /// knows) lets a prover open its commitments to anything and forge
    /// factor proofs; neither check proves n_hat hard to factor (only
    /// making the parameters oneself does), but each refuses a file that
    /// would void the proofs outright.
    pub fn check_as_verifier(&self) -> Result<(), Error> {
        if self.n_hat.is_probably_prime(30) != crate::int::IsPrime::No {
            return Err(FactorProofError::InvalidParams("n_hat is prime").into());
        }
        if (3u32..1 << 16).step_by(2).any(|d| self.n_hat.mod_u(d) == 0) {
            return Err(FactorProofError::InvalidParams("n_hat has a small factor").into());
        }
        Ok(())
    }

    /// The RSA modulus n_hat.
    pub fn n_hat(&self) -> &Integer {
        &self.n_hat
    }

    /// The base s = t^lambda.
    pub fn s(&self) -> &Integer {
        &self.s
    }

    /// The base t, a square.
    pub fn t(&self) -> &Integer {
        &self.t
    }

    /// The size of n_hat in bits.
    pub fn bits(&self) -> u32 {
        self.n_hat.significant_bits()
    }

    /// Bytes of n_hat, and of each of s and t in the wire form.
    fn width(&self) -> usize {
        self.bits().div_ceil(8) as usize
    }

    /// Checks what a client can check of parameters it receives: n_hat odd
    /// of [`MIN_PARAMS_BITS`] to [`MAX_PARAMS_BITS`] bits; s and t units in
    /// (1, n_hat - 1); s != t.
    fn validate(&self) -> Result<(), Error> {
        let bad = |why: &'static str| Err(FactorProofError::InvalidParams(why).into());
        let bits = self.bits();
        if !(MIN_PARAMS_BITS..=MAX_PARAMS_BITS).contains(&bits) {
            return bad("n_hat must have 2047 to 8192 bits");
        }
        if self.n_hat.is_even() {
            return bad("n_hat is even");
        }
        let top = Integer::from(&self.n_hat - 1u32);
        for (x, range, unit) in [
            (&self.s, "s is not in (1, n_hat - 1)", "s shares a factor with n_hat"),
            (&self.t, "t is not in (1, n_hat - 1)", "t shares a factor with n_hat"),
        ] {
            if *x <= 1 || *x >= top {
                return bad(range);
            }
            if x.gcd_ref(&self.n_hat).complete() != 1 {
                return bad(unit);
            }
        }
        if self.s == self.t {
            return bad("s equals t");
        }
        Ok(())
    }

    /// The parameters' wire form without their proof: width, n_hat, s, t.
    fn params_wire(&self) -> Vec<u8> {
        let w = self.width();
        let mut out = Vec::with_capacity(4 + 3 * w);
        out.extend_from_slice(&(w as u32).to_be_bytes());
        for x in [&self.n_hat, &self.s, &self.t] {
            out.extend(to_fixed_bytes(x, w));
        }
        out
    }

    /// The wire form (see the module docs): the parameters, then their
    /// membership proof.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.params_wire();
        self.membership.write(self.width(), &mut out);
        out
    }

    /// Parses and validates the wire form: n_hat odd, of exactly the stated
    /// width and [`MIN_PARAMS_BITS`] to [`MAX_PARAMS_BITS`] bits; s and t
    /// units in (1, n_hat - 1); s != t; a membership proof of the right
    /// size (checked by [`RingPedersen::check_membership`], not here: it
    /// costs 128 powers).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let Some((header, rest)) = bytes.split_first_chunk::<4>() else {
            return Err(FactorProofError::InvalidParams("shorter than its 4-byte width").into());
        };
        let w = u32::from_be_bytes(*header) as usize;
        let (min, max) = (MIN_PARAMS_BITS.div_ceil(8) as usize, MAX_PARAMS_BITS.div_ceil(8) as usize);
        if !(min..=max).contains(&w) {
            return Err(FactorProofError::InvalidParams("a width outside 256 to 1024 bytes").into());
        }
        let expected = 3 * w + MembershipProof::encoded_len(w);
        if rest.len() == 3 * w {
            return Err(FactorProofError::InvalidParams(
                "no proof that s is in the group t generates (parameters made by an older ppdnn: delete the file, and new ones are made)",
            )
            .into());
        }
        if rest.len() != expected {
            return Err(FactorProofError::ParamsLength { got: bytes.len(), expected: 4 + expected }.into());
        }
        let number = |i: usize| Integer::from_digits(&rest[i * w..(i + 1) * w], Order::Msf);
        let params = RingPedersen {
            n_hat: number(0),
            s: number(1),
            t: number(2),
            membership: MembershipProof::parse(&rest[3 * w..], w)?,
            checked: Arc::default(),
        };
        if params.width() != w {
            return Err(FactorProofError::InvalidParams("n_hat does not fill its stated width").into());
        }
        params.validate()?;
        Ok(params)
    }

    /// SHA-256 of a domain string and the wire form: what a client and the
    /// server compare to agree on the parameters, and what binds a proof to
    /// them.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(PARAMS_DOMAIN);
        h.update(self.params_wire());
        h.finalize().into()
    }
}

/// The sizes of a proof's fields for one n and one n_hat.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Bytes of a commitment (of n_hat).
    residue: usize,
    /// Bits of the magnitudes of sigma, z1 and z2, w1 and w2, v.
    sigma: u64,
    z: u64,
    w: u64,
    v: u64,
}

impl Layout {
    fn new(n_bits: u32, params: &RingPedersen) -> Self {
        let (n, h) = (u64::from(n_bits), u64::from(params.bits()));
        let (l, le) = (u64::from(ELL), u64::from(ELL + EPSILON));
        Layout {
            residue: params.width(),
            sigma: l + n + h,
            z: le + n.div_ceil(2),
            w: le + h + 1,
            v: le + n + h + 1,
        }
    }

    /// Bytes of a signed number of a `bits`-bit field: a sign byte and the magnitude.
    fn signed(bits: u64) -> usize {
        1 + bits.div_ceil(8) as usize
    }

    /// Bytes of the first message: P, Q, A, B, T and sigma.
    fn commitment_len(&self) -> usize {
        5 * self.residue + Self::signed(self.sigma)
    }

    /// Bytes of a proof.
    fn len(&self) -> usize {
        self.commitment_len() + 2 * Self::signed(self.z) + 2 * Self::signed(self.w) + Self::signed(self.v)
    }
}

/// Whether |x| < 2^bits.
fn fits(x: &Integer, bits: u64) -> bool {
    u64::from(Integer::from(x.abs_ref()).significant_bits()) <= bits
}

fn put_signed(out: &mut Vec<u8>, x: &Integer, bits: u64) {
    out.push(u8::from(*x < 0));
    out.extend(to_fixed_bytes(&Integer::from(x.abs_ref()), Layout::signed(bits) - 1));
}

/// 2^(ell + epsilon) isqrt(n): the bound on |z1| and |z2|.
fn z_bound(n: &Integer) -> Integer {
    Integer::from(n.sqrt_ref()) << (ELL + EPSILON)
}

/// A non-interactive proof that a key's n splits into two large factors
/// (see the module docs for exactly what it shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorProof {
    /// P = s^p t^mu, Q = s^q t^nu, A = s^alpha t^x, B = s^beta t^y,
    /// T = Q^alpha t^r, all mod n_hat.
    cp: Integer,
    cq: Integer,
    ca: Integer,
    cb: Integer,
    ct: Integer,
    /// The randomness of R = s^n t^sigma, which the verifier computes.
    sigma: Integer,
    /// z1 = alpha + e p, z2 = beta + e q.
    z1: Integer,
    z2: Integer,
    /// w1 = x + e mu, w2 = y + e nu.
    w1: Integer,
    w2: Integer,
    /// v = r + e (sigma - nu p).
    v: Integer,
}

impl FactorProof {
    /// Bytes of a proof for an n of `n_bits` bits under `params`: 3,593
    /// at 2048 bits for both.
    pub fn encoded_len(n_bits: u32, params: &RingPedersen) -> usize {
        Layout::new(n_bits, params).len()
    }

    /// The first message in wire form: P, Q, A, B, T and sigma.
    fn commitment_bytes(&self, layout: &Layout) -> Vec<u8> {
        let mut out = Vec::with_capacity(layout.len());
        for x in [&self.cp, &self.cq, &self.ca, &self.cb, &self.ct] {
            out.extend(to_fixed_bytes(x, layout.residue));
        }
        put_signed(&mut out, &self.sigma, layout.sigma);
        out
    }

    /// The wire form for `key` and `params` (see the module docs), of
    /// [`FactorProof::encoded_len`] bytes for a proof made by
    /// [`PrivateKey::prove_factors`] or parsed by [`FactorProof::from_bytes`]
    /// for the same key and parameters.
    pub fn to_bytes(&self, key: &PublicKey, params: &RingPedersen) -> Vec<u8> {
        let layout = Layout::new(key.bits(), params);
        let mut out = self.commitment_bytes(&layout);
        for (x, bits) in [
            (&self.z1, layout.z),
            (&self.z2, layout.z),
            (&self.w1, layout.w),
            (&self.w2, layout.w),
            (&self.v, layout.v),
        ] {
            put_signed(&mut out, x, bits);
        }
        out
    }

    /// Parses the wire form for `key` and `params`, checking its length, the
    /// commitments' range [1, n_hat), the sign bytes and the widths of the
    /// signed numbers (the proof itself is checked by
    /// [`PublicKey::verify_factors_proof`]).
    pub fn from_bytes(key: &PublicKey, params: &RingPedersen, bytes: &[u8]) -> Result<Self, Error> {
        let layout = Layout::new(key.bits(), params);
        let want = layout.len();
        if bytes.len() != want {
            return Err(FactorProofError::Length { got: bytes.len(), expected: want }.into());
        }
        let mut rest = bytes;
        let mut take = |len: usize| {
            let (head, tail) = rest.split_at(len);
            rest = tail;
            head
        };
        let mut residue = |what: &'static str| {
            let x = Integer::from_digits(take(layout.residue), Order::Msf);
            if x == 0 || &x >= params.n_hat() {
                Err(Error::from(FactorProofError::OutOfRange(what)))
            } else {
                Ok(x)
            }
        };
        let (cp, cq, ca, cb, ct) =
            (residue("P")?, residue("Q")?, residue("A")?, residue("B")?, residue("T")?);
        let mut signed = |bits: u64, what: &'static str| {
            let field = take(Layout::signed(bits));
            let (sign, magnitude) = (field[0], Integer::from_digits(&field[1..], Order::Msf));
            if sign > 1 || (sign == 1 && magnitude == 0) || !fits(&magnitude, bits) {
                return Err(Error::from(FactorProofError::OutOfRange(what)));
            }
            Ok(if sign == 1 { -magnitude } else { magnitude })
        };
        let sigma = signed(layout.sigma, "sigma")?;
        let (z1, z2) = (signed(layout.z, "z1")?, signed(layout.z, "z2")?);
        let (w1, w2) = (signed(layout.w, "w1")?, signed(layout.w, "w2")?);
        let v = signed(layout.v, "v")?;
        Ok(FactorProof { cp, cq, ca, cb, ct, sigma, z1, z2, w1, w2, v })
    }

    /// Every number within its field: commitments in [1, n_hat), signed
    /// numbers within their widths.
    fn well_formed(&self, layout: &Layout, n_hat: &Integer) -> bool {
        [&self.cp, &self.cq, &self.ca, &self.cb, &self.ct].into_iter().all(|x| *x > 0 && x < n_hat)
            && fits(&self.sigma, layout.sigma)
            && fits(&self.z1, layout.z)
            && fits(&self.z2, layout.z)
            && fits(&self.w1, layout.w)
            && fits(&self.w2, layout.w)
            && fits(&self.v, layout.v)
    }
}

/// The Fiat-Shamir challenge for n, the parameters and the first message
/// (see the module docs).
fn challenge(n: &Integer, params: &RingPedersen, commitment: &[u8]) -> Integer {
    let nb = to_fixed_bytes(n, n.significant_bits().div_ceil(8) as usize);
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update((nb.len() as u64).to_le_bytes());
    h.update(&nb);
    h.update(params.digest());
    h.update((commitment.len() as u64).to_le_bytes());
    h.update(commitment);
    Integer::from_digits(&h.finalize(), Order::Msf)
}

/// A uniformly random integer in [-k, k] (secret: wiped when dropped).
fn random_signed(k: &Integer) -> Result<Secret, Error> {
    let width = Integer::from(k << 1u32) + 1u32;
    let mut x = Secret(random_below(&width)?);
    *x -= k;
    Ok(x)
}

/// base^e mod m for a secret e of either sign and a public base: the
/// constant-time power of |e|, of the base or (for e < 0) of its inverse.
/// Only e's sign steers a branch. The signs it reaches are p's and q's
/// (positive), those of alpha, beta, x, y and r (each the sign of its
/// published response z1, z2, w1, w2 or v except with probability at most
/// 2^-254), and those of mu and nu (one bit of a mask whose range is 2^256
/// times what hiding needs).
fn signed_secure_pow(base: &Integer, e: &Integer, m: &Integer) -> Result<Integer, Error> {
    let magnitude = Secret(Integer::from(e.abs_ref()));
    if *e < 0 {
        let inverse = base
            .invert_ref(m)
            .map(Integer::from)
            .ok_or(FactorProofError::InvalidParams("a base is not a unit mod n_hat"))?;
        Ok(secure_pow(&inverse, &magnitude, m))
    } else {
        Ok(secure_pow(base, &magnitude, m))
    }
}

/// s^a t^b mod n_hat for secret a and b.
fn commit(params: &RingPedersen, a: &Integer, b: &Integer) -> Result<Integer, Error> {
    let sa = signed_secure_pow(&params.s, a, &params.n_hat)?;
    let tb = signed_secure_pow(&params.t, b, &params.n_hat)?;
    Ok(sa * tb % &params.n_hat)
}

/// One run of the prover (Figure 28) for n = p q, whatever the sizes of p
/// and q: the responses may fall outside the verifier's range.
fn prove(n: &Integer, p: &Integer, q: &Integer, params: &RingPedersen) -> Result<FactorProof, Error> {
    let n_hat = &params.n_hat;
    let n_n_hat = Integer::from(n * n_hat);
    let k_alpha = z_bound(n);
    let k_mu = Integer::from(n_hat << ELL);
    let k_sigma = Integer::from(&n_n_hat << ELL);
    let k_r = Integer::from(&n_n_hat << (ELL + EPSILON));
    let k_x = Integer::from(n_hat << (ELL + EPSILON));
    let (alpha, beta) = (random_signed(&k_alpha)?, random_signed(&k_alpha)?);
    let (mu, nu) = (random_signed(&k_mu)?, random_signed(&k_mu)?);
    let sigma = random_signed(&k_sigma)?.take();
    let r = random_signed(&k_r)?;
    let (x, y) = (random_signed(&k_x)?, random_signed(&k_x)?);

    let cp = commit(params, p, &mu)?;
    let cq = commit(params, q, &nu)?;
    let ca = commit(params, &alpha, &x)?;
    let cb = commit(params, &beta, &y)?;
    let ct = signed_secure_pow(&cq, &alpha, n_hat)? * signed_secure_pow(&params.t, &r, n_hat)? % n_hat;
    let zero = Integer::new;
    let mut proof =
        FactorProof { cp, cq, ca, cb, ct, sigma, z1: zero(), z2: zero(), w1: zero(), w2: zero(), v: zero() };

    let e = challenge(n, params, &proof.commitment_bytes(&Layout::new(n.significant_bits(), params)));
    // The products of e with secrets are secret until masked.
    let times_e = |x: &Integer| Secret(Integer::from(&e * x));
    proof.z1 = Integer::from(&*alpha + &*times_e(p));
    proof.z2 = Integer::from(&*beta + &*times_e(q));
    proof.w1 = Integer::from(&*x + &*times_e(&mu));
    proof.w2 = Integer::from(&*y + &*times_e(&nu));
    let nu_p = Secret(Integer::from(&*nu * p));
    let sigma_hat = Secret(Integer::from(&proof.sigma - &*nu_p));
    proof.v = Integer::from(&*r + &*times_e(&sigma_hat));
    Ok(proof)
}

impl PrivateKey {
    /// Proves that this key's n splits into two large factors, p and q
    /// (see the module docs), under the verifier's `params`. Costs ten
    /// constant-time powers mod n_hat with exponents of 1,024 to 4,864
    /// bits at 2048 bits.
    /// Refuses (with [`FactorProofError::ParamsUnproven`]) parameters
    /// whose membership proof does not verify: committing under them could
    /// reveal p and q.
    pub fn prove_factors(&self, params: &RingPedersen) -> Result<FactorProof, Error> {
        params.check_membership()?;
        let (p, q) = self.primes();
        let n = self.public_key().n();
        let bound = z_bound(n);
        for _ in 0..PROVER_ATTEMPTS {
            let proof = prove(n, p, q, params)?;
            if proof.z1.cmp_abs(&bound) != Ordering::Greater && proof.z2.cmp_abs(&bound) != Ordering::Greater
            {
                return Ok(proof);
            }
        }
        Err(FactorProofError::Unprovable.into())
    }
}

impl PublicKey {
    /// Checks a proof that n splits into two factors of at least
    /// 2^[`proven_factor_bits`] each (see [`PrivateKey::prove_factors`] and
    /// the module docs), under the verifier's own `params`. Costs powers mod
    /// n_hat with exponents of about 19,000 bits in all at 2048 bits.
    pub fn verify_factors_proof(&self, params: &RingPedersen, proof: &FactorProof) -> Result<(), Error> {
        let reject = || Err(FactorProofError::Rejected.into());
        let (n, n_hat, s, t) = (self.n(), &params.n_hat, &params.s, &params.t);
        let layout = Layout::new(self.bits(), params);
        if !proof.well_formed(&layout, n_hat) {
            return reject();
        }
        // The range check: what bounds the factors.
        let bound = z_bound(n);
        if proof.z1.cmp_abs(&bound) == Ordering::Greater || proof.z2.cmp_abs(&bound) == Ordering::Greater {
            return reject();
        }
        let e = challenge(n, params, &proof.commitment_bytes(&layout));
        // Public exponents of either sign: a power of a non-unit is None, a refusal.
        let pow = |base: &Integer, x: &Integer| base.pow_mod_ref(x, n_hat).map(Integer::from);
        let mul = |a: Integer, b: Integer| a * b % n_hat;
        let equal =
            |lhs: Option<Integer>, rhs: Option<Integer>| matches!((lhs, rhs), (Some(l), Some(r)) if l == r);
        // s^z1 t^w1 = A P^e and s^z2 t^w2 = B Q^e.
        for (z, w, a, c) in
            [(&proof.z1, &proof.w1, &proof.ca, &proof.cp), (&proof.z2, &proof.w2, &proof.cb, &proof.cq)]
        {
            let lhs = pow(s, z).zip(pow(t, w)).map(|(x, y)| mul(x, y));
            let rhs = pow(c, &e).map(|x| mul(a.clone(), x));
            if !equal(lhs, rhs) {
                return reject();
            }
        }
        // Q^z1 t^v = T R^e with R = s^n t^sigma, checked as
        // Q^z1 t^(v - sigma e) = T s^(n e) (one power of t fewer).
        let v_minus = &proof.v - Integer::from(&proof.sigma * &e);
        let lhs = pow(&proof.cq, &proof.z1).zip(pow(t, &v_minus)).map(|(x, y)| mul(x, y));
        let rhs = pow(s, &Integer::from(n * &e)).map(|x| mul(proof.ct.clone(), x));
        if !equal(lhs, rhs) {
            return reject();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;
    use std::time::Instant;

    use rug::integer::IsPrime;

    use super::*;
    use crate::KeyPolicy;
    use crate::testing::{test_keypair, xorshift};

    /// Parameters A, generated once per test binary.
    fn params() -> &'static RingPedersen {
        static PARAMS: OnceLock<RingPedersen> = OnceLock::new();
        PARAMS.get_or_init(|| RingPedersen::generate(2048).expect("2048-bit parameters"))
    }

    /// Parameters B, another n_hat.
    fn other_params() -> &'static RingPedersen {
        static PARAMS: OnceLock<RingPedersen> = OnceLock::new();
        PARAMS.get_or_init(|| RingPedersen::generate(2048).expect("2048-bit parameters"))
    }

    /// An honest proof for the 2048-bit test key under parameters A, made once.
    fn honest() -> &'static FactorProof {
        static PROOF: OnceLock<FactorProof> = OnceLock::new();
        PROOF.get_or_init(|| test_keypair(2048).private.prove_factors(params()).expect("an honest proof"))
    }

    fn rejected() -> Result<(), Error> {
        Err(FactorProofError::Rejected.into())
    }

    #[test]
    fn generated_parameters_are_valid_and_round_trip() {
        let a = params();
        assert_eq!(a.bits(), 2048);
        assert!(a.validate().is_ok());
        let bytes = a.to_bytes();
        assert_eq!(bytes.len(), 4 + 3 * 256 + 2 * crate::params_proof::ROUNDS * 256);
        assert_eq!(&RingPedersen::from_bytes(&bytes).unwrap(), a);
        assert_ne!(a.digest(), other_params().digest());
        assert_eq!(a.digest(), RingPedersen::from_bytes(&bytes).unwrap().digest());
        for bits in [0, 1024, 2046, 2047, 2049, 8194] {
            assert_eq!(RingPedersen::generate(bits), Err(FactorProofError::ParamsBits(bits).into()));
        }
    }

    #[test]
    fn malformed_parameters_are_refused() {
        let a = params();
        let good = a.to_bytes();
        let refused = |bytes: &[u8]| RingPedersen::from_bytes(bytes).is_err();
        assert!(refused(&[]));
        assert!(refused(&good[..3]));
        assert!(refused(&good[..good.len() - 1]));
        assert!(refused(&[&good[..], &[0]].concat()));
        // A width header that disagrees with the length, or is absurd.
        for w in [0u32, 255, 257, 1025, u32::MAX] {
            let mut b = good.clone();
            b[..4].copy_from_slice(&w.to_be_bytes());
            assert!(refused(&b), "width {w}");
        }
        let with = |n_hat: &Integer, s: &Integer, t: &Integer| {
            let w = n_hat.significant_bits().div_ceil(8) as usize;
            let mut b = (w as u32).to_be_bytes().to_vec();
            for x in [n_hat, s, t] {
                b.extend(to_fixed_bytes(x, w));
            }
            assert!(RingPedersen::from_bytes(&b).is_err(), "parameters without their proof");
            // With a proof of the right size (A's, which shows nothing for these).
            b.extend(&good[4 + 3 * 256..]);
            RingPedersen::from_bytes(&b)
        };
        let (n, s, t) = (a.n_hat(), a.s(), a.t());
        assert_eq!(with(n, s, t).as_ref(), Ok(a));
        let even = Integer::from(n - 1u32);
        let small = Integer::from(1u32) << 2000u32;
        let small = small + 1u32;
        let n_minus_1 = Integer::from(n - 1u32);
        let zero = Integer::new();
        let one = Integer::from(1u32);
        for (nn, ss, tt) in [
            (&even, s, t),
            (&small, &Integer::from(3u32), &Integer::from(5u32)),
            (n, s, s),
            (n, &zero, t),
            (n, &one, t),
            (n, s, &one),
            (n, &n_minus_1, t),
            (n, s, n),
        ] {
            assert!(with(nn, ss, tt).is_err());
        }
        // Parameters without their proof (an older ppdnn's file) are refused, saying so.
        let bare = RingPedersen::from_bytes(&good[..4 + 3 * 256]).unwrap_err();
        assert!(bare.to_string().contains("no proof that s is in the group t generates"), "{bare}");
        // s >= n_hat within the width.
        let mut b = good.clone();
        b[4 + 256..4 + 512].fill(0xff);
        assert!(refused(&b));
        // A non-unit s: n_hat' = 3 k odd, s = 3.
        let k = (Integer::from(1u32) << 2046u32) + 1u32;
        let composite = Integer::from(&k * 3u32);
        assert!(composite.is_odd() && composite.significant_bits() == 2048);
        assert_eq!(
            with(&composite, &Integer::from(3u32), &Integer::from(4u32)),
            Err(FactorProofError::InvalidParams("s shares a factor with n_hat").into())
        );
        // A leading zero byte: n_hat narrower than its stated width.
        let mut b = vec![0, 0, 1, 1];
        for x in [n, s, t] {
            b.extend(to_fixed_bytes(x, 257));
        }
        assert!(refused(&b));
    }

    #[test]
    fn an_honest_proof_verifies_and_round_trips() {
        let pair = test_keypair(2048);
        let (key, a) = (pair.public(), params());
        let proof = honest();
        key.verify_factors_proof(a, proof).unwrap();
        let bytes = proof.to_bytes(key, a);
        assert_eq!(bytes.len(), FactorProof::encoded_len(2048, a));
        assert_eq!(bytes.len(), 3593);
        let back = FactorProof::from_bytes(key, a, &bytes).unwrap();
        assert_eq!(&back, proof);
        key.verify_factors_proof(a, &back).unwrap();
        assert_eq!(proven_factor_bits(2048), 254);
        assert_eq!(proven_factor_bits(3072), 766);
        assert_eq!(proven_factor_bits(1024), 0);
    }

    #[test]
    fn a_proof_binds_its_key_and_its_parameters() {
        let pair = test_keypair(2048);
        let (key, a, b) = (pair.public(), params(), other_params());
        let proof = honest();
        // Under parameters B: refused, as a struct and in wire form (the same
        // length, since both n_hat have 2048 bits).
        assert_eq!(key.verify_factors_proof(b, proof), rejected());
        let parsed = FactorProof::from_bytes(key, b, &proof.to_bytes(key, a));
        assert!(parsed.is_err() || key.verify_factors_proof(b, &parsed.unwrap()).is_err());
        // Under parameters with the same n_hat and t but another s (s^2, also in <t>).
        let a2 = RingPedersen {
            n_hat: a.n_hat.clone(),
            s: a.s.clone().square() % &a.n_hat,
            t: a.t.clone(),
            membership: a.membership.clone(),
            checked: Arc::default(),
        };
        assert!(a2.validate().is_ok());
        assert_eq!(key.verify_factors_proof(&a2, proof), rejected());
        // For another key: a smaller one (its proof's numbers are narrower) ...
        let small = test_keypair(1024);
        let theirs = small.private.prove_factors(a).unwrap();
        small.public().verify_factors_proof(a, &theirs).unwrap();
        assert_eq!(key.verify_factors_proof(a, &theirs), rejected());
        assert!(FactorProof::from_bytes(key, a, &theirs.to_bytes(small.public(), a)).is_err());
        assert!(small.public().verify_factors_proof(a, proof).is_err());
        // ... and one of the same size.
        let other = PublicKey::new(Integer::from(key.n() + 2u32), None, KeyPolicy::INSECURE_TESTING);
        if let Ok(other) = other {
            assert_eq!(other.verify_factors_proof(a, proof), rejected());
        }
        let (n, other) = degenerate_key();
        assert_eq!(n.significant_bits(), 2048);
        assert_eq!(other.verify_factors_proof(a, proof), rejected());
    }

    #[test]
    fn every_tampered_field_is_refused() {
        let pair = test_keypair(2048);
        let (key, a) = (pair.public(), params());
        let proof = honest();
        type Field = fn(&mut FactorProof) -> &mut Integer;
        let fields: [(&str, Field); 11] = [
            ("P", |p| &mut p.cp),
            ("Q", |p| &mut p.cq),
            ("A", |p| &mut p.ca),
            ("B", |p| &mut p.cb),
            ("T", |p| &mut p.ct),
            ("sigma", |p| &mut p.sigma),
            ("z1", |p| &mut p.z1),
            ("z2", |p| &mut p.z2),
            ("w1", |p| &mut p.w1),
            ("w2", |p| &mut p.w2),
            ("v", |p| &mut p.v),
        ];
        for (name, field) in fields {
            for delta in [1i32, -1] {
                let mut forged = proof.clone();
                *field(&mut forged) += delta;
                assert_eq!(key.verify_factors_proof(a, &forged), rejected(), "{name} {delta:+}");
            }
            let mut forged = proof.clone();
            let x = field(&mut forged);
            *x = -x.clone();
            assert_eq!(key.verify_factors_proof(a, &forged), rejected(), "{name} negated");
        }
        // A commitment multiplied by s (still in range).
        let mut forged = proof.clone();
        forged.cp = Integer::from(&forged.cp * a.s()) % a.n_hat();
        assert_eq!(key.verify_factors_proof(a, &forged), rejected());
        // In the wire form, the first, middle and last bytes of every field
        // (and every sign byte) flipped in turn: refused when parsed or when verified.
        let bytes = proof.to_bytes(key, a);
        let layout = Layout::new(2048, a);
        let mut fields = vec![layout.residue; 5];
        fields.extend([layout.sigma, layout.z, layout.z, layout.w, layout.w, layout.v].map(Layout::signed));
        let mut start = 0;
        for len in fields {
            for i in [start, start + 1, start + len / 2, start + len - 1] {
                let mut b = bytes.clone();
                b[i] ^= 0x5a;
                match FactorProof::from_bytes(key, a, &b) {
                    Err(_) => {}
                    Ok(p) => assert_eq!(key.verify_factors_proof(a, &p), rejected(), "byte {i}"),
                }
            }
            start += len;
        }
        assert_eq!(start, bytes.len());
    }

    #[test]
    fn malformed_proof_bytes_give_errors() {
        let pair = test_keypair(2048);
        let (key, a) = (pair.public(), params());
        let bytes = honest().to_bytes(key, a);
        let layout = Layout::new(2048, a);
        let parse = |b: &[u8]| FactorProof::from_bytes(key, a, b);
        let length = |got: usize| -> Result<FactorProof, Error> {
            Err(FactorProofError::Length { got, expected: bytes.len() }.into())
        };
        assert_eq!(parse(&[]), length(0));
        assert_eq!(parse(&bytes[1..]), length(bytes.len() - 1));
        assert_eq!(parse(&[&bytes[..], &[0]].concat()), length(bytes.len() + 1));
        let out_of_range = |what: &'static str| -> Result<FactorProof, Error> {
            Err(FactorProofError::OutOfRange(what).into())
        };
        // Commitments: 0, n_hat, and all ones.
        let r = layout.residue;
        for (i, name) in ["P", "Q", "A", "B", "T"].into_iter().enumerate() {
            let mut b = bytes.clone();
            b[i * r..(i + 1) * r].fill(0);
            assert_eq!(parse(&b), out_of_range(name));
            b[i * r..(i + 1) * r].copy_from_slice(&to_fixed_bytes(a.n_hat(), r));
            assert_eq!(parse(&b), out_of_range(name));
            b[i * r..(i + 1) * r].fill(0xff);
            assert_eq!(parse(&b), out_of_range(name));
        }
        // Signed numbers: a sign byte of 2, a negative zero, a too-wide magnitude.
        let mut start = 5 * r;
        for (name, bits) in [
            ("sigma", layout.sigma),
            ("z1", layout.z),
            ("z2", layout.z),
            ("w1", layout.w),
            ("w2", layout.w),
            ("v", layout.v),
        ] {
            let len = Layout::signed(bits);
            let mut b = bytes.clone();
            b[start] = 2;
            assert_eq!(parse(&b), out_of_range(name));
            b[start] = 1;
            b[start + 1..start + len].fill(0);
            assert_eq!(parse(&b), out_of_range(name));
            if bits % 8 != 0 {
                let mut b = bytes.clone();
                b[start + 1] = 0xff;
                assert_eq!(parse(&b), out_of_range(name));
            }
            start += len;
        }
        assert_eq!(start, bytes.len());
        // Random bytes of the right length: an error, never a panic.
        let mut next = xorshift(99);
        for _ in 0..20 {
            let b: Vec<u8> = (0..bytes.len()).map(|_| next() as u8).collect();
            if let Ok(p) = parse(&b) {
                assert!(key.verify_factors_proof(a, &p).is_err());
            }
        }
    }

    /// n = f n' with f a 40-bit prime and n' a 2008-bit prime (seeded
    /// search: test data), and the public key for it.
    fn degenerate_factors() -> &'static (Integer, Integer) {
        static FACTORS: OnceLock<(Integer, Integer)> = OnceLock::new();
        FACTORS.get_or_init(|| {
            let mut next = xorshift(40);
            let mut prime = |bits: u32| loop {
                let mut x = Integer::new();
                while x.significant_bits() < bits {
                    x = (x << 64u32) + next();
                }
                x >>= x.significant_bits() - bits;
                x.set_bit(bits - 1, true);
                x.set_bit(bits - 2, true);
                let p = Integer::from(x.next_prime_ref());
                if p.significant_bits() == bits {
                    return p;
                }
            };
            let f = prime(40);
            let rest = prime(2008);
            (f, rest)
        })
    }

    fn degenerate_key() -> (Integer, PublicKey) {
        let (f, rest) = degenerate_factors();
        let n = Integer::from(f * rest);
        let key =
            PublicKey::new(n.clone(), None, KeyPolicy::PRODUCTION).expect("validation alone accepts f n'");
        (n, key)
    }

    #[test]
    fn a_key_with_a_small_factor_cannot_prove_itself() {
        let (f, rest) = degenerate_factors();
        assert!(f.is_probably_prime(30) != IsPrime::No && rest.is_probably_prime(30) != IsPrime::No);
        let (n, key) = degenerate_key();
        assert_eq!(n.significant_bits(), 2048);
        let a = params();
        let bound = z_bound(&n);
        // The honest prover's algorithm with the split (f, n'): z2 = beta + e n'
        // is far beyond the range; with (n', f), z1 is.
        let proof = prove(&n, f, rest, a).unwrap();
        assert_eq!(proof.z2.cmp_abs(&bound), Ordering::Greater);
        assert_eq!(key.verify_factors_proof(a, &proof), rejected());
        let proof = prove(&n, rest, f, a).unwrap();
        assert_eq!(proof.z1.cmp_abs(&bound), Ordering::Greater);
        assert_eq!(key.verify_factors_proof(a, &proof), rejected());
        // Such a proof does not even fit the wire form's z field.
        assert!(!fits(&proof.z1, Layout::new(2048, a).z));
        // Control: the same algorithm with a balanced split passes the same checks.
        let pair = test_keypair(2048);
        let (p, q) = pair.private.primes();
        let proof = prove(pair.public().n(), p, q, a).unwrap();
        pair.public().verify_factors_proof(a, &proof).unwrap();
    }

    /// Prove and verify once at 2048 bits, with timings:
    /// `cargo test --release -p ppdnn-paillier --features testing factor_proof_timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn factor_proof_timing() {
        let start = Instant::now();
        let a = RingPedersen::generate(2048).unwrap();
        let generate = start.elapsed();
        let parsed = RingPedersen::from_bytes(&a.to_bytes()).unwrap();
        let start = Instant::now();
        parsed.check_membership().unwrap();
        let membership = start.elapsed();
        let pair = test_keypair(2048);
        let start = Instant::now();
        let proof = pair.private.prove_factors(&a).unwrap();
        let prove = start.elapsed();
        let start = Instant::now();
        pair.public().verify_factors_proof(&a, &proof).unwrap();
        let verify = start.elapsed();
        let bytes = proof.to_bytes(pair.public(), &a).len();
        println!(
            "2048-bit n and n_hat: parameters generated in {generate:?} (their membership proof checked in {membership:?}), proved in {prove:?}, verified in {verify:?}, {bytes} bytes"
        );
    }

    /// A 2048-bit prime p_hat = 1 mod 9, from the test's own random stream.
    fn prime_one_mod_nine(seed: u64) -> Integer {
        let mut next = xorshift(seed);
        let mut digits = [0u64; 32];
        digits.iter_mut().for_each(|d| *d = next());
        digits[31] |= 1 << 63;
        let x = Integer::from_digits(&digits, Order::Lsf);
        let mut c = (&x - Integer::from(&x % 18u32)) + 1u32;
        while c.is_probably_prime(30) == IsPrime::No {
            c += 18u32;
        }
        c
    }

    /// Parameters a malicious server could send: n_hat a prime with 9 |
    /// n_hat - 1, s of large order, t = s^((n_hat - 1)/3) of order 3. They
    /// pass every check a client can make of n_hat, s and t alone, and come
    /// with the best proof the server can make without a lambda (a guess).
    fn malicious_params() -> (RingPedersen, Integer) {
        let n_hat = prime_one_mod_nine(7);
        let third = Integer::from(&n_hat - 1u32) / 3u32;
        let mut s = Integer::from(2u32);
        let t = loop {
            let t = Integer::from(s.pow_mod_ref(&third, &n_hat).unwrap());
            if t != 1 {
                break t;
            }
            s += 1u32;
        };
        let mut params =
            RingPedersen { n_hat, s, t, membership: MembershipProof::default(), checked: Arc::default() };
        assert!(params.validate().is_ok(), "the malicious parameters pass the plain checks");
        let phi = Integer::from(&params.n_hat - 1u32);
        let guess = Integer::from(12345u32);
        params.membership =
            MembershipProof::prove(&params.n_hat, &params.t, &guess, &phi, &params.params_wire()).unwrap();
        (params, third)
    }

    /// What the server reads from a commitment s^x t^mu under its malicious
    /// parameters: x mod 3 (c^((n_hat - 1)/3) = (s^((n_hat - 1)/3))^x = t^x,
    /// since t^((n_hat - 1)/3) = 1). With n_hat - 1 smooth, Pohlig-Hellman
    /// reads all of x the same way.
    fn read_mod_three(params: &RingPedersen, third: &Integer, c: &Integer) -> Option<u32> {
        let y = Integer::from(c.pow_mod_ref(third, &params.n_hat).unwrap());
        (0..3u32)
            .find(|&k| Integer::from(params.t.pow_mod_ref(&Integer::from(k), &params.n_hat).unwrap()) == y)
    }

    #[test]
    fn generated_parameters_prove_membership_and_a_tampered_proof_is_refused() {
        let a = params();
        a.check_membership().unwrap();
        let parsed = RingPedersen::from_bytes(&a.to_bytes()).unwrap();
        parsed.check_membership().unwrap();
        // One byte of one response changed: refused, and no factor proof is made.
        let mut bytes = a.to_bytes();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = RingPedersen::from_bytes(&bytes).unwrap();
        assert_eq!(tampered.check_membership(), Err(FactorProofError::ParamsUnproven.into()));
        assert_eq!(
            test_keypair(1024).private.prove_factors(&tampered).unwrap_err(),
            FactorProofError::ParamsUnproven.into()
        );
    }

    /// Parameters over a prime n_hat with a valid membership proof (its
    /// maker knows phi = n_hat - 1 and lambda): a client accepts them, but
    /// the server that verifies with them must not.
    #[test]
    fn a_verifier_refuses_parameters_over_a_prime_or_a_smooth_modulus() {
        params().check_as_verifier().unwrap();
        let n_hat = prime_one_mod_nine(11);
        let phi = Integer::from(&n_hat - 1u32);
        let t = Integer::from(Integer::from(5u32).pow_mod_ref(&Integer::from(2u32), &n_hat).unwrap());
        let lambda = Integer::from(987_654_321u32);
        let s = Integer::from(t.pow_mod_ref(&lambda, &n_hat).unwrap());
        let mut prime =
            RingPedersen { n_hat, s, t, membership: MembershipProof::default(), checked: Arc::default() };
        prime.membership =
            MembershipProof::prove(&prime.n_hat, &prime.t, &lambda, &phi, &prime.params_wire()).unwrap();
        let wire = RingPedersen::from_bytes(&prime.to_bytes()).unwrap();
        wire.check_membership().expect("its membership proof is valid");
        assert_eq!(wire.check_as_verifier(), Err(FactorProofError::InvalidParams("n_hat is prime").into()));
        // A modulus with a small factor: 3 times the generated n_hat's
        // neighbourhood (the proof does not matter to this check).
        let mut small = params().clone();
        small.n_hat = Integer::from(&small.n_hat * 3u32);
        assert_eq!(
            small.check_as_verifier(),
            Err(FactorProofError::InvalidParams("n_hat has a small factor").into())
        );
    }

    #[test]
    fn a_server_with_parameters_of_small_order_gets_no_commitment_to_the_primes() {
        let (evil, third) = malicious_params();
        let wire = RingPedersen::from_bytes(&evil.to_bytes()).unwrap();
        assert_eq!(wire.check_membership(), Err(FactorProofError::ParamsUnproven.into()));
        let pair = test_keypair(2048);
        assert_eq!(pair.private.prove_factors(&wire).unwrap_err(), FactorProofError::ParamsUnproven.into());
        // The control: a prover that did not check (this module before the
        // membership proof) commits, and the server reads p and q mod 3 from
        // the commitments, every time.
        let (p, q) = pair.private.primes();
        for _ in 0..4 {
            let proof = prove(pair.public().n(), p, q, &wire).unwrap();
            assert_eq!(
                read_mod_three(&wire, &third, &proof.cp),
                Some(Integer::from(p % 3u32).to_u32().unwrap())
            );
            assert_eq!(
                read_mod_three(&wire, &third, &proof.cq),
                Some(Integer::from(q % 3u32).to_u32().unwrap())
            );
        }
    }
}
