//! # ppdnn-protocol
//!
//! The 2P-DNN protocol, independent of any transport. The server holds a
//! quantized model and evaluates each linear layer on the client's
//! ciphertexts ([`linear`]); between layers, the [`fast`] mode lets the
//! client decrypt the accumulators and apply the public step itself, and
//! the [`private`] mode runs that step in garbled circuits on masked values.
//! The [`Plan`] fixes the packing layout ([`layout`]), derived from the
//! model's worst-case accumulator bounds, so both sides agree on it; the
//! result equals the plaintext integer model's, bit for bit.
//!
//! Both modes share one session shape ([`ClientSession`], [`ServerSession`]):
//!
//! ```
//! use std::sync::Arc;
//! use ppdnn_model::network::Network;
//! use ppdnn_model::testing::random_quant_model;
//! use ppdnn_paillier::{KeyPolicy, RandomnessPool, generate_keypair};
//! use ppdnn_protocol::{ClientSession, ClientStep, Evaluator, Mode, Output, Packing, run_in_process};
//!
//! let image = vec![7u8; 28 * 28];
//! let model = Arc::new(random_quant_model(Network::lenet5(), 1, &image));
//! let evaluator = Evaluator::for_mode(model.clone(), 1024, Packing::Packed, Mode::Fast)?;
//! let pair = generate_keypair(1024, KeyPolicy::INSECURE_TESTING)?;
//! let key = Arc::new(pair.private);
//! let pool = Arc::new(RandomnessPool::new(key.public_key()));
//! let mut client = ClientSession::new(evaluator.session_plan(), key.clone(), pool, Output::Logits)?;
//! let (mut server, opening) = evaluator.start(key.public_key().clone(), Output::Logits)?;
//! let run = run_in_process(&mut client, &mut server, opening, &image)?;
//! assert_eq!(run.outcome, ClientStep::Done(model.logits(&image)?));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod error;
pub mod fast;
mod key_cache;
pub mod layout;
pub mod limits;
pub mod linear;
mod message;
mod plan;
mod planner;
pub mod private;
mod session;
mod step;

pub use error::{
    ABORTED, Error, InternalError, LayerError, MessageError, OutputError, PlanError, Result, StateError,
};
pub use key_cache::KeyCache;
pub use layout::{pack_inputs, unpack_outputs};
pub use message::RoundMessage;
pub use plan::{
    CircuitInfo, Mode, Named, OT_GROUP_BITS, Output, Packing, Plan, PlanLayer, PlanShortcut, STAT_BITS,
    UncheckedPlan, max_slots, model_digest, parse_named, slot_bits_for,
};
pub use session::{ClientSession, Evaluator, LocalRun, ServerSession, SessionPlan, run_in_process};
pub use step::ClientStep;
