//! A general sequential network: the architecture of any model ppdnn can
//! serve (issue 13; LeNet-5 is one instance).
//!
//! Each layer is a linear part (a 2-D convolution of any kernel, stride and
//! padding over a channels x height x width input, or a dense layer over the
//! flattened input) followed by the between-layer step: ReLU or not, then
//! average pooling, max pooling or none (any window and stride, no padding).
//! Shapes are inferred and checked when a [`Network`] is built, with checked
//! arithmetic and the [`limits`], so that every later computation on it
//! stays in range.

use serde::{Deserialize, Serialize};

use crate::error::{Error, InputError, LayerError, ModelError, Result};
use crate::requant::Requant;
use limits::{MAX_CHANNELS, MAX_KERNEL, MAX_PAD, MAX_SIDE, MAX_VALUES};

/// Limits on a network from outside (a model file, a plan, an ONNX graph):
/// generous for any network this crate can serve, and small enough that
/// every count and index derived from a checked network is far from
/// overflowing.
pub mod limits {
    /// Largest channel count.
    pub const MAX_CHANNELS: usize = 4096;
    /// Largest height or width of a tensor, and largest pooling window or stride.
    pub const MAX_SIDE: usize = 4096;
    /// Largest kernel side and convolution stride.
    pub const MAX_KERNEL: usize = 64;
    /// Largest padding.
    pub const MAX_PAD: usize = 64;
    /// Largest number of values going into or out of one layer, and of weights.
    pub const MAX_VALUES: usize = 1 << 24;
}

pub use crate::shape::Shape;

/// The linear part of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Linear {
    /// out[o][y][x] = b[o] + sum w[o][i][ky][kx] * in[i][y*sy + ky - top][x*sx + kx - left],
    /// zero outside the input.
    Conv2d {
        /// Output channels (the input's channels are the previous shape's).
        out_channels: usize,
        /// Kernel height and width.
        kernel: [usize; 2],
        /// Vertical and horizontal stride.
        stride: [usize; 2],
        /// Zero padding: top, left, bottom, right.
        padding: [usize; 4],
    },
    /// out = W x + b over the flattened input (channel-major, then rows).
    Dense {
        /// Outputs.
        outputs: usize,
    },
}

impl Linear {
    /// Weights per output channel on an input of `input`: the kernel's
    /// volume (input channels x kh x kw), or the inputs of a dense layer.
    pub fn fan_in(&self, input: Shape) -> usize {
        match *self {
            Linear::Conv2d { kernel: [kh, kw], .. } => input.channels * kh * kw,
            Linear::Dense { .. } => input.len(),
        }
    }
}

/// What a pooling window computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolKind {
    /// The mean of the window (in the integer model: its sum, the 1/area
    /// folded into the requantization).
    Average,
    /// The largest value of the window.
    Max,
}

/// Pooling after a layer's activation: windows over each channel, no padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Average or max.
    pub kind: PoolKind,
    /// Window height and width.
    pub window: [usize; 2],
    /// Vertical and horizontal stride.
    pub stride: [usize; 2],
}

/// A residual connection: an earlier layer's activation (what it hands on,
/// after its ReLU and pooling) added to a convolution's accumulators before
/// the convolution's own ReLU, as ResNet's blocks do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shortcut {
    /// The earlier layer whose activation is added.
    pub from: String,
    /// A projection instead of the identity: a 1x1 convolution with this
    /// stride (and weights and biases of its own) from the earlier
    /// activation's channels to the layer's output channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projection: Option<[usize; 2]>,
}

impl Shortcut {
    /// The projection as a layer of its own (a 1x1 convolution without
    /// padding) with `out_channels` outputs, named after `layer`.
    pub fn projection_layer(&self, layer: &str, out_channels: usize) -> Option<Layer> {
        self.projection.map(|stride| Layer {
            name: format!("{layer}.shortcut"),
            linear: Linear::Conv2d { out_channels, kernel: [1, 1], stride, padding: [0; 4] },
            relu: false,
            pool: None,
            shortcut: None,
        })
    }
}

