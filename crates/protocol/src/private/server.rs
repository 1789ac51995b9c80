//! The server's side of a private inference (docs/PROTOCOL.md 7).

use std::sync::Arc;

use ppdnn_gc::prg::Prg;
use ppdnn_gc::{Block, CotSender, GarbledCircuit, Garbler, kos};
use ppdnn_model::quant::QuantModel;
use ppdnn_paillier::{Ciphertext, Integer, PublicKey, RandomnessPool};
use rayon::prelude::*;
use zeroize::Zeroize;

use super::circuits::PrivateCircuits;
use super::hash::{Domain, hash_at, mac_shares, pad_index};
use super::schedule::Schedule;
use super::{
    ALPHA_BITS, GAMMA_BITS, MAC_CORRECTION_BYTES, MAC_PRIME_BITS, OUTPUT_PAD_BYTES, PIXEL_PAD_BYTES,
    TAG_GROUP, TAG_KEY_BITS, TAG_PAD_BITS, VALUE_BITS, VALUE_PAD_BITS, add_residue, low_bits, pack_residues,
    pack_shortcut_residues, random_bits, read_u64, rerandomize,
};
use crate::error::{Error, InternalError, MessageError, Result, StateError, gc_internal, msg};
use crate::linear::{Schedule as Products, blinding_needed, linear_layer};
use crate::message::RoundMessage;
use crate::plan::{Output, Plan};

/// A layer's returned input, as the zero test needs it: the client's
/// ciphertexts C_i, the server's packed pads pack(a)_i and pack(a')_i, the
/// tag key of each segment (the layer's own input under the previous
/// layer's key, a shortcut's source under its layer's) and the weights
/// gamma_i.
struct ReturnPath {
    segments: Vec<Segment>,
    gamma: Vec<i64>,
}

/// Consecutive returned ciphertexts under one tag key.
struct Segment {
    alpha: u64,
    pads: Vec<Integer>,
    tag_pads: Vec<Integer>,
}

impl ReturnPath {
    fn single(alpha: u64, pads: Vec<Integer>, tag_pads: Vec<Integer>) -> Self {
        ReturnPath { segments: vec![Segment { alpha, pads, tag_pads }], gamma: Vec::new() }
    }

    /// Each returned ciphertext's value pad, in order.
    fn pads(&self) -> impl Iterator<Item = &Integer> {
        self.segments.iter().flat_map(|s| &s.pads)
    }
}

/// The pads of a layer's outputs that a later shortcut adds: the tag key
/// and, per output value, the sums of its value pads and of its tag pads.
struct KeptPads {
    alpha: u64,
    pads: Vec<Integer>,
    tag_pads: Vec<Integer>,
}

/// What the server keeps of a layer followed by a circuit until its MACs
/// are checked and its outputs' pads are used.
#[derive(Default)]
struct LayerSecrets {
    /// The slot masks r of every slot of every output ciphertext.
    slot_masks: Vec<u64>,
    /// Each output ciphertext's whole mask R_c mod P is taken later; R_c here.
    masks: Vec<Integer>,
    /// MAC keys alpha_c.
    alphas: Vec<u64>,
    /// MAC masks beta_g, one per tag, uniform below n - 2^(S B + 52).
    betas: Vec<Integer>,
    /// Zero-labels of the argmax's outputs and their decode bits (label mode).
    decode: Vec<bool>,
}

impl Drop for LayerSecrets {
    fn drop(&mut self) {
        self.slot_masks.zeroize();
        self.alphas.zeroize();
        for m in self.masks.iter_mut().chain(self.betas.iter_mut()) {
            *m = Integer::new();
        }
    }
}

/// One private inference on the server side.
pub struct PrivateServerSession {
    model: Arc<QuantModel>,
    plan: Arc<Plan>,
    circuits: Arc<PrivateCircuits>,
    key: PublicKey,
    schedule: Schedule,
    randomness: Arc<RandomnessPool>,
    prg: Prg,
    nonce: u64,
    cot: Option<CotSender>,
    /// Whether a round failed: the session then refuses every later one.
    failed: bool,
    garbler: Option<Garbler>,
    /// The OT rows q_k of the whole session.
    rows: Vec<Block>,
    /// The OT check's challenge.
    challenge: Block,
    /// The pixel bits' OT choices b, kept until the check has passed.
    pixel_choices: Vec<bool>,
    /// Per layer (with a circuit): its secrets.
    layers: Vec<LayerSecrets>,
    /// The returned input of the layer in progress (its zero-test terms
    /// are folded in when Enc(tau) arrives).
    returned: Option<(Vec<Ciphertext>, ReturnPath)>,
    /// The pads of the next layer's input (drawn with the circuit's pads).
    next_pads: Option<ReturnPath>,
    /// Per layer whose activation a later shortcut adds: its outputs' pads.
    kept: Vec<Option<KeptPads>>,
    /// The zero test so far: prod_k (prod_i C_ki^gamma_ki)^alpha_k / Enc(tau_k),
    /// and its plaintext part sum_k (-alpha_k sum gamma pack(a) + sum gamma pack(a')).
    zero_ct: Option<Ciphertext>,
    zero_plain: Integer,
    mu: Integer,
    /// The MAC z each tag must come back with, per layer.
    expected_z: Vec<Vec<u64>>,
    /// Whether every check so far passed (evaluated, never acted on, until the verdict).
    passed: bool,
    /// Checks left out of the verdict: none, but in the attack tests'
    /// controls ([`PrivateServerSession::hazmat_leave_out`]).
    left_out: Vec<LeftOut>,
    round: usize,
}

