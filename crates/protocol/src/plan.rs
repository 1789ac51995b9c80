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

use ppdnn_model::network::{Layer, Linear, Network, Pool, Shape};
use ppdnn_model::quant::{QuantModel, Requant};
use ppdnn_paillier::SlotCodec;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Bits of the largest input value (activations are 0..255).
const INPUT_MAX: i64 = 255;

/// Limits on a plan from outside (a client validates the server's plan
/// before allocating anything from it).
pub mod limits {
    /// Most layers (rounds) of a plan.
    pub const MAX_LAYERS: usize = 64;
    /// Most ciphertexts one round may carry in either direction.
    pub const MAX_ROUND_CIPHERTEXTS: usize = 1 << 18;
    /// Key sizes a plan may name.
    pub const KEY_BITS: std::ops::RangeInclusive<u32> = 256..=8192;
    /// Largest side or channel count of the input.
    pub const MAX_INPUT_DIM: usize = 4096;
}

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
    /// step runs in a circuit garbled by the client; the client learns the
    /// logits (or only the label) and nothing else about the model.
    Private,
}

impl Mode {
    /// The mode's name on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Fast => "fast",
            Mode::Private => "private",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fast" => Ok(Mode::Fast),
            "private" => Ok(Mode::Private),
            other => Err(Error::Plan(format!("unknown mode {other:?} (fast or private)"))),
        }
    }
}

/// The garbled circuit that follows a layer in the private mode: what both
/// sides derive from the plan, stated so that a client can check it and
/// size its buffers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitInfo {
    /// Correlated OTs the layer's masks need (one per mask bit: ciphertexts * S * B).
    pub cots: usize,
    /// AND gates of the circuit.
    pub and_gates: usize,
    /// Bytes of the garbled material the client sends for it.
    pub garbled_bytes: usize,
    /// Outputs w the server decodes (the next layer's inputs), or label bits.
    pub outputs: usize,
    /// Independent parts the circuit is garbled in (sent back to back).
    pub parts: usize,
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
}

impl PlanLayer {
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
        Layer { name: self.name.clone(), linear: self.linear, relu: self.relu, pool: self.pool }
    }

    /// Position chunks per output channel of a packed convolution.
    pub fn chunks(&self) -> usize {
        self.positions().div_ceil(self.slots)
    }

    /// The slot codec of this layer's ciphertexts.
    pub fn codec(&self, key_bits: u32) -> Result<SlotCodec> {
        Ok(SlotCodec::new(self.slot_bits, self.slots, key_bits)?)
    }
}

/// The plan of one model for one key size and packing mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Size of n the plan was made for.
    pub key_bits: u32,
    /// Packing mode.
    pub packing: Packing,
    /// Protocol mode (absent in JSON: fast).
    #[serde(default)]
    pub mode: Mode,
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

/// Statistical security of the private mode's masks, in bits (kappa): the
/// mask t above the top slot, and the output masks s of 8 + kappa bits.
pub const STAT_BITS: u32 = 40;

/// The most slots of `slot_bits` bits a layer may use in `mode`: the private
/// mode's masked plaintext Y = M + O + R < 2^(S B + kappa + 1) must stay
/// below n, so S B + kappa + 2 <= |n|.
pub fn max_slots(mode: Mode, key_bits: u32, slot_bits: u32) -> usize {
    match mode {
        Mode::Fast => SlotCodec::max_slots(key_bits, slot_bits),
        Mode::Private => {
            if slot_bits == 0 {
                return 0;
            }
            (key_bits.saturating_sub(STAT_BITS + 2) / slot_bits) as usize
        }
    }
}

/// Bits of a signed slot that holds any value in [-bound, bound].
pub fn slot_bits_for(bound: i64) -> u32 {
    (64 - bound.max(INPUT_MAX).unsigned_abs().leading_zeros()) + 1
}

impl Plan {
    /// Derives the fast mode's plan from a quantized model.
    pub fn new(model: &QuantModel, key_bits: u32, packing: Packing) -> Result<Self> {
        Self::for_mode(model, key_bits, packing, Mode::Fast)
    }

