//! The client's side of a private inference: decrypts masked digits,
//! garbles the between-layer circuits, and reads the logits or the label.

use std::sync::Arc;

use ppdnn_gc::prg::Prg;
use ppdnn_gc::{Block, CotSender, Garbler, blocks_from_bytes};
use ppdnn_paillier::{Integer, PrivateKey, RandomnessPool};
use rayon::prelude::*;

use super::circuits::{MASK_BITS, PrivateCircuits, argmax_bytes, cots};
use super::{BASE_OT_SETUP_BYTES, LABEL_BYTES, centred, pack_residues, random_below_pow2};
use crate::error::{Error, InternalError, MessageError, PlanError, Result, StateError, gc_internal, msg};
use crate::layout::{pack_inputs, unpack_outputs};
use crate::message::RoundMessage;
use crate::plan::{Mode, Output, Plan};
use crate::step::{ClientStep, check_bound, check_client, image_values};

/// Bytes of the IKNP extension message for `count` correlated OTs.
pub fn extension_bytes(count: usize) -> usize {
    128 * count.div_ceil(128) * LABEL_BYTES
}

/// What a private session has cost so far, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GarblingStats {
    /// Bytes of garbled material sent.
    pub garbled_bytes: usize,
    /// AND gates garbled.
    pub and_gates: usize,
}

/// One private inference on the client side.
pub struct PrivateClientSession {
    plan: Arc<Plan>,
    key: Arc<PrivateKey>,
    pool: Arc<RandomnessPool>,
    circuits: Arc<PrivateCircuits>,
    output: Output,
    first: Option<RoundMessage>,
    garbler: Option<Garbler>,
    cot: Option<CotSender>,
    /// Per masked layer: the zero-labels of the server's mask bits.
    zero: Vec<Vec<Block>>,
    /// The argmax outputs' zero-labels (label mode).
    argmax_zero: Vec<Block>,
    /// The server round awaited; None before `start` and after the end.
    awaiting: Option<usize>,
    stats: GarblingStats,
}

impl Drop for PrivateClientSession {
    /// The zero-labels of the server's mask bits (with Delta, every label)
    /// are the session's secrets: wiped with it.
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.zero.iter_mut().for_each(Zeroize::zeroize);
        self.argmax_zero.zeroize();
    }
}

impl std::fmt::Debug for PrivateClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateClientSession").field("awaiting", &self.awaiting).finish_non_exhaustive()
    }
}

impl PrivateClientSession {
    /// A session for a validated private plan and its circuits
    /// ([`PrivateCircuits::for_plan`]), with the client's key pair and
    /// randomness pool.
    pub fn new(
        plan: Arc<Plan>,
        circuits: Arc<PrivateCircuits>,
        key: Arc<PrivateKey>,
        pool: Arc<RandomnessPool>,
        output: Output,
    ) -> Result<Self> {
        check_client(&plan, &key, &pool)?;
        if plan.mode != Mode::Private {
            return Err(PlanError::WrongMode(Mode::Private.name()).into());
        }
        Ok(PrivateClientSession {
            plan,
            key,
            pool,
            circuits,
            output,
            first: None,
            garbler: None,
            cot: None,
            zero: Vec::new(),
            argmax_zero: Vec::new(),
            awaiting: None,
            stats: GarblingStats::default(),
        })
    }

    /// Encrypts the input (pixels 0..255, channel-major); it goes out with
    /// the answer to the server's setup (round 0).
    pub fn start(&mut self, image: &[u8]) -> Result<()> {
        if self.awaiting.is_some() || self.first.is_some() {
            return Err(StateError::AlreadyStarted.into());
        }
        let x = image_values(&self.plan, image)?;
        let pk = self.key.public_key();
        let plain = pack_inputs(self.plan.packing, &self.plan.layers[0], pk.bits(), &x)?;
        let cts = self.pool.encrypt_many(&plain)?;
        self.first = Some(RoundMessage::from_ciphertexts(pk, 0, &cts));
        self.awaiting = Some(0);
        Ok(())
    }

    /// The server round awaited and its size: (round, ciphertexts, material bytes).
    pub fn expected_answer(&self) -> (usize, usize, usize) {
        let layers = self.plan.layers.len();
        match self.awaiting {
            Some(0) | None => (0, 0, BASE_OT_SETUP_BYTES),
            Some(k) if k <= layers => {
                let total = self.total_cots();
                let material = if k == 1 { extension_bytes(total) } else { 0 };
                (k, self.plan.layers[k - 1].output_ciphertexts, material)
            }
            Some(k) => (k, 0, self.circuits.argmax().outputs() * LABEL_BYTES),
        }
    }