/// One layer: the linear part and the step after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// The name its tensors have in model files, and errors use.
    pub name: String,
    /// The linear part.
    pub linear: Linear,
    /// ReLU after the linear part (and the shortcut's sum).
    pub relu: bool,
    /// Pooling after the ReLU.
    pub pool: Option<Pool>,
    /// An earlier activation added to the accumulators (convolutions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortcut: Option<Shortcut>,
}

/// The shapes around one layer, inferred when the network is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerShapes {
    /// The layer's input.
    pub input: Shape,
    /// Its accumulators (the linear part's output).
    pub output: Shape,
    /// What it hands on (after pooling).
    pub activation: Shape,
    /// The layer whose activation its shortcut adds, and that activation's shape.
    pub shortcut: Option<(usize, Shape)>,
}

/// A checked sequential network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    input: Shape,
    layers: Vec<Layer>,
    shapes: Vec<LayerShapes>,
}

fn bad(name: &str, source: LayerError) -> Error {
    ModelError::Layer { layer: name.to_string(), source }.into()
}

/// Checks a shortcut of `layer` (whose accumulators have shape `output`)
/// against the layers before it: it names one of them, which is not the
/// last, and its activation (through the projection, if any) has the
/// accumulators' shape. Returns the source's index and activation shape.
fn shortcut_source(
    before: &[Layer],
    shapes: &[LayerShapes],
    layer: &Layer,
    s: &Shortcut,
    output: Shape,
) -> Result<(usize, Shape)> {
    let err = |what: LayerError| bad(&layer.name, what);
    if !matches!(layer.linear, Linear::Conv2d { .. }) {
        return Err(err(LayerError::ShortcutOnDense));
    }
    let Some(f) = before.iter().position(|b| b.name == s.from) else {
        return Err(err(LayerError::ShortcutSource { from: s.from.clone() }));
    };
    let source = shapes[f].activation;
    let added = match s.projection_layer(&layer.name, output.channels) {
        Some(p) => p.output_shape(source)?,
        None => source,
    };
    if added != output {
        return Err(err(LayerError::ShortcutShape { from: s.from.clone(), added, output }));
    }
    Ok((f, source))
}

/// The output length of a window sliding over `len` (padded) positions.
fn slide(len: usize, window: usize, stride: usize) -> Option<usize> {
    (len >= window && stride > 0).then(|| (len - window) / stride + 1)
}

impl Layer {
    /// The accumulators' shape for an input of `input`, checked.
    pub fn output_shape(&self, input: Shape) -> Result<Shape> {
        let err = |what: LayerError| bad(&self.name, what);
        match self.linear {
            Linear::Conv2d { out_channels, kernel, stride, padding } => {
                if !(1..=MAX_CHANNELS).contains(&out_channels)
                    || !(1..=MAX_CHANNELS).contains(&input.channels)
                {
                    return Err(err(LayerError::Channels {
                        in_channels: input.channels,
                        out_channels,
                        max: MAX_CHANNELS,
                    }));
                }
                if kernel.iter().any(|k| !(1..=MAX_KERNEL).contains(k)) {
                    return Err(err(LayerError::Kernel { kernel, max: MAX_KERNEL }));
                }
                if stride.iter().any(|s| !(1..=MAX_KERNEL).contains(s)) {
                    return Err(err(LayerError::Stride { stride, max: MAX_KERNEL }));
                }
                if padding.iter().any(|&p| p > MAX_PAD) {
                    return Err(err(LayerError::Padding { padding, max: MAX_PAD }));
                }
                let [top, left, bottom, right] = padding;
                let height = slide(input.height + top + bottom, kernel[0], stride[0]);
                let width = slide(input.width + left + right, kernel[1], stride[1]);
                match (height, width) {
                    (Some(height), Some(width)) => Ok(Shape { channels: out_channels, height, width }),
                    _ => Err(err(LayerError::KernelFit {
                        kernel,
                        height: input.height + top + bottom,
                        width: input.width + left + right,
                    })),
                }
            }
            Linear::Dense { outputs } => {
                if !(1..=MAX_VALUES).contains(&outputs) {
                    return Err(err(LayerError::Outputs { outputs, max: MAX_VALUES }));
                }
                Ok(Shape::vector(outputs))
            }
        }
    }

