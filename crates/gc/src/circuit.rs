//! Boolean circuits: a builder, the circuit it produces, and a plaintext
//! evaluator of the same circuit (the reference for tests).
//!
//! Every wire has a public class fixed when it is built, never by data:
//! - a **constant** of the circuit (public to both parties): gates on it are
//!   folded away while building (x AND 0 = 0, x XOR 1 = NOT x);
//! - **garbler-known**: a garbler input, or a function of garbler inputs and
//!   constants only. The garbler knows its value (the evaluator does not):
//!   an AND of two such wires is free (its zero-label is its value times
//!   Delta: nothing is sent, no tweak is used), and an AND of one with an
//!   evaluator-dependent wire is a garbler half-gate (16 bytes);
//! - **mixed**: anything that depends on an evaluator input: an AND of two
//!   is garbled with three halves (24 bytes and 5 control bits).
//!
//! XOR and NOT are free (free XOR). The shape of a circuit depends only on
//! how it was built, never on the values of garbler or evaluator inputs.

use crate::error::{CountError, Item, Result};

/// A wire of a circuit under construction or built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Wire(pub(crate) u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Const(bool),
    Garbler,
    Mixed,
}

/// One gate of a built circuit. Wires are indices into the label array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// out = a XOR b (free).
    Xor {
        /// Input.
        a: u32,
        /// Input.
        b: u32,
        /// Output.
        out: u32,
    },
    /// out = NOT a (free).
    Not {
        /// Input.
        a: u32,
        /// Output.
        out: u32,
    },
    /// out = a AND b, both garbler-known: free (out is garbler-known too).
    AndKnown {
        /// Input (garbler-known).
        a: u32,
        /// Input (garbler-known).
        b: u32,
        /// Output.
        out: u32,
    },
    /// out = g AND e, g garbler-known: a garbler half-gate (one ciphertext).
    AndHalf {
        /// The garbler-known input.
        g: u32,
        /// The evaluator-dependent input.
        e: u32,
        /// Output.
        out: u32,
    },
    /// out = a AND b, both evaluator-dependent: three halves (three 64-bit
    /// ciphertexts and five control bits).
    And {
        /// Input.
        a: u32,
        /// Input.
        b: u32,
        /// Output.
        out: u32,
    },
}

/// An output of a circuit: a wire, or a constant the building folded it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The value of a wire.
    Wire(u32),
    /// A public constant.
    Const(bool),
}

/// A built circuit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Circuit {
    pub(crate) wires: u32,
    pub(crate) garbler_inputs: Vec<u32>,
    pub(crate) evaluator_inputs: Vec<u32>,
    pub(crate) gates: Vec<Gate>,
    pub(crate) outputs: Vec<Output>,
    /// Whether each wire is garbler-known (for the garbler's own values).
    pub(crate) known: Vec<bool>,
    /// The AND depth of each gate's output (gates are sorted by it).
    pub(crate) depth: Vec<u32>,
}

impl Circuit {
    /// Garbler input bits it takes.
    pub fn garbler_inputs(&self) -> usize {
        self.garbler_inputs.len()
    }

    /// Evaluator input bits it takes.
    pub fn evaluator_inputs(&self) -> usize {
        self.evaluator_inputs.len()
    }

    /// Output bits.
    pub fn outputs(&self) -> usize {
        self.outputs.len()
    }

    /// Each output: a wire, or the constant the building folded it to.
    pub fn output_kinds(&self) -> &[Output] {
        &self.outputs
    }

    /// The gates, in evaluation order.
    pub fn gates(&self) -> &[Gate] {
        &self.gates
    }

    /// AND gates of every kind.
    pub fn and_gates(&self) -> usize {
        self.gates.iter().filter(|g| !matches!(g, Gate::Xor { .. } | Gate::Not { .. })).count()
    }

    /// Half-gates (one input garbler-known): one 16-byte table each.
    pub fn half_ands(&self) -> usize {
        self.gates.iter().filter(|g| matches!(g, Gate::AndHalf { .. })).count()
    }

    /// Full ANDs (both inputs evaluator-dependent): three-halves garbling,
    /// 24 bytes and 5 control bits each.
    pub fn full_ands(&self) -> usize {
        self.gates.iter().filter(|g| matches!(g, Gate::And { .. })).count()
    }

    /// Bytes of the garbled tables ([`crate::GarbledCircuit::tables_to_bytes`]):
    /// 16 per half-gate, then 24 per full AND, then the full ANDs' control
    /// bits packed 5 to a gate.
    pub fn table_bytes(&self) -> usize {
        let full = self.full_ands();
        16 * self.half_ands()
            + crate::three_halves::CIPHERTEXT_BYTES * full
            + (crate::three_halves::CONTROL_BITS * full).div_ceil(8)
    }

