//! Shared test keys: generating keys is slow, so each size is made once.

use std::sync::OnceLock;

use ppdnn_paillier::{KeyPair, KeyPolicy, generate_keypair};

pub fn key1024() -> &'static KeyPair {
    static K: OnceLock<KeyPair> = OnceLock::new();
    K.get_or_init(|| generate_keypair(1024, KeyPolicy::INSECURE_TESTING).expect("keygen"))
}

#[allow(dead_code)]
pub fn key2048() -> &'static KeyPair {
    static K: OnceLock<KeyPair> = OnceLock::new();
    K.get_or_init(|| generate_keypair(2048, KeyPolicy::PRODUCTION).expect("keygen"))
}

/// A xorshift64 generator (test data).
#[allow(dead_code)]
pub fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