    /// The weight tensor's shape for an input of `input`: [out, in, kh, kw] or [out, in].
    pub fn weight_shape(&self, input: Shape) -> Vec<usize> {
        match self.linear {
            Linear::Conv2d { out_channels, kernel, .. } => {
                vec![out_channels, input.channels, kernel[0], kernel[1]]
            }
            Linear::Dense { outputs } => vec![outputs, input.len()],
        }
    }

    /// The projection of the layer's shortcut as a layer of its own (a 1x1
    /// convolution), if it has one.
    pub fn shortcut_projection(&self) -> Option<Layer> {
        let out = self.bias_len();
        self.shortcut.as_ref().and_then(|s| s.projection_layer(&self.name, out))
    }

    /// Weights per output channel (the kernel's volume, or the inputs).
    pub fn fan_in(&self, input: Shape) -> usize {
        self.linear.fan_in(input)
    }

    /// Biases: one per output channel.
    pub fn bias_len(&self) -> usize {
        match self.linear {
            Linear::Conv2d { out_channels, .. } => out_channels,
            Linear::Dense { outputs } => outputs,
        }
    }

    /// Whether `len` biases fit the layer whose accumulators have shape
    /// `output`: one per output channel, or, for a convolution, one per
    /// accumulator (a bias map, as folding a normalized input into a padded
    /// convolution gives: the padding sees the normalization's offset
    /// nowhere, the interior everywhere).
    pub fn accepts_bias_len(&self, output: Shape, len: usize) -> bool {
        len == self.bias_len() || (matches!(self.linear, Linear::Conv2d { .. }) && len == output.len())
    }

    /// The bias tensor's shape for `len` biases: [out] or a map [out, h, w].
    pub fn bias_shape(&self, output: Shape, len: usize) -> Vec<usize> {
        if len == self.bias_len() { vec![len] } else { vec![output.channels, output.height, output.width] }
    }
}

impl Pool {
    /// The pooled shape of an input of `input`, checked; `name` is the layer's, for errors.
    pub fn output_shape(&self, input: Shape, name: &str) -> Result<Shape> {
        if self.window.iter().chain(&self.stride).any(|v| !(1..=MAX_SIDE).contains(v)) {
            return Err(bad(
                name,
                LayerError::PoolLimits { window: self.window, stride: self.stride, max: MAX_SIDE },
            ));
        }
        match (
            slide(input.height, self.window[0], self.stride[0]),
            slide(input.width, self.window[1], self.stride[1]),
        ) {
            (Some(height), Some(width)) => Ok(Shape { channels: input.channels, height, width }),
            _ => Err(bad(
                name,
                LayerError::PoolFit { window: self.window, height: input.height, width: input.width },
            )),
        }
    }
}

