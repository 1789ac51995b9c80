//! The IFMA and portable backends against GMP through the public API:
//! decryption, randomness, re-randomization and linear layers give
//! identical results, at 1024 and 2048 bits. On a CPU without AVX-512 IFMA
//! these tests say so and check GMP and the portable backend alone.

mod common;

use ppdnn_paillier::{Backend, Ciphertext, Integer, KeyPair, SharedBases, random_bits};
use proptest::prelude::*;

fn ifma_or_skip() -> bool {
    let ok = Backend::ifma_available();
    if !ok {
        eprintln!("this CPU has no AVX-512 IFMA: only the GMP path is tested here");
    }
    ok
}

fn ciphertexts(pair: &KeyPair, values: &[i64]) -> Vec<Ciphertext> {
    values.iter().map(|&v| pair.public().encrypt_i64(v).unwrap()).collect()
}

#[test]
fn batched_decryption_agrees_on_both_backends() {
    for pair in [common::key1024(), common::key2048()] {
        let sk = &pair.private;
        // 0, +-1, the extremes of the plaintext range, and a count that leaves lanes unused.
        let max = pair.public().max_plaintext().clone();
        let mut values: Vec<Integer> =
            [0i64, 1, -1, 123_456_789, -987_654_321].iter().map(|&v| Integer::from(v)).collect();
        values.push(max.clone());
        values.push(Integer::from(-&max));
        let cts: Vec<Ciphertext> = values.iter().map(|v| pair.public().encrypt(v).unwrap()).collect();
        let gmp = sk.decrypt_many_with(Backend::Gmp, &cts).unwrap();
        assert_eq!(gmp, values);
        assert_eq!(sk.decrypt_many_with(Backend::Portable, &cts).unwrap(), values);
        if ifma_or_skip() {
            for len in [0, 1, 3, 4, 5, 7] {
                assert_eq!(
                    sk.decrypt_many_with(Backend::Ifma, &cts[..len]).unwrap(),
                    values[..len],
                    "{len} ciphertexts"
                );
            }
        }
    }
}

#[test]
fn djn_and_full_randomness_agree_on_every_backend() {
    for pair in [common::key1024(), common::key2048()] {
        randomness_agrees(pair);
    }
}

fn randomness_agrees(pair: &KeyPair) {
    let pk = pair.public();
    let exps: Vec<Integer> = (0..11)
        .map(|i| match i {
            0 => Integer::new(),
            1 => Integer::from(1u32),
            2 => (Integer::from(1u32) << pk.djn_exponent_bits()) - 1u32,
            _ => random_bits(pk.djn_exponent_bits()).unwrap(),
        })
        .collect();
    let rs: Vec<Integer> =
        (0..9).map(|i| Integer::from(i * 7919 + 2)).chain([Integer::from(pk.n() - 1u32)]).collect();
    let gmp_djn = pk.djn_rn_from_exponents_with(Backend::Gmp, &exps).unwrap();
    let gmp_full = pk.rn_from_r_many_with(Backend::Gmp, &rs).unwrap();
    for (a, x) in exps.iter().zip(&gmp_djn) {
        assert_eq!(*x, pk.hn().unwrap().clone().pow_mod(a, pk.n_squared()).unwrap());
    }
    assert_eq!(pk.djn_rn_from_exponents_with(Backend::Portable, &exps).unwrap(), gmp_djn);
    assert_eq!(pk.rn_from_r_many_with(Backend::Portable, &rs).unwrap(), gmp_full);
    if ifma_or_skip() {
        assert_eq!(pk.djn_rn_from_exponents_with(Backend::Ifma, &exps).unwrap(), gmp_djn);
        assert_eq!(pk.rn_from_r_many_with(Backend::Ifma, &rs).unwrap(), gmp_full);
    }
    // Fresh randomness from either backend encrypts and decrypts.
    let ifma = Backend::ifma_available().then_some(Backend::Ifma);
    for backend in [Backend::Gmp, Backend::Portable].into_iter().chain(ifma) {
        for rn in pk
            .random_rn_many_with(backend, 9)
            .unwrap()
            .iter()
            .chain(&pk.random_rn_full_many_with(backend, 3).unwrap())
        {
            let c = pk.encrypt_with_rn(&Integer::from(-42), rn).unwrap();
            assert_eq!(pair.private.decrypt(&c), -42);
        }
    }
}

