//! The IFMA backend's types on CPUs other than x86-64: uninhabited, so no
//! value of them can exist and every IFMA path is statically unreachable;
//! [`Ifma::detect`] always answers None and GMP does the work.

use crate::int::Integer;

pub(crate) mod lanes {
    /// Lanes per batch (kept for the batch sizes of the callers).
    pub(crate) const LANES: usize = crate::LANES;

    /// Never constructed off x86-64.
    pub(crate) enum Modulus8 {}

    impl Modulus8 {
        pub(crate) fn memory_bytes(&self) -> usize {
            match *self {}
        }
    }
}

use lanes::Modulus8;

/// The operations an exponentiation performed (see the x86-64 module).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OpCount {
    /// Montgomery multiplications.
    pub muls: u64,
    /// Montgomery squarings.
    pub sqrs: u64,
    /// Full table scans.
    pub scans: u64,
}

/// Never constructed off x86-64.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ifma {}

/// Never constructed off x86-64.
pub(crate) enum FixedBaseLanes {}

pub(crate) mod single {
    /// Never constructed off x86-64.
    pub(crate) enum SingleModulus {}

    impl SingleModulus {
        pub(crate) fn memory_bytes(&self) -> usize {
            match *self {}
        }
    }
}

use single::SingleModulus;

impl FixedBaseLanes {
    pub(crate) fn memory_bytes(&self) -> usize {
        match *self {}
    }
}

impl Ifma {
    pub(crate) fn detect() -> Option<Ifma> {
        None
    }
    pub(crate) fn modulus(self, _: [&Integer; lanes::LANES], _: u32, _: bool) -> Modulus8 {
        match self {}
    }
    pub(crate) fn pow_lanes(
        self,
        _: &[&Integer],
        _: &[&Integer],
        _: u32,
        _: &Modulus8,
    ) -> (Vec<Integer>, OpCount) {
        match self {}
    }
    pub(crate) fn fixed_base_table(self, _: &Integer, _: u32, _: u32, _: &Modulus8) -> FixedBaseLanes {
        match self {}
    }
    pub(crate) fn fixed_base_pow(
        self,
        _: &FixedBaseLanes,
        _: &[&Integer],
        _: &Modulus8,
    ) -> (Vec<Integer>, OpCount) {
        match self {}
    }
    pub(crate) fn combine_rows(self, _: &Modulus8, _: &[Integer], _: &[Vec<i64>]) -> Vec<Integer> {
        match self {}
    }
    pub(crate) fn combine_rows_fixed(
        self,
        _: &Modulus8,
        _: &[Integer],
        _: &[Vec<i64>],
        _: u32,
    ) -> Vec<Integer> {
        match self {}
    }
    pub(crate) fn linear_combination(
        self,
        _: &Modulus8,
        _: &SingleModulus,
        _: &[&Integer],
        _: &[i64],
    ) -> Integer {
        match self {}
    }
    pub(crate) fn power_by_products(self, _: &[&Integer], _: u64, _: &Modulus8) -> Vec<Integer> {
        match self {}
    }
    pub(crate) fn single_modulus(self, _: &Integer) -> Option<SingleModulus> {
        match self {}
    }
    pub(crate) fn horner(self, _: &[&Integer], _: u32, _: &SingleModulus) -> Integer {
        match self {}
    }
}
