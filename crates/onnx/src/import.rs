//! ONNX graphs to float models: a walk along the graph's single data path,
//! collecting each linear node with what follows it (bias, batch norm,
//! ReLU, pooling) into one layer of a [`Network`].

use std::collections::HashMap;

use prost::Message;

use ppdnn_model::float::FloatModel;
use ppdnn_model::network::{FloatParams, Layer, Linear, Network, Pool, PoolKind, Shape};

use crate::error::{DecodeError, Error, GraphError, Refusal, Result};
use crate::proto::{ModelProto, NodeProto};
use crate::tensor::{Attributes, Constant};

/// What the ONNX model's input values are, relative to pixels 0..255.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputScale {
    /// pixel / 255 (what `ppdnn export-onnx` writes, and PyTorch's ToTensor gives).
    #[default]
    Unit,
    /// The pixel values themselves, 0..255.
    Byte,
}

/// How to read a model.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The input shape (channels, height, width) to use instead of the
    /// graph's, e.g. 1x28x28 for an MLP whose graph takes 784 values; the
    /// number of values must agree.
    pub input_shape: Option<Shape>,
    /// The scale of the graph's input values.
    pub input_scale: InputScale,
    /// Input normalization the graph expects but does not contain, per
    /// channel (one value for all channels, or one per channel), in the
    /// units of `input_scale`: the graph sees (x - mean) / std. PyTorch's
    /// MNIST convention is mean 0.1307, std 0.3081. Folded into the first
    /// layer, so the served model still takes pixels 0..255.
    pub mean: Vec<f32>,
    /// See `mean`; empty means 1.
    pub std: Vec<f32>,
}

/// An imported model and what the import did to get it.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The float network.
    pub model: FloatModel,
    /// Steps folded or dropped, in words (batch norms folded, a final
    /// softmax dropped, input normalization folded), for the user to see.
    pub notes: Vec<String>,
}

/// A linear node being collected into a layer.
struct Pending {
    name: String,
    linear: Linear,
    weight: Vec<f32>,
    bias: Vec<f32>,
    relu: bool,
    pool: Option<Pool>,
}

impl Pending {
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
}

struct Importer<'a> {
    consts: HashMap<String, Constant>,
    current: String,
    input: Shape,
    /// The current activation shape (after the layers finished so far).
    shape: Shape,
    /// Per input channel: x_graph = scale * x + offset, with x = pixel /
    /// 255, until the first linear layer folds it in.
    scale: Vec<f32>,
    offset: Vec<f32>,
    flattened: bool,
    layers: Vec<(Layer, FloatParams)>,
    pending: Option<Pending>,
    ended: bool,
    notes: Vec<String>,
    node: &'a NodeProto,
    label: String,
}

/// Reads an ONNX model (its bytes) as a float model.
pub fn import(bytes: &[u8], options: &ImportOptions) -> Result<Imported> {
    let model = ModelProto::decode(bytes)?;
    let graph = model.graph.as_ref().ok_or(DecodeError::NoGraph)?;
    let mut consts = HashMap::new();
    for t in &graph.initializer {
        consts.insert(t.name().to_string(), Constant::from_proto(t)?);
    }
    let inputs: Vec<_> = graph.input.iter().filter(|i| !consts.contains_key(i.name())).collect();
    let [input] = inputs[..] else {
        let inputs = inputs.iter().map(|i| i.name().to_string()).collect();
        return Err(GraphError::InputCount { inputs }.into());
    };
    let shape = graph_input_shape(input)?;
    let input_shape = match options.input_shape {
        Some(s) if s.len() == shape.len() => s,
        Some(s) => {
            return Err(
                GraphError::InputShape { given: s, input: input.name().to_string(), graph: shape }.into()
            );
        }
        None => shape,
    };
    let unit = match options.input_scale {
        InputScale::Unit => 1.0,
        InputScale::Byte => 255.0,
    };
    let (scale, offset) = normalization(options, input_shape.channels, unit)?;
    let placeholder = NodeProto::default();
    let mut im = Importer {
        consts,
        current: input.name().to_string(),
        input: input_shape,
        shape: input_shape,
        scale,
        offset,
        flattened: false,
        layers: Vec::new(),
        pending: None,
        ended: false,
        notes: Vec::new(),
        node: &placeholder,
        label: String::new(),
    };
    for (i, node) in graph.node.iter().enumerate() {
        im.node = node;
        im.label =
            if node.name().is_empty() { format!("{}_{i}", node.op_type()) } else { node.name().to_string() };
        im.step()?;
    }
    let outputs: Vec<&str> = graph.output.iter().map(|o| o.name()).collect();
    if outputs != [im.current.as_str()] {
        let outputs = outputs.into_iter().map(str::to_string).collect();
        return Err(GraphError::Outputs { outputs, end: im.current }.into());
    }
    im.finish()
}

