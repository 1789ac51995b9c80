//! The server's side of a private inference.

use std::sync::Arc;

use ppdnn_gc::iknp::CotReceiverSetup;
use ppdnn_gc::prg::Prg;
use ppdnn_gc::{Block, CotReceiver, GarbledCircuit, blocks_to_bytes};
use ppdnn_model::quant::QuantModel;
use ppdnn_paillier::{Ciphertext, Integer, PublicKey, RandomnessPool};
use rayon::prelude::*;

use super::circuits::{MASK_BITS, PrivateCircuits, argmax_bytes, cots};
use super::{BASE_OT_ANSWER_BYTES, add_residue, pack_residues, random_below_pow2};
use crate::error::{InternalError, MessageError, Result, StateError, gc_internal, msg};
use crate::linear::linear_layer;
use crate::message::RoundMessage;
use crate::plan::{Output, Plan};

/// One private inference on the server side.
///
/// Client round 0 carries the base-OT answer and the first layer's input;
/// client round k (1 <= k < L) the garbled circuit after layer k-1 and
/// Enc(pack_k(-s)); in label mode client round L the garbled argmax. Server
/// round 0 is the base-OT setup, server round k the answer to client round
/// k-1.
pub struct PrivateServerSession {
    model: Arc<QuantModel>,
    plan: Arc<Plan>,
    circuits: Arc<PrivateCircuits>,
    key: PublicKey,
    output: Output,
    randomness: Arc<RandomnessPool>,
    ot: Option<CotReceiverSetup>,
    /// Per masked layer: the masks r of every slot of every output ciphertext.
    masks: Vec<Vec<u64>>,
    /// Per masked layer: the labels of the mask bits (from correlated OT).
    labels: Vec<Vec<Block>>,
    evaluator: ppdnn_gc::Evaluator,
    round: usize,
}

impl Drop for PrivateServerSession {
    /// The slot masks r (which unmask the accumulators) and the labels of
    /// their bits are the session's secrets: wiped with it.
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.masks.iter_mut().for_each(Zeroize::zeroize);
        self.labels.iter_mut().for_each(Zeroize::zeroize);
    }
}

impl std::fmt::Debug for PrivateServerSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateServerSession").field("round", &self.round).finish_non_exhaustive()
    }
}

impl PrivateServerSession {
    /// Starts a session; returns it and server round 0 (the base-OT setup).
    pub(crate) fn start(
        model: Arc<QuantModel>,
        plan: Arc<Plan>,
        circuits: Arc<PrivateCircuits>,
        key: PublicKey,
        output: Output,
    ) -> Result<(Self, RoundMessage)> {
        let (ot, setup) = CotReceiver::start().map_err(gc_internal)?;
        let randomness = Arc::new(RandomnessPool::full_strength(&key));
        let session = PrivateServerSession {
            model,
            plan,
            circuits,
            key,
            output,
            randomness,
            ot: Some(ot),
            masks: Vec::new(),
            labels: Vec::new(),
            evaluator: ppdnn_gc::Evaluator::new(),
            round: 0,
        };
        Ok((session, RoundMessage { round: 0, data: Vec::new(), material: setup.to_vec() }))
    }

    /// The session's stock of re-randomizers: fill it ahead of the rounds
    /// (with [`PrivateServerSession::randomness_needed`] values) in idle time.
    pub fn randomness(&self) -> &Arc<RandomnessPool> {
        &self.randomness
    }

    /// The client's public key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// Re-randomizers the whole session uses: one per returned ciphertext.
    pub fn randomness_needed(&self) -> usize {
        self.plan.server_ciphertexts()
    }

    /// The client round expected next.
    pub fn next_round(&self) -> usize {
        self.round
    }

    /// Client rounds in all.
    pub fn rounds(&self) -> usize {
        self.plan.layers.len() + usize::from(self.output == Output::Label)
    }

    /// Whether every round has been served.
    pub fn finished(&self) -> bool {
        self.round >= self.rounds()
    }

    /// (ciphertexts, material bytes) the next client round must carry.
    pub fn expected(&self) -> (usize, usize) {
        let l = self.plan.layers.len();
        match self.round {
            0 => (self.plan.layers[0].input_ciphertexts, BASE_OT_ANSWER_BYTES),
            k if k < l => (
                self.plan.layers[k].input_ciphertexts,
                self.plan.layers[k - 1].circuit.as_ref().map_or(0, |c| c.garbled_bytes),
            ),
            k if k == l => (0, argmax_bytes(self.circuits.argmax())),
            _ => (0, 0),
        }
    }

