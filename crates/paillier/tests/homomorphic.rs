//! Property tests of every homomorphic identity, with negative and edge values.

mod common;

use common::{key1024, key2048};
use ppdnn_paillier::{Ciphertext, Integer, KeyPair, RandomnessPool, SharedBases};
use proptest::prelude::*;

/// Signed plaintexts: small, large, and the centred range's ends.
fn plaintext(pair: &'static KeyPair) -> impl Strategy<Value = Integer> {
    let half = pair.public().max_plaintext().clone();
    let bits = pair.public().bits();
    prop_oneof![
        any::<i64>().prop_map(Integer::from),
        (-3i64..=3).prop_map(Integer::from),
        prop::collection::vec(any::<u8>(), 1..(bits as usize / 8 - 1)).prop_flat_map(move |bytes| {
            let x = Integer::from_digits(&bytes, rug::integer::Order::Msf);
            prop_oneof![Just(x.clone()), Just(-x)]
        }),
        Just(half.clone()),
        Just(Integer::from(-&half)),
    ]
}

/// Wraps a plaintext into the centred range, as plaintext arithmetic mod n does.
fn centred(pair: &KeyPair, m: Integer) -> Integer {
    let n = pair.public().n();
    let mut r = m % n;
    if r < 0 {
        r += n;
    }
    if &r > pair.public().max_plaintext() {
        r -= n;
    }
    r
}

fn enc(pair: &KeyPair, m: &Integer) -> Ciphertext {
    pair.public().encrypt(m).expect("in range")
}

fn check_identities(pair: &'static KeyPair, a: Integer, b: Integer, k: i64) {
    let pk = pair.public();
    let sk = &pair.private;
    let (ca, cb) = (enc(pair, &a), enc(pair, &b));
    assert_eq!(sk.decrypt(&ca), a, "decrypt(encrypt(a))");
    assert_eq!(sk.decrypt(&pk.add(&ca, &cb)), centred(pair, Integer::from(&a + &b)), "add");
    assert_eq!(sk.decrypt(&pk.sub(&ca, &cb)), centred(pair, Integer::from(&a - &b)), "sub");
    assert_eq!(sk.decrypt(&pk.neg(&ca)), centred(pair, Integer::from(-&a)), "neg");
    assert_eq!(
        sk.decrypt(&pk.add_plain(&ca, &b).unwrap()),
        centred(pair, Integer::from(&a + &b)),
        "add_plain"
    );
    assert_eq!(sk.decrypt(&pk.mul_i64(&ca, k)), centred(pair, Integer::from(&a * k)), "mul_i64");
    let big_k = Integer::from(&b * 3u32);
    assert_eq!(sk.decrypt(&pk.mul(&ca, &big_k)), centred(pair, Integer::from(&a * &big_k)), "mul big");
    let r = pk.rerandomize(&ca).unwrap();
    assert_ne!(r, ca, "rerandomize changes the ciphertext");
    assert_eq!(sk.decrypt(&r), a, "rerandomize keeps the plaintext");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn identities_1024(a in plaintext(key1024()), b in plaintext(key1024()), k in any::<i64>()) {
        check_identities(key1024(), a, b, k);
    }

    #[test]
    fn small_scalars_1024(a in -1000i64..1000, k in -300i64..300) {
        let pair = key1024();
        let c = pair.public().mul_i64(&enc(pair, &Integer::from(a)), k);
        prop_assert_eq!(pair.private.decrypt_i64(&c).unwrap(), a * k);
    }

    #[test]
    fn crt_and_textbook_agree(a in plaintext(key1024())) {
        let pair = key1024();
        let c = enc(pair, &a);
        let textbook = pair.public().decode_plaintext(pair.private.decrypt_textbook_raw(c.value()));
        prop_assert_eq!(textbook, pair.private.decrypt(&c));
    }

    #[test]
    fn linear_combination_matches_naive_and_plaintext(
        terms in prop::collection::vec((-(1i64 << 40)..(1i64 << 40), -300i64..300), 0..40),
    ) {
        let pair = key1024();
        let pk = pair.public();
        let cts: Vec<Ciphertext> = terms.iter().map(|&(x, _)| enc(pair, &Integer::from(x))).collect();
        let w: Vec<i64> = terms.iter().map(|&(_, w)| w).collect();
        let want: Integer = terms.iter().map(|&(x, w)| Integer::from(x) * w).sum();
        let fast = pk.linear_combination(&cts, &w).unwrap();
        let naive = pk.linear_combination_naive(&cts, &w).unwrap();
        let shared = SharedBases::new(pk, &cts, 9, 3);
        let exact = SharedBases::for_rows(pk, &cts, std::slice::from_ref(&w)).unwrap();
        let other: Vec<i64> = w.iter().map(|x| x / 2 + 1).collect();
        let want_other: Integer = terms.iter().zip(&other).map(|(&(x, _), &v)| Integer::from(x) * v).sum();
        prop_assert_eq!(pair.private.decrypt(&exact.combine(&w).unwrap()), want.clone());
        prop_assert_eq!(pair.private.decrypt(&exact.combine(&other).unwrap()), want_other, "rows not given to for_rows");
        prop_assert_eq!(pair.private.decrypt(&fast), want.clone());
        prop_assert_eq!(pair.private.decrypt(&naive), want.clone());
        prop_assert_eq!(pair.private.decrypt(&shared.combine(&w).unwrap()), want);
    }
}

