//! The model-private between-layer circuit computes exactly the integer
//! reference on masked, packed accumulators: plain and garbled evaluation.

use ppdnn_gc::activation::{ActivationSpec, OUTPUT_BITS, activation_circuit};
use ppdnn_gc::{Block, Evaluator, Garbler};
use proptest::prelude::*;

const KAPPA: u32 = 40;

/// The reference: ReLU, sum (or maximum), then clamp((y * M + 2^(k-1)) >> k, 0, 255).
fn reference(spec: &ActivationSpec, acc: &[i64]) -> Vec<u64> {
    spec.groups
        .iter()
        .map(|g| {
            let terms = g.iter().map(|&a| if spec.relu { acc[a].max(0) } else { acc[a] } as i128);
            let y: i128 = if spec.max_pool { terms.max().unwrap() } else { terms.sum() };
            if y < 0 {
                return 0;
            }
            let v = (y * spec.multiplier as i128 + (1i128 << (spec.shift - 1))) >> spec.shift;
            v.clamp(0, 255) as u64
        })
        .collect()
}

fn bits(v: u128, n: u32) -> impl Iterator<Item = bool> {
    (0..n).map(move |i| (v >> i) & 1 == 1)
}

/// Runs the masked protocol step for one spec; returns (plain, garbled) outputs as numbers.
fn run(spec: &ActivationSpec, acc: &[i64], r: &[u64], t: &[u64]) -> (Vec<u64>, Vec<u64>) {
    let bb = spec.slot_bits;
    let h = spec.folded_rounding().unwrap_or(0) as i128;
    let mut slot_values = vec![0i64; spec.ciphertexts * spec.slots];
    for (a, &slot) in spec.accumulator_slots.iter().enumerate() {
        slot_values[slot] = acc[a];
    }
    // The client's digits of Y = M + O + R.
    let mut garbler = Vec::new();
    let mut evaluator = Vec::new();
    for ct in 0..spec.ciphertexts {
        let mut y: i128 = 0;
        for i in 0..spec.slots {
            let k = ct * spec.slots + i;
            y += (slot_values[k] as i128 + (1i128 << (bb - 1)) + h + r[k] as i128) << (bb as usize * i);
        }
        y += (t[ct] as i128) << (bb as usize * spec.slots);
        assert!(y >= 0);
        for i in 0..spec.slots {
            let d = ((y as u128) >> (bb as usize * i)) & ((1u128 << bb) - 1);
            evaluator.extend(bits(d, bb));
            garbler.extend(bits(r[ct * spec.slots + i] as u128, bb));
        }
    }
    let c = activation_circuit(spec);
    let to_nums = |out: &[bool]| -> Vec<u64> {
        out.chunks(OUTPUT_BITS).map(|w| w.iter().enumerate().map(|(i, &b)| (b as u64) << i).sum()).collect()
    };
    let plain = to_nums(&c.eval_plain(&garbler, &evaluator).unwrap());
    let mut g = Garbler::new().unwrap().salted(0x5eed);
    let zero = g.fresh_labels(c.evaluator_inputs());
    let (garbled, _) = g.garble(&c, &garbler, &zero).unwrap();
    let labels: Vec<Block> = zero.iter().zip(&evaluator).map(|(&l, &b)| l ^ g.delta().select(b)).collect();
    let out = Evaluator::new().salted(0x5eed).evaluate(&c, &garbled, &labels).unwrap();
    let garbled_out = to_nums(&Evaluator::decode(&c, &out, &garbled.decode).unwrap());
    (plain, garbled_out)
}

