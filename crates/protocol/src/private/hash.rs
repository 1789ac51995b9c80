//! The hashes of the private mode besides the garbling's: all are the
//! tweakable correlation-robust hash of [`ppdnn_gc::aes_hash`], with the
//! session nonce in the high 64 bits of the tweak and a domain in bits
//! 56..63 (the garbling's own tweaks are a counter below 2^56, domain 0),
//! so that no secret (input, tweak) pair recurs across uses or sessions (a
//! constant output's public zero label is hashed under the same index in
//! both pad domains of every layer: its pads hide nothing, the value is
//! public).

use ppdnn_gc::Block;
use ppdnn_gc::aes_hash::tccr_many;

/// What a hash is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Domain {
    /// Value pads of circuit output bits.
    ValuePad = 1,
    /// Tag pads of circuit output bits.
    TagPad = 2,
    /// The OT-to-MAC hash H'.
    Mac = 3,
    /// Tag pads of pixel bits, under the OT keys.
    PixelPad = 4,
}

fn tweak(nonce: u64, domain: Domain, index: u64) -> u128 {
    debug_assert!(index < 1 << 56, "hash indices stay below 2^56");
    ((nonce as u128) << 64) | ((domain as u128) << 56) | index as u128
}

/// H(x_k, (nonce, domain, indices_k)) for every k.
pub(crate) fn hash_at(
    nonce: u64,
    domain: Domain,
    xs: &[Block],
    indices: impl Iterator<Item = u64>,
) -> Vec<Block> {
    let tweaks: Vec<u128> = indices.map(|i| tweak(nonce, domain, i)).collect();
    debug_assert_eq!(tweaks.len(), xs.len());
    let mut out = xs.to_vec();
    tccr_many(&mut out, &tweaks);
    out
}

/// H(x_k, (nonce, domain, first + k)) for every k.
pub(crate) fn hash_run(nonce: u64, domain: Domain, xs: &[Block], first: u64) -> Vec<Block> {
    hash_at(nonce, domain, xs, first..first + xs.len() as u64)
}

/// The hash index of circuit output `o` of the circuit after layer `l`:
/// the layer in bits 48..55, so that no pad tweak repeats within a session.
pub(crate) fn pad_index(l: usize, o: usize) -> u64 {
    debug_assert!(l < 256 && (o as u64) < 1 << 48, "layers and outputs fit their index fields");
    ((l as u64) << 48) | o as u64
}

/// The OT-to-MAC hash reduced mod P: 128 bits before the reduction, so
/// the result is within 2^-72 of uniform mod a 56-bit P.
pub(crate) fn mac_shares(nonce: u64, keys: &[Block], first: u64, p: u64) -> Vec<u64> {
    hash_run(nonce, Domain::Mac, keys, first).iter().map(|h| (h.0 % p as u128) as u64).collect()
}
