//! # ppdnn-gc
//!
//! Two-party computation for ppdnn's model-private mode, usable on its own:
//! half-gates garbling with free XOR over a tweakable correlation-robust
//! hash from fixed-key AES (a session nonce in every tweak), a circuit
//! builder with the gadgets the mode needs, Chou-Orlandi base OT over
//! Ristretto255, and SoftSpokenOT correlated-OT extension (k = 4 or 8) whose
//! correlation is the garbler's Delta, with a column-by-column consistency
//! check against a receiver that deviates. The garbler is assumed to follow the protocol.
//!
//! Transport-agnostic: every step takes and returns typed messages with an
//! exact byte encoding; nothing here opens a socket.
//!
//! ```
//! use ppdnn_gc::{Builder, Evaluator, Garbler, gadgets};
//!
//! // The garbler holds x, the evaluator y; the evaluator learns x + y (4 bits).
//! let mut b = Builder::new();
//! let x = b.garbler_inputs(4);
//! let y = b.evaluator_inputs(4);
//! let (sum, _carry) = gadgets::add(&mut b, &x, &y);
//! b.outputs(&sum);
//! let circuit = b.build();
//!
//! let mut garbler = Garbler::new().unwrap();
//! let zero = garbler.fresh_labels(4); // in the protocol: from correlated OT
//! let (garbled, _) = garbler.garble(&circuit, &[true, false, true, false], &zero).unwrap(); // x = 5
//! // The evaluator's labels for y = 6 (bits 0,1,1,0): zero-label XOR bit * Delta.
//! let y_bits = [false, true, true, false];
//! let labels: Vec<_> = zero.iter().zip(y_bits).map(|(&l, b)| l ^ garbler.delta().select(b)).collect();
//! let mut evaluator = Evaluator::new();
//! let out = evaluator.evaluate(&circuit, &garbled, &labels).unwrap();
//! let bits = Evaluator::decode(&circuit, &out, &garbled.decode).unwrap();
//! assert_eq!(bits, [true, true, false, true]); // 11
//! ```
#![forbid(unsafe_code)]

pub mod activation;
pub mod aes_hash;
pub mod base_ot;
mod block;
pub mod circuit;
mod error;
pub mod gadgets;
mod garble;
pub mod kos;
pub mod prg;
pub mod softspoken;
pub mod three_halves;

pub use block::{Block, blocks_from_bytes, blocks_to_bytes};
pub use circuit::{Builder, Circuit, Gate, Output, Wire};
pub use error::{CountError, Error, Item, PointError, Result, StateError};
pub use garble::{Evaluator, GarbledCircuit, Garbler, pack_bits, unpack_bits};
pub use softspoken::{CotReceiver, CotReceiverSetup, CotSender, GroupBits};
