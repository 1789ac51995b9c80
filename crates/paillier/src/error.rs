//! The one error type of the crate.

use thiserror::Error;

/// Everything that can go wrong in this crate. Each variant names what is
/// wrong, so a message can be shown to a user as it is.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// A public key failed validation.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(String),
    /// A private key failed validation (inconsistent p, q and n, or not prime).
    #[error("invalid private key: {0}")]
    InvalidPrivateKey(String),
    /// A key size outside what is supported or allowed by the policy.
    #[error("unsupported key size: {bits} bits ({policy})")]
    KeySize {
        /// The size that was asked for or found.
        bits: u32,
        /// The policy that refused it.
        policy: crate::keys::KeyPolicy,
    },
    /// A ciphertext that is not a valid element of Z*_{n^2}.
    #[error("invalid ciphertext: {0}")]
    InvalidCiphertext(String),
    /// A plaintext outside the centred range (-n/2, n/2].
    #[error("plaintext out of range: {0}")]
    PlaintextRange(String),
    /// A slot value that does not fit its slot, or a slot layout that does not fit the key.
    #[error("slot overflow: {0}")]
    SlotOverflow(String),
    /// A slot layout that cannot exist.
    #[error("invalid slot layout: {0}")]
    SlotLayout(String),
    /// A malformed key file or encoded number.
    #[error("format error: {0}")]
    Format(String),
    /// Mismatched lengths of inputs that must agree (bases and weights, for instance).
    #[error("length mismatch: {0}")]
    Length(String),
    /// An I/O failure reading or writing a key file.
    #[error("{path}: {message}")]
    Io {
        /// The file concerned.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// An arithmetic backend that cannot run here, or an unknown name for one.
    #[error("arithmetic backend: {0}")]
    Backend(String),
    /// The operating system's random number generator failed.
    #[error("the OS random number generator failed: {0}")]
    Random(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
