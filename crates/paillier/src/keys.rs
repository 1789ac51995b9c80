//! Key pairs: generation, validation, and the public and private key types.

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::int::IsPrime;
use crate::int::{Complete, Integer};

use crate::error::{BaseError, Error, KeyError, PrivateKeyError, RandomError, RangeError, Result};
use crate::fixed_base::FixedBaseTable;
use crate::policy::KeyPolicy;
use crate::random::{random_bits, random_unit};
use crate::secret::{Secret, wipe};

/// Miller-Rabin rounds on top of GMP's own tests when accepting a generated prime.
const PRIME_REPS: u32 = 40;

/// Products of small primes used to detect small factors of a foreign modulus.
const SMALL_FACTOR_BOUND: u32 = 10_000;

/// A foreign h^n whose order has no prime factor above this bound is refused
/// (h^n^L = 1 for L = lcm(1..=bound)): its powers take few values, so it
/// would not re-randomize anything.
const SMALL_ORDER_BOUND: u32 = 1024;

/// p and q must differ by more than 2^(|p| - 100) (FIPS 186-4, B.3.1), or
/// Fermat's method factors n.
const PRIME_DISTANCE_SLACK: u32 = 100;

/// A Paillier public key with g = n + 1, and optionally the Damgard-Jurik-Nielsen
/// randomness base h^n (a fixed n-th residue that makes encryption cheaper).
///
/// Invariants (checked by [`PublicKey::new`]): n is odd, not a perfect square,
/// has no small factors, and its size is within the policy; h^n, if present, is
/// a unit of Z_{n^2}.
#[derive(Clone)]
pub struct PublicKey {
    n: Integer,
    n_squared: Integer,
    half_n: Integer,
    hn: Option<Integer>,
    bits: u32,
    table: Arc<OnceLock<FixedBaseTable>>,
    /// The IFMA backend's constants for n^2 and its DJN table, built on first use.
    pub(crate) lanes: Arc<crate::lane_cache::PublicLanes>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("bits", &self.bits)
            .field("djn", &self.hn.is_some())
            .finish_non_exhaustive()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.n == other.n && self.hn == other.hn
    }
}
impl Eq for PublicKey {}

impl PublicKey {
    /// Builds a public key from n (and h^n if the key has one), validating both
    /// against `policy`. Use this for every key that comes from outside.
    pub fn new(n: Integer, hn: Option<Integer>, policy: KeyPolicy) -> Result<Self> {
        validate_modulus(&n, policy)?;
        let key = Self::new_unchecked(n, hn);
        if let Some(hn) = &key.hn {
            validate_randomness_base(hn, &key.n, &key.n_squared)?;
        }
        Ok(key)
    }

    pub(crate) fn new_unchecked(n: Integer, hn: Option<Integer>) -> Self {
        let n_squared = n.clone().square();
        let half_n = n.clone() >> 1;
        let bits = n.significant_bits();
        PublicKey { n, n_squared, half_n, hn, bits, table: Arc::new(OnceLock::new()), lanes: Arc::default() }
    }

    /// The modulus n.
    pub fn n(&self) -> &Integer {
        &self.n
    }

    /// n^2, the ciphertext modulus.
    pub fn n_squared(&self) -> &Integer {
        &self.n_squared
    }

    /// The DJN randomness base h^n, if this key has one.
    pub fn hn(&self) -> Option<&Integer> {
        self.hn.as_ref()
    }

    /// The size of n in bits.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Width in bytes of an encoded ciphertext: 2 * ceil(|n| / 8).
    pub fn ciphertext_bytes(&self) -> usize {
        2 * self.bits.div_ceil(8) as usize
    }

    /// Bits of the random DJN exponent: |n| / 2.
    pub fn djn_exponent_bits(&self) -> u32 {
        self.bits / 2
    }

    /// The largest plaintext magnitude (n-1)/2: plaintexts lie in (-n/2, n/2].
    pub fn max_plaintext(&self) -> &Integer {
        &self.half_n
    }

