//! The graph's input: its shape, and the normalization it expects (in the
//! graph, or given in the options), folded into the first layer.

use ppdnn_model::network::{Layer, Linear, Shape};

use super::{ImportOptions, Importer};
use crate::error::{GraphError, Refusal, Result};

/// The shape of the graph's input without its batch dimension.
pub(super) fn graph_input_shape(input: &crate::proto::ValueInfoProto) -> Result<Shape> {
    use crate::proto::type_proto::Value;
    let name = input.name();
    let dims: Vec<Option<i64>> = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(Value::TensorType(t)) => t
            .shape
            .as_ref()
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match d.value {
                        Some(crate::proto::tensor_shape_proto::dimension::Value::DimValue(v)) => Some(v),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => return Err(GraphError::InputNotTensor { input: name.to_string() }.into()),
    };
    let known = |d: &Option<i64>| d.filter(|&v| v > 0).map(|v| v as usize);
    let rest: Option<Vec<usize>> = dims.iter().skip(1).map(known).collect();
    let shape = match (dims.len(), rest) {
        (4, Some(r)) => Shape::new(r[0], r[1], r[2]),
        (3, Some(r)) => Shape::new(1, r[0], r[1]),
        (2, Some(r)) => Shape::vector(r[0]),
        _ => {
            return Err(GraphError::InputDims { input: name.to_string(), dims }.into());
        }
    };
    Ok(shape)
}

/// Per channel (scale, offset) of the graph's input as a function of
/// pixel / 255: scale = unit / std, offset = -mean / std.
pub(super) fn normalization(
    options: &ImportOptions,
    channels: usize,
    unit: f32,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let per_channel = |v: &[f32], default: f32| -> Option<Vec<f32>> {
        match v.len() {
            0 => Some(vec![default; channels]),
            1 => Some(vec![v[0]; channels]),
            n if n == channels => Some(v.to_vec()),
            _ => None,
        }
    };
    let mean = per_channel(&options.mean, 0.0)
        .ok_or(GraphError::MeanCount { values: options.mean.len(), channels })?;
    let std =
        per_channel(&options.std, 1.0).ok_or(GraphError::StdCount { values: options.std.len(), channels })?;
    if let Some(&value) = std.iter().chain(&mean).find(|v| !v.is_finite()) {
        return Err(GraphError::NormalizationNotFinite { value }.into());
    }
    if std.iter().any(|&s| s <= 0.0) {
        return Err(GraphError::StdNotPositive.into());
    }
    // (unit * x - mean) / std
    Ok((std.iter().map(|s| unit / s).collect(), mean.iter().zip(&std).map(|(m, s)| -m / s).collect()))
}

impl Importer<'_> {
    /// Folds the input normalization into the first layer's parameters:
    /// W (a x + b) + c = (a W) x + (c + W b), with a and b per input
    /// channel. Through a zero-padded convolution W b differs at the borders
    /// (the padding is zero after normalization, not b): the bias becomes a
    /// map, one per accumulator, which is W b + c itself.
    pub(super) fn fold_input(
        &mut self,
        linear: Linear,
        weight: &mut [f32],
        bias: &mut Vec<f32>,
    ) -> Result<()> {
        if !self.layers.is_empty() || self.pending.is_some() {
            return Ok(());
        }
        let shifted = self.offset.iter().any(|&b| b != 0.0);
        let padded = matches!(linear, Linear::Conv2d { padding, .. } if padding.iter().any(|&p| p > 0));
        let per_channel = self.input.height * self.input.width;
        // Output channels: the bias given here has one per channel.
        let rows = bias.len().max(1);
        let as_map = shifted && padded;
        if as_map {
            let layer = Layer { name: self.label.clone(), linear, relu: false, pool: None, shortcut: None };
            let offsets: Vec<f32> = (0..self.input.len()).map(|i| self.offset[i / per_channel]).collect();
            *bias = ppdnn_model::network::linear(&layer, self.input, weight, bias, &offsets, |w, v| w * v);
        }
        let fan_in = weight.len() / rows;
        // Values per input channel in a row of weights (kh * kw for a
        // convolution, height * width for a dense layer over the input).
        let taps = fan_in / self.input.channels.max(1);
        for (o, row) in weight.chunks_mut(fan_in).enumerate() {
            for (i, w) in row.iter_mut().enumerate() {
                let c = i / taps.max(1);
                if !as_map {
                    bias[o] += self.offset[c] * *w;
                }
                *w *= self.scale[c];
            }
        }
        if self.scale.iter().any(|&a| a != 1.0) || shifted {
            let map = if as_map { " (as a bias map: the convolution is padded)" } else { "" };
            self.notes.push(format!(
                "folded the input normalization x * {:?} + {:?} into {:?}{map}",
                self.scale, self.offset, self.label
            ));
        }
        Ok(())
    }

    /// Input normalization: a scalar, or one value per channel, folded into
    /// the per-channel scale and offset of the input.
    pub(super) fn normalize_input(&mut self, op: &str, values: Vec<f32>) -> Result<()> {
        let channels = self.input.channels;
        let per_channel: Vec<f32> = match values.len() {
            1 => vec![values[0]; channels],
            n if n == channels => values,
            n => {
                return Err(self.unsupported(Refusal::InputOperand { values: n, op: op.to_string() }));
            }
        };
        if op == "Div" && per_channel.contains(&0.0) {
            return Err(self.unsupported(Refusal::DivisionByZero));
        }
        for (c, v) in per_channel.into_iter().enumerate() {
            let (a, b) = (&mut self.scale[c], &mut self.offset[c]);
            match op {
                "Add" => *b += v,
                "Sub" => *b -= v,
                "Mul" => (*a, *b) = (*a * v, *b * v),
                _ => (*a, *b) = (*a / v, *b / v),
            }
        }
        Ok(())
    }
}
