//! What a hostile peer can send: plans that would make a client allocate or
//! index wildly, answers that decode to extreme values; and what a server
//! spends on a key before any ciphertext arrives.

mod common;

use std::sync::Arc;

use ppdnn_paillier::{Integer, KeyPair, KeyPolicy, RandomnessPool, generate_keypair};
use ppdnn_protocol::{Evaluator, KeyCache, Packing, Plan, RoundMessage, fast::FastClientSession};

use common::model;

fn key() -> &'static KeyPair {
    common::key(512)
}

fn plan(packing: Packing) -> Plan {
    Plan::new(&model().quant, 512, packing).unwrap()
}

/// The plan's JSON with one layer field replaced.
fn with_field(plan: &Plan, layer: usize, path: &[&str], value: serde_json::Value) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap();
    let mut slot = &mut v["layers"][layer];
    for p in path {
        slot = &mut slot[*p];
    }
    *slot = value;
    v.to_string()
}

#[test]
fn plans_with_huge_or_wrapping_dimensions_are_refused_cleanly() {
    let p = plan(Packing::Packed);
    let cases = [
        // A kernel and padding that validate by fitting each other, and would
        // then ask for ~7e14 slots of memory.
        (vec!["linear", "kernel"], serde_json::json!([20000, 20000]), "kernel"),
        (vec!["linear", "padding"], serde_json::json!([20000, 20000, 20000, 20000]), "padding"),
        (vec!["linear", "stride"], serde_json::json!([0, 1]), "stride"),
        // 2^63 + 1 channels: wraps in release arithmetic.
        (vec!["linear", "out_channels"], serde_json::json!(9223372036854775809u64), "channels"),
        (vec!["output", "height"], serde_json::json!(usize::MAX), "shapes"),
        (vec!["input", "channels"], serde_json::json!(usize::MAX), "shapes"),
        (vec!["slots"], serde_json::json!(0), "slots"),
        (vec!["input_ciphertexts"], serde_json::json!(1u64 << 40), "ciphertexts"),
    ];
    for (path, value, word) in cases {
        let text = with_field(&p, 0, &path, value);
        let e = Plan::from_json(&text).unwrap_err().to_string();
        assert!(e.contains(word), "{path:?}: {e}");
    }
    let mut v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
    v["input_shape"] = serde_json::json!([usize::MAX, 2, 2]);
    assert!(Plan::from_json(&v.to_string()).unwrap_err().to_string().contains("input dimensions"));
    let layers = v["layers"].as_array().unwrap().clone();
    v["input_shape"] = serde_json::json!([1, 28, 28]);
    v["layers"] = serde_json::Value::Array(layers.iter().cycle().take(100).cloned().collect());
    assert!(Plan::from_json(&v.to_string()).unwrap_err().to_string().contains("1 to 64 layers"));
}

#[test]
fn an_answer_that_decodes_to_i64_min_is_refused() {
    // Unpacked: each answer ciphertext is one accumulator. The last round's
    // answers all encrypt i64::MIN, whose absolute value does not exist.
    let pair = key();
    let plan = Arc::new(plan(Packing::Unpacked));
    let pool = Arc::new(RandomnessPool::new(pair.public()));
    let mut client = FastClientSession::new(plan.clone(), Arc::new(pair.private.clone()), pool).unwrap();
    client.start(&[0u8; 784]).unwrap();
    let count = plan.layers[0].output_ciphertexts;
    let ct = pair.public().encrypt(&Integer::from(i64::MIN)).unwrap();
    let answer = RoundMessage::from_ciphertexts(pair.public(), 0, &vec![ct; count]);
    let e = client.receive(&answer).unwrap_err().to_string();
    assert!(e.contains("beyond the plan's bound"), "{e}");
}

#[test]
fn a_start_alone_costs_the_server_no_table() {
    let pair = key();
    let ev = Evaluator::new(Arc::new(model().quant.clone()), 512, Packing::Packed).unwrap();
    let fresh = ppdnn_paillier::PublicKey::new(
        pair.public().n().clone(),
        pair.public().hn().cloned(),
        KeyPolicy::INSECURE_TESTING,
    )
    .unwrap();
    let mut server = ev.session(fresh.clone()).unwrap();
    assert!(!fresh.has_randomness_table(), "a table was built before any ciphertext arrived");
    // A bad first round builds nothing either.
    assert!(server.handle(&RoundMessage { round: 0, data: vec![1, 2, 3], material: Vec::new() }).is_err());
    assert!(!fresh.has_randomness_table());
    // A genuine first round does.
    let pool = Arc::new(RandomnessPool::new(pair.public()));
    let mut client = FastClientSession::new(ev.plan().clone(), Arc::new(pair.private.clone()), pool).unwrap();
    let msg = client.start(&[9u8; 784]).unwrap();
    server.handle(&msg).unwrap();
    assert!(fresh.has_randomness_table());
}

#[test]
fn the_key_cache_keeps_to_its_memory_budget() {
    let one_table = {
        let k = generate_keypair(512, KeyPolicy::INSECURE_TESTING).unwrap();
        k.public().precompute_randomness(5);
        k.public().randomness_table_bytes()
    };
    assert!(one_table > 0);
    let cache = KeyCache::new(100, 3 * one_table);
    for _ in 0..6 {
        let k = generate_keypair(512, KeyPolicy::INSECURE_TESTING).unwrap();
        let cached = cache.get(k.public().clone());
        cached.precompute_randomness(5);
    }
    // The last key's table was built after its insertion: one more lookup evicts down to the budget.
    let k = generate_keypair(512, KeyPolicy::INSECURE_TESTING).unwrap();
    cache.get(k.public().clone());
    assert!(cache.table_bytes() <= 3 * one_table, "{} bytes held", cache.table_bytes());
    assert!(cache.len() <= 4, "{} keys held", cache.len());
    // A key seen again shares its table.
    let again = cache.get(k.public().clone());
    again.precompute_randomness(5);
    assert!(cache.get(k.public().clone()).has_randomness_table());
}