impl Drop for PrivateServerSession {
    fn drop(&mut self) {
        self.rows.iter_mut().for_each(Zeroize::zeroize);
        self.mu = Integer::new();
        self.zero_plain = Integer::new();
    }
}

impl std::fmt::Debug for PrivateServerSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateServerSession").field("round", &self.round).finish_non_exhaustive()
    }
}

impl PrivateServerSession {
    /// Starts a session; returns it and server round 0 (the session nonce).
    pub(crate) fn start(
        model: Arc<QuantModel>,
        plan: Arc<Plan>,
        circuits: Arc<PrivateCircuits>,
        key: PublicKey,
        output: Output,
    ) -> Result<(Self, RoundMessage)> {
        let mut prg = Prg::from_os().map_err(gc_internal)?;
        let nonce = prg.block().0 as u64;
        let schedule = Schedule::new(&plan, &circuits, output);
        let randomness = Arc::new(RandomnessPool::full_strength(&key));
        let session = PrivateServerSession {
            model,
            plan,
            circuits,
            key,
            schedule,
            randomness,
            prg,
            nonce,
            cot: None,
            failed: false,
            garbler: None,
            rows: Vec::new(),
            challenge: Block::ZERO,
            pixel_choices: Vec::new(),
            layers: Vec::new(),
            returned: None,
            next_pads: None,
            kept: Vec::new(),
            zero_ct: None,
            zero_plain: Integer::new(),
            mu: Integer::new(),
            expected_z: Vec::new(),
            passed: true,
            left_out: Vec::new(),
            round: 0,
        };
        Ok((session, RoundMessage { round: 0, data: Vec::new(), material: nonce.to_le_bytes().to_vec() }))
    }

    /// The session's stock of re-randomizers.
    pub fn randomness(&self) -> &Arc<RandomnessPool> {
        &self.randomness
    }

    /// The client's public key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// Re-randomizers the whole session uses: one per returned ciphertext.
    pub fn randomness_needed(&self) -> usize {
        let s = &self.schedule;
        let blinding: usize = self.plan.layers.iter().map(blinding_needed).sum();
        (0..s.layers()).map(|l| s.output_ciphertexts(l) + s.tags(l)).sum::<usize>() + 1 + blinding
    }

    /// The client round expected next.
    pub fn next_round(&self) -> usize {
        self.round
    }

    /// Client rounds in all.
    pub fn rounds(&self) -> usize {
        self.schedule.client_rounds()
    }

    /// Whether every round has been served.
    pub fn finished(&self) -> bool {
        self.round >= self.rounds()
    }

    /// (ciphertexts, material bytes) the next client round must carry.
    pub fn expected(&self) -> (usize, usize) {
        if self.finished() { (0, 0) } else { self.schedule.client_message(self.round) }
    }

    /// Handles client round k and returns server round k + 1. A failed check
    /// never shows here: every check is evaluated as its message arrives and
    /// the one verdict comes with the last round ([`Error::Aborted`]).
    ///
    /// Any error ends the session: later calls get [`StateError::Failed`],
    /// and Delta is wiped, so a caller that kept the session cannot let a
    /// client retry a round (each retry of the OT check's answer would be
    /// one more test of Delta).
    pub fn handle(&mut self, input: &RoundMessage) -> Result<RoundMessage> {
        if self.failed {
            return Err(StateError::Failed.into());
        }
        let result = self.serve_round(input);
        if result.is_err() {
            self.failed = true;
            self.cot = None;
            self.garbler = None;
        }
        result
    }

    fn serve_round(&mut self, input: &RoundMessage) -> Result<RoundMessage> {
        let k = self.round;
        if self.finished() {
            return Err(StateError::Finished { done: k, got: input.round }.into());
        }
        let (count, material) = self.expected();
        let cts = input.ciphertexts_with_material(&self.key, k, count, material)?;
        let layers = self.schedule.layers();
        let m = &input.material;
        let answer = match k {
            0 => self.base_ots(m)?,
            1 => self.extension(m)?,
            k if k == 2 * layers + 2 => self.verdict(m)?,
            k if k % 2 == 0 => self.layer_input((k - 2) / 2, cts, m)?,
            k => self.choices((k - 3) / 2, &cts[0], m)?,
        };
        self.round += 1;
        Ok(RoundMessage { round: k + 1, ..answer })
    }
}

