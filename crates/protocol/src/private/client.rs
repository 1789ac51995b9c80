//! The client's side of a private inference: OT extension as the
//! receiver, decryption of uniformly masked plaintexts, evaluation of the
//! server's garbled circuits, and the returned inputs with their tags.

use std::sync::Arc;

use ppdnn_gc::CotReceiverSetup;
use ppdnn_gc::prg::Prg;
use ppdnn_gc::{Block, CotReceiver, GarbledCircuit, kos, pack_bits};
use ppdnn_paillier::{Integer, PrivateKey, RandomnessPool};
use rayon::prelude::*;
use zeroize::Zeroize;

use super::circuits::PrivateCircuits;
use super::hash::{Domain, hash_at, hash_run, mac_shares, pad_index};
use super::schedule::Schedule;
use super::{
    MAC_CORRECTION_BYTES, MAC_PRIME_BITS, OUTPUT_PAD_BYTES, PIXEL_PAD_BYTES, TAG_GROUP, TAG_PAD_BITS,
    VALUE_BITS, VALUE_PAD_BITS, centred, low_bits, pack_residues, pack_shortcut_residues, read_correction,
    read_i64, read_i128, read_u64, read_u128, residue,
};
use crate::error::{InternalError, MessageError, PlanError, Result, StateError, gc_internal, msg};
use crate::layout::unpack_outputs;
use crate::message::RoundMessage;
use crate::plan::{Mode, Output, Plan};
use crate::step::{ClientStep, check_bound, check_client, image_values};

/// What a private session has cost the client so far, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GarblingStats {
    /// Bytes of garbled tables received.
    pub garbled_bytes: usize,
    /// AND gates evaluated.
    pub and_gates: usize,
}

/// Layer l's decrypted plaintexts, kept between the OT choices and the
/// corrections.
struct Pending {
    /// The masked plaintexts Y_c as residues in [0, n).
    plain: Vec<Integer>,
    /// The tags T_g as residues in [0, n).
    tags: Vec<Integer>,
}

/// One private inference on the client side.
pub struct PrivateClientSession {
    plan: Arc<Plan>,
    key: Arc<PrivateKey>,
    pool: Arc<RandomnessPool>,
    circuits: Arc<PrivateCircuits>,
    schedule: Schedule,
    image: Vec<i64>,
    nonce: u64,
    setup: Option<CotReceiverSetup>,
    /// The random OTs' choice bits and rows t_k.
    choices: Vec<bool>,
    rows: Vec<Block>,
    /// The tags t of the input just returned (for tau).
    tags: Vec<Integer>,
    /// Per layer whose activation a later shortcut adds: its outputs'
    /// masked values c and tags t.
    kept: Vec<Option<(Vec<Integer>, Vec<Integer>)>>,
    pending: Option<Pending>,
    /// The garbling's tweak counter, as the server's.
    tweak: u64,
    argmax_labels: Vec<Block>,
    /// Logits mode: the last layer's masked plaintexts.
    last: Vec<Integer>,
    awaiting: Option<usize>,
    stats: GarblingStats,
}

impl Drop for PrivateClientSession {
    fn drop(&mut self) {
        self.image.zeroize();
        self.choices.zeroize();
        self.rows.iter_mut().for_each(Zeroize::zeroize);
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
        let schedule = Schedule::new(&plan, &circuits, output);
        Ok(PrivateClientSession {
            plan,
            key,
            pool,
            circuits,
            schedule,
            image: Vec::new(),
            nonce: 0,
            setup: None,
            choices: Vec::new(),
            rows: Vec::new(),
            tags: Vec::new(),
            kept: Vec::new(),
            pending: None,
            tweak: 0,
            argmax_labels: Vec::new(),
            last: Vec::new(),
            awaiting: None,
            stats: GarblingStats::default(),
        })
    }

    /// Takes the input (pixels 0..255, channel-major); it goes out, encrypted
    /// and tagged, once the OTs are set up (client round 2).
    pub fn start(&mut self, image: &[u8]) -> Result<()> {
        if self.awaiting.is_some() {
            return Err(StateError::AlreadyStarted.into());
        }
        self.image = image_values(&self.plan, image)?;
        self.awaiting = Some(0);
        Ok(())
    }

    /// The server round awaited and its size: (round, ciphertexts, material bytes).
    pub fn expected_answer(&self) -> (usize, usize, usize) {
        let k = self.awaiting.unwrap_or(0);
        let (cts, material) = self.schedule.server_message(k);
        (k, cts, material)
    }

