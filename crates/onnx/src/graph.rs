//! The graph's wiring, read before the walk along its data path: which node
//! produces each tensor and how many nodes read it, and, for each Add of two
//! computed values whose inputs both come from convolutions, which input
//! is the projection shortcut (the 1x1 convolution of a residual block's
//! input, with its batch normalization) and which nodes make it up.

use std::collections::{HashMap, HashSet};

use crate::proto::NodeProto;

/// A projection branch into an Add: a Conv and the per-channel steps after
/// it (BatchNormalization, Identity, Dropout, Add of a constant), each read
/// by the next alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Projection {
    /// The Add's input (0 or 1) that the branch computes.
    pub input: usize,
    /// The Conv's index in the graph.
    pub conv: usize,
    /// The steps after it, in order.
    pub steps: Vec<usize>,
}

/// What the walk needs to know ahead about the graph's branches.
#[derive(Debug, Default)]
pub(crate) struct Wiring {
    /// The projection feeding each residual Add (by the Add's index).
    pub projections: HashMap<usize, Projection>,
    /// Every projection's nodes: the walk leaves them to their Add.
    pub in_projection: HashSet<usize>,
}

/// Producers and reader counts of the graph's tensors.
struct Links<'a> {
    nodes: &'a [NodeProto],
    producer: HashMap<&'a str, usize>,
    readers: HashMap<&'a str, usize>,
    constants: &'a dyn Fn(&str) -> bool,
}

impl Wiring {
    /// The wiring of `nodes` (in the graph's order, which ONNX makes
    /// topological); `constant` tells the initializers.
    pub fn of(nodes: &[NodeProto], constant: &dyn Fn(&str) -> bool) -> Self {
        let mut links =
            Links { nodes, producer: HashMap::new(), readers: HashMap::new(), constants: constant };
        for (i, n) in nodes.iter().enumerate() {
            for o in &n.output {
                links.producer.entry(o.as_str()).or_insert(i);
            }
            for x in &n.input {
                *links.readers.entry(x.as_str()).or_default() += 1;
            }
        }
        let mut wiring = Wiring::default();
        for (a, node) in nodes.iter().enumerate().filter(|(_, n)| n.op_type() == "Add") {
            if let Some(p) = links.projection(node) {
                wiring.in_projection.insert(p.conv);
                wiring.in_projection.extend(&p.steps);
                wiring.projections.insert(a, p);
            }
        }
        wiring
    }
}

impl Links<'_> {
    /// Whether `tensor` is a constant: an initializer or a Constant node's output.
    fn is_constant(&self, tensor: &str) -> bool {
        (self.constants)(tensor)
            || self.producer.get(tensor).is_some_and(|&i| self.nodes[i].op_type() == "Constant")
    }

    /// The branch computing `tensor` from a Conv through per-channel steps,
    /// each value read once (by the next step, or the Add), Conv first;
    /// None if `tensor` is not computed so.
    fn branch(&self, tensor: &str) -> Option<Vec<usize>> {
        let mut chain: Vec<usize> = Vec::new();
        let mut t = tensor;
        loop {
            let &i = self.producer.get(t)?;
            // Each step goes back to an earlier node (the graph's order is
            // topological), which also ends the walk on a malformed graph.
            if self.readers.get(t) != Some(&1) || chain.last().is_some_and(|&last| i >= last) {
                return None;
            }
            chain.push(i);
            let node = &self.nodes[i];
            match node.op_type() {
                "Conv" => {
                    chain.reverse();
                    return Some(chain);
                }
                "BatchNormalization" | "Identity" | "Dropout" => {}
                "Add" if node.input.len() == 2 && self.is_constant(&node.input[1]) => {}
                _ => return None,
            }
            t = node.input.first()?;
        }
    }

    /// Where the value a branch's Conv reads is computed: its producer's
    /// index, or -1 for the graph's input.
    fn start(&self, branch: &[usize]) -> Option<i64> {
        let input = self.nodes[*branch.first()?].input.first()?;
        Some(self.producer.get(input.as_str()).map_or(-1, |&i| i as i64))
    }

    /// The projection of an Add whose two inputs both come from
    /// convolutions: the branch that reads the earlier value (the block's
    /// input, which the other branch's convolutions start from); of two
    /// reading the same value, the later convolution.
    fn projection(&self, add: &NodeProto) -> Option<Projection> {
        let [a, b] = &add.input[..] else { return None };
        let (ba, bb) = (self.branch(a)?, self.branch(b)?);
        let (sa, sb) = (self.start(&ba)?, self.start(&bb)?);
        let (input, mut nodes) = if sa < sb || (sa == sb && ba[0] > bb[0]) { (0, ba) } else { (1, bb) };
        let conv = nodes.remove(0);
        Some(Projection { input, conv, steps: nodes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
        NodeProto {
            op_type: Some(op.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            ..Default::default()
        }
    }

    fn wiring(nodes: &[NodeProto]) -> Wiring {
        Wiring::of(nodes, &|t: &str| t.starts_with('w'))
    }

    /// A basic block with a projection, the projection before or after the
    /// main branch, and the Add's inputs either way round.
    #[test]
    fn projections_are_the_branches_from_the_block_input() {
        let main = [
            node("Conv", &["x", "w0"], "a"),
            node("Relu", &["a"], "r0"),
            node("Conv", &["r0", "w1"], "c1"),
            node("Relu", &["c1"], "r1"),
            node("Conv", &["r1", "w2"], "c2"),
            node("BatchNormalization", &["c2", "w3", "w4", "w5", "w6"], "b2"),
        ];
        let side = [
            node("Conv", &["r0", "w7"], "d"),
            node("BatchNormalization", &["d", "w8", "w9", "wa", "wb"], "e"),
        ];
        for (before, swap) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut nodes: Vec<NodeProto> = main[..2].to_vec();
            let at = if before { 2 } else { 6 };
            nodes.extend(main[2..].iter().cloned());
            side.iter().rev().for_each(|n| nodes.insert(at, n.clone()));
            let inputs = if swap { ["e", "b2"] } else { ["b2", "e"] };
            nodes.push(node("Add", &inputs, "s"));
            let w = wiring(&nodes);
            let p = &w.projections[&8];
            assert_eq!(p.input, usize::from(!swap));
            assert_eq!((p.conv, &p.steps[..]), (at, &[at + 1][..]));
            assert_eq!(w.in_projection.len(), 2);
        }
    }

    /// An identity shortcut (the block input is read twice), a constant
    /// operand and a branch value read elsewhere too make no projection.
    #[test]
    fn other_adds_have_no_projection() {
        let nodes = [
            node("Conv", &["x", "w0"], "a"),
            node("Relu", &["a"], "r0"),
            node("Conv", &["r0", "w1"], "c1"),
            node("Add", &["c1", "r0"], "s"),
            node("Add", &["s", "w2"], "t"),
            node("Conv", &["t", "w3"], "c3"),
            node("Conv", &["t", "w4"], "c4"),
            node("Add", &["c3", "c4"], "u"),
            node("Relu", &["c4"], "v"),
        ];
        assert!(wiring(&nodes).projections.is_empty());
    }
}
