//! Full-strength re-randomizers r'^n mod n^2 with r' uniform in Z_n^*,
//! chosen by the server and computed ahead of time.

use std::sync::Mutex;

use ppdnn_paillier::{Integer, PublicKey};
use rayon::prelude::*;

use crate::error::Result;

/// A stock of r'^n values for one client key, each used once. Filling it is
/// the server's offline work for a session; an empty stock computes on
/// demand, so a session never waits for lack of it, only for the time.
pub struct FreshRandomness {
    key: PublicKey,
    values: Mutex<Vec<Integer>>,
}

impl std::fmt::Debug for FreshRandomness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FreshRandomness").field("available", &self.available()).finish()
    }
}

impl FreshRandomness {
    /// An empty stock for `key`.
    pub fn new(key: &PublicKey) -> Self {
        FreshRandomness { key: key.clone(), values: Mutex::new(Vec::new()) }
    }

    /// Adds `count` values, computed in parallel on the current rayon pool.
    pub fn fill(&self, count: usize) -> Result<()> {
        let fresh: Vec<Integer> = (0..count)
            .into_par_iter()
            .map(|_| self.key.random_rn_full())
            .collect::<std::result::Result<_, _>>()?;
        self.lock().extend(fresh);
        Ok(())
    }

    /// How many values are ready.
    pub fn available(&self) -> usize {
        self.lock().len()
    }

    /// Takes `count` values (those missing are computed now).
    pub fn take_many(&self, count: usize) -> Result<Vec<Integer>> {
        let mut out = {
            let mut v = self.lock();
            let keep = v.len().saturating_sub(count);
            v.split_off(keep)
        };
        let missing = count - out.len();
        if missing > 0 {
            let fresh: Vec<Integer> = (0..missing)
                .into_par_iter()
                .map(|_| self.key.random_rn_full())
                .collect::<std::result::Result<_, _>>()?;
            out.extend(fresh);
        }
        Ok(out)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Integer>> {
        // A poisoned lock only means a thread panicked while pushing or
        // popping; the values left are still unused.
        self.values.lock().unwrap_or_else(|e| e.into_inner())
    }
}
