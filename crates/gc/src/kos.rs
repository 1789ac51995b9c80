//! The consistency check that makes the correlated-OT extension of
//! [`crate::softspoken`] secure against a malicious receiver (Keller,
//! Orsini, Scholl, CRYPTO 2015, eprint 2015/546, section 4, for IKNP; the
//! same check for SoftSpokenOT, Roy, CRYPTO 2022, eprint 2022/192, section
//! 5), with the challenge vector a polynomial hash.
//!
//! A receiver that follows the extension holds t_k = q_k XOR r_k Delta for
//! every COT k; a cheating one can use a different choice bit in different
//! groups' columns of its extension message, or send a tree message that
//! gives the sender other seeds than its own (which seeds depends on
//! Delta's value in the group), and from the sender's later messages learn
//! bits of Delta. The check: after the extension message, the sender draws a random
//! h (sent to the receiver); the receiver answers with T = P_h(t) and X =
//! P_h(r e), where P_h is POLYVAL (RFC 8452) under the key h over the
//! sequence, and e is the identity of POLYVAL's product; the sender accepts
//! iff P_h(q) XOR T = X * Delta. An honest receiver passes always. Because
//! P_h is linear, a deviation passes only if it is consistent with a guess
//! of Delta's bits in the inconsistent groups, or if h is a root of a
//! non-zero polynomial of degree at most m: the probability of learning k
//! bits of Delta and passing is at most 2^-k + m / 2^128 (KOS15's argument
//! with the independent challenges replaced by the powers of h, an
//! (m / 2^128)-almost universal linear hash, the form SoftSpokenOT's proof,
//! Roy, CRYPTO 2022, eprint 2022/192, section 5, covers).
//!
//! X reveals a linear combination of the choice bits; [`CHECK_PADDING`]
//! extra COTs with random choice bits, used for nothing else, hide it
//! (kappa + s = 128 + 40 are needed, KOS15 section 4).

use polyval::Polyval;
use polyval::universal_hash::{KeyInit, UniversalHash};

use crate::block::Block;
use crate::error::{Error, Item, Result};
use crate::prg::Prg;

/// Extra COTs with random choice bits at the end of the checked extension.
pub const CHECK_PADDING: usize = 256;

/// Bytes of the receiver's answer: T then X, 16 bytes each.
pub const RESPONSE_BYTES: usize = 32;

/// The identity of POLYVAL's product dot(a, b) = a b x^-128: x^128 mod
/// x^128 + x^127 + x^126 + x^121 + 1.
const ONE: u128 = (1 << 127) | (1 << 126) | (1 << 121) | 1;

