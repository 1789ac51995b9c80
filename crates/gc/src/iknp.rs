//! IKNP correlated-OT extension (Ishai, Kilian, Nissim, Petrank, CRYPTO 2003;
//! the correlated form of Asharov, Lindell, Schneider, Zohner, eprint
//! 2013/552). Against a receiver that deviates, add the consistency check
//! of [`crate::kos`] before anything is sent under the OT keys.
//!
//! The **sender** is the garbler: its Delta (lsb 1) is its choice vector in
//! the 128 base OTs, where it is the base-OT receiver. The **receiver** is the
//! evaluator, with its choice bits (random ones, derandomized later, in
//! ppdnn's private mode), and the base-OT sender. After an extension of m COTs the sender holds q_j (the zero-label
//! of the evaluator's input wire j) and the receiver holds
//! t_j = q_j XOR r_j * Delta (the label of its bit r_j): labels ready for
//! half-gates, no hashing needed. One base-OT phase per session; then any
//! number of extensions of any size, each continuing the same PRG streams.
//!
//! Extension message (receiver to sender): for each base OT i = 0..127, the
//! column u_i = G(k0_i) XOR G(k1_i) XOR r of m' bits (m rounded up to a
//! multiple of 128; padding choice bits are 0), as m'/128 blocks; 16 bytes
//! per COT in all.

use crate::base_ot::{self, BaseOtSender};
use crate::block::{Block, blocks_from_bytes, blocks_to_bytes};
use crate::error::{Item, Result, StateError};
use crate::prg::Prg;

/// Base OTs, and bits of Delta.
pub const KAPPA: usize = 128;

/// The sender's (garbler's) side.
pub struct CotSender {
    delta: Block,
    prgs: Vec<Prg>,
}

impl Drop for CotSender {
    /// Delta opens every label of the session: wiped with it.
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.delta.0.zeroize();
    }
}

impl std::fmt::Debug for CotSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CotSender { .. }")
    }
}

impl CotSender {
    /// Answers the base-OT sender's message with a fresh Delta (lsb 1) as
    /// choice bits. Returns the sender and its answer (128 points).
    pub fn start(base_ot_msg: &[u8]) -> Result<(CotSender, Vec<u8>)> {
        let delta = Block(Prg::from_os()?.block().0 | 1);
        Self::start_with_delta(base_ot_msg, delta)
    }

    /// As [`CotSender::start`] with a given Delta (its lsb must be 1).
    pub fn start_with_delta(base_ot_msg: &[u8], delta: Block) -> Result<(CotSender, Vec<u8>)> {
        if !delta.lsb() {
            return Err(StateError::OtDeltaLsb.into());
        }
        let choices: Vec<bool> = (0..KAPPA).map(|i| (delta.0 >> i) & 1 == 1).collect();
        let (keys, msg) = base_ot::receive(base_ot_msg, &choices)?;
        Ok((CotSender { delta, prgs: keys.into_iter().map(Prg::from_seed).collect() }, msg))
    }

    /// Delta: the correlation, and the garbling's global offset.
    pub fn delta(&self) -> Block {
        self.delta
    }

    /// Reads an extension message for `count` COTs; returns the q_j.
    pub fn extend(&mut self, count: usize, msg: &[u8]) -> Result<Vec<Block>> {
        let nb = count.div_ceil(128);
        let u = blocks_from_bytes(msg, KAPPA * nb, Item::IknpExtension)?;
        let mut columns = vec![Block::ZERO; KAPPA * nb];
        for (i, prg) in self.prgs.iter_mut().enumerate() {
            let col = &mut columns[i * nb..(i + 1) * nb];
            prg.fill(col);
            if (self.delta.0 >> i) & 1 == 1 {
                for (c, &x) in col.iter_mut().zip(&u[i * nb..(i + 1) * nb]) {
                    *c ^= x;
                }
            }
        }
        Ok(rows(&columns, nb, count))
    }
}

/// The receiver's (evaluator's) side, before the base OTs are done.
pub struct CotReceiverSetup {
    sender: BaseOtSender,
}

impl std::fmt::Debug for CotReceiverSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CotReceiverSetup { .. }")
    }
}

/// The receiver's (evaluator's) side.
pub struct CotReceiver {
    prgs: Vec<(Prg, Prg)>,
}

impl std::fmt::Debug for CotReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CotReceiver { .. }")
    }
}

impl CotReceiver {
    /// Starts the base OTs: returns the setup and its first message (32 bytes).
    pub fn start() -> Result<(CotReceiverSetup, [u8; 32])> {
        let (sender, msg) = BaseOtSender::new()?;
        Ok((CotReceiverSetup { sender }, msg))
    }

    /// Extends by one COT per choice bit: returns the t_j and the message for the sender.
    pub fn extend(&mut self, choices: &[bool]) -> (Vec<Block>, Vec<u8>) {
        let nb = choices.len().div_ceil(128);
        let mut r = vec![Block::ZERO; nb];
        for (j, &c) in choices.iter().enumerate() {
            r[j / 128].0 |= (c as u128) << (j % 128);
        }
        let mut t = vec![Block::ZERO; KAPPA * nb];
        let mut u = vec![Block::ZERO; KAPPA * nb];
        for (i, (p0, p1)) in self.prgs.iter_mut().enumerate() {
            let (tc, uc) = (&mut t[i * nb..(i + 1) * nb], &mut u[i * nb..(i + 1) * nb]);
            p0.fill(tc);
            p1.fill(uc);
            for k in 0..nb {
                uc[k] ^= tc[k] ^ r[k];
            }
        }
        (rows(&t, nb, choices.len()), blocks_to_bytes(&u))
    }
}