#[test]
fn identities_2048_edge_cases() {
    let pair = key2048();
    let half = pair.public().max_plaintext().clone();
    let low = Integer::from(-&half);
    let cases = [
        (Integer::from(0), Integer::from(0), 0),
        (Integer::from(1), Integer::from(-1), -1),
        (half.clone(), Integer::from(1), 1),
        (low.clone(), Integer::from(-1), -1),
        (half.clone(), low, 2),
        (Integer::from(-123456789), Integer::from(987654321), -128),
    ];
    for (a, b, k) in cases {
        check_identities(pair, a, b, k);
    }
}

#[test]
fn plaintext_out_of_range_is_refused() {
    let pk = key1024().public();
    let above = Integer::from(pk.max_plaintext() + 1u32);
    let below = Integer::from(-pk.max_plaintext()) - 1u32;
    assert!(pk.encrypt(&above).is_err());
    assert!(pk.encrypt(&below).is_err());
    assert!(pk.encrypt(&Integer::from(-pk.max_plaintext())).is_ok());
}

#[test]
fn classic_and_djn_randomness_both_decrypt() {
    let pair = key1024();
    let pk = pair.public();
    // The same modulus without h^n falls back to classic randomness r^n.
    let classic =
        ppdnn_paillier::PublicKey::new(pk.n().clone(), None, ppdnn_paillier::KeyPolicy::INSECURE_TESTING)
            .unwrap();
    assert!(classic.hn().is_none());
    for m in [-5i64, 0, 7, i64::MAX] {
        let c = classic.encrypt_i64(m).unwrap();
        assert_eq!(pair.private.decrypt_i64(&c).unwrap(), m);
        let d = pk.encrypt_i64(m).unwrap();
        assert_eq!(pair.private.decrypt_i64(&d).unwrap(), m);
    }
    // With and without the fixed-base table.
    let with_table = pk.clone();
    with_table.precompute_randomness(6);
    assert!(with_table.has_randomness_table());
    let c = with_table.encrypt_i64(-42).unwrap();
    assert_eq!(pair.private.decrypt_i64(&c).unwrap(), -42);
}

#[test]
fn pool_values_are_fresh_and_decrypt() {
    let pair = key1024();
    let pool = RandomnessPool::new(pair.public());
    pool.fill(10).unwrap();
    assert_eq!(pool.available(), 10);
    // The same plaintext every time: only the randomness can tell the
    // ciphertexts apart, so a reused r^n shows as a repeated ciphertext.
    let ms: Vec<Integer> = vec![Integer::from(-7000); 15];
    let cts = pool.encrypt_many(&ms).unwrap();
    assert_eq!(pool.available(), 0, "taken values leave the pool");
    let distinct: std::collections::HashSet<String> = cts.iter().map(|c| c.value().to_string()).collect();
    assert_eq!(distinct.len(), cts.len(), "no randomness reused");
    for (m, c) in ms.iter().zip(&cts) {
        assert_eq!(&pair.private.decrypt(c), m);
    }
}

#[test]
fn linear_combination_rejects_length_mismatch() {
    let pair = key1024();
    let c = enc(pair, &Integer::from(1));
    assert!(pair.public().linear_combination(std::slice::from_ref(&c), &[1, 2]).is_err());
    assert!(SharedBases::with_window(pair.public(), &[c], 4).combine(&[]).is_err());
}

#[test]
fn shared_bases_many_rows_with_large_weights() {
    let pair = key1024();
    let pk = pair.public();
    let xs: Vec<i64> = (0..25).map(|i| i * 11 - 130).collect();
    let cts: Vec<Ciphertext> = xs.iter().map(|&x| enc(pair, &Integer::from(x))).collect();
    let rows: Vec<Vec<i64>> = (0..6)
        .map(|r| {
            (0..25).map(|i| ((i * 37 + r * 101) % 255 - 127) * if r == 5 { 1 << 30 } else { 1 }).collect()
        })
        .collect();
    let shared = SharedBases::new(pk, &cts, 7, rows.len());
    for (row, c) in rows.iter().zip(shared.combine_many(&rows).unwrap()) {
        let want: i64 = row.iter().zip(&xs).map(|(w, x)| w * x).sum();
        assert_eq!(pair.private.decrypt_i64(&c).unwrap(), want);
    }
}
