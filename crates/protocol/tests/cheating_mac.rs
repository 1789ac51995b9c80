//! The MAC of the circuits' inputs (docs/PROTOCOL.md 7.4, docs/SECURITY.md
//! "Authenticated circuit inputs") against its strongest cheater: a client
//! whose OT choices form some Y'_c other than the Y_c it decrypted, and
//! whose MAC z is computed *consistently with those choices* (sigma_c =
//! U_c + alpha_c Y'_c), so that z is off from what the server expects by
//! exactly alpha_c (Y_c - Y'_c) mod P and nothing else. A test whose
//! cheater keeps the shares of the bits it decrypted (as
//! `cheating_client.rs` does: its hook flips choice bits and leaves z alone)
//! sends a z that is also off by H'(K^0) - H'(K^1) of every flipped OT, which
//! a keyless checksum (alpha = 0, or P known in advance) would catch just as
//! well.
//!
//! How the hook keeps z consistent: after the flip of OT k's choice the
//! client's row is the key of the bit its choices now form, y', while it
//! still adds y e_k for the bit y it believes; z = T - sum sigma, so the
//! consistent z is z - (y' - y) e_k mod P, for every flipped k (e_k read from
//! the server's corrections). The positive control
//! `undoing_a_changed_view_through_the_choices_passes` checks that formula:
//! the client is made to decrypt Y_0 + d, and the hook turns its choices back
//! into the bits of the true Y_0 with the same correction of z: the session
//! completes with the right logits.

mod common;

use common::{Dir, Trace, drive_weakened};
use ppdnn_model::network::argmax;
use ppdnn_model::quant::QuantModel;
use ppdnn_model::testing::{random_inputs, random_quant_model};
use ppdnn_paillier::{Integer, KeyPair};
use ppdnn_protocol::private::{LeftOut, MAC_CORRECTION_BYTES};
use ppdnn_protocol::{ABORTED, ClientStep, Evaluator, Mode, Output, Packing, RoundMessage};
use std::sync::Arc;

const BITS: u32 = 512;

fn model() -> QuantModel {
    random_quant_model(common::small_cnn(), 7, &random_inputs(7, 8, 36))
}

fn evaluator(model: &QuantModel) -> Evaluator {
    Evaluator::for_mode(Arc::new(model.clone()), BITS, Packing::Packed, Mode::Private).unwrap()
}

fn image() -> Vec<u8> {
    (0..36u8).map(|i| i.wrapping_mul(37)).collect()
}

fn flip_bit(bytes: &mut [u8], k: usize) {
    bytes[k / 8] ^= 1 << (k % 8);
}

fn residue(y: Integer, n: &Integer) -> Integer {
    let y = y % n;
    if y < 0 { y + n } else { y }
}

/// From the true plaintexts Y, the Y' a cheater's choices form.
type Form<'a> = &'a dyn Fn(&[Integer]) -> Vec<Integer>;

/// The deviation: `view` adds d to ciphertext c as the client receives it
/// (the client then decrypts and believes Y_c + d mod n); `form` gives,
/// from the true Y (the server's), the Y'_c the choices are made to form.
struct Cheat<'a> {
    view: Vec<(usize, Integer)>,
    form: Form<'a>,
    /// Whether z is corrected to match the choices (false: the client's
    /// own z, as a hook that only flips choice bits leaves it).
    correct_z: bool,
}

