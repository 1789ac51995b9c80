//! Integer quantization of a network and the exact integer forward pass.
//!
//! Every step is an integer function, so the encrypted pipeline can be checked
//! against this reference bit for bit:
//!
//! - inputs are pixels 0..255 (scale 1/255);
//! - layer l has symmetric 8-bit weights W (|w| <= 127, scale s_w per layer)
//!   and integer biases b = round(bias / (s_w * s_x)), so its accumulators
//!   acc = W x + b are exact integers (the server computes these, encrypted);
//! - between layers the client applies ReLU, pools (an average pool's window
//!   is summed, its 1/area folded into the next step; a max pool takes the
//!   window's largest value) and requantizes
//!   to 0..255 with a fixed-point multiplier: x' = clamp((y * M + 2^(k-1)) >> k, 0, 255);
//! - the last layer's accumulators are the logits.
//!
//! Activation scales are calibrated on training images, never on the test set.

use rayon::prelude::*;

use crate::error::{InputError, ModelError, Result};
use crate::float::FloatModel;
use crate::network::argmax;
use crate::network::{Layer, LayerShapes, Network, PoolKind, activate_int, linear};

pub use crate::requant::{ACTIVATION_MAX, MULTIPLIER_BITS, Requant, WEIGHT_MAX};

/// Percentile of calibration activations mapped to 255.
const CALIBRATION_PERCENTILE: f64 = 0.9999;

/// One quantized layer.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantLayer {
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
    /// The shortcut's integer form, for a layer that has one.
    pub shortcut: Option<QuantShortcut>,
}

/// A layer's shortcut in the integer model: the accumulators are
/// `main_factor * (W x + b) + factor * s`, where s is the source layer's
/// activation (the identity) or its projection `Wp a + bp`. The two factors
/// bring both terms to one scale: c / a approximates the ratio of the
/// added term's scale to the layer's own, chosen on calibration data.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantShortcut {
    /// Projection weights (|w| <= 127), [out][in]; empty for the identity.
    pub weight: Vec<i64>,
    /// Projection biases, in units of `weight_scale` times the source's
    /// scale; empty for the identity.
    pub bias: Vec<i64>,
    /// The projection's weight scale (1 for the identity).
    pub weight_scale: f64,
    /// The factor a of the layer's own accumulators.
    pub main_factor: i64,
    /// The factor c of the added term.
    pub factor: i64,
}

/// Largest shortcut factor.
pub const MAX_SHORTCUT_FACTOR: i64 = 1 << 24;

/// The integer factors (a, c) whose ratio c / a approximates `ratio` to
/// within 1 part in 2^9: the smaller of the two is as small as that
/// allows, and exact; the larger is rounded. A ratio beyond 2^16 either
/// way (a calibration on which one term was always zero) is clamped there.
pub fn shortcut_factors(ratio: f64) -> Result<(i64, i64)> {
    const PRECISION: f64 = 256.0;
    let limit = MAX_SHORTCUT_FACTOR as f64 / PRECISION;
    if !(ratio.is_finite() && ratio > 0.0) {
        return Err(ModelError::ShortcutRatio { ratio }.into());
    }
    let ratio = ratio.clamp(1.0 / limit, limit);
    Ok(if ratio >= 1.0 {
        let a = (PRECISION / ratio).ceil().max(1.0);
        (a as i64, (ratio * a).round() as i64)
    } else {
        let c = (PRECISION * ratio).ceil().max(1.0);
        ((c / ratio).round() as i64, c as i64)
    })
}

/// Quantizes weights symmetrically to |w| <= 127: (integers, scale).
fn quantize_weights(weights: &[f32]) -> (Vec<i64>, f64) {
    let max_w = weights.iter().fold(0f32, |m, w| m.max(w.abs())) as f64;
    let scale = if max_w > 0.0 { max_w / WEIGHT_MAX as f64 } else { 1.0 };
    let ints =
        weights.iter().map(|&w| ((w as f64 / scale).round() as i64).clamp(-WEIGHT_MAX, WEIGHT_MAX)).collect();
    (ints, scale)
}

/// A network with integer parameters: the exact reference of the encrypted pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantModel {
    /// The architecture.
    pub network: Network,
    /// One entry per layer of the network.
    pub layers: Vec<QuantLayer>,
}

