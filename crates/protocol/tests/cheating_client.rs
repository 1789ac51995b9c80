//! A client that cheats, through the real session code (docs/SECURITY.md,
//! "What a cheating client cannot learn"): each test runs the honest client
//! with exactly one deviation (made by a hook on its messages, see
//! `common::drive`) and checks that the server aborts with the one opaque
//! status before releasing anything, or that what the client sees does not
//! depend on the weights. Where a check could pass vacuously, a control
//! shows that the same statistic catches the attack on a weaker version.

mod common;

use std::sync::Arc;

use common::{Dir, Trace, drive, drive_weakened};
use ppdnn_gc::softspoken::TREE_BYTES;
use ppdnn_model::network::{Shape, argmax};
use ppdnn_model::quant::QuantModel;
use ppdnn_model::testing::{Rng, random_inputs, random_quant_model};
use ppdnn_paillier::{Ciphertext, Integer, KeyPair};
use ppdnn_protocol::private::{LeftOut, MAC_CORRECTION_BYTES};
use ppdnn_protocol::{ABORTED, ClientStep, Evaluator, Mode, Output, Packing, RoundMessage};

/// Key size of these tests: small, so that hundreds of sessions run quickly.
const BITS: u32 = 512;
/// Sessions per model in the distinguishing tests.
const SESSIONS: usize = 120;
/// Bins of the statistic: which eighth of Z_n holds what the client decrypts.
const BINS: u32 = 8;
/// The chi-squared threshold of two-sample homogeneity over 8 bins (7
/// degrees of freedom) at p = 10^-6.
const CHI2_THRESHOLD: f64 = 40.5;

/// Two models that differ only in conv1's first weight (channel 0, offset 0).
fn models() -> (QuantModel, QuantModel) {
    let calibration = random_inputs(7, 8, 36);
    let a = random_quant_model(common::small_cnn(), 7, &calibration);
    let mut b = a.clone();
    let w = &mut b.layers[0].weight[0];
    *w = if *w < 127 { *w + 1 } else { *w - 1 };
    (a, b)
}

fn evaluator(model: &QuantModel) -> Evaluator {
    Evaluator::for_mode(Arc::new(model.clone()), BITS, Packing::Packed, Mode::Private).unwrap()
}

fn image() -> Vec<u8> {
    (0..36u8).map(|i| i.wrapping_mul(37)).collect()
}

/// The session was refused with the one abort at the verdict (client round
/// 6), and the client got no result: no slot mask, no decode bit.
fn assert_aborted_at_verdict(t: &Trace, what: &str) {
    assert_eq!(t.refused, Some((6, ABORTED.to_string())), "{what}: {t:?}");
    assert!(t.outcome.is_none(), "{what}: the client got a result");
    assert!(t.server_messages.iter().all(|m| m.round < 7), "{what}: the result round was sent");
}

/// A control's outcome: against the weaker server the attack went through
/// (no refusal, a result for the client).
fn assert_completes(t: &Trace, what: &str) {
    assert_eq!(t.refused, None, "{what}: {t:?}");
    assert!(t.outcome.is_some(), "{what}: the client got no result: {t:?}");
}

fn flip_bit(bytes: &mut [u8], k: usize) {
    bytes[k / 8] ^= 1 << (k % 8);
}

/// The residues in [0, n) of every ciphertext of a server message, as the
/// client decrypts them.
fn plaintexts(pair: &KeyPair, m: &RoundMessage) -> Vec<Integer> {
    let n = pair.public().n();
    let count = m.data.len() / pair.public().ciphertext_bytes();
    let cts = m.ciphertexts_with_material(pair.public(), m.round, count, m.material.len()).unwrap();
    cts.iter()
        .map(|c| {
            let y = pair.private.decrypt(c);
            if y < 0 { y + n } else { y }
        })
        .collect()
}

