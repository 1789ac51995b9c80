//! Garbling with free XOR and point-and-permute, and its evaluation: an AND
//! with one garbler-known input as the garbler's half-gate of half-gates
//! (Zahur, Rosulek, Evans, Eurocrypt 2015), one block; an AND of two
//! evaluator-dependent wires by three-halves garbling ([`three_halves`]),
//! 24 bytes and 5 bits.
//!
//! A session fixes a fresh global offset Delta (lsb 1): the one-label of every
//! wire is its zero-label XOR Delta. Each hashed AND consumes fresh tweaks
//! from a counter that both sides advance identically and that never
//! repeats within a session. The evaluator's input zero-labels come from
//! correlated OT with the same Delta ([`crate::iknp`]).

use crate::aes_hash::{BATCH, tccr_batch};
use crate::block::{Block, blocks_from_bytes, blocks_to_bytes};
use crate::circuit::{Circuit, Gate, Output, check_count};
use crate::error::{CountError, Error, Item, Result, StateError};
use crate::prg::Prg;
use crate::three_halves::{self, CIPHERTEXT_BYTES, CONTROL_BITS};

/// What the garbler sends for one circuit: the garbled tables and the
/// decode bits of the outputs. Nothing is sent for the garbler's inputs:
/// every garbler-known wire carries the all-zero active label (its
/// zero-label is its value times Delta), so the evaluator holds Block::ZERO
/// for it without being told, and a garbler-known wire is never hashed
/// (it enters AND gates only as the known side of a garbler half-gate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GarbledCircuit {
    /// One block per half-gate, in gate order.
    pub half_tables: Vec<Block>,
    /// Three 64-bit ciphertexts per full AND, in gate order.
    pub ciphertexts: Vec<u64>,
    /// The five control bits of each full AND (bits 0..4), in gate order.
    pub control: Vec<u8>,
    /// lsb of each output's zero-label (false for constant outputs).
    pub decode: Vec<bool>,
}

impl GarbledCircuit {
    /// Bytes of the encoding for `circuit`.
    pub fn encoded_len(circuit: &Circuit) -> usize {
        circuit.table_bytes() + circuit.outputs().div_ceil(8)
    }

    /// The tables' wire form ([`Circuit::table_bytes`] bytes): the half-gate
    /// blocks (16 bytes each, little-endian), the full ANDs' ciphertexts (8
    /// bytes each, little-endian), then their control bits packed (bit k of
    /// gate g is bit 5g + k of the run, least significant first; unused high
    /// bits 0).
    pub fn tables_to_bytes(&self) -> Vec<u8> {
        let mut out = blocks_to_bytes(&self.half_tables);
        for c in &self.ciphertexts {
            out.extend(c.to_le_bytes());
        }
        let bits: Vec<bool> =
            self.control.iter().flat_map(|&z| (0..CONTROL_BITS).map(move |k| (z >> k) & 1 == 1)).collect();
        out.extend(pack_bits(&bits));
        out
    }

    /// Parses and checks the tables' wire form against the circuit it
    /// garbles; the decode bits are left false (they travel apart, if at all).
    pub fn tables_from_bytes(circuit: &Circuit, bytes: &[u8]) -> Result<Self> {
        let want = circuit.table_bytes();
        if bytes.len() != want {
            return Err(Error::Length { what: Item::GarbledTables, expected: want, got: bytes.len() });
        }
        let (half, full) = (circuit.half_ands(), circuit.full_ands());
        let (blocks, rest) = bytes.split_at(half * Block::BYTES);
        let half_tables = blocks_from_bytes(blocks, half, Item::GarbledTables)?;
        let (words, bits) = rest.split_at(full * CIPHERTEXT_BYTES);
        let ciphertexts = words
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("chunks of 8 bytes")))
            .collect();
        let bits = unpack_bits(bits, CONTROL_BITS * full, Item::GarbledTables)?;
        let control = bits
            .chunks(CONTROL_BITS)
            .map(|z| z.iter().enumerate().fold(0u8, |acc, (k, &b)| acc | (u8::from(b) << k)))
            .collect();
        Ok(GarbledCircuit { half_tables, ciphertexts, control, decode: vec![false; circuit.outputs()] })
    }

    /// The wire form: the tables, then the decode bits packed 8 to a byte,
    /// bit k of byte k/8 (k mod 8) for output k, unused high bits 0.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.tables_to_bytes();
        out.extend(pack_bits(&self.decode));
        out
    }

    /// Parses and checks the wire form against the circuit it garbles.
    pub fn from_bytes(circuit: &Circuit, bytes: &[u8]) -> Result<Self> {
        let want = Self::encoded_len(circuit);
        if bytes.len() != want {
            return Err(Error::Length { what: Item::GarbledCircuit, expected: want, got: bytes.len() });
        }
        let t = circuit.table_bytes();
        let mut garbled = Self::tables_from_bytes(circuit, &bytes[..t])?;
        garbled.decode = unpack_bits(&bytes[t..], circuit.outputs(), Item::DecodeBits)?;
        Ok(garbled)
    }
}

