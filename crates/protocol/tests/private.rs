//! The private mode: exact logits and labels, what the client sees, and
//! what each side does with malformed messages.

mod common;

use common::{key, model, test_set};

use std::sync::Arc;
use std::time::Instant;

use ppdnn_model::network::argmax;
use ppdnn_paillier::{Integer, KeyPair, KeyPolicy};
use ppdnn_protocol::Output;
use ppdnn_protocol::{ClientStep, Evaluator, Mode, Packing, RoundMessage};
use proptest::prelude::*;

fn evaluator(bits: u32) -> Evaluator {
    Evaluator::for_mode(Arc::new(model().quant.clone()), bits, Packing::Packed, Mode::Private).unwrap()
}

/// Runs one private inference in process.
fn run(ev: &Evaluator, pair: &KeyPair, image: &[u8], output: Output) -> ClientStep {
    common::run(ev, pair, image, output)
}

#[test]
fn private_logits_and_labels_equal_the_plaintext_models_at_1024_bits() {
    let ev = evaluator(1024);
    let pair = key(1024);
    let data = test_set();
    for i in 0..3 {
        let image = data.image(i);
        let want = model().quant.logits(image).unwrap();
        let t = Instant::now();
        assert_eq!(run(&ev, pair, image, Output::Logits), ClientStep::Done(want.clone()), "image {i}");
        eprintln!("image {i}: {:?}", t.elapsed());
        assert_eq!(run(&ev, pair, image, Output::Label), ClientStep::Label(argmax(&want)), "image {i}");
    }
}

/// The plan's SoftSpokenOT width: the planner's choice by session size,
/// both widths exact (the shipped LeNet-5 at 1024 bits, forced to each),
/// and any other width refused by the plan check.
#[test]
fn both_ot_group_widths_are_exact_and_others_are_refused() {
    use ppdnn_protocol::{Plan, private::circuits::LARGE_SESSION_OTS};
    let plan = evaluator(1024).plan().as_ref().clone();
    assert_eq!(plan.ot_group_bits, Some(4), "LeNet-5's {} pixels and plaintexts", LARGE_SESSION_OTS);
    let pair = key(1024);
    let image = test_set().image(7);
    let want = model().quant.logits(image).unwrap();
    for k in [4, 8] {
        let mut unchecked = plan.clone().into_unchecked();
        unchecked.ot_group_bits = Some(k);
        let ev =
            Evaluator::with_plan(Arc::new(model().quant.clone()), Plan::check(unchecked).unwrap()).unwrap();
        assert_eq!(run(&ev, pair, image, Output::Logits), ClientStep::Done(want.clone()), "k = {k}");
        assert_eq!(run(&ev, pair, image, Output::Label), ClientStep::Label(argmax(&want)), "k = {k}");
    }
    for k in [None, Some(0), Some(2), Some(5), Some(16)] {
        let mut unchecked = plan.clone().into_unchecked();
        unchecked.ot_group_bits = k;
        let err = Plan::check(unchecked).unwrap_err().to_string();
        assert!(err.contains("ot_group_bits must be 4 or 8"), "{k:?}: {err}");
    }
}

