//! The protocol's error types: what went wrong, in variants with fields;
//! the messages come from `Display` and name the round, the layer and the
//! values concerned.

use ppdnn_model::network::Shape;
use thiserror::Error;

use crate::limits::{KEY_BITS, MAX_INPUT_DIM, MAX_LAYERS, MAX_ROUND_CIPHERTEXTS};

/// What can go wrong in a protocol session.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A message that does not fit the plan: wrong round, count or size, or
    /// contents that the protocol rules out.
    #[error("round {round}: {problem}")]
    Message {
        /// The round concerned.
        round: usize,
        /// What is wrong with the message.
        problem: MessageError,
    },
    /// A plan that is inconsistent, or does not match the model or key.
    #[error("plan: {0}")]
    Plan(#[from] PlanError),
    /// A session used out of order, or given the wrong input.
    #[error("session: {0}")]
    State(#[from] StateError),
    /// A name that is none of a closed set's (a mode, an output).
    #[error("unknown {what} {given:?} ({expected})")]
    UnknownName {
        /// What was being named ("mode").
        what: &'static str,
        /// The name given.
        given: String,
        /// The names there are.
        expected: String,
    },
    /// A cryptographic failure (invalid key or ciphertext).
    #[error(transparent)]
    Crypto(#[from] ppdnn_paillier::Error),
    /// A model-side failure.
    #[error(transparent)]
    Model(#[from] ppdnn_model::Error),
    /// A state that cannot happen: a bug, not the peer's fault.
    #[error("internal error: {0}")]
    Internal(#[from] InternalError),
    /// The private mode's one verdict: some check of the client's messages
    /// failed (the OT consistency check, a MAC, the zero test). Which one is
    /// never said: after a deviation, which check fails can depend on the
    /// weights.
    #[error("{ABORTED}")]
    Aborted,
}

/// The message of [`Error::Aborted`], the same whatever failed.
pub const ABORTED: &str = "private session aborted: the client's messages failed the server's checks";

impl Error {
    /// Whether the error is this side's own fault (a bug or a failing OS
    /// service) rather than something wrong with what the peer sent.
    pub fn is_internal(&self) -> bool {
        matches!(self, Error::Internal(_) | Error::Crypto(ppdnn_paillier::Error::Random(_)))
    }
}

/// What is wrong with a round message.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MessageError {
    /// Material of the wrong size.
    #[error("{got} bytes of material where {expected} are expected")]
    MaterialSize {
        /// Bytes received.
        got: usize,
        /// Bytes the plan fixes.
        expected: usize,
    },
    /// A message for another round.
    #[error("a message for round {got} arrived where round {expected} was expected")]
    WrongRound {
        /// The round the message names.
        got: usize,
        /// The round in progress.
        expected: usize,
    },
    /// Ciphertext bytes that do not divide into ciphertexts.
    #[error("{bytes} bytes is not a whole number of {width}-byte ciphertexts")]
    Ragged {
        /// Bytes received.
        bytes: usize,
        /// Bytes of one ciphertext.
        width: usize,
    },
    /// The wrong number of ciphertexts.
    #[error("{got} ciphertexts where the plan says {expected}")]
    CiphertextCount {
        /// Ciphertexts received.
        got: usize,
        /// Ciphertexts the plan fixes.
        expected: usize,
    },
    /// A ciphertext that is not valid under the key.
    #[error(transparent)]
    Ciphertext(ppdnn_paillier::BadCiphertext),
    /// A decrypted value beyond the plan's worst case: not the plan's computation.
    #[error("{what} {index} is {value}, beyond the plan's bound {bound}")]
    OutOfBound {
        /// "accumulator" or "logit".
        what: &'static str,
        /// Its index.
        index: usize,
        /// Its value.
        value: i64,
        /// The plan's bound.
        bound: i64,
    },
    /// Decrypted outputs that do not decode in the plan's layout.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The private mode's setup of the wrong size.
    #[error("the setup has {got} bytes of material, not {expected}")]
    SetupSize {
        /// Bytes received.
        got: usize,
        /// Bytes expected.
        expected: usize,
    },
    /// A base-OT message that does not verify or decode.
    #[error("base OT: {0}")]
    BaseOt(ppdnn_gc::Error),
    /// A base-OT answer that does not verify or decode.
    #[error("base-OT answer: {0}")]
    BaseOtAnswer(ppdnn_gc::Error),
    /// An OT-extension message that does not decode.
    #[error("OT extension: {0}")]
    OtExtension(ppdnn_gc::Error),
    /// Garbled material of the wrong size.
    #[error("{got} bytes of garbled circuit where {expected} are expected")]
    GarbledSize {
        /// Bytes received.
        got: usize,
        /// Bytes the plan's circuits take.
        expected: usize,
    },
    /// A part of a garbled circuit that does not decode or evaluate.
    #[error("garbled circuit, part {part}: {source}")]
    GarbledPart {
        /// The part's index.
        part: usize,
        /// What failed.
        source: ppdnn_gc::Error,
    },
    /// A garbled argmax that does not decode or evaluate.
    #[error("garbled argmax: {0}")]
    GarbledArgmax(ppdnn_gc::Error),
    /// Ciphertexts in the label round, which carries labels only.
    #[error("the label round carries no ciphertexts")]
    LabelRoundCiphertexts,
    /// Output labels that do not decode.
    #[error("{0}")]
    OutputLabels(ppdnn_gc::Error),
    /// A label that is not one of the plan's classes.
    #[error("label {label} is not a class")]
    NotAClass {
        /// The decoded label.
        label: usize,
    },
    /// A field of the private mode's material outside its range.
    #[error("{what} is out of range")]
    FieldRange {
        /// The field.
        what: &'static str,
    },
}

/// Decrypted outputs that do not decode in the plan's layout.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OutputError {
    /// An unpacked output beyond 64 bits.
    #[error("output {index} does not fit 64 bits")]
    TooWide {
        /// The output's index.
        index: usize,
    },
    /// A packed output whose slots do not decode.
    #[error("output ciphertext {ciphertext}: {source}")]
    Slots {
        /// The ciphertext's index.
        ciphertext: usize,
        /// The codec's verdict.
        source: ppdnn_paillier::Error,
    },
    /// A slot past the layer's outputs that is not zero.
    #[error("output ciphertext {ciphertext}: unused slot {slot} holds {value}")]
    UnusedSlot {
        /// The ciphertext's index.
        ciphertext: usize,
        /// The slot.
        slot: usize,
        /// What it holds.
        value: i64,
    },
    /// The layer's slot codec cannot be built for the key.
    #[error(transparent)]
    Codec(ppdnn_paillier::Error),
}

/// What is wrong with a plan.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PlanError {
    /// Text that does not parse as a plan.
    #[error("not a plan: {0}")]
    NotAPlan(#[source] serde_json::Error),
    /// Too few or too many layers.
    #[error("a plan has 1 to {MAX_LAYERS} layers, not {count}")]
    LayerCount {
        /// Layers in the plan.
        count: usize,
    },
    /// A key size outside what plans may name.
    #[error("key size {bits} is outside {KEY_BITS:?}")]
    KeyBits {
        /// The plan's key size.
        bits: u32,
    },
    /// An empty or oversized input dimension.
    #[error("input dimensions must be 1 to {MAX_INPUT_DIM}")]
    InputDims,
    /// Layers that do not form a network.
    #[error("{0}")]
    Network(#[source] ppdnn_model::Error),
    /// One layer is inconsistent.
    #[error("{layer}: {problem}")]
    Layer {
        /// The layer's name.
        layer: String,
        /// What is wrong with it.
        problem: Box<LayerError>,
    },
    /// A logit scale that is not a positive number.
    #[error("logit_scale must be a positive number")]
    LogitScale,
    /// The private mode with the unpacked layout.
    #[error("the private mode uses the packed layout only")]
    PrivateUnpacked,
    /// An argmax circuit on a fast plan, or none on a private one.
    #[error("the argmax circuit belongs to the private mode only")]
    ArgmaxPresence,
    /// A private plan without SoftSpokenOT's k (4 or 8), or a fast plan with one.
    #[error("ot_group_bits must be 4 or 8 in a private plan, and absent in a fast one")]
    OtGroupBits,
    /// An argmax circuit whose stated shape is not the plan's own.
    #[error("the stated argmax circuit shape is not the plan's own")]
    ArgmaxShape,
    /// A class count that is not the last layer's.
    #[error("{classes} classes but the last layer has {outputs} outputs")]
    Classes {
        /// The stated classes.
        classes: usize,
        /// The last layer's outputs.
        outputs: usize,
    },
    /// A plan that is not exactly the server model's own.
    #[error("the plan does not match the model (bounds, layout or digest differ)")]
    ModelMismatch,
    /// A private session or circuits for a plan of another mode.
    #[error("the plan is not for the {0} mode")]
    WrongMode(&'static str),
    /// The last layer's layout cannot hold its outputs.
    #[error("the last layer's layout does not hold its outputs")]
    LastLayout,
    /// A key of another size than the plan's.
    #[error("the plan is for {plan}-bit keys but the key has {key} bits")]
    KeySize {
        /// The plan's key size.
        plan: u32,
        /// The key's.
        key: u32,
    },
    /// The model is not served in a mode here.
    #[error("this model is not served in the {0} mode here")]
    ModeNotServed(&'static str),
}

/// What is wrong with one layer of a plan.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LayerError {
    /// A shortcut's stated source shape or factors that are not the network's.
    #[error("its shortcut's source shape or factors are not the network's (factors 1 to 2^24)")]
    Shortcut,
    /// Accumulators too large for any slot.
    #[error("accumulators up to {bound} do not fit 63-bit slots")]
    AccumulatorTooWide {
        /// The accumulators' bound.
        bound: i64,
    },
    /// A key too small for one slot.
    #[error("a {key_bits}-bit key cannot hold one slot")]
    NoSlot {
        /// The key size.
        key_bits: u32,
    },
    /// Stated shapes that are not the layer's own.
    #[error(
        "the stated shapes {stated_in:?} -> {stated_out:?} are not the layer's own ({own_in:?} -> {own_out:?})"
    )]
    Shapes {
        /// Stated input shape.
        stated_in: Shape,
        /// Stated output shape.
        stated_out: Shape,
        /// The layer's own input shape.
        own_in: Shape,
        /// The layer's own output shape.
        own_out: Shape,
    },
    /// No slots, or more than a key has bits.
    #[error("{slots} slots per ciphertext")]
    Slots {
        /// The stated slots.
        slots: usize,
    },
    /// A round beyond the limit of ciphertexts.
    #[error("more than {MAX_ROUND_CIPHERTEXTS} ciphertexts in a round")]
    TooManyCiphertexts,
    /// A requantization on the last layer, or none on another.
    #[error("only the last layer goes without requantization")]
    Requantization,
    /// A requantization that is not valid.
    #[error("{0}")]
    BadRequantization(#[source] ppdnn_model::Error),
    /// Slots too narrow for the stated bound.
    #[error("{slot_bits}-bit slots cannot hold accumulators up to {bound}")]
    SlotsTooNarrow {
        /// The slot width.
        slot_bits: u32,
        /// The accumulators' bound.
        bound: i64,
    },
    /// A slot layout that does not fit the key.
    #[error("{0}")]
    Codec(#[source] ppdnn_paillier::Error),
    /// More slots than the mode allows.
    #[error("too many slots for the {0} mode")]
    TooManySlots(&'static str),
    /// A circuit where the mode has none, or none where it has one.
    #[error("the private mode describes a circuit after every layer but the last, the fast mode none")]
    CircuitPresence,
    /// A circuit whose stated shape is not the plan's own.
    #[error("the stated circuit shape is not the plan's own")]
    CircuitShape,
    /// More slots than positions.
    #[error("more slots than positions")]
    MoreSlotsThanPositions,
    /// An unpacked layer with several slots.
    #[error("unpacked layers have one slot")]
    UnpackedSlots,
    /// Ciphertext counts that do not follow from the layout.
    #[error(
        "ciphertext counts {stated_in}/{stated_out} do not follow from the layout ({want_in}/{want_out})"
    )]
    Counts {
        /// Stated input ciphertexts.
        stated_in: usize,
        /// Stated output ciphertexts.
        stated_out: usize,
        /// Input ciphertexts of the layout.
        want_in: usize,
        /// Output ciphertexts of the layout.
        want_out: usize,
    },
    /// A pooling window across two parts of a circuit.
    #[error("a pooling window crosses part {part}'s ciphertexts")]
    PoolCrossesPart {
        /// The part.
        part: usize,
    },
}

/// A session used out of order, or given the wrong input.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StateError {
    /// `start` called twice.
    #[error("the session has already started")]
    AlreadyStarted,
    /// An input of the wrong size.
    #[error("the input has {got} values, the model takes {expected}")]
    InputSize {
        /// Values given.
        got: usize,
        /// Values the model takes.
        expected: usize,
    },
    /// A layer's inputs of the wrong size.
    #[error("{layer}: {got} inputs, expected {expected}")]
    LayerInputs {
        /// The layer.
        layer: String,
        /// Values given.
        got: usize,
        /// Values the layer takes.
        expected: usize,
    },
    /// An answer with no round in progress.
    #[error("no round is in progress")]
    NoRound,
    /// A step before `start`.
    #[error("start() was not called")]
    NotStarted,
    /// A step before the base OTs.
    #[error("the base OTs are not done")]
    OtNotDone,
    /// A message after the last round.
    #[error("all {done} rounds are done; round {got} is one too many")]
    Finished {
        /// Rounds served.
        done: usize,
        /// The round the message names.
        got: usize,
    },
    /// A randomness pool of another key.
    #[error("the randomness pool belongs to another key")]
    OtherKeysPool,
    /// A message after a round failed: the session is over.
    #[error("an earlier round failed: the session is over")]
    Failed,
}

/// A state that cannot happen: a bug of this side, not the peer's fault.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum InternalError {
    /// The randomness pool gave no value for a blinding factor.
    #[error("no blinding factor from the randomness pool")]
    Blinding,
    /// A layer with a shortcut whose parameters or ciphertexts do not match its plan.
    #[error("{0}: the shortcut's parameters or ciphertexts do not match the plan")]
    Shortcut(String),
    /// A layer computed another number of outputs than its plan says.
    #[error("{layer}: {got} outputs where the plan says {expected}")]
    OutputCount {
        /// The layer.
        layer: String,
        /// Outputs computed.
        got: usize,
        /// Outputs in the plan.
        expected: usize,
    },
    /// A convolution's routine called on a dense layer.
    #[error("a convolution routine on the dense layer {0}")]
    NotConvolution(String),
    /// No circuit where the plan has one.
    #[error("no circuit after layer {0}")]
    NoCircuit(usize),
    /// No requantization where a circuit needs one.
    #[error("{0}: no requantization to garble")]
    NoRequantization(String),
    /// A circuit that would fold a different rounding constant from the one
    /// the layer's offset carries.
    #[error("{0}: the circuit and the slot offset disagree on the rounding")]
    RoundingMismatch(String),
    /// Values to pack that are not a layer's inputs.
    #[error("{layer}: {got} values to pack")]
    PackCount {
        /// The layer.
        layer: String,
        /// Values given.
        got: usize,
    },
    /// The base OTs finished twice.
    #[error("the base OTs are already done")]
    OtDone,
    /// A re-randomized ciphertext that is not valid (cannot happen for a unit r^n).
    #[error("re-randomizing: {0}")]
    Rerandomize(#[source] ppdnn_paillier::Error),
    /// The two-party computation's own failure (randomness, tweaks).
    #[error("two-party computation: {0}")]
    TwoParty(#[source] ppdnn_gc::Error),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// A message error in `round`.
pub(crate) fn msg(round: usize, problem: impl Into<MessageError>) -> Error {
    Error::Message { round, problem: problem.into() }
}

/// An error in one layer of a plan.
pub(crate) fn layer_error(layer: &str, problem: LayerError) -> Error {
    Error::Plan(PlanError::Layer { layer: layer.to_string(), problem: Box::new(problem) })
}

/// The two-party computation's own failure, as an internal error.
pub(crate) fn gc_internal(e: ppdnn_gc::Error) -> Error {
    Error::Internal(InternalError::TwoParty(e))
}
