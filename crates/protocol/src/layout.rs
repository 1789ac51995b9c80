//! Layouts: which values travel in which slot of which ciphertext, for
//! every layer (the module docs of [`crate::plan`] state them). Both modes
//! and both sides use these functions, so the layout is written once.

use ppdnn_model::network::Linear;
use ppdnn_paillier::Integer;

use crate::error::{OutputError, Result, StateError};
use crate::plan::{Packing, PlanLayer};

/// The plaintexts the client encrypts for a layer whose inputs are `x`.
pub fn pack_inputs(packing: Packing, pl: &PlanLayer, key_bits: u32, x: &[i64]) -> Result<Vec<Integer>> {
    if x.len() != pl.input.len() {
        return Err(StateError::LayerInputs {
            layer: pl.name.clone(),
            got: x.len(),
            expected: pl.input.len(),
        }
        .into());
    }
    match (packing, pl.linear) {
        (Packing::Packed, Linear::Conv2d { .. }) => {
            let codec = pl.codec(key_bits)?;
            input_slots(pl, x).iter().map(|slots| Ok(codec.encode(slots)?)).collect()
        }
        _ => Ok(x.iter().map(|&v| Integer::from(v)).collect()),
    }
}

/// A packed convolution's input ciphertexts as slot vectors: for each kernel
/// offset (ic, ky, kx) and each chunk j of S positions, the input values
/// under that offset (0 in the padding). `x` must have the layer's input length.
pub fn input_slots(pl: &PlanLayer, x: &[i64]) -> Vec<Vec<i64>> {
    let Linear::Conv2d { kernel: [kh, kw], stride: [sy, sx], padding: [top, left, ..], .. } = pl.linear
    else {
        return x.iter().map(|&v| vec![v]).collect();
    };
    let (ih, iw) = (pl.input.height, pl.input.width);
    let ow = pl.output.width;
    let positions = pl.positions();
    let chunks = pl.chunks();
    let mut out = Vec::with_capacity(pl.input_ciphertexts);
    for ic in 0..pl.input.channels {
        for ky in 0..kh {
            for kx in 0..kw {
                for j in 0..chunks {
                    out.push(
                        (j * pl.slots..positions.min((j + 1) * pl.slots))
                            .map(|p| {
                                let iy = ((p / ow) * sy + ky).checked_sub(top).filter(|&y| y < ih);
                                let ix = ((p % ow) * sx + kx).checked_sub(left).filter(|&v| v < iw);
                                match (iy, ix) {
                                    (Some(iy), Some(ix)) => x[(ic * ih + iy) * iw + ix],
                                    _ => 0,
                                }
                            })
                            .collect(),
                    );
                }
            }
        }
    }
    out
}

/// The plaintexts of a layer's shortcut: `source` is the added activation
/// (the plan's `shortcut.source` shape), laid out as [`shortcut_slots`] says.
pub fn pack_shortcut(pl: &PlanLayer, key_bits: u32, source: &[i64]) -> Result<Vec<Integer>> {
    let Some(s) = &pl.shortcut else { return Ok(Vec::new()) };
    if source.len() != s.source.len() {
        return Err(StateError::LayerInputs {
            layer: format!("{}'s shortcut", pl.name),
            got: source.len(),
            expected: s.source.len(),
        }
        .into());
    }
    let codec = pl.codec(key_bits)?;
    shortcut_slots(pl, source).iter().map(|slots| Ok(codec.encode(slots)?)).collect()
}

/// A shortcut's source as slot vectors, laid out like the layer's output:
/// for each source channel c and each chunk j of S output positions, the
/// value source[c][oy * sy][ox * sx] under each position (oy, ox), with
/// (sy, sx) the projection's stride (1 for the identity). `source` must
/// have the shortcut's source length; empty without a shortcut.
pub fn shortcut_slots(pl: &PlanLayer, source: &[i64]) -> Vec<Vec<i64>> {
    let Some(s) = &pl.shortcut else { return Vec::new() };
    let [sy, sx] = s.projection.unwrap_or([1, 1]);
    let (sh, sw) = (s.source.height, s.source.width);
    let ow = pl.output.width;
    let positions = pl.positions();
    let mut out = Vec::with_capacity(pl.shortcut_ciphertexts());
    for c in 0..s.source.channels {
        for j in 0..pl.chunks() {
            out.push(
                (j * pl.slots..positions.min((j + 1) * pl.slots))
                    .map(|p| source[(c * sh + (p / ow) * sy) * sw + (p % ow) * sx])
                    .collect(),
            );
        }
    }
    out
}

/// The layer's accumulators, in channel-major order, from the decrypted outputs.
pub fn unpack_outputs(
    packing: Packing,
    pl: &PlanLayer,
    key_bits: u32,
    plain: &[Integer],
) -> std::result::Result<Vec<i64>, OutputError> {
    let total = pl.output.len();
    if packing == Packing::Unpacked {
        return plain
            .iter()
            .enumerate()
            .map(|(i, m)| m.to_i64().ok_or(OutputError::TooWide { index: i }))
            .collect();
    }
    let codec = pl.codec(key_bits).map_err(OutputError::Codec)?;
    let slots = pl.slots;
    let positions = pl.positions();
    let mut acc = vec![0i64; total];
    // Ciphertext i covers `positions` outputs per channel in chunks of S (a
    // dense layer is a single "channel" of `outputs` positions).
    let chunks = positions.div_ceil(slots);
    for (i, m) in plain.iter().enumerate() {
        let values = codec.decode(m).map_err(|source| OutputError::Slots { ciphertext: i, source })?;
        let (channel, j) = (i / chunks, i % chunks);
        let used = slots.min(positions - j * slots);
        if let Some(s) = (used..slots).find(|&s| values[s] != 0) {
            return Err(OutputError::UnusedSlot { ciphertext: i, slot: s, value: values[s] });
        }
        for (s, &v) in values[..used].iter().enumerate() {
            acc[channel * positions + j * slots + s] = v;
        }
    }
    Ok(acc)
}
