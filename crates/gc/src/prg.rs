//! A pseudorandom generator: AES-128 in counter mode under a secret seed.

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use zeroize::Zeroize;

use crate::block::Block;
use crate::error::Result;

/// AES-CTR: block k of the stream is AES_seed(k). Seeded from the operating
/// system ([`Prg::from_os`]) for fresh randomness, or from a given seed (the
/// OT extension's seed streams, where both sides must agree).
pub struct Prg {
    aes: Aes128,
    counter: u128,
}

impl std::fmt::Debug for Prg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prg { .. }")
    }
}

impl Prg {
    /// A generator seeded with 16 bytes from the operating system's CSPRNG.
    pub fn from_os() -> Result<Prg> {
        let mut seed = [0u8; 16];
        getrandom::fill(&mut seed)?;
        let prg = Prg::from_seed(Block::from_bytes(seed));
        seed.zeroize();
        Ok(prg)
    }

    /// A generator with the given seed.
    pub fn from_seed(seed: Block) -> Prg {
        let mut key = seed.to_bytes();
        let aes = Aes128::new(&key.into());
        key.zeroize();
        Prg { aes, counter: 0 }
    }

    /// Fills `out` with the next blocks of the stream.
    pub fn fill(&mut self, out: &mut [Block]) {
        const BATCH: usize = crate::aes_hash::BATCH;
        for chunk in out.chunks_mut(BATCH) {
            let mut buf = [aes::Block::default(); BATCH];
            for b in buf.iter_mut().take(chunk.len()) {
                *b = self.counter.to_le_bytes().into();
                self.counter += 1;
            }
            self.aes.encrypt_blocks(&mut buf[..chunk.len()]);
            for (x, b) in chunk.iter_mut().zip(buf.iter()) {
                *x = Block::from_bytes(b.0);
            }
        }
    }

    /// The next block.
    pub fn block(&mut self) -> Block {
        let mut b = [Block::ZERO];
        self.fill(&mut b);
        b[0]
    }

    /// `n` fresh blocks.
    pub fn blocks(&mut self, n: usize) -> Vec<Block> {
        let mut v = vec![Block::ZERO; n];
        self.fill(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_repeat_for_a_seed_and_differ_across_seeds() {
        let a = Prg::from_seed(Block(1)).blocks(20);
        let b = Prg::from_seed(Block(1)).blocks(20);
        let c = Prg::from_seed(Block(2)).blocks(20);
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Drawing in pieces gives the same stream.
        let mut p = Prg::from_seed(Block(1));
        let mut pieces = p.blocks(7);
        pieces.extend(p.blocks(13));
        assert_eq!(pieces, a);
        let x = Prg::from_os().unwrap().blocks(4);
        let y = Prg::from_os().unwrap().blocks(4);
        assert_ne!(x, y);
    }
}