    /// What evaluation has cost so far.
    pub fn stats(&self) -> GarblingStats {
        self.stats
    }

    /// Handles server round k.
    pub fn receive(&mut self, answer: &RoundMessage) -> Result<ClientStep> {
        let Some(k) = self.awaiting else {
            return Err(StateError::NoRound.into());
        };
        let (count, material) = self.schedule.server_message(k);
        let pk = self.key.public_key();
        let cts = answer.ciphertexts_with_material(pk, k, count, material)?;
        let plain: Vec<Integer> =
            self.key.decrypt_many(&cts).into_iter().map(|m| residue(m, pk.n())).collect();
        let layers = self.schedule.layers();
        let m = &answer.material;
        let step = match k {
            0 => self.base_ot(m)?,
            1 => self.extension(m)?,
            2 => self.first_input(m)?,
            k if k == 2 * layers + 3 => self.result(k, m)?,
            k if k == 2 * layers + 2 => self.zero_test(k, plain, m)?,
            k if k % 2 == 1 => self.layer_output((k - 3) / 2, plain, m)?,
            k => self.next_input((k - 4) / 2, m)?,
        };
        self.awaiting = match step {
            ClientStep::Send(_) => Some(k + 1),
            _ => None,
        };
        Ok(match step {
            ClientStep::Send(mut message) => {
                message.round = k;
                ClientStep::Send(message)
            }
            other => other,
        })
    }

    fn send(&self, cts: &[ppdnn_paillier::Ciphertext], material: Vec<u8>) -> ClientStep {
        let mut message = RoundMessage::from_ciphertexts(self.key.public_key(), 0, cts);
        message.material = material;
        ClientStep::Send(message)
    }

    /// Server round 0: the nonce. Starts the base OTs as their sender.
    fn base_ot(&mut self, m: &[u8]) -> Result<ClientStep> {
        self.nonce = read_u64(m, 0);
        let (setup, point) = CotReceiver::start(self.schedule.group_bits()).map_err(gc_internal)?;
        self.setup = Some(setup);
        Ok(self.send(&[], point.to_vec()))
    }

    /// Server round 1: the base-OT points. Extends every OT of the session
    /// with random choices, and sends the pixel bits' choices.
    fn extension(&mut self, m: &[u8]) -> Result<ClientStep> {
        let setup = self.setup.take().ok_or(StateError::NotStarted)?;
        let (mut receiver, trees) = setup.finish(m).map_err(|e| msg(1, MessageError::BaseOt(e)))?;
        let mut prg = Prg::from_os().map_err(gc_internal)?;
        let total = self.schedule.total_ots();
        let mut choices = Vec::with_capacity(total);
        while choices.len() < total {
            let x = prg.block().0;
            choices.extend((0..128).map(|i| (x >> i) & 1 == 1).take(total - choices.len()));
        }
        let (rows, columns) = receiver.extend(&choices);
        let mut material = trees;
        material.extend(columns);
        let b: Vec<bool> = (0..self.schedule.pixel_ots())
            .map(|k| ((self.image[k / VALUE_BITS] >> (k % VALUE_BITS)) & 1 == 1) ^ choices[k])
            .collect();
        material.extend(pack_bits(&b));
        (self.choices, self.rows) = (choices, rows);
        Ok(self.send(&[], material))
    }

    /// Server round 2: the OT check's challenge. Sends the OT check's
    /// answer and the first layer's input.
    fn first_input(&mut self, m: &[u8]) -> Result<ClientStep> {
        let h = Block(read_u128(m, 0));
        let response = kos::respond(h, &self.rows, &self.choices);
        let x: Vec<Integer> = self.image.iter().map(|&v| Integer::from(v)).collect();
        let cts = self.encrypt_input(0, &x)?;
        Ok(self.send(&cts, response))
    }

    /// The pixels' tags t = a' + alpha_0 x from their pads (at the start of
    /// server round 3): for each pixel bit, the hash of its OT row, plus
    /// the bit's correction when the bit is 1.
    fn pixel_tags(&mut self, m: &[u8]) {
        let count = self.schedule.pixel_ots();
        let hashes = hash_run(self.nonce, Domain::PixelPad, &self.rows[..count], 0);
        let mut tags = vec![Integer::new(); self.schedule.pixels()];
        for (k, &h) in hashes.iter().enumerate() {
            let bit = (self.image[k / VALUE_BITS] >> (k % VALUE_BITS)) & 1 == 1;
            let pad = low_bits(h, TAG_PAD_BITS) + if bit { read_i128(m, PIXEL_PAD_BYTES * k) } else { 0 };
            tags[k / VALUE_BITS] += pad;
        }
        self.tags = tags;
    }

