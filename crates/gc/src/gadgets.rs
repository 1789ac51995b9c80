//! Arithmetic gadgets over little-endian bit vectors (bit 0 first), each at
//! one AND gate per bit where arithmetic allows: ripple adders and
//! subtractors with carry and borrow, comparison, multiplexers, OR trees,
//! constants. Public constants fold away while building.

use crate::circuit::{Builder, Wire};

/// `width` wires holding the public constant `value` (two's complement, low bits).
pub fn constant(b: &mut Builder, value: u64, width: usize) -> Vec<Wire> {
    (0..width).map(|i| b.constant(i < 64 && (value >> i) & 1 == 1)).collect()
}

/// x + y + carry_in over equal widths: the sum bits and the carry out.
/// One AND per bit: c' = c XOR ((x XOR c) AND (y XOR c)).
pub fn add_with_carry(b: &mut Builder, x: &[Wire], y: &[Wire], carry_in: Wire) -> (Vec<Wire>, Wire) {
    assert_eq!(x.len(), y.len(), "add: operands of different widths");
    let mut c = carry_in;
    let mut sum = Vec::with_capacity(x.len());
    for (&xi, &yi) in x.iter().zip(y) {
        let xc = b.xor(xi, c);
        let yc = b.xor(yi, c);
        let s = b.xor(xc, yi);
        let t = b.and(xc, yc);
        c = b.xor(c, t);
        sum.push(s);
    }
    (sum, c)
}

/// x + y (mod 2^width) and the carry out.
pub fn add(b: &mut Builder, x: &[Wire], y: &[Wire]) -> (Vec<Wire>, Wire) {
    let zero = b.constant(false);
    add_with_carry(b, x, y, zero)
}

/// x - y - borrow_in over equal widths: the difference bits (mod 2^width)
/// and the borrow out. One AND per bit:
/// borrow' = majority(NOT x, y, borrow) = borrow XOR ((x XOR borrow XOR 1) AND (y XOR borrow)).
pub fn sub_with_borrow(b: &mut Builder, x: &[Wire], y: &[Wire], borrow_in: Wire) -> (Vec<Wire>, Wire) {
    assert_eq!(x.len(), y.len(), "sub: operands of different widths");
    let mut br = borrow_in;
    let mut diff = Vec::with_capacity(x.len());
    for (&xi, &yi) in x.iter().zip(y) {
        let xy = b.xor(xi, yi);
        let d = b.xor(xy, br);
        let xb = b.xor(xi, br);
        let nxb = b.not(xb);
        let yb = b.xor(yi, br);
        let t = b.and(nxb, yb);
        br = b.xor(br, t);
        diff.push(d);
    }
    (diff, br)
}

/// x - y (mod 2^width) and the borrow out (1 when x < y as unsigned numbers).
pub fn sub(b: &mut Builder, x: &[Wire], y: &[Wire]) -> (Vec<Wire>, Wire) {
    let zero = b.constant(false);
    sub_with_borrow(b, x, y, zero)
}

/// x < y as unsigned numbers (the borrow of x - y).
pub fn less_than(b: &mut Builder, x: &[Wire], y: &[Wire]) -> Wire {
    sub(b, x, y).1
}

/// sel ? x : y, bitwise: y XOR (sel AND (x XOR y)), one AND per bit.
pub fn mux(b: &mut Builder, sel: Wire, x: &[Wire], y: &[Wire]) -> Vec<Wire> {
    assert_eq!(x.len(), y.len(), "mux: operands of different widths");
    x.iter()
        .zip(y)
        .map(|(&xi, &yi)| {
            let d = b.xor(xi, yi);
            let t = b.and(sel, d);
            b.xor(yi, t)
        })
        .collect()
}

