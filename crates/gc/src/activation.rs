//! The between-layer circuit of the model-private mode: unmask packed
//! accumulators with a borrow chain through every slot, ReLU, pooling,
//! requantization to 0..255.
//!
//! The garbler (the server) holds the slot masks r_i as its input bits; the
//! evaluator (the client) holds, as its input labels, the digits d_i it
//! decrypted from Y = M + O + R, with O = sum_i 2^(B-1) 2^(B i) and R =
//! sum_i r_i 2^(B i) + 2^(S B) t. Slot i then holds v'_i = d_i - r_i - c_i
//! mod 2^B with the borrow c_(i+1) passed on (c_0 = 0), and v_i = v'_i -
//! 2^(B-1) in two's complement is v'_i with its top bit flipped. Every slot
//! of a ciphertext is in the chain, padding included. The outputs are the
//! 8 bits of each q, as labels only: the evaluator learns no output value
//! (the protocol turns the labels into masked integers, never decodes them).
//!
//! The arithmetic is exactly the integer reference's: y = max(v, 0) (if
//! `relu`), summed over each pooling group, then q = clamp((y * M +
//! 2^(k-1)) >> k, 0, 255), a negative sum giving 0.
//!
//! Without a sum (one accumulator per output, or max pooling) the ReLU
//! moves into the final clamp: max(floor(z), 0) = floor(max(z, 0)) for
//! the monotone maps involved, so q = clamp((max(v) * M + 2^(k-1)) >> k,
//! 0, 255) on the signed maximum, the clamp's test for a negative value
//! costing one gate. With a power-of-two multiplier 2^j the rounding
//! constant h = 2^(k-j-1) goes further, into the server's slot offset (see
//! [`folded_rounding`]): the digits then hold v + h, the shift by k - j
//! is free, and max pooling compares the values' clamp keys (their low
//! eight magnitude bits, whether they exceed 255, and their sign), which
//! are shorter than the bits above the shift.

use crate::circuit::{Builder, Circuit, Wire};
use crate::gadgets;

/// What one between-layer circuit computes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationSpec {
    /// Slot width B, in bits (2 to 63).
    pub slot_bits: u32,
    /// Slots per ciphertext S: all of them go through the borrow chain.
    pub slots: usize,
    /// Ciphertexts.
    pub ciphertexts: usize,
    /// For each accumulator, its slot: ciphertext * S + slot.
    pub accumulator_slots: Vec<usize>,
    /// The accumulators summed into each output (one each without pooling,
    /// four for 2x2 pooling), as indices into `accumulator_slots`.
    pub groups: Vec<Vec<usize>>,
    /// ReLU on each accumulator before the sum.
    pub relu: bool,
    /// Each group gives its largest accumulator (max pooling) instead of
    /// their sum (average pooling, or a single accumulator).
    pub max_pool: bool,
    /// Requantization multiplier M (positive, below 2^40).
    pub multiplier: u64,
    /// Requantization shift k (1 to 62).
    pub shift: u32,
}

/// Bits of each output q.
pub const OUTPUT_BITS: usize = 8;

impl ActivationSpec {
    /// Whether an output sums several accumulators (average pooling).
    pub fn averages(&self) -> bool {
        !self.max_pool && self.groups.iter().any(|g| g.len() > 1)
    }

    /// The rounding constant in the server's slot offset, if this circuit
    /// has it folded there ([`folded_rounding`]).
    pub fn folded_rounding(&self) -> Option<u64> {
        folded_rounding(self.multiplier, self.shift, self.slot_bits, self.averages())
    }
}

/// The rounding constant h that the server adds to every slot's offset
/// (2^(B-1) + h instead of 2^(B-1)) for a circuit whose multiplier is a
/// power of two 2^j: then (y 2^j + 2^(k-1)) >> k = (y + h) >> (k - j) with
/// h = 2^(k-j-1) (h = 0, and a left shift by j - k, when j >= k), so the
/// circuit neither adds nor multiplies. None (the circuit rounds itself)
/// for any other multiplier, for average pooling (the ReLU must come before
/// the sum, the rounding after it), and for a shift k - j of B bits or more
/// (every output is 0 then). Whoever makes the plan keeps |v| + h <
/// 2^(B-1) for every accumulator v, so that v + 2^(B-1) + h fits the slot.
pub fn folded_rounding(multiplier: u64, shift: u32, slot_bits: u32, averages: bool) -> Option<u64> {
    if averages || !multiplier.is_power_of_two() {
        return None;
    }
    match shift.checked_sub(multiplier.trailing_zeros()) {
        None | Some(0) => Some(0),
        Some(k) if k < slot_bits && k <= 63 => Some(1u64 << (k - 1)),
        Some(_) => None,
    }
}

