//! The fast mode's client: encrypts its input, and between rounds decrypts,
//! applies the public between-layer step, and encrypts the next layer's input.

use std::sync::Arc;

use ppdnn_model::network::activate_int;
use ppdnn_paillier::{Integer, PrivateKey, RandomnessPool};

use crate::error::{Result, StateError, msg};
use crate::layout::{pack_inputs, pack_shortcut, unpack_outputs};
use crate::message::RoundMessage;
use crate::plan::Plan;
use crate::step::{ClientStep, check_bound, check_client, image_values};

/// One fast inference on the client side.
pub struct FastClientSession {
    plan: Arc<Plan>,
    key: Arc<PrivateKey>,
    pool: Arc<RandomnessPool>,
    /// The round whose answer is awaited; None before `start` and after the end.
    awaiting: Option<usize>,
    /// The activations later layers' shortcuts add, by layer (empty for
    /// the others, and in a sequential network).
    kept: Vec<Vec<i64>>,
}

impl std::fmt::Debug for FastClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastClientSession").field("awaiting", &self.awaiting).finish_non_exhaustive()
    }
}

impl FastClientSession {
    /// A session for a fast plan, with the client's key pair and a
    /// randomness pool for its public key.
    pub fn new(plan: Arc<Plan>, key: Arc<PrivateKey>, pool: Arc<RandomnessPool>) -> Result<Self> {
        check_client(&plan, &key, &pool)?;
        let kept = vec![Vec::new(); plan.layers.len()];
        Ok(FastClientSession { plan, key, pool, awaiting: None, kept })
    }

    /// Encrypts an image (pixels 0..255, channel-major) as round 0's message.
    pub fn start(&mut self, image: &[u8]) -> Result<RoundMessage> {
        if self.awaiting.is_some() {
            return Err(StateError::AlreadyStarted.into());
        }
        let x = image_values(&self.plan, image)?;
        self.encrypt_round(0, &x)
    }

    /// The server round awaited and its size: (round, ciphertexts, material bytes).
    pub fn expected_answer(&self) -> (usize, usize, usize) {
        let round = self.awaiting.unwrap_or(0);
        (round, self.plan.layers.get(round).map_or(0, |l| l.output_ciphertexts), 0)
    }

    /// Handles the server's answer to the round in progress.
    pub fn receive(&mut self, answer: &RoundMessage) -> Result<ClientStep> {
        let Some(round) = self.awaiting else {
            return Err(StateError::NoRound.into());
        };
        let pl = &self.plan.layers[round];
        let pk = self.key.public_key();
        let cts = answer.ciphertexts(pk, round, pl.output_ciphertexts)?;
        let plain: Vec<Integer> = self.key.decrypt_many(&cts);
        let acc = unpack_outputs(self.plan.packing, pl, pk.bits(), &plain).map_err(|e| msg(round, e))?;
        check_bound(round, "accumulator", &acc, pl.accumulator_bound)?;
        let next = activate_int(pl.relu, pl.pool.as_ref(), pl.output, pl.requant, &acc);
        if self.plan.is_shortcut_source(round) {
            self.kept[round] = next.clone();
        }
        if round + 1 == self.plan.layers.len() {
            self.awaiting = None;
            return Ok(ClientStep::Done(next));
        }
        Ok(ClientStep::Send(self.encrypt_round(round + 1, &next)?))
    }

    fn encrypt_round(&mut self, round: usize, x: &[i64]) -> Result<RoundMessage> {
        let pl = &self.plan.layers[round];
        let pk = self.key.public_key();
        let mut plain = pack_inputs(self.plan.packing, pl, pk.bits(), x)?;
        if let Some(f) = self.plan.shortcut_source(round) {
            plain.extend(pack_shortcut(pl, pk.bits(), &self.kept[f])?);
        }
        let cts = self.pool.encrypt_many(&plain)?;
        self.awaiting = Some(round);
        Ok(RoundMessage::from_ciphertexts(pk, round, &cts))
    }
}
