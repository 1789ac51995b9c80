//! Helpers shared by the protocol's integration tests: the shipped model and
//! data and the test keys come from the crates' own test support
//! (`ppdnn_model::testing`, `ppdnn_paillier::testing`).

#![allow(dead_code, unused_imports)] // each test binary uses its own share of the helpers

use ppdnn_model::dataset::Dataset;
use ppdnn_model::modelfile::ModelFile;
use ppdnn_model::network::Network;
use ppdnn_model::quant::QuantModel;
use ppdnn_paillier::KeyPair;

pub use ppdnn_model::testing::{random_inputs, random_network, random_quant_model};

/// The shipped MNIST model.
pub fn model() -> &'static ModelFile {
    ppdnn_model::testing::shipped_model()
}

/// The MNIST test set shipped in data/mnist.
pub fn test_set() -> &'static Dataset {
    ppdnn_model::testing::mnist_test_set()
}

/// A test key pair of `bits` bits, made once per size.
pub fn key(bits: u32) -> &'static KeyPair {
    ppdnn_paillier::testing::test_keypair(bits)
}

/// A LeNet-5 with random weights (xorshift from `seed`), quantized on one
/// image of `data`.
pub fn random_model(seed: u64, data: &Dataset) -> QuantModel {
    random_quant_model(Network::lenet5(), seed, data.image(100))
}

/// Runs one inference in this process, in the evaluator's mode, through
/// the one session interface; checks that the server is done too.
pub fn run(
    ev: &ppdnn_protocol::Evaluator,
    pair: &KeyPair,
    image: &[u8],
    output: ppdnn_protocol::Output,
) -> ppdnn_protocol::ClientStep {
    use std::sync::Arc;
    let sk = Arc::new(pair.private.clone());
    let pool = Arc::new(ppdnn_paillier::RandomnessPool::new(pair.public()));
    let mut client = ppdnn_protocol::ClientSession::new(ev.session_plan(), sk, pool, output).unwrap();
    let (mut server, opening) = ev.start(pair.public().clone(), output).unwrap();
    let run = ppdnn_protocol::run_in_process(&mut client, &mut server, opening, image).unwrap();
    assert!(server.finished(), "the client finished before the server");
    run.outcome
}
