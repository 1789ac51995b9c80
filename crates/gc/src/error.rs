//! The crate's error type.

use thiserror::Error;

/// What can go wrong. Every malformed message from the other party is an
/// error naming what is wrong, never a panic.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// A message of the wrong size.
    #[error("{what}: {got} bytes where {expected} were expected")]
    Length {
        /// Which message or field.
        what: String,
        /// The size it must have.
        expected: usize,
        /// The size it had.
        got: usize,
    },
    /// A count that does not match the circuit or the protocol state.
    #[error("{0}")]
    Count(String),
    /// A point that is not a valid Ristretto encoding.
    #[error("base OT: {0}")]
    Point(String),
    /// Steps taken out of order (e.g. extending OT before the base OTs).
    #[error("protocol state: {0}")]
    State(String),
    /// A circuit built inconsistently (a wire that does not exist).
    #[error("circuit: {0}")]
    Circuit(String),
    /// The operating system's random number generator failed.
    #[error("the OS random number generator failed: {0}")]
    Random(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
