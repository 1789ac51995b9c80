//! Shared test keys (made once per size, by `ppdnn_paillier::testing`) and
//! test data.

use ppdnn_paillier::KeyPair;
use ppdnn_paillier::testing::test_keypair;

pub fn key1024() -> &'static KeyPair {
    test_keypair(1024)
}

#[allow(dead_code)]
pub fn key2048() -> &'static KeyPair {
    test_keypair(2048)
}

#[allow(unused_imports)]
pub use ppdnn_paillier::testing::xorshift;