/// The sender's random challenge h.
pub fn challenge() -> Result<Block> {
    Ok(Prg::from_os()?.block())
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

/// dot(a, b) = a b x^-128 in POLYVAL's field.
fn dot(a: Block, b: Block) -> Block {
    polyval(b, std::iter::once(a))
}

/// The receiver's answer (T, X) to the challenge `h`, over every COT of the
/// checked extension (its rows t and choice bits, padding included).
pub fn respond(h: Block, t: &[Block], choices: &[bool]) -> [u8; RESPONSE_BYTES] {
    let big_t = polyval(h, t.iter().copied());
    let x = polyval(h, choices.iter().map(|&c| Block(ONE).select(c)));
    let mut out = [0u8; RESPONSE_BYTES];
    out[..16].copy_from_slice(&big_t.to_bytes());
    out[16..].copy_from_slice(&x.to_bytes());
    out
}

/// The sender's verdict on the receiver's answer: whether the rows q it
/// holds are consistent with one choice bit per COT.
pub fn verify(h: Block, q: &[Block], delta: Block, response: &[u8]) -> Result<bool> {
    let bytes: [u8; RESPONSE_BYTES] = response.try_into().map_err(|_| Error::Length {
        what: Item::KosResponse,
        expected: RESPONSE_BYTES,
        got: response.len(),
    })?;
    let mut half = [0u8; 16];
    half.copy_from_slice(&bytes[..16]);
    let big_t = Block::from_bytes(half);
    half.copy_from_slice(&bytes[16..]);
    let x = Block::from_bytes(half);
    Ok(polyval(h, q.iter().copied()) ^ big_t == dot(x, delta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::softspoken::{CotReceiver, CotSender, GROUP_BITS};

    #[test]
    fn one_is_the_identity_of_the_product() {
        let mut prg = Prg::from_seed(Block(5));
        for _ in 0..20 {
            let a = prg.block();
            assert_eq!(dot(a, Block(ONE)), a);
            assert_eq!(dot(Block(ONE), a), a);
        }
    }

    fn extension(count: usize) -> (CotSender, Vec<Block>, Vec<bool>, Vec<u8>) {
        let (setup, a) = CotReceiver::start().unwrap();
        let (mut sender, answer) = CotSender::start(&a).unwrap();
        let (mut receiver, trees) = setup.finish(&answer).unwrap();
        sender.puncture(&trees).unwrap();
        let mut prg = Prg::from_seed(Block(11));
        let choices: Vec<bool> = (0..count).map(|_| prg.block().lsb()).collect();
        let (t, u) = receiver.extend(&choices);
        (sender, t, choices, u)
    }

    #[test]
    fn an_honest_receiver_passes() {
        for count in [1usize, 300, 1000] {
            let (mut sender, t, choices, u) = extension(count);
            let q = sender.extend(count, &u).unwrap();
            let h = challenge().unwrap();
            assert!(verify(h, &q, sender.delta(), &respond(h, &t, &choices)).unwrap());
        }
    }

    #[test]
    fn an_inconsistent_column_or_a_wrong_answer_fails() {
        let count = 600;
        let (mut sender, t, choices, mut u) = extension(count);
        // Group 3's column, COT 70: the receiver uses the other choice bit
        // in one group of Delta's bits only.
        let nb = count.div_ceil(128);
        let at = (3 * nb) * 16 + 70 / 8;
        u[at] ^= 1 << (70 % 8);
        let q = sender.extend(count, &u).unwrap();
        let h = challenge().unwrap();
        let shift = 3 * GROUP_BITS;
        let value = (sender.delta().0 >> shift) & ((1 << GROUP_BITS) - 1);
        // An answer that guesses the group's value d of Delta passes if and
        // only if the guess is right: learning k bits of Delta passes with
        // probability 2^-k, as KOS allows (the honest answer is the guess 0).
        for guess in 0..1u128 << GROUP_BITS {
            let mut guessed_t = t.clone();
            guessed_t[70] ^= Block(guess << shift);
            let answer = respond(h, &guessed_t, &choices);
            assert_eq!(verify(h, &q, sender.delta(), &answer).unwrap(), guess == value, "guess {guess}");
        }
        assert!(verify(h, &q, sender.delta(), &respond(h, &t, &choices)[..31]).is_err());
    }

    #[test]
    fn a_tampered_answer_fails() {
        let (mut sender, t, choices, u) = extension(300);
        let q = sender.extend(300, &u).unwrap();
        let h = challenge().unwrap();
        let answer = respond(h, &t, &choices);
        for byte in [0usize, 15, 16, 31] {
            let mut wrong = answer;
            wrong[byte] ^= 4;
            assert!(!verify(h, &q, sender.delta(), &wrong).unwrap(), "byte {byte}");
        }
    }

    #[test]
    fn a_flipped_choice_bit_in_the_answer_fails() {
        let (mut sender, t, mut choices, u) = extension(500);
        let q = sender.extend(500, &u).unwrap();
        let h = challenge().unwrap();
        choices[17] = !choices[17];
        assert!(!verify(h, &q, sender.delta(), &respond(h, &t, &choices)).unwrap());
    }
}
