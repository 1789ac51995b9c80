#![no_main]
//! See ppdnn_fuzz_targets::key_decoders.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ppdnn_fuzz_targets::key_decoders(data));