impl Network {
    /// Builds a network on an input of `input`, inferring and checking every
    /// layer's shapes: at least one layer, known limits on every size, no
    /// count beyond [`MAX_VALUES`], distinct layer names, and no ReLU or
    /// pooling after the last layer (its accumulators are the logits).
    pub fn new(input: Shape, layers: Vec<Layer>) -> Result<Self> {
        if layers.is_empty() {
            return Err(ModelError::NoLayers.into());
        }
        if [input.channels, input.height, input.width].iter().any(|d| !(1..=MAX_SIDE).contains(d))
            || input.checked_len().is_none_or(|n| n > MAX_VALUES)
        {
            return Err(
                ModelError::InputShape { shape: input, max_side: MAX_SIDE, max_values: MAX_VALUES }.into()
            );
        }
        let mut shapes = Vec::with_capacity(layers.len());
        let mut x = input;
        for (l, layer) in layers.iter().enumerate() {
            if layers[..l].iter().any(|other| other.name == layer.name) || layer.name.is_empty() {
                return Err(bad(&layer.name, LayerError::Name));
            }
            if matches!(layer.linear, Linear::Dense { .. }) && layer.pool.is_some() {
                return Err(bad(&layer.name, LayerError::PoolAfterDense));
            }
            let output = layer.output_shape(x)?;
            let activation = match &layer.pool {
                Some(p) => p.output_shape(output, &layer.name)?,
                None => output,
            };
            let weights = layer.weight_shape(x).iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if [output.checked_len(), weights].iter().any(|c| c.is_none_or(|c| c > MAX_VALUES)) {
                return Err(bad(&layer.name, LayerError::TooLarge { max: MAX_VALUES }));
            }
            let shortcut = match &layer.shortcut {
                Some(s) => Some(shortcut_source(&layers[..l], &shapes, layer, s, output)?),
                None => None,
            };
            shapes.push(LayerShapes { input: x, output, activation, shortcut });
            x = activation;
        }
        let last = layers.last().expect("checked non-empty above");
        if last.relu || last.pool.is_some() {
            return Err(bad(&last.name, LayerError::LastLayer));
        }
        Ok(Network { input, layers, shapes })
    }

    /// The shortcuts' sources: for each layer, the layers whose activations
    /// later layers add (so a client keeps them).
    pub fn shortcut_sources(&self) -> Vec<bool> {
        let mut kept = vec![false; self.layers.len()];
        for (f, _) in self.shapes.iter().filter_map(|s| s.shortcut) {
            kept[f] = true;
        }
        kept
    }

    /// Whether any layer has a shortcut (a residual network).
    pub fn is_residual(&self) -> bool {
        self.layers.iter().any(|l| l.shortcut.is_some())
    }

    /// LeNet-5 on 1x28x28: conv 5x5x6 (pad 2), ReLU, 2x2 average pooling,
    /// conv 5x5x16, ReLU, 2x2 average pooling, dense 120, ReLU, dense 84,
    /// ReLU, dense 10: the network ppdnn trains itself. Average pooling
    /// reaches the accuracy target and it is linear, so the model-private
    /// mode's circuits only add; a max pool costs a comparison per window
    /// value there.
    pub fn lenet5() -> Self {
        let conv = |name: &str, out_channels, pad| Layer {
            name: name.into(),
            linear: Linear::Conv2d { out_channels, kernel: [5, 5], stride: [1, 1], padding: [pad; 4] },
            relu: true,
            pool: Some(Pool { kind: PoolKind::Average, window: [2, 2], stride: [2, 2] }),
            shortcut: None,
        };
        let dense = |name: &str, outputs, relu| Layer {
            name: name.into(),
            linear: Linear::Dense { outputs },
            relu,
            pool: None,
            shortcut: None,
        };
        let layers = vec![
            conv("conv1", 6, 2),
            conv("conv2", 16, 0),
            dense("fc1", 120, true),
            dense("fc2", 84, true),
            dense("fc3", 10, false),
        ];
        Network::new(Shape::new(1, 28, 28), layers).expect("LeNet-5's shapes are consistent")
    }