    /// Hash tweaks a garbling of this circuit consumes: 3 per full AND, 1
    /// per half-gate.
    pub fn tweaks(&self) -> u64 {
        self.gates
            .iter()
            .map(|g| match g {
                Gate::And { .. } => 3,
                Gate::AndHalf { .. } => 1,
                _ => 0,
            })
            .sum()
    }

    /// The end of the run of AND gates that starts at gate `i`: the AND
    /// gates that follow it at the same depth, which are independent of
    /// each other and can be hashed together.
    pub(crate) fn run_end(&self, i: usize) -> usize {
        let d = self.depth[i];
        i + self.gates[i..]
            .iter()
            .zip(&self.depth[i..])
            .take_while(|(g, dj)| **dj == d && !matches!(g, Gate::Xor { .. } | Gate::Not { .. }))
            .count()
    }

    /// Evaluates the circuit on plain bits: the reference for tests.
    pub fn eval_plain(&self, garbler: &[bool], evaluator: &[bool]) -> Result<Vec<bool>> {
        check_count(Item::GarblerInputBits, garbler.len(), self.garbler_inputs.len())?;
        check_count(Item::EvaluatorInputBits, evaluator.len(), self.evaluator_inputs.len())?;
        let mut v = vec![false; self.wires as usize];
        for (&w, &b) in self.garbler_inputs.iter().zip(garbler) {
            v[w as usize] = b;
        }
        for (&w, &b) in self.evaluator_inputs.iter().zip(evaluator) {
            v[w as usize] = b;
        }
        for g in &self.gates {
            match *g {
                Gate::Xor { a, b, out } => v[out as usize] = v[a as usize] ^ v[b as usize],
                Gate::Not { a, out } => v[out as usize] = !v[a as usize],
                Gate::AndKnown { a, b, out } | Gate::And { a, b, out } => {
                    v[out as usize] = v[a as usize] & v[b as usize]
                }
                Gate::AndHalf { g, e, out } => v[out as usize] = v[g as usize] & v[e as usize],
            }
        }
        Ok(self
            .outputs
            .iter()
            .map(|o| match *o {
                Output::Wire(w) => v[w as usize],
                Output::Const(c) => c,
            })
            .collect())
    }
}

pub(crate) fn check_count(what: Item, got: usize, expected: usize) -> Result<()> {
    if got != expected {
        return Err(CountError::Mismatch { what, got, expected }.into());
    }
    Ok(())
}

/// Builds a circuit gate by gate.
#[derive(Debug, Default)]
pub struct Builder {
    classes: Vec<Class>,
    gates: Vec<Gate>,
    garbler_inputs: Vec<u32>,
    evaluator_inputs: Vec<u32>,
    outputs: Vec<Wire>,
}

impl Builder {
    /// An empty circuit.
    pub fn new() -> Self {
        Builder::default()
    }

    fn wire(&mut self, class: Class) -> Wire {
        let w = Wire(self.classes.len() as u32);
        self.classes.push(class);
        w
    }

    fn class(&self, w: Wire) -> Class {
        self.classes[w.0 as usize]
    }

    /// A new input bit of the garbler.
    pub fn garbler_input(&mut self) -> Wire {
        let w = self.wire(Class::Garbler);
        self.garbler_inputs.push(w.0);
        w
    }

    /// A new input bit of the evaluator.
    pub fn evaluator_input(&mut self) -> Wire {
        let w = self.wire(Class::Mixed);
        self.evaluator_inputs.push(w.0);
        w
    }

    /// `n` new garbler input bits (least significant first).
    pub fn garbler_inputs(&mut self, n: usize) -> Vec<Wire> {
        (0..n).map(|_| self.garbler_input()).collect()
    }

    /// `n` new evaluator input bits (least significant first).
    pub fn evaluator_inputs(&mut self, n: usize) -> Vec<Wire> {
        (0..n).map(|_| self.evaluator_input()).collect()
    }

    /// A public constant.
    pub fn constant(&mut self, value: bool) -> Wire {
        self.wire(Class::Const(value))
    }

    /// a XOR b.
    pub fn xor(&mut self, a: Wire, b: Wire) -> Wire {
        match (self.class(a), self.class(b)) {
            (Class::Const(x), Class::Const(y)) => self.constant(x ^ y),
            (Class::Const(false), _) => b,
            (_, Class::Const(false)) => a,
            (Class::Const(true), _) => self.not(b),
            (_, Class::Const(true)) => self.not(a),
            (ca, cb) => {
                let class =
                    if ca == Class::Mixed || cb == Class::Mixed { Class::Mixed } else { Class::Garbler };
                let out = self.wire(class);
                self.gates.push(Gate::Xor { a: a.0, b: b.0, out: out.0 });
                out
            }
        }
    }

