//! Helpers shared by the protocol's integration tests.

#![allow(dead_code)] // each test binary uses its own share of the helpers

use std::path::PathBuf;
use std::sync::OnceLock;

use ppdnn_model::dataset::{Dataset, DatasetKind, Split};
use ppdnn_model::float::FloatModel;
use ppdnn_model::modelfile::ModelFile;
use ppdnn_model::network::{FloatParams, Layer, Linear, Network, Pool, PoolKind, Shape};
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

/// A small generator (xorshift), for tests only.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// A float in [-0.5, 0.5).
    pub fn float(&mut self) -> f32 {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) as f32 - 0.5
    }
}

/// A random small network: one or two convolutions (kernels, strides and
/// asymmetric padding of all kinds, non-square inputs of 1 or 3 channels,
/// average, max or no pooling with any window and stride, ReLU or not),
/// then one or two dense layers.
pub fn random_network(seed: u64) -> Network {
    let mut r = Rng(seed | 1);
    let channels = [1, 3][r.below(2)];
    let (mut h, mut w) = (5 + r.below(8), 5 + r.below(8));
    let input = Shape::new(channels, h, w);
    let mut layers = Vec::new();
    for c in 0..1 + r.below(2) {
        let kernel = [1 + r.below(3.min(h)), 1 + r.below(3.min(w))];
        let stride = [1 + r.below(2), 1 + r.below(2)];
        let padding = [r.below(2), r.below(2), r.below(2), r.below(2)];
        h = (h + padding[0] + padding[2] - kernel[0]) / stride[0] + 1;
        w = (w + padding[1] + padding[3] - kernel[1]) / stride[1] + 1;
        let pool = if h >= 2 && w >= 2 && r.below(3) != 0 {
            let window = [1 + r.below(2), 1 + r.below(2)];
            let stride = [1 + r.below(2), 1 + r.below(2)];
            let kind = [PoolKind::Average, PoolKind::Max][r.below(2)];
            h = (h - window[0]) / stride[0] + 1;
            w = (w - window[1]) / stride[1] + 1;
            Some(Pool { kind, window, stride })
        } else {
            None
        };
        layers.push(Layer {
            name: format!("conv{c}"),
            linear: Linear::Conv2d { out_channels: 1 + r.below(4), kernel, stride, padding },
            relu: r.below(4) != 0,
            pool,
        });
    }
    let dense = r.below(2);
    for d in 0..=dense {
        let last = d == dense;
        layers.push(Layer {
            name: format!("fc{d}"),
            linear: Linear::Dense { outputs: if last { 3 + r.below(8) } else { 4 + r.below(12) } },
            relu: !last,
            pool: None,
        });
    }
    Network::new(input, layers).expect("the generator keeps every kernel and window inside its input")
}

/// `network` with random float parameters (from `seed`), quantized on
/// `calibration` (whole inputs of the network's length).
pub fn random_quant_model(network: Network, seed: u64, calibration: &[u8]) -> QuantModel {
    let mut r = Rng(seed | 1);
    let layers = network
        .layers()
        .iter()
        .zip(network.shapes())
        .map(|(layer, shapes)| FloatParams {
            weight: (0..layer.weight_shape(shapes.input).iter().product::<usize>())
                .map(|_| r.float())
                .collect(),
            bias: (0..layer.bias_len()).map(|_| r.float() * 0.3).collect(),
        })
        .collect();
    let float = FloatModel::new(network, layers).unwrap();
    QuantModel::quantize(&float, calibration).unwrap()
}

/// Random inputs of pixels 0..255 for `network`, back to back.
pub fn random_inputs(seed: u64, count: usize, len: usize) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    (0..count * len).map(|_| (r.next() >> 56) as u8).collect()
}

/// A LeNet-5 with random weights (xorshift from `seed`), quantized on one
/// image of `data`.
pub fn random_model(seed: u64, data: &Dataset) -> QuantModel {
    random_quant_model(Network::lenet5(), seed, data.image(100))
}
