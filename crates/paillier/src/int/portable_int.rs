//! A pure-Rust `Integer` with the part of rug's API that this workspace
//! uses, for targets without GMP (the browser's WebAssembly): general
//! arithmetic on num-bigint, modular exponentiation on the portable
//! backend's Montgomery arithmetic (crypto-bigint, constant-time for
//! `secure_pow_mod*`), and primality by trial division and Miller-Rabin.
//!
//! Where rug returns an "incomplete" value to be completed by
//! `Integer::from`, this returns the `Integer` itself (`From<T> for T` and
//! [`Complete`] make both spellings work). Division and remainder truncate
//! toward zero and shifts of negative values round toward minus infinity,
//! as rug's do; `tests` checks every operation against rug on native.

use std::cmp::Ordering;
use std::fmt;
use std::ops::{
    Add, AddAssign, BitAnd, Div, DivAssign, Mul, MulAssign, Neg, Rem, RemAssign, Shl, ShlAssign, Shr,
    ShrAssign, Sub, SubAssign,
};

use num_bigint::{BigInt, BigUint, Sign};

use crate::portable::Modulus;
use num_integer::Integer as _;
use num_traits::{One, Signed, ToPrimitive, Zero};

/// An arbitrary-precision signed integer (rug's `Integer`, in pure Rust).
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Integer(BigInt);

/// Digit order of [`Integer::to_digits`] and [`Integer::from_digits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Least significant digit first (little-endian bytes).
    Lsf,
    /// Most significant digit first (big-endian bytes).
    Msf,
}

/// The verdict of [`Integer::is_probably_prime`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsPrime {
    /// Composite for certain.
    No,
    /// Passed every test.
    Probably,
    /// Prime for certain (small values).
    Yes,
}

/// rug's completion of an incomplete value: here every value is complete.
pub trait Complete {
    /// The completed value.
    type Completed;
    /// Completes the value.
    fn complete(self) -> Self::Completed;
}

impl Complete for Integer {
    type Completed = Integer;
    fn complete(self) -> Integer {
        self
    }
}

/// An error from [`Integer::from_str_radix`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseIntegerError;

impl fmt::Display for ParseIntegerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid digits")
    }
}

impl std::error::Error for ParseIntegerError {}

/// A digit type of [`Integer::to_digits`] / [`Integer::from_digits`].
pub trait Digit: Copy {
    /// Bytes per digit.
    const BYTES: usize;
    /// The digit from its little-endian bytes.
    fn from_le(bytes: &[u8]) -> Self;
    /// The digit's little-endian bytes.
    fn to_le(self) -> Vec<u8>;
}

macro_rules! digit {
    ($($t:ty),*) => {$(
        impl Digit for $t {
            const BYTES: usize = std::mem::size_of::<$t>();
            fn from_le(bytes: &[u8]) -> Self {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                b[..bytes.len()].copy_from_slice(bytes);
                <$t>::from_le_bytes(b)
            }
            fn to_le(self) -> Vec<u8> {
                self.to_le_bytes().to_vec()
            }
        }
    )*};
}
digit!(u8, u16, u32, u64);

impl Integer {
    /// Zero.
    pub fn new() -> Integer {
        Integer(BigInt::zero())
    }

    fn magnitude(&self) -> &BigUint {
        self.0.magnitude()
    }

    /// Bits of |self| (0 for zero).
    pub fn significant_bits(&self) -> u32 {
        self.0.bits() as u32
    }

    /// Whether self is odd.
    pub fn is_odd(&self) -> bool {
        self.0.is_odd()
    }

    /// Whether self is even.
    pub fn is_even(&self) -> bool {
        self.0.is_even()
    }

    /// Whether self is zero.
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// Whether self is below zero.
    pub fn is_negative(&self) -> bool {
        self.0.is_negative()
    }

    /// The digits of |self|, in `order` (none for zero).
    pub fn to_digits<T: Digit>(&self, order: Order) -> Vec<T> {
        let bytes = self.magnitude().to_bytes_le();
        let bytes = if self.is_zero() { Vec::new() } else { bytes };
        let mut digits: Vec<T> = bytes.chunks(T::BYTES).map(T::from_le).collect();
        if order == Order::Msf {
            digits.reverse();
        }
        digits
    }

