//! The public plan of an inference: per layer, shapes, the client's
//! between-layer step, worst-case accumulator bounds, slot layout, and how
//! many ciphertexts each round carries.
//!
//! Layouts (packed mode; positions p = oy * out_width + ox, channel-major outputs):
//! - convolution input: for each kernel offset k = (ic, ky, kx) in that order
//!   and each chunk j of S positions, one ciphertext packing
//!   X[k][j*S + s] = x[ic][oy*sy+ky-top][ox*sx+kx-left] (0 outside the input) in slot s;
//! - convolution output: for each output channel c and chunk j, one
//!   ciphertext with acc[c][j*S + s] in slot s (unused slots of the last chunk are 0);
//! - dense input: one ciphertext per input value (slot 0 only);
//! - dense output: ceil(outputs / S) ciphertexts, output j*S + s in slot s of ciphertext j.
//!
//! In unpacked mode every value travels in its own ciphertext, inputs in
//! activation order and outputs in accumulator order.

use ppdnn_model::network::{Layer, Linear, Network, Pool, PoolKind, Shape, Shortcut};
use ppdnn_model::quant::{QuantModel, Requant};
use ppdnn_paillier::SlotCodec;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, LayerError, PlanError, Result, layer_error};

/// Bits of the largest input value (activations are 0..255).
const INPUT_MAX: i64 = 255;

use crate::limits;

/// How values are laid out in ciphertexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Packing {
    /// Slots: im2col rows packed over positions for convolutions, packed outputs for dense layers.
    Packed,
    /// One value per ciphertext everywhere (the obvious baseline).
    Unpacked,
}

/// Which protocol a plan (and a session) follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// 2P-DNN: the client decrypts every layer's accumulators (it learns
    /// them, and with a few chosen queries the weights).
    #[default]
    Fast,
    /// Model-private: the server masks the accumulators and the between-layer
    /// step runs in a garbled circuit; the client learns the logits (or only
    /// the label) and nothing else about the model.
    Private,
}

/// What the client learns at the end of an inference (the fast mode always
/// ends with the logits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// The integer logits.
    #[default]
    Logits,
    /// Only the index of the largest logit.
    Label,
}

/// A closed set of values with one name each, on the command line and in
/// JSON: one parse for all of them.
pub trait Named: Copy + 'static {
    /// What the values are called in an error message ("mode").
    const WHAT: &'static str;
    /// Every value, in the order the error message lists them.
    const ALL: &'static [Self];
    /// The value's name.
    fn name(self) -> &'static str;
}

/// The value of `T` called `s`, or an error listing the names there are.
pub fn parse_named<T: Named>(s: &str) -> Result<T> {
    T::ALL.iter().copied().find(|v| v.name() == s).ok_or_else(|| Error::UnknownName {
        what: T::WHAT,
        given: s.to_string(),
        expected: T::ALL.iter().map(|v| v.name()).collect::<Vec<_>>().join(" or "),
    })
}

impl Named for Mode {
    const WHAT: &'static str = "mode";
    const ALL: &'static [Self] = &[Mode::Fast, Mode::Private];
    fn name(self) -> &'static str {
        match self {
            Mode::Fast => "fast",
            Mode::Private => "private",
        }
    }
}

impl Named for Output {
    const WHAT: &'static str = "output";
    const ALL: &'static [Self] = &[Output::Logits, Output::Label];
    fn name(self) -> &'static str {
        match self {
            Output::Logits => "logits",
            Output::Label => "label",
        }
    }
}

impl Mode {
    /// The mode's name on the command line and in JSON.
    pub fn name(self) -> &'static str {
        Named::name(self)
    }
}

impl Output {
    /// The output's name on the command line and in JSON.
    pub fn name(self) -> &'static str {
        Named::name(self)
    }
}

impl std::str::FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        parse_named(s)
    }
}

impl std::str::FromStr for Output {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        parse_named(s)
    }
}

