//! The model-private mode (docs/PROTOCOL.md section 7, docs/SECURITY.md):
//! secure against a client that deviates in any way, for a server that
//! follows the protocol.
//!
//! The server masks each layer's packed accumulators over the whole residue
//! and garbles the between-layer circuit with the slot masks as its own
//! inputs; the client evaluates it with labels obtained by OT extension
//! (checked against a malicious receiver), and a MAC carried by the same
//! OTs binds the client's circuit inputs to what it decrypted. The circuit's
//! outputs reach the client only as labels, which the server's pads turn
//! into masked integers and tags; the client returns them encrypted as the
//! next layer's input, and one zero test at the end checks every returned
//! value (and the pixels' range) against its tag. The client learns the
//! logits (or only the label) after every check has passed, and nothing
//! before: every value it decrypts is within 2^-40 of uniform, and every
//! check's failure gives the same abort.

pub mod circuits;
mod client;
mod hash;
mod schedule;
mod server;

pub use circuits::PrivateCircuits;
pub use client::{GarblingStats, PrivateClientSession};
pub use schedule::Schedule;
pub use server::{LeftOut, PrivateServerSession};

use ppdnn_gc::Block;
use ppdnn_gc::prg::Prg;
use ppdnn_paillier::{Ciphertext, Integer, PublicKey};

use crate::error::{InternalError, Result};
use crate::layout::{input_slots, shortcut_slots};
use crate::plan::PlanLayer;

/// Bytes of one wire label, OT row or pad.
pub const LABEL_BYTES: usize = 16;
/// Bits of the MAC key alpha_c of each masked ciphertext.
pub const ALPHA_BITS: u32 = 46;
/// Masked ciphertexts per MAC tag ciphertext (at most): the tagged sum
/// stays below 64 * 2^(46 + S B) (see [`crate::plan::PRIVATE_HEADROOM`]).
pub const TAG_GROUP: usize = 64;
/// Bits of the MAC modulus P: a prime in [2^55, 2^56), drawn per layer
/// after the client's choices. A non-zero deviation of a plaintext (below
/// 2^(|n|+1)) has at most (|n|+1)/55 prime factors that large (37 at 2048
/// bits, 148 at 8192), among about 2^49.7 primes in the range: P divides
/// it with probability below 2^-44.5 at 2048 bits, 2^-42.5 at 8192.
pub const MAC_PRIME_BITS: u32 = 56;
/// Bytes of one MAC correction (a number below P, little-endian).
pub const MAC_CORRECTION_BYTES: usize = 7;
/// Bits of the zero test's weights gamma (one per returned ciphertext).
pub const GAMMA_BITS: u32 = 63;
/// Bits of the key alpha_l of the tags on a layer's returned inputs.
pub const TAG_KEY_BITS: u32 = 64;
/// Bits of each value pad's hash s (a pad a_j = s_0 - v_0 2^j, see
/// docs/PROTOCOL.md 7.6): what a client holds, s_0 or s_0 + (v_1 - v_0) 2^j,
/// is within 2 * 2^j / 2^61 = 2^(j - 60) of uniform whatever the bit, so
/// the 8 pads of a value are within 2^-52 of hiding it, and the V values of
/// an inference within V 2^-52 (2^-41 for LeNet-5's 1,780; larger networks
/// get the larger bound, docs/SECURITY.md). The correction s_0 - s_1 +/- 2^j
/// fits an i64.
pub const VALUE_PAD_BITS: u32 = 61;
/// Bits of each tag pad (its hash s', for circuit outputs; drawn, for the
/// pixels): with alpha 2^j < 2^71, within 2 * 2^71 / 2^126 = 2^(71 - 125)
/// of hiding alpha; over the 8 V output and pixel bits of an inference,
/// within 8 V 2^-54 (2^-40 for LeNet-5). The correction s'_0 - s'_1 +/-
/// alpha 2^j fits an i128.
pub const TAG_PAD_BITS: u32 = 126;
/// Bits of each circuit output q (and of each pixel).
pub const VALUE_BITS: usize = 8;
/// Bytes of one circuit output's pads: its value correction (an i64) and
/// its tag correction (an i128).
pub const OUTPUT_PAD_BYTES: usize = 24;

/// Bytes of one pixel bit's tag pad correction (an i128).
pub const PIXEL_PAD_BYTES: usize = 16;

/// The low `bits` bits of a hash, as a non-negative integer.
pub(crate) fn low_bits(h: Block, bits: u32) -> i128 {
    (h.0 & ((1u128 << bits) - 1)) as i128
}

/// `bits` uniform random bits (at most 128) from the PRG.
pub(crate) fn random_bits(prg: &mut Prg, bits: u32) -> u128 {
    let x = prg.block().0;
    if bits >= 128 { x } else { x & ((1u128 << bits) - 1) }
}

