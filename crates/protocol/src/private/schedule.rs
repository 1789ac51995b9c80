//! The private mode's rounds: which message carries what, and how big
//! each is, derived from the plan and the output asked for. Both sides
//! read sizes from here, so they are written once (docs/PROTOCOL.md 7.2).
//!
//! With L linear layers (l = 0..L-1), a layer "with a circuit" is every
//! layer but the last, and the last too in label mode (the argmax):
//!
//! | round | client -> server | server -> client |
//! |---|---|---|
//! | 0 | the base-OT sender's point | (server 0) the session nonce |
//! | 1 | the OT extension; the pixel bits' OT choices | (1) the base-OT points |
//! | 2 + 2l | layer l's input (l = 0: the OT check's answer; else layer l-1's MACs z) | (2) the OT check's challenge h |
//! | 3 + 2l | Enc(tau_l); OT choices of layer l's plaintext bits | (3 + 2l) layer l's masked accumulators and tags; [l = 0: the pixel tag pads, once the check passed]; the zero-test weights gamma_l |
//! | 2L + 2 | [label: layer L-1's MACs z] D | (4 + 2l) P, MAC corrections e, layer l's garbled circuit (the client's OT rows are its digits' labels) and pads; at 2L + 2: the zero test W |
//! | | | (2L + 3) the result: the last layer's slot masks, or the label's decode bits |

use crate::plan::{Output, Plan, PlanLayer};

use ppdnn_gc::GroupBits;

use super::circuits::{PrivateCircuits, ots, table_bytes};
use super::{LABEL_BYTES, MAC_CORRECTION_BYTES, OUTPUT_PAD_BYTES, PIXEL_PAD_BYTES, TAG_GROUP, VALUE_BITS};

/// Bytes of the base-OT sender's point.
pub const BASE_OT_POINT_BYTES: usize = 32;
/// Base OTs (and bits of Delta).
pub const BASE_OTS: usize = 128;
/// Bytes of the session nonce.
pub const NONCE_BYTES: usize = 8;

/// The rounds of one private session and their sizes.
#[derive(Debug, Clone)]
pub struct Schedule {
    key_bits: u32,
    layers: usize,
    label: bool,
    pixels: usize,
    /// Per layer: (input ciphertexts, output ciphertexts, S B, circuit table bytes, circuit outputs).
    shape: Vec<(usize, usize, usize, usize, usize)>,
    /// First OT of each layer with a circuit (usize::MAX for none).
    ot_first: Vec<usize>,
    total_ots: usize,
    label_bits: usize,
    group_bits: GroupBits,
}

impl Schedule {
    /// The schedule of a private plan with its circuits, for `output`.
    pub fn new(plan: &Plan, circuits: &PrivateCircuits, output: Output) -> Self {
        let layers = plan.layers.len();
        let label = output == Output::Label;
        let pixels = plan.input_shape.iter().product::<usize>();
        let table = |l: usize| -> (usize, usize) {
            if l + 1 < layers {
                let parts = circuits.layer(l);
                (
                    parts.iter().map(|p| table_bytes(&p.circuit)).sum(),
                    parts.iter().map(|p| p.circuit.outputs()).sum(),
                )
            } else if label {
                (table_bytes(circuits.argmax()), 0)
            } else {
                (0, 0)
            }
        };
        let shape = plan
            .layers
            .iter()
            .enumerate()
            .map(|(l, pl): (usize, &PlanLayer)| {
                let (t, o) = table(l);
                (pl.input_ciphertexts, pl.output_ciphertexts, pl.slots * pl.slot_bits as usize, t, o)
            })
            .collect();
        let mut next = pixels * VALUE_BITS;
        let mut ot_first = Vec::with_capacity(layers);
        for (l, pl) in plan.layers.iter().enumerate() {
            if l + 1 < layers || label {
                ot_first.push(next);
                next += ots(pl, plan.key_bits);
            } else {
                ot_first.push(usize::MAX);
            }
        }
        Schedule {
            key_bits: plan.key_bits,
            layers,
            label,
            pixels,
            shape,
            ot_first,
            total_ots: next + ppdnn_gc::kos::CHECK_PADDING,
            label_bits: circuits.argmax().outputs(),
            group_bits: plan
                .ot_group_bits
                .and_then(|k| GroupBits::new(k as usize))
                .expect("a checked private plan has k = 4 or 8"),
        }
    }

    /// SoftSpokenOT's k for the session (the plan's `ot_group_bits`).
    pub fn group_bits(&self) -> GroupBits {
        self.group_bits
    }

    /// Linear layers L.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// Whether the session ends with the label only.
    pub fn label(&self) -> bool {
        self.label
    }

    /// Whether layer l is followed by a circuit (and its plaintexts' bits go through OT).
    pub fn has_circuit(&self, l: usize) -> bool {
        l + 1 < self.layers || self.label
    }

    /// Input values (pixels) of the model.
    pub fn pixels(&self) -> usize {
        self.pixels
    }

    /// OTs of the pixel bits (the first of the session).
    pub fn pixel_ots(&self) -> usize {
        self.pixels * VALUE_BITS
    }

    /// The first OT of layer l's plaintext bits.
    pub fn ot_first(&self, l: usize) -> usize {
        self.ot_first[l]
    }

