//! ONNX graphs to float models: a walk along the graph's data path,
//! collecting each linear node with what follows it (bias, batch norm,
//! residual Add, ReLU, pooling) into one layer of a [`Network`]. A residual
//! block's shortcut leaves the path at an earlier layer's activation and
//! joins it at an Add after a convolution, directly or through a 1x1
//! convolution (a projection, whose nodes the [`Wiring`] finds ahead).

mod input;
mod layer;
mod residual;

use std::collections::{HashMap, HashSet};

use prost::Message;

use ppdnn_model::float::FloatModel;
use ppdnn_model::network::{FloatParams, Layer, Linear, Network, Pool, PoolKind, Shape};

use crate::error::{DecodeError, Error, GraphError, Refusal, Result};
use crate::graph::Wiring;
use crate::proto::{ModelProto, NodeProto};
use crate::tensor::{Attributes, Constant};
use input::{graph_input_shape, normalization};
use layer::{BatchNorm, ConvParams, Pending};

/// What the ONNX model's input values are, relative to pixels 0..255.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputScale {
    /// pixel / 255 (what `ppdnn export-onnx` writes, and PyTorch's ToTensor gives).
    #[default]
    Unit,
    /// The pixel values themselves, 0..255.
    Byte,
}

/// The operators [`import`] reads (some only in some places).
const OPERATORS: [&str; 19] = [
    "Identity",
    "Dropout",
    "Flatten",
    "Reshape",
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "BatchNormalization",
    "Relu",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Softmax",
    "LogSoftmax",
    "Constant",
];

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

