//! The private mode's circuits, derived from the plan alone: the
//! between-layer circuit after every layer but the last, and the argmax of
//! the label-only output.

use std::sync::Arc;

use ppdnn_gc::activation::{ActivationSpec, ArgmaxSpec, activation_circuit, argmax_circuit};
use ppdnn_gc::{Circuit, GarbledCircuit};
use ppdnn_model::lenet::LayerShape;

use crate::error::{Error, Result};
use crate::plan::{CircuitInfo, Mode, Plan, PlanLayer, STAT_BITS};

/// Bits of the client's output masks s: 8 for the value, kappa statistical.
pub const MASK_BITS: u32 = 8 + STAT_BITS;

/// The between-layer step after `pl` as a circuit spec: every output
/// ciphertext's slots in the borrow chain, accumulators in channel-major
/// order, outputs in the next layer's input order (as `quant::activate`).
pub fn activation_spec(pl: &PlanLayer) -> Result<ActivationSpec> {
    let requant =
        pl.requant.ok_or_else(|| Error::Internal(format!("{}: no requantization to garble", pl.name)))?;
    let (positions, chunks, s) = (pl.positions(), pl.chunks(), pl.slots);
    let total = pl.shape.output_len();
    let accumulator_slots = (0..total)
        .map(|a| match pl.shape {
            LayerShape::Conv { .. } => {
                let (c, p) = (a / positions, a % positions);
                (c * chunks + p / s) * s + p % s
            }
            LayerShape::Dense { .. } => a,
        })
        .collect();
    let groups = if pl.pool {
        let (channels, side) = (pl.shape.out_channels(), pl.shape.out_side());
        let half = side / 2;
        let mut g = Vec::with_capacity(channels * half * half);
        for c in 0..channels {
            for y in 0..half {
                for x in 0..half {
                    let at = |dy: usize, dx: usize| (c * side + 2 * y + dy) * side + 2 * x + dx;
                    g.push(vec![at(0, 0), at(0, 1), at(1, 0), at(1, 1)]);
                }
            }
        }
        g
    } else {
        (0..total).map(|a| vec![a]).collect()
    };
    Ok(ActivationSpec {
        slot_bits: pl.slot_bits,
        slots: s,
        ciphertexts: pl.output_ciphertexts,
        accumulator_slots,
        groups,
        relu: pl.relu,
        multiplier: requant.multiplier as u64,
        shift: requant.shift,
        mask_bits: MASK_BITS,
    })
}

/// The label-only output's argmax over the last layer's outputs.
pub fn argmax_spec(pl: &PlanLayer) -> ArgmaxSpec {
    ArgmaxSpec {
        slot_bits: pl.slot_bits,
        slots: pl.slots,
        ciphertexts: pl.output_ciphertexts,
        values: pl.shape.output_len(),
    }
}

/// Correlated OTs (mask bits r) a masked layer needs.
pub fn cots(pl: &PlanLayer) -> usize {
    pl.output_ciphertexts * pl.slots * pl.slot_bits as usize
}

/// Bytes of the argmax material: the garbler's labels and the tables, but
/// no decode bits (the label is for the client alone).
pub fn argmax_bytes(c: &Circuit) -> usize {
    GarbledCircuit::encoded_len(c) - c.outputs().div_ceil(8)
}

/// The circuits of one private plan, built once and shared by its sessions.
#[derive(Debug)]
pub struct PrivateCircuits {
    layers: Vec<Option<Circuit>>,
    argmax: Circuit,
}

impl PrivateCircuits {
    /// Builds the circuits the plan describes and checks them against its
    /// stated shapes (a client does this with the server's plan).
    pub fn for_plan(plan: &Plan) -> Result<Arc<Self>> {
        if plan.mode != Mode::Private {
            return Err(Error::Plan("the plan is not for the private mode".into()));
        }
        let built = build(plan)?;
        let (layers, argmax) = (built.layers, built.argmax);
        for (l, (pl, c)) in plan.layers.iter().zip(&layers).enumerate() {
            let want = c.as_ref().map(|c| info(c, cots(pl), GarbledCircuit::encoded_len(c)));
            if pl.circuit != want {
                return Err(Error::Plan(format!(
                    "{}: the stated circuit shape is not the plan's own",
                    plan.layers[l].name
                )));
            }
        }
        let last = plan.layers.last().ok_or_else(|| Error::Plan("no layers".into()))?;
        if plan.argmax != Some(info(&argmax, cots(last), argmax_bytes(&argmax))) {
            return Err(Error::Plan("the stated argmax circuit shape is not the plan's own".into()));
        }
        Ok(Arc::new(PrivateCircuits { layers, argmax }))
    }

    /// The circuit after layer `l`; None for the last layer.
    pub fn layer(&self, l: usize) -> Option<&Circuit> {
        self.layers.get(l).and_then(Option::as_ref)
    }

    /// The argmax circuit.
    pub fn argmax(&self) -> &Circuit {
        &self.argmax
    }
}

struct Built {
    layers: Vec<Option<Circuit>>,
    argmax: Circuit,
}

fn build(plan: &Plan) -> Result<Built> {
    let n = plan.layers.len();
    let last = plan.layers.last().ok_or_else(|| Error::Plan("no layers".into()))?;
    if last.output_ciphertexts * last.slots < last.shape.output_len() || last.shape.output_len() == 0 {
        return Err(Error::Plan("the last layer's layout does not hold its outputs".into()));
    }
    let layers = plan
        .layers
        .iter()
        .enumerate()
        .map(
            |(l, pl)| {
                if l + 1 < n { activation_spec(pl).map(|s| Some(activation_circuit(&s))) } else { Ok(None) }
            },
        )
        .collect::<Result<Vec<_>>>()?;
    Ok(Built { layers, argmax: argmax_circuit(&argmax_spec(last)) })
}

fn info(c: &Circuit, cots: usize, garbled_bytes: usize) -> CircuitInfo {
    CircuitInfo { cots, and_gates: c.and_gates(), garbled_bytes, outputs: c.outputs() }
}

/// Fills in a private plan's circuit shapes.
pub(crate) fn describe(plan: &mut Plan) -> Result<()> {
    let built = build(plan)?;
    for (pl, c) in plan.layers.iter_mut().zip(&built.layers) {
        pl.circuit = c.as_ref().map(|c| info(c, cots(pl), GarbledCircuit::encoded_len(c)));
    }
    let last = plan.layers.last().ok_or_else(|| Error::Plan("no layers".into()))?;
    plan.argmax = Some(info(&built.argmax, cots(last), argmax_bytes(&built.argmax)));
    Ok(())
}
