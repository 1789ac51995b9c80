//! The pure-Rust Integer against rug's, operation by operation, on values
//! of the sizes Paillier uses (up to 4096 bits, both signs): every result
//! must be identical.

use proptest::prelude::*;
use rug::Integer as Gmp;

use super::portable_int::{Integer as Pure, IsPrime, Order};

fn pair(bytes: &[u8], negative: bool) -> (Pure, Gmp) {
    let p = Pure::from_digits(bytes, Order::Lsf);
    let g = Gmp::from_digits(bytes, rug::integer::Order::Lsf);
    if negative { (-p, -g) } else { (p, g) }
}

fn same(p: &Pure, g: &Gmp) -> bool {
    p.to_string_radix(16) == g.to_string_radix(16)
}

fn value() -> impl Strategy<Value = (Vec<u8>, bool)> {
    (prop::collection::vec(any::<u8>(), 0..520), any::<bool>())
}

/// An odd modulus above 1 of 8 to 4096 bits.
fn modulus() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..512).prop_map(|mut v| {
        v[0] |= 1;
        if v.len() == 1 && v[0] == 1 {
            v[0] = 3;
        }
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn ring_operations_match((a, an) in value(), (b, bn) in value(), k in any::<i64>(), s in 0u32..300) {
        let (pa, ga) = pair(&a, an);
        let (pb, gb) = pair(&b, bn);
        prop_assert!(same(&(&pa + &pb), &Gmp::from(&ga + &gb)));
        prop_assert!(same(&(&pa - &pb), &Gmp::from(&ga - &gb)));
        prop_assert!(same(&(&pa * &pb), &Gmp::from(&ga * &gb)));
        prop_assert!(same(&(&pa + k), &Gmp::from(&ga + k)));
        prop_assert!(same(&(&pa * k), &Gmp::from(&ga * k)));
        if gb != 0 {
            prop_assert!(same(&(&pa / &pb), &Gmp::from(&ga / &gb)));
            prop_assert!(same(&(&pa % &pb), &Gmp::from(&ga % &gb)));
        }
        prop_assert!(same(&(&pa << s), &Gmp::from(&ga << s)));
        prop_assert!(same(&(&pa >> s), &Gmp::from(&ga >> s)));
        prop_assert!(same(&pa.keep_bits_ref(s), &Gmp::from(ga.keep_bits_ref(s))));
        prop_assert_eq!(pa.get_bit(s), ga.get_bit(s));
        prop_assert_eq!(pa.significant_bits(), ga.significant_bits());
        prop_assert_eq!(pa.cmp(&pb), ga.cmp(&gb));
        prop_assert_eq!(pa.cmp_abs(&pb), ga.cmp_abs(&gb));
        prop_assert_eq!(pa.partial_cmp(&k), ga.partial_cmp(&k));
        prop_assert_eq!(pa.to_i64(), ga.to_i64());
        prop_assert_eq!(pa.to_u64_wrapping(), ga.to_u64_wrapping());
        prop_assert_eq!(pa.is_odd(), ga.is_odd());
        prop_assert_eq!(pa.to_string_radix(10), ga.to_string_radix(10));
        prop_assert!(same(&Pure::from_str_radix(&ga.to_string_radix(10), 10).unwrap(), &ga));
        prop_assert_eq!(pa.to_digits::<u8>(Order::Msf), ga.to_digits::<u8>(rug::integer::Order::Msf));
        prop_assert_eq!(pa.to_digits::<u64>(Order::Lsf), ga.to_digits::<u64>(rug::integer::Order::Lsf));
        prop_assert!(same(&pa.gcd_ref(&pb), &Gmp::from(ga.gcd_ref(&gb))));
        prop_assert!(same(&pa.square_ref(), &Gmp::from(ga.square_ref())));
        prop_assert!(same(&pa.abs_ref().sqrt_ref(), &Gmp::from(ga.abs_ref()).sqrt()));
        prop_assert_eq!(pa.mod_u(7919), ga.mod_u(7919));
    }

    #[test]
    fn modular_operations_match((a, an) in value(), (e, _) in value(), m in modulus()) {
        let (pa, ga) = pair(&a, an);
        let (pe, ge) = pair(&e[..e.len().min(260)], false);
        let (pm, gm) = pair(&m, false);
        let want = ga.pow_mod_ref(&ge, &gm).map(Gmp::from);
        let got = pa.pow_mod_ref(&pe, &pm);
        prop_assert_eq!(got.map(|x| x.to_string_radix(16)), want.map(|x| x.to_string_radix(16)));
        prop_assert_eq!(
            pa.invert_ref(&pm).map(|x| x.to_string_radix(16)),
            ga.invert_ref(&gm).map(|x| Gmp::from(x).to_string_radix(16))
        );
        if ge > 0 {
            let ga_pos = Gmp::from(ga.abs_ref());
            let pa_pos = pa.abs_ref();
            prop_assert!(same(&pa_pos.secure_pow_mod_ref(&pe, &pm), &Gmp::from(ga_pos.secure_pow_mod_ref(&ge, &gm))));
        }
        prop_assert_eq!(pa.jacobi(&pm), ga.jacobi(&gm));
    }
}

#[test]
fn primality_matches_on_known_numbers() {
    let mut x = Gmp::from(1u32) << 512u32;
    for _ in 0..6 {
        let g = Gmp::from(x.next_prime_ref());
        let p = Pure::from_str_radix(&x.to_string_radix(10), 10).unwrap().next_prime();
        assert!(same(&p, &g), "next prime after 2^512 + ...");
        assert_ne!(p.is_probably_prime(30), IsPrime::No);
        assert_eq!((p.clone() * p.clone()).is_probably_prime(30), IsPrime::No);
        assert_eq!(Pure::from(561u32).is_probably_prime(30), IsPrime::No, "a Carmichael number");
        x = g + 1000u32;
    }
    // A strong pseudoprime to base 2 (2047 = 23 * 89), and a large Carmichael number.
    assert_eq!(Pure::from(2047u32).is_probably_prime(30), IsPrime::No);
    let carmichael = Pure::from_str_radix("3825123056546413051", 10).unwrap();
    assert_eq!(carmichael.is_probably_prime(30), IsPrime::No);
    assert!(same(&Pure::primorial(100), &Gmp::from(Gmp::primorial(100))));
}

#[test]
fn wiping_leaves_zero() {
    let mut x = Pure::from(u64::MAX) << 300u32;
    x.wipe();
    assert_eq!(x, 0);
}