impl PrivateServerSession {
    /// Client round 0: the base-OT sender's point; answered with Delta as
    /// the choice bits (the server is the extension's sender).
    fn base_ots(&mut self, point: &[u8]) -> Result<RoundMessage> {
        let delta = Block(self.prg.block().0 | 1);
        let (cot, answer) = CotSender::start_with_delta(point, delta, self.schedule.group_bits())
            .map_err(|e| msg(0, MessageError::BaseOt(e)))?;
        self.garbler = Some(Garbler::with_delta(delta).map_err(gc_internal)?.salted(self.nonce));
        self.cot = Some(cot);
        Ok(RoundMessage { round: 1, data: Vec::new(), material: answer })
    }

    fn delta(&self) -> Result<Block> {
        Ok(self.cot.as_ref().ok_or(InternalError::OtDone)?.delta())
    }

    /// Client round 1: the OT extension and the pixel bits' OT choices;
    /// answered with the OT check's challenge. Nothing under the OT keys goes
    /// out before the check has passed: a receiver that cheats in the
    /// extension could test its guesses of Delta's bits against anything
    /// encrypted under them.
    fn extension(&mut self, m: &[u8]) -> Result<RoundMessage> {
        let s = &self.schedule;
        // The schedule checked the material's length: trees, columns, choices.
        let (ext, choices) = m.split_at(s.extension_bytes());
        let (trees, ext) = ext.split_at(ppdnn_gc::softspoken::TREE_BYTES);
        let total = s.total_ots();
        let pixel_ots = s.pixel_ots();
        let cot = self.cot.as_mut().ok_or(InternalError::OtDone)?;
        cot.puncture(trees).map_err(|e| msg(1, MessageError::OtExtension(e)))?;
        self.rows = cot.extend(total, ext).map_err(|e| msg(1, MessageError::OtExtension(e)))?;
        self.pixel_choices = ppdnn_gc::unpack_bits(choices, pixel_ots, ppdnn_gc::Item::OtChoices)
            .map_err(|e| msg(1, MessageError::OtExtension(e)))?;
        self.challenge = kos::challenge().map_err(gc_internal)?;
        Ok(RoundMessage { round: 2, data: Vec::new(), material: self.challenge.to_bytes().to_vec() })
    }

    /// The pixels' tag pads, once the OT check has passed: pixel p's bit j
    /// (OT 8p + j) gets the tag pad a'_pj = s'_0, the low `TAG_PAD_BITS` of
    /// the hash of its OT key K^0, and the correction s'_0 + alpha_0 2^j -
    /// s'_1 (an i128) that turns s'_1, the hash of K^1, into a'_pj +
    /// alpha_0 2^j.
    fn pixel_pads(&mut self) -> Result<Vec<u8>> {
        let s = &self.schedule;
        let pixel_ots = s.pixel_ots();
        let b = std::mem::take(&mut self.pixel_choices);
        let alpha = random_bits(&mut self.prg, TAG_KEY_BITS) as u64;
        let delta = self.delta()?;
        let mut keys = Vec::with_capacity(2 * pixel_ots);
        for (k, &bk) in b.iter().enumerate() {
            let key0 = self.rows[k] ^ delta.select(bk);
            keys.extend([key0, key0 ^ delta]);
        }
        let hashes = hash_at(self.nonce, Domain::PixelPad, &keys, (0..pixel_ots as u64).flat_map(|k| [k, k]));
        let mut sums = vec![Integer::new(); s.pixels()];
        let mut material = Vec::with_capacity(PIXEL_PAD_BYTES * pixel_ots);
        for k in 0..pixel_ots {
            let pad = low_bits(hashes[2 * k], TAG_PAD_BITS);
            let other = low_bits(hashes[2 * k + 1], TAG_PAD_BITS);
            let e = pad + ((alpha as i128) << (k % VALUE_BITS)) - other;
            sums[k / VALUE_BITS] += pad;
            material.extend(e.to_le_bytes());
        }
        let first = &self.plan.layers[0];
        let n = self.key.n().clone();
        let tag_pads = pack_residues(first, &sums, &n)?;
        let pads = vec![Integer::new(); first.input_ciphertexts];
        self.next_pads = Some(ReturnPath::single(alpha, pads, tag_pads));
        Ok(material)
    }

