//! SoftSpokenOT correlated-OT extension (Roy, CRYPTO 2022, eprint 2022/192)
//! with k = [`GroupBits`] (4 or 8 in ppdnn's private mode): IKNP (Ishai, Kilian, Nissim, Petrank, CRYPTO
//! 2003) in the correlated form of Asharov, Lindell, Schneider, Zohner
//! (eprint 2013/552), with the 128 columns in groups of k that share one
//! correction column, so the receiver sends 128/k columns instead of 128.
//! Against a receiver that deviates, add the consistency check of
//! [`crate::kos`] before anything is sent under the OT keys.
//!
//! The **sender** is the garbler, with Delta (lsb 1) the correlation. The
//! **receiver** is the evaluator, with its choice bits (random ones,
//! derandomized later, in ppdnn's private mode), and the base-OT sender.
//! After an extension of m COTs the sender holds q_j (the zero-label of the
//! evaluator's input wire j) and the receiver t_j = q_j XOR r_j * Delta (the
//! label of its bit r_j). One setup per session; then any number of
//! extensions of any size, each continuing the same PRG streams.
//!
//! **Setup.** Delta is cut into 128/k groups of k bits ([`GroupBits::groups`]): group g's value
//! d_g has bit l equal to bit g k + l of Delta. For each group the receiver
//! draws a root and grows a GGM tree of depth k (node children: the first
//! two blocks of [`Prg`] seeded with the node; the child on bit b of node
//! x at level l is x + b 2^l), whose 2^k leaves s_{g,x} are the group's
//! seeds. Base OT i = g k + l (128 in all, the receiver as their sender)
//! carries level l + 1: the receiver sends, for b = 0, 1, the xor of the
//! level's nodes whose bit l is b, masked with its base-OT key k^b_i (the
//! tree message, [`TREE_BYTES`]). The sender's choice in base OT i is the
//! complement of Delta's bit i, so it learns the sums off Delta's path and
//! rebuilds every leaf but s_{g, d_g}, which stays hidden from it.
//!
//! **Extension.** With G_x the next blocks of the stream PRG(s_{g,x}), the
//! receiver computes u_g = xor_x G_x and, for each bit b of the group,
//! column g k + b of T as v_{g,b} = xor over x with bit b set of G_x; it
//! sends c_g = u_g XOR r (r the column of choice bits): 128/k columns, 16/k
//! bytes per COT. The sender computes column g k + b of Q as w_{g,b} XOR
//! Delta_{gk+b} * c_g, with w_{g,b} = xor over x != d_g with bit b of x
//! different from bit b of d_g of G_x, which is v_{g,b} XOR Delta_{gk+b} *
//! u_g: so Q = T XOR r Delta column by column, and rows q_j = t_j XOR r_j
//! Delta. c_g hides r because u_g holds the stream of s_{g, d_g}.

use crate::base_ot::{self, BaseOtSender};
use crate::block::{Block, bits_to_blocks, blocks_from_bytes, blocks_to_bytes};
use crate::error::{Item, Result, StateError};
use crate::prg::Prg;

/// Base OTs, and bits of Delta.
pub const KAPPA: usize = 128;

/// SoftSpokenOT's k: bits of Delta per group, one column sent per group.
/// A larger k sends fewer bytes (16/k per COT) for more PRG work (2^k
/// streams per group, 2^k/k per bit of Delta): k = 4 sends 4 bytes per COT,
/// k = 8 half that for about 7 times the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupBits(usize);

impl GroupBits {
    /// k = 4: 32 groups of 16 seeds.
    pub const FOUR: GroupBits = GroupBits(4);
    /// k = 8: 16 groups of 256 seeds.
    pub const EIGHT: GroupBits = GroupBits(8);

    /// k, if it is 1, 2, 4 or 8 (a divisor of 128 small enough for 2^k streams).
    pub fn new(k: usize) -> Option<GroupBits> {
        matches!(k, 1 | 2 | 4 | 8).then_some(GroupBits(k))
    }

    /// k.
    pub fn get(self) -> usize {
        self.0
    }

    /// Groups of Delta's bits: the columns of an extension message.
    pub fn groups(self) -> usize {
        KAPPA / self.0
    }

    /// Seeds (GGM leaves) per group.
    fn seeds(self) -> usize {
        1 << self.0
    }
}

