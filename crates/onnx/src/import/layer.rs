//! The layer under construction: a linear node's weights and biases, and
//! what has followed it so far (bias additions and batch normalizations
//! folded in, ReLU, pooling, a residual shortcut).

use ppdnn_model::network::{FloatParams, Linear, Pool, Shortcut};

use crate::error::Refusal;

/// A linear node being collected into a layer.
pub(super) struct Pending {
    pub(super) name: String,
    pub(super) linear: Linear,
    pub(super) weight: Vec<f32>,
    pub(super) bias: Vec<f32>,
    pub(super) relu: bool,
    pub(super) pool: Option<Pool>,
    /// A residual Add's shortcut, with a projection's parameters.
    pub(super) shortcut: Option<(Shortcut, Option<FloatParams>)>,
}

/// A Conv node's shape and parameters (one bias per output channel).
pub(super) struct ConvParams {
    pub(super) kernel: [usize; 2],
    pub(super) stride: [usize; 2],
    pub(super) padding: [usize; 4],
    pub(super) weight: Vec<f32>,
    pub(super) bias: Vec<f32>,
}

impl ConvParams {
    /// The convolution's shape.
    pub(super) fn linear(&self) -> Linear {
        let (kernel, stride, padding) = (self.kernel, self.stride, self.padding);
        Linear::Conv2d { out_channels: self.bias.len(), kernel, stride, padding }
    }
}

/// A batch normalization's parameters, one per channel.
pub(super) struct BatchNorm {
    pub(super) gamma: Vec<f32>,
    pub(super) beta: Vec<f32>,
    pub(super) mean: Vec<f32>,
    pub(super) var: Vec<f32>,
    pub(super) eps: f32,
}

impl Pending {
    /// A linear node's values, before anything follows it.
    pub(super) fn new(name: String, linear: Linear, weight: Vec<f32>, bias: Vec<f32>) -> Self {
        Pending { name, linear, weight, bias, relu: false, pool: None, shortcut: None }
    }

    /// Whether nothing but per-channel steps (bias, batch norm) has followed the node yet.
    pub(super) fn is_linear(&self) -> bool {
        !self.relu && self.pool.is_none() && self.shortcut.is_none()
    }

    /// Output channels.
    fn outputs(&self) -> usize {
        match self.linear {
            Linear::Conv2d { out_channels, .. } => out_channels,
            Linear::Dense { outputs } => outputs,
        }
    }

    fn fan_in(&self) -> usize {
        self.weight.len() / self.outputs().max(1)
    }

    /// Biases per output channel: 1, or the positions of a bias map.
    fn bias_per_channel(&self) -> usize {
        self.bias.len() / self.outputs().max(1)
    }

    /// Adds a constant to the bias: one value, one per output channel, or
    /// one per accumulator (`map_len`, a convolution's output length, when
    /// a bias map is allowed).
    pub(super) fn add_bias(
        &mut self,
        values: &[f32],
        map_len: Option<usize>,
    ) -> std::result::Result<(), Refusal> {
        let n = self.outputs();
        let per = self.bias_per_channel();
        match values.len() {
            1 => self.bias.iter_mut().for_each(|b| *b += values[0]),
            len if len == n => {
                self.bias.iter_mut().enumerate().for_each(|(i, b)| *b += values[i / per.max(1)])
            }
            // A bias map (one per accumulator) on a convolution.
            len if Some(len) == map_len => {
                if per == 1 {
                    self.bias = self.bias.iter().flat_map(|&b| vec![b; len / n.max(1)]).collect();
                }
                self.bias.iter_mut().zip(values).for_each(|(b, v)| *b += v);
            }
            _ => return Err(Refusal::BiasValues { values: values.len(), outputs: n }),
        }
        Ok(())
    }

    /// Folds a batch normalization into the weights and biases.
    pub(super) fn fold(&mut self, bn: &BatchNorm) -> std::result::Result<(), Refusal> {
        let n = self.outputs();
        if [&bn.gamma, &bn.beta, &bn.mean, &bn.var].iter().any(|v| v.len() != n) {
            return Err(Refusal::BatchNormParams { channels: n });
        }
        let (fan_in, per) = (self.fan_in(), self.bias_per_channel());
        for c in 0..n {
            let k = bn.gamma[c] / (bn.var[c] + bn.eps).sqrt();
            self.weight[c * fan_in..(c + 1) * fan_in].iter_mut().for_each(|w| *w *= k);
            self.bias[c * per..(c + 1) * per]
                .iter_mut()
                .for_each(|b| *b = (*b - bn.mean[c]) * k + bn.beta[c]);
        }
        Ok(())
    }
}