/// Runs a session whose client cheats on layer `l`'s OT choices as `cheat`
/// says, with z kept consistent with its choices. Returns the trace and the
/// number of flipped choices.
fn consistent_cheat(
    ev: &Evaluator,
    pair: &KeyPair,
    output: Output,
    l: usize,
    left_out: &[LeftOut],
    cheat: &Cheat<'_>,
) -> (Trace, usize) {
    let pk = pair.public();
    let n = pk.n().clone();
    let bits = BITS as usize;
    let outputs = ev.plan().layers[l].output_ciphertexts;
    let (choice_round, p_round) = (3 + 2 * l, 4 + 2 * l);
    let mut truth: Vec<Integer> = Vec::new();
    let mut believed: Vec<Integer> = Vec::new();
    // (OT index within the layer, y' - y)
    let mut flips: Vec<(usize, i8)> = Vec::new();
    let mut p = 0u64;
    let mut e: Vec<u64> = Vec::new();
    let t = drive_weakened(ev, pair, &image(), output, left_out, |dir, m| {
        if dir == Dir::ToClient && m.round == choice_round {
            let count = m.data.len() / pk.ciphertext_bytes();
            let mut cts = m.ciphertexts_with_material(pk, m.round, count, m.material.len()).unwrap();
            truth = cts[..outputs].iter().map(|c| residue(pair.private.decrypt(c), &n)).collect();
            believed = truth.clone();
            for (c, d) in &cheat.view {
                let centred = if *d > Integer::from(&n >> 1u32) { Integer::from(d - &n) } else { d.clone() };
                cts[*c] = pk.add_plain(&cts[*c], &centred).unwrap();
                believed[*c] = residue(Integer::from(&truth[*c] + d), &n);
            }
            let material = std::mem::take(&mut m.material);
            *m = RoundMessage::from_ciphertexts(pk, m.round, &cts);
            m.material = material;
        }
        if dir == Dir::ToServer && m.round == choice_round {
            let target = (cheat.form)(&truth);
            for c in 0..outputs {
                assert!(target[c] >= 0 && target[c].significant_bits() <= BITS, "Y'_{c} has |n| bits");
                for j in 0..BITS {
                    let (y, y2) = (believed[c].get_bit(j), target[c].get_bit(j));
                    if y != y2 {
                        let k = c * bits + j as usize;
                        flip_bit(&mut m.material, k);
                        flips.push((k, i8::from(y2) - i8::from(y)));
                    }
                }
            }
        }
        if dir == Dir::ToClient && m.round == p_round {
            p = u64::from_le_bytes(m.material[..8].try_into().unwrap());
            e = flips
                .iter()
                .map(|&(k, _)| {
                    let at = 8 + MAC_CORRECTION_BYTES * k;
                    let mut b = [0u8; 8];
                    b[..MAC_CORRECTION_BYTES].copy_from_slice(&m.material[at..at + MAC_CORRECTION_BYTES]);
                    u64::from_le_bytes(b)
                })
                .collect();
        }
        if dir == Dir::ToServer && m.round == p_round && cheat.correct_z {
            let pm = p as u128;
            for (&(k, sign), &ek) in flips.iter().zip(&e) {
                let g = (k / bits) / 64;
                let z = u64::from_le_bytes(m.material[8 * g..8 * g + 8].try_into().unwrap()) as u128;
                // z - (y' - y) e_k mod P
                let z2 = if sign > 0 { (z + pm - ek as u128) % pm } else { (z + ek as u128) % pm };
                m.material[8 * g..8 * g + 8].copy_from_slice(&(z2 as u64).to_le_bytes());
            }
        }
    });
    (t, flips.len())
}

fn aborted_at_verdict(t: &Trace) -> bool {
    t.refused == Some((6, ABORTED.to_string())) && t.outcome.is_none()
}

/// Positive control of the z correction: the client is made to believe
/// Y_0 + d (several d, low and high bits), and the hook turns its choices
/// back into the bits of the true Y_0 with the correction: the server sees
/// an honest client, the session completes with the plaintext model's
/// logits. (Were the correction wrong, z would be off and it would abort.)
#[test]
fn undoing_a_changed_view_through_the_choices_passes() {
    let model = model();
    let ev = evaluator(&model);
    let pair = common::key(BITS);
    let want = model.logits(&image()).unwrap();
    let pl = &ev.plan().layers[0];
    let sb = pl.slots as u32 * pl.slot_bits;
    let same = |ys: &[Integer]| ys.to_vec();
    for d in [Integer::from(1), Integer::from(12345) << (sb - 20), Integer::from(1) << (BITS - 3)] {
        let cheat = Cheat { view: vec![(0, d.clone()), (1, d.clone())], form: &same, correct_z: true };
        let (t, flips) = consistent_cheat(&ev, pair, Output::Logits, 0, &[], &cheat);
        assert!(flips > 0, "d = {d}: some choices were flipped back");
        assert_eq!(t.outcome, Some(ClientStep::Done(want.clone())), "d = {d}: {t:?}");
    }
}