    /// What garbling has cost so far.
    pub fn stats(&self) -> GarblingStats {
        self.stats
    }

    /// Handles server round k.
    pub fn receive(&mut self, answer: &RoundMessage) -> Result<ClientStep> {
        let Some(k) = self.awaiting else {
            return Err(StateError::NoRound.into());
        };
        let layers = self.plan.layers.len();
        let step = if k == 0 {
            self.setup(answer)?
        } else if k <= layers {
            self.layer_answer(k, answer)?
        } else {
            self.label(k, answer)?
        };
        self.awaiting = match step {
            ClientStep::Send(_) => Some(k + 1),
            _ => None,
        };
        Ok(step)
    }

    fn masked_layers(&self) -> usize {
        self.plan.layers.len() - usize::from(self.output == Output::Logits)
    }

    /// Correlated OTs of the whole session: one per mask bit of every masked layer.
    fn total_cots(&self) -> usize {
        self.plan.layers[..self.masked_layers()].iter().map(cots).sum()
    }

    /// Server round 0: answer the base OTs with Delta, send the input.
    fn setup(&mut self, answer: &RoundMessage) -> Result<ClientStep> {
        answer.check_round(0)?;
        if !answer.data.is_empty() || answer.material.len() != BASE_OT_SETUP_BYTES {
            let got = answer.material.len();
            return Err(msg(0, MessageError::SetupSize { got, expected: BASE_OT_SETUP_BYTES }));
        }
        let (cot, reply) = CotSender::start(&answer.material).map_err(|e| msg(0, MessageError::BaseOt(e)))?;
        self.garbler = Some(Garbler::with_delta(cot.delta()).map_err(gc_internal)?);
        self.cot = Some(cot);
        let mut first = self.first.take().ok_or(StateError::NotStarted)?;
        first.material = reply;
        Ok(ClientStep::Send(first))
    }

    /// Server round k (1..=L): layer k-1's accumulators, masked or (the
    /// logits of a logits-mode session) not.
    fn layer_answer(&mut self, k: usize, answer: &RoundMessage) -> Result<ClientStep> {
        let l = k - 1;
        let layers = self.plan.layers.len();
        let pl = &self.plan.layers[l];
        let pk = self.key.public_key();
        let total_cots = self.total_cots();
        let material = if k == 1 { extension_bytes(total_cots) } else { 0 };
        let cts = answer.ciphertexts_with_material(pk, k, pl.output_ciphertexts, material)?;
        if k == 1 {
            let cot = self.cot.as_mut().ok_or_else(|| Error::State(StateError::OtNotDone))?;
            let q =
                cot.extend(total_cots, &answer.material).map_err(|e| msg(k, MessageError::OtExtension(e)))?;
            let mut rest = q.as_slice();
            for p in &self.plan.layers[..self.masked_layers()] {
                let (mine, tail) = rest.split_at(cots(p));
                self.zero.push(mine.to_vec());
                rest = tail;
            }
        }
        let plain: Vec<Integer> = self.key.decrypt_many(&cts);
        if l + 1 == layers && self.output == Output::Logits {
            let logits = unpack_outputs(self.plan.packing, pl, pk.bits(), &plain).map_err(|e| msg(k, e))?;
            check_bound(k, "logit", &logits, pl.accumulator_bound)?;
            return Ok(ClientStep::Done(logits));
        }
        let digits = self.digits(k, &plain)?;
        if l + 1 == layers {
            return self.garble_argmax(k, &digits);
        }
        self.garble_layer(k, &digits)
    }

    /// The B-bit digits of every slot of every masked plaintext, as garbler
    /// input bits (ciphertext, slot, bit 0 first). The bits above the top
    /// slot are the mask's uniform top part: not read.
    fn digits(&self, k: usize, plain: &[Integer]) -> Result<Vec<bool>> {
        let pl = &self.plan.layers[k - 1];
        let n = self.key.public_key().n();
        let width = pl.slots as u32 * pl.slot_bits;
        let mut bits = Vec::with_capacity(plain.len() * width as usize);
        for m in plain {
            let mut y = m.clone();
            if y < 0 {
                y += n;
            }
            bits.extend((0..width).map(|b| y.get_bit(b)));
        }
        Ok(bits)
    }

