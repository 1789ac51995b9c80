//! The big-integer type every part of this crate computes with: GMP's,
//! through rug, on native targets; on WebAssembly, which has no GMP, the
//! pure-Rust [`portable_int::Integer`] with the same API.
//!
//! The portable backend's Montgomery arithmetic ([`crate::portable`])
//! converts to and from it at its edges.

#[cfg(any(target_arch = "wasm32", test, feature = "portable-int"))]
pub mod portable_int;

#[cfg(not(target_arch = "wasm32"))]
pub use rug::integer::{IsPrime, Order};
#[cfg(not(target_arch = "wasm32"))]
pub use rug::{Complete, Integer};

#[cfg(target_arch = "wasm32")]
pub use portable_int::{Complete, Integer, IsPrime, Order};

#[cfg(test)]
mod tests;
