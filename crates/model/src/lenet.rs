//! LeNet-5's architecture and its float forward pass.
//!
//! conv 5x5x6 (pad 2), ReLU, 2x2 average pool, conv 5x5x16, ReLU, 2x2 average
//! pool, fc 400-120, ReLU, fc 120-84, ReLU, fc 84-10. Average pooling: it
//! reaches the accuracy target, and it is linear, so a later model-private
//! mode can fold it into the next linear layer instead of paying three secure
//! comparisons per window as a max pool would.

use rayon::prelude::*;

use crate::dataset::{PIXELS, SIDE};
use crate::error::{Error, Result};

/// One linear layer's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum LayerShape {
    /// A square convolution with stride 1 over a square input.
    Conv {
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Kernel side.
        kernel: usize,
        /// Zero padding on each side.
        pad: usize,
        /// Input side (height = width).
        in_side: usize,
    },
    /// A fully connected layer.
    Dense {
        /// Inputs.
        inputs: usize,
        /// Outputs.
        outputs: usize,
    },
}

/// Limits on a layer shape from outside (a plan, a model file): generous for
/// any network this crate can serve, and small enough that every count and
/// index derived from a shape is far from overflowing.
pub mod limits {
    /// Largest channel count of a convolution.
    pub const MAX_CHANNELS: usize = 4096;
    /// Largest input side of a convolution.
    pub const MAX_SIDE: usize = 4096;
    /// Largest kernel side.
    pub const MAX_KERNEL: usize = 64;
    /// Largest padding.
    pub const MAX_PAD: usize = 64;
    /// Largest number of values going into or out of one layer, and of weights.
    pub const MAX_VALUES: usize = 1 << 24;
}

impl LayerShape {
    /// Checks the shape against [`limits`] and for consistency (a kernel that
    /// fits the padded input, non-zero sizes), with checked arithmetic, so
    /// that every method of the shape can then be called safely.
    pub fn check_limits(&self) -> Result<()> {
        use limits::*;
        let bad = |what: String| Err(Error::Model(format!("layer shape: {what}")));
        match *self {
            LayerShape::Conv { in_channels, out_channels, kernel, pad, in_side } => {
                if !(1..=MAX_CHANNELS).contains(&in_channels) || !(1..=MAX_CHANNELS).contains(&out_channels) {
                    return bad(format!("channels must be 1 to {MAX_CHANNELS}"));
                }
                if !(1..=MAX_SIDE).contains(&in_side) {
                    return bad(format!("input side must be 1 to {MAX_SIDE}"));
                }
                if !(1..=MAX_KERNEL).contains(&kernel) || pad > MAX_PAD {
                    return bad(format!("kernel must be 1 to {MAX_KERNEL} and padding at most {MAX_PAD}"));
                }
                if kernel > in_side + 2 * pad {
                    return bad(format!(
                        "a {kernel}-wide kernel does not fit a padded side of {}",
                        in_side + 2 * pad
                    ));
                }
            }
            LayerShape::Dense { inputs, outputs } => {
                if !(1..=MAX_VALUES).contains(&inputs) || !(1..=MAX_VALUES).contains(&outputs) {
                    return bad(format!("dense sizes must be 1 to {MAX_VALUES}"));
                }
            }
        }
        let counts = [self.checked_input_len(), self.checked_output_len(), self.checked_weight_count()];
        if counts.iter().any(|c| c.is_none_or(|c| c > MAX_VALUES)) {
            return bad(format!("more than {MAX_VALUES} inputs, outputs or weights"));
        }
        Ok(())
    }

    fn checked_input_len(&self) -> Option<usize> {
        match *self {
            LayerShape::Conv { in_channels, in_side, .. } => {
                in_channels.checked_mul(in_side)?.checked_mul(in_side)
            }
            LayerShape::Dense { inputs, .. } => Some(inputs),
        }
    }

    fn checked_output_len(&self) -> Option<usize> {
        match *self {
            LayerShape::Conv { out_channels, kernel, pad, in_side, .. } => {
                let side = in_side.checked_add(pad.checked_mul(2)?)?.checked_add(1)?.checked_sub(kernel)?;
                out_channels.checked_mul(side)?.checked_mul(side)
            }
            LayerShape::Dense { outputs, .. } => Some(outputs),
        }
    }