    /// Builds (once) the fixed-base table for h^n, so that later encryptions
    /// under this key cost a multiplication per window. On the GMP backend
    /// the table has `window`-bit windows: 8 costs about 32,000
    /// multiplications and 16 MiB at 2048 bits and suits a client that
    /// encrypts thousands of values; a server that re-randomizes a few dozen
    /// ciphertexts is better served by 4 or 5. On the IFMA backend the table
    /// is that backend's own (6-bit windows, 6.9 MB at 2048 bits), whatever
    /// `window` says. Does nothing for a key without h^n, or if the table
    /// exists.
    pub fn precompute_randomness(&self, window: u32) {
        let Some(hn) = &self.hn else { return };
        if !self.precompute_lanes() && self.table.get().is_none() {
            // Built outside the cell's lock: the construction is parallel, and
            // a rayon worker waiting inside `get_or_init` may steal another
            // job that waits on the same cell, a deadlock (sessions sharing a
            // key did that in the server's pool). Two sessions that race here
            // both build a table; the first one set is kept.
            let table = FixedBaseTable::new(hn, self.djn_exponent_bits(), window, &self.n_squared);
            let _ = self.table.set(table);
        }
    }

    /// Whether a fixed-base table has been built for this key (on either backend).
    pub fn has_randomness_table(&self) -> bool {
        self.table.get().is_some() || self.lanes.has_table()
    }

    /// Bytes held by this key's fixed-base table (0 if none was built).
    pub fn randomness_table_bytes(&self) -> usize {
        self.table.get().map_or(0, FixedBaseTable::memory_bytes) + self.lanes.memory_bytes()
    }

    /// A fresh random n-th residue r^n mod n^2, the randomness of one encryption.
    ///
    /// With h^n: (h^n)^a for a random a of |n|/2 bits, by the fixed-base table
    /// when one was built, otherwise by one modular exponentiation. Without h^n:
    /// r^n for a uniformly random unit r (a full |n|-bit exponentiation).
    pub fn random_rn(&self) -> Result<Integer> {
        match &self.hn {
            Some(hn) => {
                // The exponent is the secret of whoever encrypts: wiped after use.
                let a = Secret(random_bits(self.djn_exponent_bits())?);
                if crate::arith::Backend::current() == crate::arith::Backend::Portable {
                    return Ok(self.portable_djn(hn, &a));
                }
                Ok(match self.table.get() {
                    Some(table) => table.pow(&a),
                    None => secure_pow(hn, &a, &self.n_squared),
                })
            }
            None => self.random_rn_full(),
        }
    }

    /// A fresh r^n mod n^2 for a uniformly random unit r of Z_n: the
    /// full-strength randomness, whatever base the key publishes (one |n|-bit
    /// exponentiation, about 10 ms at 2048 bits).
    pub fn random_rn_full(&self) -> Result<Integer> {
        let r = Secret(random_unit(&self.n)?);
        Ok(self.rn_from_r(&r))
    }

    /// r^n mod n^2 for a given r (the classic randomness, as in python-paillier).
    pub fn rn_from_r(&self, r: &Integer) -> Integer {
        if crate::arith::Backend::current() == crate::arith::Backend::Portable {
            return self.portable_rn(r);
        }
        r.pow_mod_ref(&self.n, &self.n_squared)
            .map(Integer::from)
            .expect("a positive exponent always has a power mod n^2")
    }

    /// Maps a signed plaintext from (-n/2, n/2] into [0, n), checking the range.
    pub fn encode_plaintext(&self, m: &Integer) -> Result<Integer> {
        // n is odd, so (-n/2, n/2] holds exactly the integers of [-(n-1)/2, (n-1)/2].
        let neg_half = Integer::from(-&self.half_n);
        if *m > self.half_n || *m < neg_half {
            return Err(Error::PlaintextRange(RangeError::Centred {
                value_bits: m.significant_bits(),
                key_bits: self.bits,
            }));
        }
        Ok(if *m < 0 { Integer::from(m + &self.n) } else { m.clone() })
    }

