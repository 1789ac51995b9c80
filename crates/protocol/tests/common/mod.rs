//! Helpers shared by the protocol's integration tests.

#![allow(dead_code)] // each test binary uses its own share of the helpers

use std::path::PathBuf;
use std::sync::OnceLock;

use ppdnn_model::dataset::{Dataset, DatasetKind, Split};
use ppdnn_model::modelfile::ModelFile;
use ppdnn_model::network::Network;
use ppdnn_model::quant::QuantModel;
use ppdnn_paillier::{KeyPair, KeyPolicy, generate_keypair};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shipped MNIST model.
pub fn model() -> &'static ModelFile {
    static M: OnceLock<ModelFile> = OnceLock::new();
    M.get_or_init(|| ModelFile::load(&root().join("models/lenet5-mnist.safetensors")).expect("shipped model"))
}

/// The MNIST test set shipped in data/mnist.
pub fn test_set() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| Dataset::load(&root().join("data/mnist"), DatasetKind::Mnist, Split::Test).unwrap())
}

/// A test key pair of `bits` bits, made once (2048, or one other size per test binary).
pub fn key(bits: u32) -> &'static KeyPair {
    static K1: OnceLock<KeyPair> = OnceLock::new();
    static K2: OnceLock<KeyPair> = OnceLock::new();
    let cell = if bits == 2048 { &K2 } else { &K1 };
    cell.get_or_init(|| generate_keypair(bits, KeyPolicy::INSECURE_TESTING).unwrap())
}

#[allow(unused_imports)] // each test binary uses its own share
pub use ppdnn_model::testing::{random_inputs, random_network, random_quant_model};

/// A LeNet-5 with random weights (xorshift from `seed`), quantized on one
/// image of `data`.
pub fn random_model(seed: u64, data: &Dataset) -> QuantModel {
    random_quant_model(Network::lenet5(), seed, data.image(100))
}