/// Bits packed 8 to a byte, least significant first.
pub fn pack_bits(bits: &[bool]) -> Vec<u8> {
    let mut out = vec![0u8; bits.len().div_ceil(8)];
    for (k, &b) in bits.iter().enumerate() {
        out[k / 8] |= (b as u8) << (k % 8);
    }
    out
}

/// `count` bits from their packed form; the unused high bits must be 0.
pub fn unpack_bits(bytes: &[u8], count: usize, what: Item) -> Result<Vec<bool>> {
    if bytes.len() != count.div_ceil(8) {
        return Err(Error::Length { what, expected: count.div_ceil(8), got: bytes.len() });
    }
    if !count.is_multiple_of(8) && bytes[bytes.len() - 1] >> (count % 8) != 0 {
        return Err(CountError::Padding { what }.into());
    }
    Ok((0..count).map(|k| (bytes[k / 8] >> (k % 8)) & 1 == 1).collect())
}

/// The garbler's side of a session.
pub struct Garbler {
    delta: Block,
    prg: Prg,
    tweak: u64,
    /// The session's salt: the high 64 bits of every tweak (see [`Garbler::salted`]).
    salt: u128,
    /// Scratch zero-labels and garbler-known values, reused across circuits
    /// (every wire is written before it is read).
    zero: Vec<Block>,
    known: Vec<bool>,
}

impl std::fmt::Debug for Garbler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Garbler").field("tweak", &self.tweak).finish_non_exhaustive()
    }
}

impl Drop for Garbler {
    fn drop(&mut self) {
        // Zero-labels with Delta open every wire: wipe them with the session.
        use zeroize::Zeroize;
        for b in self.zero.iter_mut() {
            b.0.zeroize();
        }
        self.known.zeroize();
        self.delta.0.zeroize();
    }
}

impl Garbler {
    /// A session with a fresh random Delta (lsb 1).
    pub fn new() -> Result<Self> {
        let mut prg = Prg::from_os()?;
        let delta = Block(prg.block().0 | 1);
        Ok(Garbler { delta, prg, tweak: 0, salt: 0, zero: Vec::new(), known: Vec::new() })
    }

    /// A session with a given Delta (its lsb must be 1): the Delta of the
    /// correlated OT that delivered the evaluator's labels.
    pub fn with_delta(delta: Block) -> Result<Self> {
        if !delta.lsb() {
            return Err(StateError::GarblingDeltaLsb.into());
        }
        Ok(Garbler { delta, prg: Prg::from_os()?, tweak: 0, salt: 0, zero: Vec::new(), known: Vec::new() })
    }

    /// The global offset Delta (secret).
    pub fn delta(&self) -> Block {
        self.delta
    }

    /// Puts a session nonce in the high 64 bits of every tweak this garbler
    /// hashes with, so that no (label, tweak) pair of one session recurs in
    /// another: the hash's multi-instance security then holds across every
    /// session an evaluator sees (Guo, Katz, Wang, Yu, S&P 2020, section 7).
    /// The evaluator uses the same nonce ([`Evaluator::salted`]).
    pub fn salted(mut self, nonce: u64) -> Self {
        self.salt = (nonce as u128) << 64;
        self
    }

    /// The next tweak the session will use.
    pub fn next_tweak(&self) -> u64 {
        self.tweak
    }

    /// A garbler with the same Delta that starts at `tweak`, for garbling
    /// independent circuits in parallel: give each fork a tweak range of its
    /// own (circuit.tweaks() apart) and then [`Garbler::skip_to`] past them
    /// all, so that no tweak is ever used twice with this Delta.
    pub fn fork(&self, tweak: u64) -> Result<Garbler> {
        let mut g = Garbler::with_delta(self.delta)?;
        g.tweak = tweak;
        g.salt = self.salt;
        Ok(g)
    }

