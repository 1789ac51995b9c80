//! # ppdnn-model
//!
//! The model side of ppdnn: data (IDX files, PNG images, .npy arrays), the
//! architecture of any sequential network ppdnn serves ([`network`];
//! LeNet-5 is one), float models, their integer quantization and the exact
//! integer forward pass that the encrypted pipeline must match bit for bit.

#![forbid(unsafe_code)]

pub mod dataset;
mod error;
pub mod float;
pub mod idx;
pub mod network;

pub use error::{DatasetError, Error, IdxError, ImageError, InputError, LayerError, ModelError, Result};
pub mod image_io;
pub mod modelfile;
pub mod npy;
pub mod quant;
pub mod requant;
pub mod requant_choice;
mod shape;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod zoo;
