//! Random networks, models and inputs for tests (the `testing` feature):
//! deterministic from a seed, covering every feature of [`Network`]. Not
//! for production use.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::dataset::{Dataset, DatasetKind, Split};
use crate::float::FloatModel;
use crate::modelfile::ModelFile;
use crate::network::{FloatParams, Layer, Linear, Network, Pool, PoolKind, Shape};
use crate::quant::{QuantModel, RequantStyle};

/// The repository's root (the tests' data and models live under it).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shipped LeNet-5 for MNIST, loaded once.
pub fn shipped_model() -> &'static ModelFile {
    static M: OnceLock<ModelFile> = OnceLock::new();
    M.get_or_init(|| {
        ModelFile::load(&repo_root().join("models/lenet5-mnist.safetensors"))
            .expect("the shipped model loads")
    })
}

/// The MNIST test images shipped in data/mnist, loaded once.
pub fn mnist_test_set() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| {
        Dataset::load(&repo_root().join("data/mnist"), DatasetKind::Mnist, Split::Test)
            .expect("the shipped MNIST test set loads")
    })
}

/// A small generator (xorshift), for tests only.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// A float in [-0.5, 0.5).
    pub fn float(&mut self) -> f32 {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) as f32 - 0.5
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
            shortcut: None,
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
            shortcut: None,
        });
    }
    Network::new(input, layers).expect("the generator keeps every kernel and window inside its input")
}

/// A random small residual network ([`crate::zoo::resnet`]): 1 or 3
/// input channels, sides 4 to 9, one or two stages of 1 to 3 channels
/// (identity shortcuts, and projections where a stage begins or widens),
/// one or two blocks each, 2 to 5 classes.
pub fn random_residual_network(seed: u64) -> Network {
    let mut r = Rng(seed | 1);
    let input = Shape::new([1, 3][r.below(2)], 4 + r.below(6), 4 + r.below(6));
    let widths: Vec<usize> = (0..1 + r.below(2)).map(|_| 1 + r.below(3)).collect();
    crate::zoo::resnet(input, &widths, 1 + r.below(2), 2 + r.below(4))
}

/// `network` with random float parameters (from `seed`).
pub fn random_float_model(network: Network, seed: u64) -> FloatModel {
    let mut r = Rng(seed | 1);
    let layers = network
        .layers()
        .iter()
        .zip(network.shapes())
        .map(|(layer, shapes)| {
            let mut params = |shape: Vec<usize>, biases: usize| {
                FloatParams::new(
                    (0..shape.iter().product::<usize>()).map(|_| r.float()).collect(),
                    (0..biases).map(|_| r.float() * 0.3).collect(),
                )
            };
            let mut p = params(layer.weight_shape(shapes.input), layer.bias_len());
            if let (Some(proj), Some((_, source))) = (layer.shortcut_projection(), shapes.shortcut) {
                p.shortcut = Some(Box::new(params(proj.weight_shape(source), proj.bias_len())));
            }
            p
        })
        .collect();
    FloatModel::new(network, layers).expect("parameters of the network's own shapes")
}

/// `network` with random float parameters (from `seed`), quantized on
/// `calibration` (whole inputs of the network's length).
pub fn random_quant_model(network: Network, seed: u64, calibration: &[u8]) -> QuantModel {
    random_quant_model_with(network, seed, calibration, RequantStyle::Fixed)
}

/// [`random_quant_model`] with the requantization style `style`.
pub fn random_quant_model_with(
    network: Network,
    seed: u64,
    calibration: &[u8],
    style: RequantStyle,
) -> QuantModel {
    QuantModel::quantize_with(&random_float_model(network, seed), calibration, style)
        .expect("a random model quantizes on whole inputs")
}

/// [`random_quant_model`] with powers of two after the even layers and
/// 8-bit multipliers after the odd ones (what `--requant auto` can choose).
pub fn random_quant_model_mixed(network: Network, seed: u64, calibration: &[u8]) -> QuantModel {
    let float = random_float_model(network, seed);
    let scales = crate::quant::calibrated_scales(&float, calibration).expect("whole inputs calibrate");
    let styles: Vec<RequantStyle> = (0..scales.len())
        .map(|l| if l % 2 == 0 { RequantStyle::PowerOfTwo } else { RequantStyle::Fixed })
        .collect();
    QuantModel::from_scales_styled(&float, &scales, &styles).expect("a random model quantizes")
}

/// `count` random inputs of `len` pixels 0..255, back to back.
pub fn random_inputs(seed: u64, count: usize, len: usize) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    (0..count * len).map(|_| (r.next_u64() >> 56) as u8).collect()
}
