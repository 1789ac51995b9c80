//! The encrypted pipeline gives exactly the plaintext integer model's
//! accumulators, on real images at 2048 bits and on random inputs with small keys.

mod common;

use common::{key, model, test_set};

use std::sync::Arc;

use ppdnn_paillier::{KeyPair, RandomnessPool};
use ppdnn_protocol::{ClientStep, Evaluator, Output, Packing, RoundMessage, fast::FastClientSession};
use proptest::prelude::*;

/// Runs the protocol for one image; returns the logits.
fn run(ev: &Evaluator, pair: &KeyPair, image: &[u8]) -> Vec<i64> {
    match common::run(ev, pair, image, Output::Logits) {
        ClientStep::Done(logits) => logits,
        other => unreachable!("the fast mode returns logits, not {other:?}"),
    }
}

#[test]
fn twenty_real_images_at_2048_bits_bit_exact() {
    let pair = key(2048);
    pair.public().precompute_randomness(8);
    let ev = Evaluator::new(Arc::new(model().quant.clone()), 2048, Packing::Packed).unwrap();
    for i in 0..20 {
        let image = test_set().image(i);
        assert_eq!(run(&ev, pair, image), model().quant.logits(image).unwrap(), "test image {i}");
    }
}

#[test]
fn unpacked_mode_agrees_too() {
    let pair = key(1024);
    let ev = Evaluator::new(Arc::new(model().quant.clone()), 1024, Packing::Unpacked).unwrap();
    let image = test_set().image(3);
    assert_eq!(run(&ev, pair, image), model().quant.logits(image).unwrap());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4))]

    /// Random weights and random pixels, small keys (fewer slots, more ciphertexts).
    #[test]
    fn random_models_and_inputs_with_small_keys(seed in any::<u64>(), pixels in prop::collection::vec(any::<u8>(), 784)) {
        let quant = common::random_model(seed, test_set());
        let ev = Evaluator::new(Arc::new(quant.clone()), 1024, Packing::Packed).unwrap();
        prop_assert_eq!(run(&ev, key(1024), &pixels), quant.logits(&pixels).unwrap());
    }
}

fn started(
    ev: &Evaluator,
    pair: &KeyPair,
) -> (FastClientSession, ppdnn_protocol::fast::FastServerSession, RoundMessage) {
    let sk = Arc::new(pair.private.clone());
    let pool = Arc::new(RandomnessPool::new(pair.public()));
    let mut client = FastClientSession::new(ev.plan().clone(), sk, pool).unwrap();
    let server = ev.session(pair.public().clone()).unwrap();
    let msg = client.start(test_set().image(0)).unwrap();
    (client, server, msg)
}

#[test]
fn tampered_messages_are_rejected_with_clear_errors() {
    let pair = key(1024);
    let ev = Evaluator::new(Arc::new(model().quant.clone()), 1024, Packing::Packed).unwrap();
    let width = pair.public().ciphertext_bytes();

    // Wrong count: one ciphertext missing.
    let (_, mut server, msg) = started(&ev, pair);
    let short =
        RoundMessage { round: 0, data: msg.data[..msg.data.len() - width].to_vec(), material: Vec::new() };
    let e = server.handle(&short).unwrap_err().to_string();
    assert!(e.contains("round 0") && e.contains("the plan says"), "{e}");
    // Ragged payload.
    let ragged =
        RoundMessage { round: 0, data: msg.data[..msg.data.len() - 3].to_vec(), material: Vec::new() };
    assert!(server.handle(&ragged).unwrap_err().to_string().contains("whole number"));
    // Out-of-range ciphertext (all ones is above n^2).
    let mut bad = msg.data.clone();
    bad[width..2 * width].fill(0xff);
    let e =
        server.handle(&RoundMessage { round: 0, data: bad, material: Vec::new() }).unwrap_err().to_string();
    assert!(e.contains("ciphertext 1") && e.contains("n^2"), "{e}");
    // A ciphertext that shares a factor with n: n itself.
    let mut bad = msg.data.clone();
    let n_bytes = ppdnn_paillier::to_fixed_bytes(pair.public().n(), width);
    bad[..width].copy_from_slice(&n_bytes);
    assert!(
        server
            .handle(&RoundMessage { round: 0, data: bad, material: Vec::new() })
            .unwrap_err()
            .to_string()
            .contains("factor")
    );
    // Wrong round.
    let e = server
        .handle(&RoundMessage { round: 1, data: msg.data.clone(), material: Vec::new() })
        .unwrap_err()
        .to_string();
    assert!(e.contains("round 1") && e.contains("expected"), "{e}");
    // After all that, the same session still serves the correct message.
    let answer = server.handle(&msg).unwrap();
    assert_eq!(answer.round, 0);

    // The client checks the server's answers the same way.
    let (mut client, mut server, msg) = started(&ev, pair);
    let answer = server.handle(&msg).unwrap();
    let e = client
        .receive(&RoundMessage { round: 3, data: answer.data.clone(), material: Vec::new() })
        .unwrap_err()
        .to_string();
    assert!(e.contains("round 3"), "{e}");
    let e = client
        .receive(&RoundMessage { round: 0, data: answer.data[width..].to_vec(), material: Vec::new() })
        .unwrap_err()
        .to_string();
    assert!(e.contains("the plan says"), "{e}");
    // A swapped-in fresh encryption of a huge value breaks the slot layout.
    let huge = pair.public().encrypt(&(ppdnn_paillier::Integer::from(1) << 1021)).unwrap();
    let mut data = answer.data.clone();
    data[..width].copy_from_slice(&pair.public().ciphertext_to_bytes(&huge));
    let e = client.receive(&RoundMessage { round: 0, data, material: Vec::new() }).unwrap_err().to_string();
    assert!(e.contains("round 0: output ciphertext 0") && e.contains("a slot overflowed"), "{e}");
}