/// The garbled circuit that follows a layer in the private mode: what both
/// sides derive from the plan, stated so that a client can check it and
/// size its buffers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitInfo {
    /// OTs the layer's masked plaintexts take: one per bit of each
    /// (output ciphertexts * |n|).
    pub cots: usize,
    /// AND gates of the circuit.
    pub and_gates: usize,
    /// Bytes of the garbled tables the server sends for it.
    pub garbled_bytes: usize,
    /// Output bits: 8 per next-layer input (as labels the client turns into
    /// masked integers), or the label's bits.
    pub outputs: usize,
    /// Independent parts the circuit is garbled in (sent back to back).
    pub parts: usize,
}

/// A layer's shortcut in the plan: an earlier activation added to its
/// accumulators, as a main_factor * (W x + b) + factor * s (s: the source's
/// activation, or its 1x1 projection). The client sends the source's
/// activation after the layer's own input, laid out like the layer's
/// output: for each source channel and chunk j of S output positions, the
/// source value under each position (at stride `projection`, or 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanShortcut {
    /// The layer whose activation is added.
    pub from: String,
    /// A 1x1 projection's stride (None: the identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projection: Option<[usize; 2]>,
    /// The shape of the added activation.
    pub source: Shape,
    /// The factor a of the layer's own accumulators.
    pub main_factor: i64,
    /// The factor c of the added term.
    pub factor: i64,
}

/// One layer of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanLayer {
    /// The layer's name (conv1, ...).
    pub name: String,
    /// Its linear part (a convolution's kernel, stride and padding, or a
    /// dense layer's outputs).
    pub linear: Linear,
    /// ReLU after the layer.
    pub relu: bool,
    /// Pooling after the ReLU: average (the window's sum; 1/area is folded
    /// into the requantization) or max, with its window and stride.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<Pool>,
    /// The layer's input shape (channels, height, width).
    pub input: Shape,
    /// Its accumulators' shape.
    pub output: Shape,
    /// Requantization to the next layer's 0..255 inputs; None for the last layer.
    pub requant: Option<Requant>,
    /// Worst-case |accumulator| over all inputs in 0..255.
    pub accumulator_bound: i64,
    /// Slot width B (bits) of the output ciphertexts.
    pub slot_bits: u32,
    /// Slots S per ciphertext (1 when unpacked).
    pub slots: usize,
    /// Ciphertexts the client sends for this layer.
    pub input_ciphertexts: usize,
    /// Ciphertexts the server returns for this layer.
    pub output_ciphertexts: usize,
    /// Private mode: the circuit after this layer (none after the last
    /// layer, whose logits are returned as in the fast mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit: Option<CircuitInfo>,
    /// The shortcut, for a layer that adds one (its input ciphertexts are
    /// counted in `input_ciphertexts`, after the layer's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortcut: Option<PlanShortcut>,
}

impl PlanLayer {
    /// The rounding constant h the private mode folds into this layer's
    /// slot offset (0 for none): the slot holds v + 2^(B-1) + h, and the
    /// plan keeps |v| + h < 2^(B-1) (see
    /// [`ppdnn_gc::activation::folded_rounding`]).
    pub fn rounding_offset(&self) -> u64 {
        self.requant.and_then(|r| rounding_offset(r, self.pool.as_ref(), self.slot_bits)).unwrap_or(0)
    }

    /// Whether the layer is a convolution.
    pub fn is_conv(&self) -> bool {
        matches!(self.linear, Linear::Conv2d { .. })
    }

    /// Positions of a convolution's output map (height * width); outputs of a dense layer.
    pub fn positions(&self) -> usize {
        match self.linear {
            Linear::Conv2d { .. } => self.output.height * self.output.width,
            Linear::Dense { outputs } => outputs,
        }
    }

    /// Output channels of a convolution (outputs of a dense layer).
    pub fn out_channels(&self) -> usize {
        self.output.channels
    }

