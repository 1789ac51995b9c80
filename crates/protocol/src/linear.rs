//! The homomorphic linear layer: a convolution or a dense layer evaluated
//! on the client's ciphertexts in the plan's layouts, the server's work in
//! both modes.

use ppdnn_model::network::Linear;
use ppdnn_model::quant::QuantLayer;
use ppdnn_paillier::{Ciphertext, Integer, PublicKey, RandomnessPool, SharedBases};
use rayon::prelude::*;

use crate::error::{InternalError, Result};
use crate::plan::{Packing, PlanLayer};

/// Magnitude bits of the quantized weights (|w| <= 127).
pub const WEIGHT_BITS: u32 = 7;

/// How the server schedules a layer's products.
#[derive(Debug, Clone, Copy)]
pub enum Schedule<'a> {
    /// The fewest products for these weights (zero weights skipped, tables
    /// of the magnitudes used): the fast mode, whose client learns the
    /// weights anyway.
    Adaptive,
    /// The same products for any weights of the layer's shape (bit planes
    /// of offset weights, [`ppdnn_paillier::PublicKey::combine_rows_fixed`]):
    /// the private mode, whose client may time the server. Each
    /// combination also takes a fresh r'^n from the pool as one more base
    /// (weight 1), so that every result is a uniform unit mod n^2 of full
    /// width: a client that sends degenerate ciphertexts (1 + n m, r = 1)
    /// would otherwise get results whose length, and the time of the
    /// GMP products that follow (bias, shortcut factors, masks), depends
    /// on the weights.
    Fixed(&'a RandomnessPool),
}

/// The fresh r'^n a layer's fixed schedule takes: one per combination (per
/// chunk of a convolution and of its projection, one for a dense layer).
pub fn blinding_needed(pl: &PlanLayer) -> usize {
    match pl.linear {
        Linear::Conv2d { .. } => {
            let projection = pl.shortcut.as_ref().is_some_and(|s| s.projection.is_some());
            pl.chunks() * (1 + usize::from(projection))
        }
        Linear::Dense { .. } => 1,
    }
}

/// A linear layer on its input ciphertexts: the encrypted accumulators, in
/// the plan's output layout (not yet re-randomized).
pub fn linear_layer(
    key: &PublicKey,
    layer: &QuantLayer,
    pl: &PlanLayer,
    packing: Packing,
    cts: &[Ciphertext],
    schedule: Schedule<'_>,
) -> Result<Vec<Ciphertext>> {
    let (own, added) = cts.split_at(pl.main_input_ciphertexts().min(cts.len()));
    let mut outputs = match (packing, pl.linear) {
        (Packing::Packed, Linear::Conv2d { .. }) => conv_packed(key, layer, pl, own, schedule)?,
        (Packing::Packed, Linear::Dense { .. }) => dense_packed(key, layer, pl, own, schedule)?,
        (Packing::Unpacked, Linear::Conv2d { .. }) => conv_unpacked(key, layer, pl, own)?,
        (Packing::Unpacked, Linear::Dense { .. }) => dense_outputs(key, layer, pl, own, schedule)?,
    };
    if pl.shortcut.is_some() {
        outputs = add_shortcut(key, layer, pl, outputs, added, schedule)?;
    }
    if outputs.len() != pl.output_ciphertexts {
        return Err(InternalError::OutputCount {
            layer: pl.name.clone(),
            got: outputs.len(),
            expected: pl.output_ciphertexts,
        }
        .into());
    }
    Ok(outputs)
}

/// a * main + c * s for a layer with a shortcut, s being the source's
/// ciphertexts themselves (the identity: already in the output layout) or
/// their 1x1 projection, a convolution over them with the projection's
/// weights in the same layout.
fn add_shortcut(
    key: &PublicKey,
    layer: &QuantLayer,
    pl: &PlanLayer,
    main: Vec<Ciphertext>,
    added: &[Ciphertext],
    schedule: Schedule<'_>,
) -> Result<Vec<Ciphertext>> {
    let (Some(s), Some(q)) = (&pl.shortcut, &layer.shortcut) else {
        return Err(InternalError::Shortcut(pl.name.clone()).into());
    };
    let term = match s.projection {
        None => added.to_vec(),
        Some(stride) => {
            let projection = PlanLayer {
                name: format!("{}.shortcut", pl.name),
                linear: Linear::Conv2d {
                    out_channels: pl.output.channels,
                    kernel: [1, 1],
                    stride,
                    padding: [0; 4],
                },
                input: s.source,
                shortcut: None,
                input_ciphertexts: s.source.channels * pl.chunks(),
                ..pl.clone()
            };
            let params = QuantLayer {
                weight: q.weight.clone(),
                bias: q.bias.clone(),
                weight_scale: q.weight_scale,
                input_scale: 1.0,
                requant: None,
                shortcut: None,
            };
            conv_packed(key, &params, &projection, added, schedule)?
        }
    };
    if term.len() != main.len() {
        return Err(InternalError::Shortcut(pl.name.clone()).into());
    }
    let scaled = |c: &Ciphertext, k: i64| if k == 1 { c.clone() } else { key.mul_i64(c, k) };
    Ok(main
        .par_iter()
        .zip(&term)
        .map(|(m, t)| key.add(&scaled(m, q.main_factor), &scaled(t, q.factor)))
        .collect())
}

