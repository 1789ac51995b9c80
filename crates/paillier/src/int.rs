//! The big-integer type every part of this crate computes with: GMP's,
//! through rug.
//!
//! The portable backend's Montgomery arithmetic ([`crate::portable`])
//! converts to and from it at its edges.

pub use rug::integer::{IsPrime, Order};
pub use rug::{Complete, Integer};