    fn checked_weight_count(&self) -> Option<usize> {
        self.weight_shape().iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    /// Output side of a convolution (0 for dense layers).
    pub fn out_side(&self) -> usize {
        match *self {
            LayerShape::Conv { kernel, pad, in_side, .. } => in_side + 2 * pad + 1 - kernel,
            LayerShape::Dense { .. } => 0,
        }
    }

    /// Number of input values.
    pub fn input_len(&self) -> usize {
        match *self {
            LayerShape::Conv { in_channels, in_side, .. } => in_channels * in_side * in_side,
            LayerShape::Dense { inputs, .. } => inputs,
        }
    }

    /// Number of output values (accumulators).
    pub fn output_len(&self) -> usize {
        match *self {
            LayerShape::Conv { out_channels, .. } => out_channels * self.out_side() * self.out_side(),
            LayerShape::Dense { outputs, .. } => outputs,
        }
    }

    /// Output channels (outputs for a dense layer).
    pub fn out_channels(&self) -> usize {
        match *self {
            LayerShape::Conv { out_channels, .. } => out_channels,
            LayerShape::Dense { outputs, .. } => outputs,
        }
    }

    /// Weights per output channel (kernel volume, or inputs).
    pub fn fan_in(&self) -> usize {
        match *self {
            LayerShape::Conv { in_channels, kernel, .. } => in_channels * kernel * kernel,
            LayerShape::Dense { inputs, .. } => inputs,
        }
    }

    /// The weight tensor's shape: [out, in, k, k] or [out, in].
    pub fn weight_shape(&self) -> Vec<usize> {
        match *self {
            LayerShape::Conv { in_channels, out_channels, kernel, .. } => {
                vec![out_channels, in_channels, kernel, kernel]
            }
            LayerShape::Dense { inputs, outputs } => vec![outputs, inputs],
        }
    }
}

/// A layer of the network: its shape and what follows it on the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSpec {
    /// Tensor name prefix in model files.
    pub name: &'static str,
    /// The linear part.
    pub shape: LayerShape,
    /// ReLU after the layer (all but the last).
    pub relu: bool,
    /// 2x2 average pooling after the ReLU.
    pub pool: bool,
}

impl LayerSpec {
    /// Values handed to the next layer (after pooling).
    pub fn activation_len(&self) -> usize {
        if self.pool { self.shape.output_len() / 4 } else { self.shape.output_len() }
    }
}

/// LeNet-5 for 1x28x28 input.
pub const LENET5: [LayerSpec; 5] = [
    LayerSpec {
        name: "conv1",
        shape: LayerShape::Conv { in_channels: 1, out_channels: 6, kernel: 5, pad: 2, in_side: SIDE },
        relu: true,
        pool: true,
    },
    LayerSpec {
        name: "conv2",
        shape: LayerShape::Conv { in_channels: 6, out_channels: 16, kernel: 5, pad: 0, in_side: 14 },
        relu: true,
        pool: true,
    },
    LayerSpec {
        name: "fc1",
        shape: LayerShape::Dense { inputs: 400, outputs: 120 },
        relu: true,
        pool: false,
    },
    LayerSpec { name: "fc2", shape: LayerShape::Dense { inputs: 120, outputs: 84 }, relu: true, pool: false },
    LayerSpec { name: "fc3", shape: LayerShape::Dense { inputs: 84, outputs: 10 }, relu: false, pool: false },
];

/// Number of classes.
pub const CLASSES: usize = 10;

/// One layer's float parameters; weights in [out][in][ky][kx] or [out][in] order.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatLayer {
    /// Weights, output-major.
    pub weight: Vec<f32>,
    /// Biases, one per output channel.
    pub bias: Vec<f32>,
}

/// LeNet-5's float parameters, as trained. Inputs are pixels / 255.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatModel {
    /// The layers, in the order of [`LENET5`].
    pub layers: Vec<FloatLayer>,
}

impl FloatModel {
    /// Checks every layer's parameter counts against the architecture.
    pub fn validate(&self) -> Result<()> {
        if self.layers.len() != LENET5.len() {
            return Err(Error::Model(format!("{} layers, LeNet-5 has {}", self.layers.len(), LENET5.len())));
        }
        for (spec, layer) in LENET5.iter().zip(&self.layers) {
            let want: usize = spec.shape.weight_shape().iter().product();
            if layer.weight.len() != want || layer.bias.len() != spec.shape.out_channels() {
                return Err(Error::Model(format!(
                    "{}: {} weights and {} biases, expected {want} and {}",
                    spec.name,
                    layer.weight.len(),
                    layer.bias.len(),
                    spec.shape.out_channels()
                )));
            }
            if layer.weight.iter().chain(&layer.bias).any(|x| !x.is_finite()) {
                return Err(Error::Model(format!("{}: a parameter is not a finite number", spec.name)));
            }
        }
        Ok(())
    }