/// Sign-extends `x` to `width` bits.
fn sign_extend(x: &[Wire], width: usize) -> Vec<Wire> {
    let mut v = x.to_vec();
    let top = *x.last().expect("a value has at least one bit");
    v.resize(width, top);
    v
}

/// Zero-extends `x` to `width` bits.
fn zero_extend(b: &mut Builder, x: &[Wire], width: usize) -> Vec<Wire> {
    let mut v = x.to_vec();
    while v.len() < width {
        v.push(b.constant(false));
    }
    v
}

/// max(x, 0) for a two's-complement x: every bit ANDed with NOT sign.
fn relu(b: &mut Builder, x: &[Wire]) -> Vec<Wire> {
    let sign = *x.last().expect("a value has at least one bit");
    let keep = b.not(sign);
    x.iter().map(|&w| b.and(w, keep)).collect()
}

/// max(x, 0) for a two's-complement x, without its sign bit (which is 0
/// for every result): the magnitude bits ANDed with NOT sign.
fn relu_magnitude(b: &mut Builder, x: &[Wire]) -> Vec<Wire> {
    let (&sign, magnitude) = x.split_last().expect("a value has at least one bit");
    let keep = b.not(sign);
    magnitude.iter().map(|&w| b.and(w, keep)).collect()
}

/// The non-adjacent form of m: digits in {-1, 0, 1}, least significant first.
fn naf(mut m: u64) -> Vec<i8> {
    let mut digits = Vec::new();
    while m > 0 {
        if m & 1 == 1 {
            let d: i8 = if m & 3 == 3 { -1 } else { 1 };
            digits.push(d);
            m = if d == 1 { m - 1 } else { m + 1 };
        } else {
            digits.push(0);
        }
        m >>= 1;
    }
    digits
}

/// y * m for a non-negative y and a public m, as a sum of shifted copies of
/// y with signed digits (an adder or subtractor per non-zero NAF digit), in
/// `width` bits.
fn times_constant(b: &mut Builder, y: &[Wire], m: u64, width: usize) -> Vec<Wire> {
    if m.is_power_of_two() {
        // A shifted copy: no gate at all (a power-of-two requantization).
        let j = m.trailing_zeros() as usize;
        let mut shifted = gadgets::constant(b, 0, j.min(width));
        shifted.extend(y.iter().copied().take(width.saturating_sub(j)));
        return zero_extend(b, &shifted, width);
    }
    let mut acc = gadgets::constant(b, 0, width);
    for (j, &d) in naf(m).iter().enumerate() {
        if d == 0 {
            continue;
        }
        let mut shifted = gadgets::constant(b, 0, j.min(width));
        shifted.extend(y.iter().copied().take(width.saturating_sub(j)));
        let shifted = zero_extend(b, &shifted, width);
        acc = if d > 0 { gadgets::add(b, &acc, &shifted).0 } else { gadgets::sub(b, &acc, &shifted).0 };
    }
    acc
}

/// y * m mod 2^width for a two's-complement y (sign-extended) and a
/// public m: the signed counterpart of [`times_constant`].
fn times_constant_signed(b: &mut Builder, y: &[Wire], m: u64, width: usize) -> Vec<Wire> {
    let mut acc = gadgets::constant(b, 0, width);
    for (j, &d) in naf(m).iter().enumerate() {
        if d == 0 || j >= width {
            continue;
        }
        let mut shifted = gadgets::constant(b, 0, j);
        shifted.extend(sign_extend(y, width - j));
        acc = if d > 0 { gadgets::add(b, &acc, &shifted).0 } else { gadgets::sub(b, &acc, &shifted).0 };
    }
    acc
}

/// clamp(t, 0, 255) of a two's-complement t (at least one bit, its sign
/// last): 0 when negative, 255 when above 255, else t's low bits, one AND
/// per output bit (the ReLU included) after the OR tree of [`clamp_key`].
fn clamp_signed(b: &mut Builder, t: &[Wire]) -> Vec<Wire> {
    let magnitude_bits = t.len() - 1;
    let key = clamp_key(b, t);
    clamp_from_key(b, &key, magnitude_bits)
}