    /// The input shape.
    pub fn input(&self) -> Shape {
        self.input
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Each layer's input, accumulator and activation shapes.
    pub fn shapes(&self) -> &[LayerShapes] {
        &self.shapes
    }

    /// The number of logits.
    pub fn classes(&self) -> usize {
        self.shapes.last().expect("a network has layers").output.len()
    }
}

/// A layer's linear map on an input of `shape`, generic over the number
/// type (f32 for the float model, i64 for the integer one): out = W x + b.
pub fn linear<T, W>(
    layer: &Layer,
    input: Shape,
    weight: &[W],
    bias: &[T],
    x: &[T],
    mul: impl Fn(W, T) -> T,
) -> Vec<T>
where
    T: Copy + Default + std::ops::AddAssign,
    W: Copy,
{
    match layer.linear {
        Linear::Conv2d {
            out_channels,
            kernel: [kh, kw],
            stride: [sy, sx],
            padding: [top, left, bottom, right],
        } => {
            let oh = (input.height + top + bottom - kh) / sy + 1;
            let ow = (input.width + left + right - kw) / sx + 1;
            let (ic, ih, iw) = (input.channels, input.height, input.width);
            // Output positions whose input under kernel offset k is inside
            // the input (not padding): first..end along one axis.
            let inside = |k: usize, pad: usize, stride: usize, len: usize, out: usize| {
                let first = pad.saturating_sub(k).div_ceil(stride);
                let end = (len + pad).checked_sub(k).map_or(0, |v| v.div_ceil(stride)).min(out);
                first..end.max(first)
            };
            let mut out = vec![T::default(); out_channels * oh * ow];
            // Each output adds its bias, then its terms in (input channel,
            // ky, kx) order: the same sums, in the same order, as a loop per
            // output; the loop per kernel offset over whole rows is faster.
            for o in 0..out_channels {
                let plane = &mut out[o * oh * ow..(o + 1) * oh * ow];
                if bias.len() == out_channels {
                    plane.iter_mut().for_each(|v| *v = bias[o]);
                } else {
                    // A bias map: one per accumulator.
                    plane.copy_from_slice(&bias[o * oh * ow..(o + 1) * oh * ow]);
                }
                for i in 0..ic {
                    for ky in 0..kh {
                        let rows = inside(ky, top, sy, ih, oh);
                        for kx in 0..kw {
                            let cols = inside(kx, left, sx, iw, ow);
                            let w = weight[((o * ic + i) * kh + ky) * kw + kx];
                            if cols.is_empty() {
                                continue;
                            }
                            for oy in rows.clone() {
                                let row = (i * ih + oy * sy + ky - top) * iw;
                                let dst = &mut plane[oy * ow + cols.start..oy * ow + cols.end];
                                let src = &x[row + cols.start * sx + kx - left..];
                                for (d, &v) in dst.iter_mut().zip(src.iter().step_by(sx)) {
                                    *d += mul(w, v);
                                }
                            }
                        }
                    }
                }
            }
            out
        }
        Linear::Dense { outputs } => {
            let n = input.len();
            (0..outputs)
                .map(|o| {
                    let mut acc = bias[o];
                    for (i, &xi) in x.iter().enumerate().take(n) {
                        acc += mul(weight[o * n + i], xi);
                    }
                    acc
                })
                .collect()
        }
    }
}

/// Pooling over each channel of `x` (of `shape`): `reduce` folds a window's
/// values, in row-major order, into one.
pub fn pool<T: Copy, U>(pool: &Pool, shape: Shape, x: &[T], reduce: impl Fn(&[T]) -> U) -> Vec<U> {
    let [wh, ww] = pool.window;
    let [sy, sx] = pool.stride;
    let oh = (shape.height - wh) / sy + 1;
    let ow = (shape.width - ww) / sx + 1;
    let mut out = Vec::with_capacity(shape.channels * oh * ow);
    let mut window = Vec::with_capacity(wh * ww);
    for c in 0..shape.channels {
        for oy in 0..oh {
            for ox in 0..ow {
                window.clear();
                for dy in 0..wh {
                    let row = (c * shape.height + oy * sy + dy) * shape.width + ox * sx;
                    window.extend_from_slice(&x[row..row + ww]);
                }
                out.push(reduce(&window));
            }
        }
    }
    out
}

/// The JSON form of a network (what a model file's metadata will hold):
/// the input shape and the layers; shapes are inferred again, and checked,
/// when it is read.
#[derive(Serialize, Deserialize)]
struct NetworkJson {
    input: Shape,
    layers: Vec<Layer>,
}

impl Network {
    /// The network as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&NetworkJson { input: self.input, layers: self.layers.clone() })
            .expect("a network of numbers and names always serializes")
    }

