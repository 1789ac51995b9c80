//! The crate's error types: one [`Error`] whose variants say what went
//! wrong, with the values concerned as fields; the messages come from
//! `Display` and can be shown to a user as they are.

use crate::int::Integer;
use thiserror::Error;

use crate::policy::KeySizeError;

/// Everything that can go wrong in this crate.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A public key failed validation.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(KeyError),
    /// A private key failed validation (inconsistent p, q and n, or not prime).
    #[error("invalid private key: {0}")]
    InvalidPrivateKey(PrivateKeyError),
    /// A key size outside what the policy allows.
    #[error(transparent)]
    KeySize(#[from] KeySizeError),
    /// A ciphertext that is not a valid element of Z*_{n^2}.
    #[error("invalid ciphertext: {0}")]
    InvalidCiphertext(CiphertextError),
    /// A plaintext outside the range it must fit.
    #[error("plaintext out of range: {0}")]
    PlaintextRange(RangeError),
    /// A slot value that does not fit its slot.
    #[error("slot overflow: {0}")]
    SlotOverflow(SlotOverflow),
    /// A slot layout that cannot exist or does not fit the key.
    #[error("invalid slot layout: {0}")]
    SlotLayout(SlotLayoutError),
    /// A malformed key file or encoded number.
    #[error("format error: {0}")]
    Format(FormatError),
    /// Mismatched lengths of inputs that must agree (bases and weights, for instance).
    #[error("length mismatch: {0}")]
    Length(LengthError),
    /// An I/O failure reading or writing a key file.
    #[error("{path}: {message}")]
    Io {
        /// The file concerned.
        path: String,
        /// The operating system's words for what went wrong.
        message: String,
    },
    /// An arithmetic backend that cannot run here, or an unknown name for one.
    #[error("arithmetic backend: {0}")]
    Backend(BackendError),
    /// The operating system's random number generator failed.
    #[error("the OS random number generator failed: {0}")]
    Random(RandomError),
    /// A modulus proof that cannot be made, does not parse, or does not verify.
    #[error("modulus proof: {0}")]
    Proof(ProofError),
    /// A no-small-factor proof (or its ring-Pedersen parameters) that cannot
    /// be made, does not parse, or does not verify.
    #[error("no-small-factor proof: {0}")]
    FactorProof(FactorProofError),
}

// The proofs' errors are in their variants' messages, not also their
// sources (`{:#}` would print them twice).
impl From<ProofError> for Error {
    fn from(e: ProofError) -> Self {
        Error::Proof(e)
    }
}

impl From<FactorProofError> for Error {
    fn from(e: FactorProofError) -> Self {
        Error::FactorProof(e)
    }
}

/// Why a proof that n is a Paillier-Blum modulus fails.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// A proof of the wrong size.
    #[error("{got} bytes where a proof for this key takes {expected}")]
    Length {
        /// Bytes given.
        got: usize,
        /// Bytes of a proof.
        expected: usize,
    },
    /// A number of the proof not below n.
    #[error("a number of the proof is not below n")]
    OutOfRange,
    /// A flag byte other than 0 to 3.
    #[error("a flag byte is not 0, 1, 2 or 3")]
    Flags,
    /// A key whose primes are not Blum primes.
    #[error(
        "this key's primes are not both 3 mod 4, so it cannot prove its modulus: generate a new key (ppdnn key generate makes Blum primes)"
    )]
    NotBlum,
    /// A challenge without a fourth root (cannot happen for a Blum modulus).
    #[error("a challenge has no fourth root")]
    NoFourthRoot,
    /// A proof that does not verify: n is not shown to be a Paillier-Blum modulus.
    #[error("the proof does not show that n is a Paillier-Blum modulus")]
    Rejected,
}