    /// Weights per output channel.
    pub fn fan_in(&self) -> usize {
        self.linear.fan_in(self.input)
    }

    /// The network layer this plan layer describes.
    pub fn layer(&self) -> Layer {
        Layer {
            name: self.name.clone(),
            linear: self.linear,
            relu: self.relu,
            pool: self.pool,
            shortcut: self
                .shortcut
                .as_ref()
                .map(|s| Shortcut { from: s.from.clone(), projection: s.projection }),
        }
    }

    /// Ciphertexts of the layer's own input (the shortcut's follow them).
    pub fn main_input_ciphertexts(&self) -> usize {
        self.input_ciphertexts - self.shortcut_ciphertexts()
    }

    /// Ciphertexts of the shortcut's source (0 without a shortcut).
    pub fn shortcut_ciphertexts(&self) -> usize {
        shortcut_counts(self)
    }

    /// Position chunks per output channel of a packed convolution.
    pub fn chunks(&self) -> usize {
        self.positions().div_ceil(self.slots)
    }

    /// The slot codec of this layer's ciphertexts.
    pub fn codec(&self, key_bits: u32) -> ppdnn_paillier::Result<SlotCodec> {
        SlotCodec::new(self.slot_bits, self.slots, key_bits)
    }
}

/// The SoftSpokenOT group widths a private plan may state (`ot_group_bits`).
pub const OT_GROUP_BITS: [u32; 2] = [4, 8];

/// A plan as it travels (the JSON of DescribeModel), not yet checked: any
/// field may be anything. [`Plan::check`] (or parsing a [`Plan`]) turns it
/// into a plan that can be used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UncheckedPlan {
    /// Size of n the plan was made for.
    pub key_bits: u32,
    /// Packing mode.
    pub packing: Packing,
    /// Protocol mode (absent in JSON: fast).
    #[serde(default)]
    pub mode: Mode,
    /// Private mode: SoftSpokenOT's k for the session's OT extension, one
    /// of [`OT_GROUP_BITS`] (docs/PROTOCOL.md 7.4; the planner's choice:
    /// [`crate::private::circuits::ot_group_bits_for`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ot_group_bits: Option<u32>,
    /// Private mode: the label-only output's argmax circuit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argmax: Option<CircuitInfo>,
    /// SHA-256 of the model's integer parameters and steps (hex), so a client
    /// can tell which model it is talking to.
    pub model_digest: String,
    /// Input shape: channels, height, width.
    pub input_shape: [usize; 3],
    /// Number of classes (outputs of the last layer).
    pub classes: usize,
    /// Real value of one unit of the integer logits: class probabilities are
    /// softmax(logit_scale * logits).
    pub logit_scale: f64,
    /// The layers, one round each.
    pub layers: Vec<PlanLayer>,
}

/// Statistical security of the private mode, in bits (kappa).
pub const STAT_BITS: u32 = 40;

/// Bits the private mode keeps free above the slots: S B + 96 <= |n|.
/// The MAC tag over up to 64 masked plaintexts, sum alpha_c (M_c + O) with
/// alpha_c below 2^46 and M_c + O below 2^(S B), stays below 2^(S B + 52);
/// its mask beta, uniform below n - 2^(S B + 52), then never lets an honest
/// tag wrap past n (so the server accepts one MAC value, and the verdict
/// reveals no wrap), and leaves the tag within 2^(S B + 53 - |n|) <= 2^-43
/// of uniform whatever the client made the server compute: 2^-40 over the
/// at most 8 tags of an inference. The plaintexts' own masks leave each
/// within 2^(S B + 2 - |n|) <= 2^-94 of uniform.
pub const PRIVATE_HEADROOM: u32 = 96;

/// The most slots of `slot_bits` bits a layer may use in `mode`: in the
/// private mode S B + [`PRIVATE_HEADROOM`] <= |n|.
pub fn max_slots(mode: Mode, key_bits: u32, slot_bits: u32) -> usize {
    match mode {
        Mode::Fast => SlotCodec::max_slots(key_bits, slot_bits),
        Mode::Private => {
            if slot_bits == 0 {
                return 0;
            }
            (key_bits.saturating_sub(PRIVATE_HEADROOM) / slot_bits) as usize
        }
    }
}