    /// The non-negative integer with the given digits.
    pub fn from_digits<T: Digit>(digits: &[T], order: Order) -> Integer {
        let mut bytes: Vec<u8> = Vec::with_capacity(digits.len() * T::BYTES);
        let mut push = |d: &T| bytes.extend(d.to_le());
        match order {
            Order::Lsf => digits.iter().for_each(&mut push),
            Order::Msf => digits.iter().rev().for_each(&mut push),
        }
        Integer(BigInt::from_biguint(Sign::Plus, BigUint::from_bytes_le(&bytes)))
    }

    /// The value as an i64 if it fits.
    pub fn to_i64(&self) -> Option<i64> {
        self.0.to_i64()
    }

    /// The value as a u64 if it fits.
    pub fn to_u64(&self) -> Option<u64> {
        self.0.to_u64()
    }

    /// The value as a u32 if it fits.
    pub fn to_u32(&self) -> Option<u32> {
        self.0.to_u32()
    }

    /// The value as an i32 if it fits.
    pub fn to_i32(&self) -> Option<i32> {
        self.0.to_i32()
    }

    /// The low 64 bits of the two's complement value.
    pub fn to_u64_wrapping(&self) -> u64 {
        let low = self.magnitude().iter_u64_digits().next().unwrap_or(0);
        if self.is_negative() { low.wrapping_neg() } else { low }
    }

    /// The value as an f64 (nearest).
    pub fn to_f64(&self) -> f64 {
        self.0.to_f64().unwrap_or(f64::NAN)
    }

    /// self^e mod m for e >= 0 (None for a negative e without inverse, as
    /// rug; m odd uses Montgomery arithmetic).
    pub fn pow_mod_ref(&self, e: &Integer, m: &Integer) -> Option<Integer> {
        if m.is_zero() {
            return None;
        }
        let m = m.abs_ref();
        if e.is_negative() {
            let inv = self.invert_ref(&m)?;
            return inv.pow_mod_ref(&e.abs_ref(), &m);
        }
        if m == 1 {
            return Some(Integer::new());
        }
        if m.is_odd() {
            return Some(Modulus::new(&m).pow_public(self, e));
        }
        Some(Integer(self.0.modpow(&e.0, &m.0)).rem_floor_pos(&m))
    }

    /// [`Integer::pow_mod_ref`] consuming self (Err(self) without a result).
    pub fn pow_mod(self, e: &Integer, m: &Integer) -> Result<Integer, Integer> {
        self.pow_mod_ref(e, m).ok_or(self)
    }

    /// self^e mod m for e > 0 and odd m, constant-time in e's value.
    ///
    /// # Panics
    /// For e <= 0 or an even m, as rug does.
    pub fn secure_pow_mod_ref(&self, e: &Integer, m: &Integer) -> Integer {
        assert!(*e > 0 && m.is_odd(), "secure_pow_mod needs a positive exponent and an odd modulus");
        // The exponent's length shows in the time only to 64 bits, as a
        // count of GMP's limbs would.
        Modulus::new(m).pow_secret(self, e, e.significant_bits().div_ceil(64) * 64)
    }

    /// [`Integer::secure_pow_mod_ref`] consuming self.
    pub fn secure_pow_mod(self, e: &Integer, m: &Integer) -> Integer {
        self.secure_pow_mod_ref(e, m)
    }

    /// [`Integer::secure_pow_mod_ref`] in place.
    pub fn secure_pow_mod_mut(&mut self, e: &Integer, m: &Integer) {
        *self = self.secure_pow_mod_ref(e, m);
    }

    /// self^-1 mod m in [0, |m|), if it exists.
    pub fn invert_ref(&self, m: &Integer) -> Option<Integer> {
        let m = m.abs_ref();
        if m.is_zero() {
            return None;
        }
        let a = self.clone().rem_floor_pos(&m);
        let ext = a.0.extended_gcd(&m.0);
        if !ext.gcd.is_one() {
            return if m == 1 { Some(Integer::new()) } else { None };
        }
        Some(Integer(ext.x).rem_floor_pos(&m))
    }