    /// NOT a.
    pub fn not(&mut self, a: Wire) -> Wire {
        match self.class(a) {
            Class::Const(x) => self.constant(!x),
            class => {
                let out = self.wire(class);
                self.gates.push(Gate::Not { a: a.0, out: out.0 });
                out
            }
        }
    }

    /// a AND b.
    pub fn and(&mut self, a: Wire, b: Wire) -> Wire {
        match (self.class(a), self.class(b)) {
            (Class::Const(x), Class::Const(y)) => self.constant(x & y),
            (Class::Const(false), _) | (_, Class::Const(false)) => self.constant(false),
            (Class::Const(true), _) => b,
            (_, Class::Const(true)) => a,
            (Class::Garbler, Class::Garbler) => {
                let out = self.wire(Class::Garbler);
                self.gates.push(Gate::AndKnown { a: a.0, b: b.0, out: out.0 });
                out
            }
            (Class::Garbler, Class::Mixed) => self.half(a, b),
            (Class::Mixed, Class::Garbler) => self.half(b, a),
            (Class::Mixed, Class::Mixed) => {
                let out = self.wire(Class::Mixed);
                self.gates.push(Gate::And { a: a.0, b: b.0, out: out.0 });
                out
            }
        }
    }

    fn half(&mut self, g: Wire, e: Wire) -> Wire {
        let out = self.wire(Class::Mixed);
        self.gates.push(Gate::AndHalf { g: g.0, e: e.0, out: out.0 });
        out
    }

    /// a OR b = a XOR b XOR (a AND b).
    pub fn or(&mut self, a: Wire, b: Wire) -> Wire {
        let x = self.xor(a, b);
        let y = self.and(a, b);
        self.xor(x, y)
    }

    /// Marks a wire as the next output.
    pub fn output(&mut self, w: Wire) {
        self.outputs.push(w);
    }

    /// Marks wires as the next outputs.
    pub fn outputs(&mut self, ws: &[Wire]) {
        self.outputs.extend_from_slice(ws);
    }

    /// AND gates so far.
    pub fn and_gates(&self) -> usize {
        self.gates.iter().filter(|g| !matches!(g, Gate::Xor { .. } | Gate::Not { .. })).count()
    }

    /// The circuit, its gates ordered by AND depth: every AND gate of depth
    /// d (d ANDs on its longest path from an input), then the free gates of
    /// depth d, keeping the building order within each group. The AND gates
    /// of one depth are independent of each other, so garbling and
    /// evaluation hash them in batches. The order is a function of the
    /// circuit's structure only.
    pub fn build(mut self) -> Circuit {
        self.drop_dead_gates();
        let mut depth = vec![0u32; self.classes.len()];
        let mut keyed: Vec<(u32, Gate)> = Vec::with_capacity(self.gates.len());
        for g in self.gates.drain(..) {
            let (ins, out, and): ([u32; 2], u32, bool) = match g {
                Gate::Xor { a, b, out } => ([a, b], out, false),
                Gate::Not { a, out } => ([a, a], out, false),
                Gate::AndKnown { a, b, out } | Gate::And { a, b, out } => ([a, b], out, true),
                Gate::AndHalf { g, e, out } => ([g, e], out, true),
            };
            let d = depth[ins[0] as usize].max(depth[ins[1] as usize]) + and as u32;
            depth[out as usize] = d;
            keyed.push((2 * d + (!and) as u32, g));
        }
        keyed.sort_by_key(|&(k, _)| k);
        let depth = keyed.iter().map(|&(k, _)| k / 2).collect();
        self.gates = keyed.into_iter().map(|(_, g)| g).collect();
        self.renumber();
        self.finish(depth)
    }

    /// Drops the gates no output depends on (a requantization's shift
    /// discards low bits whose ReLU gates would otherwise be garbled for
    /// nothing). Gates are in building order, so one backward pass finds
    /// every live wire.
    fn drop_dead_gates(&mut self) {
        let mut live = vec![false; self.classes.len()];
        for w in &self.outputs {
            live[w.0 as usize] = true;
        }
        let mut kept = Vec::with_capacity(self.gates.len());
        for g in self.gates.drain(..).rev() {
            let (ins, out) = match g {
                Gate::Xor { a, b, out } | Gate::AndKnown { a, b, out } | Gate::And { a, b, out } => {
                    ([a, b], out)
                }
                Gate::Not { a, out } => ([a, a], out),
                Gate::AndHalf { g, e, out } => ([g, e], out),
            };
            if live[out as usize] {
                live[ins[0] as usize] = true;
                live[ins[1] as usize] = true;
                kept.push(g);
            }
        }
        kept.reverse();
        self.gates = kept;
    }

