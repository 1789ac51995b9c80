//! Integer quantization of LeNet-5 and the exact integer forward pass.
//!
//! Every step is an integer function, so the encrypted pipeline can be checked
//! against this reference bit for bit:
//!
//! - inputs are pixels 0..255 (scale 1/255);
//! - layer l has symmetric 8-bit weights W (|w| <= 127, scale s_w per layer)
//!   and integer biases b = round(bias / (s_w * s_x)), so its accumulators
//!   acc = W x + b are exact integers (the server computes these, encrypted);
//! - between layers the client applies ReLU, sums each 2x2 pooling window
//!   (the 1/4 of average pooling is folded into the next step) and requantizes
//!   to 0..255 with a fixed-point multiplier: x' = clamp((y * M + 2^(k-1)) >> k, 0, 255);
//! - the last layer's accumulators are the logits.
//!
//! Activation scales are calibrated on training images, never on the test set.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dataset::PIXELS;
use crate::error::{Error, Result};
use crate::lenet::{FloatModel, LENET5, LayerShape, LayerSpec, argmax, linear, pool2};

/// Largest activation value: activations are unsigned 8-bit.
pub const ACTIVATION_MAX: i64 = 255;
/// Largest weight magnitude: weights are symmetric 8-bit.
pub const WEIGHT_MAX: i64 = 127;
/// Bits of the requantization multipliers. Eight keep the integer model's
/// accuracy (99.05% on MNIST against 99.03% with 31; 90.30% on
/// Fashion-MNIST) and make the private mode's circuits 45% smaller: each constant multiplication costs an adder per
/// non-zero digit of the multiplier (`cargo run --release -p
/// ppdnn-protocol --example multiplier_widths` measures the trade-off).
pub const MULTIPLIER_BITS: u32 = 8;
/// Percentile of calibration activations mapped to 255.
const CALIBRATION_PERCENTILE: f64 = 0.9999;

/// A fixed-point requantization x' = clamp((y * multiplier + 2^(shift-1)) >> shift, 0, 255).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requant {
    /// Multiplier, in [2^(MULTIPLIER_BITS-1), 2^MULTIPLIER_BITS) unless the scale is tiny or huge.
    pub multiplier: i64,
    /// Right shift, 1..=62.
    pub shift: u32,
}

impl Requant {
    /// The fixed-point form of a positive real factor, with a multiplier of
    /// [`MULTIPLIER_BITS`] bits.
    pub fn from_real(m: f64) -> Result<Self> {
        Self::from_real_bits(m, MULTIPLIER_BITS)
    }

    /// The fixed-point form of a positive real factor with a multiplier of
    /// `bits` bits (1 to 31).
    pub fn from_real_bits(m: f64, bits: u32) -> Result<Self> {
        if !(m.is_finite() && m > 0.0) {
            return Err(Error::Model(format!("requantization factor {m} is not a positive number")));
        }
        if !(1..=31).contains(&bits) {
            return Err(Error::Model(format!("a requantization multiplier of {bits} bits (1 to 31)")));
        }
        let mut shift = bits as i32 - m.log2().ceil() as i32;
        shift = shift.clamp(1, 62);
        let multiplier = (m * 2f64.powi(shift)).round() as i64;
        let r = Requant { multiplier, shift: shift as u32 };
        r.validate()?;
        Ok(r)
    }

    /// Checks the ranges that keep `apply` free of overflow.
    pub fn validate(&self) -> Result<()> {
        if !(1..=62).contains(&self.shift) || !(1..(1i64 << 32)).contains(&self.multiplier) {
            return Err(Error::Model(format!(
                "requantization multiplier {} / shift {} out of range",
                self.multiplier, self.shift
            )));
        }
        Ok(())
    }

    /// Applies the requantization to a non-negative integer (negative values give 0).
    pub fn apply(&self, y: i64) -> i64 {
        let v = (y as i128 * self.multiplier as i128 + (1i128 << (self.shift - 1))) >> self.shift;
        v.clamp(0, ACTIVATION_MAX as i128) as i64
    }

    /// The real factor this approximates.
    pub fn real(&self) -> f64 {
        self.multiplier as f64 / 2f64.powi(self.shift as i32)
    }
}