/// Bytes of the receiver's tree message: two blocks per base OT.
pub const TREE_BYTES: usize = 2 * KAPPA * 16;

/// Bytes of the extension message for `count` COTs: one column of
/// ceil(count/128) blocks per group.
pub fn extension_bytes(count: usize, k: GroupBits) -> usize {
    k.groups() * count.div_ceil(128) * 16
}

/// The two children of a GGM node.
fn children(node: Block) -> [Block; 2] {
    let mut out = [Block::ZERO; 2];
    Prg::from_seed(node).fill(&mut out);
    out
}

/// Group g's value of Delta: bit l is Delta's bit g k + l.
fn group_value(delta: Block, g: usize, k: GroupBits) -> usize {
    ((delta.0 >> (g * k.0)) as usize) & (k.seeds() - 1)
}

fn xor_into(acc: &mut [Block], x: &[Block]) {
    for (a, &b) in acc.iter_mut().zip(x) {
        *a ^= b;
    }
}

/// The column sums of a group: fed the streams G_x in the order x = 0, 1,
/// ..., 2^k - 1, it adds to column b the xor of the G_x with bit b of x
/// set, and ends with the xor of them all, in about 2 xors per stream
/// instead of one per set bit: the sums of aligned runs of 2^b streams are
/// combined pairwise, level by level, like the carries of a binary counter,
/// and column b takes the runs at odd positions of level b.
struct LevelSums {
    nb: usize,
    k: usize,
    /// Level b's pending run (the even one of its pair), nb blocks each;
    /// level k's run is the sum of every stream.
    pending: Vec<Block>,
    current: Vec<Block>,
}

impl LevelSums {
    fn new(nb: usize, k: GroupBits) -> Self {
        let k = k.0;
        LevelSums { nb, k, pending: vec![Block::ZERO; (k + 1) * nb], current: vec![Block::ZERO; nb] }
    }

    /// Stream x (filled by `fill`) into the columns `cols` (k columns of nb blocks).
    fn push(&mut self, x: usize, cols: &mut [Block], fill: impl FnOnce(&mut [Block])) {
        let nb = self.nb;
        fill(&mut self.current);
        let mut b = 0;
        while b < self.k && (x >> b) & 1 == 1 {
            xor_into(&mut cols[b * nb..(b + 1) * nb], &self.current);
            xor_into(&mut self.current, &self.pending[b * nb..(b + 1) * nb]);
            b += 1;
        }
        self.pending[b * nb..(b + 1) * nb].copy_from_slice(&self.current);
    }

    /// The xor of all 2^k streams, once the last has been pushed.
    fn total(&self) -> &[Block] {
        &self.pending[self.k * self.nb..]
    }
}

/// The sender's (garbler's) side.
pub struct CotSender {
    k: GroupBits,
    delta: Block,
    /// The base-OT keys k^{not Delta_i}_i, until the tree message arrives.
    keys: Vec<Block>,
    /// Per group, the streams of its seeds (None at x = d_g), once punctured.
    streams: Option<Vec<Option<Prg>>>,
}

impl Drop for CotSender {
    /// Delta opens every label of the session: wiped with it.
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.delta.0.zeroize();
        self.keys.zeroize();
    }
}

impl std::fmt::Debug for CotSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CotSender { .. }")
    }
}

impl CotSender {
    /// Answers the base-OT sender's message with a fresh Delta (lsb 1).
    /// Returns the sender and its answer (128 points).
    pub fn start(base_ot_msg: &[u8], k: GroupBits) -> Result<(CotSender, Vec<u8>)> {
        let delta = Block(Prg::from_os()?.block().0 | 1);
        Self::start_with_delta(base_ot_msg, delta, k)
    }

    /// As [`CotSender::start`] with a given Delta (its lsb must be 1). The
    /// choice in base OT i is the complement of Delta's bit i.
    pub fn start_with_delta(base_ot_msg: &[u8], delta: Block, k: GroupBits) -> Result<(CotSender, Vec<u8>)> {
        if !delta.lsb() {
            return Err(StateError::OtDeltaLsb.into());
        }
        let choices: Vec<bool> = (0..KAPPA).map(|i| (delta.0 >> i) & 1 == 0).collect();
        let (keys, msg) = base_ot::receive(base_ot_msg, &choices)?;
        Ok((CotSender { k, delta, keys, streams: None }, msg))
    }