/// Why a no-small-factor proof ([`crate::FactorProof`]), or the
/// ring-Pedersen parameters ([`crate::RingPedersen`]) it is made under, fails.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FactorProofError {
    /// Ring-Pedersen parameters whose maker's proof that s is in the group
    /// t generates does not verify.
    #[error(
        "the server's factor-proof parameters do not prove that s is in the group t generates: committing to the key's primes under them could reveal them, so no factor proof is made"
    )]
    ParamsUnproven,
    /// A proof of the wrong size.
    #[error("{got} bytes where a proof for this key and these parameters takes {expected}")]
    Length {
        /// Bytes given.
        got: usize,
        /// Bytes of a proof.
        expected: usize,
    },
    /// A number of the proof outside its range: a commitment not in
    /// [1, n_hat), a magnitude wider than its field, a sign byte other than
    /// 0 or 1, or a negative zero.
    #[error("{0} of the proof is out of range")]
    OutOfRange(&'static str),
    /// Encoded ring-Pedersen parameters of the wrong size.
    #[error("{got} bytes where ring-Pedersen parameters of this width take {expected}")]
    ParamsLength {
        /// Bytes given.
        got: usize,
        /// Bytes of the parameters at the width their header states.
        expected: usize,
    },
    /// Ring-Pedersen parameters that fail validation.
    #[error("invalid ring-Pedersen parameters: {0}")]
    InvalidParams(&'static str),
    /// A size of n_hat that cannot be generated.
    #[error("ring-Pedersen parameters of {0} bits: generate an even size from 2048 to 8192 bits")]
    ParamsBits(u32),
    /// Responses outside the verifier's range, again and again: the
    /// factors given are too small or too unbalanced to be proven.
    #[error("the responses fall outside the verifier's range: the factors are too small or too unbalanced")]
    Unprovable,
    /// A proof that does not verify: n is not shown to have only large factors.
    #[error("the proof does not show that n has no small factor")]
    Rejected,
}

/// Why a public key is refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// n <= 0.
    #[error("n must be positive")]
    NotPositive,
    /// n is even.
    #[error("n is even")]
    Even,
    /// n is a square.
    #[error("n is a perfect square")]
    Square,
    /// n is prime.
    #[error("n is prime")]
    Prime,
    /// n has a factor below the trial-division bound.
    #[error("n has a small factor ({factor})")]
    SmallFactor {
        /// The product of the small factors found.
        factor: Integer,
    },
    /// The DJN base h^n is not usable.
    #[error("h^n {0}")]
    Base(BaseError),
    /// An operation that needs the DJN base on a key without one.
    #[error("this key has no DJN base h^n")]
    NoBase,
}

/// Why a DJN base h^n is refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BaseError {
    /// Not in (0, n^2).
    #[error("is not in (0, n^2)")]
    OutOfRange,
    /// gcd(h^n, n) != 1.
    #[error("shares a factor with n")]
    SharesFactor,
    /// h^n = +-1 mod n.
    #[error("is +-1 mod n: its powers do not re-randomize")]
    PlusMinusOne,
    /// An order without a large prime factor.
    #[error("has a small order: its powers take few values")]
    SmallOrder,
}

/// Why a private key is refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrivateKeyError {
    /// p = q.
    #[error("p and q are equal")]
    EqualPrimes,
    /// |p| != |q|.
    #[error("p and q differ in size")]
    SizesDiffer,
    /// A factor that is not prime.
    #[error("{0} is not prime")]
    NotPrime(&'static str),
    /// p and q so close that Fermat's method factors n.
    #[error("|p - q| is below 2^(|p| - {slack}): Fermat's method would factor n")]
    TooClose {
        /// The bits below |p| that |p - q| must reach.
        slack: u32,
    },
    /// gcd(n, phi(n)) != 1.
    #[error("gcd(n, phi(n)) is not 1")]
    NotCoprime,
    /// A stated n that is not p*q.
    #[error("n is not p*q")]
    WrongModulus,
}

/// Why a ciphertext is refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CiphertextError {
    /// c <= 0.
    #[error("not positive")]
    NotPositive,
    /// c >= n^2.
    #[error("not below n^2")]
    TooLarge,
    /// gcd(c, n) != 1.
    #[error("shares a factor with n")]
    SharesFactor,
    /// Bytes of the wrong width.
    #[error("{got} bytes where a {bits}-bit key's ciphertexts take {width}")]
    Width {
        /// Bytes given.
        got: usize,
        /// The key's size.
        bits: u32,
        /// Bytes of one ciphertext.
        width: usize,
    },
}

/// A plaintext outside the range it must fit.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RangeError {
    /// Beyond the key's centred range.
    #[error("a {value_bits}-bit value does not fit a {key_bits}-bit key's centred range (-n/2, n/2]")]
    Centred {
        /// Bits of the value.
        value_bits: u32,
        /// The key's size.
        key_bits: u32,
    },
    /// A decrypted plaintext beyond 64 bits.
    #[error("a {0}-bit plaintext does not fit i64")]
    I64(u32),
}

/// A slot value that does not fit.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlotOverflow {
    /// More values than slots.
    #[error("{values} values for a layout of {slots} slots")]
    TooManyValues {
        /// Values given.
        values: usize,
        /// Slots of the layout.
        slots: usize,
    },
    /// A value beyond its slot's width.
    #[error("value {value} in slot {slot} does not fit {slot_bits} bits (|v| < {bound})")]
    Value {
        /// The value.
        value: i64,
        /// Its slot.
        slot: usize,
        /// The slot width.
        slot_bits: u32,
        /// The bound |v| must stay below.
        bound: i64,
    },
    /// A plaintext with bits above its top slot.
    #[error(
        "the plaintext has {extra_bits} bits beyond its {slots} slots of {slot_bits} bits: a slot overflowed"
    )]
    Beyond {
        /// Bits above the top slot.
        extra_bits: u32,
        /// Slots of the layout.
        slots: usize,
        /// The slot width.
        slot_bits: u32,
    },
}

