//! What a key keeps of the IFMA backend's state, built on first use: the
//! Montgomery constants in the lane layout and the DJN table. The batched
//! operations ([`crate::batch`]) fill and use it.

use std::sync::OnceLock;

use crate::ifma::FixedBaseLanes;
use crate::ifma::lanes::Modulus8;
use crate::ifma::single::SingleModulus;

/// A public key's IFMA state: n^2's Montgomery constants (all lanes) and the
/// DJN table in the lane layout, each built on first use.
#[derive(Default)]
pub(crate) struct PublicLanes {
    pub(crate) modulus: OnceLock<Modulus8>,
    pub(crate) table: OnceLock<FixedBaseLanes>,
    pub(crate) single: OnceLock<Option<SingleModulus>>,
}

impl PublicLanes {
    /// Whether the DJN table exists.
    pub(crate) fn has_table(&self) -> bool {
        self.table.get().is_some()
    }

    /// Bytes held (for the service's key-cache budget).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.modulus.get().map_or(0, Modulus8::memory_bytes)
            + self.single.get().map_or(0, |s| s.as_ref().map_or(0, SingleModulus::memory_bytes))
            + self.table.get().map_or(0, FixedBaseLanes::memory_bytes)
    }
}

/// A private key's IFMA state: the Montgomery constants of p^2 and q^2 in
/// alternate lanes. Secret: wiped on drop.
#[derive(Default)]
pub(crate) struct PrivateLanes {
    pub(crate) modulus: OnceLock<Modulus8>,
}
