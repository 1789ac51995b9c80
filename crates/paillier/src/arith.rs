//! Which arithmetic runs the batched operations: ppdnn's own AVX-512 IFMA
//! kernels where the CPU has them, GMP otherwise, or the portable pure-Rust
//! Montgomery arithmetic ([`crate::portable`]) on request.
//!
//! The choice is made once per process: `PPDNN_ARITH=gmp` forces GMP,
//! `PPDNN_ARITH=portable` the portable backend, `PPDNN_ARITH=ifma` insists
//! on IFMA (and [`Backend::from_env`] reports an error on a CPU without
//! it), unset or `auto` picks IFMA when available. [`set_backend`]
//! overrides it (benchmarks measure all three in one run). All give
//! identical results; only the speed differs.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::error::{BackendError, Error, LengthError, Result};

/// An implementation of the modular arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// GMP through rug: portable, and the oracle.
    Gmp,
    /// Eight-lane Montgomery arithmetic on AVX-512 IFMA (x86-64 only).
    Ifma,
    /// Pure-Rust Montgomery arithmetic (crypto-bigint): runs everywhere,
    /// the browser's WebAssembly included.
    Portable,
}

/// 0: no override; 1: GMP; 2: IFMA; 3: portable.
static OVERRIDE: AtomicU8 = AtomicU8::new(0);
static DEFAULT: OnceLock<Backend> = OnceLock::new();

impl Backend {
    /// The name used by `PPDNN_ARITH` and `--backend`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Gmp => "gmp",
            Backend::Ifma => "ifma",
            Backend::Portable => "portable",
        }
    }

    /// Parses `gmp`, `ifma` or `portable`.
    pub fn parse(s: &str) -> Result<Backend> {
        match s {
            "gmp" => Ok(Backend::Gmp),
            "ifma" => Ok(Backend::Ifma),
            "portable" => Ok(Backend::Portable),
            other => Err(Error::Backend(BackendError::Unknown(other.to_string()))),
        }
    }

    /// Whether this CPU can run the IFMA backend.
    pub fn ifma_available() -> bool {
        crate::ifma::Ifma::detect().is_some()
    }

    /// The backend `PPDNN_ARITH` asks for: None when unset or `auto`; an
    /// error for an unknown value, or for `ifma` on a CPU without it.
    pub fn from_env() -> Result<Option<Backend>> {
        match std::env::var("PPDNN_ARITH") {
            Err(_) => Ok(None),
            Ok(v) if v.is_empty() || v == "auto" => Ok(None),
            Ok(v) => {
                let b =
                    Backend::parse(&v).map_err(|e| Error::Backend(BackendError::Environment(Box::new(e))))?;
                b.check()?;
                Ok(Some(b))
            }
        }
    }

    /// The backend in use: the override of [`set_backend`] if any, else
    /// `PPDNN_ARITH` (an invalid value there counts as unset; the CLI
    /// refuses it at startup through [`Backend::from_env`]), else IFMA when
    /// the CPU has it.
    pub fn current() -> Backend {
        match OVERRIDE.load(Ordering::Relaxed) {
            1 => Backend::Gmp,
            2 => Backend::Ifma,
            3 => Backend::Portable,
            _ => *DEFAULT.get_or_init(|| match Backend::from_env() {
                Ok(Some(b)) => b,
                _ if cfg!(target_arch = "wasm32") => Backend::Portable,
                _ if Backend::ifma_available() => Backend::Ifma,
                _ => Backend::Gmp,
            }),
        }
    }

    /// An error if this backend cannot run here.
    pub fn check(self) -> Result<()> {
        if self == Backend::Ifma && !Backend::ifma_available() {
            return Err(Error::Backend(BackendError::NoIfma));
        }
        if self == Backend::Gmp && cfg!(target_arch = "wasm32") {
            return Err(Error::Backend(BackendError::NoGmp));
        }
        Ok(())
    }

    /// The IFMA token when this backend is IFMA (and the CPU has it).
    pub(crate) fn ifma(self) -> Option<crate::ifma::Ifma> {
        match self {
            Backend::Ifma => crate::ifma::Ifma::detect(),
            Backend::Gmp | Backend::Portable => None,
        }
    }
}

/// Makes `backend` the process's backend from now on (for benchmarks and
/// tools; results are the same either way). Errors if the CPU cannot run it.
pub fn set_backend(backend: Backend) -> Result<()> {
    backend.check()?;
    let code = match backend {
        Backend::Gmp => 1,
        Backend::Ifma => 2,
        Backend::Portable => 3,
    };
    OVERRIDE.store(code, Ordering::Relaxed);
    Ok(())
}

/// x_i^rounds mod m for up to eight x_i (below m, m odd) by `rounds`
/// successive modular products on `backend`: the multiplication-throughput
/// benchmark, with IFMA values kept in Montgomery form throughout and GMP
/// doing `a * b % m`. Returns the powers, so a benchmark can check them.
pub fn product_chain_with(
    backend: Backend,
    xs: &[crate::Integer],
    m: &crate::Integer,
    rounds: u64,
) -> Result<Vec<crate::Integer>> {
    backend.check()?;
    if xs.len() > 8 || m.is_even() || *m <= 1 || xs.iter().any(|x| *x < 0 || x >= m) {
        return Err(Error::Length(LengthError::ProductChain));
    }
    if let Some(ifma) = backend.ifma() {
        let lanes = ifma.modulus([m; 8], m.significant_bits(), false);
        let refs: Vec<&crate::Integer> = xs.iter().collect();
        return Ok(ifma.power_by_products(&refs, rounds, &lanes));
    }
    if backend == Backend::Portable {
        let modulus = crate::portable::Modulus::new(m);
        return Ok(xs
            .iter()
            .map(|x| {
                let base = modulus.enter(x);
                let mut acc = base.clone();
                for _ in 1..rounds {
                    acc = acc.mul(&base);
                }
                if rounds == 0 { crate::Integer::from(1u32) } else { modulus.leave(&acc) }
            })
            .collect());
    }
    Ok(xs
        .iter()
        .map(|x| {
            let mut acc = crate::Integer::from(1u32);
            for _ in 0..rounds {
                acc *= x;
                acc %= m;
            }
            acc
        })
        .collect())
}
