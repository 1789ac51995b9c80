//! What the native and the WebAssembly tests both check, on committed data.

use ppdnn_gc::{Builder, Circuit, Evaluator, GarbledCircuit, blocks_from_bytes, blocks_to_bytes, gadgets};

/// A garbled circuit made natively (tests/data/gc-kat.txt): its tables,
/// the evaluator's input labels, and the output labels a native evaluation
/// gave. Hex, one item per line.
const KAT: &str = include_str!("../data/gc-kat.txt");

/// The circuit of the known answer: an 8-bit adder of the garbler's and
/// the evaluator's inputs, with its carry.
pub fn adder() -> Circuit {
    let mut b = Builder::new();
    let x = b.garbler_inputs(8);
    let y = b.evaluator_inputs(8);
    let (sum, carry) = gadgets::add(&mut b, &x, &y);
    b.outputs(&sum);
    b.output(carry);
    b.build()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex test data")).collect()
}

/// Evaluates the committed garbled circuit and checks that the output
/// labels are those the native evaluation gave, and that they decode to
/// 200 + 100 (the inputs garbled).
pub fn check_gc_kat() {
    let circuit = adder();
    let lines: Vec<&str> = KAT.lines().filter(|l| !l.starts_with('#')).collect();
    let garbled = GarbledCircuit::from_bytes(&circuit, &unhex(lines[0])).expect("the committed tables parse");
    let labels =
        blocks_from_bytes(&unhex(lines[1]), 8, ppdnn_gc::Item::EvaluatorLabels).expect("labels parse");
    let out = Evaluator::new().evaluate(&circuit, &garbled, &labels).expect("evaluates");
    assert_eq!(
        hex(&blocks_to_bytes(&out)),
        lines[2],
        "the output labels differ from the native evaluation's"
    );
    let bits = Evaluator::decode(&circuit, &out, &garbled.decode).expect("decodes");
    let value: u32 = bits.iter().enumerate().map(|(i, &b)| u32::from(b) << i).sum();
    assert_eq!(value, 300);
}
