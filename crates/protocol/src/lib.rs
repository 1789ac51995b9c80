//! # ppdnn-protocol
//!
//! The 2P-DNN protocol, independent of any transport. The server holds a
//! quantized model and evaluates each linear layer on the client's
//! ciphertexts; the client decrypts the accumulators, applies the public
//! between-layer step (ReLU, pooling, requantization) and encrypts the next
//! layer's input. The [`Plan`] fixes the packing layout, derived from the
//! model's worst-case accumulator bounds, so both sides agree on it; the
//! result equals the plaintext integer model's, bit for bit.

#![forbid(unsafe_code)]

mod client;
mod error;
mod key_cache;
mod message;
mod plan;
pub mod private;
mod server;

pub use client::{ClientSession, ClientStep, pack_inputs, unpack_outputs};
pub use error::{Error, Result};
pub use key_cache::KeyCache;
pub use message::RoundMessage;
pub use plan::{
    CircuitInfo, Mode, Packing, Plan, PlanLayer, STAT_BITS, limits, max_slots, model_digest, slot_bits_for,
};
pub use server::{Evaluator, ServerSession};
