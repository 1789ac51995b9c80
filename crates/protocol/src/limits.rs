//! Limits on a plan from outside (a client validates the server's plan
//! before allocating anything from it).

/// Most layers (rounds) of a plan.
pub const MAX_LAYERS: usize = 64;
/// Most ciphertexts one round may carry in either direction.
pub const MAX_ROUND_CIPHERTEXTS: usize = 1 << 18;
/// Key sizes a plan may name.
pub const KEY_BITS: std::ops::RangeInclusive<u32> = 256..=8192;
/// Largest side or channel count of the input.
pub const MAX_INPUT_DIM: usize = 4096;