    /// Maps a residue in [0, n) back to the centred signed range (-n/2, n/2].
    pub fn decode_plaintext(&self, mut m: Integer) -> Integer {
        if m > self.half_n {
            m -= &self.n;
        }
        m
    }
}

/// base^e mod m with GMP's constant-time exponentiation, which refuses
/// e = 0 (whose power is 1).
pub(crate) fn secure_pow(base: &Integer, e: &Integer, m: &Integer) -> Integer {
    if *e == 0 { Integer::from(1u32) } else { Integer::from(base.secure_pow_mod_ref(e, m)) }
}

/// Checks a foreign modulus: size within policy, odd, not a perfect square, no
/// prime factor below 10,000.
fn validate_modulus(n: &Integer, policy: KeyPolicy) -> Result<()> {
    let bits = n.significant_bits();
    if *n <= 0 {
        return Err(Error::InvalidPublicKey(KeyError::NotPositive));
    }
    policy.check(bits)?;
    if n.is_even() {
        return Err(Error::InvalidPublicKey(KeyError::Even));
    }
    if n.is_perfect_square() {
        return Err(Error::InvalidPublicKey(KeyError::Square));
    }
    if n.is_probably_prime(25) != IsPrime::No {
        return Err(Error::InvalidPublicKey(KeyError::Prime));
    }
    let primorial = Integer::from(Integer::primorial(SMALL_FACTOR_BOUND));
    let g = Integer::from(n.gcd_ref(&primorial));
    if g != 1 {
        return Err(Error::InvalidPublicKey(KeyError::SmallFactor { factor: g }));
    }
    Ok(())
}

/// Checks a foreign DJN base h^n: a unit of Z_{n^2} that is not degenerate.
/// Refused: h^n = +-1 mod n (1, n^2 - 1 and every 1 + k*n, whose powers only
/// shift the plaintext), square roots of 1, and any element whose order has
/// no prime factor above [`SMALL_ORDER_BOUND`]: a server re-randomizing with
/// such a base would multiply by one of few known values.
fn validate_randomness_base(hn: &Integer, n: &Integer, n_squared: &Integer) -> Result<()> {
    let bad = |why: BaseError| Err(Error::InvalidPublicKey(KeyError::Base(why)));
    if *hn <= 0 || hn >= n_squared {
        return bad(BaseError::OutOfRange);
    }
    if hn.gcd_ref(n).complete() != 1 {
        return bad(BaseError::SharesFactor);
    }
    let residue = Integer::from(hn % n);
    if residue == 1 || residue == Integer::from(n - 1u32) {
        return bad(BaseError::PlusMinusOne);
    }
    let mut l = Integer::from(1u32);
    for k in 2..=SMALL_ORDER_BOUND {
        l.lcm_u_mut(k);
    }
    let power = hn.pow_mod_ref(&l, n_squared).map(Integer::from).expect("a positive exponent");
    if power == 1 {
        return bad(BaseError::SmallOrder);
    }
    Ok(())
}

/// A Paillier private key: the factors p and q with everything CRT decryption
/// needs precomputed. Secret values are wiped from memory on drop and never
/// shown by `Debug`.
pub struct PrivateKey {
    public: PublicKey,
    p: Integer,
    q: Integer,
    p_squared: Integer,
    q_squared: Integer,
    p_minus_1: Integer,
    q_minus_1: Integer,
    /// L_p(g^(p-1) mod p^2)^-1 mod p = (-q)^-1 mod p for g = n+1.
    hp: Integer,
    hq: Integer,
    /// q^-1 mod p, for recombining the CRT halves.
    q_inv_p: Integer,
    /// The IFMA backend's constants for p^2 and q^2 (secret, wiped on drop).
    pub(crate) lanes: Arc<crate::lane_cache::PrivateLanes>,
    /// The proof that n is a Paillier-Blum modulus, made on first use.
    modulus_proof: Arc<OnceLock<crate::modulus_proof::ModulusProof>>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey").field("bits", &self.public.bits).finish_non_exhaustive()
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        for x in [
            &mut self.p,
            &mut self.q,
            &mut self.p_squared,
            &mut self.q_squared,
            &mut self.p_minus_1,
            &mut self.q_minus_1,
            &mut self.hp,
            &mut self.hq,
            &mut self.q_inv_p,
        ] {
            wipe(x);
        }
    }
}