/// How quantization chooses the requantization steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequantStyle {
    /// Multipliers of [`MULTIPLIER_BITS`] bits: the activation scales as calibrated.
    #[default]
    Fixed,
    /// Powers of two (a multiplier of 1 and a shift): each activation scale
    /// moved to the nearest one that makes the factor a power of two. The
    /// private mode's circuit then needs no multiplication.
    PowerOfTwo,
}

impl RequantStyle {
    /// The style's name on the command line: fixed or pow2.
    pub fn name(self) -> &'static str {
        match self {
            RequantStyle::Fixed => "fixed",
            RequantStyle::PowerOfTwo => "pow2",
        }
    }

    /// The style called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [RequantStyle::Fixed, RequantStyle::PowerOfTwo].into_iter().find(|s| s.name() == name)
    }

    /// The step from accumulators of scale `unit` (per summed value) to
    /// activations of scale `next`, and the activation scale it gives.
    fn requant(self, unit: f64, next: f64) -> Result<(Requant, f64)> {
        match self {
            RequantStyle::Fixed => Ok((Requant::from_real(unit / next)?, next)),
            RequantStyle::PowerOfTwo => {
                let k = (unit / next).log2().round();
                if !(-62.0..=0.0).contains(&k) {
                    // A factor of 1 or more (or beyond 2^-62): no shift to make.
                    return Ok((Requant::from_real(unit / next)?, next));
                }
                let r = Requant { multiplier: 1, shift: (-k).max(1.0) as u32 };
                r.validate()?;
                Ok((r, unit / r.real()))
            }
        }
    }
}

/// The calibrated activation scale of every layer but the last: the
/// value at [`CALIBRATION_PERCENTILE`] of its float activations over
/// `calibration`, mapped to 255.
pub fn calibrated_scales(float: &FloatModel, calibration: &[u8]) -> Result<Vec<f64>> {
    float.validate()?;
    let n = float.network.input().len();
    if calibration.is_empty() || !calibration.len().is_multiple_of(n) {
        return Err(InputError::Calibration { per_input: n, got: calibration.len() }.into());
    }
    let acts: Vec<Vec<Vec<f32>>> =
        calibration.par_chunks(n).map(|x| float.activations(x)).collect::<Result<_>>()?;
    let count = float.network.layers().len();
    Ok((0..count - 1)
        .map(|l| {
            let mut values: Vec<f32> = acts.iter().flat_map(|a| a[l].iter().copied()).collect();
            // The value at the percentile's rank in sorted order (a
            // selection, linear time: the same value a full sort gives).
            let idx = ((values.len() - 1) as f64 * CALIBRATION_PERCENTILE) as usize;
            let (_, &mut at, _) = values.select_nth_unstable_by(idx, |a, b| a.total_cmp(b));
            (at as f64).max(1e-6) / ACTIVATION_MAX as f64
        })
        .collect())
}

/// A shortcut's integer form from its float projection (None: the
/// identity), the source's activation scale and the layer's accumulator
/// scale; with the scale of one unit of the summed accumulators.
fn quantize_shortcut(
    projection: Option<&crate::network::FloatParams>,
    source_scale: f64,
    acc_scale: f64,
) -> Result<(QuantShortcut, f64)> {
    let (weight, weight_scale) = match projection {
        Some(p) => quantize_weights(&p.weight),
        None => (Vec::new(), 1.0),
    };
    let added_scale = weight_scale * source_scale;
    let bias = projection
        .map(|p| p.bias.iter().map(|&b| (b as f64 / added_scale).round() as i64).collect())
        .unwrap_or_default();
    let (main_factor, factor) = shortcut_factors(added_scale / acc_scale)?;
    let common = acc_scale / main_factor as f64;
    Ok((QuantShortcut { weight, bias, weight_scale, main_factor, factor }, common))
}

impl QuantModel {
    /// Quantizes a float model, calibrating activation scales on
    /// `calibration` (inputs of pixels 0..255, back to back; training data,
    /// never the test set), with 8-bit requantization multipliers.
    pub fn quantize(float: &FloatModel, calibration: &[u8]) -> Result<Self> {
        Self::quantize_with(float, calibration, RequantStyle::Fixed)
    }

    /// [`QuantModel::quantize`] with the requantization style asked for.
    pub fn quantize_with(float: &FloatModel, calibration: &[u8], style: RequantStyle) -> Result<Self> {
        let scales = calibrated_scales(float, calibration)?;
        Self::from_scales(float, &scales, style)
    }