#[test]
fn two_hundred_real_images_at_2048_bits_bit_exact() {
    let ev = evaluator(2048);
    let pair = key(2048);
    pair.public().precompute_randomness(8);
    for i in 0..200 {
        let image = test_set().image(i);
        let want = model().quant.logits(image).unwrap();
        assert_eq!(run(&ev, pair, image, Output::Logits), ClientStep::Done(want), "test image {i}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3))]

    /// Random weights and random pixels at 1024 bits, logits and label.
    #[test]
    fn random_models_and_inputs_at_1024_bits(seed in any::<u64>(), pixels in prop::collection::vec(any::<u8>(), 784)) {
        let quant = common::random_model(seed, test_set());
        let ev = Evaluator::for_mode(Arc::new(quant.clone()), 1024, Packing::Packed, Mode::Private).unwrap();
        let want = quant.logits(&pixels).unwrap();
        prop_assert_eq!(run(&ev, key(1024), &pixels, Output::Logits), ClientStep::Done(want.clone()));
        prop_assert_eq!(run(&ev, key(1024), &pixels, Output::Label), ClientStep::Label(argmax(&want)));
    }
}

/// The plan's circuits on accumulators at both ends of each layer's bound,
/// with masks chosen so that every slot borrows: slot 0's masked sum
/// reaches 2^B and every other slot's is 2^B - 1, so the carry out of slot
/// 0 runs through the whole ciphertext (and the digits are all 0).
#[test]
fn plan_circuits_at_the_bounds_with_every_carry_propagating() {
    use ppdnn_protocol::private::circuits::activation_spec;
    let plan = evaluator(1024).plan().clone();
    for pl in &plan.layers[..plan.layers.len() - 1] {
        let spec = activation_spec(pl).unwrap();
        let circuit = ppdnn_gc::activation::activation_circuit(&spec);
        let bb = pl.slot_bits;
        let bound = pl.accumulator_bound;
        for case in 0..3 {
            let acc: Vec<i64> = (0..pl.output.len())
                .map(|a| match (case, a % 3) {
                    (0, _) => bound,
                    (1, _) => -bound,
                    (_, 0) => bound,
                    (_, 1) => -bound,
                    _ => 0,
                })
                .collect();
            let mut slot_values = vec![0i64; spec.ciphertexts * spec.slots];
            for (a, &slot) in spec.accumulator_slots.iter().enumerate() {
                slot_values[slot] = acc[a];
            }
            let (mut garbler, mut evaluator) = (Vec::new(), Vec::new());
            for ct in 0..spec.ciphertexts {
                for i in 0..spec.slots {
                    let h = pl.rounding_offset() as i64;
                    let v = (slot_values[ct * spec.slots + i] + (1i64 << (bb - 1)) + h) as u64;
                    let r = if i == 0 { (1u64 << bb) - v } else { (1u64 << bb) - 1 - v };
                    assert!(r < 1 << bb);
                    evaluator.extend((0..bb).map(|_| false)); // every digit is 0
                    garbler.extend((0..bb).map(|k| (r >> k) & 1 == 1));
                }
            }
            let out = circuit.eval_plain(&garbler, &evaluator).unwrap();
            let got: Vec<i64> = out
                .chunks(8)
                .map(|w| w.iter().enumerate().map(|(k, &b)| (b as i64) << k).sum::<i64>())
                .collect();
            let want =
                ppdnn_model::network::activate_int(pl.relu, pl.pool.as_ref(), pl.output, pl.requant, &acc);
            assert_eq!(got, want, "{} case {case}", pl.name);
        }
    }
}

/// The server's first masked answer (server round 3: layer 0's masked
/// accumulators and tags) for `image`, and the client's round 2 (its input).
fn first_answer(ev: &Evaluator, pair: &KeyPair, image: &[u8]) -> (RoundMessage, RoundMessage) {
    let (mut answer, mut input) = (None, None);
    common::drive(ev, pair, image, Output::Logits, |dir, m| match (dir, m.round) {
        (common::Dir::ToClient, 3) => answer = Some(m.clone()),
        (common::Dir::ToServer, 2) => input = Some(m.clone()),
        _ => {}
    });
    (answer.unwrap(), input.unwrap())
}

/// Chi-square statistic of counts against the uniform distribution.
fn chi_square(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let e = total as f64 / counts.len() as f64;
    counts.iter().map(|&c| (c as f64 - e).powi(2) / e).sum()
}

/// What the client decrypts is uniform: for every slot position, the top two
/// bits of its digit over many ciphertexts and runs, for a blank image and a
/// white one alike. Without the masks (or with a slot left out of them) the
/// digits would be the shifted accumulators, far from uniform.
#[test]
fn the_digits_the_client_decrypts_are_uniform_whatever_the_input() {
    let ev = evaluator(1024);
    let pair = key(1024);
    let pl = &ev.plan().layers[0];
    let n = pair.public().n();
    let (bb, slots) = (pl.slot_bits, pl.slots);
    for image in [vec![0u8; 784], vec![255u8; 784]] {
        let mut counts = vec![[0u64; 4]; slots];
        for _ in 0..4 {
            let (answer, _) = first_answer(&ev, pair, &image);
            let count = answer.data.len() / pair.public().ciphertext_bytes();
            let cts =
                answer.ciphertexts_with_material(pair.public(), 3, count, answer.material.len()).unwrap();
            for c in &cts[..pl.output_ciphertexts] {
                let mut y = pair.private.decrypt(c);
                if y < 0 {
                    y += n;
                }
                // The mask covers the whole residue (the bits above the slots
                // are its uniform top part: cheating_client.rs tests them).
                assert!(y < *n, "Y is a residue mod n");
                for (i, count) in counts.iter_mut().enumerate() {
                    let top = u32::from(y.get_bit(bb * i as u32 + bb - 1)) * 2
                        + u32::from(y.get_bit(bb * i as u32 + bb - 2));
                    count[top as usize] += 1;
                }
            }
        }
        // 3 degrees of freedom: 30 is exceeded with probability ~1e-6.
        for (i, c) in counts.iter().enumerate() {
            assert!(chi_square(c) < 30.0, "slot {i}: top bits {c:?} are not uniform");
        }
    }
}

/// r with c = (1 + n)^m r^n mod n^2, as a curious key holder recovers it:
/// r = (c mod n)^(n^-1 mod phi(n)) mod n.
fn randomness_of(pair: &KeyPair, c: &ppdnn_paillier::Ciphertext) -> Integer {
    let sk = &pair.private;
    let n = pair.public().n();
    let phi = Integer::from(sk.p() - 1u32) * Integer::from(sk.q() - 1u32);
    let e = n.clone().invert(&phi).unwrap();
    let base = Integer::from(c.value() % n);
    base.pow_mod(&e, n).unwrap()
}

/// Every ciphertext the server returns carries randomness of its own: the
/// same client message answered twice gives unrelated randomness (without
/// the server's r'^n it would be the same product of the client's own
/// input randomness both times), and no value repeats.
#[test]
fn every_returned_ciphertext_has_fresh_randomness() {
    let ev = evaluator(1024);
    let pair = key(1024);
    let (first, input) = first_answer(&ev, pair, test_set().image(4));
    // A second session, whose client's round 2 carries the very same input ciphertexts.
    let mut second = None;
    common::drive(&ev, pair, test_set().image(4), Output::Logits, |dir, m| match (dir, m.round) {
        (common::Dir::ToServer, 2) => m.data = input.data.clone(),
        (common::Dir::ToClient, 3) => second = Some(m.clone()),
        _ => {}
    });
    let second = second.unwrap();
    let count = first.data.len() / pair.public().ciphertext_bytes();
    let out = ev.plan().layers[0].output_ciphertexts;
    assert_eq!(count, out + out.div_ceil(64), "the accumulators and their tags");
    let a = first.ciphertexts_with_material(pair.public(), 3, count, first.material.len()).unwrap();
    let b = second.ciphertexts_with_material(pair.public(), 3, count, second.material.len()).unwrap();
    let mut seen = std::collections::HashSet::new();
    for (x, y) in a.iter().zip(&b) {
        let (rx, ry) = (randomness_of(pair, x), randomness_of(pair, y));
        assert_ne!(rx, ry, "the same input answered twice with the same randomness");
        assert!(seen.insert(rx) && seen.insert(ry), "a randomness value repeats");
    }
    // The zero test W of two sessions on the same image: fresh too.
    let zero_test = || {
        let round = 2 * ev.plan().layers.len() + 2;
        let mut w = None;
        common::drive(&ev, pair, test_set().image(4), Output::Logits, |dir, m| {
            if dir == common::Dir::ToClient && m.round == round {
                w = Some(
                    m.ciphertexts_with_material(pair.public(), round, 1, m.material.len()).unwrap()[0]
                        .clone(),
                );
            }
        });
        randomness_of(pair, &w.expect("the zero test was sent"))
    };
    let (w1, w2) = (zero_test(), zero_test());
    assert_ne!(w1, w2, "two zero tests with the same randomness");
    assert!(seen.insert(w1) && seen.insert(w2), "a randomness value repeats");
}

/// The private mode does not depend on the key's h^n: a key without one
/// gets the same exact answers.
#[test]
fn a_key_without_hn_is_served_the_same() {
    let ev = evaluator(1024);
    let pair = key(1024);
    let sk = &pair.private;
    let bare = ppdnn_paillier::PrivateKey::from_primes(
        sk.p().clone(),
        sk.q().clone(),
        None,
        KeyPolicy::INSECURE_TESTING,
    )
    .unwrap();
    assert!(bare.public_key().hn().is_none());
    let bare = KeyPair { private: bare };
    let image = test_set().image(6);
    assert_eq!(
        run(&ev, &bare, image, Output::Logits),
        ClientStep::Done(model().quant.logits(image).unwrap())
    );
}

/// Label-only: the client learns the label and nothing else: the last
/// layer's plaintexts reach it only as garbled-circuit input labels, and the
/// result round carries the label's decode bits alone (one byte).
#[test]
fn label_only_returns_the_label_and_nothing_else() {
    let ev = evaluator(1024);
    let pair = key(1024);
    let image = test_set().image(11);
    let t = common::drive(&ev, pair, image, Output::Label, |_, _| {});
    let want = argmax(&model().quant.logits(image).unwrap());
    assert_eq!(t.outcome, Some(ClientStep::Label(want)));
    let layers = ev.plan().layers.len();
    let last = t.server_messages.last().unwrap();
    assert_eq!(last.round, 2 * layers + 3);
    assert!(last.data.is_empty(), "no ciphertexts come back with the label");
    assert_eq!(last.material.len(), 1, "only the label's four decode bits come back");
    let sent = t.client_messages.last().unwrap();
    assert!(sent.data.is_empty());
    assert_eq!(sent.material.len(), 8 + 128, "the last layer's MAC and the zero test's answer");
}

/// Malformed rounds get clear errors on both sides, and the evaluator goes on serving.
#[test]
fn tampered_private_rounds_are_rejected_with_clear_errors() {
    let ev = evaluator(1024);
    let pair = key(1024);
    let width = pair.public().ciphertext_bytes();
    let refused = |round: usize, change: &dyn Fn(&mut RoundMessage)| {
        common::drive(&ev, pair, test_set().image(0), Output::Logits, |dir, m| {
            if dir == common::Dir::ToServer && m.round == round {
                change(m);
            }
        })
        .refused
        .map(|(_, e)| e)
        .unwrap_or_default()
    };
    assert!(
        refused(0, &|m| {
            m.material.pop();
        })
        .contains("bytes of material")
    );
    assert!(refused(0, &|m| m.round = 1).contains("round 1 arrived where round 0"));
    assert!(refused(1, &|m| m.material.truncate(100)).contains("bytes of material"));
    assert!(refused(2, &|m| m.data.truncate(width)).contains("ciphertexts where the plan says"));
    assert!(refused(3, &|m| m.data.clear()).contains("ciphertexts where the plan says"));
    let client_error = |round: usize, change: &dyn Fn(&mut RoundMessage)| {
        common::drive(&ev, pair, test_set().image(0), Output::Logits, |dir, m| {
            if dir == common::Dir::ToClient && m.round == round {
                change(m);
            }
        })
        .client_error
        .unwrap_or_default()
    };
    assert!(
        client_error(1, &|m| {
            m.material.pop();
        })
        .contains("material")
    );
    assert!(
        client_error(3, &|m| m.data.extend(vec![1u8; width])).contains("ciphertexts where the plan says")
    );
    assert!(client_error(2, &|m| m.round = 3).contains("round 3 arrived where round 2"));
    // The evaluator goes on serving.
    let image = test_set().image(5);
    assert_eq!(run(&ev, pair, image, Output::Logits), ClientStep::Done(model().quant.logits(image).unwrap()));
}