struct Importer<'a> {
    consts: HashMap<String, Constant>,
    /// The graph's nodes, in order.
    nodes: &'a [NodeProto],
    /// The projection branches, found ahead.
    wiring: Wiring,
    /// The data path's last value.
    current: String,
    /// The names of the current value (it and its Identity and Dropout copies).
    same: Vec<String>,
    /// Every value the walk has passed.
    seen: HashSet<String>,
    /// The finished layers' activations by tensor name: the layer's index
    /// and the activation's shape.
    activations: HashMap<String, (usize, Shape)>,
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
    /// The node being read, its index and its name for messages.
    node: &'a NodeProto,
    index: usize,
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
    let wiring = Wiring::of(&graph.node, &|t: &str| consts.contains_key(t));
    let mut im = Importer {
        consts,
        nodes: &graph.node,
        wiring,
        current: input.name().to_string(),
        same: vec![input.name().to_string()],
        seen: HashSet::from([input.name().to_string()]),
        activations: HashMap::new(),
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
        index: 0,
        label: String::new(),
    };
    im.check_operators()?;
    for i in 0..graph.node.len() {
        im.step(i)?;
    }
    let outputs: Vec<&str> = graph.output.iter().map(|o| o.name()).collect();
    if outputs != [im.current.as_str()] {
        let outputs = outputs.into_iter().map(str::to_string).collect();
        return Err(GraphError::Outputs { outputs, end: im.current }.into());
    }
    im.finish()
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

    /// Points the walk (and its messages) at node `i`.
    fn enter(&mut self, i: usize) {
        let nodes = self.nodes;
        let node = &nodes[i];
        self.node = node;
        self.index = i;
        self.label =
            if node.name().is_empty() { format!("{}_{i}", node.op_type()) } else { node.name().to_string() };
    }

    /// Refuses, before the walk, the first node of another domain or of an
    /// operator ppdnn does not read.
    fn check_operators(&mut self) -> Result<()> {
        for i in 0..self.nodes.len() {
            self.enter(i);
            if self.node.op_type() == "Constant" {
                continue;
            }
            self.check_domain()?;
            if !OPERATORS.contains(&self.node.op_type()) {
                return Err(self.unsupported(Refusal::Operator));
            }
        }
        Ok(())
    }

    fn check_domain(&self) -> Result<()> {
        let node = self.node;
        if node.domain.as_deref().is_some_and(|d| !d.is_empty() && d != "ai.onnx") {
            return Err(self.unsupported(Refusal::Domain { domain: node.domain().to_string() }));
        }
        Ok(())
    }

    /// Reads node `i` into the network.
    fn step(&mut self, i: usize) -> Result<()> {
        self.enter(i);
        if self.wiring.in_projection.contains(&i) {
            // Read with the Add it feeds.
            return Ok(());
        }
        let op = self.node.op_type();
        if self.ended {
            return Err(self.unsupported(Refusal::AfterEnd { op: op.to_string() }));
        }
        if op == "Constant" {
            return self.constant_node();
        }
        self.check_domain()?;
        if self.joins_branches() {
            self.residual_add()?;
        } else {
            self.check_path()?;
            self.apply(op)?;
        }
        self.advance();
        Ok(())
    }

    fn constant_node(&mut self) -> Result<()> {
        let node = self.node;
        let value = node.attribute.iter().find(|a| a.name() == "value").and_then(|a| a.t.as_ref());
        let (Some(t), [out]) = (value, &node.output[..]) else {
            return Err(self.unsupported(Refusal::ConstantValue));
        };
        self.consts.insert(out.clone(), Constant::from_proto(t)?);
        Ok(())
    }

    /// Checks that the node reads the data path's last value (as its first
    /// input) and writes one value (several for a few operators whose
    /// first output is the value).
    fn check_path(&self) -> Result<()> {
        let node = self.node;
        match node.input.first() {
            Some(x) if *x == self.current => {}
            Some(x) if self.seen.contains(x) => {
                return Err(self
                    .unsupported(Refusal::SideBranch { input: x.clone(), previous: self.current.clone() }));
            }
            Some(x) => {
                return Err(self.unsupported(Refusal::NotSequential {
                    input: x.clone(),
                    previous: self.current.clone(),
                }));
            }
            None => return Err(self.unsupported(Refusal::NoInput)),
        }
        let several = matches!(node.op_type(), "Dropout" | "BatchNormalization" | "MaxPool");
        match node.output.len() {
            0 => Err(self.unsupported(Refusal::NoOutput)),
            1 => Ok(()),
            _ if several => Ok(()),
            _ => Err(self.unsupported(Refusal::SeveralOutputs)),
        }
    }

    /// Applies a node on the data path to the pending layer (or the input).
    fn apply(&mut self, op: &str) -> Result<()> {
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
            _ => return Err(self.unsupported(Refusal::Operator)),
        }
        Ok(())
    }

    /// Moves the data path to the node's (first) output.
    fn advance(&mut self) {
        let Some(out) = self.node.output.first() else { return };
        if matches!(self.node.op_type(), "Identity" | "Dropout") {
            self.same.push(out.clone());
        } else {
            self.same = vec![out.clone()];
        }
        self.seen.insert(out.clone());
        self.current = out.clone();
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
            let (shortcut, projection) = p.shortcut.map_or((None, None), |(s, params)| (Some(s), params));
            let layer = Layer {
                name: unique(&self.layers, &p.name),
                linear: p.linear,
                relu: p.relu,
                pool: p.pool,
                shortcut,
            };
            let output = layer.output_shape(self.shape)?;
            self.shape = match &layer.pool {
                Some(pool) => pool.output_shape(output, &layer.name)?,
                None => output,
            };
            for name in &self.same {
                self.activations.insert(name.clone(), (self.layers.len(), self.shape));
            }
            let params = FloatParams { weight: p.weight, bias: p.bias, shortcut: projection.map(Box::new) };
            self.layers.push((layer, params));
        }
        Ok(())
    }

    /// The accumulators' shape of the pending layer.
    fn pending_output(&self) -> Result<Shape> {
        let p = self.pending.as_ref().ok_or_else(|| self.unsupported(Refusal::NoLayerBefore))?;
        let layer = Layer { name: p.name.clone(), linear: p.linear, relu: false, pool: None, shortcut: None };
        Ok(layer.output_shape(self.shape)?)
    }

    fn conv(&mut self) -> Result<()> {
        self.finish_pending()?;
        if self.flattened || self.layers.iter().any(|(l, _)| matches!(l.linear, Linear::Dense { .. })) {
            return Err(self.unsupported(Refusal::ConvAfterDense));
        }
        let conv = self.conv_params(self.shape.channels)?;
        let linear = conv.linear();
        let (mut weight, mut bias) = (conv.weight, conv.bias);
        self.fold_input(linear, &mut weight, &mut bias)?;
        self.pending = Some(Pending::new(self.label.clone(), linear, weight, bias));
        Ok(())
    }

    /// The node's convolution on an input of `channels`.
    fn conv_params(&self, channels: usize) -> Result<ConvParams> {
        let a = Attributes::of(self.node);
        self.check_conv_attributes(&a)?;
        let w = self.constant(1)?;
        if w.dims.len() != 4 || w.floats.is_empty() {
            return Err(self.unsupported(Refusal::ConvWeights { dims: w.dims.clone() }));
        }
        let (out, kh, kw) = (w.dims[0], w.dims[2], w.dims[3]);
        if w.dims[1] != channels {
            return Err(self.unsupported(Refusal::WeightChannels { dims: w.dims.clone(), channels }));
        }
        let kernel = a.sizes("kernel_shape", 2, Some(vec![kh, kw]))?;
        if kernel != [kh, kw] {
            return Err(self.unsupported(Refusal::KernelShape { kernel, dims: w.dims.clone() }));
        }
        let stride = a.sizes("strides", 2, Some(vec![1, 1]))?;
        let padding = a.sizes("pads", 4, Some(vec![0; 4]))?;
        let bias = match self.optional_constant(2)? {
            Some(b) if b.floats.len() == out => b.floats.clone(),
            Some(b) => {
                return Err(self.unsupported(Refusal::ConvBias { dims: b.dims.clone(), channels: out }));
            }
            None => vec![0.0; out],
        };
        Ok(ConvParams {
            kernel: [kh, kw],
            stride: [stride[0], stride[1]],
            padding: [padding[0], padding[1], padding[2], padding[3]],
            weight: w.floats.clone(),
            bias,
        })
    }

    /// Refuses attributes other than a plain convolution's (one group, no
    /// dilation, explicit padding).
    fn check_conv_attributes(&self, a: &Attributes) -> Result<()> {
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
        self.pending =
            Some(Pending::new(self.label.clone(), Linear::Dense { outputs: bias.len() }, weight, bias));
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
        if self.pending.is_none() && self.layers.is_empty() {
            return self.normalize_input(op, values);
        }
        let map_len = match &self.pending {
            Some(p) if matches!(p.linear, Linear::Conv2d { .. }) => Some(self.pending_output()?.len()),
            _ => None,
        };
        // A bias: before the ReLU and pooling (a shortcut's sum may come before it).
        match &mut self.pending {
            Some(p) if op == "Add" && !p.relu && p.pool.is_none() => {
                p.add_bias(&values, map_len).map_err(|why| self.unsupported(why))
            }
            _ => Err(self.unsupported(Refusal::Elementwise { op: op.to_string() })),
        }
    }

    /// The node's batch normalization parameters.
    fn batch_norm_params(&self) -> Result<BatchNorm> {
        let eps = Attributes::of(self.node).float("epsilon", 1e-5);
        let [gamma, beta, mean, var] = [1, 2, 3, 4].map(|i| self.constant(i).map(|c| c.floats.clone()));
        Ok(BatchNorm { gamma: gamma?, beta: beta?, mean: mean?, var: var?, eps })
    }

    fn batch_norm(&mut self) -> Result<()> {
        let bn = self.batch_norm_params()?;
        let label = self.label.clone();
        let Some(p) = self.pending.as_mut().filter(|p| p.is_linear()) else {
            return Err(self.unsupported(Refusal::BatchNormPlacement));
        };
        let folded = p.fold(&bn);
        let note = format!("folded batch normalization {label:?} into {:?}", p.name);
        folded.map_err(|why| self.unsupported(why))?;
        self.notes.push(note);
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
