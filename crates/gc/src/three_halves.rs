//! Three-halves garbling of an AND gate of two evaluator-dependent wires
//! (Rosulek and Roy, "Three Halves Make a Whole? Beating the Half-Gates
//! Lower Bound for Garbled Circuits", CRYPTO 2021): three 64-bit
//! ciphertexts and five control bits per gate instead of half-gates' two
//! 128-bit ones, with free XOR and the same Delta.
//!
//! Labels split into halves: L(x) the high 64 bits, R(x) the low 64 (the
//! colour bit, the lsb, is in R). The garbler hashes, in colour order, the
//! two labels of each input a, b and of their sum a xor b, under three
//! tweaks t, t+1, t+2; the evaluator hashes the three labels it holds under
//! the same tweaks. Of each hash it uses the high half (a half label) and
//! bit 0 (a control bit). The evaluator's output label is a linear
//! combination (over GF(2)) of those hashes, the ciphertexts G_0, G_1, G_2,
//! and the halves of its input labels, with coefficients fixed by its
//! colours and two control bits r_1, r_2 it decodes from the five sent
//! bits; the garbler draws r_1, r_2 (at colours 0, 0) uniformly per gate
//! and solves for the ciphertexts and the output zero-label. The matrices
//! are the paper's (section 5), in the packing of GarbleCoder's
//! emp-toolkit implementation; the tests here check every colour and value
//! combination against the AND of the values.

use crate::block::Block;

/// Bytes of the ciphertexts of one gate.
pub const CIPHERTEXT_BYTES: usize = 24;
/// Control bits of one gate.
pub const CONTROL_BITS: usize = 5;

/// The high and the low 64 bits of a block.
fn halves(x: Block) -> (u64, u64) {
    ((x.0 >> 64) as u64, x.0 as u64)
}

fn join(high: u64, low: u64) -> Block {
    Block((u128::from(high) << 64) | u128::from(low))
}

/// A hash's half label (its high 64 bits).
fn half_label(h: Block) -> u64 {
    (h.0 >> 64) as u64
}

/// A hash's control bit (bit 0, outside the half label).
fn control(h: Block) -> bool {
    h.0 & 1 == 1
}

/// All ones if `bit`, else zero: a mask, without a branch on the (secret) bit.
fn mask64(bit: bool) -> u64 {
    0u64.wrapping_sub(u64::from(bit))
}

/// The GF(2) combination of `terms` with coefficient bit k of `bits` on terms[k].
fn combine(bits: u32, terms: &[u64]) -> u64 {
    terms.iter().enumerate().fold(0, |acc, (k, &t)| acc ^ (t & 0u64.wrapping_sub(u64::from((bits >> k) & 1))))
}

/// The evaluator's coefficient rows over [L(A), R(A), L(B), R(B)] of the
/// labels it holds: bits 0..3 for C_L, 4..7 for C_R.
const R_P: [u32; 4] = [0b00100100, 0b00000100, 0b00100000, 0b00000000];
const S1: u32 = 0b10010111;
const S2: u32 = 0b11101001;

/// The six blocks the garbler hashes for an AND of wires with zero-labels
/// a0 and b0, in colour order: a's colour-0 and colour-1 labels (tweak t),
/// b's (t + 1), and those of a xor b (t + 2).
pub fn garbler_hash_inputs(a0: Block, b0: Block, delta: Block) -> [Block; 6] {
    let a = a0 ^ delta.select(a0.lsb());
    let b = b0 ^ delta.select(b0.lsb());
    [a, a ^ delta, b, b ^ delta, a ^ b, a ^ b ^ delta]
}

/// One garbled AND: its output zero-label, ciphertexts and control bits
/// (bit k of the byte for z_k).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarbledAnd {
    /// The output wire's zero-label.
    pub zero: Block,
    /// G_0, G_1, G_2.
    pub ciphertexts: [u64; 3],
    /// z_0 .. z_4 in bits 0..4.
    pub control: u8,
}

