//! Errors of ONNX import and export.

/// What can go wrong reading an ONNX model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not an ONNX model.
    #[error("not an ONNX model: {0}")]
    Decode(String),
    /// A node ppdnn cannot serve, named as in the file.
    #[error("node {node:?} ({op}): {why}")]
    Unsupported {
        /// The node's name (or its operator and index when it has none).
        node: String,
        /// Its operator.
        op: String,
        /// Why it is refused.
        why: String,
    },
    /// The graph is an ONNX model, but not a sequential network ppdnn can read.
    #[error("{0}")]
    Graph(String),
    /// The network read is not a valid ppdnn network.
    #[error(transparent)]
    Model(#[from] ppdnn_model::Error),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