    /// Delta: the correlation, and the garbling's global offset.
    pub fn delta(&self) -> Block {
        self.delta
    }

    /// Reads the receiver's tree message and rebuilds every seed but the one
    /// at Delta's value in each group.
    pub fn puncture(&mut self, tree_msg: &[u8]) -> Result<()> {
        if self.streams.is_some() {
            return Err(StateError::OtTreesTwice.into());
        }
        let sums = blocks_from_bytes(tree_msg, 2 * KAPPA, Item::OtTrees)?;
        let k = self.k;
        let mut streams = Vec::with_capacity(k.groups() * k.seeds());
        for g in 0..k.groups() {
            let d = group_value(self.delta, g, k);
            let mut level: Vec<Option<Block>> = vec![None];
            for l in 0..k.0 {
                let mut next = vec![None; 2 << l];
                for (x, node) in level.iter().enumerate() {
                    if let Some(node) = node {
                        let [c0, c1] = children(*node);
                        (next[x], next[x | 1 << l]) = (Some(c0), Some(c1));
                    }
                }
                let bit = 1 - ((d >> l) & 1);
                let i = g * k.0 + l;
                let sibling = (d & ((1 << l) - 1)) | bit << l;
                let mut sum = sums[2 * i + bit] ^ self.keys[i];
                for (x, node) in next.iter().enumerate() {
                    if (x >> l) & 1 == bit && x != sibling {
                        sum ^= node.expect("off the path, every node of the level is known");
                    }
                }
                next[sibling] = Some(sum);
                level = next;
            }
            streams.extend(level.into_iter().map(|s| s.map(Prg::from_seed)));
        }
        self.streams = Some(streams);
        use zeroize::Zeroize;
        self.keys.zeroize();
        Ok(())
    }

    /// Reads an extension message for `count` COTs; returns the q_j.
    pub fn extend(&mut self, count: usize, msg: &[u8]) -> Result<Vec<Block>> {
        let nb = count.div_ceil(128);
        let k = self.k;
        let c = blocks_from_bytes(msg, k.groups() * nb, Item::OtExtension)?;
        let delta = self.delta;
        let streams = self.streams.as_mut().ok_or(StateError::OtNotPunctured)?;
        let mut q = vec![Block::ZERO; KAPPA * nb];
        let mut sums = LevelSums::new(nb, k);
        let (seeds, width) = (k.seeds(), k.0 * nb);
        for g in 0..k.groups() {
            let d = group_value(delta, g, k);
            let cols = &mut q[g * width..(g + 1) * width];
            let group = &mut streams[g * seeds..(g + 1) * seeds];
            // In the order of x' = x xor d, so that column b sums the streams
            // whose x' has bit b; the missing seed (x' = 0) is in none.
            for x in 0..seeds {
                match &mut group[x ^ d] {
                    Some(prg) => sums.push(x, cols, |g_x| prg.fill(g_x)),
                    None => sums.push(x, cols, |g_x| g_x.fill(Block::ZERO)),
                }
            }
            for b in (0..k.0).filter(|b| (d >> b) & 1 == 1) {
                xor_into(&mut cols[b * nb..(b + 1) * nb], &c[g * nb..(g + 1) * nb]);
            }
        }
        Ok(rows(&q, nb, count))
    }
}

/// The receiver's (evaluator's) side, before the base OTs are done.
pub struct CotReceiverSetup {
    sender: BaseOtSender,
    k: GroupBits,
}

impl std::fmt::Debug for CotReceiverSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CotReceiverSetup { .. }")
    }
}

/// The receiver's (evaluator's) side.
pub struct CotReceiver {
    k: GroupBits,
    /// Per group, the streams of all its seeds.
    streams: Vec<Prg>,
}

impl std::fmt::Debug for CotReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CotReceiver { .. }")
    }
}

impl CotReceiver {
    /// Starts the base OTs for an extension with groups of k bits: returns
    /// the setup and its first message (32 bytes).
    pub fn start(k: GroupBits) -> Result<(CotReceiverSetup, [u8; 32])> {
        let (sender, msg) = BaseOtSender::new()?;
        Ok((CotReceiverSetup { sender, k }, msg))
    }