/// Garbles an AND of wires with zero-labels a0, b0 under `delta` (lsb 1),
/// given the hashes of [`garbler_hash_inputs`] (same order) and two
/// uniform bits `random` (bits 0 and 1: the control bits r_1, r_2 the
/// evaluator decodes at colours 0, 0). The garbler knows what the
/// evaluator computes at each of the four colour pairs except for the
/// ciphertexts' terms, and solves for the output zero-label (colours 0, 0,
/// where no ciphertext enters), G_2 and G_0 (colours 1, 0) and G_1
/// (colours 0, 1); the matrices make the other equations hold.
pub fn garble(a0: Block, b0: Block, delta: Block, hashes: &[Block; 6], random: u8) -> GarbledAnd {
    let (pa, pb) = (a0.lsb(), b0.lsb());
    // Labels by colour; the label of colour c stands for the value c xor p.
    let a = [a0 ^ delta.select(pa), a0 ^ delta.select(!pa)];
    let b = [b0 ^ delta.select(pb), b0 ^ delta.select(!pb)];
    let m: [bool; 6] = std::array::from_fn(|k| control(hashes[k]));
    let (r1, r2) = (random & 1 == 1, random & 2 == 2);
    let z =
        [r1 ^ m[0] ^ m[4], r2 ^ m[2] ^ m[4], !pa ^ m[0] ^ m[1], !pb ^ m[2] ^ m[3], !pa ^ !pb ^ m[4] ^ m[5]];
    let control_bits = z.iter().enumerate().fold(0u8, |acc, (k, &b)| acc | (u8::from(b) << k));
    // What the evaluator computes at colours (sa, sb), ciphertexts left out.
    let no_tables = [0u64; 3];
    let base = |sa: usize, sb: usize| {
        let held = [hashes[sa], hashes[2 + sb], hashes[4 + (sa ^ sb)]];
        halves(evaluate(a[sa], b[sb], &held, &no_tables, control_bits))
    };
    let (ld, rd) = halves(delta);
    let (l00, r00) = base(0, 0);
    let both = mask64(pa & pb);
    let (lz, rz) = (l00 ^ (ld & both), r00 ^ (rd & both));
    // The output label the evaluator must reach at colours (sa, sb).
    let want = |sa: usize, sb: usize| {
        let one = ((sa == 1) ^ pa) & ((sb == 1) ^ pb);
        let one = mask64(one);
        (lz ^ (ld & one), rz ^ (rd & one))
    };
    let ((l10, r10), (wl10, wr10)) = (base(1, 0), want(1, 0));
    let g2 = r10 ^ wr10;
    let g0 = l10 ^ wl10 ^ g2;
    let ((_, r01), (_, wr01)) = (base(0, 1), want(0, 1));
    let g1 = r01 ^ wr01 ^ g2;
    GarbledAnd { zero: join(lz, rz), ciphertexts: [g0, g1, g2], control: control_bits }
}

/// The evaluator's output label of a garbled AND, from the labels a and b
/// it holds, the hashes of [a, b, a xor b] (tweaks t, t + 1, t + 2), the
/// ciphertexts and the control bits.
pub fn evaluate(a: Block, b: Block, hashes: &[Block; 3], ciphertexts: &[u64; 3], control_bits: u8) -> Block {
    let (sa, sb) = (a.lsb(), b.lsb());
    let z = |k: u32| (control_bits >> k) & 1 == 1;
    let (m0, m1, m2) = (control(hashes[0]), control(hashes[1]), control(hashes[2]));
    let r1 = z(0) ^ (sa & z(2)) ^ ((sa ^ sb) & z(4)) ^ m0 ^ m2;
    let r2 = z(1) ^ (sb & z(3)) ^ ((sa ^ sb) & z(4)) ^ m1 ^ m2;
    let rows =
        (S1 & mask64(r1) as u32) ^ (S2 & mask64(r2) as u32) ^ R_P[2 * usize::from(sa) + usize::from(sb)];
    let (la, ra) = halves(a);
    let (lb, rb) = halves(b);
    let terms = [la, ra, lb, rb];
    let mask = |bit: bool, x: u64| x & mask64(bit);
    let [g0, g1, g2] = *ciphertexts;
    let (h0, h1, h2) = (half_label(hashes[0]), half_label(hashes[1]), half_label(hashes[2]));
    let lc = mask(sa, g0) ^ mask(sa ^ sb, g2) ^ h0 ^ h2 ^ combine(rows & 0xf, &terms);
    let rc = mask(sb, g1) ^ mask(sa ^ sb, g2) ^ h1 ^ h2 ^ combine(rows >> 4, &terms);
    join(lc, rc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aes_hash::tccr_batch;

    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    fn block(state: &mut u64) -> Block {
        join(xorshift(state), xorshift(state))
    }

    /// Every colour and value combination of many random gates: the
    /// evaluator's label is the output zero-label xor (a AND b) Delta.
    #[test]
    fn every_combination_evaluates_to_the_and() {
        let mut s = 0x1234_5678_9abc_def1u64;
        for gate in 0..4000u64 {
            let delta = Block(block(&mut s).0 | 1);
            let (a0, b0) = (block(&mut s), block(&mut s));
            let t = 3 * gate;
            let mut gh = garbler_hash_inputs(a0, b0, delta);
            tccr_batch(&mut gh, &[t, t, t + 1, t + 1, t + 2, t + 2], 7);
            let g = garble(a0, b0, delta, &gh, (xorshift(&mut s) & 3) as u8);
            assert_eq!(g.control >> CONTROL_BITS, 0);
            for (va, vb) in [(false, false), (false, true), (true, false), (true, true)] {
                let (a, b) = (a0 ^ delta.select(va), b0 ^ delta.select(vb));
                let mut eh = [a, b, a ^ b];
                tccr_batch(&mut eh, &[t, t + 1, t + 2], 7);
                let out = evaluate(a, b, &eh, &g.ciphertexts, g.control);
                assert_eq!(out, g.zero ^ delta.select(va & vb), "gate {gate}, values {va} {vb}");
            }
        }
    }
}
