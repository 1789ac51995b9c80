//! Conversions between the wire types and the library types.

use ppdnn_paillier::{Integer, KeyPolicy, PublicKey, to_fixed_bytes};
use ppdnn_protocol::{Packing, RoundMessage};

use crate::pb;

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
pub fn key_from_pb(key: &pb::PublicKey, policy: KeyPolicy) -> Result<PublicKey, String> {
    let (n, hn) = key_numbers(key)?;
    PublicKey::new(n, hn, policy).map_err(|e| e.to_string())
}

/// n and h^n of a wire key, with the widths checked (cheap), not yet validated.
pub fn key_numbers(key: &pb::PublicKey) -> Result<(Integer, Option<Integer>), String> {
    if key.n.is_empty() {
        return Err("the public key has no n".into());
    }
    if key.n.len() > 1024 || key.hn.len() > 2048 {
        return Err("the public key is larger than any accepted size".into());
    }
    if key.n[0] == 0 {
        return Err("n has a leading zero byte: it must take exactly ceil(|n|/8) bytes".into());
    }
    if !key.hn.is_empty() && key.hn.len() != 2 * key.n.len() {
        return Err(format!(
            "h^n takes {} bytes; with a {}-byte n it must take exactly {}",
            key.hn.len(),
            key.n.len(),
            2 * key.n.len()
        ));
    }
    let n = Integer::from_digits(&key.n, rug::integer::Order::Msf);
    let hn = (!key.hn.is_empty()).then(|| Integer::from_digits(&key.hn, rug::integer::Order::Msf));
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
pub fn packing_from_pb(p: i32) -> Result<Packing, String> {
    match pb::Packing::try_from(p) {
        Ok(pb::Packing::Packed) => Ok(Packing::Packed),
        Ok(pb::Packing::Unpacked) => Ok(Packing::Unpacked),
        Err(_) => Err(format!("unknown packing {p}")),
    }
}

/// Packing to the wire enum.
pub fn packing_to_pb(p: Packing) -> i32 {
    match p {
        Packing::Packed => pb::Packing::Packed as i32,
        Packing::Unpacked => pb::Packing::Unpacked as i32,
    }
}

/// Splits a round message into chunks of whole ciphertexts of at most `max_chunk` bytes.
pub fn chunks(msg: &RoundMessage, width: usize, max_chunk: usize) -> Vec<pb::Round> {
    let per = (max_chunk / width).max(1) * width;
    let mut out: Vec<pb::Round> = msg
        .data
        .chunks(per)
        .map(|c| pb::Round { round: msg.round as u32, ciphertexts: c.to_vec(), last: false })
        .collect();
    if out.is_empty() {
        out.push(pb::Round { round: msg.round as u32, ciphertexts: Vec::new(), last: false });
    }
    if let Some(last) = out.last_mut() {
        last.last = true;
    }
    out
}