    /// Extends by one COT per choice bit: returns the t_j and the message for the sender.
    pub fn extend(&mut self, choices: &[bool]) -> (Vec<Block>, Vec<u8>) {
        let nb = choices.len().div_ceil(128);
        let r = bits_to_blocks(choices);
        let mut t = vec![Block::ZERO; KAPPA * nb];
        let k = self.k;
        let mut c = vec![Block::ZERO; k.groups() * nb];
        let mut sums = LevelSums::new(nb, k);
        let (seeds, width) = (k.seeds(), k.0 * nb);
        for g in 0..k.groups() {
            let cols = &mut t[g * width..(g + 1) * width];
            for (x, prg) in self.streams[g * seeds..(g + 1) * seeds].iter_mut().enumerate() {
                sums.push(x, cols, |g_x| prg.fill(g_x));
            }
            let u = &mut c[g * nb..(g + 1) * nb];
            u.copy_from_slice(sums.total());
            xor_into(u, &r);
        }
        (rows(&t, nb, choices.len()), blocks_to_bytes(&c))
    }
}

impl CotReceiverSetup {
    /// Reads the sender's 128 points and finishes the base OTs; grows the
    /// GGM trees. Returns the receiver and its tree message for
    /// [`CotSender::puncture`].
    pub fn finish(self, msg: &[u8]) -> Result<(CotReceiver, Vec<u8>)> {
        let pairs = self.sender.finish(msg, KAPPA)?;
        let mut roots = Prg::from_os()?;
        let mut tree_msg = Vec::with_capacity(TREE_BYTES);
        let k = self.k;
        let mut streams = Vec::with_capacity(k.groups() * k.seeds());
        for g in 0..k.groups() {
            let mut level = vec![roots.block()];
            for l in 0..k.0 {
                let mut next = vec![Block::ZERO; 2 << l];
                for (x, &node) in level.iter().enumerate() {
                    [next[x], next[x | 1 << l]] = children(node);
                }
                let mut sums = [Block::ZERO; 2];
                for (x, &node) in next.iter().enumerate() {
                    sums[(x >> l) & 1] ^= node;
                }
                let (k0, k1) = pairs[g * k.0 + l];
                tree_msg.extend((sums[0] ^ k0).to_bytes());
                tree_msg.extend((sums[1] ^ k1).to_bytes());
                level = next;
            }
            streams.extend(level.into_iter().map(Prg::from_seed));
        }
        Ok((CotReceiver { k, streams }, tree_msg))
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

    const BOTH: [GroupBits; 2] = [GroupBits::FOUR, GroupBits::EIGHT];

    fn pair_with(delta: Block, k: GroupBits) -> (CotSender, CotReceiver) {
        let (setup, a) = CotReceiver::start(k).unwrap();
        let (mut sender, answer) = CotSender::start_with_delta(&a, delta, k).unwrap();
        let (receiver, trees) = setup.finish(&answer).unwrap();
        assert_eq!(trees.len(), TREE_BYTES);
        sender.puncture(&trees).unwrap();
        (sender, receiver)
    }

    fn pair(k: GroupBits) -> (CotSender, CotReceiver) {
        pair_with(Block(Prg::from_os().unwrap().block().0 | 1), k)
    }

    #[test]
    fn t_is_q_xor_r_times_delta_for_every_cot_over_several_extensions() {
        // Deltas whose groups take the extreme values too (all zeros but
        // the lsb, all ones, alternating).
        let deltas = [
            Block(1),
            Block(u128::MAX),
            Block(0x5555_5555_5555_5555_5555_5555_5555_5555),
            pair(GroupBits::FOUR).0.delta(),
        ];
        for (delta, k) in deltas.into_iter().flat_map(|d| BOTH.map(|k| (d, k))) {
            let (mut sender, mut receiver) = pair_with(delta, k);
            let mut prg = Prg::from_seed(Block(3));
            for count in [1usize, 127, 128, 129, 1000] {
                let choices: Vec<bool> = (0..count).map(|_| prg.block().lsb()).collect();
                let (t, msg) = receiver.extend(&choices);
                assert_eq!(msg.len(), extension_bytes(count, k));
                assert_eq!(msg.len(), 16 / k.get() * 128 * count.div_ceil(128));
                let q = sender.extend(count, &msg).unwrap();
                assert_eq!((t.len(), q.len()), (count, count));
                for j in 0..count {
                    assert_eq!(t[j], q[j] ^ delta.select(choices[j]), "COT {j} of {count}");
                }
            }
        }
    }

    /// The sender rebuilds every seed but the one at Delta's value, and its
    /// streams are the receiver's.
    #[test]
    fn the_sender_misses_exactly_the_seed_at_deltas_value() {
        for k in BOTH {
            misses_exactly_the_seed_at_deltas_value(k);
        }
    }

    fn misses_exactly_the_seed_at_deltas_value(k: GroupBits) {
        let (mut sender, mut receiver) = pair(k);
        let delta = sender.delta();
        let streams = sender.streams.as_mut().unwrap();
        let seeds = k.seeds();
        for g in 0..k.groups() {
            let d = group_value(delta, g, k);
            for x in 0..seeds {
                let mut theirs = [Block::ZERO; 2];
                receiver.streams[g * seeds + x].fill(&mut theirs);
                match &mut streams[g * seeds + x] {
                    None => assert_eq!(x, d, "group {g}: only seed d_g is missing"),
                    Some(prg) => {
                        assert_ne!(x, d, "group {g}: seed d_g must stay hidden");
                        let mut mine = [Block::ZERO; 2];
                        prg.fill(&mut mine);
                        assert_eq!(mine, theirs, "group {g}, seed {x}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_flipped_bit_breaks_the_relation_only_where_delta_says() {
        for k in BOTH {
            flipped_bit_breaks_the_relation_only_where_delta_says(k);
        }
    }

    fn flipped_bit_breaks_the_relation_only_where_delta_says(k: GroupBits) {
        let (mut sender, mut receiver) = pair(k);
        let delta = sender.delta();
        let choices = vec![true, false, true, true];
        let (t, mut msg) = receiver.extend(&choices);
        // Flip COT 0's bit in group 5's column: q_0 changes in the group's
        // bits where Delta is 1, as a different choice bit there would.
        msg[5 * 16] ^= 1;
        let q = sender.extend(4, &msg).unwrap();
        let mask: u128 = ((k.seeds() - 1) as u128) << (5 * k.get());
        assert_eq!(t[0] ^ q[0] ^ delta.select(choices[0]), Block(delta.0 & mask));
        assert!((1..4).all(|j| t[j] == q[j] ^ delta.select(choices[j])));
    }

    #[test]
    fn a_corrupted_tree_message_gives_the_sender_other_seeds() {
        let (setup, a) = CotReceiver::start(GroupBits::FOUR).unwrap();
        let (mut sender, answer) = CotSender::start(&a, GroupBits::FOUR).unwrap();
        let (mut receiver, mut trees) = setup.finish(&answer).unwrap();
        // Flip both sums of base OT 0 (group 0, level 1): whichever the
        // sender reads, its seeds of group 0 with bit 0 off Delta's change.
        trees[0] ^= 1;
        trees[16] ^= 1;
        sender.puncture(&trees).unwrap();
        let choices = vec![false; 128];
        let (t, msg) = receiver.extend(&choices);
        let q = sender.extend(128, &msg).unwrap();
        assert!((0..128).any(|j| t[j] != q[j]), "the corruption shows in the rows");
    }

    #[test]
    fn malformed_messages_and_steps_out_of_order_are_errors() {
        let (setup, a) = CotReceiver::start(GroupBits::FOUR).unwrap();
        let (mut sender, answer) = CotSender::start(&a, GroupBits::FOUR).unwrap();
        let (mut receiver, trees) = setup.finish(&answer).unwrap();
        let (_, msg) = receiver.extend(&[true; 10]);
        assert!(matches!(sender.extend(10, &msg), Err(crate::Error::State(StateError::OtNotPunctured))));
        assert!(sender.puncture(&trees[..TREE_BYTES - 1]).is_err());
        sender.puncture(&trees).unwrap();
        assert!(matches!(sender.puncture(&trees), Err(crate::Error::State(StateError::OtTreesTwice))));
        assert!(sender.extend(10, &msg[..msg.len() - 1]).is_err());
        assert!(sender.extend(300, &msg).is_err());
        let (setup, _) = CotReceiver::start(GroupBits::FOUR).unwrap();
        assert!(setup.finish(&[0u8; 100]).is_err());
        assert!(CotSender::start(&[1u8; 3], GroupBits::FOUR).is_err());
        assert!(CotSender::start_with_delta(&[0u8; 32], Block(2), GroupBits::FOUR).is_err());
    }
}