    /// Client round 2 + 2l: layer l's input (with the OT check's answer for
    /// l = 0, layer l-1's MACs otherwise); answered with layer l's masked
    /// accumulators, tags, garbled circuit and pads, and the zero-test
    /// weights (for l = 0, after the pixels' tag pads).
    fn layer_input(&mut self, l: usize, cts: Vec<Ciphertext>, m: &[u8]) -> Result<RoundMessage> {
        let mut pixel_pads = Vec::new();
        if l == 0 {
            let ok = kos::verify(self.challenge, &self.rows, self.delta()?, m)
                .map_err(|e| msg(2, MessageError::OtExtension(e)))?;
            if !ok {
                // Before anything under the OT keys or anything that depends
                // on the weights has been sent: safe to stop here.
                return Err(Error::Aborted);
            }
            pixel_pads = self.pixel_pads()?;
        } else {
            self.check_macs(l - 1, m);
        }
        let mut path = self.next_pads.take().ok_or(InternalError::OtDone)?;
        if let Some(segment) = self.shortcut_segment(l)? {
            path.segments.push(segment);
        }
        path.gamma = (0..cts.len()).map(|_| random_bits(&mut self.prg, GAMMA_BITS) as i64).collect();
        // The layer's input: Enc(pack(c)) * Enc(-pack(a)) = Enc(pack(q)).
        let n = self.key.n();
        let pads: Vec<&Integer> = path.pads().collect();
        if pads.len() != cts.len() {
            return Err(InternalError::Shortcut(self.plan.layers[l].name.clone()).into());
        }
        let x: Vec<Ciphertext> = cts
            .par_iter()
            .zip(&pads)
            .map(|(c, a)| add_residue(&self.key, c, &Integer::from(n - *a)))
            .collect();
        let acc = linear_layer(
            &self.key,
            &self.model.layers[l],
            &self.plan.layers[l],
            self.plan.packing,
            &x,
            Products::Fixed(&self.randomness),
        )?;
        let mut answer = self.masked_layer(l, acc)?;
        pixel_pads.append(&mut answer.material);
        answer.material = pixel_pads;
        for g in &path.gamma {
            answer.material.extend(g.to_le_bytes());
        }
        self.returned = Some((cts, path));
        Ok(answer)
    }

    /// The returned shortcut input of layer l, if it has one: its source's
    /// output pads, packed in the shortcut's layout, under the source's tag key.
    fn shortcut_segment(&self, l: usize) -> Result<Option<Segment>> {
        let Some(f) = self.plan.shortcut_source(l) else { return Ok(None) };
        let pl = &self.plan.layers[l];
        let kept = self.kept.get(f).and_then(Option::as_ref);
        let kept = kept.ok_or_else(|| InternalError::Shortcut(pl.name.clone()))?;
        let n = self.key.n();
        Ok(Some(Segment {
            alpha: kept.alpha,
            pads: pack_shortcut_residues(pl, &kept.pads, n)?,
            tag_pads: pack_shortcut_residues(pl, &kept.tag_pads, n)?,
        }))
    }

    /// Layer l's accumulators masked over the whole residue, with fresh
    /// r'^n; for a layer with a circuit also its MAC tags (its garbled
    /// circuit follows the client's OT choices: [`Self::corrections`]).
    fn masked_layer(&mut self, l: usize, acc: Vec<Ciphertext>) -> Result<RoundMessage> {
        let pl = &self.plan.layers[l];
        let (b, s) = (pl.slot_bits, pl.slots);
        let top = mask_top(self.key.n(), s as u32 * b);
        let offset = slot_offset(s, b, pl.rounding_offset());
        let mut secrets = LayerSecrets::default();
        for _ in 0..acc.len() {
            let r: Vec<u64> = (0..s).map(|_| random_bits(&mut self.prg, b) as u64).collect();
            let mut mask = ppdnn_paillier::random_below(&top)?;
            for &ri in r.iter().rev() {
                mask <<= b;
                mask += ri;
            }
            secrets.slot_masks.extend(r);
            secrets.masks.push(mask);
        }
        let rho = self.randomness.take_many(acc.len() + self.schedule.tags(l))?;
        let key = &self.key;
        // Enc(M_c + O), once: masked below, and tagged for a layer with a circuit.
        let with_offset: Vec<Ciphertext> = acc.par_iter().map(|c| add_residue(key, c, &offset)).collect();
        let mut cts: Vec<Ciphertext> = with_offset
            .par_iter()
            .zip(&secrets.masks)
            .zip(&rho)
            .map(|((c, r), rn)| rerandomize(key, &add_residue(key, c, r), rn))
            .collect::<Result<_>>()?;
        if self.schedule.has_circuit(l) {
            cts.extend(self.tags(l, &with_offset, &rho[acc.len()..], &mut secrets)?);
        }
        self.layers.resize_with(l, LayerSecrets::default);
        self.layers.push(secrets);
        Ok(RoundMessage::from_ciphertexts(&self.key, 0, &cts))
    }