/// The rounding constant folded into the slot offset of a layer with
/// `requant` and `pool`, for slots of `slot_bits` bits, if the private mode
/// folds it (a power-of-two multiplier, no average pooling).
pub fn rounding_offset(requant: Requant, pool: Option<&Pool>, slot_bits: u32) -> Option<u64> {
    let averages = pool.is_some_and(|p| p.kind == PoolKind::Average && p.window[0] * p.window[1] > 1);
    let multiplier = u64::try_from(requant.multiplier).ok()?;
    ppdnn_gc::activation::folded_rounding(multiplier, requant.shift, slot_bits, averages)
}

/// Bits of a signed slot that holds any value in [-bound, bound].
pub fn slot_bits_for(bound: i64) -> u32 {
    (64 - bound.max(INPUT_MAX).unsigned_abs().leading_zeros()) + 1
}

/// The plan of one model for one key size and packing mode, checked: its
/// layers chain, its slot layouts fit the key and hold the stated bounds,
/// and its ciphertext counts follow from the layouts. Only
/// [`Plan::check`] (which parsing goes through) makes one, so code that
/// holds a `Plan` need not check it again. Its fields are read through
/// [`UncheckedPlan`]'s, and cannot be changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "UncheckedPlan", into = "UncheckedPlan")]
pub struct Plan(UncheckedPlan);

impl Plan {
    /// Checks a plan ([`UncheckedPlan::validate`]).
    pub fn check(plan: UncheckedPlan) -> Result<Self> {
        plan.validate()?;
        Ok(Plan(plan))
    }

    /// The plan's fields, to change (and check again).
    pub fn into_unchecked(self) -> UncheckedPlan {
        self.0
    }

    /// Parses and checks a plan from JSON.
    pub fn from_json(text: &str) -> Result<Self> {
        let plan: UncheckedPlan =
            serde_json::from_str(text).map_err(|e| Error::Plan(PlanError::NotAPlan(e)))?;
        Plan::check(plan)
    }
}

impl TryFrom<UncheckedPlan> for Plan {
    type Error = Error;
    fn try_from(plan: UncheckedPlan) -> Result<Self> {
        Plan::check(plan)
    }
}

impl From<Plan> for UncheckedPlan {
    fn from(plan: Plan) -> Self {
        plan.0
    }
}

impl std::ops::Deref for Plan {
    type Target = UncheckedPlan;
    fn deref(&self) -> &UncheckedPlan {
        &self.0
    }
}

