//! Round messages: the ciphertexts of one round in one direction, and in the
//! private mode the round's other material (OT messages, garbled circuits,
//! output labels).

use ppdnn_paillier::{Ciphertext, PublicKey};

use crate::error::{MessageError, Result, msg};

/// The ciphertexts of one round, concatenated as fixed-width big-endian
/// unsigned integers of [`PublicKey::ciphertext_bytes`] bytes each: exactly
/// what travels on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct RoundMessage {
    /// The round: the index of the linear layer (0 for the first).
    pub round: usize,
    /// The ciphertexts, back to back.
    pub data: Vec<u8>,
    /// Private mode: the round's other bytes (docs/PROTOCOL.md gives their
    /// layout for each round); empty in the fast mode.
    pub material: Vec<u8>,
}

impl std::fmt::Debug for RoundMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoundMessage")
            .field("round", &self.round)
            .field("bytes", &self.data.len())
            .field("material", &self.material.len())
            .finish()
    }
}

impl RoundMessage {
    /// Encodes ciphertexts for a round.
    pub fn from_ciphertexts(key: &PublicKey, round: usize, cts: &[Ciphertext]) -> Self {
        let width = key.ciphertext_bytes();
        let mut data = Vec::with_capacity(width * cts.len());
        for c in cts {
            data.extend_from_slice(&key.ciphertext_to_bytes(c));
        }
        RoundMessage { round, data, material: Vec::new() }
    }

    /// A message of ciphertext bytes only (no other material).
    pub fn new(round: usize, data: Vec<u8>) -> Self {
        RoundMessage { round, data, material: Vec::new() }
    }

    /// Size in bytes of the whole payload (ciphertexts and material).
    pub fn len_bytes(&self) -> usize {
        self.data.len() + self.material.len()
    }

    /// Checks that the message is for `round`.
    pub fn check_round(&self, round: usize) -> Result<()> {
        if self.round != round {
            return Err(msg(round, MessageError::WrongRound { got: self.round, expected: round }));
        }
        Ok(())
    }

    /// Decodes and validates the ciphertexts: the round must be `round`, the
    /// payload a whole number of ciphertexts, `count` of them, each a valid
    /// ciphertext under `key` (0 < c < n^2, gcd(c, n) = 1).
    pub fn ciphertexts(&self, key: &PublicKey, round: usize, count: usize) -> Result<Vec<Ciphertext>> {
        self.ciphertexts_with_material(key, round, count, 0)
    }

    /// As [`RoundMessage::ciphertexts`], also checking that the material
    /// has exactly `material` bytes.
    pub fn ciphertexts_with_material(
        &self,
        key: &PublicKey,
        round: usize,
        count: usize,
        material: usize,
    ) -> Result<Vec<Ciphertext>> {
        if self.material.len() != material {
            return Err(msg(
                round,
                MessageError::MaterialSize { got: self.material.len(), expected: material },
            ));
        }
        if self.round != round {
            return Err(msg(round, MessageError::WrongRound { got: self.round, expected: round }));
        }
        let width = key.ciphertext_bytes();
        if !self.data.len().is_multiple_of(width) {
            return Err(msg(round, MessageError::Ragged { bytes: self.data.len(), width }));
        }
        let got = self.data.len() / width;
        if got != count {
            return Err(msg(round, MessageError::CiphertextCount { got, expected: count }));
        }
        key.ciphertexts_from_bytes(&self.data).map_err(|e| msg(round, MessageError::Ciphertext(e)))
    }
}