    /// Quantizes a float model on given activation scales (one per layer
    /// but the last: real activation = scale * q), as calibration chose
    /// them. With [`RequantStyle::PowerOfTwo`] each scale is moved (by at
    /// most a factor of sqrt 2) to make its requantization factor a power
    /// of two, and the next layer's biases follow the moved scale.
    pub fn from_scales(float: &FloatModel, scales: &[f64], style: RequantStyle) -> Result<Self> {
        Self::from_scales_styled(float, scales, &vec![style; scales.len()])
    }

    /// [`QuantModel::from_scales`] with a style per requantization step
    /// (`styles[l]` for the step after layer l; as many as the scales).
    pub fn from_scales_styled(float: &FloatModel, scales: &[f64], styles: &[RequantStyle]) -> Result<Self> {
        float.validate()?;
        let network = &float.network;
        let count = network.layers().len();
        if scales.len() + 1 != count || scales.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(ModelError::CalibratedScales { given: scales.len(), expected: count - 1 }.into());
        }
        if styles.len() != scales.len() {
            return Err(ModelError::RequantStyles { given: styles.len(), expected: scales.len() }.into());
        }
        let mut input_scale = 1.0 / ACTIVATION_MAX as f64;
        let mut layers = Vec::with_capacity(count);
        // Each layer's activation scale as used, for the shortcuts that add them.
        let mut used: Vec<f64> = Vec::with_capacity(count);
        for (l, ((layer, shapes), p)) in
            network.layers().iter().zip(network.shapes()).zip(&float.layers).enumerate()
        {
            let (weight, weight_scale) = quantize_weights(&p.weight);
            let bias: Vec<i64> =
                p.bias.iter().map(|&b| (b as f64 / (weight_scale * input_scale)).round() as i64).collect();
            // The scale of one unit of the accumulators.
            let mut acc_scale = weight_scale * input_scale;
            let shortcut = match shapes.shortcut {
                Some((f, _)) => {
                    let (s, common) = quantize_shortcut(p.shortcut.as_deref(), used[f], acc_scale)?;
                    acc_scale = common;
                    Some(s)
                }
                None => None,
            };
            let (requant, next_scale) = match scales.get(l) {
                None => (None, 0.0),
                Some(&next_scale) => {
                    let pool_div = match &layer.pool {
                        Some(p) if p.kind == PoolKind::Average => (p.window[0] * p.window[1]) as f64,
                        _ => 1.0,
                    };
                    let (r, next_scale) = styles[l].requant(acc_scale / pool_div, next_scale)?;
                    (Some(r), next_scale)
                }
            };
            layers.push(QuantLayer { weight, bias, weight_scale, input_scale, requant, shortcut });
            used.push(next_scale);
            input_scale = next_scale;
        }
        let model = QuantModel { network: network.clone(), layers };
        model.validate()?;
        Ok(model)
    }

    /// The activation scales this model uses (one per layer but the last):
    /// the scales [`QuantModel::from_scales`] takes.
    pub fn activation_scales(&self) -> Vec<f64> {
        self.layers.iter().skip(1).map(|l| l.input_scale).collect()
    }

    /// The name of layer `l`.
    pub fn name(&self, l: usize) -> &str {
        &self.network.layers()[l].name
    }

    /// Values in one input.
    pub fn input_len(&self) -> usize {
        self.network.input().len()
    }

    /// Checks parameter counts and ranges against the architecture, and the
    /// requantization steps (one after every layer but the last).
    pub fn validate(&self) -> Result<()> {
        let net = &self.network;
        if self.layers.len() != net.layers().len() {
            return Err(
                ModelError::QuantLayers { quantized: self.layers.len(), layers: net.layers().len() }.into()
            );
        }
        for (l, ((layer, shapes), q)) in net.layers().iter().zip(net.shapes()).zip(&self.layers).enumerate() {
            let name = &layer.name;
            let want: usize = layer.weight_shape(shapes.input).iter().product();
            if q.weight.len() != want || !layer.accepts_bias_len(shapes.output, q.bias.len()) {
                return Err(ModelError::QuantParams {
                    layer: name.clone(),
                    weights: q.weight.len(),
                    biases: q.bias.len(),
                    expected_weights: want,
                    expected_biases: layer.bias_len(),
                }
                .into());
            }
            if q.weight.iter().any(|w| w.abs() > WEIGHT_MAX) {
                return Err(ModelError::WeightRange { layer: name.clone(), max: WEIGHT_MAX }.into());
            }
            if q.bias.iter().any(|b| b.abs() > 1 << 40) {
                return Err(ModelError::BiasRange { layer: name.clone() }.into());
            }
            if !(q.weight_scale.is_finite()
                && q.weight_scale > 0.0
                && q.input_scale.is_finite()
                && q.input_scale > 0.0)
            {
                return Err(ModelError::Scales {
                    layer: name.clone(),
                    weight_scale: q.weight_scale,
                    input_scale: q.input_scale,
                }
                .into());
            }
            validate_shortcut(layer, shapes, q.shortcut.as_ref())?;
            let last = l + 1 == net.layers().len();
            match (&q.requant, last) {
                (Some(r), false) => r
                    .validate()
                    .map_err(|e| ModelError::Requant { layer: name.clone(), source: Box::new(e) })?,
                (None, true) => {}
                _ => return Err(ModelError::RequantPlacement { layer: name.clone() }.into()),
            }
        }
        Ok(())
    }

    /// The accumulators of layer `l`: W x + b, exact; for a layer with a
    /// shortcut, a (W x + b) + c s, where `added` is the shortcut source's
    /// activation (None for a layer without a shortcut).
    pub fn accumulators(&self, l: usize, input: &[i64], added: Option<&[i64]>) -> Result<Vec<i64>> {
        let (layer, shapes, q) = self.layer(l)?;
        let source_len = shapes.shortcut.map(|(_, s)| s.len());
        if input.len() != shapes.input.len() || added.map(<[i64]>::len) != source_len {
            return Err(InputError::LayerInputs {
                layer: layer.name.clone(),
                got: input.len() + added.map_or(0, <[i64]>::len),
                expected: shapes.input.len() + source_len.unwrap_or(0),
            }
            .into());
        }
        let main = linear(layer, shapes.input, &q.weight, &q.bias, input, |w, x| w * x);
        let (Some(s), Some(added), Some((_, source))) = (&q.shortcut, added, shapes.shortcut) else {
            return Ok(main);
        };
        let term = match layer.shortcut_projection() {
            Some(p) => linear(&p, source, &s.weight, &s.bias, added, |w, x| w * x),
            None => added.to_vec(),
        };
        Ok(main.iter().zip(&term).map(|(m, t)| s.main_factor * m + s.factor * t).collect())
    }

    /// The client's step after layer `l`: ReLU, pooling and requantization
    /// to 0..255; for the last layer the accumulators themselves (logits).
    pub fn activate(&self, l: usize, acc: &[i64]) -> Result<Vec<i64>> {
        let (layer, shapes, q) = self.layer(l)?;
        if acc.len() != shapes.output.len() {
            return Err(InputError::Accumulators {
                layer: layer.name.clone(),
                got: acc.len(),
                expected: shapes.output.len(),
            }
            .into());
        }
        Ok(activate_int(layer.relu, layer.pool.as_ref(), shapes.output, q.requant, acc))
    }

    fn layer(&self, l: usize) -> Result<(&Layer, &LayerShapes, &QuantLayer)> {
        match (self.network.layers().get(l), self.network.shapes().get(l), self.layers.get(l)) {
            (Some(layer), Some(shapes), Some(q)) => Ok((layer, shapes, q)),
            _ => Err(InputError::NoLayer { index: l }.into()),
        }
    }

    /// Every layer's accumulators for one input of pixels 0..255 (the last: logits).
    pub fn trace(&self, input: &[u8]) -> Result<Vec<Vec<i64>>> {
        let n = self.input_len();
        if input.len() != n {
            return Err(InputError::Length { expected: n, got: input.len() }.into());
        }
        let mut x: Vec<i64> = input.iter().map(|&p| p as i64).collect();
        let mut out = Vec::with_capacity(self.layers.len());
        let mut activations: Vec<Vec<i64>> = Vec::with_capacity(self.layers.len());
        for (l, shapes) in self.network.shapes().iter().enumerate() {
            let added = shapes.shortcut.map(|(f, _)| &activations[f][..]);
            let acc = self.accumulators(l, &x, added)?;
            x = self.activate(l, &acc)?;
            activations.push(x.clone());
            out.push(acc);
        }
        Ok(out)
    }

    /// Integer logits for one input.
    pub fn logits(&self, input: &[u8]) -> Result<Vec<i64>> {
        Ok(self.trace(input)?.pop().unwrap_or_default())
    }

    /// The predicted class for one input.
    pub fn predict(&self, input: &[u8]) -> Result<usize> {
        Ok(argmax(&self.logits(input)?))
    }

    /// Real value of one unit of the integer logits.
    pub fn logit_scale(&self) -> f64 {
        self.layers
            .last()
            .map(|l| {
                l.weight_scale * l.input_scale / l.shortcut.as_ref().map_or(1.0, |s| s.main_factor as f64)
            })
            .unwrap_or(1.0)
    }

    /// Class probabilities from integer logits (softmax of the real-valued logits).
    pub fn scores(&self, logits: &[i64]) -> Vec<f64> {
        let scale = self.logit_scale();
        softmax(&logits.iter().map(|&v| v as f64 * scale).collect::<Vec<_>>())
    }

    /// Worst-case |accumulator| of layer `l` over all inputs in 0..255:
    /// max over output channels of sum |w| * 255 + |b| (the largest |b| of
    /// the channel for a bias map).
    ///
    /// With a shortcut, a times that bound plus c times the added term's
    /// (255 for the identity, the projection's own bound otherwise).
    pub fn accumulator_bound(&self, l: usize) -> i64 {
        let layer = &self.layers[l];
        let fan_in = self.network.layers()[l].fan_in(self.network.shapes()[l].input);
        let main = weights_bound(&layer.weight, &layer.bias, fan_in);
        match (&layer.shortcut, self.network.shapes()[l].shortcut) {
            (Some(s), Some((_, source))) => {
                let added = if s.weight.is_empty() {
                    ACTIVATION_MAX
                } else {
                    weights_bound(&s.weight, &s.bias, source.channels)
                };
                s.main_factor.saturating_mul(main).saturating_add(s.factor.saturating_mul(added))
            }
            _ => main,
        }
    }

    /// Accuracy over a data set (inputs back to back), in parallel.
    pub fn accuracy(&self, inputs: &[u8], labels: &[u8]) -> Result<f64> {
        crate::float::accuracy_of(self.input_len(), inputs, labels, |x| self.predict(x))
    }
}