    /// Float logits for one 28x28 image of pixels 0..255.
    pub fn logits(&self, image: &[u8]) -> Vec<f32> {
        self.activations(image).pop().unwrap_or_default()
    }

    /// Every layer's float output after its ReLU and pooling (the last one: logits).
    pub fn activations(&self, image: &[u8]) -> Vec<Vec<f32>> {
        let mut x: Vec<f32> = image.iter().map(|&p| p as f32 / 255.0).collect();
        let mut out = Vec::with_capacity(LENET5.len());
        for (spec, layer) in LENET5.iter().zip(&self.layers) {
            let mut y = linear(&spec.shape, &layer.weight, &layer.bias, &x, |a, b| a * b);
            if spec.relu {
                y.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            if spec.pool {
                y = pool2(&y, spec.shape.out_channels(), spec.shape.out_side(), |a, b, c, d| {
                    (a + b + c + d) / 4.0
                });
            }
            out.push(y.clone());
            x = y;
        }
        out
    }

    /// Accuracy over a data set, in parallel.
    pub fn accuracy(&self, images: &[u8], labels: &[u8]) -> f64 {
        let correct: usize = labels
            .par_iter()
            .enumerate()
            .filter(|&(i, &l)| argmax(&self.logits(&images[i * PIXELS..(i + 1) * PIXELS])) == l as usize)
            .count();
        correct as f64 / labels.len().max(1) as f64
    }
}

/// Index of the largest value (the first one on ties).
pub fn argmax<T: PartialOrd + Copy>(xs: &[T]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

/// A layer's linear map, generic over the number type: out = W x + b.
/// `mul(w, x)` multiplies a weight by an input.
pub fn linear<T, W>(shape: &LayerShape, weight: &[W], bias: &[T], x: &[T], mul: impl Fn(W, T) -> T) -> Vec<T>
where
    T: Copy + Default + std::ops::AddAssign,
    W: Copy,
{
    match *shape {
        LayerShape::Conv { in_channels, out_channels, kernel, pad, in_side } => {
            let out_side = shape.out_side();
            let mut out = vec![T::default(); out_channels * out_side * out_side];
            for oc in 0..out_channels {
                for oy in 0..out_side {
                    for ox in 0..out_side {
                        let mut acc = bias[oc];
                        for ic in 0..in_channels {
                            for ky in 0..kernel {
                                let iy = (oy + ky) as isize - pad as isize;
                                if iy < 0 || iy >= in_side as isize {
                                    continue;
                                }
                                for kx in 0..kernel {
                                    let ix = (ox + kx) as isize - pad as isize;
                                    if ix < 0 || ix >= in_side as isize {
                                        continue;
                                    }
                                    let w = weight[((oc * in_channels + ic) * kernel + ky) * kernel + kx];
                                    acc += mul(w, x[(ic * in_side + iy as usize) * in_side + ix as usize]);
                                }
                            }
                        }
                        out[(oc * out_side + oy) * out_side + ox] = acc;
                    }
                }
            }
            out
        }
        LayerShape::Dense { inputs, outputs } => (0..outputs)
            .map(|o| {
                let mut acc = bias[o];
                for (i, &xi) in x.iter().enumerate().take(inputs) {
                    acc += mul(weight[o * inputs + i], xi);
                }
                acc
            })
            .collect(),
    }
}

/// 2x2 pooling with stride 2 over `channels` maps of `side` x `side`.
pub fn pool2<T: Copy>(x: &[T], channels: usize, side: usize, f: impl Fn(T, T, T, T) -> T) -> Vec<T> {
    let half = side / 2;
    let mut out = Vec::with_capacity(channels * half * half);
    for c in 0..channels {
        for y in 0..half {
            for xx in 0..half {
                let at = |dy: usize, dx: usize| x[(c * side + 2 * y + dy) * side + 2 * xx + dx];
                out.push(f(at(0, 0), at(0, 1), at(1, 0), at(1, 1)));
            }
        }
    }
    out
}