/// Test 1: one bit of one decrypted plaintext changed (its OT choice
/// flipped): the low bit, a slot's top bit, the top slot's top bit, the top
/// bit of n: the MAC catches every one, in each layer with a circuit.
#[test]
fn a_flipped_bit_of_a_decrypted_plaintext_aborts() {
    let (model, _) = models();
    let ev = evaluator(&model);
    let pl = &ev.plan().layers[0];
    let (b, sb) = (pl.slot_bits as usize, pl.slots * pl.slot_bits as usize);
    for j in [0, b - 1, sb - 1, BITS as usize - 1] {
        // The attack, then its control: a server without the MAC in its verdict.
        for left_out in [&[][..], &[LeftOut::Mac]] {
            let t = drive_weakened(&ev, common::key(BITS), &image(), Output::Logits, left_out, |dir, m| {
                if dir == Dir::ToServer && m.round == 3 {
                    flip_bit(&mut m.material, j);
                }
            });
            if left_out.is_empty() {
                assert_aborted_at_verdict(&t, &format!("layer 0, bit {j}"));
            } else {
                assert_completes(&t, &format!("control: layer 0, bit {j}, the MAC left out"));
            }
        }
    }
    // Label mode: the argmax's inputs (layer 1, client round 5) too.
    for j in [0, BITS as usize - 1] {
        let t = drive(&ev, common::key(BITS), &image(), Output::Label, |dir, m| {
            if dir == Dir::ToServer && m.round == 5 {
                flip_bit(&mut m.material, j);
            }
        });
        assert_aborted_at_verdict(&t, &format!("argmax input bit {j}"));
    }
    // Control: the honest session of the same image passes.
    let honest = drive(&ev, common::key(BITS), &image(), Output::Label, |_, _| {});
    assert!(matches!(honest.outcome, Some(ClientStep::Label(_))), "{honest:?}");
}

/// Test 2: offsets that cancel in a sum: +2^j on one ciphertext and -2^j on
/// the other of the same tag. This hook leaves z as the client computed it,
/// so z is also off by the flipped OTs' hashes; the cheater whose z fits its
/// choices, the one a shared or absent MAC key would let through, is in
/// cheating_mac.rs.
#[test]
fn compensating_offsets_abort() {
    let (model, _) = models();
    let ev = evaluator(&model);
    let pair = common::key(BITS);
    assert!(ev.plan().layers[0].output_ciphertexts >= 2, "two ciphertexts under one tag");
    // The attack, then its control: a server without the MAC in its verdict.
    for left_out in [&[][..], &[LeftOut::Mac]] {
        let mut plains: Vec<Integer> = Vec::new();
        let t = drive_weakened(&ev, pair, &image(), Output::Logits, left_out, |dir, m| {
            if dir == Dir::ToClient && m.round == 3 {
                plains = plaintexts(pair, m);
            }
            if dir == Dir::ToServer && m.round == 3 {
                // A bit j that is 0 in Y_0 and 1 in Y_1: flipping both adds 2^j to
                // one and takes it from the other.
                let j = (0..BITS).find(|&j| !plains[0].get_bit(j) && plains[1].get_bit(j)).unwrap();
                flip_bit(&mut m.material, j as usize);
                flip_bit(&mut m.material, BITS as usize + j as usize);
            }
        });
        assert!(plains.len() >= 2, "the layer's masked plaintexts were read");
        if left_out.is_empty() {
            assert_aborted_at_verdict(&t, "compensating offsets");
        } else {
            assert_completes(&t, "control: compensating offsets, the MAC left out");
        }
    }
}

/// Test 2, the other half: an offset that is a multiple of a MAC modulus P
/// the client has seen (an earlier session's), and a check that every layer
/// and session draws its own P: a fixed or reused P would let delta = P m
/// pass.
#[test]
fn an_offset_of_a_known_p_aborts_and_p_is_fresh() {
    let (model, _) = models();
    let ev = evaluator(&model);
    let pair = common::key(BITS);
    let mut seen_p = Vec::new();
    for output in [Output::Label, Output::Label, Output::Logits] {
        drive(&ev, pair, &image(), output, |dir, m| {
            if dir == Dir::ToClient && (m.round == 4 || (m.round == 6 && output == Output::Label)) {
                seen_p.push(u64::from_le_bytes(m.material[..8].try_into().unwrap()));
            }
        });
    }
    let distinct: std::collections::HashSet<u64> = seen_p.iter().copied().collect();
    assert_eq!(distinct.len(), seen_p.len(), "a MAC modulus recurs: {seen_p:?}");
    assert_eq!(seen_p.len(), 5, "two per label-mode session, one per logits-mode one");
    // The client adds P (an earlier session's) to Y_0 by changing its choices.
    let p = Integer::from(seen_p[0]);
    let mut y0 = Integer::new();
    let t = drive(&ev, pair, &image(), Output::Logits, |dir, m| {
        if dir == Dir::ToClient && m.round == 3 {
            y0 = plaintexts(pair, m).swap_remove(0);
        }
        if dir == Dir::ToServer && m.round == 3 {
            let shifted = Integer::from(&y0 + &p);
            for j in 0..BITS {
                if y0.get_bit(j) != shifted.get_bit(j) {
                    flip_bit(&mut m.material, j as usize);
                }
            }
        }
    });
    assert_aborted_at_verdict(&t, "Y_0 + an earlier session's P");
}

