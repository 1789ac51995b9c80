#![no_main]
//! See ppdnn_fuzz_targets::onnx_import.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ppdnn_fuzz_targets::onnx_import(data));
