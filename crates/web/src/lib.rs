//! # ppdnn-web
//!
//! ppdnn's client in the browser: the same protocol code as the native
//! client (encoding, packing, Paillier on the portable backend, the private
//! mode's garbled circuits and OT), compiled to WebAssembly, speaking
//! gRPC-web to `ppdnn serve` through InferStep. [`core`] holds the work and
//! builds everywhere; the JavaScript bindings (`WebClient`) exist on
//! wasm32 only. The page that uses them is in `web/` (scripts/build-web.sh).
//!
//! ```
//! use ppdnn_web::core::{Core, parse_mode};
//!
//! assert!(parse_mode("private").is_ok());
//! assert!(parse_mode("secret").unwrap_err().to_string().contains("fast or private"));
//! assert!(Core::default().key_json().is_err(), "no key yet");
//! ```

#![forbid(unsafe_code)]

pub mod core;

#[cfg(target_arch = "wasm32")]
mod bindings;

/// `initThreadPool(n)` for JavaScript: starts rayon's pool on `n` Web
/// Workers sharing this module's memory (the threaded build only).
#[cfg(all(target_arch = "wasm32", feature = "threads"))]
pub use wasm_bindgen_rayon::init_thread_pool;