    /// Enc(pack(values)) in layer l's input layout, followed by its
    /// shortcut's source (kept from its layer) in the shortcut's layout.
    fn encrypt_input(&self, l: usize, values: &[Integer]) -> Result<Vec<ppdnn_paillier::Ciphertext>> {
        let n = self.key.public_key().n();
        let pl = &self.plan.layers[l];
        let mut packed = pack_residues(pl, values, n)?;
        if let Some((source, _)) = self.shortcut_source(l)? {
            packed.extend(pack_shortcut_residues(pl, source, n)?);
        }
        let plain: Vec<Integer> = packed.into_iter().map(|m| centred(m, n)).collect();
        Ok(self.pool.encrypt_many(&plain)?)
    }

    /// The masked values and tags kept for layer l's shortcut, if it has one.
    fn shortcut_source(&self, l: usize) -> Result<Option<&(Vec<Integer>, Vec<Integer>)>> {
        let Some(f) = self.plan.shortcut_source(l) else { return Ok(None) };
        let kept = self.kept.get(f).and_then(Option::as_ref);
        Ok(Some(kept.ok_or_else(|| InternalError::Shortcut(self.plan.layers[l].name.clone()))?))
    }

    /// Server round 3 + 2l: layer l's masked plaintexts (and tags, circuit,
    /// pads) and the zero-test weights. Sends Enc(tau_l) and, for a layer
    /// with a circuit, the OT choices of its plaintexts' bits.
    fn layer_output(&mut self, l: usize, plain: Vec<Integer>, m: &[u8]) -> Result<ClientStep> {
        let round = 3 + 2 * l;
        let m = if l == 0 {
            let (pads, rest) = m.split_at(self.schedule.pixel_ots() * PIXEL_PAD_BYTES);
            self.pixel_tags(pads);
            rest
        } else {
            m
        };
        let s = &self.schedule;
        let inputs = s.input_ciphertexts(l);
        let Some(gammas) = m.len().checked_sub(8 * inputs).map(|at| &m[at..]) else {
            return Err(msg(round, MessageError::FieldRange { what: "the zero-test weights" }));
        };
        let n = self.key.public_key().n();
        let mut packed_tags = pack_residues(&self.plan.layers[l], &self.tags, n)?;
        if let Some((_, source_tags)) = self.shortcut_source(l)? {
            packed_tags.extend(pack_shortcut_residues(&self.plan.layers[l], source_tags, n)?);
        }
        let mut tau = Integer::new();
        for (i, t) in packed_tags.iter().enumerate() {
            let g = read_u64(gammas, 8 * i);
            if g >> 63 != 0 {
                return Err(msg(round, MessageError::FieldRange { what: "a zero-test weight" }));
            }
            tau += Integer::from(t * g);
        }
        tau %= n;
        let tau_ct = self.pool.encrypt_many(&[centred(tau, n)])?;
        let outputs = s.output_ciphertexts(l);
        if !s.has_circuit(l) {
            self.last = plain;
            return Ok(self.send(&tau_ct, Vec::new()));
        }
        let (first, count) = (s.ot_first(l), s.layer_ots(l));
        let bits = self.key.public_key().bits() as usize;
        let b: Vec<bool> = (0..count)
            .map(|k| plain[k / bits].get_bit((k % bits) as u32) ^ self.choices[first + k])
            .collect();
        let mut plain = plain;
        let tags = plain.split_off(outputs);
        self.pending = Some(Pending { plain, tags });
        Ok(self.send(&tau_ct, pack_bits(&b)))
    }