    /// Moves the tweak counter forward to `tweak` (never back).
    pub fn skip_to(&mut self, tweak: u64) -> Result<()> {
        if tweak < self.tweak {
            return Err(StateError::TweakBehind { tweak, current: self.tweak }.into());
        }
        self.tweak = tweak;
        Ok(())
    }

    /// Fresh zero-labels for `n` wires: the evaluator's input labels when
    /// the OT delivers them with a correction (ppdnn's private mode), or
    /// without OT in tests.
    pub fn fresh_labels(&mut self, n: usize) -> Vec<Block> {
        self.prg.blocks(n)
    }

    /// Reads output labels the evaluator returned, with the outputs'
    /// zero-labels from [`Garbler::garble`]: each must be the zero-label or
    /// the zero-label XOR Delta (anything else was not produced by an honest
    /// evaluation). Constant outputs take the circuit's constant.
    pub fn decode_labels(&self, circuit: &Circuit, labels: &[Block], zero: &[Block]) -> Result<Vec<bool>> {
        check_count(Item::OutputLabels, labels.len(), circuit.outputs())?;
        check_count(Item::OutputZeroLabels, zero.len(), circuit.outputs())?;
        circuit
            .outputs
            .iter()
            .zip(labels.iter().zip(zero))
            .enumerate()
            .map(|(k, (o, (&l, &z)))| match *o {
                Output::Const(c) => Ok(c),
                Output::Wire(_) if l == z => Ok(false),
                Output::Wire(_) if l == z ^ self.delta => Ok(true),
                Output::Wire(_) => Err(StateError::NotALabel { output: k }.into()),
            })
            .collect()
    }

