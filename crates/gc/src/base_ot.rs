//! Base OT: Chou and Orlandi's "simplest OT" (eprint 2015/267) over
//! Ristretto255, as random OT: the sender ends with two keys per instance,
//! the receiver with the key of its choice. The OT extension ([`crate::softspoken`]) uses
//! these keys to pad the sums of its GGM trees.
//!
//! Messages: the sender's A = a*G (32 bytes); the receiver's B_i = b_i*G, or
//! A + b_i*G for choice 1 (32 bytes each). Keys: k0_i = H(i, A, B_i, a*B_i),
//! k1_i = H(i, A, B_i, a*(B_i - A)); the receiver computes k_{c_i} = H(i, A,
//! B_i, b_i*A). H is SHA-256 truncated to 128 bits, with a domain label. The
//! instance index and both messages go into the hash, so keys of different
//! instances are independent. The receiver's choice bits are perfectly hidden
//! in its points whatever the sender's A (B_i is uniform either way); in
//! ppdnn's private mode the receiver is the server (its choices are Delta)
//! and the sender the client.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::block::Block;
use crate::error::{Error, Item, PointError, Result};

/// Bytes of one point on the wire (a compressed Ristretto point).
pub const POINT_BYTES: usize = 32;

fn random_scalar() -> Result<Scalar> {
    let mut wide = [0u8; 64];
    getrandom::fill(&mut wide)?;
    let s = Scalar::from_bytes_mod_order_wide(&wide);
    wide.zeroize();
    Ok(s)
}

fn point(bytes: &[u8], what: Item) -> Result<RistrettoPoint> {
    let arr: [u8; 32] =
        bytes.try_into().map_err(|_| Error::Length { what, expected: POINT_BYTES, got: bytes.len() })?;
    let p = CompressedRistretto(arr).decompress().ok_or(PointError::Invalid { point: what })?;
    if p == RistrettoPoint::identity() {
        return Err(PointError::Identity { point: what }.into());
    }
    Ok(p)
}

fn key(i: usize, a: &[u8; 32], b: &[u8; 32], shared: &RistrettoPoint) -> Block {
    let mut h = Sha256::new();
    h.update(b"ppdnn-gc base OT v1");
    h.update((i as u64).to_le_bytes());
    h.update(a);
    h.update(b);
    h.update(shared.compress().as_bytes());
    let d = h.finalize();
    Block::from_bytes(d[..16].try_into().expect("SHA-256 has 32 bytes"))
}

/// The sender's side.
pub struct BaseOtSender {
    a: Scalar,
    big_a: RistrettoPoint,
    a_bytes: [u8; 32],
}

impl std::fmt::Debug for BaseOtSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BaseOtSender { .. }")
    }
}

impl Drop for BaseOtSender {
    fn drop(&mut self) {
        self.a.zeroize();
    }
}

impl BaseOtSender {
    /// Starts: returns the sender and its first message A.
    pub fn new() -> Result<(Self, [u8; 32])> {
        let a = random_scalar()?;
        let big_a = RistrettoPoint::mul_base(&a);
        let a_bytes = big_a.compress().to_bytes();
        Ok((BaseOtSender { a, big_a, a_bytes }, a_bytes))
    }

    /// Reads the receiver's `count` points and returns the key pairs.
    pub fn finish(&self, receiver_msg: &[u8], count: usize) -> Result<Vec<(Block, Block)>> {
        if receiver_msg.len() != count * POINT_BYTES {
            return Err(Error::Length {
                what: Item::BaseOtReceiverMessage,
                expected: count * POINT_BYTES,
                got: receiver_msg.len(),
            });
        }
        let a_a = self.big_a * self.a;
        receiver_msg
            .chunks_exact(POINT_BYTES)
            .enumerate()
            .map(|(i, bytes)| {
                let b = point(bytes, Item::BaseOtPoint { index: i })?;
                let b_bytes: [u8; 32] = bytes.try_into().expect("chunks_exact gives 32 bytes");
                let ab = b * self.a;
                Ok((key(i, &self.a_bytes, &b_bytes, &ab), key(i, &self.a_bytes, &b_bytes, &(ab - a_a))))
            })
            .collect()
    }
}

/// The receiver's side: answers A with its points, keeps one key per choice.
pub fn receive(sender_msg: &[u8], choices: &[bool]) -> Result<(Vec<Block>, Vec<u8>)> {
    let big_a = point(sender_msg, Item::BaseOtSenderMessage)?;
    let a_bytes: [u8; 32] = sender_msg.try_into().expect("point() checked the length");
    let mut keys = Vec::with_capacity(choices.len());
    let mut msg = Vec::with_capacity(choices.len() * POINT_BYTES);
    for (i, &c) in choices.iter().enumerate() {
        let mut b = random_scalar()?;
        let mut big_b = RistrettoPoint::mul_base(&b);
        if c {
            big_b += big_a;
        }
        let b_bytes = big_b.compress().to_bytes();
        keys.push(key(i, &a_bytes, &b_bytes, &(big_a * b)));
        msg.extend_from_slice(&b_bytes);
        b.zeroize();
    }
    Ok((keys, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receiver_gets_the_chosen_key_and_not_the_other() {
        let choices: Vec<bool> = (0..128).map(|i| (i * 7) % 3 == 0).collect();
        let (sender, a) = BaseOtSender::new().unwrap();
        let (keys, msg) = receive(&a, &choices).unwrap();
        let pairs = sender.finish(&msg, 128).unwrap();
        for ((&c, k), (k0, k1)) in choices.iter().zip(&keys).zip(&pairs) {
            let (chosen, other) = if c { (k1, k0) } else { (k0, k1) };
            assert_eq!(k, chosen);
            assert_ne!(k, other);
        }
        // All keys distinct.
        let all: std::collections::HashSet<u128> = pairs.iter().flat_map(|(a, b)| [a.0, b.0]).collect();
        assert_eq!(all.len(), 256);
    }

    #[test]
    fn malformed_messages_are_errors() {
        let (sender, a) = BaseOtSender::new().unwrap();
        assert!(receive(&a[..31], &[true]).is_err());
        assert!(receive(&[0u8; 32], &[true]).is_err(), "the identity is refused");
        assert!(receive(&[0xffu8; 32], &[true]).is_err(), "not a point");
        let (_, msg) = receive(&a, &[true, false]).unwrap();
        assert!(sender.finish(&msg, 3).is_err());
        assert!(sender.finish(&msg[..63], 2).is_err());
        let mut bad = msg.clone();
        bad[32..].fill(0xff);
        assert!(matches!(sender.finish(&bad, 2), Err(Error::Point(_))));
    }
}