    /// Layer l's garbled circuit (after P and the MAC corrections) evaluated
    /// on the OT rows of the digits' bits, which are their labels, and its
    /// MACs z. Returns (output labels, z bytes).
    fn evaluate(&mut self, l: usize, m: &[u8]) -> Result<(Vec<Block>, Vec<u8>)> {
        let round = 4 + 2 * l;
        let pending = self.pending.take().ok_or(StateError::NoRound)?;
        let s = &self.schedule;
        let p = read_u64(m, 0);
        if p >> (MAC_PRIME_BITS - 1) != 1 || p & 1 == 0 {
            return Err(msg(round, MessageError::FieldRange { what: "the MAC modulus P" }));
        }
        let pl = &self.plan.layers[l];
        let per_ct = pl.slots * pl.slot_bits as usize;
        let bits = self.key.public_key().bits() as usize;
        let (first, count) = (s.ot_first(l), s.layer_ots(l));
        let labels: Vec<Block> = (0..pl.output_ciphertexts)
            .flat_map(|c| self.rows[first + c * bits..][..per_ct].iter().copied())
            .collect();
        // The MAC: sigma_c = sum_j H'(t_k) + y_j e_k mod P.
        let e_at = 8;
        let hashes = mac_shares(self.nonce, &self.rows[first..first + count], first as u64, p);
        let pm = p as u128;
        let mut sigma = vec![0u128; pl.output_ciphertexts];
        for (k, &h) in hashes.iter().enumerate() {
            let e = read_correction(m, e_at + MAC_CORRECTION_BYTES * k);
            if e >= p {
                return Err(msg(round, MessageError::FieldRange { what: "a MAC correction" }));
            }
            let (c, j) = (k / bits, k % bits);
            let y = u128::from(pending.plain[c].get_bit(j as u32));
            sigma[c] = (sigma[c] + h as u128 + y * e as u128) % pm;
        }
        let mut z = Vec::with_capacity(8 * pending.tags.len());
        for (g, t) in pending.tags.iter().enumerate() {
            let from = g * TAG_GROUP;
            let to = (from + TAG_GROUP).min(pl.output_ciphertexts);
            let mut v = Integer::from(t % p).to_u64().expect("a residue mod a u64 fits") as u128;
            for sc in &sigma[from..to] {
                v = (v + pm - sc) % pm;
            }
            z.extend((v as u64).to_le_bytes());
        }
        let out = self.run_circuit(l, &labels, &m[s.tables_at(l)..])?;
        Ok((out, z))
    }

    /// Evaluates the circuit after layer l (its parts, or the argmax).
    fn run_circuit(&mut self, l: usize, labels: &[Block], material: &[u8]) -> Result<Vec<Block>> {
        let round = 4 + 2 * l;
        let pl = &self.plan.layers[l];
        let per_ct = pl.slots * pl.slot_bits as usize;
        let nonce = self.nonce;
        if l + 1 == self.schedule.layers() {
            let circuit = self.circuits.argmax();
            let garbled = tables(circuit, &material[..self.schedule.table_bytes(l)])
                .map_err(|e| msg(round, MessageError::GarbledArgmax(e)))?;
            let mut ev = ppdnn_gc::Evaluator::at_tweak(self.tweak).salted(nonce);
            let out = ev
                .evaluate(circuit, &garbled, labels)
                .map_err(|e| msg(round, MessageError::GarbledArgmax(e)))?;
            self.tweak = ev.next_tweak();
            self.stats.garbled_bytes += self.schedule.table_bytes(l);
            self.stats.and_gates += circuit.and_gates();
            return Ok(out);
        }
        let parts = self.circuits.layer(l);
        if parts.is_empty() {
            return Err(InternalError::NoCircuit(l).into());
        }
        let (mut offsets, mut at, mut tweak) = (Vec::with_capacity(parts.len()), 0usize, self.tweak);
        for p in parts {
            let len = super::circuits::table_bytes(&p.circuit);
            offsets.push((at, len, tweak));
            at += len;
            tweak += p.circuit.tweaks();
        }
        let outputs: Vec<Vec<Block>> = parts
            .par_iter()
            .zip(&offsets)
            .enumerate()
            .map(|(k, (p, &(at, len, tweak)))| -> Result<Vec<Block>> {
                let bad = |source| msg(round, MessageError::GarbledPart { part: k, source });
                let garbled = tables(&p.circuit, &material[at..at + len]).map_err(bad)?;
                let mine =
                    &labels[p.first_ciphertext * per_ct..(p.first_ciphertext + p.ciphertexts) * per_ct];
                ppdnn_gc::Evaluator::at_tweak(tweak)
                    .salted(nonce)
                    .evaluate(&p.circuit, &garbled, mine)
                    .map_err(bad)
            })
            .collect::<Result<_>>()?;
        self.tweak = tweak;
        self.stats.garbled_bytes += at;
        self.stats.and_gates += parts.iter().map(|p| p.circuit.and_gates()).sum::<usize>();
        Ok(outputs.concat())
    }

