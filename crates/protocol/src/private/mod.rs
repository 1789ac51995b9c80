//! The model-private mode (../../docs/PROTOCOL.md, "Private mode"): the
//! server masks each layer's packed accumulators with carry-aware slot
//! masks, the client decrypts only uniformly random digits and garbles the
//! between-layer circuit, the server evaluates it with its masks as
//! correlated-OT choice bits and learns the next layer's inputs only under
//! the client's additive masks. The client learns the logits (or only the
//! label); every ciphertext the server returns carries fresh full-strength
//! randomness r'^n of the server's choosing.

pub mod circuits;
mod client;
mod server;

pub use circuits::PrivateCircuits;
pub use client::{GarblingStats, PrivateClientSession, extension_bytes};
pub use server::PrivateServerSession;

use ppdnn_gc::prg::Prg;
use ppdnn_paillier::{Ciphertext, Integer, PublicKey};

use crate::error::{InternalError, Result};
use crate::layout::input_slots;
use crate::plan::PlanLayer;

/// Bytes of the base-OT answer in the client's round 0 (128 points).
pub const BASE_OT_ANSWER_BYTES: usize = 128 * 32;
/// Bytes of the server's base-OT message (one point).
pub const BASE_OT_SETUP_BYTES: usize = 32;
/// Bytes of one wire label.
pub const LABEL_BYTES: usize = 16;

/// `bits` uniform random bits (at most 64) from the PRG.
pub(crate) fn random_below_pow2(prg: &mut Prg, bits: u32) -> u64 {
    let x = prg.block().0 as u64;
    if bits >= 64 { x } else { x & ((1u64 << bits) - 1) }
}

/// The next layer's input plaintexts for `values` (one per input of the
/// layer, any i64), packed as the plan packs that layer's inputs, as
/// residues mod n: the packing is linear over the integers, so
/// pack(-s) + pack(w) = pack(q) mod n whatever the sizes of s and w.
pub(crate) fn pack_residues(pl: &PlanLayer, values: &[i64], n: &Integer) -> Result<Vec<Integer>> {
    if values.len() != pl.input.len() {
        return Err(InternalError::PackCount { layer: pl.name.clone(), got: values.len() }.into());
    }
    let b = if pl.is_conv() { pl.slot_bits } else { 0 };
    Ok(input_slots(pl, values)
        .iter()
        .map(|slots| {
            let mut m = Integer::new();
            for &v in slots.iter().rev() {
                m <<= b;
                m += v;
            }
            m.modulo_n(n)
        })
        .collect())
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

/// c * (1 + n p) mod n^2: adds the plaintext p (a residue mod n) to c.
pub(crate) fn add_residue(key: &PublicKey, c: &Ciphertext, p: &Integer) -> Ciphertext {
    let n2 = key.n_squared();
    let g = Integer::from(key.n() * p) + 1u32;
    let v = Integer::from(c.value() * &g) % n2;
    key.ciphertext(v).expect("c (1 + n p) is a unit below n^2 when c is")
}