    /// OTs of layer l's plaintext bits (0 without a circuit).
    pub fn layer_ots(&self, l: usize) -> usize {
        if self.has_circuit(l) { self.shape[l].1 * self.key_bits as usize } else { 0 }
    }

    /// Every OT of the session, the check's padding included.
    pub fn total_ots(&self) -> usize {
        self.total_ots
    }

    /// Bytes of the OT extension message: the tree message, then the
    /// correction columns.
    pub fn extension_bytes(&self) -> usize {
        ppdnn_gc::softspoken::TREE_BYTES
            + ppdnn_gc::softspoken::extension_bytes(self.total_ots, self.group_bits)
    }

    /// Layer l's input ciphertexts.
    pub fn input_ciphertexts(&self, l: usize) -> usize {
        self.shape[l].0
    }

    /// Layer l's output ciphertexts.
    pub fn output_ciphertexts(&self, l: usize) -> usize {
        self.shape[l].1
    }

    /// Layer l's MAC tag ciphertexts (0 without a circuit).
    pub fn tags(&self, l: usize) -> usize {
        if self.has_circuit(l) { self.shape[l].1.div_ceil(TAG_GROUP) } else { 0 }
    }

    /// Circuit input bits of layer l (S B per output ciphertext).
    pub fn input_bits(&self, l: usize) -> usize {
        if self.has_circuit(l) { self.shape[l].1 * self.shape[l].2 } else { 0 }
    }

    /// Bits of S B of layer l.
    pub fn slot_bits_total(&self, l: usize) -> usize {
        self.shape[l].2
    }

    /// Bytes of layer l's garbled tables.
    pub fn table_bytes(&self, l: usize) -> usize {
        self.shape[l].3
    }

    /// Output bits of layer l's activation circuit (0 for the argmax and the last layer).
    pub fn circuit_outputs(&self, l: usize) -> usize {
        self.shape[l].4
    }

    /// Bytes of a plaintext mod n.
    pub fn n_bytes(&self) -> usize {
        self.key_bits.div_ceil(8) as usize
    }

    /// Client rounds in all: 0 ..= 2L + 2.
    pub fn client_rounds(&self) -> usize {
        2 * self.layers + 3
    }

    /// (ciphertexts, material bytes) of client round k.
    pub fn client_message(&self, k: usize) -> (usize, usize) {
        let last = 2 * self.layers + 2;
        match k {
            0 => (0, BASE_OT_POINT_BYTES),
            1 => (0, self.extension_bytes() + self.pixel_ots().div_ceil(8)),
            k if k == last => {
                let z = if self.label { 8 * self.tags(self.layers - 1) } else { 0 };
                (0, z + self.n_bytes())
            }
            k if k % 2 == 0 => {
                let l = (k - 2) / 2;
                let material = if l == 0 { ppdnn_gc::kos::RESPONSE_BYTES } else { 8 * self.tags(l - 1) };
                (self.input_ciphertexts(l), material)
            }
            k => {
                let l = (k - 3) / 2;
                (1, self.layer_ots(l).div_ceil(8))
            }
        }
    }

    /// (ciphertexts, material bytes) of server round k.
    pub fn server_message(&self, k: usize) -> (usize, usize) {
        let (zero_test, last) = (2 * self.layers + 2, 2 * self.layers + 3);
        match k {
            0 => (0, NONCE_BYTES),
            1 => (0, BASE_OTS * BASE_OT_POINT_BYTES),
            2 => (0, LABEL_BYTES),
            k if k == last => {
                let l = self.layers - 1;
                if self.label {
                    (0, self.label_bits.div_ceil(8))
                } else {
                    (0, self.output_ciphertexts(l) * self.slot_bits_total(l).div_ceil(8))
                }
            }
            k if k == zero_test => (1, self.corrections_bytes(self.layers - 1)),
            k if k % 2 == 1 => {
                let l = (k - 3) / 2;
                let pixel_pads = if l == 0 { self.pixel_ots() * PIXEL_PAD_BYTES } else { 0 };
                let material = pixel_pads + 8 * self.input_ciphertexts(l);
                (self.output_ciphertexts(l) + self.tags(l), material)
            }
            k => (0, self.corrections_bytes((k - 4) / 2)),
        }
    }

    /// Ciphertexts the client encrypts in a session.
    pub fn client_ciphertexts(&self) -> usize {
        (0..self.client_rounds()).map(|k| self.client_message(k).0).sum()
    }

    /// Ciphertexts the server returns in a session.
    pub fn server_ciphertexts(&self) -> usize {
        (0..=self.client_rounds()).map(|k| self.server_message(k).0).sum()
    }

    /// Bytes of P, the MAC corrections, the garbled tables and the output
    /// pads of layer l (none without a circuit).
    pub fn corrections_bytes(&self, l: usize) -> usize {
        if !self.has_circuit(l) {
            return 0;
        }
        8 + MAC_CORRECTION_BYTES * self.layer_ots(l)
            + self.table_bytes(l)
            + self.circuit_outputs(l) * OUTPUT_PAD_BYTES
    }

    /// Where layer l's garbled tables start in its corrections message.
    pub fn tables_at(&self, l: usize) -> usize {
        8 + MAC_CORRECTION_BYTES * self.layer_ots(l)
    }
}
