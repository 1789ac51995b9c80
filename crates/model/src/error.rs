//! The model crate's error type.

use thiserror::Error;

/// Everything that can go wrong reading data or models, quantizing or evaluating.
#[derive(Debug, Error)]
pub enum Error {
    /// An I/O failure on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A malformed IDX file.
    #[error("{path}: {message}")]
    Idx {
        /// The file concerned.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// A data set that cannot be found or does not hold together.
    #[error("{0}")]
    Dataset(String),
    /// An image that cannot be read.
    #[error("{path}: {message}")]
    Image {
        /// The file concerned.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// A model file that is malformed or does not match the architecture.
    #[error("model: {0}")]
    Model(String),
    /// An input of the wrong shape or range.
    #[error("input: {0}")]
    Input(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_error(path: &std::path::Path, source: std::io::Error) -> Error {
    Error::Io { path: path.display().to_string(), source }
}
