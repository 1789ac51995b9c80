//! A pool of precomputed randomness r^n: the offline phase of encryption.

use std::sync::Mutex;

use crate::int::Integer;
use rayon::prelude::*;

use crate::ciphertext::Ciphertext;
use crate::error::Result;
use crate::keys::PublicKey;

/// Precomputed r^n values for one public key. Filling the pool is the
/// offline phase; an online encryption then costs one multiplication.
/// Every value is handed out once and never reused; an empty pool computes
/// fresh randomness on demand, so encryption never fails for lack of it.
pub struct RandomnessPool {
    key: PublicKey,
    /// Full-strength values r^n for a uniform unit r, whatever base the key
    /// publishes (see [`RandomnessPool::full_strength`]).
    full: bool,
    values: Mutex<Vec<Integer>>,
}

impl std::fmt::Debug for RandomnessPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RandomnessPool").field("available", &self.available()).finish()
    }
}

impl RandomnessPool {
    /// An empty pool for `key`, of the randomness its owner encrypts with
    /// ([`PublicKey::random_rn`]).
    pub fn new(key: &PublicKey) -> Self {
        RandomnessPool { key: key.clone(), full: false, values: Mutex::new(Vec::new()) }
    }

    /// An empty pool of full-strength r^n, r uniform in Z_n^*, never derived
    /// from the key's h^n ([`PublicKey::random_rn_full`]): what someone other
    /// than the key holder re-randomizes with when the key holder must not
    /// be able to relate the result to anything it knows.
    pub fn full_strength(key: &PublicKey) -> Self {
        RandomnessPool { key: key.clone(), full: true, values: Mutex::new(Vec::new()) }
    }

    fn fresh(&self) -> Result<Integer> {
        if self.full { self.key.random_rn_full() } else { self.key.random_rn() }
    }

    /// `count` fresh values, batched on the backend in use.
    fn fresh_many(&self, count: usize) -> Result<Vec<Integer>> {
        if self.full { self.key.random_rn_full_many(count) } else { self.key.random_rn_many(count) }
    }

    /// The key this pool serves.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// Adds `count` fresh r^n values, computed in parallel.
    pub fn fill(&self, count: usize) -> Result<()> {
        let fresh = self.fresh_many(count)?;
        self.lock().extend(fresh);
        Ok(())
    }

    /// How many values are ready.
    pub fn available(&self) -> usize {
        self.lock().len()
    }

    /// Takes one r^n: from the pool if it has one, otherwise freshly computed.
    pub fn take(&self) -> Result<Integer> {
        let pooled = self.lock().pop();
        match pooled {
            Some(rn) => Ok(rn),
            None => self.fresh(),
        }
    }

    /// Takes `count` values at once (those missing are computed in parallel).
    pub fn take_many(&self, count: usize) -> Result<Vec<Integer>> {
        let mut out = {
            let mut values = self.lock();
            let keep = values.len().saturating_sub(count);
            values.split_off(keep)
        };
        let missing = count - out.len();
        if missing > 0 {
            out.extend(self.fresh_many(missing)?);
        }
        Ok(out)
    }

    /// Encrypts one plaintext with pooled randomness.
    pub fn encrypt(&self, m: &Integer) -> Result<Ciphertext> {
        let rn = self.take()?;
        self.key.encrypt_with_rn(m, &rn)
    }

    /// Encrypts many plaintexts in parallel with pooled randomness.
    pub fn encrypt_many(&self, ms: &[Integer]) -> Result<Vec<Ciphertext>> {
        let rns = self.take_many(ms.len())?;
        ms.par_iter().zip(rns.par_iter()).map(|(m, rn)| self.key.encrypt_with_rn(m, rn)).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Integer>> {
        // A poisoned lock only means another thread panicked while pushing or
        // popping; the vector itself is still a valid set of unused values.
        self.values.lock().unwrap_or_else(|e| e.into_inner())
    }
}