    /// The MAC tags T_g = Enc(sum_(c in g) alpha_c (M_c + O) + beta_g) r'^n,
    /// one per [`TAG_GROUP`] ciphertexts, beta_g uniform below n - 2^(S B +
    /// 52): an honest tag never wraps past n, and any tag is within 2^-43 of
    /// uniform (see [`crate::plan::PRIVATE_HEADROOM`]).
    fn tags(
        &mut self,
        l: usize,
        with_offset: &[Ciphertext],
        rho: &[Integer],
        secrets: &mut LayerSecrets,
    ) -> Result<Vec<Ciphertext>> {
        let key = &self.key;
        let pl = &self.plan.layers[l];
        let tagged = pl.slots as u32 * pl.slot_bits + ALPHA_BITS + TAG_GROUP.ilog2();
        let beta_bound = key.n() - (Integer::from(1u32) << tagged);
        let count = with_offset.len();
        secrets.alphas = (0..count).map(|_| random_bits(&mut self.prg, ALPHA_BITS) as u64).collect();
        if self.left_out.contains(&LeftOut::MacKey) {
            secrets.alphas.fill(0);
        }
        let groups: Vec<(usize, usize)> =
            (0..count).step_by(TAG_GROUP).map(|g| (g, (g + TAG_GROUP).min(count))).collect();
        secrets.betas = groups
            .iter()
            .map(|_| ppdnn_paillier::random_below(&beta_bound))
            .collect::<std::result::Result<_, _>>()?;
        groups
            .par_iter()
            .zip(&secrets.betas)
            .zip(rho)
            .map(|((&(from, to), beta), rn)| {
                let weights: Vec<i64> = secrets.alphas[from..to].iter().map(|&a| a as i64).collect();
                let sum = key.linear_combination(&with_offset[from..to], &weights)?;
                rerandomize(key, &add_residue(key, &sum, beta), rn)
            })
            .collect()
    }

    /// Garbles the circuit after layer l with the slot masks as the
    /// garbler's inputs and `input_zero` as the zero-labels of the client's
    /// digits; returns the tables and, before another layer, the pads of
    /// the outputs.
    fn garble(&mut self, l: usize, secrets: &mut LayerSecrets, input_zero: &[Block]) -> Result<Vec<u8>> {
        let pl = &self.plan.layers[l];
        let per_ct = pl.slots * pl.slot_bits as usize;
        let b = pl.slot_bits;
        let r_bits: Vec<bool> =
            secrets.slot_masks.iter().flat_map(|&r| (0..b).map(move |i| (r >> i) & 1 == 1)).collect();
        let garbler = self.garbler.as_mut().ok_or(InternalError::OtDone)?;
        if l + 1 == self.plan.layers.len() {
            let (garbled, _) =
                garbler.garble(self.circuits.argmax(), &r_bits, input_zero).map_err(gc_internal)?;
            secrets.decode = garbled.decode.clone();
            return Ok(garbled.tables_to_bytes());
        }
        let parts = self.circuits.layer(l);
        let base = garbler.next_tweak();
        let mut offsets = Vec::with_capacity(parts.len());
        let mut total = 0u64;
        for p in parts {
            offsets.push(base + total);
            total += p.circuit.tweaks();
        }
        let garbler_ref = &*garbler;
        let garbled: Vec<(GarbledCircuit, Vec<Block>)> = parts
            .par_iter()
            .zip(&offsets)
            .map(|(p, &tweak)| {
                let range = p.first_ciphertext * per_ct..(p.first_ciphertext + p.ciphertexts) * per_ct;
                let mut g = garbler_ref.fork(tweak).map_err(gc_internal)?;
                g.garble(&p.circuit, &r_bits[range.clone()], &input_zero[range]).map_err(gc_internal)
            })
            .collect::<Result<_>>()?;
        garbler.skip_to(base + total).map_err(gc_internal)?;
        let mut material: Vec<u8> = Vec::new();
        let mut out_zero = Vec::new();
        let mut constants = Vec::new();
        for (p, (g, zero)) in parts.iter().zip(garbled) {
            material.extend(g.tables_to_bytes());
            constants.extend(p.circuit.output_kinds().iter().map(|o| match *o {
                ppdnn_gc::Output::Const(c) => Some(c),
                ppdnn_gc::Output::Wire(_) => None,
            }));
            out_zero.extend(zero);
        }
        let pads = self.output_pads(l, &out_zero, &constants)?;
        material.extend(pads);
        Ok(material)
    }