    /// [`Integer::invert_ref`] consuming self (Err(self) without an inverse).
    pub fn invert(self, m: &Integer) -> Result<Integer, Integer> {
        self.invert_ref(m).ok_or(self)
    }

    /// self mod m in [0, |m|).
    fn rem_floor_pos(self, m: &Integer) -> Integer {
        let r = self.0.mod_floor(&m.0);
        Integer(if r.is_negative() { r + m.0.abs() } else { r })
    }

    /// gcd(self, other) >= 0.
    pub fn gcd_ref(&self, other: &Integer) -> Integer {
        Integer(self.0.gcd(&other.0))
    }

    /// lcm(self, other) >= 0.
    pub fn lcm_ref(&self, other: &Integer) -> Integer {
        Integer(self.0.lcm(&other.0))
    }

    /// self := lcm(self, k).
    pub fn lcm_u_mut(&mut self, k: u32) {
        self.0 = self.0.lcm(&BigInt::from(k));
    }

    /// self^2.
    pub fn square(self) -> Integer {
        Integer(&self.0 * &self.0)
    }

    /// self^2, self kept.
    pub fn square_ref(&self) -> Integer {
        Integer(&self.0 * &self.0)
    }

    /// self := self^2.
    pub fn square_mut(&mut self) {
        self.0 = &self.0 * &self.0;
    }

    /// |self|, self kept.
    pub fn abs_ref(&self) -> Integer {
        Integer(self.0.abs())
    }

    /// |self|.
    pub fn abs(self) -> Integer {
        Integer(self.0.abs())
    }

    /// floor(sqrt(self)) for self >= 0.
    pub fn sqrt_ref(&self) -> Integer {
        Integer(self.0.sqrt())
    }

    /// Whether self is a perfect square (false below zero).
    pub fn is_perfect_square(&self) -> bool {
        !self.is_negative() && {
            let r = self.0.sqrt();
            &r * &r == self.0
        }
    }

    /// Bit `i` of the two's complement value.
    pub fn get_bit(&self, i: u32) -> bool {
        self.0.bit(u64::from(i))
    }

    /// Sets bit `i` of the two's complement value.
    pub fn set_bit(&mut self, i: u32, value: bool) -> &mut Integer {
        self.0.set_bit(u64::from(i), value);
        self
    }

    /// self mod 2^n (of the two's complement value, so never negative).
    pub fn keep_bits_ref(&self, n: u32) -> Integer {
        let m = BigInt::one() << n;
        Integer(self.0.mod_floor(&m))
    }

    /// self := self mod 2^n.
    pub fn keep_bits_mut(&mut self, n: u32) {
        *self = self.keep_bits_ref(n);
    }

    /// |self| mod k (rug: the remainder of |self|... for the non-negative
    /// values it is used on, self mod k).
    pub fn mod_u(&self, k: u32) -> u32 {
        let r = self.0.mod_floor(&BigInt::from(k));
        r.to_u32().expect("a remainder below a u32 modulus")
    }

    /// -1, 0 or 1: the sign.
    pub fn signum(&self) -> i32 {
        match self.0.sign() {
            Sign::Minus => -1,
            Sign::NoSign => 0,
            Sign::Plus => 1,
        }
    }

    /// |self| against |other|.
    pub fn cmp_abs(&self, other: &Integer) -> Ordering {
        self.magnitude().cmp(other.magnitude())
    }

    /// The Legendre symbol (self / p) for an odd prime p.
    pub fn legendre(&self, p: &Integer) -> i32 {
        self.jacobi(p)
    }

    /// The Jacobi symbol (self / n) for odd n > 0.
    pub fn jacobi(&self, n: &Integer) -> i32 {
        assert!(n.is_odd() && *n > 0, "the Jacobi symbol needs an odd positive n");
        let mut a = self.0.mod_floor(&n.0);
        let mut n = n.0.clone();
        let mut t = 1;
        let (three, four, five, eight) = (BigInt::from(3), BigInt::from(4), BigInt::from(5), BigInt::from(8));
        while !a.is_zero() {
            while a.is_even() {
                a >>= 1u32;
                let r = n.mod_floor(&eight);
                if r == three || r == five {
                    t = -t;
                }
            }
            std::mem::swap(&mut a, &mut n);
            if a.mod_floor(&four) == three && n.mod_floor(&four) == three {
                t = -t;
            }
            a = a.mod_floor(&n);
        }
        if n.is_one() { t } else { 0 }
    }