/// Test 3: the returned inputs: +1 in one value of layer 1's input, a value
/// above the last slot of a first-layer ciphertext, a pixel copy that
/// disagrees with the others (im2col), and a tag changed alone.
#[test]
fn a_changed_returned_input_or_tag_aborts() {
    let (model, _) = models();
    let ev = evaluator(&model);
    let pair = common::key(BITS);
    let pk = pair.public();
    let pl0 = ev.plan().layers[0].clone();
    let add = |m: &mut RoundMessage, round: usize, count: usize, index: usize, value: Integer| {
        let mut cts = m.ciphertexts_with_material(pk, round, count, m.material.len()).unwrap();
        cts[index] = pk.add(&cts[index], &pk.encrypt(&value).unwrap());
        let material = std::mem::take(&mut m.material);
        *m = RoundMessage::from_ciphertexts(pk, round, &cts);
        m.material = material;
    };
    let cases: Vec<(&str, usize, usize, usize, Integer)> = vec![
        ("layer 1's input + 1", 4, ev.plan().layers[1].input_ciphertexts, 0, Integer::from(1)),
        // Slot 4 of the kernel offset (0, 0): the pixel at (1, 0), whose
        // other copies (offsets (1, 0), ...) are unchanged.
        ("one im2col copy + 1", 2, pl0.input_ciphertexts, 0, Integer::from(1) << (4 * pl0.slot_bits)),
        (
            "above the last slot",
            2,
            pl0.input_ciphertexts,
            3,
            Integer::from(1) << (pl0.slots as u32 * pl0.slot_bits),
        ),
        ("the only copy of a corner pixel + 1", 2, pl0.input_ciphertexts, 0, Integer::from(1)),
        ("the tag only", 5, 1, 0, Integer::from(1)),
    ];
    for (what, round, count, index, value) in cases {
        // The attack, then its control: a server without the zero test in its verdict.
        for left_out in [&[][..], &[LeftOut::ZeroTest]] {
            let t = drive_weakened(&ev, pair, &image(), Output::Logits, left_out, |dir, m| {
                if dir == Dir::ToServer && m.round == round {
                    add(m, round, count, index, value.clone());
                }
            });
            if left_out.is_empty() {
                assert_aborted_at_verdict(&t, what);
            } else {
                assert_completes(&t, &format!("control: {what}, the zero test left out"));
            }
        }
    }
}

/// Test 8: a wrong answer to the OT consistency check: the server stops at
/// once, before computing anything with the weights.
#[test]
fn a_wrong_ot_check_answer_aborts_before_any_layer() {
    let (model, _) = models();
    let ev = evaluator(&model);
    let t = drive(&ev, common::key(BITS), &image(), Output::Logits, |dir, m| {
        if dir == Dir::ToServer && m.round == 2 {
            m.material[5] ^= 1;
        }
    });
    assert_eq!(t.refused, Some((2, ABORTED.to_string())));
    assert!(t.server_messages.iter().all(|m| m.round <= 2), "a layer's output was sent");
}