    /// The pads of layer l's circuit outputs (output o = bit j = o mod 8 of
    /// next-layer input i = o / 8), derived from the hashes of the output's
    /// two labels Lambda_0 (lsb 0) and Lambda_1 (lsb 1), standing for v_0 and
    /// v_1: with s_0, s_1 the low 61 bits of their value hashes, the value
    /// pad is a = s_0 - v_0 2^j, so that Lambda_0 alone gives a + v_0 2^j, and
    /// the correction e = a + v_1 2^j - s_1 (an i64) gives it from Lambda_1;
    /// likewise the tag pad a' = s'_0 - v_0 alpha 2^j on 126 bits and its
    /// correction (an i128). Keeps pack(sum_j a), pack(sum_j a') for the next
    /// layer's input.
    fn output_pads(&mut self, l: usize, out_zero: &[Block], constants: &[Option<bool>]) -> Result<Vec<u8>> {
        let delta = self.delta()?;
        let alpha = random_bits(&mut self.prg, TAG_KEY_BITS) as u64;
        // Labels in the order the client will hold them: [lsb 0, lsb 1].
        let mut labels = Vec::with_capacity(2 * out_zero.len());
        let mut values = Vec::with_capacity(2 * out_zero.len());
        for (&z, c) in out_zero.iter().zip(constants) {
            match c {
                // The client's label of a constant is the zero block.
                Some(v) => {
                    labels.extend([Block::ZERO, Block::ZERO]);
                    values.extend([*v, *v]);
                }
                None => {
                    let p = z.lsb();
                    labels.extend([z ^ delta.select(p), z ^ delta.select(!p)]);
                    values.extend([p, !p]);
                }
            }
        }
        let index = (0..out_zero.len()).flat_map(|o| [pad_index(l, o), pad_index(l, o)]);
        let value_hash = hash_at(self.nonce, Domain::ValuePad, &labels, index.clone());
        let tag_hash = hash_at(self.nonce, Domain::TagPad, &labels, index);
        let inputs = out_zero.len() / VALUE_BITS;
        let (mut a, mut a2) = (vec![Integer::new(); inputs], vec![Integer::new(); inputs]);
        let mut material = Vec::with_capacity(out_zero.len() * OUTPUT_PAD_BYTES);
        for o in 0..out_zero.len() {
            let j = o % VALUE_BITS;
            let (v0, v1) = (i128::from(values[2 * o]), i128::from(values[2 * o + 1]));
            let weight = i128::from(alpha) << j; // below 2^72
            let pad = low_bits(value_hash[2 * o], VALUE_PAD_BITS) - (v0 << j);
            let tag = low_bits(tag_hash[2 * o], TAG_PAD_BITS) - v0 * weight;
            // |e| < 2^61 and |e'| < 2^126 + 2^72: an i64 and an i128.
            let e = pad + (v1 << j) - low_bits(value_hash[2 * o + 1], VALUE_PAD_BITS);
            let e2 = tag + v1 * weight - low_bits(tag_hash[2 * o + 1], TAG_PAD_BITS);
            a[o / VALUE_BITS] += pad;
            a2[o / VALUE_BITS] += tag;
            material.extend((e as i64).to_le_bytes());
            material.extend(e2.to_le_bytes());
        }
        let next = &self.plan.layers[l + 1];
        let n = self.key.n().clone();
        let pads = pack_residues(next, &a, &n)?;
        let tag_pads = pack_residues(next, &a2, &n)?;
        self.next_pads = Some(ReturnPath::single(alpha, pads, tag_pads));
        if self.plan.is_shortcut_source(l) {
            self.kept.resize_with(l, || None);
            self.kept.push(Some(KeptPads { alpha, pads: a, tag_pads: a2 }));
        }
        Ok(material)
    }

    /// Client round 3 + 2l: Enc(tau_l) and the OT choices of layer l's
    /// plaintext bits. Folds layer l's returned input into the zero test;
    /// answers with P and the corrections (and, after the last layer, the
    /// zero test W).
    fn choices(&mut self, l: usize, tau: &Ciphertext, m: &[u8]) -> Result<RoundMessage> {
        self.fold_zero_test(tau)?;
        let last = l + 1 == self.schedule.layers();
        let material = if self.schedule.has_circuit(l) { self.corrections(l, m)? } else { Vec::new() };
        let data = if last { self.zero_test()? } else { Vec::new() };
        Ok(RoundMessage { round: 0, data, material })
    }

    /// prod_s (prod_(i in s) C_i^gamma_i)^alpha_s / Enc(tau) into the zero
    /// test, and sum_i gamma_i (pack(a')_i - alpha_s pack(a)_i) into its
    /// plaintext part (s: the segment of ciphertext i).
    fn fold_zero_test(&mut self, tau: &Ciphertext) -> Result<()> {
        let (cts, path) = self.returned.take().ok_or(InternalError::OtDone)?;
        let key = &self.key;
        let n = key.n();
        let mut term: Option<Ciphertext> = None;
        let mut at = 0;
        for seg in &path.segments {
            let end = at + seg.pads.len();
            let (Some(c), Some(g)) = (cts.get(at..end), path.gamma.get(at..end)) else {
                return Err(InternalError::OtDone.into());
            };
            let weighted = key.mul(&key.linear_combination(c, g)?, &Integer::from(seg.alpha));
            term = Some(match term {
                Some(t) => key.add(&t, &weighted),
                None => weighted,
            });
            for ((g, a), a2) in g.iter().zip(&seg.pads).zip(&seg.tag_pads) {
                let t = a2 - Integer::from(a * seg.alpha);
                self.zero_plain += Integer::from(&t * *g);
                self.zero_plain %= n;
            }
            at = end;
        }
        let term = key.sub(&term.ok_or(InternalError::OtDone)?, tau);
        self.zero_ct = Some(match self.zero_ct.take() {
            Some(z) => key.add(&z, &term),
            None => term,
        });
        Ok(())
    }

