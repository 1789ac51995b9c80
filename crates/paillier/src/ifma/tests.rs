//! The IFMA kernels against GMP, on random and edge operands, for every
//! modulus size ppdnn uses (n^2, p^2 and q^2 at 2048 and 3072-bit keys) and
//! a few odd sizes in between.

use proptest::prelude::*;
use rug::Integer;

use super::lanes::{self, LANES};
use super::*;

/// The moduli sizes: p^2 and n^2 at 2048 and 3072-bit keys, and odd ones.
const SIZES: [u32; 7] = [2048, 4096, 3072, 6144, 520, 1000, 4097];

/// The IFMA token, or a line saying that the IFMA kernels are not tested here.
pub(crate) fn ifma() -> Option<Ifma> {
    let found = Ifma::detect();
    if found.is_none() {
        eprintln!("this CPU has no AVX-512 IFMA: the IFMA kernels are NOT tested here (the GMP path is)");
    }
    found
}

/// A xorshift64 generator (test data).
pub(crate) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

/// prod_i x_i^(w_i) mod m by GMP (negative exponents by inversion): the
/// reference for the linear-layer paths.
pub(crate) fn gmp_combination(xs: &[Integer], row: &[i64], modulus: &Integer) -> Integer {
    let mut want = Integer::from(1u32);
    for (x, &w) in xs.iter().zip(row) {
        want *= x.clone().pow_mod(&Integer::from(w), modulus).expect("a unit");
        want %= modulus;
    }
    want
}

/// An odd number of exactly `bits` bits from the seed bytes.
fn odd_modulus(bits: u32, seed: &[u8]) -> Integer {
    let mut x = Integer::from_digits(seed, rug::integer::Order::Lsf);
    x.keep_bits_mut(bits);
    x.set_bit(bits - 1, true);
    x.set_bit(0, true);
    x
}

/// The seed bytes rotated left by `k`.
fn rotated(seed: &[u8], k: usize) -> Vec<u8> {
    let mut v = seed.to_vec();
    v.rotate_left(k % seed.len().max(1));
    v
}

fn below(m: &Integer, seed: &[u8]) -> Integer {
    Integer::from_digits(seed, rug::integer::Order::Lsf) % m
}

/// The edge operands: 0, 1, 2 and m - 1.
fn edges(m: &Integer) -> Vec<Integer> {
    vec![Integer::new(), Integer::from(1u32), Integer::from(2u32), Integer::from(m - 1u32)]
}

