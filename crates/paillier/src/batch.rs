//! Batched operations on the backend in use (see [`crate::arith`]): many
//! decryptions, many r^n, many re-randomizations. On IFMA they run eight
//! lanes at a time (four ciphertexts' two CRT halves per batch for
//! decryption); on GMP one at a time, in parallel. The results are the same.

use crate::int::Integer;
use rayon::prelude::*;

use crate::arith::Backend;
use crate::ciphertext::Ciphertext;
use crate::error::Result;
use crate::ifma::Ifma;
use crate::ifma::lanes::{LANES, Modulus8};
use crate::ifma::single::SingleModulus;
use crate::keys::{PrivateKey, PublicKey};
use crate::portable;
use crate::random::{random_bits, random_unit};
use crate::secret::Secret;

/// Window of the IFMA fixed-base table for DJN randomness: 171 rows of 64
/// entries at 2048 bits (6.9 MB), one selection (sixteen entries per
/// permutation) and one product per row. Six bits: the selection is cheap
/// enough that fewer rows pay for the larger table.
const DJN_WINDOW: u32 = 6;

impl PublicKey {
    /// Builds the IFMA DJN table when the backend in use is IFMA; false
    /// (nothing done) on GMP.
    pub(crate) fn precompute_lanes(&self) -> bool {
        if Backend::current() == Backend::Portable
            && let Some(hn) = self.hn()
        {
            self.portable_table(hn);
            return true;
        }
        let (Some(ifma), Some(hn)) = (Backend::current().ifma(), self.hn()) else { return false };
        let m = self.n2_lanes(ifma);
        self.lanes.table.get_or_init(|| ifma.fixed_base_table(hn, self.djn_exponent_bits(), DJN_WINDOW, m));
        true
    }

    /// n^2's constants for the portable backend.
    pub(crate) fn portable_n2(&self) -> &portable::Modulus {
        self.lanes.portable_modulus.get_or_init(|| portable::Modulus::new(self.n_squared()))
    }

    /// The portable backend's DJN table of `hn` (this key's h^n).
    pub(crate) fn portable_table(&self, hn: &Integer) -> &portable::FixedBase {
        self.lanes.portable_table.get_or_init(|| {
            portable::FixedBase::new(hn, self.djn_exponent_bits(), self.portable_n2().clone())
        })
    }

    /// r^n mod n^2 on the portable backend (n public, r secret: the power's
    /// time depends on n's length only).
    pub(crate) fn portable_rn(&self, r: &Integer) -> Integer {
        self.portable_n2().pow_public(r, self.n())
    }

    /// (h^n)^a on the portable backend: by its table when built, else one
    /// constant-time exponentiation.
    pub(crate) fn portable_djn(&self, hn: &Integer, a: &Integer) -> Integer {
        match self.lanes.portable_table.get() {
            Some(table) => table.pow(a),
            None => self.portable_n2().pow_secret(hn, a, self.djn_exponent_bits()),
        }
    }

    /// n^2's constants, broadcast to all lanes.
    pub(crate) fn n2_lanes(&self, ifma: Ifma) -> &Modulus8 {
        self.lanes.modulus.get_or_init(|| ifma.modulus([self.n_squared(); LANES], 2 * self.bits(), false))
    }

    /// n^2's constants for one-number-at-a-time products, if it fits them.
    pub(crate) fn n2_single(&self, ifma: Ifma) -> Option<&SingleModulus> {
        self.lanes.single.get_or_init(|| ifma.single_modulus(self.n_squared())).as_ref()
    }

    /// `count` fresh r^n, as [`PublicKey::random_rn`] makes them, on the
    /// backend in use.
    pub fn random_rn_many(&self, count: usize) -> Result<Vec<Integer>> {
        self.random_rn_many_with(Backend::current(), count)
    }

