//! The key-size policy: which sizes of n are accepted, for production and
//! for tests, in one place that the library, the service and the command
//! line all ask.

/// A key size that a policy refuses.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error("unsupported key size: {bits} bits ({policy})")]
pub struct KeySizeError {
    /// The size that was asked for or found.
    pub bits: u32,
    /// The policy that refused it.
    pub policy: KeyPolicy,
}

/// Which key sizes are accepted: the one place that says so. A key from
/// outside must also pass the checks of [`PublicKey::new`]; a key to
/// generate must also be a multiple of 16 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPolicy {
    /// The smallest accepted size of n, in bits.
    pub min_bits: u32,
    /// The largest accepted size of n, in bits.
    pub max_bits: u32,
}

impl KeyPolicy {
    /// The production policy: 2048 to 4096-bit moduli.
    pub const PRODUCTION: KeyPolicy = KeyPolicy { min_bits: 2048, max_bits: 4096 };
    /// For tests and experiments only: allows keys from 256 bits.
    pub const INSECURE_TESTING: KeyPolicy = KeyPolicy { min_bits: 256, max_bits: 4096 };
    /// The sizes a server offers and plans for unless told otherwise.
    pub const STANDARD_SIZES: [u32; 2] = [2048, 3072];
    /// The size of a new key unless told otherwise.
    pub const DEFAULT_BITS: u32 = 2048;

    /// The testing policy when `insecure` (an explicit opt-in, such as
    /// `--insecure-small-keys`), else the production one.
    pub fn insecure_if(insecure: bool) -> KeyPolicy {
        if insecure { KeyPolicy::INSECURE_TESTING } else { KeyPolicy::PRODUCTION }
    }

    /// The production policy if it accepts `bits`, else the testing one:
    /// for benchmarks and load tests, whose key size is the experiment.
    pub fn admitting(bits: u32) -> KeyPolicy {
        KeyPolicy::insecure_if(KeyPolicy::PRODUCTION.check(bits).is_err())
    }

    /// Whether an n of `bits` bits is accepted.
    pub fn check(&self, bits: u32) -> Result<(), KeySizeError> {
        if bits < self.min_bits || bits > self.max_bits {
            return Err(KeySizeError { bits, policy: *self });
        }
        Ok(())
    }

    /// Whether a key of `bits` bits may be generated: accepted, and a
    /// multiple of 16 (two primes of whole bytes).
    pub fn check_new(&self, bits: u32) -> Result<(), KeySizeError> {
        self.check(bits)?;
        if !bits.is_multiple_of(16) {
            return Err(KeySizeError { bits, policy: *self });
        }
        Ok(())
    }
}

impl std::fmt::Display for KeyPolicy {
    /// The sizes accepted, as an error message lists them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "accepted sizes are {} to {} bits, new keys in multiples of 16",
            self.min_bits, self.max_bits
        )?;
        if *self == KeyPolicy::PRODUCTION {
            write!(f, "; smaller keys are for tests only")?;
        }
        Ok(())
    }
}

impl Default for KeyPolicy {
    fn default() -> Self {
        KeyPolicy::PRODUCTION
    }
}