    /// Layers whose outputs are masked: all but the last, and the last too
    /// for a label-only output.
    fn masked_layers(&self) -> usize {
        self.plan.layers.len() - usize::from(self.output == Output::Logits)
    }

    /// Handles client round k and returns server round k + 1.
    pub fn handle(&mut self, input: &RoundMessage) -> Result<RoundMessage> {
        let k = self.round;
        if self.finished() {
            return Err(StateError::Finished { done: k, got: input.round }.into());
        }
        let (count, material) = self.expected();
        let cts = input.ciphertexts_with_material(&self.key, k, count, material)?;
        let layers = self.plan.layers.len();
        let answer = if k == 0 {
            let extension = self.setup_masks(&input.material)?;
            let pl = &self.plan.layers[0];
            let acc = linear_layer(&self.key, &self.model.layers[0], pl, self.plan.packing, &cts)?;
            let mut answer = self.answer(0, acc)?;
            answer.material = extension;
            answer
        } else if k < layers {
            let w = self.evaluate_layer(k - 1, &input.material)?;
            let pl = &self.plan.layers[k];
            let packed = pack_residues(pl, &w, self.key.n())?;
            let x: Vec<Ciphertext> =
                cts.par_iter().zip(&packed).map(|(c, p)| add_residue(&self.key, c, p)).collect();
            let acc = linear_layer(&self.key, &self.model.layers[k], pl, self.plan.packing, &x)?;
            self.answer(k, acc)?
        } else {
            let labels = self.evaluate_argmax(k, &input.material)?;
            RoundMessage { round: k + 1, data: Vec::new(), material: blocks_to_bytes(&labels) }
        };
        self.round += 1;
        Ok(answer)
    }
}

impl PrivateServerSession {
    /// Finishes the base OTs, samples the masks r of every masked layer and
    /// extends the correlated OTs with their bits as choices. Returns the
    /// extension message for the client.
    fn setup_masks(&mut self, answer: &[u8]) -> Result<Vec<u8>> {
        let ot = self.ot.take().ok_or(InternalError::OtDone)?;
        let mut receiver = ot.finish(answer).map_err(|e| msg(0, MessageError::BaseOtAnswer(e)))?;
        let mut prg = Prg::from_os().map_err(gc_internal)?;
        let mut choices = Vec::new();
        for pl in &self.plan.layers[..self.masked_layers()] {
            let r: Vec<u64> = (0..pl.output_ciphertexts * pl.slots)
                .map(|_| random_below_pow2(&mut prg, pl.slot_bits))
                .collect();
            for &v in &r {
                choices.extend((0..pl.slot_bits).map(|i| (v >> i) & 1 == 1));
            }
            self.masks.push(r);
        }
        let (labels, extension) = receiver.extend(&choices);
        let mut rest = labels.as_slice();
        for pl in &self.plan.layers[..self.masked_layers()] {
            let (mine, tail) = rest.split_at(cots(pl));
            self.labels.push(mine.to_vec());
            rest = tail;
        }
        Ok(extension)
    }

    /// Evaluates the garbled circuit after layer `l`; returns the outputs w = q + s.
    fn evaluate_layer(&mut self, l: usize, material: &[u8]) -> Result<Vec<i64>> {
        let round = l + 1;
        let parts = self.circuits.layer(l);
        if parts.is_empty() {
            return Err(InternalError::NoCircuit(l).into());
        }
        let per_ct = self.plan.layers[l].slots * self.plan.layers[l].slot_bits as usize;
        // The parts' encodings back to back, each evaluated on its own tweak range.
        let base = self.evaluator.next_tweak();
        let (mut offsets, mut at, mut tweak) = (Vec::with_capacity(parts.len()), 0usize, base);
        for p in parts {
            let len = GarbledCircuit::encoded_len(&p.circuit);
            offsets.push((at, len, tweak));
            at += len;
            tweak += p.circuit.tweaks();
        }
        if at != material.len() {
            return Err(msg(round, MessageError::GarbledSize { got: material.len(), expected: at }));
        }
        let labels = zeroize::Zeroizing::new(std::mem::take(&mut self.labels[l]));
        let width = MASK_BITS as usize + 1;
        let outputs: Vec<Vec<i64>> = parts
            .par_iter()
            .zip(&offsets)
            .enumerate()
            .map(|(k, (p, &(at, len, tweak)))| -> Result<Vec<i64>> {
                let bad = |source| msg(round, MessageError::GarbledPart { part: k, source });
                let garbled = GarbledCircuit::from_bytes(&p.circuit, &material[at..at + len]).map_err(bad)?;
                let mine =
                    &labels[p.first_ciphertext * per_ct..(p.first_ciphertext + p.ciphertexts) * per_ct];
                let out =
                    ppdnn_gc::Evaluator::at_tweak(tweak).evaluate(&p.circuit, &garbled, mine).map_err(bad)?;
                let bits = ppdnn_gc::Evaluator::decode(&p.circuit, &out, &garbled.decode).map_err(bad)?;
                Ok(bits
                    .chunks(width)
                    .map(|b| b.iter().enumerate().fold(0i64, |acc, (i, &bit)| acc | (i64::from(bit) << i)))
                    .collect())
            })
            .collect::<Result<_>>()?;
        self.evaluator.skip_to(tweak).map_err(gc_internal)?;
        Ok(outputs.concat())
    }