impl CotReceiverSetup {
    /// Reads the sender's 128 points and finishes the base OTs.
    pub fn finish(self, msg: &[u8]) -> Result<CotReceiver> {
        let pairs = self.sender.finish(msg, KAPPA)?;
        Ok(CotReceiver {
            prgs: pairs.into_iter().map(|(k0, k1)| (Prg::from_seed(k0), Prg::from_seed(k1))).collect(),
        })
    }
}

/// The first `count` rows of the bit matrix whose 128 columns are given
/// (column i is `nb` blocks at columns[i*nb..]): row j has bit i = bit j of column i.
fn rows(columns: &[Block], nb: usize, count: usize) -> Vec<Block> {
    let mut out = Vec::with_capacity(nb * 128);
    let mut tile = [0u128; 128];
    for k in 0..nb {
        for (i, t) in tile.iter_mut().enumerate() {
            *t = columns[i * nb + k].0;
        }
        transpose(&mut tile);
        out.extend(tile.iter().map(|&x| Block(x)));
    }
    out.truncate(count);
    out
}

/// Transposes a 128x128 bit matrix in place: bit c of row r moves to bit r
/// of row c. Seven rounds of swapping off-diagonal sub-blocks.
pub fn transpose(a: &mut [u128; 128]) {
    let mut j = 64usize;
    let mut mask: u128 = u64::MAX as u128; // in each 2j-bit group, the low j bits
    while j > 0 {
        let mut k = 0;
        while k < 128 {
            for r in k..k + j {
                let t = ((a[r] >> j) ^ a[r + j]) & mask;
                a[r] ^= t << j;
                a[r + j] ^= t;
            }
            k += 2 * j;
        }
        j >>= 1;
        mask ^= mask << j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_matches_the_naive_one() {
        let mut prg = Prg::from_seed(Block(9));
        let mut a = [0u128; 128];
        for x in a.iter_mut() {
            *x = prg.block().0;
        }
        let orig = a;
        transpose(&mut a);
        for (r, row) in orig.iter().enumerate() {
            for (c, col) in a.iter().enumerate() {
                assert_eq!((col >> r) & 1, (row >> c) & 1, "({r}, {c})");
            }
        }
    }

    fn pair() -> (CotSender, CotReceiver) {
        let (setup, a) = CotReceiver::start().unwrap();
        let (sender, answer) = CotSender::start(&a).unwrap();
        (sender, setup.finish(&answer).unwrap())
    }

    #[test]
    fn t_is_q_xor_r_times_delta_for_every_cot_over_several_extensions() {
        let (mut sender, mut receiver) = pair();
        assert!(sender.delta().lsb());
        let mut prg = Prg::from_seed(Block(3));
        for count in [1usize, 127, 128, 129, 1000] {
            let choices: Vec<bool> = (0..count).map(|_| prg.block().lsb()).collect();
            let (t, msg) = receiver.extend(&choices);
            assert_eq!(msg.len(), 16 * 128 * count.div_ceil(128));
            let q = sender.extend(count, &msg).unwrap();
            assert_eq!((t.len(), q.len()), (count, count));
            for j in 0..count {
                assert_eq!(t[j], q[j] ^ sender.delta().select(choices[j]), "COT {j} of {count}");
            }
        }
    }

    #[test]
    fn a_wrong_delta_or_a_flipped_bit_breaks_the_relation() {
        let (mut sender, mut receiver) = pair();
        let choices = vec![true, false, true, true];
        let (t, mut msg) = receiver.extend(&choices);
        let good = sender.delta();
        // A flipped bit of the message changes q_j for the flipped column if
        // the sender's Delta bit there is 1; flip in every column to be sure.
        for i in 0..KAPPA {
            msg[i * 16] ^= 1;
        }
        let q = sender.extend(4, &msg).unwrap();
        assert_ne!(t[0], q[0] ^ good.select(choices[0]));
        let wrong = Block(good.0 ^ 2);
        let (t2, msg2) = receiver.extend(&choices);
        let q2 = sender.extend(4, &msg2).unwrap();
        assert!((0..4).any(|j| choices[j] && t2[j] != q2[j] ^ wrong.select(true)));
        assert!((0..4).all(|j| t2[j] == q2[j] ^ good.select(choices[j])));
    }

    #[test]
    fn malformed_messages_are_errors() {
        let (mut sender, mut receiver) = pair();
        let (_, msg) = receiver.extend(&[true; 10]);
        assert!(sender.extend(10, &msg[..msg.len() - 1]).is_err());
        assert!(sender.extend(300, &msg).is_err());
        let (setup, _) = CotReceiver::start().unwrap();
        assert!(setup.finish(&[0u8; 100]).is_err());
        assert!(CotSender::start(&[1u8; 3]).is_err());
        assert!(CotSender::start_with_delta(&[0u8; 32], Block(2)).is_err());
    }
}