    /// Reads a network from JSON, checking it as [`Network::new`] does.
    pub fn from_json(text: &str) -> Result<Self> {
        let j: NetworkJson =
            serde_json::from_str(text).map_err(|source| ModelError::NetworkJson { source })?;
        Network::new(j.input, j.layers)
    }
}

/// A layer's parameters in the float model (weights in [out][in][kh][kw] or
/// [out][in] order, one bias per output channel, or for a convolution a
/// bias map of one per accumulator, [out][y][x]).
#[derive(Debug, Clone, PartialEq)]
pub struct FloatParams {
    /// Weights, output-major.
    pub weight: Vec<f32>,
    /// Biases.
    pub bias: Vec<f32>,
    /// A projection shortcut's parameters (weights [out][in][1][1], one
    /// bias per output channel); None for no shortcut or the identity.
    pub shortcut: Option<Box<FloatParams>>,
}

impl FloatParams {
    /// A layer's parameters without a projection shortcut.
    pub fn new(weight: Vec<f32>, bias: Vec<f32>) -> Self {
        FloatParams { weight, bias, shortcut: None }
    }
}

impl Network {
    /// Checks that `params` has one entry per layer with the weight and bias
    /// counts of its shape, all finite.
    pub fn check_params(&self, params: &[FloatParams]) -> Result<()> {
        if params.len() != self.layers.len() {
            return Err(ModelError::ParamSets { sets: params.len(), layers: self.layers.len() }.into());
        }
        for ((layer, shapes), p) in self.layers.iter().zip(&self.shapes).zip(params) {
            let want: usize = layer.weight_shape(shapes.input).iter().product();
            if p.weight.len() != want || !layer.accepts_bias_len(shapes.output, p.bias.len()) {
                return Err(bad(
                    &layer.name,
                    LayerError::Params {
                        weights: p.weight.len(),
                        biases: p.bias.len(),
                        expected_weights: want,
                        expected_biases: layer.bias_len(),
                    },
                ));
            }
            if p.weight.iter().chain(&p.bias).any(|x| !x.is_finite()) {
                return Err(bad(&layer.name, LayerError::NonFinite));
            }
            check_shortcut_params(
                layer,
                shapes,
                p.shortcut.as_deref().map(|s| (&s.weight[..], &s.bias[..])),
            )?;
            if p.shortcut.as_ref().is_some_and(|s| s.weight.iter().chain(&s.bias).any(|x| !x.is_finite())) {
                return Err(bad(&layer.name, LayerError::NonFinite));
            }
        }
        Ok(())
    }