    /// Evaluates the garbled argmax; returns its output labels for the client.
    fn evaluate_argmax(&mut self, round: usize, material: &[u8]) -> Result<Vec<Block>> {
        let circuit = self.circuits.argmax();
        let mut bytes = material.to_vec();
        bytes.resize(bytes.len() + circuit.outputs().div_ceil(8), 0);
        let garbled = GarbledCircuit::from_bytes(circuit, &bytes)
            .map_err(|e| msg(round, MessageError::GarbledArgmax(e)))?;
        let last = self.plan.layers.len() - 1;
        let labels = zeroize::Zeroizing::new(std::mem::take(&mut self.labels[last]));
        self.evaluator
            .evaluate(circuit, &garbled, &labels)
            .map_err(|e| msg(round, MessageError::GarbledArgmax(e)))
    }

    /// Server round l + 1: layer l's accumulators, masked unless they are the
    /// logits of a logits-mode session, each with fresh randomness r'^n.
    fn answer(&mut self, l: usize, acc: Vec<Ciphertext>) -> Result<RoundMessage> {
        let pl = &self.plan.layers[l];
        let rho = self.randomness.take_many(acc.len())?;
        let n2 = self.key.n_squared();
        let masked = l < self.masked_layers();
        let offsets: Vec<Option<Integer>> = if masked {
            let r = &self.masks[l];
            let top = top_mask_bound(self.key.n(), pl.slots as u32 * pl.slot_bits);
            (0..acc.len())
                .map(|c| {
                    let t = ppdnn_paillier::random_below(&top)?;
                    Ok(Some(mask(&r[c * pl.slots..(c + 1) * pl.slots], pl.slot_bits, t)))
                })
                .collect::<Result<_>>()?
        } else {
            vec![None; acc.len()]
        };
        let fresh: Vec<Ciphertext> = acc
            .par_iter()
            .zip(&offsets)
            .zip(&rho)
            .map(|((c, p), rn)| {
                let c = match p {
                    Some(p) => add_residue(&self.key, c, p),
                    None => c.clone(),
                };
                self.key
                    .ciphertext(Integer::from(c.value() * rn) % n2)
                    .map_err(|e| InternalError::Rerandomize(e).into())
            })
            .collect::<Result<_>>()?;
        Ok(RoundMessage::from_ciphertexts(&self.key, l + 1, &fresh))
    }
}

/// The bound T of the mask's top part t: T = floor(n / 2^(S B)) - 1. With t
/// uniform below T and the slot masks uniform, R = t 2^(S B) + (slot masks)
/// is uniform on [0, T 2^(S B)), which leaves out fewer than 2^(S B + 1)
/// residues, so Y = M + O + R mod n is within 2^(S B + 1) / n <=
/// 2^(S B + 2 - |n|) <= 2^-40 of uniform (the plan keeps S B + 42 <= |n|)
/// whatever M a client made the server compute: no bit of Y, top bits
/// included, tells the client anything about the weights. An honest
/// M + O < 2^(S B) with R < T 2^(S B) stays below (T + 1) 2^(S B) <= n.
pub(crate) fn top_mask_bound(n: &Integer, slot_bits_total: u32) -> Integer {
    Integer::from(n >> slot_bits_total) - 1u32
}

/// The offset P = O + R added to one masked ciphertext: 2^(B-1) + r_i in
/// every slot i (the circuit subtracts both), and `t` above the top slot.
pub(crate) fn mask(slot_masks: &[u64], slot_bits: u32, t: Integer) -> Integer {
    let mut p = t;
    for &r in slot_masks.iter().rev() {
        p <<= slot_bits;
        p += r;
        p += 1u64 << (slot_bits - 1);
    }
    p
}
