//! Fixed-key AES as a random permutation, and the tweakable
//! correlation-robust hash of half-gates built on it.
//!
//! The hash is TMMO of Guo, Katz, Wang and Yu (IEEE S&P 2020, eprint
//! 2019/074, section 7): H(x, i) = pi(pi(x) xor i) xor pi(x), with pi the
//! AES-128 permutation under a fixed public key. It is a tweakable
//! circular correlation-robust hash in the ideal-permutation model, which is
//! what half-gates with free XOR needs; the bare pi(x) xor x is not, and is
//! not used.

use std::sync::OnceLock;

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};

use crate::block::Block;

/// The fixed, public AES key of the permutation: these 16 bytes, derived
/// from nothing (any public constant would do; a compatible client copies
/// them, docs/PROTOCOL.md 7.5).
const FIXED_KEY: [u8; 16] =
    [0x5c, 0x0b, 0x8e, 0x2f, 0x71, 0x9a, 0x44, 0xd3, 0x1e, 0x6b, 0xa0, 0x37, 0xc8, 0x95, 0x02, 0xf6];

fn fixed() -> &'static Aes128 {
    static AES: OnceLock<Aes128> = OnceLock::new();
    AES.get_or_init(|| Aes128::new(&FIXED_KEY.into()))
}

/// pi applied to every block in place (batched, so AES-NI pipelines them).
pub fn permute(blocks: &mut [Block]) {
    let aes = fixed();
    for chunk in blocks.chunks_mut(BATCH) {
        let mut buf = [aes::Block::default(); BATCH];
        for (b, x) in buf.iter_mut().zip(chunk.iter()) {
            *b = x.to_bytes().into();
        }
        aes.encrypt_blocks(&mut buf[..chunk.len()]);
        for (x, b) in chunk.iter_mut().zip(buf.iter()) {
            *x = Block::from_bytes(b.0);
        }
    }
}

/// Blocks per AES call that every backend of the `aes` crate takes on its
/// parallel path (AES-NI: 8; VAES-256: 32; VAES-512: 64); fewer than the
/// backend's own count go one block at a time.
pub const BATCH: usize = 64;

/// H(x_k, salt XOR tweak_k) for up to [`BATCH`] blocks in place (the tweak
/// in the low 64 bits, a session's salt in the high ones). Batches of more
/// than 8 are padded to 64, so every AES call takes the parallel path of
/// whichever backend the CPU selects.
#[inline]
pub fn tccr_batch(xs: &mut [Block], tweaks: &[u64], salt: u128) {
    let n = xs.len();
    assert!(n <= BATCH && tweaks.len() == n, "a hash batch holds at most 64 blocks and one tweak each");
    let aes = fixed();
    let mut buf = [aes::Block::default(); BATCH];
    let padded = if n <= 8 { 8 } else { BATCH };
    for k in 0..n {
        buf[k] = xs[k].0.to_le_bytes().into();
    }
    aes.encrypt_blocks(&mut buf[..padded]);
    let mut first = [0u128; BATCH];
    for k in 0..n {
        first[k] = u128::from_le_bytes(buf[k].0);
        buf[k] = (first[k] ^ tweaks[k] as u128 ^ salt).to_le_bytes().into();
    }
    aes.encrypt_blocks(&mut buf[..padded]);
    for k in 0..n {
        xs[k] = Block(u128::from_le_bytes(buf[k].0) ^ first[k]);
    }
}

/// H(x_k, tweak_k) for every k, in place: TMMO with the tweak as a block.
pub fn tccr_many(xs: &mut [Block], tweaks: &[u128]) {
    debug_assert_eq!(xs.len(), tweaks.len());
    for (chunk, tw) in xs.chunks_mut(BATCH).zip(tweaks.chunks(BATCH)) {
        let mut first = [Block::ZERO; BATCH];
        let n = chunk.len();
        first[..n].copy_from_slice(chunk);
        permute(&mut first[..n]);
        let mut second = first;
        for (s, &t) in second[..n].iter_mut().zip(tw) {
            *s ^= Block(t);
        }
        permute(&mut second[..n]);
        for k in 0..n {
            chunk[k] = second[k] ^ first[k];
        }
    }
}

/// H(x, tweak) for one block.
pub fn tccr(x: Block, tweak: u128) -> Block {
    let mut v = [x];
    tccr_many(&mut v, &[tweak]);
    v[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_is_aes_under_the_fixed_key() {
        // AES-128 is a permutation: distinct inputs, distinct outputs; and
        // batching does not change results.
        let mut xs: Vec<Block> = (0..40u128).map(Block).collect();
        let singles: Vec<Block> = xs
            .iter()
            .map(|&x| {
                let mut v = [x];
                permute(&mut v);
                v[0]
            })
            .collect();
        permute(&mut xs);
        assert_eq!(xs, singles);
        let distinct: std::collections::HashSet<u128> = xs.iter().map(|b| b.0).collect();
        assert_eq!(distinct.len(), 40);
    }

    #[test]
    fn the_tweak_changes_the_hash_and_the_hash_is_not_pi_xor_x() {
        let x = Block(42);
        assert_ne!(tccr(x, 0), tccr(x, 1));
        let mut p = [x];
        permute(&mut p);
        assert_ne!(tccr(x, 0), p[0] ^ x);
        let mut many = vec![x, x, Block(7)];
        tccr_many(&mut many, &[0, 1, 5]);
        assert_eq!(many, vec![tccr(x, 0), tccr(x, 1), tccr(Block(7), 5)]);
        let mut sixteen: Vec<Block> = (0..16u128).map(Block).collect();
        let tweaks: Vec<u64> = (100..116).collect();
        let salt = 7u128 << 64;
        let want: Vec<Block> =
            sixteen.iter().zip(&tweaks).map(|(&b, &t)| tccr(b, salt | t as u128)).collect();
        tccr_batch(&mut sixteen, &tweaks, salt);
        assert_eq!(sixteen, want);
    }
}