/// The clamp key of a two's-complement t (its sign last): t's magnitude
/// bits below the eighth, then `over` = the OR of its magnitude bits from
/// the eighth up (only if t has such bits), then NOT sign, least
/// significant first. clamp(t, 0, 255) is a function of the key, and the
/// unsigned order of keys never disagrees with the order of the clamped
/// values: negative values (NOT sign = 0) come first, values above 255
/// (`over`) last, the others by their low bits. So the largest clamped
/// value of a window is the clamped value of the largest key, and a
/// maximum compares and moves keys rather than whole values.
fn clamp_key(b: &mut Builder, t: &[Wire]) -> Vec<Wire> {
    let (&sign, magnitude) = t.split_last().expect("a value has at least one bit");
    let mut key: Vec<Wire> = magnitude.iter().take(OUTPUT_BITS).copied().collect();
    if let Some(high) = magnitude.get(OUTPUT_BITS..).filter(|h| !h.is_empty()) {
        key.push(gadgets::or_tree(b, high));
    }
    key.push(b.not(sign));
    key
}

/// clamp(t, 0, 255) from t's [`clamp_key`] (t with `magnitude_bits` bits
/// below its sign). With s the sign and u = s OR over, q_i = t_i XOR (u AND
/// (t_i XOR NOT s)): one AND per output bit; above t's width its bits are
/// the sign's, so q_i = s XOR u.
fn clamp_from_key(b: &mut Builder, key: &[Wire], magnitude_bits: usize) -> Vec<Wire> {
    let low = magnitude_bits.min(OUTPUT_BITS);
    let not_sign = *key.last().expect("a key ends with NOT sign");
    let over = if magnitude_bits > OUTPUT_BITS { key[low] } else { b.constant(false) };
    let sign = b.not(not_sign);
    let u = b.or(sign, over);
    (0..OUTPUT_BITS)
        .map(|i| {
            if i < low {
                let ti = key[i];
                let d = b.xor(ti, not_sign);
                let pick = b.and(u, d);
                b.xor(ti, pick)
            } else {
                b.xor(sign, u)
            }
        })
        .collect()
}

/// The largest of a group's values by their unsigned order (offset
/// binary), one comparison and one multiplexer per further value.
fn unsigned_max(b: &mut Builder, values: Vec<Vec<Wire>>) -> Vec<Wire> {
    let mut values = values.into_iter();
    let mut best = values.next().expect("a pooling window holds at least one value");
    for v in values {
        let greater = gadgets::less_than(b, &best, &v);
        best = gadgets::mux(b, greater, &v, &best);
    }
    best
}

/// One output without a sum, the rounding constant folded into the
/// offset: q = clamp(floor((max v + h) / 2^(k-j))) (or max v * 2^(j-k)),
/// from the offset-binary bits above the shift (whose top bit, flipped,
/// is the sign of t). With max pooling the maximum is taken on the
/// values' clamp keys ([`clamp_key`]), which are shorter than the values.
fn folded_output(b: &mut Builder, spec: &ActivationSpec, offset: &[Vec<Wire>], group: &[usize]) -> Vec<Wire> {
    let j = spec.multiplier.trailing_zeros();
    let drop = spec.shift.saturating_sub(j) as usize; // below B: see folded_rounding
    let lift = j.saturating_sub(spec.shift) as usize;
    // t: the lift's zeros, then the bits above the shift, the top one its sign.
    let magnitude_bits = lift + spec.slot_bits as usize - drop - 1;
    let keys = group
        .iter()
        .map(|&a| {
            let high = &offset[spec.accumulator_slots[a]][drop..];
            let (&top, rest) = high.split_last().expect("the shift leaves at least one bit");
            let mut t = gadgets::constant(b, 0, lift);
            t.extend_from_slice(rest);
            t.push(b.not(top));
            clamp_key(b, &t)
        })
        .collect();
    let best = unsigned_max(b, keys);
    clamp_from_key(b, &best, magnitude_bits)
}

