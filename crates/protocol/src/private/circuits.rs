//! The private mode's circuits, derived from the plan alone: the
//! between-layer circuit after every layer but the last, and the argmax of
//! the label-only output. The server garbles them, the client evaluates.

use std::sync::Arc;

use ppdnn_gc::Circuit;
use ppdnn_gc::activation::{ActivationSpec, ArgmaxSpec, activation_circuit, argmax_circuit};
use ppdnn_model::network::{PoolKind, pool};

use super::VALUE_BITS;
use crate::error::{InternalError, LayerError, PlanError, Result, layer_error};
use crate::plan::{CircuitInfo, Mode, Plan, PlanLayer, UncheckedPlan};

/// The between-layer step after `pl` as a circuit spec: every output
/// ciphertext's slots in the borrow chain, accumulators in channel-major
/// order, outputs in the next layer's input order (as `quant::activate`).
pub fn activation_spec(pl: &PlanLayer) -> Result<ActivationSpec> {
    let requant = pl.requant.ok_or_else(|| InternalError::NoRequantization(pl.name.clone()))?;
    let (positions, chunks, s) = (pl.positions(), pl.chunks(), pl.slots);
    let total = pl.output.len();
    let conv = pl.is_conv();
    let accumulator_slots = (0..total)
        .map(|a| {
            if conv {
                let (c, p) = (a / positions, a % positions);
                (c * chunks + p / s) * s + p % s
            } else {
                a
            }
        })
        .collect();
    // Each output's accumulators: its pooling window (the indices the
    // plaintext pooling reads, in the same order), or itself.
    let groups = match &pl.pool {
        Some(p) => {
            let indices: Vec<usize> = (0..total).collect();
            pool(p, pl.output, &indices, <[usize]>::to_vec)
        }
        None => (0..total).map(|a| vec![a]).collect(),
    };
    let spec = ActivationSpec {
        slot_bits: pl.slot_bits,
        slots: s,
        ciphertexts: pl.output_ciphertexts,
        accumulator_slots,
        groups,
        relu: pl.relu,
        max_pool: pl.pool.is_some_and(|p| p.kind == PoolKind::Max),
        multiplier: requant.multiplier as u64,
        shift: requant.shift,
    };
    // One rule, read from two shapes (the plan's pooling, the circuit's
    // groups): they must agree, or the circuit computes on the wrong values.
    if spec.folded_rounding().unwrap_or(0) != pl.rounding_offset() {
        return Err(InternalError::RoundingMismatch(pl.name.clone()).into());
    }
    Ok(spec)
}

/// Most parts a layer's circuit is split into (see [`Part`]).
pub const MAX_PARTS: usize = 8;

/// One independent piece of a layer's between-layer circuit: a contiguous
/// range of output ciphertexts that no pooling window crosses, with the
/// outputs computed from them. Parts are garbled and evaluated in parallel,
/// each with its own range of tweaks; their wire encodings are sent back to
/// back in order.
#[derive(Debug)]
pub struct Part {
    /// First output ciphertext of the part.
    pub first_ciphertext: usize,
    /// Output ciphertexts in the part.
    pub ciphertexts: usize,
    /// First output (next-layer input) computed by the part.
    pub first_output: usize,
    /// Outputs computed by the part.
    pub outputs: usize,
    /// The part's circuit: [`activation_circuit`] of its own spec, shared
    /// with the layer's other parts of the same spec.
    pub circuit: Arc<Circuit>,
}

