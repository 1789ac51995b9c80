//! Tensor shapes: channels x height x width.

use serde::{Deserialize, Serialize};

/// A tensor shape: channels x height x width (a vector is C x 1 x 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// Channels.
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl Shape {
    /// A channels x height x width shape.
    pub const fn new(channels: usize, height: usize, width: usize) -> Self {
        Shape { channels, height, width }
    }

    /// A flat vector of `n` values.
    pub const fn vector(n: usize) -> Self {
        Shape { channels: n, height: 1, width: 1 }
    }

    /// Values in a tensor of this shape.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Whether the shape holds no value (never true of a checked shape).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn checked_len(&self) -> Option<usize> {
        self.channels.checked_mul(self.height)?.checked_mul(self.width)
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}