impl Clone for PrivateKey {
    fn clone(&self) -> Self {
        PrivateKey {
            public: self.public.clone(),
            p: self.p.clone(),
            q: self.q.clone(),
            p_squared: self.p_squared.clone(),
            q_squared: self.q_squared.clone(),
            p_minus_1: self.p_minus_1.clone(),
            q_minus_1: self.q_minus_1.clone(),
            hp: self.hp.clone(),
            hq: self.hq.clone(),
            q_inv_p: self.q_inv_p.clone(),
            lanes: self.lanes.clone(),
            modulus_proof: self.modulus_proof.clone(),
        }
    }
}

impl PrivateKey {
    /// Where the key keeps its modulus proof once made.
    pub(crate) fn modulus_proof_cell(&self) -> &OnceLock<crate::modulus_proof::ModulusProof> {
        &self.modulus_proof
    }

    /// The factors p and q (secret: for the proofs made with this key).
    pub(crate) fn primes(&self) -> (&Integer, &Integer) {
        (&self.p, &self.q)
    }

    /// Builds a private key from its primes and the public key's h^n (if any),
    /// checking that p and q are distinct probable primes of equal size with
    /// gcd(n, phi(n)) = 1, and that the key meets `policy`.
    /// p and q are wiped from memory on every error path.
    pub fn from_primes(p: Integer, q: Integer, hn: Option<Integer>, policy: KeyPolicy) -> Result<Self> {
        let (p, q) = (Secret(p), Secret(q));
        if *p == *q {
            return Err(Error::InvalidPrivateKey(PrivateKeyError::EqualPrimes));
        }
        if p.significant_bits() != q.significant_bits() {
            return Err(Error::InvalidPrivateKey(PrivateKeyError::SizesDiffer));
        }
        for (name, x) in [("p", &p), ("q", &q)] {
            if **x < 3 || x.is_probably_prime(PRIME_REPS) == IsPrime::No {
                return Err(Error::InvalidPrivateKey(PrivateKeyError::NotPrime(name)));
            }
        }
        if !primes_far_apart(&p, &q) {
            return Err(Error::InvalidPrivateKey(PrivateKeyError::TooClose { slack: PRIME_DISTANCE_SLACK }));
        }
        let n = Integer::from(&*p * &*q);
        if !coprime_to_phi(&n, &p, &q) {
            return Err(Error::InvalidPrivateKey(PrivateKeyError::NotCoprime));
        }
        let public = PublicKey::new(n, hn, policy)?;
        Ok(Self::from_parts(public, p.take(), q.take()))
    }

