#![no_main]
//! See ppdnn_fuzz_targets::plan_json.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ppdnn_fuzz_targets::plan_json(data));
