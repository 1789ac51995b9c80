#![no_main]
//! See ppdnn_fuzz_targets::private_rounds.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ppdnn_fuzz_targets::private_rounds(data));
