//! The consistency check that makes the correlated-OT extension of
//! [`crate::softspoken`] secure against a malicious receiver: a universal
//! hash of every column of the extension's bit matrix, checked column by
//! column against one hash of the choice column (the subspace-VOLE check
//! of SoftSpokenOT, Roy, CRYPTO 2022, eprint 2022/192, section 4, for the
//! repetition code; KOS15's single combined check, whose lemma Roy's
//! appendix D refutes, is not used).
//!
//! After the extension the sender holds columns Q_0..Q_127 and an honest
//! receiver T_0..T_127 and its choice column R with Q_i = T_i XOR Delta_i R.
//! After the extension message the sender draws a random non-zero h (sent
//! to the receiver); the receiver answers with P_h(T_i) for every i and
//! X = P_h(R), where P_h is POLYVAL (RFC 8452) under the key h over a
//! column's blocks; the sender accepts iff P_h(Q_i) = P_h(T_i) XOR Delta_i X
//! for every i. Columns are taken over the extension's m rows, those beyond
//! m being zero on both sides.
//!
//! What a receiver that deviates gets. Whatever it sent (columns, tree
//! message), the sender's columns of group g are functions of the group's
//! value d_g of Delta that the receiver can compute for each of the 2^k
//! values, fixed before h. Its answer is fixed after h; the check of
//! column i passes for exactly the values of d_g its answer fits, unless
//! two different columns collide under P_h (probability at most m/128 /
//! 2^128 per pair, a polynomial of that degree in h). So the verdict tells
//! it whether Delta lies in a set A of its choice (a product over the
//! groups), and it passes with probability |A| / 2^127: learning L bits of
//! Delta costs a factor 2^-L in the chance of passing. And when it passes,
//! for any two values of Delta in A the differences of the sender's
//! columns are all one vector R* (their hashes all equal X, and distinct
//! vectors collide only as above): within A the correlation is a COT with
//! the choice bits R*, exactly as if the receiver had followed the
//! protocol with those choices.
//!
//! X reveals a linear combination of the choice bits; [`CHECK_PADDING`]
//! extra COTs with random choice bits, used for nothing else, hide it
//! (they fill at least one whole block of R, whose term in X is then
//! uniform).

use polyval::Polyval;
use polyval::universal_hash::{KeyInit, UniversalHash};

use crate::block::{Block, bits_to_blocks};
use crate::error::{Item, Result};
use crate::prg::Prg;
use crate::softspoken::{KAPPA, transpose};

/// Extra COTs with random choice bits at the end of the checked extension.
pub const CHECK_PADDING: usize = 256;

/// Bytes of the receiver's answer: the 128 column hashes, then the choice
/// column's hash X, 16 bytes each.
pub const RESPONSE_BYTES: usize = (KAPPA + 1) * 16;

/// The sender's random challenge h, never zero (P_0 of anything is 0).
pub fn challenge() -> Result<Block> {
    let mut prg = Prg::from_os()?;
    loop {
        let h = prg.block();
        if h != Block::ZERO {
            return Ok(h);
        }
    }
}

fn polyval(h: Block, blocks: impl Iterator<Item = Block>) -> Block {
    let mut p = Polyval::new(&h.to_bytes().into());
    let mut buf: Vec<polyval::Block> = Vec::with_capacity(64);
    for b in blocks {
        buf.push(b.to_bytes().into());
        if buf.len() == 64 {
            p.update(&buf);
            buf.clear();
        }
    }
    p.update(&buf);
    Block::from_bytes(p.finalize().into())
}

/// P_h of each of the 128 columns of the bit matrix with the given rows
/// (bit i of row k is bit k of column i; block j of a column holds rows
/// 128j to 128j + 127, rows past the last being zero).
fn column_hashes(h: Block, rows: &[Block]) -> Vec<Block> {
    let mut states: Vec<Polyval> = (0..KAPPA).map(|_| Polyval::new(&h.to_bytes().into())).collect();
    let mut tile = [0u128; 128];
    for chunk in rows.chunks(128) {
        tile.fill(0);
        for (t, r) in tile.iter_mut().zip(chunk) {
            *t = r.0;
        }
        transpose(&mut tile);
        for (p, column_block) in states.iter_mut().zip(tile) {
            p.update(&[Block(column_block).to_bytes().into()]);
        }
    }
    states.into_iter().map(|p| Block::from_bytes(p.finalize().into())).collect()
}

/// P_h of the choice column: block j holds choices 128j to 128j + 127.
fn choice_hash(h: Block, choices: &[bool]) -> Block {
    polyval(h, bits_to_blocks(choices).into_iter())
}

/// The receiver's answer to the challenge `h`, over every COT of the
/// checked extension (its rows t and choice bits, padding included).
pub fn respond(h: Block, t: &[Block], choices: &[bool]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RESPONSE_BYTES);
    for c in column_hashes(h, t) {
        out.extend(c.to_bytes());
    }
    out.extend(choice_hash(h, choices).to_bytes());
    out
}