/// One quantized layer.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantLayer {
    /// Shape and what follows the layer.
    pub spec: LayerSpec,
    /// Integer weights (|w| <= 127), in the float layout.
    pub weight: Vec<i64>,
    /// Integer biases, in accumulator units.
    pub bias: Vec<i64>,
    /// Weight scale s_w: real weight = s_w * w.
    pub weight_scale: f64,
    /// Input scale s_x: real input = s_x * x.
    pub input_scale: f64,
    /// The step to the next layer's inputs; None for the last layer.
    pub requant: Option<Requant>,
}

/// LeNet-5 with integer weights: the exact reference of the encrypted pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantModel {
    /// The layers in order.
    pub layers: Vec<QuantLayer>,
}

impl QuantModel {
    /// Quantizes a float model, calibrating activation scales on
    /// `calibration` (training images, PIXELS bytes each).
    pub fn quantize(float: &FloatModel, calibration: &[u8]) -> Result<Self> {
        float.validate()?;
        if calibration.is_empty() || !calibration.len().is_multiple_of(PIXELS) {
            return Err(Error::Input("calibration needs whole 28x28 images".into()));
        }
        // Activation scales from float activations after each hidden layer.
        let acts: Vec<Vec<Vec<f32>>> =
            calibration.par_chunks(PIXELS).map(|img| float.activations(img)).collect();
        let mut input_scale = 1.0 / ACTIVATION_MAX as f64;
        let mut layers = Vec::with_capacity(LENET5.len());
        for (l, (spec, fl)) in LENET5.iter().zip(&float.layers).enumerate() {
            let max_w = fl.weight.iter().fold(0f32, |m, w| m.max(w.abs())) as f64;
            let weight_scale = if max_w > 0.0 { max_w / WEIGHT_MAX as f64 } else { 1.0 };
            let weight: Vec<i64> = fl
                .weight
                .iter()
                .map(|&w| ((w as f64 / weight_scale).round() as i64).clamp(-WEIGHT_MAX, WEIGHT_MAX))
                .collect();
            let bias: Vec<i64> =
                fl.bias.iter().map(|&b| (b as f64 / (weight_scale * input_scale)).round() as i64).collect();
            let last = l + 1 == LENET5.len();
            let (requant, next_scale) = if last {
                (None, 0.0)
            } else {
                let mut values: Vec<f32> = acts.iter().flat_map(|a| a[l].iter().copied()).collect();
                values.sort_by(|a, b| a.total_cmp(b));
                let idx = ((values.len() - 1) as f64 * CALIBRATION_PERCENTILE) as usize;
                let top = (values[idx] as f64).max(1e-6);
                let next_scale = top / ACTIVATION_MAX as f64;
                let pool_div = if spec.pool { 4.0 } else { 1.0 };
                let r = Requant::from_real(weight_scale * input_scale / (pool_div * next_scale))?;
                (Some(r), next_scale)
            };
            layers.push(QuantLayer { spec: *spec, weight, bias, weight_scale, input_scale, requant });
            input_scale = next_scale;
        }
        Ok(QuantModel { layers })
    }

    /// Checks shapes, weight ranges and requantization steps against LeNet-5.
    pub fn validate(&self) -> Result<()> {
        if self.layers.len() != LENET5.len() {
            return Err(Error::Model(format!("{} layers, LeNet-5 has {}", self.layers.len(), LENET5.len())));
        }
        for (l, (layer, spec)) in self.layers.iter().zip(LENET5.iter()).enumerate() {
            let name = spec.name;
            if layer.spec != *spec {
                return Err(Error::Model(format!("{name}: layer shape does not match LeNet-5")));
            }
            let want: usize = spec.shape.weight_shape().iter().product();
            if layer.weight.len() != want || layer.bias.len() != spec.shape.out_channels() {
                return Err(Error::Model(format!("{name}: wrong number of integer weights or biases")));
            }
            if layer.weight.iter().any(|w| w.abs() > WEIGHT_MAX) {
                return Err(Error::Model(format!("{name}: an integer weight exceeds +-{WEIGHT_MAX}")));
            }
            if layer.bias.iter().any(|b| b.abs() > 1 << 40) {
                return Err(Error::Model(format!("{name}: an integer bias exceeds 2^40")));
            }
            let last = l + 1 == LENET5.len();
            match (&layer.requant, last) {
                (Some(r), false) => r.validate()?,
                (None, true) => {}
                _ => return Err(Error::Model(format!("{name}: requantization present on the wrong layers"))),
            }
        }
        Ok(())
    }