    /// The zero test W = Enc(sum_k [alpha_k sum_i gamma_ki (C_ki - pack(a)_ki)
    /// - (tau_k - sum_i gamma_ki pack(a')_ki)] + mu) r'^n, mu uniform mod n.
    fn zero_test(&mut self) -> Result<Vec<u8>> {
        let key = &self.key;
        let n = key.n();
        self.mu = ppdnn_paillier::random_below(n)?;
        let plain = Integer::from(&self.zero_plain + &self.mu) % n;
        let z = self.zero_ct.take().ok_or(InternalError::OtDone)?;
        let rho = self.randomness.take_many(1)?;
        let w = rerandomize(key, &add_residue(key, &z, &plain), &rho[0])?;
        Ok(key.ciphertext_to_bytes(&w))
    }

    /// P, the MAC corrections e, the garbled circuit and (before another
    /// layer) the output pads of layer l, for the client's OT choices b (one
    /// per bit of each plaintext). The circuit is garbled now, with the OT
    /// keys K_k^0 = q_k xor b_k Delta of the plaintexts' low S B bits as the
    /// zero-labels of the client's digits: the client's rows t_k are then
    /// its labels, and no label correction is sent.
    fn corrections(&mut self, l: usize, m: &[u8]) -> Result<Vec<u8>> {
        let s = &self.schedule;
        let (count, first) = (s.layer_ots(l), s.ot_first(l));
        let round = 3 + 2 * l;
        let b = ppdnn_gc::unpack_bits(m, count, ppdnn_gc::Item::OtChoices)
            .map_err(|e| msg(round, MessageError::OtExtension(e)))?;
        let delta = self.delta()?;
        let p = random_prime(&mut self.prg);
        let bits = self.key.bits() as usize;
        let keys0: Vec<Block> =
            b.iter().enumerate().map(|(k, &bk)| self.rows[first + k] ^ delta.select(bk)).collect();
        let keys1: Vec<Block> = keys0.iter().map(|&k| k ^ delta).collect();
        let u0 = mac_shares(self.nonce, &keys0, first as u64, p);
        let u1 = mac_shares(self.nonce, &keys1, first as u64, p);
        let pl = &self.plan.layers[l];
        let per_ct = pl.slots * pl.slot_bits as usize;
        let input_zero: Vec<Block> = keys0.chunks(bits).flat_map(|ct| ct[..per_ct].iter().copied()).collect();
        let mut secrets = std::mem::take(&mut self.layers[l]);
        let circuit = self.garble(l, &mut secrets, &input_zero);
        self.layers[l] = secrets;
        let circuit = circuit?;
        let s = &self.schedule;
        let secrets = &self.layers[l];
        let pl = &self.plan.layers[l];
        let mut material = Vec::with_capacity(s.corrections_bytes(l));
        material.extend(p.to_le_bytes());
        let pm = p as u128;
        let mut sums = vec![0u128; pl.output_ciphertexts];
        let mut pow2 = vec![0u128; bits];
        let mut x = 1u128 % pm;
        for v in pow2.iter_mut() {
            *v = x;
            x = (x * 2) % pm;
        }
        for k in 0..count {
            let (c, j) = (k / bits, k % bits);
            let alpha_pow = (secrets.alphas[c] as u128 % pm) * pow2[j] % pm;
            let e = (u0[k] as u128 + pm - u1[k] as u128 + alpha_pow) % pm;
            material.extend(&(e as u64).to_le_bytes()[..MAC_CORRECTION_BYTES]);
            sums[c] = (sums[c] + u0[k] as u128) % pm;
        }
        let expected = (0..pl.output_ciphertexts)
            .step_by(TAG_GROUP)
            .zip(&secrets.betas)
            .map(|(from, beta)| {
                let to = (from + TAG_GROUP).min(pl.output_ciphertexts);
                let mut z = mod_small(beta, p) as u128;
                for ((&alpha, mask), &sum) in
                    secrets.alphas[from..to].iter().zip(&secrets.masks[from..to]).zip(&sums[from..to])
                {
                    let masked = (alpha as u128 % pm) * mod_small(mask, p) as u128 % pm;
                    z = (z + 2 * pm - sum - masked) % pm;
                }
                z as u64
            })
            .collect();
        self.expected_z.resize(l, Vec::new());
        self.expected_z.push(expected);
        material.extend(circuit);
        Ok(material)
    }

