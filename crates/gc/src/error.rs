//! The crate's error types: one [`Error`] whose variants say what went
//! wrong, with the values concerned as fields; the messages come from
//! `Display`.

use std::fmt;

use thiserror::Error;

/// What can go wrong. Every malformed message from the other party is an
/// error naming what is wrong, never a panic.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A message of the wrong size.
    #[error("{what}: {got} bytes where {expected} were expected")]
    Length {
        /// Which message or field.
        what: Item,
        /// The size it must have.
        expected: usize,
        /// The size it had.
        got: usize,
    },
    /// A count that does not match the circuit or the protocol state.
    #[error("{0}")]
    Count(#[from] CountError),
    /// A point that is not a valid Ristretto encoding.
    #[error("base OT: {0}")]
    Point(#[from] PointError),
    /// Steps taken out of order, or values the session's state rules out.
    #[error("protocol state: {0}")]
    State(#[from] StateError),
    /// The operating system's random number generator failed. (Not a
    /// `#[source]`: getrandom implements `std::error::Error` only with its
    /// `std` feature, which this crate does not enable.)
    #[error("the OS random number generator failed: {0}")]
    Random(getrandom::Error),
}

impl From<getrandom::Error> for Error {
    fn from(e: getrandom::Error) -> Self {
        Error::Random(e)
    }
}

/// What a length, count or point error is about: a message, or the values
/// given for a circuit's inputs or outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Item {
    /// A garbled circuit's wire form as a whole.
    GarbledCircuit,
    /// The garbled tables of a garbled circuit.
    GarbledTables,
    /// The decode bits of a garbled circuit.
    DecodeBits,
    /// The blocks of a garbled circuit's tables, as counted by the circuit.
    TableBlocks,
    /// An OT-extension message (its correction columns).
    OtExtension,
    /// The OT extension's tree message (the GGM level sums).
    OtTrees,
    /// The receiver's answer to the KOS consistency check.
    KosResponse,
    /// OT choice bits (derandomization of random OTs).
    OtChoices,
    /// The base-OT sender's message (its point A).
    BaseOtSenderMessage,
    /// The base-OT receiver's message (its points B).
    BaseOtReceiverMessage,
    /// One point of the base-OT receiver's message.
    BaseOtPoint {
        /// The point's index in the message.
        index: usize,
    },
    /// The garbler's input bits.
    GarblerInputBits,
    /// The evaluator's input bits.
    EvaluatorInputBits,
    /// The zero-labels of the evaluator's inputs.
    EvaluatorInputLabels,
    /// The evaluator's input labels.
    EvaluatorLabels,
    /// Output labels.
    OutputLabels,
    /// The zero-labels of the outputs.
    OutputZeroLabels,
    /// A message named by the caller of [`blocks_from_bytes`](crate::blocks_from_bytes)
    /// with a name of its own (a literal: e.g. "output labels").
    Named(&'static str),
}

/// The caller's own name for a message, for [`blocks_from_bytes`](crate::blocks_from_bytes).
impl From<&'static str> for Item {
    fn from(name: &'static str) -> Self {
        Item::Named(name)
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Item::GarbledCircuit => "garbled circuit",
            Item::GarbledTables => "garbled tables",
            Item::DecodeBits => "decode bits",
            Item::TableBlocks => "table blocks",
            Item::OtExtension => "OT extension message",
            Item::OtTrees => "OT extension tree message",
            Item::KosResponse => "OT consistency answer",
            Item::OtChoices => "OT choice bits",
            Item::BaseOtSenderMessage => "base OT sender message",
            Item::BaseOtReceiverMessage => "base OT receiver message",
            Item::BaseOtPoint { index } => return write!(f, "base OT point {index}"),
            Item::GarblerInputBits => "garbler input bits",
            Item::EvaluatorInputBits => "evaluator input bits",
            Item::EvaluatorInputLabels => "evaluator input labels",
            Item::EvaluatorLabels => "evaluator labels",
            Item::OutputLabels => "output labels",
            Item::OutputZeroLabels => "output zero-labels",
            Item::Named(name) => name,
        };
        f.write_str(name)
    }
}