    /// Every layer's float output after its ReLU and pooling (the last: the
    /// logits) for an input already scaled to the float model's convention.
    /// `params` must have passed [`Network::check_params`].
    pub fn float_activations(&self, params: &[FloatParams], input: &[f32]) -> Result<Vec<Vec<f32>>> {
        if input.len() != self.input.len() {
            return Err(InputError::Shape { got: input.len(), shape: self.input }.into());
        }
        let mut x = input.to_vec();
        let mut out: Vec<Vec<f32>> = Vec::with_capacity(self.layers.len());
        for ((layer, shapes), p) in self.layers.iter().zip(&self.shapes).zip(params) {
            let mut y = linear(layer, shapes.input, &p.weight, &p.bias, &x, |w, v| w * v);
            if let Some((f, source)) = shapes.shortcut {
                let added = match (layer.shortcut_projection(), p.shortcut.as_deref()) {
                    (Some(proj), Some(sp)) => {
                        linear(&proj, source, &sp.weight, &sp.bias, &out[f], |w, v| w * v)
                    }
                    _ => out[f].clone(),
                };
                y.iter_mut().zip(&added).for_each(|(v, a)| *v += a);
            }
            if layer.relu {
                y.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            if let Some(pl) = &layer.pool {
                y = match pl.kind {
                    PoolKind::Average => {
                        pool(pl, shapes.output, &y, |w| w.iter().sum::<f32>() / w.len() as f32)
                    }
                    PoolKind::Max => {
                        pool(pl, shapes.output, &y, |w| w.iter().copied().fold(f32::NEG_INFINITY, f32::max))
                    }
                };
            }
            out.push(y.clone());
            x = y;
        }
        Ok(out)
    }
}

/// Checks a layer's shortcut parameters (`given`: weights and biases):
/// a projection's 1x1 weights and one bias per output channel, or none for
/// the identity and for no shortcut.
pub fn check_shortcut_params(
    layer: &Layer,
    shapes: &LayerShapes,
    given: Option<(&[f32], &[f32])>,
) -> Result<()> {
    check_shortcut_counts(layer, shapes, given.map(|(w, b)| (w.len(), b.len())))
}

/// [`check_shortcut_params`] on counts.
pub fn check_shortcut_counts(
    layer: &Layer,
    shapes: &LayerShapes,
    given: Option<(usize, usize)>,
) -> Result<()> {
    let want = match (layer.shortcut_projection(), shapes.shortcut) {
        (Some(p), Some((_, source))) => Some((p.weight_shape(source).iter().product(), p.bias_len())),
        _ => None,
    };
    if given != want {
        let (weights, biases) = given.unwrap_or((0, 0));
        let (expected_weights, expected_biases) = want.unwrap_or((0, 0));
        return Err(bad(
            &layer.name,
            LayerError::ShortcutParams { weights, biases, expected_weights, expected_biases },
        ));
    }
    Ok(())
}

/// The integer between-layer step after a layer whose accumulators have
/// shape `output`: ReLU if `relu`, then pooling (the window's sum for
/// average pooling, its maximum for max pooling), then `requant` to 0..255;
/// the last layer (no `requant`) keeps its accumulators. `acc` must have
/// `output`'s length.
pub fn activate_int(
    relu: bool,
    pool_step: Option<&Pool>,
    output: Shape,
    requant: Option<Requant>,
    acc: &[i64],
) -> Vec<i64> {
    let Some(requant) = requant else {
        return acc.to_vec();
    };
    let mut y: Vec<i64> = if relu { acc.iter().map(|&v| v.max(0)).collect() } else { acc.to_vec() };
    if let Some(p) = pool_step {
        y = match p.kind {
            PoolKind::Average => pool(p, output, &y, |w| w.iter().sum()),
            PoolKind::Max => pool(p, output, &y, |w| w.iter().copied().max().unwrap_or(0)),
        };
    }
    y.into_iter().map(|v| requant.apply(v)).collect()
}

/// Index of the largest value (the first one on ties): the class of a
/// model's logits.
pub fn argmax<T: PartialOrd + Copy>(xs: &[T]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenet5_has_the_shapes_of_lenet5() {
        let net = Network::lenet5();
        let outputs: Vec<usize> = net.shapes().iter().map(|s| s.output.len()).collect();
        assert_eq!(outputs, [6 * 28 * 28, 16 * 10 * 10, 120, 84, 10]);
        let activations: Vec<usize> = net.shapes().iter().map(|s| s.activation.len()).collect();
        assert_eq!(activations, [6 * 14 * 14, 400, 120, 84, 10]);
        let fan_in: Vec<usize> =
            net.layers().iter().zip(net.shapes()).map(|(l, s)| l.fan_in(s.input)).collect();
        assert_eq!(fan_in, [25, 150, 400, 120, 84]);
        assert_eq!(net.classes(), 10);
    }

    #[test]
    fn json_round_trips_and_is_checked_when_read() {
        let net = Network::lenet5();
        let text = net.to_json();
        assert!(text.contains("\"conv2d\"") && text.contains("\"average\""), "{text}");
        assert_eq!(Network::from_json(&text).unwrap(), net);
        // A description whose kernel no longer fits is refused on reading, naming the layer.
        let bad = text.replacen("[5,5]", "[50,50]", 1);
        assert!(Network::from_json(&bad).unwrap_err().to_string().contains("conv1"));
        assert!(
            Network::from_json("{\"input\": 3}").unwrap_err().to_string().contains("network description")
        );
        let unknown = text.replacen("\"average\"", "\"median\"", 1);
        assert!(Network::from_json(&unknown).is_err());
    }

    #[test]
    fn strides_padding_and_non_square_shapes() {
        // A 2x3 kernel, stride (2, 1), asymmetric padding, over a 1x4x5 input.
        let layer = Layer {
            name: "c".into(),
            linear: Linear::Conv2d { out_channels: 1, kernel: [2, 3], stride: [2, 1], padding: [1, 0, 0, 2] },
            relu: false,
            pool: None,
            shortcut: None,
        };
        let net = Network::new(Shape::new(1, 4, 5), vec![layer.clone()]).unwrap();
        assert_eq!(net.shapes()[0].output, Shape::new(1, 2, 5)); // (4+1-2)/2+1, (5+2-3)/1+1
        let x: Vec<i64> = (1..=20).collect();
        let w = vec![1i64; 6];
        let out = linear(&layer, Shape::new(1, 4, 5), &w, &[0], &x, |a, b| a * b);
        // Row 0 of the output covers padded rows -1 (zeros) and 0; row 1 covers rows 1 and 2.
        // Column 3 covers columns 3, 4 and 5 (padding); column 4: 4, 5 and 6 (padding).
        let row = |r: usize| &x[r * 5..r * 5 + 5];
        let sum = |rows: &[usize], cols: std::ops::Range<usize>| -> i64 {
            rows.iter().flat_map(|&r| cols.clone().filter(|&c| c < 5).map(move |c| row(r)[c])).sum()
        };
        assert_eq!(out[0], sum(&[0], 0..3));
        assert_eq!(out[4], sum(&[0], 4..7));
        assert_eq!(out[5 + 3], sum(&[1, 2], 3..6));
        let max = Pool { kind: PoolKind::Max, window: [3, 2], stride: [1, 3] };
        let pooled = pool(&max, Shape::new(1, 4, 5), &x, |w| *w.iter().max().unwrap());
        assert_eq!(pooled, vec![12, 15, 17, 20]); // windows at rows 0..3 and 1..4, columns 0..2 and 3..5
    }

    #[test]
    fn impossible_networks_are_refused_with_the_layer_named() {
        let conv = |k: usize| Layer {
            name: "conv9".into(),
            linear: Linear::Conv2d { out_channels: 4, kernel: [k, k], stride: [1, 1], padding: [0; 4] },
            relu: true,
            pool: None,
            shortcut: None,
        };
        let last = Layer {
            name: "out".into(),
            linear: Linear::Dense { outputs: 10 },
            relu: false,
            pool: None,
            shortcut: None,
        };
        let e = Network::new(Shape::new(1, 8, 8), vec![conv(9), last.clone()]).unwrap_err().to_string();
        assert!(e.contains("conv9") && e.contains("9x9"), "{e}");
        let e = Network::new(Shape::new(1, 8, 8), vec![last.clone(), last.clone()]).unwrap_err().to_string();
        assert!(e.contains("distinct"), "{e}");
        let e = Network::new(Shape::new(1, 8, 8), vec![conv(3)]).unwrap_err().to_string();
        assert!(e.contains("logits"), "{e}");
        assert!(Network::new(Shape::new(1, 8, 8), vec![]).is_err());
        assert!(Network::new(Shape::new(0, 8, 8), vec![last.clone()]).is_err());
        let pooled_dense = Layer {
            pool: Some(Pool { kind: PoolKind::Max, window: [2, 2], stride: [2, 2] }),
            shortcut: None,
            ..last.clone()
        };
        assert!(Network::new(Shape::new(1, 8, 8), vec![pooled_dense]).is_err());
        let huge = Layer { linear: Linear::Dense { outputs: MAX_VALUES }, ..last };
        assert!(Network::new(Shape::new(1, 8, 8), vec![huge]).unwrap_err().to_string().contains("weights"));
    }
}