/// A receiver that cheats in the OT extension (one group's correction
/// column flipped for the pixel OTs) gets nothing under the OT keys before
/// the check: the server's rounds 0 to 2 carry only the nonce, the base-OT
/// points and the challenge, so it cannot test guesses of Delta against
/// pads. The check then either fails (Delta's k bits in the group are not
/// all 0: abort at round 2, nothing more sent) or the flip changed nothing
/// (they are; never for group 0, which holds Delta's lsb, always 1).
#[test]
fn a_cheating_extension_sees_nothing_under_the_ot_keys_before_the_check() {
    let (model, _) = models();
    // This small session's groups of 4 bits of Delta (32 groups), then groups of 8 (16).
    assert_eq!(evaluator(&model).plan().ot_group_bits, Some(4));
    let mut aborted = 0;
    for (k, group) in [(4, 0usize), (4, 5), (4, 17), (4, 31), (8, 0), (8, 9), (8, 15)] {
        let ev = evaluator(&model).with_ot_group_bits(k).unwrap();
        let groups = 128 / k as usize;
        let t = drive(&ev, common::key(BITS), &image(), Output::Logits, |dir, m| {
            if dir == Dir::ToServer && m.round == 1 {
                // The tree message, then one column per group of equal
                // length; flip the first 16 bytes (128 pixel OTs) of this
                // group's column.
                let choice_bytes = 36 * 8 / 8; // the pixel bits' choices follow the extension
                let columns = &mut m.material[TREE_BYTES..];
                let column_bytes = (columns.len() - choice_bytes) / groups;
                for byte in &mut columns[group * column_bytes..group * column_bytes + 16] {
                    *byte ^= 0xff;
                }
            }
        });
        let before_check: usize =
            t.server_messages.iter().filter(|m| m.round <= 2).map(|m| m.material.len() + m.data.len()).sum();
        assert_eq!(before_check, 8 + 128 * 32 + 16, "group {group}: only the nonce, the points and h");
        if t.refused.is_some() {
            assert_eq!(t.refused, Some((2, ABORTED.to_string())), "group {group}");
            assert!(t.server_messages.iter().all(|m| m.round <= 2), "group {group}");
            aborted += 1;
        } else {
            assert_ne!(group, 0, "group 0 holds Delta's lsb: its flip always shows");
            assert!(t.outcome.is_some(), "group {group}: {t:?}");
        }
    }
    // A group's k bits of Delta are all 0 with probability 2^-k: report only.
    eprintln!("{aborted} of 7 group flips aborted");
}

/// A receiver that sends a tree message other than its trees' (both sums
/// of one level changed, so the sender rebuilds other seeds for half of a
/// group, whichever Delta is) is caught by the OT check before anything is
/// sent under the OT keys, at every level and in every group tried.
#[test]
fn a_wrong_tree_message_aborts_at_the_ot_check() {
    let (model, _) = models();
    // Both SoftSpokenOT widths: groups of 4 (this small session's) and of 8.
    for k in [4, 8] {
        let ev = evaluator(&model).with_ot_group_bits(k).unwrap();
        for base_ot in [0usize, 3, 66, 127] {
            let t = drive(&ev, common::key(BITS), &image(), Output::Logits, |dir, m| {
                if dir == Dir::ToServer && m.round == 1 {
                    m.material[32 * base_ot] ^= 1;
                    m.material[32 * base_ot + 16] ^= 1;
                }
            });
            assert_eq!(t.refused, Some((2, ABORTED.to_string())), "k = {k}, base OT {base_ot}");
            assert!(t.server_messages.iter().all(|m| m.round <= 2), "k = {k}, base OT {base_ot}");
        }
    }
}

/// Test 6: there is no message for client-garbled material, and the
/// client's input labels are its OT rows; a client that evaluates anything
/// but the server's circuit on them (here: the first part's ciphertexts
/// replaced by random bytes, so its output labels are random) is caught
/// by the zero test.
#[test]
fn evaluating_with_random_labels_aborts() {
    let (model, _) = models();
    let ev = evaluator(&model);
    let mut rng = Rng(99);
    let t = drive(&ev, common::key(BITS), &image(), Output::Logits, |dir, m| {
        if dir == Dir::ToClient && m.round == 4 {
            let pl = &ev.plan().layers[0];
            // After P and the MAC corrections (one per bit of each plaintext)
            // and the first part's half-gates: its full ANDs' ciphertexts.
            let part = &ev.circuits().expect("a private plan has circuits").layer(0)[0].circuit;
            let corrections = MAC_CORRECTION_BYTES * pl.output_ciphertexts * BITS as usize;
            let at = 8 + corrections + 16 * part.half_ands();
            for byte in &mut m.material[at..at + 24 * part.full_ands()] {
                *byte = rng.next_u64() as u8;
            }
        }
    });
    assert_aborted_at_verdict(&t, "random labels");
}