impl UncheckedPlan {
    /// Checks the plan's internal consistency: layer chaining, slot layouts
    /// that fit the key and hold the stated accumulator bounds, and counts
    /// that follow from the layouts. [`Plan::check`] runs it.
    pub fn validate(&self) -> Result<()> {
        use limits::*;
        if self.layers.is_empty() || self.layers.len() > MAX_LAYERS {
            return Err(PlanError::LayerCount { count: self.layers.len() }.into());
        }
        if !KEY_BITS.contains(&self.key_bits) {
            return Err(PlanError::KeyBits { bits: self.key_bits }.into());
        }
        if self.input_shape.iter().any(|&d| d == 0 || d > MAX_INPUT_DIM) {
            return Err(PlanError::InputDims.into());
        }
        let [c, h, w] = self.input_shape;
        let network = Network::new(Shape::new(c, h, w), self.layers.iter().map(PlanLayer::layer).collect())
            .map_err(PlanError::Network)?;
        for (l, (layer, shapes)) in self.layers.iter().zip(network.shapes()).enumerate() {
            let last = l + 1 == self.layers.len();
            let stated = layer.shortcut.as_ref().map(|s| s.source);
            let factors_ok = layer.shortcut.as_ref().is_none_or(|s| {
                [s.main_factor, s.factor]
                    .iter()
                    .all(|f| (1..=ppdnn_model::quant::MAX_SHORTCUT_FACTOR).contains(f))
            });
            if stated != shapes.shortcut.map(|(_, source)| source) || !factors_ok {
                return Err(layer_error(&layer.name, LayerError::Shortcut));
            }
            self.validate_layer(layer, (shapes.input, shapes.output), last)
                .map_err(|problem| layer_error(&layer.name, problem))?;
        }
        if !(self.logit_scale.is_finite() && self.logit_scale > 0.0) {
            return Err(PlanError::LogitScale.into());
        }
        if self.mode == Mode::Private && self.packing != Packing::Packed {
            return Err(PlanError::PrivateUnpacked.into());
        }
        if (self.mode == Mode::Private) != self.argmax.is_some() {
            return Err(PlanError::ArgmaxPresence.into());
        }
        let k_ok = match self.mode {
            Mode::Private => self.ot_group_bits.is_some_and(|k| OT_GROUP_BITS.contains(&k)),
            Mode::Fast => self.ot_group_bits.is_none(),
        };
        if !k_ok {
            return Err(PlanError::OtGroupBits.into());
        }
        if self.classes != network.classes() {
            return Err(PlanError::Classes { classes: self.classes, outputs: network.classes() }.into());
        }
        Ok(())
    }

    /// Checks one layer against its own shapes (`own`: input, output).
    fn validate_layer(
        &self,
        layer: &PlanLayer,
        (own_in, own_out): (Shape, Shape),
        last: bool,
    ) -> std::result::Result<(), LayerError> {
        use limits::*;
        if (layer.input, layer.output) != (own_in, own_out) {
            return Err(LayerError::Shapes {
                stated_in: layer.input,
                stated_out: layer.output,
                own_in,
                own_out,
            });
        }
        if layer.slots == 0 || layer.slots > self.key_bits as usize {
            return Err(LayerError::Slots { slots: layer.slots });
        }
        if layer.input_ciphertexts > MAX_ROUND_CIPHERTEXTS || layer.output_ciphertexts > MAX_ROUND_CIPHERTEXTS
        {
            return Err(LayerError::TooManyCiphertexts);
        }
        if last != layer.requant.is_none() {
            return Err(LayerError::Requantization);
        }
        if let Some(r) = layer.requant {
            r.validate().map_err(LayerError::BadRequantization)?;
        }
        // The private mode's slot holds v + h besides v.
        let room = match self.mode {
            Mode::Private => layer.accumulator_bound.saturating_add(layer.rounding_offset() as i64),
            Mode::Fast => layer.accumulator_bound,
        };
        if layer.accumulator_bound < 0 || slot_bits_for(room) > layer.slot_bits {
            return Err(LayerError::SlotsTooNarrow {
                slot_bits: layer.slot_bits,
                bound: layer.accumulator_bound,
            });
        }
        SlotCodec::new(layer.slot_bits, layer.slots, self.key_bits).map_err(LayerError::Codec)?;
        if layer.slots > max_slots(self.mode, self.key_bits, layer.slot_bits) {
            return Err(LayerError::TooManySlots(self.mode.name()));
        }
        if layer.circuit.is_some() != (self.mode == Mode::Private && !last) {
            return Err(LayerError::CircuitPresence);
        }
        match self.packing {
            Packing::Packed if layer.slots > layer.positions() => {
                return Err(LayerError::MoreSlotsThanPositions);
            }
            Packing::Unpacked if layer.slots != 1 => return Err(LayerError::UnpackedSlots),
            _ => {}
        }
        let (want_in, want_out) = ciphertext_counts(self.packing, layer);
        if (layer.input_ciphertexts, layer.output_ciphertexts) != (want_in, want_out) {
            return Err(LayerError::Counts {
                stated_in: layer.input_ciphertexts,
                stated_out: layer.output_ciphertexts,
                want_in,
                want_out,
            });
        }
        Ok(())
    }

