//! The protocol's error type.

use thiserror::Error;

/// What can go wrong in a protocol session. Messages name the round and the problem.
#[derive(Debug, Error)]
pub enum Error {
    /// A message that does not fit the plan: wrong round, count or size.
    #[error("round {round}: {message}")]
    Message {
        /// The round (layer index) concerned.
        round: usize,
        /// What is wrong.
        message: String,
    },
    /// A plan that is inconsistent, or does not match the model or key.
    #[error("plan: {0}")]
    Plan(String),
    /// A session used out of order (e.g. a message after the last round).
    #[error("session: {0}")]
    State(String),
    /// A cryptographic failure (invalid key or ciphertext).
    #[error(transparent)]
    Crypto(#[from] ppdnn_paillier::Error),
    /// A model-side failure.
    #[error(transparent)]
    Model(#[from] ppdnn_model::Error),
    /// A state that cannot happen: a bug, not the peer's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Whether the error is this side's own fault (a bug or a failing OS
    /// service) rather than something wrong with what the peer sent.
    pub fn is_internal(&self) -> bool {
        matches!(self, Error::Internal(_) | Error::Crypto(ppdnn_paillier::Error::Random(_)))
    }
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn msg(round: usize, message: impl Into<String>) -> Error {
    Error::Message { round, message: message.into() }
}