/// The part specs of the circuit after `pl`: cut greedily, in order, at
/// ciphertext boundaries that no output's accumulators cross, once a part
/// holds at least a target of ciphertexts: for a convolution the
/// ciphertexts of ceil(channels / MAX_PARTS) whole output channels (so that
/// every part but perhaps the last has the same spec, and one circuit), for
/// a dense layer ceil(ciphertexts / MAX_PARTS).
pub fn activation_part_specs(pl: &PlanLayer) -> Result<Vec<(usize, usize, ActivationSpec)>> {
    let full = activation_spec(pl)?;
    let s = full.slots;
    let n = full.ciphertexts;
    let target = if pl.is_conv() {
        pl.out_channels().div_ceil(MAX_PARTS) * pl.chunks()
    } else {
        n.div_ceil(MAX_PARTS)
    }
    .max(1);
    let span = |g: &Vec<usize>| {
        let cts = g.iter().map(|&a| full.accumulator_slots[a] / s);
        (cts.clone().min().unwrap_or(0), cts.max().unwrap_or(0))
    };
    // (first ciphertext, first group) of each part.
    let mut cuts = vec![(0usize, 0usize)];
    let mut top = 0usize;
    for (gi, g) in full.groups.iter().enumerate() {
        let (lo, hi) = span(g);
        let start = cuts.last().map_or(0, |c| c.0);
        if gi > 0 && lo > top && top + 1 - start >= target {
            cuts.push((lo, gi));
        }
        top = top.max(hi);
    }
    let mut parts = Vec::with_capacity(cuts.len());
    for (k, &(first_ct, first_group)) in cuts.iter().enumerate() {
        let (end_ct, end_group) = cuts.get(k + 1).copied().unwrap_or((n, full.groups.len()));
        let mut accumulator_slots = Vec::new();
        let range = first_ct * s..end_ct * s;
        let groups = full.groups[first_group..end_group]
            .iter()
            .map(|g| {
                g.iter()
                    .map(|&a| {
                        let slot = full.accumulator_slots[a];
                        if !range.contains(&slot) {
                            // Windows are cut where no later one reaches back; a
                            // layout where one would is a bug, not an input.
                            return Err(layer_error(&pl.name, LayerError::PoolCrossesPart { part: k }));
                        }
                        accumulator_slots.push(slot - range.start);
                        Ok(accumulator_slots.len() - 1)
                    })
                    .collect::<Result<Vec<usize>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let spec =
            ActivationSpec { ciphertexts: end_ct - first_ct, accumulator_slots, groups, ..full.clone() };
        parts.push((first_ct, first_group, spec));
    }
    Ok(parts)
}

fn build_parts(pl: &PlanLayer) -> Result<Vec<Part>> {
    // Parts of equal specs share one circuit: a convolution's parts are
    // whole channels, all alike but perhaps the last.
    let mut built: Vec<(ActivationSpec, Arc<Circuit>)> = Vec::new();
    Ok(activation_part_specs(pl)?
        .into_iter()
        .map(|(first_ciphertext, first_output, spec)| {
            let circuit = match built.iter().find(|(s, _)| *s == spec) {
                Some((_, c)) => c.clone(),
                None => {
                    let c = Arc::new(activation_circuit(&spec));
                    built.push((spec.clone(), c.clone()));
                    c
                }
            };
            Part {
                first_ciphertext,
                ciphertexts: spec.ciphertexts,
                first_output,
                outputs: spec.groups.len(),
                circuit,
            }
        })
        .collect())
}

/// The label-only output's argmax over the last layer's outputs.
pub fn argmax_spec(pl: &PlanLayer) -> ArgmaxSpec {
    ArgmaxSpec {
        slot_bits: pl.slot_bits,
        slots: pl.slots,
        ciphertexts: pl.output_ciphertexts,
        values: pl.output.len(),
    }
}

/// OTs a layer followed by a circuit needs: one per bit of every output
/// plaintext (ciphertexts * |n|), the circuit's input bits (the low S B of
/// each) and the bits above them, which enter only the MAC.
pub fn ots(pl: &PlanLayer, key_bits: u32) -> usize {
    pl.output_ciphertexts * key_bits as usize
}

/// Circuit input bits of a layer: the low S B bits of each output plaintext.
pub fn input_bits(pl: &PlanLayer) -> usize {
    pl.output_ciphertexts * pl.slots * pl.slot_bits as usize
}

/// Bytes of a circuit's garbled tables: what the server sends (never the
/// decode bits of an activation's outputs, which would open them).
pub fn table_bytes(c: &Circuit) -> usize {
    c.table_bytes()
}

/// The circuits of one private plan, built once and shared by its sessions.
#[derive(Debug)]
pub struct PrivateCircuits {
    layers: Vec<Vec<Part>>,
    argmax: Circuit,
}

impl PrivateCircuits {
    /// Builds the circuits the plan describes and checks them against its
    /// stated shapes (a client does this with the server's plan).
    pub fn for_plan(plan: &Plan) -> Result<Arc<Self>> {
        if plan.mode != Mode::Private {
            return Err(PlanError::WrongMode(Mode::Private.name()).into());
        }
        let built = build(plan)?;
        let (layers, argmax) = (built.layers, built.argmax);
        for (l, (pl, parts)) in plan.layers.iter().zip(&layers).enumerate() {
            let want = info(pl, plan.key_bits, parts);
            if pl.circuit != want {
                return Err(layer_error(&plan.layers[l].name, LayerError::CircuitShape));
            }
        }
        let last = plan.layers.last().ok_or(PlanError::LayerCount { count: 0 })?;
        if plan.argmax != Some(argmax_info(last, plan.key_bits, &argmax)) {
            return Err(PlanError::ArgmaxShape.into());
        }
        Ok(Arc::new(PrivateCircuits { layers, argmax }))
    }

    /// The parts of the circuit after layer `l`; empty for the last layer.
    pub fn layer(&self, l: usize) -> &[Part] {
        self.layers.get(l).map_or(&[], Vec::as_slice)
    }

    /// The argmax circuit.
    pub fn argmax(&self) -> &Circuit {
        &self.argmax
    }
}

struct Built {
    layers: Vec<Vec<Part>>,
    argmax: Circuit,
}

fn build(plan: &UncheckedPlan) -> Result<Built> {
    let n = plan.layers.len();
    let last = plan.layers.last().ok_or(PlanError::LayerCount { count: 0 })?;
    if last.output_ciphertexts * last.slots < last.output.len() || last.output.is_empty() {
        return Err(PlanError::LastLayout.into());
    }
    let layers = plan
        .layers
        .iter()
        .enumerate()
        .map(|(l, pl)| if l + 1 < n { build_parts(pl) } else { Ok(Vec::new()) })
        .collect::<Result<Vec<_>>>()?;
    Ok(Built { layers, argmax: argmax_circuit(&argmax_spec(last)) })
}

/// The stated shape of a layer's circuit (None for no parts: the last layer).
fn info(pl: &PlanLayer, key_bits: u32, parts: &[Part]) -> Option<CircuitInfo> {
    if parts.is_empty() {
        return None;
    }
    Some(CircuitInfo {
        cots: ots(pl, key_bits),
        and_gates: parts.iter().map(|p| p.circuit.and_gates()).sum(),
        garbled_bytes: parts.iter().map(|p| table_bytes(&p.circuit)).sum(),
        outputs: parts.iter().map(|p| p.circuit.outputs()).sum(),
        parts: parts.len(),
    })
}

fn argmax_info(last: &PlanLayer, key_bits: u32, c: &Circuit) -> CircuitInfo {
    CircuitInfo {
        cots: ots(last, key_bits),
        and_gates: c.and_gates(),
        garbled_bytes: table_bytes(c),
        outputs: c.outputs(),
        parts: 1,
    }
}

/// Sessions with at least this many OTs for their layers' plaintexts and
/// pixels use SoftSpokenOT with k = 8, smaller ones k = 4.
pub const LARGE_SESSION_OTS: usize = 1 << 20;

/// The planner's SoftSpokenOT k for a private plan: 8 (2 bytes per OT) for
/// sessions of at least [`LARGE_SESSION_OTS`] OTs, where the bytes weigh
/// most, else 4 (4 bytes per OT for about a seventh of the PRG work; the
/// browser's WebAssembly client has no AES instructions).
pub fn ot_group_bits_for(plan: &UncheckedPlan) -> u32 {
    let n = plan.layers.len();
    let pixels = VALUE_BITS * plan.input_shape.iter().product::<usize>();
    let layers: usize = plan.layers[..n.saturating_sub(1)].iter().map(|pl| ots(pl, plan.key_bits)).sum();
    if pixels + layers >= LARGE_SESSION_OTS { 8 } else { 4 }
}

/// Fills in a private plan's circuit shapes and SoftSpokenOT's k.
pub(crate) fn describe(plan: &mut UncheckedPlan) -> Result<()> {
    plan.ot_group_bits = Some(ot_group_bits_for(plan));
    let built = build(plan)?;
    let key_bits = plan.key_bits;
    for (pl, parts) in plan.layers.iter_mut().zip(&built.layers) {
        pl.circuit = info(pl, key_bits, parts);
    }
    let last = plan.layers.last().ok_or(PlanError::LayerCount { count: 0 })?;
    plan.argmax = Some(argmax_info(last, key_bits, &built.argmax));
    Ok(())
}