    /// Garbles `circuit` with the garbler's input bits and the zero-labels of
    /// the evaluator's inputs. Returns what to send, and the zero-labels of
    /// the outputs (the garbler can decode any output label it is shown).
    pub fn garble(
        &mut self,
        circuit: &Circuit,
        garbler_bits: &[bool],
        evaluator_zero_labels: &[Block],
    ) -> Result<(GarbledCircuit, Vec<Block>)> {
        check_count(Item::GarblerInputBits, garbler_bits.len(), circuit.garbler_inputs())?;
        check_count(Item::EvaluatorInputLabels, evaluator_zero_labels.len(), circuit.evaluator_inputs())?;
        let delta = self.delta;
        let mut zero = std::mem::take(&mut self.zero);
        zero.resize(circuit.wires as usize, Block::ZERO);
        // Values of garbler-known wires (the evaluator never learns them).
        let mut known = std::mem::take(&mut self.known);
        known.resize(circuit.wires as usize, false);
        // A garbler input's active label is zero: its zero-label is bit * Delta.
        for (&w, &bit) in circuit.garbler_inputs.iter().zip(garbler_bits) {
            zero[w as usize] = delta.select(bit);
            known[w as usize] = bit;
        }
        for (&w, &l) in circuit.evaluator_inputs.iter().zip(evaluator_zero_labels) {
            zero[w as usize] = l;
        }
        // The garbler's own values on garbler-known wires: a plain pass over
        // the gates that compute them, so the garbling loop below leaves them alone.
        for g in &circuit.gates {
            match *g {
                Gate::Xor { a, b, out } if circuit.known[out as usize] => {
                    known[out as usize] = known[a as usize] ^ known[b as usize]
                }
                Gate::Not { a, out } if circuit.known[out as usize] => {
                    known[out as usize] = !known[a as usize]
                }
                Gate::AndKnown { a, b, out } => known[out as usize] = known[a as usize] & known[b as usize],
                _ => {}
            }
        }
        let mut half_tables = Vec::with_capacity(circuit.half_ands());
        let full = circuit.full_ands();
        let (mut ciphertexts, mut control) = (Vec::with_capacity(3 * full), Vec::with_capacity(full));
        let mut t = self.tweak;
        let gates = &circuit.gates;
        let mut i = 0;
        while i < gates.len() {
            match gates[i] {
                Gate::Xor { a, b, out } => {
                    zero[out as usize] = zero[a as usize] ^ zero[b as usize];
                    i += 1;
                    continue;
                }
                Gate::Not { a, out } => {
                    zero[out as usize] = zero[a as usize] ^ delta;
                    i += 1;
                    continue;
                }
                _ => {}
            }
            // A run of AND gates: independent of each other (the builder
            // orders gates by AND depth), so hashed 10 gates (up to 60 blocks) at a time.
            let run_end = circuit.run_end(i);
            for chunk in gates[i..run_end].chunks(BATCH / 6) {
                let mut xs = [Block::ZERO; BATCH];
                let mut tw = [0u64; BATCH];
                let mut n = 0;
                for g in chunk {
                    match *g {
                        Gate::AndHalf { e, .. } => {
                            let b0 = zero[e as usize];
                            xs[n..n + 2].copy_from_slice(&[b0, b0 ^ delta]);
                            tw[n..n + 2].copy_from_slice(&[t, t]);
                            n += 2;
                            t += 1;
                        }
                        Gate::And { a, b, .. } => {
                            let inputs =
                                three_halves::garbler_hash_inputs(zero[a as usize], zero[b as usize], delta);
                            xs[n..n + 6].copy_from_slice(&inputs);
                            tw[n..n + 6].copy_from_slice(&[t, t, t + 1, t + 1, t + 2, t + 2]);
                            n += 6;
                            t += 3;
                        }
                        _ => {}
                    }
                }
                tccr_batch(&mut xs[..n], &tw[..n], self.salt);
                // Two uniform bits per full AND (at most 10 in a chunk).
                let mut random = self.prg.block().0;
                let mut k = 0;
                for g in chunk {
                    match *g {
                        Gate::AndKnown { out, .. } => zero[out as usize] = delta.select(known[out as usize]),
                        Gate::AndHalf { g, e, out } => {
                            let (h0, h1) = (xs[k], xs[k + 1]);
                            k += 2;
                            let tg = h0 ^ h1 ^ delta.select(known[g as usize]);
                            zero[out as usize] = h0 ^ tg.select(zero[e as usize].lsb());
                            half_tables.push(tg);
                        }
                        Gate::And { a, b, out } => {
                            let h: &[Block; 6] = xs[k..k + 6].try_into().expect("six hashes per full AND");
                            k += 6;
                            let garbled = three_halves::garble(
                                zero[a as usize],
                                zero[b as usize],
                                delta,
                                h,
                                (random & 3) as u8,
                            );
                            random >>= 2;
                            zero[out as usize] = garbled.zero;
                            ciphertexts.extend(garbled.ciphertexts);
                            control.push(garbled.control);
                        }
                        Gate::Xor { .. } | Gate::Not { .. } => unreachable!("a run holds AND gates only"),
                    }
                }
            }
            i = run_end;
        }
        self.tweak = t;
        let out_zero: Vec<Block> = circuit
            .outputs
            .iter()
            .map(|o| match *o {
                Output::Wire(w) => zero[w as usize],
                Output::Const(c) => Block(c as u128),
            })
            .collect();
        let decode = circuit
            .outputs
            .iter()
            .zip(&out_zero)
            .map(|(o, l)| matches!(o, Output::Wire(_)) && l.lsb())
            .collect();
        // Kept for the next circuit; wiped when the session is dropped.
        (self.zero, self.known) = (zero, known);
        Ok((GarbledCircuit { half_tables, ciphertexts, control, decode }, out_zero))
    }
}

/// The evaluator's side of a session.
#[derive(Debug, Default)]
pub struct Evaluator {
    tweak: u64,
    /// The session's salt (see [`Garbler::salted`]).
    salt: u128,
    /// Scratch active labels, reused across circuits.
    label: Vec<Block>,
}

impl Evaluator {
    /// A session (its tweak counter starts where the garbler's does).
    pub fn new() -> Self {
        Evaluator::default()
    }

    /// The next tweak the session will use.
    pub fn next_tweak(&self) -> u64 {
        self.tweak
    }

    /// An evaluator starting at `tweak`: the counterpart of [`Garbler::fork`].
    pub fn at_tweak(tweak: u64) -> Self {
        Evaluator { tweak, salt: 0, label: Vec::new() }
    }

    /// Uses the garbler's session nonce (see [`Garbler::salted`]).
    pub fn salted(mut self, nonce: u64) -> Self {
        self.salt = (nonce as u128) << 64;
        self
    }

    /// Moves the tweak counter forward to `tweak` (never back).
    pub fn skip_to(&mut self, tweak: u64) -> Result<()> {
        if tweak < self.tweak {
            return Err(StateError::TweakBehind { tweak, current: self.tweak }.into());
        }
        self.tweak = tweak;
        Ok(())
    }