/// The rows [`combine`] takes under `schedule`, made once per layer: the
/// weights, and for the fixed schedule a last weight 1 for its blinding base.
fn scheduled_rows(layer: &QuantLayer, pl: &PlanLayer, schedule: Schedule<'_>) -> Vec<Vec<i64>> {
    let blinded = matches!(schedule, Schedule::Fixed(_));
    layer
        .weight
        .chunks(pl.fan_in())
        .map(|w| w.iter().copied().chain(blinded.then_some(1)).collect())
        .collect()
}

/// Enc(a + b) for a bias b: with the fixed schedule, always as a product
/// by 1 + n (b mod n + n), a full-width factor whatever b's sign or size
/// (`add_plain` maps a negative b to n + b and 0 to 1, whose products take
/// different times).
fn add_bias(key: &PublicKey, c: &Ciphertext, b: &Integer, schedule: Schedule<'_>) -> Result<Ciphertext> {
    match schedule {
        Schedule::Adaptive => Ok(key.add_plain(c, b)?),
        Schedule::Fixed(_) => {
            let n = key.n();
            let mut p = Integer::from(b % n);
            if p < 0 {
                p += n;
            }
            p += n;
            let g = p * n + 1u32;
            let v = Integer::from(c.value() * &g) % key.n_squared();
            key.ciphertext(v).map_err(|e| crate::error::InternalError::Rerandomize(e).into())
        }
    }
}

/// Enc(row . x) for every row of [`scheduled_rows`], scheduled as asked
/// (the fixed schedule's last base a fresh r'^n).
fn combine(
    key: &PublicKey,
    bases: &[Ciphertext],
    rows: &[Vec<i64>],
    schedule: Schedule<'_>,
) -> Result<Vec<Ciphertext>> {
    Ok(match schedule {
        Schedule::Adaptive => key.combine_rows(bases, rows)?,
        Schedule::Fixed(pool) => {
            let rn = pool.take_many(1)?.pop().ok_or(InternalError::Blinding)?;
            let mut blinded = bases.to_vec();
            blinded.push(key.ciphertext(rn).map_err(InternalError::Rerandomize)?);
            key.combine_rows_fixed(&blinded, rows, WEIGHT_BITS)?
        }
    })
}

/// Packed convolution: per position chunk, one multi-exponentiation per output
/// channel over the chunk's im2col rows, plus the packed bias.
fn conv_packed(
    key: &PublicKey,
    layer: &QuantLayer,
    pl: &PlanLayer,
    cts: &[Ciphertext],
    schedule: Schedule<'_>,
) -> Result<Vec<Ciphertext>> {
    let fan_in = pl.fan_in();
    let out_c = pl.out_channels();
    let chunks = pl.chunks();
    let positions = pl.positions();
    let codec = pl.codec(key.bits())?;
    let rows = scheduled_rows(layer, pl, schedule);
    let per_chunk: Vec<Vec<Ciphertext>> = (0..chunks)
        .into_par_iter()
        .map(|j| -> Result<Vec<Ciphertext>> {
            let bases: Vec<Ciphertext> = (0..fan_in).map(|k| cts[k * chunks + j].clone()).collect();
            let used = pl.slots.min(positions - j * pl.slots);
            let outs = combine(key, &bases, &rows, schedule)?;
            outs.iter()
                .enumerate()
                .map(|(c, ct)| {
                    // One bias per channel, or the chunk's part of a bias map.
                    let bias = if layer.bias.len() == out_c {
                        vec![layer.bias[c]; used]
                    } else {
                        layer.bias[c * positions + j * pl.slots..][..used].to_vec()
                    };
                    add_bias(key, ct, &codec.encode(&bias)?, schedule)
                })
                .collect()
        })
        .collect::<Result<_>>()?;
    // Channel-major order: output ciphertext c * chunks + j.
    Ok((0..out_c).flat_map(|c| per_chunk.iter().map(move |chunk| chunk[c].clone())).collect())
}

