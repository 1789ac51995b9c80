//! Test keys (the `testing` feature): generating a key is slow, so each
//! size is generated once per process and shared. Not for production use:
//! small sizes are generated under [`KeyPolicy::INSECURE_TESTING`].

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::keys::{KeyPair, generate_keypair};
use crate::policy::KeyPolicy;

/// A key pair of `bits` bits, generated on first use and shared by every
/// later call with the same size (a cache keyed by size).
pub fn test_keypair(bits: u32) -> &'static KeyPair {
    static KEYS: OnceLock<Mutex<HashMap<u32, &'static KeyPair>>> = OnceLock::new();
    let keys = KEYS.get_or_init(Mutex::default);
    // Generated under the lock: two tests asking for one size wait for one key.
    let mut keys = keys.lock().unwrap_or_else(|e| e.into_inner());
    keys.entry(bits).or_insert_with(|| {
        let pair =
            generate_keypair(bits, KeyPolicy::INSECURE_TESTING).expect("a test key of an accepted size");
        Box::leak(Box::new(pair))
    })
}

/// A xorshift64 generator from `seed` (test data, never keys).
pub fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_size_is_made_once_and_kept_apart() {
        let a = test_keypair(512);
        let b = test_keypair(768);
        assert_eq!(a.public().bits(), 512);
        assert_eq!(b.public().bits(), 768);
        assert!(std::ptr::eq(a, test_keypair(512)));
    }
}