    /// Server round 4 + 2l (l < L - 1): P, the MAC corrections, the circuit
    /// and its output pads. Evaluates
    /// layer l's circuit, turns its output labels into the next layer's
    /// masked input c = a + q and tags t = a' + alpha q, and sends Enc(pack(c))
    /// with layer l's MACs.
    fn next_input(&mut self, l: usize, m: &[u8]) -> Result<ClientStep> {
        let material = &m[self.schedule.tables_at(l) + self.schedule.table_bytes(l)..];
        let (labels, z) = self.evaluate(l, m)?;
        let index = || (0..labels.len()).map(|o| pad_index(l, o));
        let value_hash = hash_at(self.nonce, Domain::ValuePad, &labels, index());
        let tag_hash = hash_at(self.nonce, Domain::TagPad, &labels, index());
        let inputs = labels.len() / VALUE_BITS;
        let (mut c, mut t) = (vec![Integer::new(); inputs], vec![Integer::new(); inputs]);
        for (o, label) in labels.iter().enumerate() {
            // Lambda_0 gives its pads by its hashes alone, Lambda_1 with the corrections.
            let (mut value, mut tag) =
                (low_bits(value_hash[o], VALUE_PAD_BITS), low_bits(tag_hash[o], TAG_PAD_BITS));
            if label.lsb() {
                value += i128::from(read_i64(material, OUTPUT_PAD_BYTES * o));
                tag += read_i128(material, OUTPUT_PAD_BYTES * o + 8);
            }
            c[o / VALUE_BITS] += value;
            t[o / VALUE_BITS] += tag;
        }
        if self.plan.is_shortcut_source(l) {
            self.kept.resize_with(l, || None);
            self.kept.push(Some((c.clone(), t.clone())));
        }
        let cts = self.encrypt_input(l + 1, &c)?;
        self.tags = t;
        Ok(self.send(&cts, z))
    }

    /// Server round 2L + 2: the zero test W (and in label mode the last
    /// layer's corrections). Sends D = Dec(W) (and the MACs z).
    fn zero_test(&mut self, k: usize, plain: Vec<Integer>, m: &[u8]) -> Result<ClientStep> {
        let mut material = Vec::new();
        if self.schedule.label() {
            let l = self.schedule.layers() - 1;
            let (labels, z) = self.evaluate(l, m)?;
            self.argmax_labels = labels;
            material = z;
        }
        let d = plain
            .into_iter()
            .next()
            .ok_or_else(|| msg(k, MessageError::CiphertextCount { got: 0, expected: 1 }))?;
        material.extend(ppdnn_paillier::to_fixed_bytes(&d, self.schedule.n_bytes()));
        Ok(self.send(&[], material))
    }

    /// Server round 2L + 3: the last layer's slot masks (logits) or the
    /// argmax's decode bits (label).
    fn result(&mut self, k: usize, m: &[u8]) -> Result<ClientStep> {
        if self.schedule.label() {
            let bits = ppdnn_gc::unpack_bits(m, self.argmax_labels.len(), ppdnn_gc::Item::DecodeBits)
                .map_err(|e| msg(k, MessageError::OutputLabels(e)))?;
            let circuit = self.circuits.argmax();
            let values = ppdnn_gc::Evaluator::decode(circuit, &self.argmax_labels, &bits)
                .map_err(|e| msg(k, MessageError::OutputLabels(e)))?;
            let label = values.iter().enumerate().fold(0usize, |acc, (i, &b)| acc | (usize::from(b) << i));
            if label >= self.plan.classes {
                return Err(msg(k, MessageError::NotAClass { label }));
            }
            return Ok(ClientStep::Label(label));
        }
        let l = self.schedule.layers() - 1;
        let pl = &self.plan.layers[l];
        let sb = (pl.slots * pl.slot_bits as usize) as u32;
        let width = (sb as usize).div_ceil(8);
        let offset = super::server::slot_offset(pl.slots, pl.slot_bits, pl.rounding_offset());
        let modulus = Integer::from(1u32) << sb;
        let plain: Vec<Integer> = self
            .last
            .iter()
            .enumerate()
            .map(|(c, y)| {
                let low =
                    Integer::from_digits(&m[c * width..(c + 1) * width], ppdnn_paillier::int::Order::Msf);
                let mut v = Integer::from(y - &low) % &modulus;
                if v < 0 {
                    v += &modulus;
                }
                v - &offset
            })
            .collect();
        let pk = self.key.public_key();
        let logits = unpack_outputs(self.plan.packing, pl, pk.bits(), &plain).map_err(|e| msg(k, e))?;
        check_bound(k, "logit", &logits, pl.accumulator_bound)?;
        Ok(ClientStep::Done(logits))
    }
}

/// A circuit's garbled tables from their bytes (the decode bits are never
/// sent for an activation, and only at the end for the argmax).
fn tables(circuit: &ppdnn_gc::Circuit, bytes: &[u8]) -> std::result::Result<GarbledCircuit, ppdnn_gc::Error> {
    GarbledCircuit::tables_from_bytes(circuit, bytes)
}