/// Test 7: one session's messages replayed into another: its OT choices,
/// its returned input with MACs, its D.
#[test]
fn replayed_messages_abort() {
    let (model, _) = models();
    let ev = evaluator(&model);
    let pair = common::key(BITS);
    let first = drive(&ev, pair, &image(), Output::Logits, |_, _| {});
    assert!(first.outcome.is_some());
    for round in [3usize, 4, 6] {
        let old = first.client_messages[round].clone();
        let t = drive(&ev, pair, &image(), Output::Logits, |dir, m| {
            if dir == Dir::ToServer && m.round == round {
                *m = old.clone();
            }
        });
        assert_aborted_at_verdict(&t, &format!("round {round} replayed"));
    }
    // Layer 0's returned input (client round 2) as layer 1's (round 4):
    // refused, and no result.
    let layer0 = first.client_messages[2].clone();
    let t = drive(&ev, pair, &image(), Output::Logits, |dir, m| {
        if dir == Dir::ToServer && m.round == 4 {
            m.data = layer0.data.clone();
        }
    });
    assert!(t.refused.is_some() && t.outcome.is_none(), "{t:?}");
}

/// Test 9: the same deviation against two models that differ in one weight
/// aborts at the same round with the same status and message.
#[test]
fn one_deviation_aborts_alike_for_two_models() {
    let (a, b) = models();
    let outcome = |model: &QuantModel, j: usize| {
        let ev = evaluator(model);
        drive(&ev, common::key(BITS), &image(), Output::Label, |dir, m| {
            if dir == Dir::ToServer && m.round == 3 {
                flip_bit(&mut m.material, j);
            }
        })
        .refused
    };
    for j in [0usize, 7, 300] {
        assert_eq!(outcome(&a, j), outcome(&b, j), "bit {j}");
        assert_eq!(outcome(&a, j), Some((6, ABORTED.to_string())));
    }
}

/// Test 11 (small sizes): 500 random honest sessions (250 random models and
/// images, both outputs): never an abort, always the plaintext model's answer.
#[test]
fn random_honest_sessions_never_abort() {
    honest_sessions(0, 250, 2024);
}

/// `count` random models (seeds from `first`) with a random image each,
/// both outputs: every session gives the plaintext model's answer.
fn honest_sessions(first: u64, count: u64, seed: u64) {
    let calibration = random_inputs(3, 8, 36);
    let pair = common::key(BITS);
    let mut rng = Rng(seed);
    for s in first..first + count {
        let model = random_quant_model(common::small_cnn(), s, &calibration);
        let ev = evaluator(&model);
        let image: Vec<u8> = (0..36).map(|_| rng.next_u64() as u8).collect();
        let want = model.logits(&image).unwrap();
        let t = drive(&ev, pair, &image, Output::Logits, |_, _| {});
        assert_eq!(t.outcome, Some(ClientStep::Done(want.clone())), "session {s}: {t:?}");
        let t = drive(&ev, pair, &image, Output::Label, |_, _| {});
        assert_eq!(t.outcome, Some(ClientStep::Label(argmax(&want))), "session {s}");
    }
}

/// Test 11 in full: 10,000 random honest sessions (5,000 random models and
/// images, both outputs), never an abort. About five minutes, so not in CI:
/// `cargo test --release -p ppdnn-protocol --test cheating_client -- --ignored`.
#[test]
#[ignore]
fn ten_thousand_random_honest_sessions_never_abort() {
    honest_sessions(1_000_000, 5_000, 77);
}