#[test]
fn rerandomized_ciphertexts_keep_their_plaintexts_and_change() {
    let pair = common::key1024();
    let cts = ciphertexts(pair, &[5, -6, 7, 0, 1, 2, 3, 4, 9]);
    let fresh = pair.public().rerandomize_many(&cts).unwrap();
    for (a, b) in cts.iter().zip(&fresh) {
        assert_ne!(a.value(), b.value());
        assert_eq!(pair.private.decrypt(a), pair.private.decrypt(b));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Whole linear layers: random 8-bit (and some 12-bit) weight rows, both
    /// backends, the same ciphertexts bit for bit, and the right plaintexts.
    #[test]
    fn linear_layers_agree_on_both_backends(
        inputs in prop::collection::vec(-300i64..300, 1..24),
        rows in prop::collection::vec(prop::collection::vec(-127i64..=127, 24), 1..12),
        wide in any::<bool>(),
    ) {
        let pair = common::key1024();
        let pk = pair.public();
        let cts = ciphertexts(pair, &inputs);
        let rows: Vec<Vec<i64>> = rows.iter().map(|r| r[..inputs.len()].iter().map(|&w| if wide { w * 31 } else { w }).collect()).collect();
        let gmp = pk.combine_rows_with(Backend::Gmp, &cts, &rows).unwrap();
        let shared = SharedBases::for_rows(pk, &cts, &rows).unwrap().combine_many(&rows).unwrap();
        prop_assert_eq!(&gmp, &shared);
        prop_assert_eq!(&pk.combine_rows_with(Backend::Portable, &cts, &rows).unwrap(), &gmp);
        for (row, c) in rows.iter().zip(&gmp) {
            let want: i64 = row.iter().zip(&inputs).map(|(w, x)| w * x).sum();
            prop_assert_eq!(pair.private.decrypt(c), want);
        }
        if Backend::ifma_available() {
            prop_assert_eq!(pk.combine_rows_with(Backend::Ifma, &cts, &rows).unwrap(), gmp);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Single combinations (Pippenger): weights of 1 to 40 bits, zeros
    /// included, on both backends.
    #[test]
    fn single_combinations_agree_on_both_backends(
        inputs in prop::collection::vec(-1000i64..1000, 1..60),
        weights in prop::collection::vec(any::<i64>(), 60),
        bits in 1u32..40,
    ) {
        let pair = common::key1024();
        let pk = pair.public();
        let cts = ciphertexts(pair, &inputs);
        let weights: Vec<i64> = weights[..inputs.len()].iter().map(|w| w % (1i64 << bits)).collect();
        let gmp = pk.linear_combination_with(Backend::Gmp, &cts, &weights).unwrap();
        let want: i128 = weights.iter().zip(&inputs).map(|(&w, &x)| i128::from(w) * i128::from(x)).sum();
        prop_assert_eq!(pair.private.decrypt(&gmp), Integer::from(want));
        prop_assert_eq!(pk.linear_combination_with(Backend::Portable, &cts, &weights).unwrap(), gmp.clone());
        if Backend::ifma_available() {
            prop_assert_eq!(pk.linear_combination_with(Backend::Ifma, &cts, &weights).unwrap(), gmp);
        }
    }
}

#[test]
fn linear_layer_rows_of_the_wrong_length_are_refused() {
    let pair = common::key1024();
    let cts = ciphertexts(pair, &[1, 2, 3]);
    for backend in [Backend::Gmp, Backend::Portable, Backend::Ifma] {
        if backend == Backend::Ifma && !ifma_or_skip() {
            continue;
        }
        let err = pair.public().combine_rows_with(backend, &cts, &[vec![1, 2]]).unwrap_err();
        assert!(err.to_string().contains("row 0 has 2 weights for 3 ciphertexts"), "{err}");
    }
}

/// Timing, not a test: `cargo test --release -p ppdnn-paillier --test
/// backends timing -- --ignored --nocapture`.
#[test]
#[ignore]
fn timing() {
    let pair = common::key2048();
    let pk = pair.public();
    let cts = ciphertexts(pair, &(0..400).collect::<Vec<i64>>());
    let weights: Vec<i64> = (0..400).map(|i| (i * 37 % 255) - 127).collect();
    for backend in [Backend::Gmp, Backend::Ifma] {
        let start = std::time::Instant::now();
        for _ in 0..20 {
            pk.linear_combination_with(backend, &cts, &weights).unwrap();
        }
        eprintln!("{backend:?}: lincomb400 {:.2} ms", start.elapsed().as_secs_f64() * 1000.0 / 20.0);
        let start = std::time::Instant::now();
        for _ in 0..5 {
            pair.private.decrypt_many_with(backend, &cts[..64]).unwrap();
        }
        eprintln!("{backend:?}: decrypt {:.3} ms each", start.elapsed().as_secs_f64() * 1000.0 / 320.0);
    }
}

/// A loop of batched decryptions on IFMA for a profiler (`perf record` on
/// this test binary with `decrypt_profile --ignored`); prints the rate.
#[test]
#[ignore]
fn decrypt_profile() {
    let pair = common::key2048();
    let cts = ciphertexts(pair, &(0..400).collect::<Vec<i64>>());
    let seconds = for_four_seconds(|| {
        std::hint::black_box(pair.private.decrypt_many_with(Backend::Ifma, &cts).unwrap());
    });
    eprintln!("{:.0} decryptions/s", 400.0 / seconds);
}

/// Runs `f` over and over for four seconds; the seconds per run.
fn for_four_seconds(mut f: impl FnMut()) -> f64 {
    let start = std::time::Instant::now();
    let mut runs = 0;
    while start.elapsed().as_secs_f64() < 4.0 {
        f();
        runs += 1;
    }
    start.elapsed().as_secs_f64() / f64::from(runs)
}

/// A loop of one-thread 400-term linear combinations on IFMA, for a profiler.
#[test]
#[ignore]
fn lincomb_profile() {
    let pair = common::key2048();
    let cts = ciphertexts(pair, &(0..400).collect::<Vec<i64>>());
    let weights: Vec<i64> = (0..400).map(|i| ((i * 37 + 11) % 255) as i64 - 127).collect();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let seconds = pool.install(|| {
        for_four_seconds(|| {
            std::hint::black_box(
                pair.public().linear_combination_with(Backend::Ifma, &cts, &weights).unwrap(),
            );
        })
    });
    eprintln!("{:.0} us per lincomb400 on one thread", seconds * 1e6);
}

/// Many rows: the negative parts' inverses are batched (Montgomery's trick
/// in parts of several steps of eight lanes); rows all positive, all
/// negative, all zero and mixed.
#[test]
fn many_rows_agree_on_both_backends() {
    let pair = common::key1024();
    let pk = pair.public();
    let inputs: Vec<i64> = (0..10).map(|i| i * 17 - 80).collect();
    let cts = ciphertexts(pair, &inputs);
    let rows: Vec<Vec<i64>> = (0..150i64)
        .map(|r| {
            (0..10i64)
                .map(|i| match r % 4 {
                    0 => (r + i) % 9 + 1,
                    1 => -((r * i) % 11) - 1,
                    2 if r % 8 == 2 => 0,
                    _ => ((r * 7 + i * 13) % 255) - 127,
                })
                .collect()
        })
        .collect();
    let gmp = pk.combine_rows_with(Backend::Gmp, &cts, &rows).unwrap();
    for (row, c) in rows.iter().zip(&gmp) {
        let want: i64 = row.iter().zip(&inputs).map(|(w, x)| w * x).sum();
        assert_eq!(pair.private.decrypt(c), want);
    }
    if ifma_or_skip() {
        assert_eq!(pk.combine_rows_with(Backend::Ifma, &cts, &rows).unwrap(), gmp);
    }
}

/// A dense layer of LeNet's size (400 inputs, 120 rows of weights spread
/// like a trained layer's) on IFMA in a loop, for a profiler.
#[test]
#[ignore]
fn dense_layer_profile() {
    let pair = common::key2048();
    let cts = ciphertexts(pair, &(0..400).collect::<Vec<i64>>());
    let mut next = common::xorshift(0x2545_f491_4f6c_dd1d);
    let rows: Vec<Vec<i64>> = (0..120)
        .map(|_| {
            (0..400)
                .map(|_| {
                    let seed = next();
                    // A sum of three uniforms: bell-shaped, most weights small.
                    let u = |k: u32| ((seed >> (k * 8)) & 0x1f) as i64 - 16;
                    (u(0) + u(1) + u(2)).clamp(-127, 127)
                })
                .collect()
        })
        .collect();
    let seconds = for_four_seconds(|| {
        std::hint::black_box(pair.public().combine_rows_with(Backend::Ifma, &cts, &rows).unwrap());
    });
    eprintln!("{:.1} ms per 400x120 layer", seconds * 1e3);
}

/// A dense layer with many distinct weights per input (64 x 64, uniform
/// 8-bit): the IFMA path evaluates it by bit planes of offset weights
/// (fewer products than the powers of every magnitude here), and must give
/// GMP's ciphertexts bit for bit.
#[test]
fn a_wide_dense_layer_agrees_on_both_backends() {
    let pair = common::key1024();
    let pk = pair.public();
    let inputs: Vec<i64> = (0..64).map(|i| (i * 29) % 200 - 100).collect();
    let cts = ciphertexts(pair, &inputs);
    let mut next = common::xorshift(0x853c_49e6_748f_ea9b);
    let rows: Vec<Vec<i64>> =
        (0..64).map(|_| (0..64).map(|_| (next() % 255) as i64 - 127).collect()).collect();
    let gmp = pk.combine_rows_with(Backend::Gmp, &cts, &rows).unwrap();
    for (row, c) in rows.iter().zip(&gmp).take(8) {
        let want: i64 = row.iter().zip(&inputs).map(|(w, x)| w * x).sum();
        assert_eq!(pair.private.decrypt(c), want);
    }
    if ifma_or_skip() {
        assert_eq!(pk.combine_rows_with(Backend::Ifma, &cts, &rows).unwrap(), gmp);
    }
}

#[test]
fn packed_slots_agree_on_both_backends_and_decode() {
    let ifma = ifma_or_skip();
    for pair in [common::key1024(), common::key2048()] {
        let pk = pair.public();
        let bits = 22;
        let max = ppdnn_paillier::SlotCodec::max_slots(pk.bits(), bits);
        let mut next = common::xorshift(0x5eed ^ u64::from(pk.bits()));
        for count in [0, 1, 2, 5, max] {
            let bound = 1i64 << (bits - 1);
            let mut values: Vec<i64> =
                (0..count).map(|_| (next() % (2 * bound as u64)) as i64 - bound).collect();
            // The extremes of a slot, where they fit.
            for (v, e) in values.iter_mut().zip([bound - 1, -bound, 0, -1]) {
                *v = e;
            }
            let cts = ciphertexts(pair, &values);
            let gmp = pk.pack_slots_with(Backend::Gmp, &cts, bits).unwrap();
            if ifma {
                assert_eq!(pk.pack_slots_with(Backend::Ifma, &cts, bits).unwrap(), gmp, "{count} slots");
            }
            for bad in [0, 64, u32::MAX] {
                assert!(pk.pack_slots_with(Backend::Gmp, &cts, bad).is_err(), "{bad}-bit slots refused");
                assert!(pk.pack_slots(&cts, bad).is_err(), "{bad}-bit slots refused");
            }
            let codec = ppdnn_paillier::SlotCodec::new(bits, count.max(1), pk.bits()).unwrap();
            let mut want = values.clone();
            want.resize(count.max(1), 0);
            assert_eq!(codec.decode(&pair.private.decrypt(&gmp)).unwrap(), want, "{count} slots");
        }
    }
}
