//! Client keys seen recently, with their fixed-base tables, under a memory budget.

use std::sync::Mutex;

use ppdnn_paillier::PublicKey;

/// A cache of client public keys shared by every evaluator of a server, so
/// that a returning client does not pay for its re-randomization table again.
///
/// It is a performance cache only (a fresh replica without it serves the same
/// answers). Its memory is bounded: keys are evicted, least recently used
/// first, until the tables of the cached keys fit `max_bytes`. Sessions in
/// progress keep their own handle on their key's table, so eviction never
/// disturbs them; what they hold is bounded by the server's session limit.
#[derive(Debug)]
pub struct KeyCache {
    max_bytes: usize,
    max_keys: usize,
    keys: Mutex<Vec<PublicKey>>,
}

impl KeyCache {
    /// A cache holding at most `max_keys` keys and `max_bytes` of tables.
    pub fn new(max_keys: usize, max_bytes: usize) -> Self {
        KeyCache { max_bytes, max_keys, keys: Mutex::new(Vec::new()) }
    }

    /// The cached copy of `key` (sharing its table) if it was seen recently;
    /// otherwise `key`, now cached (if the cache holds anything at all).
    pub fn get(&self, key: PublicKey) -> PublicKey {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let key = match keys.iter().position(|k| *k == key) {
            Some(i) => keys.remove(i),
            None => key,
        };
        if self.max_keys > 0 {
            keys.push(key.clone());
        }
        Self::evict(&mut keys, self.max_keys, self.max_bytes);
        key
    }

    fn evict(keys: &mut Vec<PublicKey>, max_keys: usize, max_bytes: usize) {
        while keys.len() > max_keys
            || (keys.len() > 1
                && keys.iter().map(PublicKey::randomness_table_bytes).sum::<usize>() > max_bytes)
        {
            keys.remove(0);
        }
    }

    /// The cached key with this n and h^n, if there is one (it passed
    /// validation when it was cached), now the most recently used.
    pub fn find(
        &self,
        n: &ppdnn_paillier::Integer,
        hn: Option<&ppdnn_paillier::Integer>,
    ) -> Option<PublicKey> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let i = keys.iter().position(|k| k.n() == n && k.hn() == hn)?;
        let key = keys.remove(i);
        keys.push(key.clone());
        Some(key)
    }

    /// Keys cached now.
    pub fn len(&self) -> usize {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no key is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of tables held by the cached keys now.
    pub fn table_bytes(&self) -> usize {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(PublicKey::randomness_table_bytes)
            .sum()
    }
}

impl Default for KeyCache {
    /// 32 keys and 64 MiB of tables (about 19 keys' packed-mode tables at 2048 bits).
    fn default() -> Self {
        KeyCache::new(32, 64 << 20)
    }
}