    /// The product of the primes up to `n`.
    pub fn primorial(n: u32) -> Integer {
        small_primes(n).iter().fold(Integer::from(1u32), |acc, &p| acc * p)
    }

    /// Whether self is prime: trial division, then `reps` Miller-Rabin
    /// rounds with random bases (and base 2).
    pub fn is_probably_prime(&self, reps: u32) -> IsPrime {
        prime::is_probably_prime(self, reps)
    }

    /// The least prime above self.
    pub fn next_prime_ref(&self) -> Integer {
        prime::next_prime(self)
    }

    /// The least prime above self.
    pub fn next_prime(self) -> Integer {
        prime::next_prime(&self)
    }

    /// The value in base `radix` (2 to 36), '-' first when negative.
    pub fn to_string_radix(&self, radix: i32) -> String {
        self.0.to_str_radix(radix as u32)
    }

    /// Parses digits in base `radix` (an optional sign first).
    pub fn from_str_radix(s: &str, radix: i32) -> Result<Integer, ParseIntegerError> {
        let digits = s.strip_prefix('+').unwrap_or(s);
        let (neg, digits) = match digits.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, digits),
        };
        if digits.is_empty() || digits.starts_with(['+', '-']) || digits.contains('_') {
            return Err(ParseIntegerError);
        }
        let v = BigInt::parse_bytes(digits.as_bytes(), radix as u32).ok_or(ParseIntegerError)?;
        Ok(Integer(if neg { -v } else { v }))
    }

    /// Overwrites the digits in use with zeros and leaves zero behind (the
    /// storage num-bigint holds beyond them, and copies it made, it cannot
    /// reach).
    pub(crate) fn wipe(&mut self) {
        // Counted without copying them (a copy would be freed unwiped).
        let digits = self.magnitude().iter_u32_digits().len();
        self.0.assign_from_slice(Sign::Plus, &vec![0u32; digits]);
    }
}

mod prime {
    use super::*;

    /// Trial division bound.
    const TRIAL: u32 = 2000;

    pub(super) fn is_probably_prime(x: &Integer, reps: u32) -> IsPrime {
        if *x < 2 {
            return IsPrime::No;
        }
        for &p in small_primes(TRIAL) {
            if *x == p {
                return IsPrime::Yes;
            }
            if x.mod_u(p) == 0 {
                return IsPrime::No;
            }
        }
        if *x < TRIAL * TRIAL {
            return IsPrime::Yes;
        }
        if miller_rabin(x, reps) { IsPrime::Probably } else { IsPrime::No }
    }

    /// Base 2, then `reps` random bases in [2, x - 2].
    fn miller_rabin(x: &Integer, reps: u32) -> bool {
        let m = Modulus::new(x);
        let minus_one = x - 1u32;
        let s = minus_one.0.trailing_zeros().unwrap_or(0) as u32;
        let d = Integer(&minus_one.0 >> s);
        let span = x - 3u32;
        // The candidate is a secret prime-to-be: the power runs in time that
        // depends on its length only.
        let bits = x.significant_bits();
        let witness = |a: &Integer| {
            let mut y = m.pow_secret(a, &d, bits);
            if y == 1 || y == minus_one {
                return true;
            }
            for _ in 1..s {
                y = Integer(&y.0 * &y.0 % &x.0);
                if y == minus_one {
                    return true;
                }
            }
            false
        };
        if !witness(&Integer::from(2u32)) {
            return false;
        }
        let mut bytes = vec![0u8; x.significant_bits() as usize / 8 + 8];
        (0..reps).all(|_| {
            // Without randomness the test cannot vouch for x: composite.
            if getrandom::fill(&mut bytes).is_err() {
                return false;
            }
            witness(&(Integer::from_digits(&bytes, Order::Lsf) % &span + 2u32))
        })
    }

