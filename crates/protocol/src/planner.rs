//! Deriving a model's plan for a key size, a packing and a mode: the
//! layouts from the worst-case accumulator bounds, and in the private mode
//! the circuits' shapes.

use ppdnn_model::quant::QuantModel;
use ppdnn_paillier::SlotCodec;

use crate::error::{LayerError, PlanError, Result, layer_error};
use crate::plan::{
    Mode, Packing, Plan, PlanLayer, PlanShortcut, UncheckedPlan, layout, max_slots, model_digest,
    rounding_offset, slot_bits_for,
};

impl Plan {
    /// Derives the fast mode's plan from a quantized model.
    pub fn new(model: &QuantModel, key_bits: u32, packing: Packing) -> Result<Self> {
        Self::for_mode(model, key_bits, packing, Mode::Fast)
    }

    /// Derives the plan of a mode. The private mode needs the packed layout;
    /// its slots leave room for the statistical mask t above the top slot.
    pub fn for_mode(model: &QuantModel, key_bits: u32, packing: Packing, mode: Mode) -> Result<Self> {
        if mode == Mode::Private && packing != Packing::Packed {
            return Err(PlanError::PrivateUnpacked.into());
        }
        model.validate()?;
        let net = &model.network;
        let layers = (0..model.layers.len())
            .map(|l| plan_layer(model, l, key_bits, packing, mode))
            .collect::<Result<Vec<_>>>()?;
        let mut plan = UncheckedPlan {
            key_bits,
            packing,
            mode,
            ot_group_bits: None,
            argmax: None,
            model_digest: model_digest(model),
            input_shape: [net.input().channels, net.input().height, net.input().width],
            classes: net.classes(),
            logit_scale: model.logit_scale(),
            layers,
        };
        if mode == Mode::Private {
            crate::private::circuits::describe(&mut plan)?;
        }
        Plan::check(plan)
    }

    /// Checks that this plan is exactly the one the server's model gives,
    /// but for `ot_group_bits`: either width (checked by [`Plan::check`])
    /// serves the model exactly, so the planner's choice may be overridden.
    pub fn check_against(&self, model: &QuantModel) -> Result<()> {
        let mut own = Plan::for_mode(model, self.key_bits, self.packing, self.mode)?.into_unchecked();
        own.ot_group_bits = self.ot_group_bits;
        if own != **self {
            return Err(PlanError::ModelMismatch.into());
        }
        Ok(())
    }
}

/// Layer `l` of the model's plan: its shapes, bound, slots and counts.
fn plan_layer(
    model: &QuantModel,
    l: usize,
    key_bits: u32,
    packing: Packing,
    mode: Mode,
) -> Result<PlanLayer> {
    let nl = &model.network.layers()[l];
    let shapes = &model.network.shapes()[l];
    let bound = model.accumulator_bound(l);
    let requant = model.layers[l].requant;
    // The private mode's slots also hold the rounding constant it folds
    // into the offset (if any): at most one bit more.
    let folded = match (mode, requant) {
        (Mode::Private, Some(r)) => rounding_offset(r, nl.pool.as_ref(), slot_bits_for(bound)).unwrap_or(0),
        _ => 0,
    };
    let slot_bits = slot_bits_for(bound.saturating_add(folded as i64));
    if slot_bits > SlotCodec::MAX_SLOT_BITS {
        return Err(layer_error(&nl.name, LayerError::AccumulatorTooWide { bound }));
    }
    let mut layer = PlanLayer {
        name: nl.name.clone(),
        linear: nl.linear,
        relu: nl.relu,
        pool: nl.pool,
        input: shapes.input,
        output: shapes.output,
        requant,
        // The private plan states only what the slot width implies (its
        // largest value, less the folded rounding), not the exact bound, a
        // function of the weights.
        accumulator_bound: match mode {
            Mode::Fast => bound,
            Mode::Private => (1i64 << (slot_bits - 1)) - 1 - folded as i64,
        },
        slot_bits,
        slots: 1,
        input_ciphertexts: 0,
        output_ciphertexts: 0,
        circuit: None,
        shortcut: match (&nl.shortcut, &model.layers[l].shortcut, shapes.shortcut) {
            (Some(s), Some(q), Some((_, source))) => Some(PlanShortcut {
                from: s.from.clone(),
                projection: s.projection,
                source,
                main_factor: q.main_factor,
                factor: q.factor,
            }),
            _ => None,
        },
    };
    let max_slots = max_slots(mode, key_bits, slot_bits);
    if max_slots == 0 {
        return Err(layer_error(&layer.name, LayerError::NoSlot { key_bits }));
    }
    (layer.slots, layer.input_ciphertexts, layer.output_ciphertexts) = layout(packing, &layer, max_slots);
    Ok(layer)
}
