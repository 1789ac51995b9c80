//! The known answers the WebAssembly tests (tests/wasm.rs) check in the
//! browser, checked here natively on the same committed data.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use ppdnn_gc::{Block, Evaluator, Garbler, blocks_to_bytes};

#[test]
fn the_committed_garbled_circuit_evaluates_as_recorded() {
    common::check_gc_kat();
}

/// Writes tests/data/gc-kat.txt anew (random labels): run with
/// `cargo test -p ppdnn-web --test native -- --ignored`, then commit it.
#[test]
#[ignore]
fn write_gc_kat() {
    let circuit = common::adder();
    let mut garbler = Garbler::new().unwrap();
    let zero = garbler.fresh_labels(8);
    let x: Vec<bool> = (0..8).map(|i| (200u32 >> i) & 1 == 1).collect();
    let y: Vec<bool> = (0..8).map(|i| (100u32 >> i) & 1 == 1).collect();
    let (garbled, _) = garbler.garble(&circuit, &x, &zero).unwrap();
    let delta = garbler.delta();
    let labels: Vec<Block> =
        zero.iter().zip(&y).map(|(&z, &bit)| if bit { Block(z.0 ^ delta.0) } else { z }).collect();
    let out = Evaluator::new().evaluate(&circuit, &garbled, &labels).unwrap();
    let text = format!(
        "# An 8-bit adder garbled natively (200 + 100): tables and decode bits, the evaluator's labels, the output labels.\n{}\n{}\n{}\n",
        common::hex(&garbled.to_bytes()),
        common::hex(&blocks_to_bytes(&labels)),
        common::hex(&blocks_to_bytes(&out))
    );
    std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/gc-kat.txt"), text).unwrap();
}