    /// Numbers the wires in the order they are computed (inputs, then gate
    /// outputs in gate order, then constants), so that a gate's inputs lie
    /// close to its output in the label arrays.
    fn renumber(&mut self) {
        const NONE: u32 = u32::MAX;
        let mut map = vec![NONE; self.classes.len()];
        let mut next = 0u32;
        let mut assign = |w: u32, map: &mut Vec<u32>| {
            if map[w as usize] == NONE {
                map[w as usize] = next;
                next += 1;
            }
        };
        for &w in self.garbler_inputs.iter().chain(&self.evaluator_inputs) {
            assign(w, &mut map);
        }
        for g in &self.gates {
            let out = match *g {
                Gate::Xor { out, .. }
                | Gate::Not { out, .. }
                | Gate::AndKnown { out, .. }
                | Gate::AndHalf { out, .. }
                | Gate::And { out, .. } => out,
            };
            assign(out, &mut map);
        }
        for w in 0..self.classes.len() as u32 {
            assign(w, &mut map);
        }
        let m = |w: u32| map[w as usize];
        for g in &mut self.gates {
            *g = match *g {
                Gate::Xor { a, b, out } => Gate::Xor { a: m(a), b: m(b), out: m(out) },
                Gate::Not { a, out } => Gate::Not { a: m(a), out: m(out) },
                Gate::AndKnown { a, b, out } => Gate::AndKnown { a: m(a), b: m(b), out: m(out) },
                Gate::AndHalf { g, e, out } => Gate::AndHalf { g: m(g), e: m(e), out: m(out) },
                Gate::And { a, b, out } => Gate::And { a: m(a), b: m(b), out: m(out) },
            };
        }
        for w in self.garbler_inputs.iter_mut().chain(self.evaluator_inputs.iter_mut()) {
            *w = m(*w);
        }
        for w in &mut self.outputs {
            *w = Wire(m(w.0));
        }
        let mut classes = vec![Class::Mixed; self.classes.len()];
        for (old, &c) in self.classes.iter().enumerate() {
            classes[map[old] as usize] = c;
        }
        self.classes = classes;
    }

    fn finish(self, depth: Vec<u32>) -> Circuit {
        let outputs = self
            .outputs
            .iter()
            .map(|w| match self.classes[w.0 as usize] {
                Class::Const(c) => Output::Const(c),
                _ => Output::Wire(w.0),
            })
            .collect();
        Circuit {
            wires: self.classes.len() as u32,
            known: self.classes.iter().map(|c| *c == Class::Garbler).collect(),
            depth,
            garbler_inputs: self.garbler_inputs,
            evaluator_inputs: self.evaluator_inputs,
            gates: self.gates,
            outputs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_fold_and_classes_pick_the_gate_kind() {
        let mut b = Builder::new();
        let g = b.garbler_input();
        let e = b.evaluator_input();
        let one = b.constant(true);
        let zero = b.constant(false);
        assert_eq!(b.and(e, one), e);
        let z = b.and(e, zero);
        let x = b.xor(g, one);
        let k = b.and(g, g);
        let h = b.and(g, e);
        let f = b.and(e, e);
        b.outputs(&[z, x, k, h, f]);
        let c = b.build();
        assert_eq!(c.outputs[0], Output::Const(false));
        let kinds: Vec<&str> = c
            .gates
            .iter()
            .map(|g| match g {
                Gate::Xor { .. } => "xor",
                Gate::Not { .. } => "not",
                Gate::AndKnown { .. } => "known",
                Gate::AndHalf { .. } => "half",
                Gate::And { .. } => "and",
            })
            .collect();
        assert_eq!(kinds, ["not", "known", "half", "and"]);
        assert_eq!(
            c.table_bytes(),
            16 + 24 + 1,
            "a known AND is free: a half-gate's block, a full AND's three halves and control bits"
        );
        assert_eq!(c.tweaks(), 4);
    }

    #[test]
    fn gates_no_output_depends_on_are_dropped() {
        let mut b = Builder::new();
        let (x, y) = (b.evaluator_input(), b.evaluator_input());
        let used = b.and(x, y);
        let dead = b.and(x, used);
        let _dead_too = b.xor(dead, y);
        b.output(used);
        let c = b.build();
        assert_eq!(c.and_gates(), 1, "only the AND the output reads is garbled");
        assert_eq!(c.eval_plain(&[], &[true, true]).unwrap(), vec![true]);
    }
}