fn spec_strategy() -> impl Strategy<Value = (ActivationSpec, Vec<i64>, Vec<u64>, Vec<u64>)> {
    (
        10u32..20,
        1usize..5,
        1usize..3,
        0u8..3,
        any::<bool>(),
        // Any multiplier, or a power of two (a power-of-two requantization: no multiplication).
        prop_oneof![1u64..(1 << 32), (0u32..32).prop_map(|j| 1u64 << j)],
        1u32..40,
        any::<u64>(),
    )
        .prop_map(|(bb, slots, cts, pool, relu, multiplier, shift, seed)| {
            let mut rng = seed;
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let total = slots * cts;
            // Accumulators in most slots, the rest padding (value 0, still in the chain).
            let accumulator_slots: Vec<usize> = (0..total).filter(|&k| k == 0 || next() % 4 != 0).collect();
            let n = accumulator_slots.len();
            let groups: Vec<Vec<usize>> = if pool == 1 {
                (0..n.div_ceil(4)).map(|g| (4 * g..(4 * g + 4).min(n)).collect()).collect()
            } else if pool == 2 {
                // Overlapping windows of three, stride two, as a 3x3/2 max pool has.
                (0..n.div_ceil(2)).map(|g| (2 * g..(2 * g + 3).min(n)).collect()).collect()
            } else {
                (0..n).map(|a| vec![a]).collect()
            };
            let spec = ActivationSpec {
                slot_bits: bb,
                slots,
                ciphertexts: cts,
                accumulator_slots,
                groups,
                relu,
                max_pool: pool == 2,
                multiplier,
                shift,
            };
            // |v| + h < 2^(B-1), h the rounding constant in the offset (if
            // folded): the ends of the range, 0, and random values.
            let bound = (1i64 << (bb - 1)) - 1 - spec.folded_rounding().unwrap_or(0) as i64;
            let acc: Vec<i64> = (0..n)
                .map(|_| match next() % 5 {
                    0 => bound,
                    1 => -bound,
                    2 => 0,
                    _ => (next() % (2 * bound as u64 + 1)) as i64 - bound,
                })
                .collect();
            let r: Vec<u64> = (0..total).map(|_| next() & ((1 << bb) - 1)).collect();
            let t: Vec<u64> = (0..cts).map(|_| next() & ((1 << KAPPA) - 1)).collect();
            (spec, acc, r, t)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn masked_activation_equals_the_reference((spec, acc, r, t) in spec_strategy()) {
        let (plain, garbled) = run(&spec, &acc, &r, &t);
        let want = reference(&spec, &acc);
        prop_assert_eq!(&plain, &want);
        prop_assert_eq!(&garbled, &want);
    }
}

#[test]
fn every_carry_propagates_through_the_borrow_chain() {
    // Slot values and masks chosen so that every slot carries into the next:
    // v' + r = 2^B - 1 + 1 in each slot.
    let bb = 12u32;
    let spec = ActivationSpec {
        slot_bits: bb,
        slots: 4,
        ciphertexts: 1,
        accumulator_slots: vec![0, 1, 2, 3],
        groups: vec![vec![0], vec![1], vec![2], vec![3]],
        relu: true,
        max_pool: false,
        multiplier: 3,
        shift: 2,
    };
    let acc = vec![5i64, -7, 100, 2047];
    // r_i = 2^B - v'_i makes every slot sum to exactly 2^B.
    let r: Vec<u64> = acc.iter().map(|&v| (1u64 << bb) - (v + (1 << (bb - 1))) as u64).collect();
    let (plain, garbled) = run(&spec, &acc, &r, &[123]);
    let want = reference(&spec, &acc);
    assert_eq!(plain, want);
    assert_eq!(garbled, want);
}

#[test]
fn the_and_count_of_a_lenet_conv1_sized_circuit() {
    // For the record: 20-bit slots, 51 per ciphertext, 2x2 pooling, a 31-bit multiplier.
    let spec = ActivationSpec {
        slot_bits: 20,
        slots: 51,
        ciphertexts: 4,
        accumulator_slots: (0..200).collect(),
        groups: (0..50).map(|g| (4 * g..4 * g + 4).collect()).collect(),
        relu: true,
        max_pool: false,
        multiplier: 1_518_500_249,
        shift: 40,
    };
    let c = activation_circuit(&spec);
    let per_output = c.and_gates() as f64 / 50.0;
    println!("{} AND gates, {:.0} per pooled output", c.and_gates(), per_output);
    assert!(per_output < 2000.0, "{per_output} AND gates per output");
}