/// The top-bits attack (test 4): the client encrypts H (a huge plaintext)
/// as the first im2col ciphertext of layer 0's input and 0 elsewhere, and
/// follows the protocol otherwise. The server computes Y = w00 H + (bias) +
/// mask for conv1's channel 0 and a tag over it. Returns, per session, the
/// eighth of Z_n holding Y_0, T_0 and the zero test W the client decrypts.
fn top_bits_attack(model: &QuantModel, pair: &KeyPair, h: &Integer) -> Vec<[u32; 3]> {
    let ev = evaluator(model);
    let pk = pair.public();
    let n = pk.n().clone();
    let pl = ev.plan().layers[0].clone();
    let decrypt = |c: &ppdnn_paillier::Ciphertext| {
        let y = pair.private.decrypt(c);
        if y < 0 { y + &n } else { y }
    };
    (0..SESSIONS)
        .map(|_| {
            let mut seen = [0u32; 3];
            drive(&ev, pair, &[0; 36], Output::Label, |dir, m| match (dir, m.round) {
                (Dir::ToServer, 2) => {
                    let cts: Vec<_> = (0..pl.input_ciphertexts)
                        .map(|i| pk.encrypt(&if i == 0 { h.clone() } else { Integer::new() }).unwrap())
                        .collect();
                    let material = std::mem::take(&mut m.material);
                    *m = RoundMessage::from_ciphertexts(pk, 2, &cts);
                    m.material = material;
                }
                (Dir::ToClient, 3) => {
                    let count = pl.output_ciphertexts + 1;
                    let cts = m.ciphertexts_with_material(pk, 3, count, m.material.len()).unwrap();
                    seen[0] = top_of(&decrypt(&cts[0]), &n);
                    seen[1] = top_of(&decrypt(&cts[pl.output_ciphertexts]), &n);
                }
                (Dir::ToClient, 6) => {
                    let cts = m.ciphertexts_with_material(pk, 6, 1, m.material.len()).unwrap();
                    seen[2] = top_of(&decrypt(&cts[0]), &n);
                }
                _ => {}
            });
            seen
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
    for (k, what) in ["Y", "T", "W"].iter().enumerate() {
        let xs: Vec<u32> = seen_a.iter().map(|s| s[k]).collect();
        let ys: Vec<u32> = seen_b.iter().map(|s| s[k]).collect();
        let chi2 = chi_squared(&xs, &ys);
        assert!(chi2 < CHI2_THRESHOLD, "{what} tells the models apart: chi^2 = {chi2:.1}");
    }

    // Control: the masking as first built (t of 40 bits above the top slot)
    // on the same accumulators; the same statistic tells the models apart.
    let weak = |model: &QuantModel| -> Vec<u32> {
        let ev = evaluator(model);
        let pl = &ev.plan().layers[0];
        let (slots, b) = (pl.slots, pl.slot_bits);
        let mut rng = Rng(0x5eed ^ model.layers[0].weight[0] as u64);
        (0..SESSIONS)
            .map(|_| {
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

/// The plan's model digest covers what the plan shows (architecture,
/// requantization), not the weights: a client cannot test a candidate model
/// against it. Control: the requantization steps do change it.
#[test]
fn the_model_digest_does_not_depend_on_the_weights() {
    let (a, b) = models();
    assert_ne!(a.layers[0].weight, b.layers[0].weight);
    let digest = |m: &QuantModel| evaluator(m).plan().model_digest.clone();
    assert_eq!(digest(&a), digest(&b));
    let mut c = a.clone();
    let r = c.layers[0].requant.as_mut().expect("conv1 requantizes");
    r.shift += 1;
    assert_ne!(digest(&a), digest(&c), "the control: a step is part of the digest");
}

/// A MAC shifted by +-n (mod P): with the tag's mask drawn so that an
/// honest tag never wraps past n, the server accepts one value only, so
/// neither shift passes and the verdict tells nothing of whether the tagged
/// sum (which depends on the weights) would have wrapped. A review found
/// that accepting both the wrapped and the unwrapped value made the verdict
/// that bit.
#[test]
fn a_mac_shifted_by_n_aborts_either_way() {
    let (model, _) = models();
    let ev = evaluator(&model);
    let pair = common::key(BITS);
    let n = pair.public().n().clone();
    for shift in [-1i64, 1] {
        let mut p = 0u64;
        let t = drive(&ev, pair, &image(), Output::Logits, |dir, m| {
            if dir == Dir::ToClient && m.round == 4 {
                p = u64::from_le_bytes(m.material[..8].try_into().unwrap());
            }
            if dir == Dir::ToServer && m.round == 4 {
                let (pm, z) = (p as u128, u64::from_le_bytes(m.material[..8].try_into().unwrap()) as u128);
                let nm = Integer::from(&n % p).to_u64().unwrap() as u128;
                let shifted = if shift < 0 { (z + pm - nm) % pm } else { (z + nm) % pm };
                m.material[..8].copy_from_slice(&(shifted as u64).to_le_bytes());
            }
        });
        assert_aborted_at_verdict(&t, &format!("z shifted by {shift} n"));
    }
}

/// A change to a round's ciphertexts.
type Edit<'a> = dyn Fn(&mut Vec<Ciphertext>) + 'a;

/// A residual network's shortcuts: the client returns each shortcut's
/// source (an earlier layer's masked values) beside the layer's own input;
/// +1 in an identity shortcut's value, +1 in a projection shortcut's value,
/// or two of a shortcut's ciphertexts swapped (the right values in the
/// wrong places) is caught by the zero test, with the one abort at the
/// verdict. (Control, checked while building: with the shortcut's segment
/// left out of the zero test on both sides, these sessions completed.)
#[test]
fn a_changed_shortcut_input_aborts() {
    let network = ppdnn_model::zoo::resnet(Shape::new(1, 6, 6), &[2, 3], 1, 3);
    let model = random_quant_model(network, 11, &random_inputs(7, 8, 36));
    let ev = evaluator(&model);
    let pair = common::key(BITS);
    let pk = pair.public();
    let layers = &ev.plan().layers;
    let with_shortcut: Vec<usize> = (0..layers.len()).filter(|&l| layers[l].shortcut.is_some()).collect();
    assert_eq!(with_shortcut, [2, 4], "an identity shortcut into layer 2, a projection into layer 4");
    let verdict = 2 * layers.len() + 2;
    let edit = |m: &mut RoundMessage, count: usize, f: &Edit<'_>| {
        let mut cts = m.ciphertexts_with_material(pk, m.round, count, m.material.len()).unwrap();
        f(&mut cts);
        let material = std::mem::take(&mut m.material);
        *m = RoundMessage::from_ciphertexts(pk, m.round, &cts);
        m.material = material;
    };
    for &l in &with_shortcut {
        let pl = &layers[l];
        let (first, count) = (pl.main_input_ciphertexts(), pl.input_ciphertexts);
        assert!(count - first >= 2, "{}: a shortcut of two ciphertexts or more", pl.name);
        let plus_one = |cts: &mut Vec<Ciphertext>| {
            cts[first] = pk.add(&cts[first], &pk.encrypt(&Integer::from(1)).unwrap());
        };
        let swap = |cts: &mut Vec<Ciphertext>| cts.swap(first, count - 1);
        let cases: [(&str, &Edit<'_>); 2] =
            [("+1 in the shortcut", &plus_one), ("two shortcut ciphertexts swapped", &swap)];
        for (what, f) in cases {
            let t = drive(&ev, pair, &image(), Output::Logits, |dir, m| {
                if dir == Dir::ToServer && m.round == 2 + 2 * l {
                    edit(m, count, f);
                }
            });
            let what = format!("{}: {what}", pl.name);
            assert_eq!(t.refused, Some((verdict, ABORTED.to_string())), "{what}: {t:?}");
            assert!(t.outcome.is_none(), "{what}: the client got a result");
        }
    }
    // The same sessions without a deviation complete exactly.
    let t = drive(&ev, pair, &image(), Output::Logits, |_, _| {});
    assert_eq!(t.outcome, Some(ClientStep::Done(model.logits(&image()).unwrap())));
}

/// A session that refused a round refuses every later one, so a client
/// cannot retry the OT check's answer (each retry would test one more guess
/// about Delta). The control: the same honest answer, sent first, is
/// accepted.
#[test]
fn a_failed_round_ends_the_session_and_cannot_be_retried() {
    let (model, _) = models();
    let ev = evaluator(&model);
    let pair = common::key(BITS);
    for tamper_first in [true, false] {
        let sk = Arc::new(pair.private.clone());
        let pool = Arc::new(ppdnn_paillier::RandomnessPool::new(pair.public()));
        let mut client =
            ppdnn_protocol::ClientSession::new(ev.session_plan(), sk, pool, Output::Logits).unwrap();
        let (mut server, opening) = ev.start(pair.public().clone(), Output::Logits).unwrap();
        let mut incoming = match client.start(&image()).unwrap() {
            Some(first) => server.handle(&first).unwrap(),
            None => opening.expect("the private mode's server opens"),
        };
        loop {
            let ClientStep::Send(m) = client.receive(&incoming).unwrap() else {
                panic!("the client stopped before round 2")
            };
            if m.round != 2 {
                incoming = server.handle(&m).unwrap();
                continue;
            }
            if tamper_first {
                let mut wrong = m.clone();
                wrong.material[5] ^= 1;
                assert_eq!(server.handle(&wrong).unwrap_err().to_string(), ABORTED.to_string());
                let again = server.handle(&m).unwrap_err().to_string();
                assert!(again.contains("an earlier round failed"), "{again}");
            } else {
                assert!(server.handle(&m).is_ok(), "the honest answer passes");
            }
            break;
        }
    }
}
