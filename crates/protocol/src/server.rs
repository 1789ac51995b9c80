//! The server: evaluates each linear layer on the client's ciphertexts.

use std::sync::Arc;

use ppdnn_model::network::Linear;
use ppdnn_model::quant::{QuantLayer, QuantModel};
use ppdnn_paillier::{Ciphertext, Integer, PublicKey, RandomnessPool, SharedBases};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::key_cache::KeyCache;
use crate::message::RoundMessage;
use crate::plan::{Mode, Packing, Plan, PlanLayer};
use crate::private::Output;
use crate::private::circuits::PrivateCircuits;
use crate::private::server::PrivateServerSession;

/// Magnitude bits of the quantized weights (|w| <= 127).
const WEIGHT_BITS: u32 = 7;

/// A model with its checked plan, ready to serve sessions.
#[derive(Debug, Clone)]
pub struct Evaluator {
    model: Arc<QuantModel>,
    plan: Arc<Plan>,
    /// Recently seen client keys with their fixed-base tables: a performance
    /// cache only (a fresh replica without it serves the same answers).
    keys: Arc<KeyCache>,
    /// The private mode's circuits (None for a fast plan).
    circuits: Option<Arc<PrivateCircuits>>,
}

impl Evaluator {
    /// Pairs a model with the fast mode's plan for `key_bits` and `packing`.
    pub fn new(model: Arc<QuantModel>, key_bits: u32, packing: Packing) -> Result<Self> {
        Self::for_mode(model, key_bits, packing, Mode::Fast)
    }

    /// Pairs a model with the plan of `mode` for `key_bits` and `packing`.
    pub fn for_mode(model: Arc<QuantModel>, key_bits: u32, packing: Packing, mode: Mode) -> Result<Self> {
        let plan = Plan::for_mode(&model, key_bits, packing, mode)?;
        Self::from_checked_plan(model, plan)
    }

    fn from_checked_plan(model: Arc<QuantModel>, plan: Plan) -> Result<Self> {
        let circuits = match plan.mode {
            Mode::Fast => None,
            Mode::Private => Some(PrivateCircuits::for_plan(&plan)?),
        };
        Ok(Evaluator { model, plan: Arc::new(plan), keys: Arc::default(), circuits })
    }

    /// Uses `cache` for client keys (a server shares one cache among all its
    /// evaluators, so that its memory budget holds for the whole server).
    pub fn with_key_cache(mut self, cache: Arc<KeyCache>) -> Self {
        self.keys = cache;
        self
    }

    /// Pairs a model with a given plan, refusing a plan that is not exactly
    /// the model's own (a wrong bound or layout would overflow slots).
    pub fn with_plan(model: Arc<QuantModel>, plan: Plan) -> Result<Self> {
        plan.validate()?;
        plan.check_against(&model)?;
        Self::from_checked_plan(model, plan)
    }

    /// The private mode's circuits, for a private plan.
    pub fn circuits(&self) -> Option<&Arc<PrivateCircuits>> {
        self.circuits.as_ref()
    }

    /// Starts a private session for a client's public key (already
    /// validated); returns it and the server's first message (round 0).
    /// The session's re-randomizers do not use the key's h^n.
    pub fn private_session(
        &self,
        key: PublicKey,
        output: Output,
    ) -> Result<(PrivateServerSession, RoundMessage)> {
        let circuits = self
            .circuits
            .clone()
            .ok_or_else(|| Error::Plan("this model is not served in the private mode here".into()))?;
        self.check_key_bits(&key)?;
        let key = self.keys.get(key);
        PrivateServerSession::start(self.model.clone(), self.plan.clone(), circuits, key, output)
    }

    fn check_key_bits(&self, key: &PublicKey) -> Result<()> {
        if key.bits() != self.plan.key_bits {
            return Err(Error::Plan(format!(
                "the key has {} bits but the plan is for {}-bit keys",
                key.bits(),
                self.plan.key_bits
            )));
        }
        Ok(())
    }

    /// The public plan.
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// The model.
    pub fn model(&self) -> &Arc<QuantModel> {
        &self.model
    }

