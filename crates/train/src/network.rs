//! Training any network ppdnn serves (sequential or residual: convolutions
//! with shortcuts, pooling of any window, dense layers) on a grey 28x28
//! data set, with burn's autodiff: the modules follow the [`Network`], and
//! the trained parameters come back as a [`FloatModel`] of that network.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d, Relu, conv::Conv2d, conv::Conv2dConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use indicatif::ProgressBar;
use ppdnn_model::dataset::Dataset;
use ppdnn_model::float::FloatModel;
use ppdnn_model::network::{Layer, Linear as LinearKind, Network, PoolKind};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::{TrainConfig, TrainError, TrainOutcome, batch, conv_params, cosine_rate, dense_params};

/// One layer's trainable parts.
#[derive(Module, Debug)]
struct Parts {
    conv: Option<Conv2d>,
    dense: Option<Linear>,
    projection: Option<Conv2d>,
}

/// The network's modules, layer by layer.
#[derive(Module, Debug)]
struct Model {
    layers: Vec<Parts>,
    relu: Relu,
}

fn conv_module(layer: &Layer, in_channels: usize, device: &Device) -> Option<Conv2d> {
    match layer.linear {
        LinearKind::Conv2d { out_channels, kernel, stride, padding: [t, l, b, r] } => Some(
            Conv2dConfig::new([in_channels, out_channels], kernel)
                .with_stride(stride)
                .with_padding(PaddingConfig2d::Explicit(t, l, b, r))
                .init(device),
        ),
        LinearKind::Dense { .. } => None,
    }
}

impl Model {
    fn new(network: &Network, device: &Device) -> Self {
        let layers = network
            .layers()
            .iter()
            .zip(network.shapes())
            .map(|(layer, shapes)| Parts {
                conv: conv_module(layer, shapes.input.channels, device),
                dense: match layer.linear {
                    LinearKind::Dense { outputs } => {
                        Some(LinearConfig::new(shapes.input.len(), outputs).init(device))
                    }
                    LinearKind::Conv2d { .. } => None,
                },
                projection: match (layer.shortcut_projection(), shapes.shortcut) {
                    (Some(p), Some((_, source))) => conv_module(&p, source.channels, device),
                    _ => None,
                },
            })
            .collect();
        Model { layers, relu: Relu::new() }
    }

    /// The logits of a batch [b, c, h, w].
    fn forward(&self, network: &Network, x: Tensor<4>) -> Tensor<2> {
        let mut x = x;
        let mut kept: Vec<Tensor<4>> = Vec::with_capacity(network.layers().len());
        for ((layer, shapes), parts) in network.layers().iter().zip(network.shapes()).zip(&self.layers) {
            let mut y = match (&parts.conv, &parts.dense) {
                (Some(conv), _) => conv.forward(x),
                (None, Some(dense)) => {
                    let [b, _, _, _] = x.dims();
                    let out = shapes.output.channels;
                    dense.forward(x.reshape([b, shapes.input.len()])).reshape([b, out, 1, 1])
                }
                (None, None) => unreachable!("every layer has a convolution or a dense part"),
            };
            if let Some((f, _)) = shapes.shortcut {
                let source = kept[f].clone();
                y = y + match &parts.projection {
                    Some(p) => p.forward(source),
                    None => source,
                };
            }
            if layer.relu {
                y = self.relu.forward(y);
            }
            if let Some(p) = &layer.pool {
                y = match p.kind {
                    PoolKind::Average => {
                        AvgPool2dConfig::new(p.window).with_strides(p.stride).init().forward(y)
                    }
                    PoolKind::Max => MaxPool2dConfig::new(p.window).with_strides(p.stride).init().forward(y),
                };
            }
            kept.push(y.clone());
            x = y;
        }
        let [b, _, _, _] = x.dims();
        x.reshape([b, network.classes()])
    }

    fn export(&self, network: &Network) -> Result<FloatModel, TrainError> {
        let (conv, dense) = (conv_params, dense_params);
        let layers = self
            .layers
            .iter()
            .map(|parts| {
                let mut p = match (&parts.conv, &parts.dense) {
                    (Some(c), _) => conv(c)?,
                    (None, Some(d)) => dense(d)?,
                    (None, None) => return Err(TrainError::Export("a layer without parameters".into())),
                };
                p.shortcut = parts.projection.as_ref().map(conv).transpose()?.map(Box::new);
                Ok(p)
            })
            .collect::<Result<Vec<_>, _>>()?;
        FloatModel::new(network.clone(), layers).map_err(|e| TrainError::Export(e.to_string()))
    }
}

/// Trains `network` (whose input must be the data set's 1x28x28) on
/// `train`, as [`crate::train`] trains LeNet-5: Adam with a cosine decay,
/// deterministic for a given seed.
pub fn train_network(
    network: &Network,
    train: &Dataset,
    config: &TrainConfig,
    progress: &ProgressBar,
) -> Result<TrainOutcome, TrainError> {
    crate::check_config(config, train)?;
    let input = network.input();
    if (input.channels, input.height, input.width) != (1, 28, 28) {
        return Err(TrainError::Config(format!(
            "the network takes {}x{}x{} inputs, the data set has 1x28x28",
            input.channels, input.height, input.width
        )));
    }
    let device = Device::flex().autodiff();
    device.seed(config.seed);
    let mut model = Model::new(network, &device);
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
            let (x, y) = batch(train, chunk, &device);
            let loss = loss_fn.forward(model.forward(network, x), y);
            let value = loss.clone().into_scalar::<f32>() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(cosine_rate(config, losses.len(), total), model, grads);
            losses.push(value);
            progress.inc(1);
            if losses.len() % 20 == 0 {
                let recent = &losses[losses.len().saturating_sub(100)..];
                let mean = recent.iter().sum::<f64>() / recent.len() as f64;
                progress.set_message(format!("epoch {}/{} loss {mean:.4}", epoch + 1, config.epochs));
            }
        }
    }
    Ok(crate::outcome(model.export(network)?, &losses))
}
