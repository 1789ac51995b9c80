#![no_main]
//! See ppdnn_fuzz_targets::round_message.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ppdnn_fuzz_targets::round_message(data));