/// A count that does not match the circuit.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CountError {
    /// Values given for a circuit's inputs or outputs, in the wrong number.
    #[error("{got} {what} where the circuit takes {expected}")]
    Mismatch {
        /// What was counted.
        what: Item,
        /// How many there were.
        got: usize,
        /// How many the circuit takes.
        expected: usize,
    },
    /// Packed bits whose unused high bits are not zero.
    #[error("{what}: padding bits are not zero")]
    Padding {
        /// The bits concerned.
        what: Item,
    },
}

/// A base-OT point that is refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PointError {
    /// Bytes that are not the encoding of a Ristretto point.
    #[error("{point} is not a valid Ristretto point")]
    Invalid {
        /// Which point.
        point: Item,
    },
    /// The identity point, which the protocol refuses.
    #[error("{point} is the identity")]
    Identity {
        /// Which point.
        point: Item,
    },
}

/// A step out of order, or a value the session's state rules out.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateError {
    /// A correlated-OT Delta whose least significant bit is 0.
    #[error("Delta must have lsb 1")]
    OtDeltaLsb,
    /// An OT extension before the sender has read the tree message.
    #[error("OT extension before the tree message")]
    OtNotPunctured,
    /// A second tree message (the base-OT keys are wiped after the first).
    #[error("a second OT tree message")]
    OtTreesTwice,
    /// A garbling Delta whose least significant bit is 0 (point and permute
    /// needs it to be 1).
    #[error("Delta must have lsb 1 (point and permute)")]
    GarblingDeltaLsb,
    /// A move of the tweak counter backwards.
    #[error("tweak {tweak} is behind the session's {current}")]
    TweakBehind {
        /// The tweak asked for.
        tweak: u64,
        /// The session's next tweak.
        current: u64,
    },
    /// An output label that is neither of its wire's two labels.
    #[error("output label {output} is not a label of that wire")]
    NotALabel {
        /// The output's index.
        output: usize,
    },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages are those of the string-carrying variants they replace.
    #[test]
    fn messages() {
        let cases: Vec<(Error, &str)> = vec![
            (
                Error::Length { what: Item::GarbledCircuit, expected: 10, got: 9 },
                "garbled circuit: 9 bytes where 10 were expected",
            ),
            (
                Error::Length { what: Item::BaseOtPoint { index: 3 }, expected: 32, got: 31 },
                "base OT point 3: 31 bytes where 32 were expected",
            ),
            (
                CountError::Mismatch { what: Item::OutputZeroLabels, got: 2, expected: 3 }.into(),
                "2 output zero-labels where the circuit takes 3",
            ),
            (CountError::Padding { what: Item::DecodeBits }.into(), "decode bits: padding bits are not zero"),
            (
                PointError::Invalid { point: Item::BaseOtSenderMessage }.into(),
                "base OT: base OT sender message is not a valid Ristretto point",
            ),
            (
                PointError::Identity { point: Item::BaseOtPoint { index: 1 } }.into(),
                "base OT: base OT point 1 is the identity",
            ),
            (StateError::OtDeltaLsb.into(), "protocol state: Delta must have lsb 1"),
            (
                StateError::GarblingDeltaLsb.into(),
                "protocol state: Delta must have lsb 1 (point and permute)",
            ),
            (
                StateError::TweakBehind { tweak: 4, current: 7 }.into(),
                "protocol state: tweak 4 is behind the session's 7",
            ),
            (
                StateError::NotALabel { output: 5 }.into(),
                "protocol state: output label 5 is not a label of that wire",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
        let all = [
            (Item::GarbledTables, "garbled tables"),
            (Item::TableBlocks, "table blocks"),
            (Item::OtExtension, "OT extension message"),
            (Item::OtTrees, "OT extension tree message"),
            (Item::BaseOtReceiverMessage, "base OT receiver message"),
            (Item::GarblerInputBits, "garbler input bits"),
            (Item::EvaluatorInputBits, "evaluator input bits"),
            (Item::EvaluatorInputLabels, "evaluator input labels"),
            (Item::EvaluatorLabels, "evaluator labels"),
            (Item::OutputLabels, "output labels"),
            (Item::from("IKNP answer"), "IKNP answer"),
        ];
        for (item, want) in all {
            assert_eq!(item.to_string(), want);
        }
        let os = getrandom::Error::UNSUPPORTED;
        assert_eq!(Error::from(os).to_string(), format!("the OS random number generator failed: {os}"));
    }
}