    /// The accumulators of layer `l`: W x + b, exact.
    pub fn accumulators(&self, l: usize, input: &[i64]) -> Result<Vec<i64>> {
        let layer = self.layers.get(l).ok_or_else(|| Error::Input(format!("no layer {l}")))?;
        if input.len() != layer.spec.shape.input_len() {
            return Err(Error::Input(format!(
                "{}: {} inputs, expected {}",
                layer.spec.name,
                input.len(),
                layer.spec.shape.input_len()
            )));
        }
        Ok(linear(&layer.spec.shape, &layer.weight, &layer.bias, input, |w, x| w * x))
    }

    /// The client's step after layer `l`: ReLU, 2x2 pooling sums and
    /// requantization to 0..255; for the last layer the accumulators themselves (logits).
    pub fn activate(&self, l: usize, acc: &[i64]) -> Result<Vec<i64>> {
        let layer = self.layers.get(l).ok_or_else(|| Error::Input(format!("no layer {l}")))?;
        if acc.len() != layer.spec.shape.output_len() {
            return Err(Error::Input(format!(
                "{}: {} accumulators, expected {}",
                layer.spec.name,
                acc.len(),
                layer.spec.shape.output_len()
            )));
        }
        Ok(activate(&layer.spec.shape, layer.spec.relu, layer.spec.pool, layer.requant, acc))
    }

    /// Every layer's accumulators for one image (the last: logits).
    pub fn trace(&self, image: &[u8]) -> Result<Vec<Vec<i64>>> {
        if image.len() != PIXELS {
            return Err(Error::Input(format!("an image has {PIXELS} pixels, got {}", image.len())));
        }
        let mut x: Vec<i64> = image.iter().map(|&p| p as i64).collect();
        let mut out = Vec::with_capacity(self.layers.len());
        for l in 0..self.layers.len() {
            let acc = self.accumulators(l, &x)?;
            x = self.activate(l, &acc)?;
            out.push(acc);
        }
        Ok(out)
    }

    /// Integer logits for one image.
    pub fn logits(&self, image: &[u8]) -> Result<Vec<i64>> {
        Ok(self.trace(image)?.pop().unwrap_or_default())
    }

    /// The predicted class for one image.
    pub fn predict(&self, image: &[u8]) -> Result<usize> {
        Ok(argmax(&self.logits(image)?))
    }

    /// Class probabilities from integer logits (softmax of the real-valued logits).
    pub fn scores(&self, logits: &[i64]) -> Vec<f64> {
        let scale = self.layers.last().map(|l| l.weight_scale * l.input_scale).unwrap_or(1.0);
        softmax(&logits.iter().map(|&v| v as f64 * scale).collect::<Vec<_>>())
    }

    /// Worst-case |accumulator| of layer `l` over all inputs in 0..255:
    /// max over output channels of sum |w| * 255 + |b|.
    pub fn accumulator_bound(&self, l: usize) -> i64 {
        let layer = &self.layers[l];
        let fan_in = layer.spec.shape.fan_in();
        layer
            .weight
            .chunks(fan_in)
            .zip(&layer.bias)
            .map(|(ws, b)| ws.iter().map(|w| w.abs()).sum::<i64>() * ACTIVATION_MAX + b.abs())
            .max()
            .unwrap_or(0)
    }

    /// Accuracy over a data set, in parallel.
    pub fn accuracy(&self, images: &[u8], labels: &[u8]) -> f64 {
        let correct: usize = labels
            .par_iter()
            .enumerate()
            .filter(|&(i, &l)| self.predict(&images[i * PIXELS..(i + 1) * PIXELS]).ok() == Some(l as usize))
            .count();
        correct as f64 / labels.len().max(1) as f64
    }
}

/// The between-layer step as a public function of the layer's description:
/// ReLU, 2x2 pooling sums, requantization to 0..255; with no requantization
/// (the last layer) the accumulators are returned as they are. `acc` must
/// have the layer's output length.
pub fn activate(
    shape: &LayerShape,
    relu: bool,
    pool: bool,
    requant: Option<Requant>,
    acc: &[i64],
) -> Vec<i64> {
    let Some(requant) = requant else {
        return acc.to_vec();
    };
    let mut y: Vec<i64> = if relu { acc.iter().map(|&v| v.max(0)).collect() } else { acc.to_vec() };
    if pool {
        y = pool2(&y, shape.out_channels(), shape.out_side(), |a, b, c, d| a + b + c + d);
    }
    y.into_iter().map(|v| requant.apply(v)).collect()
}

/// Softmax, stable for large inputs.
pub fn softmax(xs: &[f64]) -> Vec<f64> {
    let max = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = xs.iter().map(|x| (x - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}