    /// [`PublicKey::random_rn_many`] on a given backend (an error if this
    /// CPU cannot run it).
    pub fn random_rn_many_with(&self, backend: Backend, count: usize) -> Result<Vec<Integer>> {
        backend.check()?;
        match (backend.ifma(), self.hn()) {
            (Some(ifma), Some(hn)) => {
                let m = self.n2_lanes(ifma);
                let bits = self.djn_exponent_bits();
                let table = self.lanes.table.get_or_init(|| ifma.fixed_base_table(hn, bits, DJN_WINDOW, m));
                batches(count, |k| {
                    let exps: Vec<Secret> =
                        (0..k).map(|_| random_bits(bits).map(Secret)).collect::<Result<_>>()?;
                    let refs: Vec<&Integer> = exps.iter().map(|e| &**e).collect();
                    Ok(ifma.fixed_base_pow(table, &refs, m).0)
                })
            }
            (Some(_), None) => self.random_rn_full_many_with(backend, count),
            (None, Some(hn)) if backend == Backend::Portable => {
                let bits = self.djn_exponent_bits();
                let table = self.portable_table(hn);
                (0..count).into_par_iter().map(|_| Ok(table.pow(&Secret(random_bits(bits)?)))).collect()
            }
            (None, None) if backend == Backend::Portable => self.random_rn_full_many_with(backend, count),
            (None, _) => (0..count).into_par_iter().map(|_| self.random_rn()).collect(),
        }
    }

    /// (h^n)^a for given DJN exponents a below 2^(|n|/2), on a given backend
    /// (for tests of the two backends against each other; encryption draws
    /// its own exponents). An error for a key without h^n.
    pub fn djn_rn_from_exponents_with(&self, backend: Backend, exps: &[Integer]) -> Result<Vec<Integer>> {
        backend.check()?;
        let Some(hn) = self.hn() else {
            return Err(crate::error::Error::InvalidPublicKey(crate::error::KeyError::NoBase));
        };
        let bits = self.djn_exponent_bits();
        if exps.iter().any(|a| *a < 0 || a.significant_bits() > bits) {
            return Err(crate::error::Error::Length(crate::error::LengthError::DjnExponent(bits)));
        }
        match backend.ifma() {
            Some(ifma) => {
                let m = self.n2_lanes(ifma);
                let table = self.lanes.table.get_or_init(|| ifma.fixed_base_table(hn, bits, DJN_WINDOW, m));
                Ok(exps
                    .par_chunks(LANES)
                    .flat_map_iter(|chunk| ifma.fixed_base_pow(table, &chunk.iter().collect::<Vec<_>>(), m).0)
                    .collect())
            }
            None if backend == Backend::Portable => {
                let table = self.portable_table(hn);
                Ok(exps.par_iter().map(|a| table.pow(a)).collect())
            }
            None => Ok(exps.par_iter().map(|a| crate::keys::secure_pow(hn, a, self.n_squared())).collect()),
        }
    }

    /// `count` full-strength r^n (r uniform in Z_n^*, as
    /// [`PublicKey::random_rn_full`]) on the backend in use.
    pub fn random_rn_full_many(&self, count: usize) -> Result<Vec<Integer>> {
        self.random_rn_full_many_with(Backend::current(), count)
    }

    /// [`PublicKey::random_rn_full_many`] on a given backend.
    pub fn random_rn_full_many_with(&self, backend: Backend, count: usize) -> Result<Vec<Integer>> {
        backend.check()?;
        match backend.ifma() {
            Some(ifma) => {
                let m = self.n2_lanes(ifma);
                batches(count, |k| {
                    let rs: Vec<Secret> =
                        (0..k).map(|_| random_unit(self.n()).map(Secret)).collect::<Result<_>>()?;
                    let bases: Vec<&Integer> = rs.iter().map(|r| &**r).collect();
                    Ok(ifma.pow_lanes(&bases, &vec![self.n(); k], self.bits(), m).0)
                })
            }
            None if backend == Backend::Portable => (0..count)
                .into_par_iter()
                .map(|_| Ok(self.portable_rn(&Secret(random_unit(self.n())?))))
                .collect(),
            None => (0..count).into_par_iter().map(|_| self.random_rn_full()).collect(),
        }
    }

    /// r^n for given units r (as [`PublicKey::rn_from_r`]), on a given backend.
    pub fn rn_from_r_many_with(&self, backend: Backend, rs: &[Integer]) -> Result<Vec<Integer>> {
        backend.check()?;
        match backend.ifma() {
            Some(ifma) => {
                let m = self.n2_lanes(ifma);
                Ok(rs
                    .par_chunks(LANES)
                    .flat_map_iter(|chunk| {
                        let bases: Vec<&Integer> = chunk.iter().collect();
                        ifma.pow_lanes(&bases, &vec![self.n(); chunk.len()], self.bits(), m).0
                    })
                    .collect())
            }
            None if backend == Backend::Portable => Ok(rs.par_iter().map(|r| self.portable_rn(r)).collect()),
            None => Ok(rs.par_iter().map(|r| self.rn_from_r(r)).collect()),
        }
    }