/// The shape of the graph's input without its batch dimension.
fn graph_input_shape(input: &crate::proto::ValueInfoProto) -> Result<Shape> {
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
fn normalization(options: &ImportOptions, channels: usize, unit: f32) -> Result<(Vec<f32>, Vec<f32>)> {
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
    fn unsupported(&self, why: Refusal) -> Error {
        Error::Unsupported { node: self.label.clone(), op: self.node.op_type().to_string(), why }
    }

    /// The constant named by input `i` of the node.
    fn constant(&self, i: usize) -> Result<&Constant> {
        let name =
            self.node.input.get(i).ok_or_else(|| self.unsupported(Refusal::MissingInput { index: i }))?;
        self.consts.get(name).ok_or_else(|| self.unsupported(Refusal::NotConstant { input: name.clone() }))
    }

    /// The optional constant input `i` (absent or named "").
    fn optional_constant(&self, i: usize) -> Result<Option<&Constant>> {
        match self.node.input.get(i) {
            None => Ok(None),
            Some(n) if n.is_empty() => Ok(None),
            Some(_) => self.constant(i).map(Some),
        }
    }

    fn step(&mut self) -> Result<()> {
        let node = self.node;
        let op = node.op_type();
        if self.ended {
            return Err(self.unsupported(Refusal::AfterEnd { op: op.to_string() }));
        }
        if node.op_type() == "Constant" {
            let value = node.attribute.iter().find(|a| a.name() == "value").and_then(|a| a.t.as_ref());
            let (Some(t), [out]) = (value, &node.output[..]) else {
                return Err(self.unsupported(Refusal::ConstantValue));
            };
            self.consts.insert(out.clone(), Constant::from_proto(t)?);
            return Ok(());
        }
        if node.domain.as_deref().is_some_and(|d| !d.is_empty() && d != "ai.onnx") {
            return Err(self.unsupported(Refusal::Domain { domain: node.domain().to_string() }));
        }
        match node.input.first() {
            Some(x) if *x == self.current => {}
            Some(x) => {
                return Err(self.unsupported(Refusal::NotSequential {
                    input: x.clone(),
                    previous: self.current.clone(),
                }));
            }
            None => return Err(self.unsupported(Refusal::NoInput)),
        }
        if node.output.len() != 1 && !matches!(op, "Dropout" | "BatchNormalization" | "MaxPool") {
            return Err(self.unsupported(Refusal::SeveralOutputs));
        }
        match op {
            "Identity" | "Dropout" => {}
            "Flatten" => self.flatten()?,
            "Reshape" => self.reshape()?,
            "Conv" => self.conv()?,
            "Gemm" => self.gemm()?,
            "MatMul" => self.matmul()?,
            "Add" | "Sub" | "Mul" | "Div" => self.elementwise(op)?,
            "BatchNormalization" => self.batch_norm()?,
            "Relu" => self.relu()?,
            "MaxPool" | "AveragePool" => self.pool(op)?,
            "GlobalAveragePool" => self.global_pool()?,
            "Softmax" | "LogSoftmax" => {
                self.ended = true;
                self.notes.push(format!(
                    "dropped the final {op} {:?}: the served model returns the logits before it (the same argmax)",
                    self.label
                ));
            }
            _ => {
                return Err(self.unsupported(Refusal::Operator));
            }
        }
        self.current = node.output[0].clone();
        Ok(())
    }

    fn flatten(&mut self) -> Result<()> {
        let axis = Attributes::of(self.node).int("axis", 1);
        if axis != 1 {
            return Err(self.unsupported(Refusal::FlattenAxis { axis }));
        }
        self.flattened = true;
        Ok(())
    }

    fn reshape(&mut self) -> Result<()> {
        let shape = self.constant(1)?;
        // [batch, -1], [-1, k], [1, k] or [batch, k]: a flattening of one input.
        if shape.ints.len() != 2 {
            return Err(self.unsupported(Refusal::Reshape { shape: shape.ints.clone() }));
        }
        self.flattened = true;
        Ok(())
    }

    fn finish_pending(&mut self) -> Result<()> {
        if let Some(p) = self.pending.take() {
            let layer = Layer {
                name: unique(&self.layers, &p.name),
                linear: p.linear,
                relu: p.relu,
                pool: p.pool,
                shortcut: None,
            };
            let output = layer.output_shape(self.shape)?;
            self.shape = match &layer.pool {
                Some(pool) => pool.output_shape(output, &layer.name)?,
                None => output,
            };
            self.layers.push((layer, FloatParams::new(p.weight, p.bias)));
        }
        Ok(())
    }

    /// The accumulators' shape of the pending layer.
    fn pending_output(&self) -> Result<Shape> {
        let p = self.pending.as_ref().ok_or_else(|| self.unsupported(Refusal::NoLayerBefore))?;
        let layer = Layer { name: p.name.clone(), linear: p.linear, relu: false, pool: None, shortcut: None };
        Ok(layer.output_shape(self.shape)?)
    }

    /// Folds the input normalization into the first layer's parameters:
    /// W (a x + b) + c = (a W) x + (c + W b), with a and b per input
    /// channel. Through a zero-padded convolution W b differs at the borders
    /// (the padding is zero after normalization, not b): the bias becomes a
    /// map, one per accumulator, which is W b + c itself.
    fn fold_input(&mut self, linear: Linear, weight: &mut [f32], bias: &mut Vec<f32>) -> Result<()> {
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

    fn conv(&mut self) -> Result<()> {
        self.finish_pending()?;
        if self.flattened || self.layers.iter().any(|(l, _)| matches!(l.linear, Linear::Dense { .. })) {
            return Err(self.unsupported(Refusal::ConvAfterDense));
        }
        let a = Attributes::of(self.node);
        if let Some(k) =
            a.unknown(&["kernel_shape", "strides", "pads", "dilations", "group", "auto_pad"]).first()
        {
            return Err(self.unsupported(Refusal::UnknownAttribute { attribute: k.clone() }));
        }
        if a.int("group", 1) != 1 {
            return Err(self.unsupported(Refusal::Grouped));
        }
        if a.sizes("dilations", 2, Some(vec![1, 1]))? != [1, 1] {
            return Err(self.unsupported(Refusal::Dilated));
        }
        let auto_pad = a.string("auto_pad", "NOTSET");
        if auto_pad != "NOTSET" && auto_pad != "VALID" {
            return Err(self.unsupported(Refusal::ConvAutoPad { auto_pad }));
        }
        let w = self.constant(1)?.clone();
        if w.dims.len() != 4 || w.floats.is_empty() {
            return Err(self.unsupported(Refusal::ConvWeights { dims: w.dims }));
        }
        let (out, kh, kw) = (w.dims[0], w.dims[2], w.dims[3]);
        if w.dims[1] != self.shape.channels {
            return Err(
                self.unsupported(Refusal::WeightChannels { dims: w.dims, channels: self.shape.channels })
            );
        }
        let kernel = a.sizes("kernel_shape", 2, Some(vec![kh, kw]))?;
        if kernel != [kh, kw] {
            return Err(self.unsupported(Refusal::KernelShape { kernel, dims: w.dims }));
        }
        let stride = a.sizes("strides", 2, Some(vec![1, 1]))?;
        let padding = a.sizes("pads", 4, Some(vec![0; 4]))?;
        let mut bias = match self.optional_constant(2)? {
            Some(b) if b.floats.len() == out => b.floats.clone(),
            Some(b) => {
                return Err(self.unsupported(Refusal::ConvBias { dims: b.dims.clone(), channels: out }));
            }
            None => vec![0.0; out],
        };
        let mut weight = w.floats;
        let linear = Linear::Conv2d {
            out_channels: out,
            kernel: [kh, kw],
            stride: [stride[0], stride[1]],
            padding: [padding[0], padding[1], padding[2], padding[3]],
        };
        self.fold_input(linear, &mut weight, &mut bias)?;
        self.pending =
            Some(Pending { name: self.label.clone(), linear, weight, bias, relu: false, pool: None });
        Ok(())
    }

    /// A dense layer from weights in [out][in] order.
    fn dense(&mut self, mut weight: Vec<f32>, mut bias: Vec<f32>) -> Result<()> {
        let inputs = self.shape.len();
        if bias.is_empty() || weight.len() != bias.len() * inputs {
            return Err(self.unsupported(Refusal::DenseWeights {
                weights: weight.len(),
                outputs: bias.len(),
                inputs,
            }));
        }
        self.fold_input(Linear::Dense { outputs: bias.len() }, &mut weight, &mut bias)?;
        self.flattened = false;
        self.pending = Some(Pending {
            name: self.label.clone(),
            linear: Linear::Dense { outputs: bias.len() },
            weight,
            bias,
            relu: false,
            pool: None,
        });
        Ok(())
    }

    fn gemm(&mut self) -> Result<()> {
        self.finish_pending()?;
        let a = Attributes::of(self.node);
        if a.int("transA", 0) != 0 {
            return Err(self.unsupported(Refusal::TransA));
        }
        let (alpha, beta) = (a.float("alpha", 1.0), a.float("beta", 1.0));
        let w = self.constant(1)?.clone();
        if w.dims.len() != 2 || w.floats.is_empty() {
            return Err(self.unsupported(Refusal::MatrixWeights { dims: w.dims }));
        }
        let (weight, outputs) = if a.int("transB", 0) != 0 {
            (w.floats.clone(), w.dims[0])
        } else {
            (transpose(&w.floats, w.dims[0], w.dims[1]), w.dims[1])
        };
        let bias = match self.optional_constant(2)? {
            Some(c) if c.floats.len() == outputs => c.floats.iter().map(|&b| b * beta).collect(),
            Some(c) if c.floats.len() == 1 => vec![c.floats[0] * beta; outputs],
            Some(c) => {
                return Err(self.unsupported(Refusal::DenseBias { dims: c.dims.clone(), outputs }));
            }
            None => vec![0.0; outputs],
        };
        let weight = weight.iter().map(|&v| v * alpha).collect();
        self.dense(weight, bias)
    }

    fn matmul(&mut self) -> Result<()> {
        self.finish_pending()?;
        let w = self.constant(1)?.clone();
        if w.dims.len() != 2 || w.floats.is_empty() {
            return Err(self.unsupported(Refusal::MatrixWeights { dims: w.dims }));
        }
        let outputs = w.dims[1];
        self.dense(transpose(&w.floats, w.dims[0], outputs), vec![0.0; outputs])
    }

    fn elementwise(&mut self, op: &str) -> Result<()> {
        let c = self.constant(1)?;
        if c.floats.is_empty() {
            return Err(self.unsupported(Refusal::FloatOperand));
        }
        let values = c.floats.clone();
        let map_len = match &self.pending {
            Some(p) if matches!(p.linear, Linear::Conv2d { .. }) => Some(self.pending_output()?.len()),
            _ => None,
        };
        match &mut self.pending {
            None if self.layers.is_empty() => {
                // Input normalization: a scalar, or one value per channel.
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
            Some(p) if op == "Add" && !p.relu && p.pool.is_none() => {
                let n = p.outputs();
                let per = p.bias_per_channel();
                match values.len() {
                    1 => p.bias.iter_mut().for_each(|b| *b += values[0]),
                    len if len == n => {
                        p.bias.iter_mut().enumerate().for_each(|(i, b)| *b += values[i / per.max(1)])
                    }
                    // A bias map (one per accumulator) on a convolution.
                    len if Some(len) == map_len => {
                        if per == 1 {
                            p.bias = p.bias.iter().flat_map(|&b| vec![b; len / n.max(1)]).collect();
                        }
                        p.bias.iter_mut().zip(&values).for_each(|(b, v)| *b += v);
                    }
                    _ => {
                        return Err(
                            self.unsupported(Refusal::BiasValues { values: values.len(), outputs: n })
                        );
                    }
                }
                Ok(())
            }
            _ => Err(self.unsupported(Refusal::Elementwise { op: op.to_string() })),
        }
    }

    fn batch_norm(&mut self) -> Result<()> {
        let eps = Attributes::of(self.node).float("epsilon", 1e-5);
        let [gamma, beta, mean, var] = [1, 2, 3, 4].map(|i| self.constant(i).map(|c| c.floats.clone()));
        let (gamma, beta, mean, var) = (gamma?, beta?, mean?, var?);
        let label = self.label.clone();
        let Some(p) = self.pending.as_mut().filter(|p| !p.relu && p.pool.is_none()) else {
            return Err(self.unsupported(Refusal::BatchNormPlacement));
        };
        let n = p.outputs();
        if [&gamma, &beta, &mean, &var].iter().any(|v| v.len() != n) {
            return Err(Error::Unsupported {
                node: label,
                op: "BatchNormalization".into(),
                why: Refusal::BatchNormParams { channels: n },
            });
        }
        let (fan_in, per) = (p.fan_in(), p.bias_per_channel());
        for c in 0..n {
            let k = gamma[c] / (var[c] + eps).sqrt();
            p.weight[c * fan_in..(c + 1) * fan_in].iter_mut().for_each(|w| *w *= k);
            p.bias[c * per..(c + 1) * per].iter_mut().for_each(|b| *b = (*b - mean[c]) * k + beta[c]);
        }
        self.notes.push(format!("folded batch normalization {label:?} into {:?}", p.name));
        Ok(())
    }

    fn relu(&mut self) -> Result<()> {
        let Some(p) = self.pending.as_mut() else {
            return Err(self.unsupported(Refusal::ReluPlacement));
        };
        match p.pool {
            Some(Pool { kind: PoolKind::Average, .. }) => {
                Err(self.unsupported(Refusal::ReluAfterAveragePool))
            }
            // max pooling and ReLU commute.
            _ => {
                p.relu = true;
                Ok(())
            }
        }
    }

    fn pool(&mut self, op: &str) -> Result<()> {
        let a = Attributes::of(self.node);
        let kind = if op == "MaxPool" { PoolKind::Max } else { PoolKind::Average };
        let known = [
            "kernel_shape",
            "strides",
            "pads",
            "auto_pad",
            "ceil_mode",
            "dilations",
            "count_include_pad",
            "storage_order",
        ];
        if let Some(k) = a.unknown(&known).first() {
            return Err(self.unsupported(Refusal::UnknownAttribute { attribute: k.clone() }));
        }
        let window = a.sizes("kernel_shape", 2, None)?;
        let stride = a.sizes("strides", 2, Some(vec![1, 1]))?;
        if a.sizes("pads", 4, Some(vec![0; 4]))?.iter().any(|&p| p > 0) {
            return Err(self.unsupported(Refusal::PaddedPool));
        }
        if a.int("ceil_mode", 0) != 0 || a.sizes("dilations", 2, Some(vec![1, 1]))? != [1, 1] {
            return Err(self.unsupported(Refusal::PoolCeilOrDilation));
        }
        let auto_pad = a.string("auto_pad", "NOTSET");
        if auto_pad != "NOTSET" && auto_pad != "VALID" {
            return Err(self.unsupported(Refusal::PoolAutoPad { auto_pad }));
        }
        self.attach_pool(Pool { kind, window: [window[0], window[1]], stride: [stride[0], stride[1]] })
    }

    /// Sets the pending convolution's pooling (there must be one, not yet pooled).
    fn attach_pool(&mut self, pool: Pool) -> Result<()> {
        let Some(p) = self.pending.as_mut().filter(|p| matches!(p.linear, Linear::Conv2d { .. })) else {
            return Err(self.unsupported(Refusal::PoolPlacement));
        };
        if p.pool.is_some() {
            return Err(self.unsupported(Refusal::SecondPool));
        }
        p.pool = Some(pool);
        Ok(())
    }

    /// Average pooling over each whole channel.
    fn global_pool(&mut self) -> Result<()> {
        let out = self.pending_output()?;
        self.attach_pool(Pool { kind: PoolKind::Average, window: [out.height, out.width], stride: [1, 1] })
    }

    fn finish(mut self) -> Result<Imported> {
        self.finish_pending()?;
        if self.layers.is_empty() {
            return Err(GraphError::NoLayer.into());
        }
        let (layers, params): (Vec<Layer>, Vec<FloatParams>) = self.layers.into_iter().unzip();
        let network = Network::new(self.input, layers)?;
        Ok(Imported { model: FloatModel::new(network, params)?, notes: self.notes })
    }
}

/// A row-major rows x cols matrix transposed.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..cols).flat_map(|c| (0..rows).map(move |r| m[r * cols + c])).collect()
}

/// `name`, or `name_2`, `name_3`, ... if a layer already has it.
fn unique(layers: &[(Layer, FloatParams)], name: &str) -> String {
    let taken = |n: &str| layers.iter().any(|(l, _)| l.name == n);
    let name = if name.is_empty() { "layer" } else { name };
    if !taken(name) {
        return name.to_string();
    }
    (2..).map(|i| format!("{name}_{i}")).find(|n| !taken(n)).expect("some suffix is free")
}
