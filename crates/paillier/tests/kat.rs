//! Known-answer tests against python-paillier (phe 1.5.0): tests/data/paillier-kat.json holds, for a
//! 1024-bit and a 2048-bit key, encryptions with a given r, sums and scalar products.

use std::path::PathBuf;

use ppdnn_paillier::{Backend, Ciphertext, Integer, KeyPolicy, PrivateKey, parse_decimal};
use serde_json::Value;

fn kat() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/paillier-kat.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("KAT JSON")
}

fn num(v: &Value) -> Integer {
    parse_decimal(v.as_str().expect("decimal string"), "kat").expect("decimal")
}

#[test]
fn python_paillier_known_answers() {
    let kat = kat();
    let keys = kat["keys"].as_array().expect("keys");
    assert!(keys.len() >= 2);
    let mut checked = 0;
    for key in keys {
        let sk = PrivateKey::from_primes(num(&key["p"]), num(&key["q"]), None, KeyPolicy::INSECURE_TESTING)
            .expect("KAT key");
        let pk = sk.public_key();
        assert_eq!(pk.n(), &num(&key["n"]));
        let n = pk.n().clone();
        // KAT plaintexts are signed values encoded as m mod n.
        let signed = |m: Integer| {
            let mut r = m % &n;
            if r < 0 {
                r += &n;
            }
            pk.decode_plaintext(r)
        };
        for e in key["encryptions"].as_array().expect("encryptions") {
            let m = signed(num(&e["m"]));
            let c = pk.encrypt_with_r(&m, &num(&e["r"])).expect("encrypt");
            assert_eq!(c.value(), &num(&e["c"]), "encryption of {m}");
            assert_eq!(sk.decrypt(&c), m);
            checked += 1;
        }
        for s in key["sums"].as_array().expect("sums") {
            let (c1, c2) = (pk.ciphertext(num(&s["c1"])).unwrap(), pk.ciphertext(num(&s["c2"])).unwrap());
            let sum = pk.add(&c1, &c2);
            if let Some(c) = s.get("c") {
                assert_eq!(sum.value(), &num(c));
            }
            assert_eq!(sk.decrypt(&sum), signed(num(&s["m"])));
            checked += 1;
        }
        for p in key["scalar_products"].as_array().expect("scalar_products") {
            let c = pk.ciphertext(num(&p["c"])).unwrap();
            let k = num(&p["k"]);
            assert_eq!(
                sk.decrypt(&pk.mul(&c, &k)),
                signed(num(&p["result_plaintext"])),
                "scalar product by {k}"
            );
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} vectors checked");
}

/// The backends this machine can run: GMP always, IFMA where the CPU has it
/// (and a line in the output saying so where it does not).
fn backends() -> Vec<Backend> {
    if Backend::ifma_available() {
        vec![Backend::Gmp, Backend::Ifma]
    } else {
        eprintln!("this CPU has no AVX-512 IFMA: the known answers are checked on GMP only");
        vec![Backend::Gmp]
    }
}

#[test]
fn python_paillier_known_answers_on_every_backend() {
    let kat = kat();
    let mut checked = 0;
    for key in kat["keys"].as_array().expect("keys") {
        let sk = PrivateKey::from_primes(num(&key["p"]), num(&key["q"]), None, KeyPolicy::INSECURE_TESTING)
            .expect("KAT key");
        let pk = sk.public_key();
        let n = pk.n().clone();
        let encryptions = key["encryptions"].as_array().expect("encryptions");
        let rs: Vec<Integer> = encryptions.iter().map(|e| num(&e["r"])).collect();
        let cts: Vec<Ciphertext> = encryptions.iter().map(|e| pk.ciphertext(num(&e["c"])).unwrap()).collect();
        let want: Vec<Integer> = encryptions
            .iter()
            .map(|e| {
                let mut r = num(&e["m"]) % &n;
                if r < 0 {
                    r += &n;
                }
                pk.decode_plaintext(r)
            })
            .collect();
        for backend in backends() {
            // r^n through the backend, then the encryption it gives.
            let rns = pk.rn_from_r_many_with(backend, &rs).unwrap();
            for ((rn, m), c) in rns.iter().zip(&want).zip(&cts) {
                assert_eq!(
                    pk.encrypt_with_rn(m, rn).unwrap().value(),
                    c.value(),
                    "{backend:?}: encryption of {m}"
                );
            }
            assert_eq!(sk.decrypt_many_with(backend, &cts).unwrap(), want, "{backend:?}: decryptions");
            checked += cts.len();
        }
    }
    assert!(checked > 20, "only {checked} vectors checked");
}