/// The attack: choices that form Y'_c != Y_c with a z consistent with them.
/// Each deviation aborts at the verdict; the controls (the MAC left out of
/// the server's verdict, or checked with every key alpha_c = 0) complete,
/// so the MAC's hidden keys are what catch it.
#[test]
fn a_mac_consistent_with_deviated_choices_still_aborts() {
    let model = model();
    let ev = evaluator(&model);
    let pair = common::key(BITS);
    let n = pair.public().n().clone();
    let pl = ev.plan().layers[0].clone();
    let (b, sb) = (pl.slot_bits, pl.slots as u32 * pl.slot_bits);
    assert!(pl.output_ciphertexts >= 2);
    // An earlier session's P.
    let mut old_p = 0u64;
    drive_weakened(&ev, pair, &image(), Output::Logits, &[], |dir, m| {
        if dir == Dir::ToClient && m.round == 4 {
            old_p = u64::from_le_bytes(m.material[..8].try_into().unwrap());
        }
    });
    // A product of 9 distinct primes of [2^55, 2^56) (504 bits): the most
    // P-divisible deviation below 2^512.
    let mut product = Integer::from(1);
    let mut q = (Integer::from(1) << 55u32) + Integer::from(0x1234_5678_9abc_u64);
    for _ in 0..9 {
        q = q.next_prime();
        product *= &q;
    }
    let flip = |c: usize, j: u32| {
        move |ys: &[Integer]| {
            let mut v = ys.to_vec();
            let bit = v[c].get_bit(j);
            v[c].set_bit(j, !bit);
            v
        }
    };
    let n2 = n.clone();
    let plus_n = move |ys: &[Integer]| {
        // Y_c + n for the first c where it stays below 2^|n|, else Y_0 ^ top bit.
        let mut v = ys.to_vec();
        let top = Integer::from(1) << BITS;
        match (0..v.len()).find(|&c| Integer::from(&v[c] + &n2) < top) {
            Some(c) => v[c] += &n2,
            None => {
                let bit = v[0].get_bit(BITS - 1);
                v[0].set_bit(BITS - 1, !bit);
            }
        }
        v
    };
    let compensate = |ys: &[Integer]| {
        let j = (0..sb).find(|&j| !ys[0].get_bit(j) && ys[1].get_bit(j)).unwrap();
        let mut v = ys.to_vec();
        v[0].set_bit(j, true);
        v[1].set_bit(j, false);
        v
    };
    let plus_old_p = |ys: &[Integer]| {
        let mut v = ys.to_vec();
        v[0] += old_p;
        v
    };
    let prod = product.clone();
    let plus_product = move |ys: &[Integer]| {
        let mut v = ys.to_vec();
        if v[0] > prod {
            v[0] -= &prod
        } else {
            v[0] += &prod
        }
        v
    };
    let f0 = flip(0, 0);
    let f1 = flip(0, b - 1);
    let f2 = flip(0, sb - 1);
    let f3 = flip(0, BITS - 1);
    let cases: Vec<(&str, Form<'_>)> = vec![
        ("Y_0 xor 1", &f0),
        ("Y_0 xor 2^(B-1)", &f1),
        ("Y_0 xor 2^(SB-1)", &f2),
        ("Y_0 xor 2^(|n|-1)", &f3),
        ("Y_c + n", &plus_n),
        ("+2^j on Y_0, -2^j on Y_1", &compensate),
        ("Y_0 + an earlier P", &plus_old_p),
        ("Y_0 +- a product of 9 primes of the P range", &plus_product),
    ];
    for (what, form) in cases {
        for left_out in [&[][..], &[LeftOut::Mac], &[LeftOut::MacKey]] {
            let cheat = Cheat { view: Vec::new(), form, correct_z: true };
            let (t, flips) = consistent_cheat(&ev, pair, Output::Logits, 0, left_out, &cheat);
            assert!(flips > 0, "{what}: nothing flipped");
            if left_out.is_empty() {
                assert!(aborted_at_verdict(&t), "{what}: {t:?}");
            } else {
                assert!(matches!(t.outcome, Some(ClientStep::Done(_))), "control, {what}: {t:?}");
            }
        }
    }
    // The same through the client's own code: it is made to decrypt Y_0 +
    // 2^j and makes its choices and MAC honestly for that (no correction).
    for j in [0, sb - 1] {
        let same = |ys: &[Integer]| {
            let mut v = ys.to_vec();
            v[0] = residue(&v[0] + (Integer::from(1) << j), &n);
            v
        };
        for left_out in [&[][..], &[LeftOut::Mac]] {
            let cheat = Cheat { view: vec![(0, Integer::from(1) << j)], form: &same, correct_z: true };
            let (t, flips) = consistent_cheat(&ev, pair, Output::Logits, 0, left_out, &cheat);
            assert_eq!(flips, 0, "the client's own choices");
            if left_out.is_empty() {
                assert!(aborted_at_verdict(&t), "view Y_0 + 2^{j}: {t:?}");
            } else {
                assert!(matches!(t.outcome, Some(ClientStep::Done(_))), "control, view + 2^{j}: {t:?}");
            }
        }
    }
}

