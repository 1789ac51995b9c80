//! # ppdnn-train
//!
//! Trains LeNet-5 (see [`ppdnn_model::network::Network::lenet5`]) on the CPU with burn's
//! flex backend and autodiff: no hand-written back-propagation. The result is a
//! [`FloatModel`], which the model crate quantizes and saves.

#![forbid(unsafe_code)]

mod network;
pub use network::train_network;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d, Relu, conv::Conv2d, conv::Conv2dConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::TensorData;
use indicatif::ProgressBar;
use ppdnn_model::dataset::{Dataset, PIXELS, SIDE};
use ppdnn_model::float::FloatModel;
use ppdnn_model::network::{FloatParams, Network};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Training settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Adam's initial learning rate; it decays along a cosine to 5% of itself.
    pub learning_rate: f64,
    /// Seed for the initialisation and the shuffling.
    pub seed: u64,
    /// Stop after this many steps in all (for smoke tests); None: full epochs.
    pub max_steps: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig { epochs: 10, batch_size: 64, learning_rate: 1e-3, seed: 42, max_steps: None }
    }
}

/// What training produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The trained parameters.
    pub model: FloatModel,
    /// Mean loss of the first and the last 100 steps.
    pub first_loss: f64,
    /// Mean loss of the last 100 steps.
    pub last_loss: f64,
    /// Steps taken.
    pub steps: usize,
}

/// Errors of training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Settings that cannot work.
    #[error("training settings: {0}")]
    Config(String),
    /// A tensor that could not be read back.
    #[error("reading trained parameters: {0}")]
    Export(String),
}

#[derive(Module, Debug)]
struct LeNet5 {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: AvgPool2d,
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
    relu: Relu,
}

impl LeNet5 {
    fn new(device: &Device) -> Self {
        LeNet5 {
            conv1: Conv2dConfig::new([1, 6], [5, 5])
                .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                .init(device),
            conv2: Conv2dConfig::new([6, 16], [5, 5]).init(device),
            pool: AvgPool2dConfig::new([2, 2]).init(),
            fc1: LinearConfig::new(400, 120).init(device),
            fc2: LinearConfig::new(120, 84).init(device),
            fc3: LinearConfig::new(84, 10).init(device),
            relu: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(self.relu.forward(self.conv1.forward(x)));
        let x = self.pool.forward(self.relu.forward(self.conv2.forward(x)));
        let [b, _, _, _] = x.dims();
        let x = x.reshape([b, 400]);
        let x = self.relu.forward(self.fc1.forward(x));
        let x = self.relu.forward(self.fc2.forward(x));
        self.fc3.forward(x)
    }

    fn export(&self) -> Result<FloatModel, TrainError> {
        let (conv, dense) = (conv_params, dense_params);
        let layers = vec![
            conv(&self.conv1)?,
            conv(&self.conv2)?,
            dense(&self.fc1)?,
            dense(&self.fc2)?,
            dense(&self.fc3)?,
        ];
        FloatModel::new(Network::lenet5(), layers).map_err(|e| TrainError::Export(e.to_string()))
    }
}

/// A tensor's values.
fn values(t: Tensor<1>) -> Result<Vec<f32>, TrainError> {
    t.into_data().try_to_vec::<f32>().map_err(|e| TrainError::Export(format!("{e:?}")))
}

/// A convolution's parameters (burn stores its weights as [out, in, kh,
/// kw], as ppdnn does).
fn conv_params(c: &Conv2d) -> Result<FloatParams, TrainError> {
    let w = c.weight.val();
    let n = w.shape().num_elements();
    let bias = c.bias.as_ref().map(|b| values(b.val())).transpose()?.unwrap_or_default();
    Ok(FloatParams::new(values(w.reshape([n]))?, bias))
}

/// A dense layer's parameters (burn stores its weights as [in, out]; ppdnn
/// uses [out, in]).
fn dense_params(l: &Linear) -> Result<FloatParams, TrainError> {
    let w = l.weight.val().transpose();
    let n = w.shape().num_elements();
    let bias = l.bias.as_ref().map(|b| values(b.val())).transpose()?.unwrap_or_default();
    Ok(FloatParams::new(values(w.reshape([n]))?, bias))
}

fn batch(data: &Dataset, indices: &[usize], device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let mut pixels = Vec::with_capacity(indices.len() * PIXELS);
    let mut labels = Vec::with_capacity(indices.len());
    for &i in indices {
        pixels.extend(data.image(i).iter().map(|&p| p as f32 / 255.0));
        labels.push(data.labels[i] as i64);
    }
    let images = Tensor::<4>::from_data(TensorData::new(pixels, [indices.len(), 1, SIDE, SIDE]), device);
    let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [indices.len()]), device);
    (images, labels)
}

/// Trains LeNet-5 on `train`; `progress` shows epoch, loss and speed (pass
/// `ProgressBar::hidden()` for none). Deterministic for a given seed.
pub fn train(
    train: &Dataset,
    config: &TrainConfig,
    progress: &ProgressBar,
) -> Result<TrainOutcome, TrainError> {
    check_config(config, train)?;
    let device = Device::flex().autodiff();
    device.seed(config.seed);
    let mut model = LeNet5::new(&device);
    let mut optim = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let steps_per_epoch = train.len().div_ceil(config.batch_size);
    let total = config.max_steps.unwrap_or(usize::MAX).min(steps_per_epoch * config.epochs);
    progress.set_length(total as u64);
    let mut losses = Vec::with_capacity(total);
    'outer: for epoch in 0..config.epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(config.batch_size) {
            if losses.len() >= total {
                break 'outer;
            }
            let lr = cosine_rate(config, losses.len(), total);
            let (x, y) = batch(train, chunk, &device);
            let loss = loss_fn.forward(model.forward(x), y);
            let value = loss.clone().into_scalar::<f32>() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            losses.push(value);
            progress.inc(1);
            if losses.len() % 20 == 0 {
                let recent = &losses[losses.len().saturating_sub(100)..];
                let mean = recent.iter().sum::<f64>() / recent.len() as f64;
                progress.set_message(format!("epoch {}/{} loss {mean:.4}", epoch + 1, config.epochs));
            }
        }
    }
    Ok(outcome(model.export()?, &losses))
}

/// Settings that cannot work, refused before anything is built.
fn check_config(config: &TrainConfig, train: &Dataset) -> Result<(), TrainError> {
    if config.epochs == 0 || config.batch_size == 0 || train.is_empty() {
        return Err(TrainError::Config("epochs, batch size and the training set must be non-zero".into()));
    }
    if !(config.learning_rate > 0.0 && config.learning_rate < 1.0) {
        return Err(TrainError::Config(format!("learning rate {} is not in (0, 1)", config.learning_rate)));
    }
    Ok(())
}

/// The learning rate at `step` of `total`: a cosine from the configured
/// rate down to 5% of it.
fn cosine_rate(config: &TrainConfig, step: usize, total: usize) -> f64 {
    let t = step as f64 / total as f64;
    config.learning_rate * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
}

/// The outcome of a run with these losses, one per step.
fn outcome(model: FloatModel, losses: &[f64]) -> TrainOutcome {
    let window = 100.min(losses.len()).max(1);
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    TrainOutcome {
        model,
        first_loss: mean(&losses[..window.min(losses.len())]),
        last_loss: mean(&losses[losses.len() - window.min(losses.len())..]),
        steps: losses.len(),
    }
}
