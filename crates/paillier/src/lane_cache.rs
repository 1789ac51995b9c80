//! What a key keeps of the IFMA and portable backends' state, built on
//! first use: the Montgomery constants (in the lane layout for IFMA) and
//! the DJN tables. The batched operations ([`crate::batch`]) fill and use it.

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
    /// n^2 for the portable backend.
    pub(crate) portable_modulus: OnceLock<crate::portable::Modulus>,
    /// The portable backend's DJN table.
    pub(crate) portable_table: OnceLock<crate::portable::FixedBase>,
}

impl PublicLanes {
    /// Whether the DJN table exists.
    pub(crate) fn has_table(&self) -> bool {
        self.table.get().is_some() || self.portable_table.get().is_some()
    }

    /// Bytes held (for the service's key-cache budget).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.modulus.get().map_or(0, Modulus8::memory_bytes)
            + self.single.get().map_or(0, |s| s.as_ref().map_or(0, SingleModulus::memory_bytes))
            + self.table.get().map_or(0, FixedBaseLanes::memory_bytes)
            + self.portable_table.get().map_or(0, crate::portable::FixedBase::memory_bytes)
    }
}

/// A private key's IFMA state: the Montgomery constants of p^2 and q^2 in
/// alternate lanes. Secret: wiped on drop.
#[derive(Default)]
pub(crate) struct PrivateLanes {
    pub(crate) modulus: OnceLock<Modulus8>,
    /// p^2 and q^2 for the portable backend.
    pub(crate) portable: OnceLock<[crate::portable::Modulus; 2]>,
}
