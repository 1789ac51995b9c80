//! A client that cheats, through the real session code: it follows the
//! private protocol except where a test says otherwise, and tries to learn
//! a weight. Each attack runs against two models that differ in that one
//! weight; what the client sees must not tell them apart. A control shows
//! that the same statistics do tell them apart under a weaker masking, so
//! the test has the power to catch the attack.

mod common;

use std::sync::Arc;

use ppdnn_model::network::{Layer, Linear, Network, Shape};
use ppdnn_model::quant::QuantModel;
use ppdnn_model::testing::{Rng, random_inputs, random_quant_model};
use ppdnn_paillier::{Integer, KeyPair, RandomnessPool};
use ppdnn_protocol::private::PrivateClientSession;
use ppdnn_protocol::{ClientStep, Evaluator, Mode, Output, Packing, RoundMessage};

/// Key size of these tests: small, so that hundreds of sessions run quickly.
const BITS: u32 = 512;
/// Sessions per model.
const SESSIONS: usize = 120;
/// Bins of the statistic: which eighth of Z_n holds what the client decrypts.
const BINS: u32 = 8;
/// The chi-squared threshold of two-sample homogeneity over 8 bins (7
/// degrees of freedom) at p = 10^-6: an honest masking fails this once in
/// a million runs.
const CHI2_THRESHOLD: f64 = 40.5;

/// A small CNN: conv 1->2 (3x3) on 1x6x6, ReLU, dense 3.
fn network() -> Network {
    let layers = vec![
        Layer {
            name: "conv1".into(),
            linear: Linear::Conv2d { out_channels: 2, kernel: [3, 3], stride: [1, 1], padding: [0; 4] },
            relu: true,
            pool: None,
        },
        Layer { name: "out".into(), linear: Linear::Dense { outputs: 3 }, relu: false, pool: None },
    ];
    Network::new(Shape::new(1, 6, 6), layers).expect("a valid network")
}

/// Two models that differ only in conv1's first weight (channel 0, offset 0).
fn models() -> (QuantModel, QuantModel) {
    let calibration = random_inputs(7, 8, 36);
    let a = random_quant_model(network(), 7, &calibration);
    let mut b = a.clone();
    let w = &mut b.layers[0].weight[0];
    *w = if *w < 127 { *w + 1 } else { *w - 1 };
    assert_ne!(a.layers[0].weight[0], b.layers[0].weight[0]);
    (a, b)
}

/// The top-bits attack: the client encrypts H (a huge plaintext) as the
/// first im2col ciphertext of round 0 (kernel offset 0, positions 0..S) and
/// 0 everywhere else, then decrypts what the server returns for conv1's
/// channel 0, positions 0..S: the server computed Y = w00 H + (bias) + mask.
/// Returns each session's [`top_of`] Y.
fn top_bits_attack(model: &QuantModel, pair: &KeyPair, h: &Integer) -> Vec<u32> {
    let ev = Evaluator::for_mode(Arc::new(model.clone()), BITS, Packing::Packed, Mode::Private).unwrap();
    let pk = pair.public();
    let sk = Arc::new(pair.private.clone());
    let n = pk.n().clone();
    (0..SESSIONS)
        .map(|_| {
            let pool = Arc::new(RandomnessPool::new(pk));
            let circuits = ev.circuits().unwrap().clone();
            let mut client =
                PrivateClientSession::new(ev.plan().clone(), circuits, sk.clone(), pool, Output::Logits)
                    .unwrap();
            let (mut server, setup) = ev.private_session(pk.clone(), Output::Logits).unwrap();
            client.start(&[0; 36]).unwrap();
            let ClientStep::Send(honest) = client.receive(&setup).unwrap() else {
                panic!("round 0 expected")
            };
            // The one deviation: round 0's plaintexts.
            let count = ev.plan().layers[0].input_ciphertexts;
            let cts: Vec<_> = (0..count)
                .map(|i| pk.encrypt(&if i == 0 { h.clone() } else { Integer::new() }).unwrap())
                .collect();
            let mut cheat = RoundMessage::from_ciphertexts(pk, 0, &cts);
            cheat.material = honest.material;
            let answer = server.handle(&cheat).unwrap();
            let count = ev.plan().layers[0].output_ciphertexts;
            let cts = answer.ciphertexts_with_material(pk, 1, count, answer.material.len()).unwrap();
            let mut y = pair.private.decrypt(&cts[0]);
            if y < 0 {
                y += &n;
            }
            top_of(&y, &n)
        })
        .collect()
}

/// Which of the [`BINS`] equal parts of [0, n) holds y (the attacker's view
/// of the top bits).
fn top_of(y: &Integer, n: &Integer) -> u32 {
    (Integer::from(y * BINS) / n).to_u32().expect("y < n")
}

/// Two-sample chi-squared statistic of homogeneity over the bins.
fn chi_squared(a: &[u32], b: &[u32]) -> f64 {
    let bins = BINS as usize;
    let count = |xs: &[u32]| {
        let mut c = vec![0f64; bins];
        for &x in xs {
            c[x as usize] += 1.0;
        }
        c
    };
    let (ca, cb) = (count(a), count(b));
    ca.iter().zip(&cb).filter(|(x, y)| *x + *y > 0.0).map(|(x, y)| (x - y) * (x - y) / (x + y)).sum()
}

#[test]
fn the_top_bits_attack_cannot_tell_two_models_apart() {
    let (a, b) = models();
    let pair = common::key(BITS);
    let n = pair.public().n();
    // H = n/8 + 1: w00 H mod n lands in a different eighth of Z_n for w00 and w00 + 1.
    let h = Integer::from(n >> 3u32) + 1;
    let seen_a = top_bits_attack(&a, pair, &h);
    let seen_b = top_bits_attack(&b, pair, &h);
    let chi2 = chi_squared(&seen_a, &seen_b);
    assert!(chi2 < CHI2_THRESHOLD, "the masked accumulators tell the models apart: chi^2 = {chi2:.1}");

    // Control: the masking as first built (t of 40 bits above the top slot)
    // on the same accumulators; the same statistic tells the models apart.
    let weak = |model: &QuantModel| -> Vec<u32> {
        let ev = Evaluator::for_mode(Arc::new(model.clone()), BITS, Packing::Packed, Mode::Private).unwrap();
        let pl = &ev.plan().layers[0];
        let (slots, b) = (pl.slots, pl.slot_bits);
        let mut rng = Rng(0x5eed ^ model.layers[0].weight[0] as u64);
        (0..SESSIONS)
            .map(|_| {
                // M: w00 H, plus the bias of channel 0 in each of the S slots.
                let mut m = Integer::from(&h * model.layers[0].weight[0]);
                for s in 0..slots {
                    m += Integer::from(model.layers[0].bias[0]) << (s as u32 * b);
                }
                let mut mask = Integer::from(rng.next_u64() & ((1 << 40) - 1));
                for _ in 0..slots {
                    mask <<= b;
                    mask += (rng.next_u64() & ((1 << b) - 1)) + (1 << (b - 1));
                }
                let mut y = (m + mask) % n;
                if y < 0 {
                    y += n;
                }
                top_of(&y, n)
            })
            .collect()
    };
    let weak_chi2 = chi_squared(&weak(&a), &weak(&b));
    assert!(weak_chi2 > CHI2_THRESHOLD, "the control lacks power: chi^2 = {weak_chi2:.1}");
}