    /// Re-randomizes many ciphertexts with fresh r^n from
    /// [`PublicKey::random_rn_many`].
    pub fn rerandomize_many(&self, cts: &[Ciphertext]) -> Result<Vec<Ciphertext>> {
        let rns = self.random_rn_many(cts.len())?;
        Ok(cts.par_iter().zip(rns.par_iter()).map(|(c, rn)| self.rerandomize_with_rn(c, rn)).collect())
    }
}

/// Runs `batch(k)` for batches of up to eight, in parallel, and concatenates.
fn batches<F>(count: usize, batch: F) -> Result<Vec<Integer>>
where
    F: Fn(usize) -> Result<Vec<Integer>> + Sync,
{
    let sizes: Vec<usize> = (0..count.div_ceil(LANES)).map(|b| LANES.min(count - b * LANES)).collect();
    let parts: Vec<Vec<Integer>> = sizes.into_par_iter().map(&batch).collect::<Result<_>>()?;
    Ok(parts.into_iter().flatten().collect())
}

impl PrivateKey {
    /// Decrypts many ciphertexts to signed plaintexts on the backend in use.
    pub fn decrypt_many(&self, cts: &[Ciphertext]) -> Vec<Integer> {
        self.decrypt_many_with(Backend::current(), cts)
            .expect("Backend::current only names a backend this CPU runs")
    }

    /// [`PrivateKey::decrypt_many`] on a given backend: on IFMA, four
    /// ciphertexts per batch, their p and q halves in alternate lanes, each
    /// exponentiation constant-time in the secret exponent.
    pub fn decrypt_many_with(&self, backend: Backend, cts: &[Ciphertext]) -> Result<Vec<Integer>> {
        backend.check()?;
        let public = self.public_key();
        if backend == Backend::Portable {
            return Ok(cts.par_iter().map(|c| self.decrypt_portable(c)).collect());
        }
        let Some(ifma) = backend.ifma() else {
            return Ok(cts.par_iter().map(|c| self.decrypt(c)).collect());
        };
        let [(p2, p1), (q2, q1)] = self.crt_parts();
        let m = self.lanes.modulus.get_or_init(|| {
            let moduli: [&Integer; LANES] = std::array::from_fn(|l| if l % 2 == 0 { p2 } else { q2 });
            ifma.modulus(moduli, p2.significant_bits().max(q2.significant_bits()), true)
        });
        let bits = p1.significant_bits().max(q1.significant_bits());
        Ok(cts
            .par_chunks(LANES / 2)
            .flat_map_iter(|chunk| {
                let reduced: Vec<Secret> = chunk
                    .iter()
                    .flat_map(|c| [Secret(Integer::from(&c.0 % p2)), Secret(Integer::from(&c.0 % q2))])
                    .collect();
                let bases: Vec<&Integer> = reduced.iter().map(|x| &**x).collect();
                let exps: Vec<&Integer> =
                    (0..bases.len()).map(|l| if l % 2 == 0 { p1 } else { q1 }).collect();
                let mut powers = ifma.pow_lanes(&bases, &exps, bits, m).0.into_iter();
                let mut out = Vec::with_capacity(chunk.len());
                while let (Some(xp), Some(xq)) = (powers.next(), powers.next()) {
                    out.push(public.decode_plaintext(self.decrypt_from_powers(xp, xq)));
                }
                out
            })
            .collect())
    }

    /// Decrypts one ciphertext on the portable backend: the two CRT halves'
    /// exponentiations constant-time in the secret exponents p - 1, q - 1.
    pub(crate) fn decrypt_portable(&self, c: &Ciphertext) -> Integer {
        let [(p2, p1), (q2, q1)] = self.crt_parts();
        let [mp, mq] =
            self.lanes.portable.get_or_init(|| [portable::Modulus::new(p2), portable::Modulus::new(q2)]);
        let bits = p1.significant_bits().max(q1.significant_bits());
        let xp = mp.pow_secret(&*Secret(Integer::from(&c.0 % p2)), p1, bits);
        let xq = mq.pow_secret(&*Secret(Integer::from(&c.0 % q2)), q1, bits);
        self.public_key().decode_plaintext(self.decrypt_from_powers(xp, xq))
    }
}
