//! Packing several small signed integers into one plaintext (slots).
//!
//! A plaintext carries S slots of B bits: m = sum_i v_i * 2^(B*i), each v_i a
//! signed integer with |v_i| < 2^(B-1), and S*B <= |n| - 2 so that m always
//! lies in the key's centred range. Adding ciphertexts and multiplying them by
//! small integers act on every slot at once, as long as no slot overflows.

use crate::int::Integer;

use crate::error::{Error, Result, SlotLayoutError, SlotOverflow};

/// A slot layout: `slots` slots of `slot_bits` bits each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotCodec {
    slot_bits: u32,
    slots: usize,
}

impl SlotCodec {
    /// The largest slot width: values travel as i64.
    pub const MAX_SLOT_BITS: u32 = 63;

    /// A layout of `slots` slots of `slot_bits` bits for a key of `key_bits`
    /// bits; errors if 2 <= B <= 63 and 1 <= S with S*B <= key_bits - 2 fails.
    pub fn new(slot_bits: u32, slots: usize, key_bits: u32) -> Result<Self> {
        if !(2..=Self::MAX_SLOT_BITS).contains(&slot_bits) {
            return Err(Error::SlotLayout(SlotLayoutError::Width { slot_bits, min: 2 }));
        }
        if slots == 0 {
            return Err(Error::SlotLayout(SlotLayoutError::NoSlots));
        }
        let max = Self::max_slots(key_bits, slot_bits);
        if slots > max {
            return Err(Error::SlotLayout(SlotLayoutError::TooMany { slots, slot_bits, key_bits, max }));
        }
        Ok(SlotCodec { slot_bits, slots })
    }

    /// The most slots of `slot_bits` bits a `key_bits`-bit key can carry.
    pub fn max_slots(key_bits: u32, slot_bits: u32) -> usize {
        if slot_bits == 0 {
            return 0;
        }
        (key_bits.saturating_sub(2) / slot_bits) as usize
    }

    /// Slot width B in bits.
    pub fn slot_bits(&self) -> u32 {
        self.slot_bits
    }

    /// Slot count S.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The bound every slot value must stay strictly below in magnitude: 2^(B-1).
    pub fn slot_bound(&self) -> i64 {
        1i64 << (self.slot_bits - 1)
    }

    /// Packs up to S values (missing ones are 0) into one signed plaintext.
    pub fn encode(&self, values: &[i64]) -> Result<Integer> {
        if values.len() > self.slots {
            return Err(Error::SlotOverflow(SlotOverflow::TooManyValues {
                values: values.len(),
                slots: self.slots,
            }));
        }
        let bound = self.slot_bound();
        let mut m = Integer::new();
        for (i, &v) in values.iter().enumerate().rev() {
            if v >= bound || v <= -bound {
                return Err(Error::SlotOverflow(SlotOverflow::Value {
                    value: v,
                    slot: i,
                    slot_bits: self.slot_bits,
                    bound,
                }));
            }
            m <<= self.slot_bits;
            m += v;
        }
        Ok(m)
    }

    /// Unpacks all S slots from a signed plaintext, peeling from the low end
    /// with centred remainders. Errors if anything is left above the top slot
    /// (an overflow that carried out of the layout).
    pub fn decode(&self, m: &Integer) -> Result<Vec<i64>> {
        let b = self.slot_bits;
        let half = Integer::from(1u32) << (b - 1);
        let full = Integer::from(1u32) << b;
        let mut rest = m.clone();
        let mut out = Vec::with_capacity(self.slots);
        for _ in 0..self.slots {
            let mut r = Integer::from(rest.keep_bits_ref(b));
            if r >= half {
                r -= &full;
            }
            rest -= &r;
            rest >>= b;
            // |r| <= 2^(B-1) <= 2^62, so it fits an i64.
            out.push(r.to_i64().expect("a centred slot value of at most 63 bits fits an i64"));
        }
        if rest != 0 {
            return Err(Error::SlotOverflow(SlotOverflow::Beyond {
                extra_bits: rest.significant_bits(),
                slots: self.slots,
                slot_bits: b,
            }));
        }
        Ok(out)
    }
}