    /// Layer l's MACs z against the expected ones: the outcome is folded
    /// into the one verdict, never acted on here.
    fn check_macs(&mut self, l: usize, m: &[u8]) {
        let expected = self.expected_z.get(l).map_or(&[][..], Vec::as_slice);
        let mut diff = u64::from(expected.len() * 8 != m.len());
        for (g, &want) in expected.iter().enumerate() {
            diff |= read_u64(m, 8 * g) ^ want;
        }
        self.passed &= (diff == 0) | self.left_out.contains(&LeftOut::Mac);
    }

    /// Client round 2L + 2: [layer L-1's MACs z] and D. The one verdict:
    /// every check passed, or the fixed abort.
    fn verdict(&mut self, m: &[u8]) -> Result<RoundMessage> {
        let layers = self.schedule.layers();
        let z_len = if self.schedule.label() { 8 * self.schedule.tags(layers - 1) } else { 0 };
        let (z, d) = m.split_at(z_len);
        if self.schedule.label() {
            self.check_macs(layers - 1, z);
        }
        let want = ppdnn_paillier::to_fixed_bytes(&self.mu, self.schedule.n_bytes());
        let diff = want.iter().zip(d).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        self.passed &= (diff == 0) | self.left_out.contains(&LeftOut::ZeroTest);
        if !self.passed {
            return Err(Error::Aborted);
        }
        let secrets = &self.layers[layers - 1];
        let material = if self.schedule.label() {
            ppdnn_gc::pack_bits(&secrets.decode)
        } else {
            let pl = &self.plan.layers[layers - 1];
            let width = (pl.slots * pl.slot_bits as usize).div_ceil(8);
            let mut out = Vec::with_capacity(width * pl.output_ciphertexts);
            for r in secrets.slot_masks.chunks(pl.slots) {
                let mut low = Integer::new();
                for &ri in r.iter().rev() {
                    low <<= pl.slot_bits;
                    low += ri;
                }
                out.extend(ppdnn_paillier::to_fixed_bytes(&low, width));
            }
            out
        };
        Ok(RoundMessage { round: 0, data: Vec::new(), material })
    }
}

/// The bound T of the mask's top part t: T = floor(n / 2^(S B)) - 1. With t
/// uniform below T and the slot masks uniform, R = t 2^(S B) + (slot masks)
/// is uniform on [0, T 2^(S B)), which leaves out fewer than 2^(S B + 1)
/// residues, so Y = M + O + R mod n is within 2^(S B + 2 - |n|) of uniform
/// whatever M a client made the server compute: no bit of Y tells the
/// client anything about the weights. An honest M + O < 2^(S B) with R <
/// T 2^(S B) stays below (T + 1) 2^(S B) <= n.
pub(crate) fn mask_top(n: &Integer, slot_bits_total: u32) -> Integer {
    Integer::from(n >> slot_bits_total) - 1u32
}

/// O = sum_i (2^(B-1) + h) 2^(B i) over the S slots: every signed slot
/// value v becomes the non-negative v + 2^(B-1) + h, h the rounding
/// constant folded into the offset
/// ([`crate::plan::PlanLayer::rounding_offset`]; the
/// plan keeps |v| + h < 2^(B-1)).
pub(crate) fn slot_offset(slots: usize, slot_bits: u32, rounding: u64) -> Integer {
    let mut o = Integer::new();
    let each = (Integer::from(1u32) << (slot_bits - 1)) + rounding;
    for _ in 0..slots {
        o <<= slot_bits;
        o += &each;
    }
    o
}

/// A check of the server's verdict that a control of the attack tests
/// leaves out, to show that the attack succeeds without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftOut {
    /// The MACs z of the circuits' inputs (docs/PROTOCOL.md 7.4).
    Mac,
    /// The MACs' keys alpha_c, all 0: the MAC checked, but as a keyless
    /// checksum of the choices.
    MacKey,
    /// The zero test of the returned inputs and tags (7.6).
    ZeroTest,
}

impl PrivateServerSession {
    /// Leaves `check` out of the verdict: a weaker server, for the controls
    /// of the attack tests only (the `testing` feature; never for serving).
    #[cfg(feature = "testing")]
    pub fn hazmat_leave_out(&mut self, check: LeftOut) {
        self.left_out.push(check);
    }
}

/// x mod p for a non-negative x.
fn mod_small(x: &Integer, p: u64) -> u64 {
    Integer::from(x % p).to_u64().expect("a residue mod a u64 fits a u64")
}

/// A uniform random prime in [2^55, 2^56) (`MAC_PRIME_BITS`).
fn random_prime(prg: &mut Prg) -> u64 {
    loop {
        let x = (prg.block().0 as u64 & ((1 << MAC_PRIME_BITS) - 1)) | (1 << (MAC_PRIME_BITS - 1)) | 1;
        if Integer::from(x).is_probably_prime(40) != ppdnn_paillier::int::IsPrime::No {
            return x;
        }
    }
}