/// Packed dense layer: one multi-exponentiation per output over the shared
/// inputs, then S outputs packed into each ciphertext by Horner's rule
/// (B squarings per slot).
fn dense_packed(
    key: &PublicKey,
    layer: &QuantLayer,
    pl: &PlanLayer,
    cts: &[Ciphertext],
    schedule: Schedule<'_>,
) -> Result<Vec<Ciphertext>> {
    let outs = dense_outputs(key, layer, pl, cts, schedule)?;
    outs.par_chunks(pl.slots).map(|group| Ok(key.pack_slots(group, pl.slot_bits)?)).collect()
}

/// W x + b for a dense layer, one ciphertext per output.
fn dense_outputs(
    key: &PublicKey,
    layer: &QuantLayer,
    pl: &PlanLayer,
    cts: &[Ciphertext],
    schedule: Schedule<'_>,
) -> Result<Vec<Ciphertext>> {
    let rows = scheduled_rows(layer, pl, schedule);
    let outs = combine(key, cts, &rows, schedule)?;
    outs.par_iter().zip(&layer.bias).map(|(c, &b)| add_bias(key, c, &Integer::from(b), schedule)).collect()
}

/// Unpacked convolution: every accumulator from the input ciphertexts under its kernel window.
fn conv_unpacked(
    key: &PublicKey,
    layer: &QuantLayer,
    pl: &PlanLayer,
    cts: &[Ciphertext],
) -> Result<Vec<Ciphertext>> {
    let Linear::Conv2d { kernel: [kh, kw], stride: [sy, sx], padding: [top, left, ..], .. } = pl.linear
    else {
        return Err(InternalError::NotConvolution(pl.name.clone()).into());
    };
    let (ic_count, ih, iw) = (pl.input.channels, pl.input.height, pl.input.width);
    let (oh, ow) = (pl.output.height, pl.output.width);
    let shared = SharedBases::new(key, cts, WEIGHT_BITS, pl.output.len());
    (0..pl.output.len())
        .into_par_iter()
        .map(|o| {
            let (oc, oy, ox) = (o / (oh * ow), (o / ow) % oh, o % ow);
            let mut terms = Vec::with_capacity(ic_count * kh * kw);
            for ic in 0..ic_count {
                for ky in 0..kh {
                    let Some(iy) = (oy * sy + ky).checked_sub(top).filter(|&y| y < ih) else { continue };
                    for kx in 0..kw {
                        let Some(ix) = (ox * sx + kx).checked_sub(left).filter(|&x| x < iw) else { continue };
                        let w = layer.weight[((oc * ic_count + ic) * kh + ky) * kw + kx];
                        terms.push(((ic * ih + iy) * iw + ix, w));
                    }
                }
            }
            let bias = if layer.bias.len() == pl.output.len() { layer.bias[o] } else { layer.bias[oc] };
            Ok(key.add_plain(&shared.combine_terms(&terms)?, &Integer::from(bias))?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppdnn_model::network::Shape;

    /// A client's degenerate inputs (1 + n m: randomness 1) make short
    /// combinations whose length depends on the weights; the private mode's
    /// blinded schedule returns full-width results whatever the weights
    /// (control: without the blinding base, the same inputs give short ones).
    #[test]
    fn the_fixed_schedule_returns_full_width_results_for_degenerate_inputs() {
        let key = ppdnn_paillier::testing::test_keypair(512).public().clone();
        let n = key.n().clone();
        let degenerate = |m: i64| {
            let v = &n * Integer::from(m) + 1u32;
            key.ciphertext(v % key.n_squared()).unwrap()
        };
        let inputs: Vec<Ciphertext> = (1..=4).map(degenerate).collect();
        let layer = QuantLayer {
            weight: vec![1, 2, 0, 3],
            bias: vec![5],
            weight_scale: 1.0,
            input_scale: 1.0,
            requant: None,
            shortcut: None,
        };
        let pl = PlanLayer {
            name: "fc".into(),
            linear: Linear::Dense { outputs: 1 },
            relu: false,
            pool: None,
            input: Shape::vector(4),
            output: Shape::vector(1),
            requant: None,
            accumulator_bound: 1 << 20,
            slot_bits: 22,
            slots: 1,
            input_ciphertexts: 4,
            output_ciphertexts: 1,
            circuit: None,
            shortcut: None,
        };
        let pool = RandomnessPool::full_strength(&key);
        let full = 2 * key.bits() - 16;
        for _ in 0..4 {
            let out =
                linear_layer(&key, &layer, &pl, Packing::Unpacked, &inputs, Schedule::Fixed(&pool)).unwrap();
            assert!(out[0].value().significant_bits() >= full, "a blinded result is full width");
        }
        let rows = scheduled_rows(&layer, &pl, Schedule::Adaptive);
        let bare = key.combine_rows_fixed(&inputs, &rows, WEIGHT_BITS).unwrap();
        assert!(bare[0].value().significant_bits() < key.bits() + 16, "control: unblinded, it is short");
    }
}