/// Label mode: the argmax's inputs (layer 1) with a consistent z; the
/// control without the MAC completes (with whatever label the changed
/// input gives).
#[test]
fn a_consistent_mac_on_the_argmax_inputs_still_aborts() {
    let model = model();
    let ev = evaluator(&model);
    let pair = common::key(BITS);
    let pl = ev.plan().layers[1].clone();
    let sb = pl.slots as u32 * pl.slot_bits;
    for j in [0, sb - 1, BITS - 1] {
        let form = move |ys: &[Integer]| {
            let mut v = ys.to_vec();
            let bit = v[0].get_bit(j);
            v[0].set_bit(j, !bit);
            v
        };
        for left_out in [&[][..], &[LeftOut::Mac], &[LeftOut::MacKey]] {
            let cheat = Cheat { view: Vec::new(), form: &form, correct_z: true };
            let (t, _) = consistent_cheat(&ev, pair, Output::Label, 1, left_out, &cheat);
            if left_out.is_empty() {
                assert!(aborted_at_verdict(&t), "argmax bit {j}: {t:?}");
            } else {
                assert!(matches!(t.outcome, Some(ClientStep::Label(_))), "control, argmax bit {j}: {t:?}");
            }
        }
    }
    // And the formula's control in label mode: view changed, choices undone.
    let same = |ys: &[Integer]| ys.to_vec();
    let cheat = Cheat { view: vec![(0, Integer::from(1) << (sb - 1))], form: &same, correct_z: true };
    let (t, flips) = consistent_cheat(&ev, pair, Output::Label, 1, &[], &cheat);
    assert!(flips > 0);
    let want = argmax(&model.logits(&image()).unwrap());
    assert_eq!(t.outcome, Some(ClientStep::Label(want)), "{t:?}");
}

/// What the abort of cheating_client.rs's choice-flipping tests rests on:
/// a hook that flips choices and leaves z alone sends a z off by H'(K^0) -
/// H'(K^1) of each flipped OT, besides alpha_c delta_c. Here the deviation
/// is zero (the client is made to believe Y_0 + d, and its choices are
/// turned back into the true bits of Y_0, so the server sees honest
/// choices and alpha never enters), and z is left uncorrected: the session
/// still aborts. So those tests would abort the same way against a MAC
/// without a key (alpha = 0) or with a P known in advance: they do not
/// exercise what the claim rests on; the consistent cheater above does.
#[test]
fn an_uncorrected_z_aborts_even_when_the_choices_are_honest() {
    let model = model();
    let ev = evaluator(&model);
    let pair = common::key(BITS);
    let same = |ys: &[Integer]| ys.to_vec();
    for d in [Integer::from(1), Integer::from(1) << (BITS - 3)] {
        let cheat = Cheat { view: vec![(0, d.clone())], form: &same, correct_z: false };
        let (t, flips) = consistent_cheat(&ev, pair, Output::Logits, 0, &[], &cheat);
        assert!(flips > 0);
        assert!(aborted_at_verdict(&t), "d = {d}: {t:?}");
    }
}