    /// Garbles the circuit after layer k-1 with fresh output masks s, and
    /// encrypts pack_k(-s) for the server.
    fn garble_layer(&mut self, k: usize, digits: &[bool]) -> Result<ClientStep> {
        let l = k - 1;
        let parts = self.circuits.layer(l);
        if parts.is_empty() {
            return Err(InternalError::NoCircuit(l).into());
        }
        let next = &self.plan.layers[k];
        let outputs = next.input.len();
        let mut prg = Prg::from_os().map_err(gc_internal)?;
        let s: Vec<i64> = (0..outputs).map(|_| random_below_pow2(&mut prg, MASK_BITS) as i64).collect();
        let per_ct = self.plan.layers[l].slots * self.plan.layers[l].slot_bits as usize;
        let garbler = self.garbler.as_ref().ok_or_else(|| Error::State(StateError::OtNotDone))?;
        // Each part garbled by a fork of the session's garbler on a tweak range of its own.
        let base = garbler.next_tweak();
        let mut offsets = Vec::with_capacity(parts.len());
        let mut total = 0u64;
        for p in parts {
            offsets.push(base + total);
            total += p.circuit.tweaks();
        }
        let zero = &self.zero[l];
        let encoded: Vec<Vec<u8>> = parts
            .par_iter()
            .zip(&offsets)
            .map(|(p, &tweak)| -> Result<Vec<u8>> {
                let cts = p.first_ciphertext * per_ct..(p.first_ciphertext + p.ciphertexts) * per_ct;
                let mut bits = digits[cts.clone()].to_vec();
                for &v in &s[p.first_output..p.first_output + p.outputs] {
                    bits.extend((0..MASK_BITS).map(|i| (v >> i) & 1 == 1));
                }
                let mut g = garbler.fork(tweak).map_err(gc_internal)?;
                let (garbled, _) = g.garble(&p.circuit, &bits, &zero[cts]).map_err(gc_internal)?;
                Ok(garbled.to_bytes())
            })
            .collect::<Result<_>>()?;
        let garbler = self.garbler.as_mut().ok_or_else(|| Error::State(StateError::OtNotDone))?;
        garbler.skip_to(base + total).map_err(gc_internal)?;
        zeroize::Zeroize::zeroize(&mut self.zero[l]);
        let neg: Vec<i64> = s.iter().map(|&v| -v).collect();
        let n = self.key.public_key().n();
        let plain: Vec<Integer> = pack_residues(next, &neg, n)?.into_iter().map(|m| centred(m, n)).collect();
        let cts = self.pool.encrypt_many(&plain)?;
        let mut message = RoundMessage::from_ciphertexts(self.key.public_key(), k, &cts);
        message.material = encoded.concat();
        self.stats.garbled_bytes += message.material.len();
        self.stats.and_gates += parts.iter().map(|p| p.circuit.and_gates()).sum::<usize>();
        Ok(ClientStep::Send(message))
    }

    /// Label mode: garbles the argmax over the last layer's digits.
    fn garble_argmax(&mut self, k: usize, digits: &[bool]) -> Result<ClientStep> {
        let circuit = self.circuits.argmax();
        let garbler = self.garbler.as_mut().ok_or_else(|| Error::State(StateError::OtNotDone))?;
        let l = k - 1;
        let (garbled, zero) = garbler.garble(circuit, digits, &self.zero[l]).map_err(gc_internal)?;
        self.argmax_zero = zero;
        let mut material = garbled.to_bytes();
        material.truncate(argmax_bytes(circuit));
        self.stats.garbled_bytes += material.len();
        self.stats.and_gates += circuit.and_gates();
        Ok(ClientStep::Send(RoundMessage { round: k, data: Vec::new(), material }))
    }

    /// Label mode, server round L + 1: the argmax's output labels.
    fn label(&mut self, k: usize, answer: &RoundMessage) -> Result<ClientStep> {
        answer.check_round(k)?;
        let circuit = self.circuits.argmax();
        if !answer.data.is_empty() {
            return Err(msg(k, MessageError::LabelRoundCiphertexts));
        }
        let labels = blocks_from_bytes(&answer.material, circuit.outputs(), ppdnn_gc::Item::OutputLabels)
            .map_err(|e| msg(k, MessageError::OutputLabels(e)))?;
        let garbler = self.garbler.as_ref().ok_or_else(|| Error::State(StateError::OtNotDone))?;
        let bits = garbler
            .decode_labels(circuit, &labels, &self.argmax_zero)
            .map_err(|e| msg(k, MessageError::OutputLabels(e)))?;
        let label = bits.iter().enumerate().fold(0usize, |acc, (i, &b)| acc | (usize::from(b) << i));
        if label >= self.plan.classes {
            return Err(msg(k, MessageError::NotAClass { label }));
        }
        Ok(ClientStep::Label(label))
    }
}
