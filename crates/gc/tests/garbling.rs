//! Garbled evaluation equals plaintext evaluation: random circuits, the
//! gadgets on wide inputs, and the whole pipeline with base OT and OT extension.

use ppdnn_gc::{
    Block, Builder, Circuit, CotReceiver, CotSender, Evaluator, GarbledCircuit, Garbler, Wire, gadgets,
};
use proptest::prelude::*;

/// Garbles and evaluates with labels handed over directly (what OT would deliver).
fn run(garbler: &mut Garbler, evaluator: &mut Evaluator, c: &Circuit, g: &[bool], e: &[bool]) -> Vec<bool> {
    let zero = garbler.fresh_labels(c.evaluator_inputs());
    let (garbled, _) = garbler.garble(c, g, &zero).unwrap();
    // Through the wire form, as the protocol sends it.
    let garbled = GarbledCircuit::from_bytes(c, &garbled.to_bytes()).unwrap();
    let labels: Vec<Block> = zero.iter().zip(e).map(|(&l, &b)| l ^ garbler.delta().select(b)).collect();
    let out = evaluator.evaluate(c, &garbled, &labels).unwrap();
    assert_eq!(garbler.next_tweak(), evaluator.next_tweak(), "tweak counters in step");
    Evaluator::decode(c, &out, &garbled.decode).unwrap()
}

/// A random circuit from a list of (op, i, j) picks over the wires so far.
fn random_circuit(ng: usize, ne: usize, ops: &[(u8, usize, usize)], constants: bool) -> Circuit {
    let mut b = Builder::new();
    let mut wires: Vec<Wire> = b.garbler_inputs(ng);
    wires.extend(b.evaluator_inputs(ne));
    if constants {
        wires.push(b.constant(false));
        wires.push(b.constant(true));
    }
    for &(op, i, j) in ops {
        let (x, y) = (wires[i % wires.len()], wires[j % wires.len()]);
        let w = match op % 4 {
            0 => b.xor(x, y),
            1 => b.and(x, y),
            2 => b.not(x),
            _ => b.or(x, y),
        };
        wires.push(w);
    }
    // The last 16 wires (or all) are the outputs.
    let outs: Vec<Wire> = wires.iter().rev().take(16).copied().collect();
    b.outputs(&outs);
    b.build()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn random_circuits_garble_to_their_plain_values(
        ng in 0usize..6,
        ne in 1usize..6,
        ops in prop::collection::vec((any::<u8>(), any::<usize>(), any::<usize>()), 1..60),
        constants in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let c = random_circuit(ng, ne, &ops, constants);
        let g: Vec<bool> = (0..ng).map(|i| (seed >> i) & 1 == 1).collect();
        let e: Vec<bool> = (0..ne).map(|i| (seed >> (20 + i)) & 1 == 1).collect();
        let mut garbler = Garbler::new().unwrap();
        let mut evaluator = Evaluator::new();
        prop_assert_eq!(run(&mut garbler, &mut evaluator, &c, &g, &e), c.eval_plain(&g, &e).unwrap());
    }

    #[test]
    fn wide_gadgets_garbled(x in any::<u32>(), y in any::<u32>(), sel in any::<bool>(), x_is_garblers in any::<bool>()) {
        let mut b = Builder::new();
        let xs = if x_is_garblers { b.garbler_inputs(32) } else { b.evaluator_inputs(32) };
        let ys = b.evaluator_inputs(32);
        let s = b.evaluator_input();
        let (sum, carry) = gadgets::add(&mut b, &xs, &ys);
        let (diff, borrow) = gadgets::sub(&mut b, &xs, &ys);
        let lt = gadgets::less_than(&mut b, &xs, &ys);
        let m = gadgets::mux(&mut b, s, &xs, &ys);
        let any = gadgets::or_tree(&mut b, &xs);
        b.outputs(&sum);
        b.output(carry);
        b.outputs(&diff);
        b.output(borrow);
        b.output(lt);
        b.outputs(&m);
        b.output(any);
        let c = b.build();
        let bits = |v: u32| (0..32).map(move |i| (v >> i) & 1 == 1);
        let (g, mut e): (Vec<bool>, Vec<bool>) =
            if x_is_garblers { (bits(x).collect(), vec![]) } else { (vec![], bits(x).collect()) };
        e.extend(bits(y));
        e.push(sel);
        let mut garbler = Garbler::new().unwrap();
        let out = run(&mut garbler, &mut Evaluator::new(), &c, &g, &e);
        let val = |o: &[bool]| o.iter().enumerate().map(|(i, &b)| (b as u64) << i).sum::<u64>();
        prop_assert_eq!(val(&out[0..32]), x.wrapping_add(y) as u64);
        prop_assert_eq!(out[32], (x as u64 + y as u64) >> 32 == 1);
        prop_assert_eq!(val(&out[33..65]), x.wrapping_sub(y) as u64);
        prop_assert_eq!(out[65], x < y);
        prop_assert_eq!(out[66], x < y);
        prop_assert_eq!(val(&out[67..99]), if sel { x } else { y } as u64);
        prop_assert_eq!(out[99], x != 0);
    }
}