    /// The least probable prime above x: a sieve of the odd candidates by
    /// the small primes' residues, then 25 Miller-Rabin rounds.
    pub(super) fn next_prime(x: &Integer) -> Integer {
        if *x < 2 {
            return Integer::from(2u32);
        }
        let mut c = x + 1u32;
        if c.is_even() && c != 2 {
            c += 1u32;
        }
        // Small values: test each odd candidate (the sieve below would
        // strike out the small primes themselves).
        while c < TRIAL * TRIAL {
            if is_probably_prime(&c, 25) != IsPrime::No {
                return c;
            }
            c += 2u32;
        }
        let primes = small_primes(TRIAL);
        loop {
            let residues: Vec<u32> = primes.iter().map(|&p| c.mod_u(p)).collect();
            for step in (0u32..4096).step_by(2) {
                if primes.iter().zip(&residues).any(|(&p, &r)| (r + step % p) % p == 0) {
                    continue;
                }
                let candidate = &c + step;
                if is_probably_prime(&candidate, 25) != IsPrime::No {
                    return candidate;
                }
            }
            c += 4096u32;
        }
    }
}

/// The primes up to `n` (sieve, computed per call for n beyond the cache).
fn small_primes(n: u32) -> &'static [u32] {
    use std::sync::OnceLock;
    static PRIMES: OnceLock<Vec<u32>> = OnceLock::new();
    const CACHED: u32 = 10_000;
    let all = PRIMES.get_or_init(|| {
        let mut sieve = vec![true; CACHED as usize + 1];
        let mut out = Vec::new();
        for i in 2..=CACHED as usize {
            if sieve[i] {
                out.push(i as u32);
                (i * i..=CACHED as usize).step_by(i).for_each(|j| sieve[j] = false);
            }
        }
        out
    });
    assert!(n <= CACHED, "small primes are kept up to {CACHED}");
    let end = all.partition_point(|&p| p <= n);
    &all[..end]
}

impl fmt::Display for Integer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Integer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::LowerHex for Integer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

impl std::str::FromStr for Integer {
    type Err = ParseIntegerError;
    fn from_str(s: &str) -> Result<Integer, ParseIntegerError> {
        Integer::from_str_radix(s, 10)
    }
}

macro_rules! primitive {
    ($($t:ty),*) => {$(
        impl From<$t> for Integer {
            fn from(x: $t) -> Integer {
                Integer(BigInt::from(x))
            }
        }
        impl PartialEq<$t> for Integer {
            fn eq(&self, other: &$t) -> bool {
                self.0 == BigInt::from(*other)
            }
        }
        impl PartialEq<Integer> for $t {
            fn eq(&self, other: &Integer) -> bool {
                other == self
            }
        }
        impl PartialOrd<$t> for Integer {
            fn partial_cmp(&self, other: &$t) -> Option<Ordering> {
                Some(self.0.cmp(&BigInt::from(*other)))
            }
        }
        impl PartialOrd<Integer> for $t {
            fn partial_cmp(&self, other: &Integer) -> Option<Ordering> {
                Some(BigInt::from(*self).cmp(&other.0))
            }
        }
        binary!($t, Add, add, AddAssign, add_assign, +);
        binary!($t, Sub, sub, SubAssign, sub_assign, -);
        binary!($t, Mul, mul, MulAssign, mul_assign, *);
        binary!($t, Div, div, DivAssign, div_assign, /);
        binary!($t, Rem, rem, RemAssign, rem_assign, %);
    )*};
}

/// Integer op primitive (owned and borrowed), primitive op Integer, and op=.
macro_rules! binary {
    ($t:ty, $tr:ident, $f:ident, $tra:ident, $fa:ident, $op:tt) => {
        impl $tr<$t> for Integer {
            type Output = Integer;
            fn $f(self, rhs: $t) -> Integer {
                Integer(self.0 $op BigInt::from(rhs))
            }
        }
        impl $tr<$t> for &Integer {
            type Output = Integer;
            fn $f(self, rhs: $t) -> Integer {
                Integer(&self.0 $op BigInt::from(rhs))
            }
        }
        impl $tr<Integer> for $t {
            type Output = Integer;
            fn $f(self, rhs: Integer) -> Integer {
                Integer(BigInt::from(self) $op rhs.0)
            }
        }
        impl $tr<&Integer> for $t {
            type Output = Integer;
            fn $f(self, rhs: &Integer) -> Integer {
                Integer(BigInt::from(self) $op &rhs.0)
            }
        }
        impl $tra<$t> for Integer {
            fn $fa(&mut self, rhs: $t) {
                self.0 = &self.0 $op BigInt::from(rhs);
            }
        }
    };
}

