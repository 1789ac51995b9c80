//! The 128-bit block: wire labels, hash outputs, OT messages.

use std::ops::{BitXor, BitXorAssign};

/// A 128-bit value. Wire labels, Delta, OT outputs and hash outputs are blocks.
/// Its bytes on the wire are the little-endian bytes of the `u128`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Block(pub u128);

impl zeroize::Zeroize for Block {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for Block {
    /// Shows only the permute bit: a block is often a secret label.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Block(lsb={})", self.lsb() as u8)
    }
}

impl Block {
    /// The all-zero block.
    pub const ZERO: Block = Block(0);
    /// Bytes of one block on the wire.
    pub const BYTES: usize = 16;

    /// The least significant bit: the point-and-permute (colour) bit of a label.
    pub fn lsb(self) -> bool {
        self.0 & 1 == 1
    }

    /// `self` if `bit`, else zero: the product bit * block, without a branch.
    pub fn select(self, bit: bool) -> Block {
        Block(self.0 & (bit as u128).wrapping_neg())
    }

    /// The little-endian bytes.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_le_bytes()
    }

    /// From little-endian bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Block {
        Block(u128::from_le_bytes(bytes))
    }
}

impl BitXor for Block {
    type Output = Block;
    fn bitxor(self, rhs: Block) -> Block {
        Block(self.0 ^ rhs.0)
    }
}

impl BitXorAssign for Block {
    fn bitxor_assign(&mut self, rhs: Block) {
        self.0 ^= rhs.0;
    }
}

/// Bits packed into blocks: bit k is bit k mod 128 of block k / 128 (the
/// last block's unused high bits 0).
pub(crate) fn bits_to_blocks(bits: &[bool]) -> Vec<Block> {
    let mut out = vec![Block::ZERO; bits.len().div_ceil(128)];
    for (k, &b) in bits.iter().enumerate() {
        out[k / 128].0 |= (b as u128) << (k % 128);
    }
    out
}

/// Blocks back to back, 16 little-endian bytes each.
pub fn blocks_to_bytes(blocks: &[Block]) -> Vec<u8> {
    let mut out = Vec::with_capacity(blocks.len() * Block::BYTES);
    for b in blocks {
        out.extend_from_slice(&b.to_bytes());
    }
    out
}

/// Exactly `count` blocks from `bytes`, or an error naming `what` (an
/// [`Item`](crate::Item), or the caller's own name for the message).
pub fn blocks_from_bytes(
    bytes: &[u8],
    count: usize,
    what: impl Into<crate::Item>,
) -> crate::Result<Vec<Block>> {
    if bytes.len() != count * Block::BYTES {
        return Err(crate::Error::Length {
            what: what.into(),
            expected: count * Block::BYTES,
            got: bytes.len(),
        });
    }
    Ok(bytes
        .chunks_exact(Block::BYTES)
        .map(|c| Block::from_bytes(c.try_into().expect("chunks_exact gives 16-byte chunks")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_and_bytes() {
        let b = Block(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        assert_eq!(b.select(true), b);
        assert_eq!(b.select(false), Block::ZERO);
        assert_eq!(Block::from_bytes(b.to_bytes()), b);
        assert!(b.lsb());
        let bytes = blocks_to_bytes(&[b, Block(2)]);
        assert_eq!(blocks_from_bytes(&bytes, 2, crate::Item::OutputLabels).unwrap(), vec![b, Block(2)]);
        assert!(blocks_from_bytes(&bytes[1..], 2, "x").is_err());
        assert_eq!(format!("{b:?}"), "Block(lsb=1)");
    }
}