    /// Derives the plan of a mode. The private mode needs the packed layout;
    /// its slots leave room for the statistical mask t above the top slot.
    pub fn for_mode(model: &QuantModel, key_bits: u32, packing: Packing, mode: Mode) -> Result<Self> {
        if mode == Mode::Private && packing != Packing::Packed {
            return Err(Error::Plan("the private mode uses the packed layout only".into()));
        }
        model.validate()?;
        let net = &model.network;
        let mut layers = Vec::with_capacity(model.layers.len());
        for (l, ((q, nl), shapes)) in model.layers.iter().zip(net.layers()).zip(net.shapes()).enumerate() {
            let bound = model.accumulator_bound(l);
            let slot_bits = slot_bits_for(bound);
            if slot_bits > SlotCodec::MAX_SLOT_BITS {
                return Err(Error::Plan(format!(
                    "{}: accumulators up to {bound} do not fit 63-bit slots",
                    nl.name
                )));
            }
            let mut layer = PlanLayer {
                name: nl.name.clone(),
                linear: nl.linear,
                relu: nl.relu,
                pool: nl.pool,
                input: shapes.input,
                output: shapes.output,
                requant: q.requant,
                accumulator_bound: bound,
                slot_bits,
                slots: 1,
                input_ciphertexts: 0,
                output_ciphertexts: 0,
                circuit: None,
            };
            let max_slots = max_slots(mode, key_bits, slot_bits);
            if max_slots == 0 {
                return Err(Error::Plan(format!(
                    "{}: a {key_bits}-bit key cannot hold one slot",
                    layer.name
                )));
            }
            (layer.slots, layer.input_ciphertexts, layer.output_ciphertexts) =
                layout(packing, &layer, max_slots);
            layers.push(layer);
        }
        let classes = net.classes();
        let mut plan = Plan {
            key_bits,
            packing,
            mode,
            argmax: None,
            model_digest: model_digest(model),
            input_shape: [net.input().channels, net.input().height, net.input().width],
            classes,
            logit_scale: model.logit_scale(),
            layers,
        };
        if mode == Mode::Private {
            crate::private::circuits::describe(&mut plan)?;
        }
        plan.validate()?;
        Ok(plan)
    }

    /// Checks the plan's internal consistency: layer chaining, slot layouts
    /// that fit the key and hold the stated accumulator bounds, and counts
    /// that follow from the layouts. A client runs this on a plan it receives.
    pub fn validate(&self) -> Result<()> {
        use limits::*;
        if self.layers.is_empty() || self.layers.len() > MAX_LAYERS {
            return Err(Error::Plan(format!(
                "a plan has 1 to {MAX_LAYERS} layers, not {}",
                self.layers.len()
            )));
        }
        if !KEY_BITS.contains(&self.key_bits) {
            return Err(Error::Plan(format!("key size {} is outside {KEY_BITS:?}", self.key_bits)));
        }
        if self.input_shape.iter().any(|&d| d == 0 || d > MAX_INPUT_DIM) {
            return Err(Error::Plan(format!("input dimensions must be 1 to {MAX_INPUT_DIM}")));
        }
        let [c, h, w] = self.input_shape;
        let network = Network::new(Shape::new(c, h, w), self.layers.iter().map(PlanLayer::layer).collect())
            .map_err(|e| Error::Plan(e.to_string()))?;
        for (l, (layer, shapes)) in self.layers.iter().zip(network.shapes()).enumerate() {
            let name = &layer.name;
            if (layer.input, layer.output) != (shapes.input, shapes.output) {
                return Err(Error::Plan(format!(
                    "{name}: the stated shapes {:?} -> {:?} are not the layer's own ({:?} -> {:?})",
                    layer.input, layer.output, shapes.input, shapes.output
                )));
            }
            if layer.slots == 0 || layer.slots > self.key_bits as usize {
                return Err(Error::Plan(format!("{name}: {} slots per ciphertext", layer.slots)));
            }
            if layer.input_ciphertexts > MAX_ROUND_CIPHERTEXTS
                || layer.output_ciphertexts > MAX_ROUND_CIPHERTEXTS
            {
                return Err(Error::Plan(format!(
                    "{name}: more than {MAX_ROUND_CIPHERTEXTS} ciphertexts in a round"
                )));
            }
            let last = l + 1 == self.layers.len();
            if last != layer.requant.is_none() {
                return Err(Error::Plan(format!("{name}: only the last layer goes without requantization")));
            }
            if let Some(r) = layer.requant {
                r.validate().map_err(|e| Error::Plan(format!("{name}: {e}")))?;
            }
            if layer.accumulator_bound < 0 || slot_bits_for(layer.accumulator_bound) > layer.slot_bits {
                return Err(Error::Plan(format!(
                    "{name}: {}-bit slots cannot hold accumulators up to {}",
                    layer.slot_bits, layer.accumulator_bound
                )));
            }
            layer.codec(self.key_bits).map_err(|e| Error::Plan(format!("{name}: {e}")))?;
            if layer.slots > max_slots(self.mode, self.key_bits, layer.slot_bits) {
                return Err(Error::Plan(format!("{name}: too many slots for the {} mode", self.mode.name())));
            }
            if layer.circuit.is_some() != (self.mode == Mode::Private && !last) {
                return Err(Error::Plan(format!(
                    "{name}: the private mode describes a circuit after every layer but the last, the fast mode none"
                )));
            }
            match self.packing {
                Packing::Packed if layer.slots > layer.positions() => {
                    return Err(Error::Plan(format!("{name}: more slots than positions")));
                }
                Packing::Unpacked if layer.slots != 1 => {
                    return Err(Error::Plan(format!("{name}: unpacked layers have one slot")));
                }
                _ => {}
            }
            let (want_in, want_out) = ciphertext_counts(self.packing, layer);
            if (layer.input_ciphertexts, layer.output_ciphertexts) != (want_in, want_out) {
                return Err(Error::Plan(format!(
                    "{name}: ciphertext counts {}/{} do not follow from the layout ({want_in}/{want_out})",
                    layer.input_ciphertexts, layer.output_ciphertexts
                )));
            }
        }
        if !(self.logit_scale.is_finite() && self.logit_scale > 0.0) {
            return Err(Error::Plan("logit_scale must be a positive number".into()));
        }
        if self.mode == Mode::Private && self.packing != Packing::Packed {
            return Err(Error::Plan("the private mode uses the packed layout only".into()));
        }
        if (self.mode == Mode::Private) != self.argmax.is_some() {
            return Err(Error::Plan("the argmax circuit belongs to the private mode only".into()));
        }
        if self.classes != network.classes() {
            return Err(Error::Plan(format!(
                "{} classes but the last layer has {} outputs",
                self.classes,
                network.classes()
            )));
        }
        Ok(())
    }