#[test]
fn radix52_round_trips() {
    for bits in [1u32, 52, 53, 64, 104, 4096, 6144] {
        let x = (Integer::from(1u32) << bits) - 1u32;
        assert_eq!(lanes::from_radix52(&lanes::to_radix52(&x, lanes::digits_for(bits))), x, "{bits} bits");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn products_squares_and_conversions_match_gmp(
        size in 0..SIZES.len(),
        seed in prop::collection::vec(any::<u8>(), 800),
        lanes_used in 1..=LANES,
    ) {
        let Some(ifma) = ifma() else { return Ok(()) };
        let bits = SIZES[size];
        // Each lane gets its own modulus of the size.
        let moduli: Vec<Integer> = (0..LANES).map(|l| odd_modulus(bits, &rotated(&seed, l * 13))).collect();
        let m = ifma.modulus(std::array::from_fn(|l| &moduli[l]), bits, false);
        let mut a: Vec<Integer> = (0..lanes_used).map(|l| below(&moduli[l], &seed[l..])).collect();
        let b: Vec<Integer> = (0..lanes_used).map(|l| below(&moduli[l], &seed[(l * 7) % 50..])).collect();
        // Edge operands in the first lanes.
        for (l, e) in edges(&moduli[0]).into_iter().enumerate().take(lanes_used) {
            if l > 0 { a[l] = Integer::from(&moduli[l] - 1u32) } else { a[l] = e }
        }
        let ar: Vec<&Integer> = a.iter().collect();
        let br: Vec<&Integer> = b.iter().collect();
        let prod = ifma.mul_lanes(&ar, &br, &m);
        let sq = ifma.sqr_lanes(&ar, &m);
        let rt = ifma.round_trip_lanes(&ar, &m);
        // Almost-reduced operands (in [m, 2m), as inside an exponentiation).
        let almost: Vec<Integer> = (0..lanes_used).map(|l| Integer::from(&a[l] + &moduli[l])).collect();
        let almost_refs: Vec<&Integer> = almost.iter().collect();
        let prod_almost = ifma.mul_lanes(&br, &almost_refs, &m);
        let sq_almost = ifma.sqr_lanes(&almost_refs, &m);
        prop_assert_eq!(prod.len(), lanes_used);
        for l in 0..lanes_used {
            prop_assert_eq!(&prod_almost[l], &prod[l], "product of an almost-reduced operand, lane {}, {} bits", l, bits);
            prop_assert_eq!(&sq_almost[l], &(Integer::from(a[l].square_ref()) % &moduli[l]), "square of an almost-reduced operand, lane {}, {} bits", l, bits);
            prop_assert_eq!(&prod[l], &(Integer::from(&a[l] * &b[l]) % &moduli[l]), "product, lane {}, {} bits", l, bits);
            prop_assert_eq!(&sq[l], &(Integer::from(a[l].square_ref()) % &moduli[l]), "square, lane {}, {} bits", l, bits);
            prop_assert_eq!(&rt[l], &a[l], "round trip, lane {}", l);
        }
    }

    #[test]
    fn exponentiation_matches_gmp(
        size in 0..SIZES.len(),
        seed in prop::collection::vec(any::<u8>(), 800),
        ebits in 1u32..300,
    ) {
        let Some(ifma) = ifma() else { return Ok(()) };
        let bits = SIZES[size];
        let moduli: Vec<Integer> = (0..LANES).map(|l| odd_modulus(bits, &rotated(&seed, l * 10))).collect();
        let m = ifma.modulus(std::array::from_fn(|l| &moduli[l]), bits, false);
        let bases: Vec<Integer> = (0..LANES).map(|l| below(&moduli[l], &seed[l * 3..])).collect();
        let mut exps: Vec<Integer> = (0..LANES).map(|l| {
            let mut e = Integer::from_digits(&seed[l * 40..l * 40 + 40], rug::integer::Order::Lsf);
            e.keep_bits_mut(ebits);
            e
        }).collect();
        // Edge exponents: 0, 1, all ones.
        exps[0] = Integer::new();
        exps[1] = Integer::from(1u32);
        exps[2] = (Integer::from(1u32) << ebits) - 1u32;
        let (got, _) = ifma.pow_lanes(&bases.iter().collect::<Vec<_>>(), &exps.iter().collect::<Vec<_>>(), ebits, &m);
        for l in 0..LANES {
            let want = bases[l].clone().pow_mod(&exps[l], &moduli[l]).unwrap();
            prop_assert_eq!(&got[l], &want, "lane {}, {} bits, exponent of {} bits", l, bits, ebits);
        }
    }
}

#[test]
fn exponentiation_by_the_modulus_minus_one_and_edge_bases() {
    let Some(ifma) = ifma() else { return };
    for bits in [2048u32, 4096, 3072, 6144] {
        let moduli: Vec<Integer> =
            (0..LANES as u32).map(|l| odd_modulus(bits, &[0x5a ^ l as u8; 800])).collect();
        let m = ifma.modulus(std::array::from_fn(|l| &moduli[l]), bits, false);
        let mut bases = edges(&moduli[0]);
        bases.extend((4..LANES).map(|l| Integer::from(&moduli[l] - 1u32)));
        let exps: Vec<Integer> = moduli.iter().map(|m| Integer::from(m - 1u32)).collect();
        let (got, _) =
            ifma.pow_lanes(&bases.iter().collect::<Vec<_>>(), &exps.iter().collect::<Vec<_>>(), bits, &m);
        for l in 0..LANES {
            let want = bases[l].clone().pow_mod(&exps[l], &moduli[l]).unwrap();
            assert_eq!(got[l], want, "lane {l}, {bits} bits");
        }
    }
}

#[test]
fn the_sequence_of_operations_does_not_depend_on_the_exponent() {
    let Some(ifma) = ifma() else { return };
    let modulus = odd_modulus(2048, &[0xa7; 300]);
    let m = ifma.modulus([&modulus; LANES], 2048, false);
    let base = Integer::from(12345u32);
    let bits = 1024;
    let all_ones = (Integer::from(1u32) << bits) - 1u32;
    let top_only = Integer::from(1u32) << (bits - 1);
    let counts: Vec<OpCount> =
        [Integer::new(), Integer::from(1u32), all_ones, top_only, Integer::from(0xdead_beefu32)]
            .iter()
            .map(|e| ifma.pow_lanes(&[&base], &[e], bits, &m).1)
            .collect();
    assert!(counts.iter().all(|c| *c == counts[0]), "operation counts differ: {counts:?}");
    // And the count is what a fixed-window exponentiation costs: 2^5 - 2
    // table products, then 5 squarings, a scan and a product per window.
    let windows = u64::from(bits.div_ceil(pow::WINDOW));
    assert_eq!(counts[0], OpCount { muls: 30 + windows - 1, sqrs: 5 * (windows - 1), scans: windows });
    let table = ifma.fixed_base_table(&base, bits, 5, &m);
    let fixed: Vec<OpCount> = [Integer::new(), Integer::from(0xffff_ffffu32)]
        .iter()
        .map(|e| ifma.fixed_base_pow(&table, &[e], &m).1)
        .collect();
    assert_eq!(fixed[0], fixed[1]);
    assert_eq!(fixed[0], OpCount { muls: windows - 1, sqrs: 0, scans: windows });
}

#[test]
fn fixed_base_powers_match_gmp() {
    let Some(ifma) = ifma() else { return };
    for bits in [4096u32, 6144] {
        let modulus = odd_modulus(bits, &[0x3c; 800]);
        let m = ifma.modulus([&modulus; LANES], bits, false);
        let base = below(&modulus, &[0x77; 700]);
        for window in [1u32, 4, 5, 6] {
            let table = ifma.fixed_base_table(&base, bits / 4, window, &m);
            let exps: Vec<Integer> = (0..LANES as u32)
                .map(|l| match l {
                    0 => Integer::new(),
                    1 => Integer::from(1u32),
                    2 => (Integer::from(1u32) << (bits / 4)) - 1u32,
                    _ => {
                        Integer::from_digits(&[l as u8 * 37 + 1; 128], rug::integer::Order::Lsf)
                            >> (1024 - bits / 4 + 1)
                    }
                })
                .collect();
            let (got, _) = ifma.fixed_base_pow(&table, &exps.iter().collect::<Vec<_>>(), &m);
            for l in 0..LANES {
                assert_eq!(
                    got[l],
                    base.clone().pow_mod(&exps[l], &modulus).unwrap(),
                    "lane {l}, window {window}, {bits} bits"
                );
            }
        }
    }
}

/// Timing of the kernels (not a test: `cargo test --release -p
/// ppdnn-paillier --lib kernel_timing -- --ignored --nocapture`).
#[test]
#[ignore]
fn kernel_timing() {
    let Some(_) = ifma() else { return };
    for bits in [2048u32, 4096] {
        let modulus = odd_modulus(bits, &[0x3c; 800]);
        let m = Modulus8::new([&modulus; LANES], bits, false);
        let x = lanes::lanes_from([&Integer::from(12345u32); LANES], m.digits());
        let mut t = lanes::scratch(&m);
        let mut a = x.clone();
        let mut b = x.clone();
        let rounds = 20_000;
        // SAFETY: the CPU has IFMA (checked above).
        #[allow(unsafe_code)]
        let (mul, sqr) = unsafe {
            let start = std::time::Instant::now();
            for _ in 0..rounds {
                lanes::mul(&mut b, &a, &x, &m, &mut t);
                std::mem::swap(&mut a, &mut b);
            }
            let mul = start.elapsed().as_secs_f64();
            let start = std::time::Instant::now();
            for _ in 0..rounds {
                lanes::sqr(&mut b, &a, &m, &mut t);
                std::mem::swap(&mut a, &mut b);
            }
            (mul, start.elapsed().as_secs_f64())
        };
        // The one-number kernel: squarings in a chain.
        let single =
            Ifma::detect().and_then(|i| i.single_modulus(&modulus)).expect("the CPU has IFMA; the size fits");
        // SAFETY: the CPU has IFMA (checked above).
        #[allow(unsafe_code)]
        let chain = unsafe {
            let x = single::to_mont(&Integer::from(12345u32), &single);
            let start = std::time::Instant::now();
            std::hint::black_box(single::square_times(&x, rounds as u32, &single));
            start.elapsed().as_secs_f64()
        };
        let per = |s: f64| s / (rounds * LANES) as f64 * 1e6;
        eprintln!(
            "{bits}-bit modulus: {:.3} us per product, {:.3} us per square (per lane); one number at a time: {:.3} us per square",
            per(mul),
            per(sqr),
            chain / rounds as f64 * 1e6
        );
    }
}

#[test]
fn batched_inverses_match_gmp() {
    let Some(ifma) = ifma() else { return };
    // A prime, so that every non-zero value is a unit.
    let modulus = odd_modulus(2048, &[0x5a; 300]).next_prime();
    let m = ifma.modulus([&modulus; LANES], 2048, false);
    for count in [0usize, 1, 7, 8, 9, 33] {
        let xs: Vec<Integer> = (0..count)
            .map(|i| match i {
                2 => Integer::from(&modulus - 1u32),
                3 => Integer::from(1u32),
                _ => {
                    below(
                        &Integer::from(&modulus - 1u32),
                        &rotated(&[0x17; 64], i)
                            .iter()
                            .map(|b| b ^ (i as u8).wrapping_mul(29))
                            .collect::<Vec<u8>>(),
                    ) + 1u32
                }
            })
            .collect();
        let refs: Vec<&Integer> = xs.iter().collect();
        let mont: Vec<Vec<u64>> = refs.chunks(LANES).flat_map(|c| ifma.to_mont_digits(c, &m)).collect();
        let inv = ifma.invert_many_mont(&mont.iter().map(Vec::as_slice).collect::<Vec<_>>(), &m);
        assert_eq!(inv.len(), count);
        // x * x^-1 = 1: the chain product of the two, converted out.
        let pairs: Vec<Vec<&[u64]>> =
            mont.iter().zip(&inv).map(|(a, b)| vec![a.as_slice(), b.as_slice()]).collect();
        let one: Vec<u64> = bytemuck::cast_slice::<_, [u64; LANES]>(m.one()).iter().map(|r| r[0]).collect();
        for (k, chunk) in pairs.chunks(LANES).enumerate() {
            for (l, p) in ifma.chain_products(chunk, &one, &m).iter().enumerate() {
                assert_eq!(*p, 1u32, "value {} of {count}", k * LANES + l);
            }
        }
    }
}

#[test]
#[ignore]
fn conversion_timing() {
    let Some(ifma) = ifma() else { return };
    let modulus = odd_modulus(4096, &[0x3c; 800]);
    let m = Modulus8::new([&modulus; LANES], 4096, false);
    let xs: Vec<Integer> = (0..8).map(|i| below(&modulus, &[0x11 + i as u8; 600])).collect();
    let refs: Vec<&Integer> = xs.iter().collect();
    let start = std::time::Instant::now();
    for _ in 0..1000 {
        std::hint::black_box(ifma.to_mont_digits(&refs, &m));
    }
    eprintln!("to_mont_digits: {:.2} us per batch", start.elapsed().as_secs_f64() * 1e3);
    let start = std::time::Instant::now();
    for _ in 0..1000 {
        std::hint::black_box(lanes::lanes_from(std::array::from_fn(|l| refs[l]), m.digits()));
    }
    eprintln!("lanes_from: {:.2} us per batch", start.elapsed().as_secs_f64() * 1e3);
    let d = ifma.to_mont_digits(&refs, &m);
    let pairs: Vec<(&[u64], &[u64])> = d.iter().map(|x| (x.as_slice(), x.as_slice())).collect();
    let start = std::time::Instant::now();
    for _ in 0..1000 {
        std::hint::black_box(ifma.mul_digits(&pairs, &m));
    }
    eprintln!("mul_digits: {:.2} us per batch", start.elapsed().as_secs_f64() * 1e3);
}

/// prod_s x_s^(2^(shift s)) mod m by GMP, Horner's rule with pow_mod.
fn gmp_horner(xs: &[Integer], shift: u32, m: &Integer) -> Integer {
    let step = Integer::from(1u32) << shift;
    let Some((last, rest)) = xs.split_last() else { return Integer::from(1u32) };
    rest.iter()
        .rev()
        .fold(last.clone(), |acc, x| Integer::from(acc.pow_mod_ref(&step, m).expect("a power")) * x % m)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn single_number_products_and_horner_match_gmp(
        size in 0..SIZES.len() + 2,
        seed in prop::collection::vec(any::<u8>(), 2100),
        count in 0usize..6,
        shift in 1u32..70,
    ) {
        let Some(ifma) = ifma() else { return Ok(()) };
        // Also n^2 of 4,096-bit keys and the largest size.
        let bits = SIZES.get(size).copied().unwrap_or(if size == SIZES.len() { 8192 } else { 16586 });
        let modulus = odd_modulus(bits, &seed);
        let m = ifma.single_modulus(&modulus).expect("every tested size fits");
        let mut operands: Vec<Integer> = (0..8).map(|k| below(&modulus, &rotated(&seed, k * 31))).collect();
        operands.extend(edges(&modulus));
        for a in &operands {
            for b in [&operands[1], &operands[operands.len() - 1], a] {
                // SAFETY: the CPU has IFMA (checked above).
                #[allow(unsafe_code)]
                let (product, square) = unsafe {
                    let x = single::to_mont(a, &m);
                    (
                        single::from_mont(&single::mul(&x, &single::to_mont(b, &m), &m), &m),
                        single::from_mont(&single::square_times(&x, 3, &m), &m),
                    )
                };
                prop_assert_eq!(product, Integer::from(a * b) % &modulus, "product, {} bits", bits);
                let eighth = a.clone().pow_mod(&Integer::from(8u32), &modulus).expect("a power");
                prop_assert_eq!(square, eighth, "three squarings, {} bits", bits);
            }
        }
        let xs: Vec<Integer> = operands.iter().cycle().skip(count).take(count * 7).cloned().collect();
        let refs: Vec<&Integer> = xs.iter().collect();
        prop_assert_eq!(ifma.horner(&refs, shift, &m), gmp_horner(&xs, shift, &modulus), "Horner, {} bits", bits);
    }
}

#[test]
fn single_number_moduli_past_the_limit_stay_on_gmp() {
    let Some(ifma) = ifma() else { return };
    // 16,586 bits: 319 digits (R > 4m) and one to spare fill 40 vectors.
    assert!(ifma.single_modulus(&odd_modulus(16586, &[0x77; 2100])).is_some());
    assert!(ifma.single_modulus(&odd_modulus(16587, &[0x77; 2100])).is_none());
    assert!(ifma.single_modulus(&Integer::from(1u32)).is_none());
    assert!(ifma.single_modulus(&Integer::from(1u32 << 20)).is_none());
}