    /// Starts a session for a client's public key (already validated), whose
    /// size must match the plan's.
    pub fn session(&self, key: PublicKey) -> Result<ServerSession> {
        if self.plan.mode != Mode::Fast {
            return Err(Error::Plan("a fast session needs the fast mode's plan".into()));
        }
        self.check_key_bits(&key)?;
        // The re-randomization table is built when the first round's
        // ciphertexts have arrived and passed validation, not here: a Start
        // alone costs the server nothing.
        let key = self.keys.get(key);
        let randomness = Arc::new(RandomnessPool::new(&key));
        Ok(ServerSession { model: self.model.clone(), plan: self.plan.clone(), key, randomness, round: 0 })
    }
}

/// The window of the fixed-base table for h^n, by how many ciphertexts a
/// session re-randomizes: w = 5 costs ~6,000 multiplications and ~3 MiB at
/// 2048 bits and pays off after a few dozen; w = 8 (~16 MiB) for thousands.
fn table_window(plan: &Plan) -> u32 {
    if plan.server_ciphertexts() > 1000 { 8 } else { 5 }
}

/// One inference on the server side: a round per linear layer.
#[derive(Debug)]
pub struct ServerSession {
    model: Arc<QuantModel>,
    plan: Arc<Plan>,
    key: PublicKey,
    /// Re-randomizers (DJN r^n) computed ahead, in idle time; a round takes
    /// what it needs and computes any that are missing.
    randomness: Arc<RandomnessPool>,
    round: usize,
}

impl ServerSession {
    /// The round the session expects next.
    pub fn next_round(&self) -> usize {
        self.round
    }

    /// The session's stock of re-randomizers: fill it ahead of the rounds
    /// (with [`ServerSession::randomness_needed`] values) in idle time.
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

    /// Evaluates one round: checks the message against the plan, computes the
    /// layer's encrypted accumulators, re-randomizes them, and returns them.
    pub fn handle(&mut self, input: &RoundMessage) -> Result<RoundMessage> {
        let round = self.round;
        let Some(pl) = self.plan.layers.get(round) else {
            return Err(Error::State(format!(
                "all {} rounds are done; round {} is one too many",
                round, input.round
            )));
        };
        let cts = input.ciphertexts(&self.key, round, pl.input_ciphertexts)?;
        self.key.precompute_randomness(table_window(&self.plan));
        let outputs = linear_layer(&self.key, &self.model.layers[round], pl, self.plan.packing, &cts)?;
        let rns = self.randomness.take_many(outputs.len())?;
        let fresh: Vec<Ciphertext> =
            outputs.par_iter().zip(&rns).map(|(c, rn)| self.key.rerandomize_with_rn(c, rn)).collect();
        self.round += 1;
        Ok(RoundMessage::from_ciphertexts(&self.key, round, &fresh))
    }
}

/// A linear layer on its input ciphertexts: the encrypted accumulators, in
/// the plan's output layout (not yet re-randomized).
pub(crate) fn linear_layer(
    key: &PublicKey,
    layer: &QuantLayer,
    pl: &PlanLayer,
    packing: Packing,
    cts: &[Ciphertext],
) -> Result<Vec<Ciphertext>> {
    let outputs = match (packing, pl.linear) {
        (Packing::Packed, Linear::Conv2d { .. }) => conv_packed(key, layer, pl, cts)?,
        (Packing::Packed, Linear::Dense { .. }) => dense_packed(key, layer, pl, cts)?,
        (Packing::Unpacked, Linear::Conv2d { .. }) => conv_unpacked(key, layer, pl, cts)?,
        (Packing::Unpacked, Linear::Dense { .. }) => dense_outputs(key, layer, pl, cts)?,
    };
    if outputs.len() != pl.output_ciphertexts {
        return Err(Error::Internal(format!(
            "{}: {} outputs where the plan says {}",
            pl.name,
            outputs.len(),
            pl.output_ciphertexts
        )));
    }
    Ok(outputs)
}

fn weight_rows(layer: &QuantLayer, pl: &PlanLayer) -> Vec<Vec<i64>> {
    layer.weight.chunks(pl.fan_in()).map(<[i64]>::to_vec).collect()
}