/// One output without a sum, rounded in the circuit: t = (max v * M +
/// 2^(k-1)) >> k on the signed maximum, then clamped.
fn rounded_output(
    b: &mut Builder,
    spec: &ActivationSpec,
    offset: &[Vec<Wire>],
    group: &[usize],
) -> Vec<Wire> {
    let bb = spec.slot_bits as usize;
    let values = group.iter().map(|&a| offset[spec.accumulator_slots[a]].clone()).collect();
    let mut best = unsigned_max(b, values);
    best[bb - 1] = b.not(best[bb - 1]);
    // |v M| < 2^(B-1+bits(M)), plus 2^(k-1): a sign bit more than either.
    let m_bits = 64 - spec.multiplier.leading_zeros() as usize;
    let width = (bb + m_bits).max(spec.shift as usize + 1) + 1;
    let p = times_constant_signed(b, &best, spec.multiplier, width);
    let half = gadgets::constant(b, 1u64 << (spec.shift - 1), width);
    let rounded = gadgets::add(b, &p, &half).0;
    clamp_signed(b, &rounded[spec.shift as usize..])
}

/// Builds the circuit for `spec`. Garbler inputs: every ciphertext's S masks
/// r_i of B bits (slot 0 first, bit 0 first). Evaluator inputs: every
/// ciphertext's S digits of B bits, in the same order. Outputs: each
/// group's q in [`OUTPUT_BITS`] bits, least significant first.
pub fn activation_circuit(spec: &ActivationSpec) -> Circuit {
    let bb = spec.slot_bits as usize;
    let mut b = Builder::new();
    let rs: Vec<Vec<Wire>> = (0..spec.ciphertexts * spec.slots).map(|_| b.garbler_inputs(bb)).collect();
    let digits: Vec<Vec<Wire>> = (0..spec.ciphertexts * spec.slots).map(|_| b.evaluator_inputs(bb)).collect();
    // The offset-binary v' = v + 2^(B-1) (+ h when folded), whose unsigned
    // order is the signed order of the v, and, for sums, v itself: v' with
    // its top bit flipped (free).
    let offset: Vec<Vec<Wire>> = unmask(&mut b, &digits, &rs, spec.slots);
    let values: Vec<Vec<Wire>> = if spec.averages() {
        offset
            .iter()
            .map(|v| {
                let mut v = v.clone();
                let top = v[bb - 1];
                v[bb - 1] = b.not(top);
                v
            })
            .collect()
    } else {
        Vec::new()
    };
    let folded = spec.folded_rounding().is_some();
    for group in &spec.groups {
        let q = if folded {
            folded_output(&mut b, spec, &offset, group)
        } else if !spec.averages() {
            rounded_output(&mut b, spec, &offset, group)
        } else {
            summed_output(&mut b, spec, &values, group)
        };
        b.outputs(&q);
    }
    b.build()
}

/// One output of average pooling: ReLU on each accumulator (if `relu`),
/// their sum, then q = clamp((y * M + 2^(k-1)) >> k, 0, 255), a negative
/// sum giving 0. `values` are the signed slot values.
fn summed_output(b: &mut Builder, spec: &ActivationSpec, values: &[Vec<Wire>], group: &[usize]) -> Vec<Wire> {
    let bb = spec.slot_bits as usize;
    let largest = spec.groups.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let grow = (usize::BITS - (largest - 1).leading_zeros()) as usize; // ceil(log2(largest))
    // With ReLU every term is non-negative and fits B - 1 bits, so the sum
    // fits B - 1 + grow bits and needs no clamp at 0. Without, the terms are
    // signed B-bit values, their sum fits B + grow bits, and a negative sum
    // gives 0, as the reference's clamp does.
    let y_bits = bb - 1 + grow;
    // y * M + 2^(k-1) fits: y < 2^y_bits, M < 2^bits(M), one more for the rounding.
    let product_bits =
        (y_bits + 64 - spec.multiplier.leading_zeros() as usize + 1).max(spec.shift as usize + 1);
    let y = if spec.relu {
        let mut sum = gadgets::constant(b, 0, y_bits);
        for &a in group {
            let v = relu_magnitude(b, &values[spec.accumulator_slots[a]]);
            let v = zero_extend(b, &v, y_bits);
            sum = gadgets::add(b, &sum, &v).0;
        }
        sum
    } else {
        let signed_bits = bb + grow;
        let mut sum = gadgets::constant(b, 0, signed_bits);
        for &a in group {
            let v = sign_extend(&values[spec.accumulator_slots[a]], signed_bits);
            sum = gadgets::add(b, &sum, &v).0;
        }
        let y = relu(b, &sum);
        y[..signed_bits - 1].to_vec() // non-negative now: the sign bit is 0
    };
    let p = times_constant(b, &y, spec.multiplier, product_bits);
    let half = gadgets::constant(b, 1u64 << (spec.shift - 1), product_bits);
    let rounded = gadgets::add(b, &p, &half).0;
    let shifted = &rounded[spec.shift as usize..];
    let over = gadgets::or_tree(b, &shifted[OUTPUT_BITS.min(shifted.len())..]);
    (0..OUTPUT_BITS)
        .map(|i| match shifted.get(i) {
            Some(&w) => b.or(w, over),
            None => over,
        })
        .collect()
}