#[test]
fn the_whole_pipeline_with_base_ot_and_ot_extension() {
    // The evaluator's input bits travel only as its OT-extension choice bits.
    let (setup, a) = CotReceiver::start(ppdnn_gc::GroupBits::EIGHT).unwrap();
    let (mut cot_sender, answer) = CotSender::start(&a, ppdnn_gc::GroupBits::EIGHT).unwrap();
    let (mut cot_receiver, trees) = setup.finish(&answer).unwrap();
    cot_sender.puncture(&trees).unwrap();
    let mut garbler = Garbler::with_delta(cot_sender.delta()).unwrap();
    let mut evaluator = Evaluator::new();
    for (x, y) in [(200u32, 55u32), (7, 9), (0, u32::MAX)] {
        let mut b = Builder::new();
        let xs = b.garbler_inputs(32);
        let ys = b.evaluator_inputs(32);
        let (d, borrow) = gadgets::sub(&mut b, &xs, &ys);
        b.outputs(&d);
        b.output(borrow);
        let c = b.build();
        let y_bits: Vec<bool> = (0..32).map(|i| (y >> i) & 1 == 1).collect();
        let (t, msg) = cot_receiver.extend(&y_bits);
        let q = cot_sender.extend(32, &msg).unwrap();
        let x_bits: Vec<bool> = (0..32).map(|i| (x >> i) & 1 == 1).collect();
        let (garbled, _) = garbler.garble(&c, &x_bits, &q).unwrap();
        let out = evaluator.evaluate(&c, &garbled, &t).unwrap();
        let bits = Evaluator::decode(&c, &out, &garbled.decode).unwrap();
        let v: u64 = bits[..32].iter().enumerate().map(|(i, &b)| (b as u64) << i).sum();
        assert_eq!(v, x.wrapping_sub(y) as u64);
        assert_eq!(bits[32], x < y);
    }
}

#[test]
fn tweaks_never_repeat_delta_has_lsb_1_and_sessions_share_no_label() {
    let mut b = Builder::new();
    let x = b.evaluator_inputs(8);
    let y = b.evaluator_inputs(8);
    let g = b.garbler_inputs(8);
    let (s, _) = gadgets::add(&mut b, &x, &y);
    let (s2, _) = gadgets::add(&mut b, &s, &g);
    b.outputs(&s2);
    let c = b.build();
    // x + y: 7 full ANDs (the carry out of the top bit is read by nothing,
    // so it is not garbled); s + g: a garbler half-gate where the carry is
    // still 0, then 6 full ANDs.
    assert_eq!(c.tweaks(), 7 * 3 + 1 + 6 * 3);
    let mut garbler = Garbler::new().unwrap();
    assert!(garbler.delta().lsb());
    let mut evaluator = Evaluator::new();
    let mut starts = Vec::new();
    for k in 0..5 {
        starts.push(garbler.next_tweak());
        let out = run(&mut garbler, &mut evaluator, &c, &[k % 2 == 0; 8], &[true; 16]);
        assert_eq!(out, c.eval_plain(&[k % 2 == 0; 8], &[true; 16]).unwrap());
    }
    // Each garbling takes a fresh, disjoint range of tweaks.
    assert_eq!(starts, (0..5).map(|k| k * c.tweaks()).collect::<Vec<_>>());
    // Two sessions: different Delta, different labels.
    let mut other = Garbler::new().unwrap();
    assert!(other.delta().lsb());
    assert_ne!(other.delta(), garbler.delta());
    let z1 = garbler.fresh_labels(16);
    let z2 = other.fresh_labels(16);
    let (g1, _) = garbler.garble(&c, &[false; 8], &z1).unwrap();
    let (g2, _) = other.garble(&c, &[false; 8], &z2).unwrap();
    let all: std::collections::HashSet<u128> =
        g1.half_tables.iter().chain(&g2.half_tables).chain(&z1).chain(&z2).map(|b| b.0).collect();
    assert_eq!(all.len(), g1.half_tables.len() + g2.half_tables.len() + 16 + 16);
    let words: std::collections::HashSet<u64> =
        g1.ciphertexts.iter().chain(&g2.ciphertexts).copied().collect();
    assert_eq!(words.len(), g1.ciphertexts.len() + g2.ciphertexts.len());
    assert!(Garbler::with_delta(Block(2)).is_err(), "Delta with lsb 0 is refused");
}

#[test]
fn malformed_garbled_circuits_are_errors() {
    let mut b = Builder::new();
    let x = b.garbler_inputs(3);
    let y = b.evaluator_inputs(3);
    let (s, _) = gadgets::add(&mut b, &x, &y);
    b.outputs(&s);
    let c = b.build();
    let mut garbler = Garbler::new().unwrap();
    let zero = garbler.fresh_labels(3);
    let (garbled, _) = garbler.garble(&c, &[true, false, true], &zero).unwrap();
    let bytes = garbled.to_bytes();
    assert_eq!(bytes.len(), GarbledCircuit::encoded_len(&c));
    assert!(GarbledCircuit::from_bytes(&c, &bytes[..bytes.len() - 1]).is_err(), "short");
    let mut long = bytes.clone();
    long.push(0);
    assert!(GarbledCircuit::from_bytes(&c, &long).is_err(), "long");
    let mut pad = bytes.clone();
    *pad.last_mut().unwrap() |= 0x80;
    assert!(GarbledCircuit::from_bytes(&c, &pad).is_err(), "padding bits set");
    let mut ev = Evaluator::new();
    assert!(ev.evaluate(&c, &garbled, &zero[..2]).is_err(), "too few evaluator labels");
    let mut cut = garbled.clone();
    cut.half_tables.pop();
    assert!(ev.evaluate(&c, &cut, &zero).is_err(), "truncated tables");
    let mut cut = garbled.clone();
    cut.control.pop();
    assert!(ev.evaluate(&c, &cut, &zero).is_err(), "truncated control bits");
    assert!(garbler.garble(&c, &[true], &zero).is_err(), "too few garbler bits");
    assert!(c.eval_plain(&[true; 3], &[true; 2]).is_err());
}