/// The plaintexts of a layer's input for `values` (one per input of the
/// layer, any size), packed as the plan packs that layer's inputs, as
/// residues mod n: the packing is linear over the integers, so pack(c) -
/// pack(a) = pack(c - a) mod n whatever the sizes of c and a.
pub(crate) fn pack_residues(pl: &PlanLayer, values: &[Integer], n: &Integer) -> Result<Vec<Integer>> {
    if values.len() != pl.input.len() {
        return Err(InternalError::PackCount { layer: pl.name.clone(), got: values.len() }.into());
    }
    let b = if pl.is_conv() { pl.slot_bits } else { 0 };
    // Positions in the layout, then the values at them.
    let index: Vec<i64> = (0..values.len() as i64).map(|i| i + 1).collect();
    Ok(pack_at(&input_slots(pl, &index), b, values, n))
}

/// The plaintexts of a layer's shortcut for `values` (one per value of the
/// shortcut's source), packed as the plan packs them, as residues mod n.
pub(crate) fn pack_shortcut_residues(
    pl: &PlanLayer,
    values: &[Integer],
    n: &Integer,
) -> Result<Vec<Integer>> {
    let Some(s) = &pl.shortcut else { return Ok(Vec::new()) };
    if values.len() != s.source.len() {
        return Err(
            InternalError::PackCount { layer: format!("{}'s shortcut", pl.name), got: values.len() }.into()
        );
    }
    let index: Vec<i64> = (0..values.len() as i64).map(|i| i + 1).collect();
    Ok(pack_at(&shortcut_slots(pl, &index), pl.slot_bits, values, n))
}

/// Packs `values` at the 1-based indices of `layout` (0: an empty slot) in
/// slots of `b` bits, mod n.
fn pack_at(layout: &[Vec<i64>], b: u32, values: &[Integer], n: &Integer) -> Vec<Integer> {
    layout
        .iter()
        .map(|slots| {
            let mut m = Integer::new();
            for &i in slots.iter().rev() {
                m <<= b;
                if i > 0 {
                    m += &values[(i - 1) as usize];
                }
            }
            m.modulo_n(n)
        })
        .collect()
}

trait ModN {
    fn modulo_n(self, n: &Integer) -> Integer;
}

impl ModN for Integer {
    /// The residue in [0, n).
    fn modulo_n(self, n: &Integer) -> Integer {
        let mut r = self % n;
        if r < 0 {
            r += n;
        }
        r
    }
}

/// The residue m in [0, n) as the signed plaintext in (-n/2, n/2] that
/// the key's encryption accepts.
pub(crate) fn centred(m: Integer, n: &Integer) -> Integer {
    let half = Integer::from(n >> 1u32);
    if m > half { m - n } else { m }
}

/// The residue in [0, n) of a decrypted (centred) plaintext.
pub(crate) fn residue(m: Integer, n: &Integer) -> Integer {
    m.modulo_n(n)
}

/// c * (1 + n p) mod n^2: adds the plaintext p (any integer, taken mod n) to c.
pub(crate) fn add_residue(key: &PublicKey, c: &Ciphertext, p: &Integer) -> Ciphertext {
    let n2 = key.n_squared();
    let p = Integer::from(p % key.n()).modulo_n(key.n());
    let g = Integer::from(key.n() * &p) + 1u32;
    let v = Integer::from(c.value() * &g) % n2;
    key.ciphertext(v).expect("c (1 + n p) is a unit below n^2 when c is")
}

/// c * rho mod n^2 for a fresh full-strength rho = r^n.
pub(crate) fn rerandomize(key: &PublicKey, c: &Ciphertext, rho: &Integer) -> Result<Ciphertext> {
    key.ciphertext(Integer::from(c.value() * rho) % key.n_squared())
        .map_err(|e| InternalError::Rerandomize(e).into())
}

/// Little-endian u64 at `at` of `bytes` (the caller checked the length).
pub(crate) fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// The `MAC_CORRECTION_BYTES`-byte little-endian number at `at` of `bytes`
/// (the caller checked the length).
pub(crate) fn read_correction(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b[..MAC_CORRECTION_BYTES].copy_from_slice(&bytes[at..at + MAC_CORRECTION_BYTES]);
    u64::from_le_bytes(b)
}

/// Little-endian two's-complement i64 at `at` of `bytes` (the caller checked the length).
pub(crate) fn read_i64(bytes: &[u8], at: usize) -> i64 {
    read_u64(bytes, at) as i64
}

/// Little-endian two's-complement i128 at `at` of `bytes` (the caller checked the length).
pub(crate) fn read_i128(bytes: &[u8], at: usize) -> i128 {
    read_u128(bytes, at) as i128
}

/// Little-endian u128 at `at` of `bytes` (the caller checked the length).
pub(crate) fn read_u128(bytes: &[u8], at: usize) -> u128 {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes[at..at + 16]);
    u128::from_le_bytes(b)
}
