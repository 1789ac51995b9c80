//! The client's building blocks in a real browser (headless Chromium under
//! wasm-bindgen-test): Paillier on the portable backend, and a garbled
//! circuit evaluated exactly as natively (tests/native.rs checks the same
//! committed data).
#![cfg(target_arch = "wasm32")]

mod common;

use ppdnn_paillier::{Backend, Integer, KeyPolicy, generate_keypair};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn the_garbled_circuit_evaluates_as_natively() {
    common::check_gc_kat();
}

#[wasm_bindgen_test]
fn paillier_round_trips_and_adds_on_the_portable_backend() {
    assert_eq!(Backend::current(), Backend::Portable);
    assert!(Backend::Gmp.check().is_err(), "no GMP in the browser");
    let pair = generate_keypair(1024, KeyPolicy::INSECURE_TESTING).unwrap();
    let pk = pair.public();
    pk.precompute_randomness(5);
    let values = [0i64, 1, -1, 123_456_789, -987_654_321];
    let cts: Vec<_> = values.iter().map(|&v| pk.encrypt_i64(v).unwrap()).collect();
    let back = pair.private.decrypt_many(&cts);
    assert_eq!(back, values.iter().map(|&v| Integer::from(v)).collect::<Vec<_>>());
    let sum = pk.linear_combination(&cts, &[1, 2, 3, 4, 5]).unwrap();
    let want: i64 = values.iter().zip(1..).map(|(v, w)| v * w).sum();
    assert_eq!(pair.private.decrypt(&sum), want);
    let max = pk.max_plaintext().clone();
    assert_eq!(pair.private.decrypt(&pk.encrypt(&max).unwrap()), max);
}

#[wasm_bindgen_test]
fn a_key_saved_in_the_page_loads_back() {
    let mut core = ppdnn_web::core::Core::default();
    assert!(core.key_json().is_err());
    let pair = generate_keypair(2048, KeyPolicy::PRODUCTION).unwrap();
    let json = ppdnn_paillier::keyfile::private_key_to_json(&pair.private).to_string();
    core.load_key(&json).unwrap();
    assert_eq!(core.key_bits(), Some(2048));
    assert!(core.load_key("{}").unwrap_err().to_string().contains("saved key"));
}