/// The sender's verdict on the receiver's answer: whether the rows q it
/// holds are consistent, column by column, with one choice column.
pub fn verify(h: Block, q: &[Block], delta: Block, response: &[u8]) -> Result<bool> {
    let answer = crate::blocks_from_bytes(response, KAPPA + 1, Item::KosResponse)?;
    let x = answer[KAPPA];
    let mut ok = true;
    for (i, q_hash) in column_hashes(h, q).into_iter().enumerate() {
        ok &= q_hash == answer[i] ^ x.select((delta.0 >> i) & 1 == 1);
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::softspoken::{CotReceiver, CotSender, GroupBits};

    #[test]
    fn column_hashes_are_polyval_of_the_columns() {
        let mut prg = Prg::from_seed(Block(5));
        for count in [1usize, 128, 300] {
            let rows: Vec<Block> = (0..count).map(|_| prg.block()).collect();
            let h = prg.block();
            let hashes = column_hashes(h, &rows);
            for (i, &got) in hashes.iter().enumerate() {
                let column = (0..count.div_ceil(128)).map(|j| {
                    let bits = (0..128).filter(|&r| 128 * j + r < count);
                    Block(bits.fold(0, |acc, r| acc | ((rows[128 * j + r].0 >> i) & 1) << r))
                });
                assert_eq!(got, polyval(h, column), "column {i} of {count} rows");
            }
        }
    }

    fn extension(count: usize, k: GroupBits) -> (CotSender, Vec<Block>, Vec<bool>, Vec<u8>) {
        let (setup, a) = CotReceiver::start(k).unwrap();
        let (mut sender, answer) = CotSender::start(&a, k).unwrap();
        let (mut receiver, trees) = setup.finish(&answer).unwrap();
        sender.puncture(&trees).unwrap();
        let mut prg = Prg::from_seed(Block(11));
        let choices: Vec<bool> = (0..count).map(|_| prg.block().lsb()).collect();
        let (t, u) = receiver.extend(&choices);
        (sender, t, choices, u)
    }

    #[test]
    fn an_honest_receiver_passes() {
        for (count, k) in [(1usize, GroupBits::FOUR), (300, GroupBits::EIGHT), (1000, GroupBits::FOUR)] {
            let (mut sender, t, choices, u) = extension(count, k);
            let q = sender.extend(count, &u).unwrap();
            let h = challenge().unwrap();
            assert!(verify(h, &q, sender.delta(), &respond(h, &t, &choices)).unwrap());
        }
    }

    #[test]
    fn an_inconsistent_column_or_a_wrong_answer_fails() {
        for k in [GroupBits::FOUR, GroupBits::EIGHT] {
            inconsistent_column_or_wrong_answer_fails(k);
        }
    }

    fn inconsistent_column_or_wrong_answer_fails(k: GroupBits) {
        let count = 600;
        let (mut sender, t, choices, mut u) = extension(count, k);
        // Group 3's column, COT 70: the receiver uses the other choice bit
        // in one group of Delta's bits only.
        let nb = count.div_ceil(128);
        let at = (3 * nb) * 16 + 70 / 8;
        u[at] ^= 1 << (70 % 8);
        let q = sender.extend(count, &u).unwrap();
        let h = challenge().unwrap();
        let shift = 3 * k.get();
        let value = (sender.delta().0 >> shift) & ((1 << k.get()) - 1);
        // An answer that guesses the group's value d of Delta passes if and
        // only if the guess is right: learning k bits of Delta passes with
        // probability 2^-k, as KOS allows (the honest answer is the guess 0).
        for guess in 0..1u128 << k.get() {
            let mut guessed_t = t.clone();
            guessed_t[70] ^= Block(guess << shift);
            let answer = respond(h, &guessed_t, &choices);
            assert_eq!(verify(h, &q, sender.delta(), &answer).unwrap(), guess == value, "guess {guess}");
        }
        assert!(verify(h, &q, sender.delta(), &respond(h, &t, &choices)[..31]).is_err());
    }

    #[test]
    fn a_tampered_answer_fails() {
        let (mut sender, t, choices, u) = extension(300, GroupBits::EIGHT);
        let q = sender.extend(300, &u).unwrap();
        let h = challenge().unwrap();
        let answer = respond(h, &t, &choices);
        for byte in [0usize, 15, 16, 31, RESPONSE_BYTES - 16, RESPONSE_BYTES - 1] {
            let mut wrong = answer.clone();
            wrong[byte] ^= 4;
            assert!(!verify(h, &q, sender.delta(), &wrong).unwrap(), "byte {byte}");
        }
    }

    #[test]
    fn a_flipped_choice_bit_in_the_answer_fails() {
        let (mut sender, t, mut choices, u) = extension(500, GroupBits::FOUR);
        let q = sender.extend(500, &u).unwrap();
        let h = challenge().unwrap();
        choices[17] = !choices[17];
        assert!(!verify(h, &q, sender.delta(), &respond(h, &t, &choices)).unwrap());
    }

    /// A tree message with one sum changed (the one the sender reads when
    /// Delta's bit is 0) passes exactly when that bit is 1: the verdict
    /// tells the receiver one bit of Delta, and costs it half its chance of
    /// passing, as the module's argument says.
    #[test]
    fn a_one_sided_tree_message_passes_exactly_when_delta_says() {
        for bit_set in [false, true] {
            let i = 22;
            let delta = Block(
                (0x1234_5678_9abc_def0_0fed_cba9_8765_4321u128 | 1) & !(1 << i) | (bit_set as u128) << i,
            );
            let (setup, a) = CotReceiver::start(GroupBits::EIGHT).unwrap();
            let (mut sender, answer) = CotSender::start_with_delta(&a, delta, GroupBits::EIGHT).unwrap();
            let (mut receiver, mut trees) = setup.finish(&answer).unwrap();
            trees[32 * i + 16] ^= 1; // S^1 of base OT i
            sender.puncture(&trees).unwrap();
            let mut prg = Prg::from_seed(Block(13));
            let choices: Vec<bool> = (0..700).map(|_| prg.block().lsb()).collect();
            let (t, u) = receiver.extend(&choices);
            let q = sender.extend(700, &u).unwrap();
            let h = challenge().unwrap();
            assert_eq!(
                verify(h, &q, delta, &respond(h, &t, &choices)).unwrap(),
                bit_set,
                "Delta_{i} = {bit_set}"
            );
        }
    }
}
