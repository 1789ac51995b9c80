#![no_main]
//! See ppdnn_fuzz_targets::server_stream.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ppdnn_fuzz_targets::server_stream(data));
