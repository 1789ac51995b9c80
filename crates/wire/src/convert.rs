//! Conversions between the wire types and the library types.

use ppdnn_paillier::{Integer, KeyPolicy, PublicKey, to_fixed_bytes};
use ppdnn_protocol::{Mode, Output, Packing, RoundMessage};

use crate::pb;

/// A wire value that does not decode: the client's fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// A public key without n.
    #[error("the public key has no n")]
    NoModulus,
    /// A public key larger than any accepted size.
    #[error("the public key is larger than any accepted size")]
    KeyTooLarge,
    /// An n with a leading zero byte.
    #[error("n has a leading zero byte: it must take exactly ceil(|n|/8) bytes")]
    LeadingZero,
    /// An h^n of the wrong width.
    #[error("h^n takes {got} bytes; with a {n_bytes}-byte n it must take exactly {expected}")]
    HnWidth {
        /// Bytes of h^n.
        got: usize,
        /// Bytes of n.
        n_bytes: usize,
        /// Bytes h^n must take.
        expected: usize,
    },
    /// A key that fails validation.
    #[error(transparent)]
    Key(#[from] ppdnn_paillier::Error),
    /// A value of none of an enum's cases.
    #[error("unknown {what} {value}")]
    UnknownValue {
        /// The enum ("packing").
        what: &'static str,
        /// The value sent.
        value: i32,
    },
}

/// A public key to its wire form.
pub fn key_to_pb(key: &PublicKey) -> pb::PublicKey {
    let width = key.bits().div_ceil(8) as usize;
    pb::PublicKey {
        n: to_fixed_bytes(key.n(), width),
        hn: key.hn().map(|h| to_fixed_bytes(h, 2 * width)).unwrap_or_default(),
    }
}

/// A public key from the wire, validated against `policy`. The widths are
/// exact (docs/PROTOCOL.md): n in ceil(|n|/8) bytes with no leading zero
/// byte, h^n (if present) in twice that.
pub fn key_from_pb(key: &pb::PublicKey, policy: KeyPolicy) -> Result<PublicKey, WireError> {
    let (n, hn) = key_numbers(key)?;
    Ok(PublicKey::new(n, hn, policy)?)
}

/// n and h^n of a wire key, with the widths checked (cheap), not yet validated.
pub fn key_numbers(key: &pb::PublicKey) -> Result<(Integer, Option<Integer>), WireError> {
    if key.n.is_empty() {
        return Err(WireError::NoModulus);
    }
    if key.n.len() > 1024 || key.hn.len() > 2048 {
        return Err(WireError::KeyTooLarge);
    }
    if key.n[0] == 0 {
        return Err(WireError::LeadingZero);
    }
    if !key.hn.is_empty() && key.hn.len() != 2 * key.n.len() {
        let (got, n_bytes) = (key.hn.len(), key.n.len());
        return Err(WireError::HnWidth { got, n_bytes, expected: 2 * n_bytes });
    }
    let n = Integer::from_digits(&key.n, ppdnn_paillier::int::Order::Msf);
    let hn = (!key.hn.is_empty()).then(|| Integer::from_digits(&key.hn, ppdnn_paillier::int::Order::Msf));
    Ok((n, hn))
}

/// A string from a client, fit for a log line or an error message: at most
/// 64 characters, quoted, with control characters escaped.
pub fn shown(s: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = s.chars().take(MAX).flat_map(char::escape_debug).collect();
    if s.chars().nth(MAX).is_some() {
        out.push_str("...");
    }
    format!("\"{out}\"")
}

/// Packing from the wire enum.
pub fn packing_from_pb(p: i32) -> Result<Packing, WireError> {
    match pb::Packing::try_from(p) {
        Ok(pb::Packing::Packed) => Ok(Packing::Packed),
        Ok(pb::Packing::Unpacked) => Ok(Packing::Unpacked),
        Err(_) => Err(WireError::UnknownValue { what: "packing", value: p }),
    }
}

/// Packing to the wire enum.
pub fn packing_to_pb(p: Packing) -> i32 {
    match p {
        Packing::Packed => pb::Packing::Packed as i32,
        Packing::Unpacked => pb::Packing::Unpacked as i32,
    }
}

/// Mode from the wire enum.
pub fn mode_from_pb(m: i32) -> Result<Mode, WireError> {
    match pb::Mode::try_from(m) {
        Ok(pb::Mode::Fast) => Ok(Mode::Fast),
        Ok(pb::Mode::Private) => Ok(Mode::Private),
        Err(_) => Err(WireError::UnknownValue { what: "mode", value: m }),
    }
}

/// Mode to the wire enum.
pub fn mode_to_pb(m: Mode) -> i32 {
    match m {
        Mode::Fast => pb::Mode::Fast as i32,
        Mode::Private => pb::Mode::Private as i32,
    }
}

/// Output from the wire enum.
pub fn output_from_pb(o: i32) -> Result<Output, WireError> {
    match pb::Output::try_from(o) {
        Ok(pb::Output::Logits) => Ok(Output::Logits),
        Ok(pb::Output::Label) => Ok(Output::Label),
        Err(_) => Err(WireError::UnknownValue { what: "output", value: o }),
    }
}

/// Output to the wire enum.
pub fn output_to_pb(o: Output) -> i32 {
    match o {
        Output::Logits => pb::Output::Logits as i32,
        Output::Label => pb::Output::Label as i32,
    }
}

/// Splits a round message into chunks of at most `max_chunk` bytes: first
/// whole ciphertexts, then the material; the last chunk is marked.
pub fn chunks(msg: &RoundMessage, width: usize, max_chunk: usize) -> Vec<pb::Round> {
    let per = (max_chunk / width).max(1) * width;
    let round = msg.round as u32;
    let mut out: Vec<pb::Round> = msg
        .data
        .chunks(per)
        .map(|c| pb::Round { round, ciphertexts: c.to_vec(), last: false, material: Vec::new() })
        .collect();
    out.extend(msg.material.chunks(max_chunk.max(1)).map(|m| pb::Round {
        round,
        ciphertexts: Vec::new(),
        last: false,
        material: m.to_vec(),
    }));
    if out.is_empty() {
        out.push(pb::Round { round, ciphertexts: Vec::new(), last: false, material: Vec::new() });
    }
    if let Some(last) = out.last_mut() {
        last.last = true;
    }
    out
}