/// Packed convolution: per position chunk, one multi-exponentiation per output
/// channel over the chunk's im2col rows, plus the packed bias.
fn conv_packed(
    key: &PublicKey,
    layer: &QuantLayer,
    pl: &PlanLayer,
    cts: &[Ciphertext],
) -> Result<Vec<Ciphertext>> {
    let fan_in = pl.fan_in();
    let out_c = pl.out_channels();
    let chunks = pl.chunks();
    let positions = pl.positions();
    let codec = pl.codec(key.bits())?;
    let rows = weight_rows(layer, pl);
    let per_chunk: Vec<Vec<Ciphertext>> = (0..chunks)
        .into_par_iter()
        .map(|j| -> Result<Vec<Ciphertext>> {
            let bases: Vec<Ciphertext> = (0..fan_in).map(|k| cts[k * chunks + j].clone()).collect();
            let used = pl.slots.min(positions - j * pl.slots);
            let outs = key.combine_rows(&bases, &rows)?;
            outs.iter()
                .enumerate()
                .map(|(c, ct)| {
                    // One bias per channel, or the chunk's part of a bias map.
                    let bias = if layer.bias.len() == out_c {
                        vec![layer.bias[c]; used]
                    } else {
                        layer.bias[c * positions + j * pl.slots..][..used].to_vec()
                    };
                    Ok(key.add_plain(ct, &codec.encode(&bias)?)?)
                })
                .collect()
        })
        .collect::<Result<_>>()?;
    // Channel-major order: output ciphertext c * chunks + j.
    Ok((0..out_c).flat_map(|c| per_chunk.iter().map(move |chunk| chunk[c].clone())).collect())
}

/// Packed dense layer: one multi-exponentiation per output over the shared
/// inputs, then S outputs packed into each ciphertext by Horner's rule
/// (B squarings per slot).
fn dense_packed(
    key: &PublicKey,
    layer: &QuantLayer,
    pl: &PlanLayer,
    cts: &[Ciphertext],
) -> Result<Vec<Ciphertext>> {
    let outs = dense_outputs(key, layer, pl, cts)?;
    outs.par_chunks(pl.slots).map(|group| Ok(key.pack_slots(group, pl.slot_bits)?)).collect()
}

/// W x + b for a dense layer, one ciphertext per output.
fn dense_outputs(
    key: &PublicKey,
    layer: &QuantLayer,
    pl: &PlanLayer,
    cts: &[Ciphertext],
) -> Result<Vec<Ciphertext>> {
    let rows = weight_rows(layer, pl);
    let outs = key.combine_rows(cts, &rows)?;
    outs.par_iter().zip(&layer.bias).map(|(c, &b)| Ok(key.add_plain(c, &Integer::from(b))?)).collect()
}

/// Unpacked convolution: every accumulator from the input ciphertexts under its kernel window.
fn conv_unpacked(
    key: &PublicKey,
    layer: &QuantLayer,
    pl: &PlanLayer,
    cts: &[Ciphertext],
) -> Result<Vec<Ciphertext>> {
    let Linear::Conv2d { kernel: [kh, kw], stride: [sy, sx], padding: [top, left, ..], .. } = pl.linear
    else {
        return Err(Error::Internal("conv_unpacked on a dense layer".into()));
    };
    let (ic_count, ih, iw) = (pl.input.channels, pl.input.height, pl.input.width);
    let (oh, ow) = (pl.output.height, pl.output.width);
    let shared = SharedBases::new(key, cts, WEIGHT_BITS, pl.output.len());
    (0..pl.output.len())
        .into_par_iter()
        .map(|o| {
            let (oc, oy, ox) = (o / (oh * ow), (o / ow) % oh, o % ow);
            let mut terms = Vec::with_capacity(ic_count * kh * kw);
            for ic in 0..ic_count {
                for ky in 0..kh {
                    let Some(iy) = (oy * sy + ky).checked_sub(top).filter(|&y| y < ih) else { continue };
                    for kx in 0..kw {
                        let Some(ix) = (ox * sx + kx).checked_sub(left).filter(|&x| x < iw) else { continue };
                        let w = layer.weight[((oc * ic_count + ic) * kh + ky) * kw + kx];
                        terms.push(((ic * ih + iy) * iw + ix, w));
                    }
                }
            }
            let bias = if layer.bias.len() == pl.output.len() { layer.bias[o] } else { layer.bias[oc] };
            Ok(key.add_plain(&shared.combine_terms(&terms)?, &Integer::from(bias))?)
        })
        .collect()
}