/// The OR of all bits, as a balanced tree (len - 1 ANDs); false for none.
pub fn or_tree(b: &mut Builder, bits: &[Wire]) -> Wire {
    let mut level: Vec<Wire> = bits.to_vec();
    if level.is_empty() {
        return b.constant(false);
    }
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            next.push(if pair.len() == 2 { b.or(pair[0], pair[1]) } else { pair[0] });
        }
        level = next;
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bits of v, little-endian.
    fn bits(v: u64, w: usize) -> Vec<bool> {
        (0..w).map(|i| (v >> i) & 1 == 1).collect()
    }

    fn value(bits: &[bool]) -> u64 {
        bits.iter().enumerate().map(|(i, &b)| (b as u64) << i).sum()
    }

    /// Every pair of 4-bit operands, each side as the garbler's or the evaluator's input.
    #[test]
    fn adders_subtractors_comparison_mux_over_the_whole_4_bit_domain() {
        const W: usize = 4;
        for garbler_x in [false, true] {
            let mut b = Builder::new();
            let x = if garbler_x { b.garbler_inputs(W) } else { b.evaluator_inputs(W) };
            let y = b.evaluator_inputs(W);
            let cin = b.evaluator_input();
            let sel = b.evaluator_input();
            let (s, c) = add_with_carry(&mut b, &x, &y, cin);
            let (d, br) = sub_with_borrow(&mut b, &x, &y, cin);
            let lt = less_than(&mut b, &x, &y);
            let m = mux(&mut b, sel, &x, &y);
            b.outputs(&s);
            b.output(c);
            b.outputs(&d);
            b.output(br);
            b.output(lt);
            b.outputs(&m);
            let circuit = b.build();
            for xv in 0..16u64 {
                for yv in 0..16u64 {
                    for (ci, sv) in [(false, false), (true, true), (true, false), (false, true)] {
                        let xb = bits(xv, W);
                        let mut e = bits(yv, W);
                        e.push(ci);
                        e.push(sv);
                        let (g, e) = if garbler_x {
                            (xb, e)
                        } else {
                            let mut all = xb;
                            all.extend(e);
                            (vec![], all)
                        };
                        let out = circuit.eval_plain(&g, &e).unwrap();
                        let sum = xv + yv + ci as u64;
                        assert_eq!(value(&out[0..W]), sum & 15);
                        assert_eq!(out[W], sum >= 16);
                        let diff = xv as i64 - yv as i64 - ci as i64;
                        assert_eq!(value(&out[W + 1..2 * W + 1]), (diff & 15) as u64);
                        assert_eq!(out[2 * W + 1], diff < 0, "borrow {xv}-{yv}-{ci}");
                        assert_eq!(out[2 * W + 2], xv < yv);
                        assert_eq!(value(&out[2 * W + 3..3 * W + 3]), if sv { xv } else { yv });
                    }
                }
            }
        }
    }

    #[test]
    fn or_tree_and_constants() {
        for n in 0..7usize {
            let mut b = Builder::new();
            let ins = b.evaluator_inputs(n);
            let o = or_tree(&mut b, &ins);
            b.output(o);
            let c = b.build();
            for v in 0..(1u64 << n) {
                assert_eq!(c.eval_plain(&[], &bits(v, n)).unwrap(), vec![v != 0]);
            }
        }
        let mut b = Builder::new();
        let k = constant(&mut b, 0b1011, 6);
        let x = b.evaluator_inputs(6);
        let (s, _) = add(&mut b, &x, &k);
        b.outputs(&s);
        let c = b.build();
        for v in 0..64 {
            assert_eq!(value(&c.eval_plain(&[], &bits(v, 6)).unwrap()), (v + 11) & 63);
        }
    }

    #[test]
    fn one_and_per_bit() {
        let mut b = Builder::new();
        let x = b.evaluator_inputs(32);
        let y = b.evaluator_inputs(32);
        let before = b.and_gates();
        let _ = add(&mut b, &x, &y);
        assert_eq!(b.and_gates() - before, 32);
        let before = b.and_gates();
        let _ = sub(&mut b, &x, &y);
        assert_eq!(b.and_gates() - before, 32);
    }
}