    /// The layer whose activation layer `l`'s shortcut adds, if it has one
    /// (a checked plan names an earlier layer).
    pub fn shortcut_source(&self, l: usize) -> Option<usize> {
        let from = &self.layers.get(l)?.shortcut.as_ref()?.from;
        self.layers.iter().position(|x| &x.name == from)
    }

    /// Whether a later layer's shortcut adds layer `l`'s activation (so
    /// both sides keep what they hold of it).
    pub fn is_shortcut_source(&self, l: usize) -> bool {
        (0..self.layers.len()).any(|k| self.shortcut_source(k) == Some(l))
    }

    /// Encryptions the client makes for one image (one pool value each).
    pub fn client_encryptions(&self) -> usize {
        self.layers.iter().map(|l| l.input_ciphertexts).sum()
    }

    /// Ciphertexts the server returns for one image (one decryption and one re-randomization each).
    pub fn server_ciphertexts(&self) -> usize {
        self.layers.iter().map(|l| l.output_ciphertexts).sum()
    }

    /// Rounds (one per linear layer).
    pub fn rounds(&self) -> usize {
        self.layers.len()
    }

    /// SHA-256 (hex) of the plan's JSON: covers the layout, the mode and
    /// the private mode's circuit shapes, as well as the model digest.
    pub fn digest(&self) -> String {
        Sha256::digest(self.to_json().as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The plan as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .expect("a plan of strings, numbers and finite floats always serializes")
    }
}

/// The slots of a layer and its ciphertext counts (in, out) in `packing`,
/// with at most `max_slots` slots per ciphertext.
pub(crate) fn layout(packing: Packing, layer: &PlanLayer, max_slots: usize) -> (usize, usize, usize) {
    let slots = match packing {
        Packing::Packed => max_slots.min(layer.positions()),
        Packing::Unpacked => 1,
    };
    let (input, output) = ciphertext_counts(packing, &PlanLayer { slots, ..layer.clone() });
    (slots, input, output)
}

/// The ciphertexts a layer's round carries (in, out), from its slots.
fn ciphertext_counts(packing: Packing, layer: &PlanLayer) -> (usize, usize) {
    let (main, out) = match (packing, layer.linear) {
        (Packing::Packed, Linear::Conv2d { .. }) => {
            (layer.fan_in() * layer.chunks(), layer.out_channels() * layer.chunks())
        }
        (Packing::Packed, Linear::Dense { outputs }) => (layer.input.len(), outputs.div_ceil(layer.slots)),
        (Packing::Unpacked, _) => (layer.input.len(), layer.output.len()),
    };
    (main + shortcut_counts(layer), out)
}

/// The ciphertexts of a layer's shortcut source: one per source channel and
/// chunk of output positions (in the unpacked layout a chunk is one position).
fn shortcut_counts(layer: &PlanLayer) -> usize {
    layer.shortcut.as_ref().map_or(0, |s| s.source.channels * layer.chunks())
}

/// SHA-256 over what the plan shows of a quantized model: its architecture
/// and its requantization steps, not its weights or biases. The private
/// mode keeps the weights secret, and a digest of them would let a client
/// test a candidate model against it; two models that differ only in their
/// weights (with the same steps) share a digest.
pub fn model_digest(model: &QuantModel) -> String {
    let mut h = Sha256::new();
    h.update(b"ppdnn-model-digest-v3");
    h.update(model.network.to_json().as_bytes());
    for layer in &model.layers {
        if let Some(r) = layer.requant {
            h.update(r.multiplier.to_le_bytes());
            h.update(r.shift.to_le_bytes());
        }
        // A shortcut's factors are public like the requantization (the
        // plan states them); sequential models keep their digests.
        if let Some(s) = &layer.shortcut {
            h.update(s.main_factor.to_le_bytes());
            h.update(s.factor.to_le_bytes());
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