#[test]
fn plans_that_understate_bounds_are_refused() {
    let quant = &model().quant;
    let ev = Evaluator::new(Arc::new(quant.clone()), 2048, Packing::Packed).unwrap();
    let mut plan = (**ev.plan()).clone().into_unchecked();
    ppdnn_protocol::Plan::check(plan.clone()).unwrap().check_against(quant).unwrap();
    // Slots too narrow for the stated bound: the plan itself is inconsistent.
    let mut narrow = plan.clone();
    narrow.layers[2].slot_bits -= 1;
    assert!(narrow.validate().unwrap_err().to_string().contains("cannot hold"));
    // A bound below the model's real one, with slots to match: consistent on
    // its face, but the server (which knows the weights) refuses it.
    plan.layers[2].accumulator_bound = 1000;
    plan.layers[2].slot_bits = 11;
    plan.layers[2].slots = 120;
    plan.layers[2].output_ciphertexts = 1;
    assert!(ppdnn_protocol::Plan::check(plan).unwrap().check_against(quant).is_err());
    // JSON round trip of the real plan.
    let real = ev.plan();
    assert_eq!(&ppdnn_protocol::Plan::from_json(&real.to_json()).unwrap(), &**real);
    assert!(ppdnn_protocol::Plan::from_json("{}").is_err());
}

#[test]
fn a_deliberately_wrong_plan_cannot_be_served() {
    // conv1's slots narrowed by 8 bits, with a bound to match: real
    // accumulators would overflow them, and the server refuses the plan.
    let quant = &model().quant;
    let ev = Evaluator::new(Arc::new(quant.clone()), 1024, Packing::Packed).unwrap();
    let mut plan = (**ev.plan()).clone().into_unchecked();
    let real_bound = plan.layers[0].accumulator_bound;
    let l = &mut plan.layers[0];
    l.slot_bits -= 8;
    l.accumulator_bound = (1 << (l.slot_bits - 1)) - 1;
    let plan = ppdnn_protocol::Plan::check(plan).unwrap();
    let acc = quant.trace(test_set().image(0)).unwrap().remove(0);
    assert!(acc.iter().any(|a| a.abs() > plan.layers[0].accumulator_bound), "image 0 would overflow");
    assert!(real_bound > plan.layers[0].accumulator_bound);
    let e = Evaluator::with_plan(Arc::new(quant.clone()), plan).unwrap_err().to_string();
    assert!(e.contains("does not match the model"), "{e}");
}

/// The server re-randomizes every returned ciphertext with its session's
/// stock of r^n (filled ahead, or computed on the spot when empty): two
/// sessions answering the same message return different ciphertexts of
/// the same values, and a filled stock is what the rounds consume.
#[test]
fn fast_sessions_rerandomize_from_their_stock() {
    let pair = key(1024);
    let ev = Evaluator::new(Arc::new(model().quant.clone()), 1024, Packing::Packed).unwrap();
    let sk = Arc::new(pair.private.clone());
    let pool = Arc::new(RandomnessPool::new(pair.public()));
    let mut client = FastClientSession::new(ev.plan().clone(), sk, pool).unwrap();
    let msg = client.start(test_set().image(0)).unwrap();
    let mut stocked = ev.session(pair.public().clone()).unwrap();
    let need = stocked.randomness_needed();
    assert_eq!(need, ev.plan().server_ciphertexts());
    stocked.randomness().fill(need).unwrap();
    let mut empty = ev.session(pair.public().clone()).unwrap();
    let a = stocked.handle(&msg).unwrap();
    let b = empty.handle(&msg).unwrap();
    let count = ev.plan().layers[0].output_ciphertexts;
    assert_eq!(stocked.randomness().available(), need - count, "the round took its r^n from the stock");
    assert_eq!(empty.randomness().available(), 0);
    let (ca, cb) =
        (a.ciphertexts(pair.public(), 0, count).unwrap(), b.ciphertexts(pair.public(), 0, count).unwrap());
    for (x, y) in ca.iter().zip(&cb) {
        assert_ne!(x, y, "two sessions returned the same ciphertext");
        assert_eq!(pair.private.decrypt(x), pair.private.decrypt(y));
    }
}
