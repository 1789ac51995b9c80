//! The fast mode's server: evaluates each linear layer on the client's
//! ciphertexts and re-randomizes what it returns.

use std::sync::Arc;

use ppdnn_model::quant::QuantModel;
use ppdnn_paillier::{Ciphertext, PublicKey, RandomnessPool};
use rayon::prelude::*;

use crate::error::{Result, StateError};
use crate::linear::{Schedule, linear_layer};
use crate::message::RoundMessage;
use crate::plan::Plan;

/// The window of the fixed-base table for h^n, by how many ciphertexts a
/// session re-randomizes: w = 5 costs ~6,000 multiplications and ~3 MiB at
/// 2048 bits and pays off after a few dozen; w = 8 (~16 MiB) for thousands.
fn table_window(plan: &Plan) -> u32 {
    if plan.server_ciphertexts() > 1000 { 8 } else { 5 }
}

/// One fast inference on the server side: a round per linear layer.
#[derive(Debug)]
pub struct FastServerSession {
    model: Arc<QuantModel>,
    plan: Arc<Plan>,
    key: PublicKey,
    /// Re-randomizers (DJN r^n) computed ahead, in idle time; a round takes
    /// what it needs and computes any that are missing.
    randomness: Arc<RandomnessPool>,
    round: usize,
}

impl FastServerSession {
    /// A session for a client's key (validated, of the plan's size). The
    /// re-randomization table is built when the first round's ciphertexts
    /// have arrived and passed validation, not here: a Start alone costs
    /// the server nothing.
    pub(crate) fn new(model: Arc<QuantModel>, plan: Arc<Plan>, key: PublicKey) -> Self {
        let randomness = Arc::new(RandomnessPool::new(&key));
        FastServerSession { model, plan, key, randomness, round: 0 }
    }

    /// The round the session expects next.
    pub fn next_round(&self) -> usize {
        self.round
    }

    /// The client's public key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// The session's stock of re-randomizers: fill it ahead of the rounds
    /// (with [`FastServerSession::randomness_needed`] values) in idle time.
    pub fn randomness(&self) -> &Arc<RandomnessPool> {
        &self.randomness
    }

    /// Re-randomizers the rounds not yet served use: one per returned
    /// ciphertext (the whole session's before its first round).
    pub fn randomness_needed(&self) -> usize {
        self.plan.layers.iter().skip(self.round).map(|l| l.output_ciphertexts).sum()
    }

    /// Whether every round has been served.
    pub fn finished(&self) -> bool {
        self.round >= self.plan.layers.len()
    }

    /// (ciphertexts, material bytes) the next client round must carry.
    pub fn expected(&self) -> (usize, usize) {
        (self.plan.layers.get(self.round).map_or(0, |l| l.input_ciphertexts), 0)
    }

    /// Evaluates one round: checks the message against the plan, computes the
    /// layer's encrypted accumulators, re-randomizes them, and returns them.
    pub fn handle(&mut self, input: &RoundMessage) -> Result<RoundMessage> {
        let round = self.round;
        let Some(pl) = self.plan.layers.get(round) else {
            return Err(StateError::Finished { done: round, got: input.round }.into());
        };
        let cts = input.ciphertexts(&self.key, round, pl.input_ciphertexts)?;
        self.key.precompute_randomness(table_window(&self.plan));
        let outputs = linear_layer(
            &self.key,
            &self.model.layers[round],
            pl,
            self.plan.packing,
            &cts,
            Schedule::Adaptive,
        )?;
        let rns = self.randomness.take_many(outputs.len())?;
        let fresh: Vec<Ciphertext> =
            outputs.par_iter().zip(&rns).map(|(c, rn)| self.key.rerandomize_with_rn(c, rn)).collect();
        self.round += 1;
        Ok(RoundMessage::from_ciphertexts(&self.key, round, &fresh))
    }
}