/// The borrow chains: v'_i = d_i - r_i - c_i mod 2^B for every slot
/// of every ciphertext (`slots` per ciphertext), the borrow running from
/// slot 0 up through the ciphertext's last slot. Returns the v'_i (offset
/// binary: v_i + 2^(B-1)).
fn unmask(b: &mut Builder, digits: &[Vec<Wire>], rs: &[Vec<Wire>], slots: usize) -> Vec<Vec<Wire>> {
    let mut values = Vec::with_capacity(digits.len());
    for (d, r) in digits.chunks(slots).zip(rs.chunks(slots)) {
        let mut borrow = b.constant(false);
        for (dk, rk) in d.iter().zip(r) {
            let (v, br) = gadgets::sub_with_borrow(b, dk, rk, borrow);
            borrow = br;
            values.push(v);
        }
    }
    values
}

/// The label-only output: unmask the last layer's packed logits and find
/// the index of the largest (the first one on ties, as the plaintext
/// `argmax` does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgmaxSpec {
    /// Slot width B, in bits (2 to 63).
    pub slot_bits: u32,
    /// Slots per ciphertext S: all of them go through the borrow chain.
    pub slots: usize,
    /// Ciphertexts.
    pub ciphertexts: usize,
    /// Values compared: slots 0..values of the ciphertexts in order (at
    /// least 1, at most ciphertexts * slots).
    pub values: usize,
}

/// Bits of the label the argmax circuit outputs.
pub fn label_bits(spec: &ArgmaxSpec) -> usize {
    (usize::BITS - spec.values.saturating_sub(1).leading_zeros()).max(1) as usize
}

/// Builds the argmax circuit. Garbler inputs: the masks r_i; evaluator
/// inputs: every ciphertext's S digits of B bits, as for [`activation_circuit`].
/// Outputs: the label's [`label_bits`] bits, least significant first. The
/// comparisons run on the offset-binary v'_i, whose unsigned order is the
/// signed order of the v_i.
pub fn argmax_circuit(spec: &ArgmaxSpec) -> Circuit {
    let bb = spec.slot_bits as usize;
    let mut b = Builder::new();
    let rs: Vec<Vec<Wire>> = (0..spec.ciphertexts * spec.slots).map(|_| b.garbler_inputs(bb)).collect();
    let digits: Vec<Vec<Wire>> = (0..spec.ciphertexts * spec.slots).map(|_| b.evaluator_inputs(bb)).collect();
    let values = unmask(&mut b, &digits, &rs, spec.slots);
    let bits = label_bits(spec);
    let mut best = values[0].clone();
    let mut index = gadgets::constant(&mut b, 0, bits);
    for (i, v) in values.iter().enumerate().take(spec.values).skip(1) {
        let greater = gadgets::less_than(&mut b, &best, v);
        best = gadgets::mux(&mut b, greater, v, &best);
        let here = gadgets::constant(&mut b, i as u64, bits);
        index = gadgets::mux(&mut b, greater, &here, &index);
    }
    b.outputs(&index);
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naf_digits_sum_to_the_number_and_are_non_adjacent() {
        for m in [1u64, 2, 3, 7, 11, 255, 0x5555, 1_234_567_891, (1 << 40) - 1] {
            let d = naf(m);
            let v: i128 = d.iter().enumerate().map(|(i, &x)| (x as i128) << i).sum();
            assert_eq!(v, m as i128);
            assert!(d.windows(2).all(|w| w[0] == 0 || w[1] == 0), "{m}: {d:?}");
        }
    }
}