    /// Evaluates a garbled circuit with the evaluator's input labels (from
    /// OT); returns the output labels (constant outputs give a zero block).
    pub fn evaluate(
        &mut self,
        circuit: &Circuit,
        garbled: &GarbledCircuit,
        evaluator_labels: &[Block],
    ) -> Result<Vec<Block>> {
        check_count(Item::EvaluatorLabels, evaluator_labels.len(), circuit.evaluator_inputs())?;
        check_count(Item::TableBlocks, garbled.half_tables.len(), circuit.half_ands())?;
        check_count(Item::TableBlocks, garbled.ciphertexts.len(), 3 * circuit.full_ands())?;
        check_count(Item::TableBlocks, garbled.control.len(), circuit.full_ands())?;
        check_count(Item::DecodeBits, garbled.decode.len(), circuit.outputs())?;
        let mut label = std::mem::take(&mut self.label);
        label.resize(circuit.wires as usize, Block::ZERO);
        // Garbler-known wires carry the all-zero active label.
        for &w in &circuit.garbler_inputs {
            label[w as usize] = Block::ZERO;
        }
        for (&w, &l) in circuit.evaluator_inputs.iter().zip(evaluator_labels) {
            label[w as usize] = l;
        }
        let (mut next_half, mut next_full) = (0usize, 0usize);
        let mut t = self.tweak;
        let gates = &circuit.gates;
        let mut i = 0;
        while i < gates.len() {
            match gates[i] {
                Gate::Xor { a, b, out } => {
                    label[out as usize] = label[a as usize] ^ label[b as usize];
                    i += 1;
                    continue;
                }
                Gate::Not { a, out } => {
                    label[out as usize] = label[a as usize];
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let run_end = circuit.run_end(i);
            for chunk in gates[i..run_end].chunks(BATCH / 3) {
                let mut xs = [Block::ZERO; BATCH];
                let mut tw = [0u64; BATCH];
                let mut n = 0;
                for g in chunk {
                    match *g {
                        Gate::AndHalf { e, .. } => {
                            xs[n] = label[e as usize];
                            tw[n] = t;
                            n += 1;
                            t += 1;
                        }
                        Gate::And { a, b, .. } => {
                            let (la, lb) = (label[a as usize], label[b as usize]);
                            xs[n..n + 3].copy_from_slice(&[la, lb, la ^ lb]);
                            tw[n..n + 3].copy_from_slice(&[t, t + 1, t + 2]);
                            n += 3;
                            t += 3;
                        }
                        _ => {}
                    }
                }
                tccr_batch(&mut xs[..n], &tw[..n], self.salt);
                let mut k = 0;
                for g in chunk {
                    // The table counts were checked against the circuit above.
                    match *g {
                        Gate::AndKnown { out, .. } => label[out as usize] = Block::ZERO,
                        Gate::AndHalf { e, out, .. } => {
                            let tg = garbled.half_tables[next_half];
                            next_half += 1;
                            label[out as usize] = xs[k] ^ tg.select(label[e as usize].lsb());
                            k += 1;
                        }
                        Gate::And { a, b, out } => {
                            let h: &[Block; 3] = xs[k..k + 3].try_into().expect("three hashes per full AND");
                            k += 3;
                            let g: &[u64; 3] = garbled.ciphertexts[3 * next_full..3 * next_full + 3]
                                .try_into()
                                .expect("three ciphertexts per full AND");
                            let z = garbled.control[next_full];
                            next_full += 1;
                            label[out as usize] =
                                three_halves::evaluate(label[a as usize], label[b as usize], h, g, z);
                        }
                        Gate::Xor { .. } | Gate::Not { .. } => unreachable!("a run holds AND gates only"),
                    }
                }
            }
            i = run_end;
        }
        self.tweak = t;
        let out = circuit
            .outputs
            .iter()
            .map(|o| match *o {
                Output::Wire(w) => label[w as usize],
                Output::Const(_) => Block::ZERO,
            })
            .collect();
        self.label = label;
        Ok(out)
    }

    /// The output values: lsb of each label XOR its decode bit (constant
    /// outputs take the circuit's constant).
    pub fn decode(circuit: &Circuit, labels: &[Block], decode: &[bool]) -> Result<Vec<bool>> {
        check_count(Item::OutputLabels, labels.len(), circuit.outputs())?;
        check_count(Item::DecodeBits, decode.len(), circuit.outputs())?;
        Ok(circuit
            .outputs
            .iter()
            .zip(labels.iter().zip(decode))
            .map(|(o, (l, &d))| match *o {
                Output::Wire(_) => l.lsb() ^ d,
                Output::Const(c) => c,
            })
            .collect())
    }
}