    /// Precomputes the CRT constants. The inverses are taken by Fermat's
    /// little theorem with a constant-time exponentiation (x^-1 = x^(p-2) mod
    /// p), not by a variable-time extended Euclid on the secret primes.
    fn from_parts(public: PublicKey, p: Integer, q: Integer) -> Self {
        let p_squared = p.clone().square();
        let q_squared = q.clone().square();
        let p_minus_1 = Integer::from(&p - 1u32);
        let q_minus_1 = Integer::from(&q - 1u32);
        let hp = inverse_mod_prime(Integer::from(&p - &q), &p);
        let hq = inverse_mod_prime(Integer::from(&q - &p), &q);
        let q_inv_p = inverse_mod_prime(q.clone(), &p);
        PrivateKey {
            public,
            p,
            q,
            p_squared,
            q_squared,
            p_minus_1,
            q_minus_1,
            hp,
            hq,
            q_inv_p,
            lanes: Arc::default(),
            modulus_proof: Arc::default(),
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The prime p (secret).
    pub fn p(&self) -> &Integer {
        &self.p
    }

    /// The prime q (secret).
    pub fn q(&self) -> &Integer {
        &self.q
    }

    /// The CRT half for one prime: L_p(c^(p-1) mod p^2) * hp mod p, with a
    /// constant-time exponentiation for the secret exponent.
    /// The intermediate c^(p-1) mod p^2 is 1 mod p (so gcd(x - 1, n) = p): it
    /// is wiped before the function returns.
    fn half(c: &Integer, prime: &Integer, square: &Integer, exponent: &Integer, h: &Integer) -> Integer {
        let mut x = Secret(Integer::from(c % square));
        x.secure_pow_mod_mut(exponent, square);
        Self::half_from_power(x, prime, h)
    }

    /// L_p(x) * h mod p for x = c^(p-1) mod p^2 (wiped here).
    fn half_from_power(mut x: Secret, prime: &Integer, h: &Integer) -> Integer {
        *x -= 1u32;
        let mut m = Integer::from(&*x / prime);
        m *= h;
        m %= prime;
        m
    }

    /// Decrypts a raw residue c (assumed valid) to the plaintext in [0, n).
    pub(crate) fn decrypt_raw(&self, c: &Integer) -> Integer {
        let mp = Self::half(c, &self.p, &self.p_squared, &self.p_minus_1, &self.hp);
        let mq = Self::half(c, &self.q, &self.q_squared, &self.q_minus_1, &self.hq);
        self.recombine(mp, mq)
    }

    /// The plaintext in [0, n) from c^(p-1) mod p^2 and c^(q-1) mod q^2
    /// (computed elsewhere, by the batched backend; both wiped here).
    pub(crate) fn decrypt_from_powers(&self, xp: Integer, xq: Integer) -> Integer {
        let mp = Self::half_from_power(Secret(xp), &self.p, &self.hp);
        let mq = Self::half_from_power(Secret(xq), &self.q, &self.hq);
        self.recombine(mp, mq)
    }

    /// The CRT bases and exponents: (p^2, p - 1) and (q^2, q - 1).
    pub(crate) fn crt_parts(&self) -> [(&Integer, &Integer); 2] {
        [(&self.p_squared, &self.p_minus_1), (&self.q_squared, &self.q_minus_1)]
    }

    /// m = mq + q * ((mp - mq) * q^-1 mod p).
    fn recombine(&self, mp: Integer, mq: Integer) -> Integer {
        let mut t = mp - &mq;
        t *= &self.q_inv_p;
        t %= &self.p;
        if t < 0 {
            t += &self.p;
        }
        t *= &self.q;
        t += mq;
        t
    }

    /// Textbook decryption m = L(c^lambda mod n^2) * mu mod n, without CRT.
    /// Slow; kept to cross-check the CRT path in tests.
    pub fn decrypt_textbook_raw(&self, c: &Integer) -> Integer {
        let n = self.public.n();
        let n2 = self.public.n_squared();
        let lambda = Secret(self.p_minus_1.lcm_ref(&self.q_minus_1).complete());
        let l = |x: Integer| (x - 1u32) / n;
        let g = Integer::from(n + 1u32);
        let g_l = Secret(l(g.secure_pow_mod(&lambda, n2)));
        // L(g^lambda) = lambda mod n, a unit since gcd(n, phi(n)) = 1.
        let mu = Secret(Integer::from(g_l.invert_ref(n).expect("L(g^lambda) is a unit mod n")));
        let c_l = Secret(l(c.clone().secure_pow_mod(&lambda, n2)));
        Integer::from(&*c_l * &*mu) % n
    }
}

/// A public and private key generated together.
#[derive(Debug, Clone)]
pub struct KeyPair {
    /// The private key (which also holds the public key).
    pub private: PrivateKey,
}

impl KeyPair {
    /// The public key.
    pub fn public(&self) -> &PublicKey {
        self.private.public_key()
    }
}

/// Generates a key pair with an n of exactly `bits` bits (as
/// [`KeyPolicy::check_new`] allows),
/// from the OS CSPRNG, with a DJN base h^n.
pub fn generate_keypair(bits: u32, policy: KeyPolicy) -> Result<KeyPair> {
    generate_keypair_with_progress(bits, policy, &mut |_, _| {})
}

/// [`generate_keypair`], telling `progress` how far it is (a fraction of
/// the expected work, and the step: "prime p", "prime q", "randomness
/// base", "done"), for a page that shows it.
pub fn generate_keypair_with_progress(
    bits: u32,
    policy: KeyPolicy,
    progress: &mut dyn FnMut(f64, &str),
) -> Result<KeyPair> {
    policy.check_new(bits)?;
    loop {
        // Rejected candidates are wiped when they go out of scope.
        progress(0.0, "prime p");
        let p = random_prime(bits / 2)?;
        progress(0.45, "prime q");
        let q = random_prime(bits / 2)?;
        progress(0.9, "randomness base");
        if !primes_far_apart(&p, &q) {
            continue;
        }
        let n = Integer::from(&*p * &*q);
        if n.significant_bits() != bits || !coprime_to_phi(&n, &p, &q) {
            continue;
        }
        // DJN: h = -x^2 mod n for a random unit x; publish h^n mod n^2.
        let x = random_unit(&n)?;
        let h: Integer = &n - x.square() % &n;
        let n2 = n.clone().square();
        let hn = h.pow_mod(&n, &n2).map_err(|_| Error::Random(RandomError::NotAUnit))?;
        let public = PublicKey::new_unchecked(n, Some(hn));
        progress(1.0, "done");
        return Ok(KeyPair { private: PrivateKey::from_parts(public, p.take(), q.take()) });
    }
}

/// |p - q| > 2^(|p| - 100).
fn primes_far_apart(p: &Integer, q: &Integer) -> bool {
    let distance = Secret(Integer::from(p - q).abs());
    let bits = p.significant_bits().saturating_sub(PRIME_DISTANCE_SLACK);
    *distance > (Integer::from(1u32) << bits)
}

/// gcd(n, (p-1)(q-1)) = 1, with phi wiped afterwards.
fn coprime_to_phi(n: &Integer, p: &Integer, q: &Integer) -> bool {
    let phi = Secret(Integer::from(p - 1u32) * Integer::from(q - 1u32));
    n.gcd_ref(&phi).complete() == 1
}

/// x^-1 mod a prime p as x^(p-2) mod p with GMP's constant-time `mpz_powm_sec`.
fn inverse_mod_prime(x: Integer, p: &Integer) -> Integer {
    let mut x = Secret(x % p);
    if *x < 0 {
        *x += p;
    }
    let e = Secret(Integer::from(p - 2u32));
    Integer::from(x.secure_pow_mod_ref(&e, p))
}

/// A random prime of exactly `bits` bits with its top two bits set (so the
/// product of two has exactly 2*bits bits).
pub(crate) fn random_prime(bits: u32) -> Result<Secret> {
    loop {
        let mut x = Secret(random_bits(bits)?);
        x.set_bit(bits - 1, true);
        x.set_bit(bits - 2, true);
        x.set_bit(0, true);
        let p = Secret(x.next_prime_ref().into());
        // Blum primes (p = 3 mod 4), so that the key can prove n is a
        // Paillier-Blum modulus (crate::modulus_proof).
        if p.significant_bits() == bits && p.mod_u(4) == 3 && p.is_probably_prime(PRIME_REPS) != IsPrime::No {
            return Ok(p);
        }
    }
}
