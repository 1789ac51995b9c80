//! Requantization: the fixed-point step that takes a layer's accumulators
//! back to the next layer's 8-bit activations, and the integer ranges it
//! works in.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// Largest activation value: activations are unsigned 8-bit.
pub const ACTIVATION_MAX: i64 = 255;
/// Largest weight magnitude: weights are symmetric 8-bit.
pub const WEIGHT_MAX: i64 = 127;
/// Bits of the requantization multipliers. Eight keep the integer model's
/// accuracy (99.05% on MNIST against 99.03% with 31; 90.30% on
/// Fashion-MNIST) and make the private mode's circuits 45% smaller: each constant multiplication costs an adder per
/// non-zero digit of the multiplier (`cargo run --release -p
/// ppdnn-protocol --example multiplier_widths` measures the trade-off).
pub const MULTIPLIER_BITS: u32 = 8;

/// A fixed-point requantization x' = clamp((y * multiplier + 2^(shift-1)) >> shift, 0, 255).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requant {
    /// Multiplier, in [2^(MULTIPLIER_BITS-1), 2^MULTIPLIER_BITS) unless the scale is tiny or huge.
    pub multiplier: i64,
    /// Right shift, 1..=62.
    pub shift: u32,
}

impl Requant {
    /// The fixed-point form of a positive real factor, with a multiplier of
    /// [`MULTIPLIER_BITS`] bits.
    pub fn from_real(m: f64) -> Result<Self> {
        Self::from_real_bits(m, MULTIPLIER_BITS)
    }

    /// The fixed-point form of a positive real factor with a multiplier of
    /// `bits` bits (1 to 31).
    pub fn from_real_bits(m: f64, bits: u32) -> Result<Self> {
        if !(m.is_finite() && m > 0.0) {
            return Err(ModelError::RequantFactor { factor: m }.into());
        }
        if !(1..=31).contains(&bits) {
            return Err(ModelError::MultiplierBits { bits }.into());
        }
        let mut shift = bits as i32 - m.log2().ceil() as i32;
        shift = shift.clamp(1, 62);
        let multiplier = (m * 2f64.powi(shift)).round() as i64;
        let r = Requant { multiplier, shift: shift as u32 };
        r.validate()?;
        Ok(r)
    }

    /// Checks the ranges that keep `apply` free of overflow.
    pub fn validate(&self) -> Result<()> {
        if !(1..=62).contains(&self.shift) || !(1..(1i64 << 32)).contains(&self.multiplier) {
            return Err(ModelError::RequantRange { multiplier: self.multiplier, shift: self.shift }.into());
        }
        Ok(())
    }

    /// Applies the requantization to a non-negative integer (negative values give 0).
    pub fn apply(&self, y: i64) -> i64 {
        let v = (y as i128 * self.multiplier as i128 + (1i128 << (self.shift - 1))) >> self.shift;
        v.clamp(0, ACTIVATION_MAX as i128) as i64
    }

    /// The real factor this approximates.
    pub fn real(&self) -> f64 {
        self.multiplier as f64 / 2f64.powi(self.shift as i32)
    }
}