/// A slot layout that cannot exist.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlotLayoutError {
    /// A width outside the allowed range.
    #[error("slot width {slot_bits} is outside {min}..=63 bits")]
    Width {
        /// The width asked for.
        slot_bits: u32,
        /// The least width allowed.
        min: u32,
    },
    /// No slots.
    #[error("a layout needs at least one slot")]
    NoSlots,
    /// More slots than the key holds.
    #[error("{slots} slots of {slot_bits} bits do not fit a {key_bits}-bit key (at most {max})")]
    TooMany {
        /// Slots asked for.
        slots: usize,
        /// The slot width.
        slot_bits: u32,
        /// The key's size.
        key_bits: u32,
        /// The most slots that fit.
        max: usize,
    },
}

/// A malformed key file or encoded number.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// Text that is not a key file; where, not what (it may hold a prime).
    #[error("not a ppdnn key file: {what} at line {line} column {column}")]
    NotAKeyFile {
        /// The kind of problem.
        what: &'static str,
        /// Its line.
        line: usize,
        /// Its column.
        column: usize,
    },
    /// An unknown format name.
    #[error("format is {found:?}, expected {public:?} or {private:?}")]
    UnknownFormat {
        /// The name found.
        found: String,
        /// The public key files' name.
        public: &'static str,
        /// The private key files' name.
        private: &'static str,
    },
    /// A key file of another version.
    #[error("key file version {found} (this build reads {reads})")]
    Version {
        /// The version found.
        found: u32,
        /// The version this build reads.
        reads: u32,
    },
    /// A stated size that is not n's.
    #[error("bits says {stated} but n has {actual} bits")]
    Bits {
        /// The stated size.
        stated: u32,
        /// n's size.
        actual: u32,
    },
    /// A public key file where a private one is needed.
    #[error("this is a public key file; decryption needs the private key")]
    PublicOnly,
    /// A private key file without both factors.
    #[error("a private key file needs both p and q")]
    MissingFactor,
    /// A number that is not a decimal integer (shown abbreviated).
    #[error("{what} is not a decimal integer: {text:?}")]
    NotDecimal {
        /// The field.
        what: String,
        /// The text, abbreviated to 40 characters.
        text: String,
    },
    /// A secret number that is not a decimal integer (never shown).
    #[error("{0} is not a non-negative decimal integer")]
    NotSecretDecimal(&'static str),
    /// A randomness r that is not a unit in (0, n).
    #[error("r must be a unit in (0, n)")]
    NotAUnit,
}

/// Lengths that must agree and do not.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LengthError {
    /// Bases and weights of a linear combination.
    #[error("{bases} ciphertexts but {weights} weights")]
    Weights {
        /// Bases given.
        bases: usize,
        /// Weights given.
        weights: usize,
    },
    /// A row of weights of another length than the bases.
    #[error("row {row} has {weights} weights for {bases} ciphertexts")]
    Row {
        /// The row.
        row: usize,
        /// Its weights.
        weights: usize,
        /// Bases given.
        bases: usize,
    },
    /// A weight beyond a fixed-schedule combination's width.
    #[error("weight {index} of row {row} is not below 2^{bits} in magnitude")]
    WeightTooWide {
        /// The row.
        row: usize,
        /// The weight's index in it.
        index: usize,
        /// The width's bits.
        bits: u32,
    },
    /// A term naming a base that does not exist.
    #[error("base index {index} but only {bases} bases")]
    BaseIndex {
        /// The index named.
        index: usize,
        /// Bases there are.
        bases: usize,
    },
    /// DJN exponents beyond their bound.
    #[error("DJN exponents are below 2^{0}")]
    DjnExponent(u32),
    /// A product chain's inputs out of its bounds.
    #[error("product_chain_with: up to 8 values below an odd modulus > 1")]
    ProductChain,
}

/// An arithmetic backend that cannot run here, or an unknown name.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendError {
    /// A name that is no backend's.
    #[error("unknown arithmetic backend {0:?} (gmp, ifma or portable)")]
    Unknown(String),
    /// The backend named by PPDNN_ARITH.
    #[error("PPDNN_ARITH: {0}")]
    Environment(Box<Error>),
    /// IFMA on a CPU without it.
    #[error("this CPU has no AVX-512 IFMA (avx512ifma in /proc/cpuinfo)")]
    NoIfma,
    /// GMP on a target built without it (WebAssembly).
    #[error("this build has no GMP (WebAssembly): use the portable backend")]
    NoGmp,
}

/// A failure of the randomness the crate draws.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RandomError {
    /// The operating system's generator failed.
    #[error("{0}")]
    Os(getrandom::Error),
    /// A random h that is not a unit mod n^2 (cannot happen for a valid n).
    #[error("h is not a unit")]
    NotAUnit,
}

impl From<getrandom::Error> for Error {
    fn from(e: getrandom::Error) -> Self {
        Error::Random(RandomError::Os(e))
    }
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
