//! Giving the C heap's free memory back to the operating system.
//!
//! GMP keeps its limbs (every ciphertext's digits) in the C heap, as do the
//! Rust allocations of a program on the system allocator. glibc keeps what
//! a burst of large allocations freed in its arenas, so a server that has
//! served a large model holds that peak long after its sessions ended.
//! [`release_free_memory`] hands the free pages back.

/// Returns the free memory of every heap arena to the operating system
/// (glibc's `malloc_trim(0)`); whether any was returned. A no-op elsewhere.
/// It takes the allocator's locks in turn, so call it when the memory
/// will not be needed soon (when the last session has ended), not on a
/// hot path.
pub fn release_free_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim takes no pointer and touches only the
    // allocator's own free lists, under its own locks; it is safe to call
    // from any thread at any time.
    unsafe {
        libc::malloc_trim(0) == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn freed_memory_can_be_released() {
        let blocks: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 64 << 10]).collect();
        drop(blocks);
        // Whether pages were returned depends on the heap's state; the call
        // must simply be harmless, and repeatable.
        super::release_free_memory();
        super::release_free_memory();
    }
}