    /// Checks that this plan is exactly the one the server's model gives.
    pub fn check_against(&self, model: &QuantModel) -> Result<()> {
        let own = Plan::for_mode(model, self.key_bits, self.packing, self.mode)?;
        if own != *self {
            return Err(Error::Plan(
                "the plan does not match the model (bounds, layout or digest differ)".into(),
            ));
        }
        Ok(())
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

    /// Parses and validates a plan from JSON.
    pub fn from_json(text: &str) -> Result<Self> {
        let plan: Plan = serde_json::from_str(text).map_err(|e| Error::Plan(format!("not a plan: {e}")))?;
        plan.validate()?;
        Ok(plan)
    }
}

/// The slots of a layer and its ciphertext counts (in, out) in `packing`,
/// with at most `max_slots` slots per ciphertext.
fn layout(packing: Packing, layer: &PlanLayer, max_slots: usize) -> (usize, usize, usize) {
    let slots = match packing {
        Packing::Packed => max_slots.min(layer.positions()),
        Packing::Unpacked => 1,
    };
    let (input, output) = ciphertext_counts(packing, &PlanLayer { slots, ..layer.clone() });
    (slots, input, output)
}

/// The ciphertexts a layer's round carries (in, out), from its slots.
fn ciphertext_counts(packing: Packing, layer: &PlanLayer) -> (usize, usize) {
    match (packing, layer.linear) {
        (Packing::Packed, Linear::Conv2d { .. }) => {
            (layer.fan_in() * layer.chunks(), layer.out_channels() * layer.chunks())
        }
        (Packing::Packed, Linear::Dense { outputs }) => (layer.input.len(), outputs.div_ceil(layer.slots)),
        (Packing::Unpacked, _) => (layer.input.len(), layer.output.len()),
    }
}

/// SHA-256 over the architecture and the integer weights, biases and steps
/// of a quantized model.
pub fn model_digest(model: &QuantModel) -> String {
    let mut h = Sha256::new();
    h.update(b"ppdnn-model-digest-v2");
    h.update(model.network.to_json().as_bytes());
    for layer in &model.layers {
        for w in &layer.weight {
            h.update(w.to_le_bytes());
        }
        for b in &layer.bias {
            h.update(b.to_le_bytes());
        }
        if let Some(r) = layer.requant {
            h.update(r.multiplier.to_le_bytes());
            h.update(r.shift.to_le_bytes());
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