/// max over output channels of sum |w| * 255 + |b| (the largest |b| of the
/// channel for a bias map), for weights of `fan_in` per channel.
fn weights_bound(weight: &[i64], bias: &[i64], fan_in: usize) -> i64 {
    let channels = weight.len() / fan_in.max(1);
    let per_channel = bias.len() / channels.max(1);
    weight
        .chunks(fan_in.max(1))
        .zip(bias.chunks(per_channel.max(1)))
        .map(|(ws, b)| {
            ws.iter().map(|w| w.abs()).sum::<i64>() * ACTIVATION_MAX
                + b.iter().map(|v| v.abs()).max().unwrap_or(0)
        })
        .max()
        .unwrap_or(0)
}

/// Checks a layer's integer shortcut against its architecture: present
/// exactly when the layer has one, projection counts and ranges, factors
/// in range.
fn validate_shortcut(layer: &Layer, shapes: &LayerShapes, s: Option<&QuantShortcut>) -> Result<()> {
    let name = &layer.name;
    if s.is_some() != layer.shortcut.is_some() {
        return Err(ModelError::ShortcutPresence { layer: name.clone() }.into());
    }
    let Some(s) = s else { return Ok(()) };
    let counts = (!s.weight.is_empty() || !s.bias.is_empty()).then_some((s.weight.len(), s.bias.len()));
    crate::network::check_shortcut_counts(layer, shapes, counts)?;
    if s.weight.iter().any(|w| w.abs() > WEIGHT_MAX) {
        return Err(ModelError::WeightRange { layer: format!("{name}.shortcut"), max: WEIGHT_MAX }.into());
    }
    if s.bias.iter().any(|b| b.abs() > 1 << 40) {
        return Err(ModelError::BiasRange { layer: format!("{name}.shortcut") }.into());
    }
    let factors_ok = [s.main_factor, s.factor].iter().all(|f| (1..=MAX_SHORTCUT_FACTOR).contains(f));
    if !(factors_ok && s.weight_scale.is_finite() && s.weight_scale > 0.0) {
        return Err(ModelError::ShortcutFactors {
            layer: name.clone(),
            main_factor: s.main_factor,
            factor: s.factor,
        }
        .into());
    }
    Ok(())
}

/// Softmax, stable for large inputs.
pub fn softmax(xs: &[f64]) -> Vec<f64> {
    let max = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = xs.iter().map(|x| (x - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}
