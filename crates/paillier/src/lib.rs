//! # ppdnn-paillier
//!
//! The Paillier cryptosystem as ppdnn needs it: correct, validated, and fast.
//!
//! - g = n + 1, so Enc(m) = (1 + m*n) * r^n mod n^2;
//! - decryption by CRT over p^2 and q^2 with GMP's constant-time `mpz_powm_sec`;
//! - Damgard-Jurik-Nielsen randomness r^n = (h^n)^a with a fixed-base table,
//!   and a [`RandomnessPool`] so that an online encryption is one multiplication;
//! - signed plaintexts in (-n/2, n/2] and a [`SlotCodec`] to pack many small
//!   signed integers into one plaintext;
//! - linear combinations as multi-exponentiations ([`PublicKey::linear_combination`],
//!   [`SharedBases`]), the server's workhorse;
//! - validation of every key and ciphertext that comes from outside.
//!
//! ```
//! use ppdnn_paillier::{generate_keypair, KeyPolicy};
//! use rug::Integer;
//!
//! let pair = generate_keypair(512, KeyPolicy::INSECURE_TESTING).unwrap();
//! let pk = pair.public();
//! let a = pk.encrypt_i64(20).unwrap();
//! let b = pk.encrypt_i64(-3).unwrap();
//! let c = pk.linear_combination(&[a, b], &[2, 5]).unwrap();
//! assert_eq!(pair.private.decrypt(&c), Integer::from(25));
//! ```

// Off x86-64 the IFMA types are uninhabited, which makes their call sites unreachable.
#![cfg_attr(not(target_arch = "x86_64"), allow(unreachable_code, unused_variables))]

pub mod arith;
mod batch;
mod ciphertext;
mod error;
pub mod factor_proof;
mod fixed_base;
#[cfg(target_arch = "x86_64")]
mod ifma;
#[cfg(not(target_arch = "x86_64"))]
#[path = "ifma_unsupported.rs"]
mod ifma;
pub mod int;
pub mod keyfile;
mod keys;
mod lane_cache;
mod memory;
mod modulus_proof;
mod multiexp;
mod ops;
pub mod params_proof;
mod policy;
mod pool;
mod portable;
mod random;
mod secret;
mod slots;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use arith::{Backend, set_backend};

pub use ciphertext::{BadCiphertext, Ciphertext, parse_decimal, to_fixed_bytes};
pub use error::{
    BackendError, BaseError, CiphertextError, Error, FactorProofError, FormatError, KeyError, LengthError,
    PrivateKeyError, ProofError, RandomError, RangeError, Result, SlotLayoutError, SlotOverflow,
};
pub use factor_proof::{FactorProof, RingPedersen};
pub use fixed_base::FixedBaseTable;
pub use int::Integer;
pub use keys::{KeyPair, PrivateKey, PublicKey, generate_keypair, generate_keypair_with_progress};
pub use memory::release_free_memory;
pub use modulus_proof::{ModulusProof, REPETITIONS as MODULUS_PROOF_REPETITIONS};
pub use multiexp::SharedBases;
pub use policy::{KeyPolicy, KeySizeError};
pub use pool::RandomnessPool;
pub use random::{random_below, random_bits};
pub use slots::SlotCodec;

/// How many values the IFMA backend computes at once: batched calls (such
/// as [`RandomnessPool::fill`]) whose sizes are multiples of it leave no
/// lane idle; a batch of 4 costs as much as a batch of 8.
pub const LANES: usize = 8;