primitive!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

impl From<&Integer> for Integer {
    fn from(x: &Integer) -> Integer {
        x.clone()
    }
}

impl From<bool> for Integer {
    fn from(x: bool) -> Integer {
        Integer::from(u8::from(x))
    }
}

/// Integer op Integer in the four ownership combinations, and op=.
macro_rules! integer_binary {
    ($tr:ident, $f:ident, $tra:ident, $fa:ident, $op:tt) => {
        impl $tr<Integer> for Integer {
            type Output = Integer;
            fn $f(self, rhs: Integer) -> Integer {
                Integer(self.0 $op rhs.0)
            }
        }
        impl $tr<&Integer> for Integer {
            type Output = Integer;
            fn $f(self, rhs: &Integer) -> Integer {
                Integer(self.0 $op &rhs.0)
            }
        }
        impl $tr<Integer> for &Integer {
            type Output = Integer;
            fn $f(self, rhs: Integer) -> Integer {
                Integer(&self.0 $op rhs.0)
            }
        }
        impl $tr<&Integer> for &Integer {
            type Output = Integer;
            fn $f(self, rhs: &Integer) -> Integer {
                Integer(&self.0 $op &rhs.0)
            }
        }
        impl $tra<Integer> for Integer {
            fn $fa(&mut self, rhs: Integer) {
                self.0 = &self.0 $op rhs.0;
            }
        }
        impl $tra<&Integer> for Integer {
            fn $fa(&mut self, rhs: &Integer) {
                self.0 = &self.0 $op &rhs.0;
            }
        }
    };
}

integer_binary!(Add, add, AddAssign, add_assign, +);
integer_binary!(Sub, sub, SubAssign, sub_assign, -);
integer_binary!(Mul, mul, MulAssign, mul_assign, *);
integer_binary!(Div, div, DivAssign, div_assign, /);
integer_binary!(Rem, rem, RemAssign, rem_assign, %);

impl BitAnd<&Integer> for &Integer {
    type Output = Integer;
    fn bitand(self, rhs: &Integer) -> Integer {
        Integer(&self.0 & &rhs.0)
    }
}

impl Neg for Integer {
    type Output = Integer;
    fn neg(self) -> Integer {
        Integer(-self.0)
    }
}

impl Neg for &Integer {
    type Output = Integer;
    fn neg(self) -> Integer {
        Integer(-&self.0)
    }
}

macro_rules! shift {
    ($($t:ty),*) => {$(
        impl Shl<$t> for Integer {
            type Output = Integer;
            fn shl(self, n: $t) -> Integer {
                Integer(self.0 << n)
            }
        }
        impl Shl<$t> for &Integer {
            type Output = Integer;
            fn shl(self, n: $t) -> Integer {
                Integer(&self.0 << n)
            }
        }
        impl Shr<$t> for Integer {
            type Output = Integer;
            fn shr(self, n: $t) -> Integer {
                Integer(self.0 >> n)
            }
        }
        impl Shr<$t> for &Integer {
            type Output = Integer;
            fn shr(self, n: $t) -> Integer {
                Integer(&self.0 >> n)
            }
        }
        impl ShlAssign<$t> for Integer {
            fn shl_assign(&mut self, n: $t) {
                self.0 <<= n;
            }
        }
        impl ShrAssign<$t> for Integer {
            fn shr_assign(&mut self, n: $t) {
                self.0 >>= n;
            }
        }
    )*};
}
shift!(u32, i32, usize);

impl std::iter::Sum for Integer {
    fn sum<I: Iterator<Item = Integer>>(iter: I) -> Integer {
        iter.fold(Integer::new(), |a, b| a + b)
    }
}

impl std::iter::Product for Integer {
    fn product<I: Iterator<Item = Integer>>(iter: I) -> Integer {
        iter.fold(Integer::from(1u32), |a, b| a * b)
    }
}
