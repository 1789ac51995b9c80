//! # ppdnn-model
//!
//! The model side of ppdnn: MNIST-format data (IDX files, PNG images), the
//! LeNet-5 architecture, its integer quantization and the exact integer
//! forward pass that the encrypted pipeline must match bit for bit.

#![forbid(unsafe_code)]

pub mod dataset;
mod error;
pub mod idx;
pub mod lenet;

pub use error::{Error, Result};
pub mod image_io;
pub mod modelfile;
pub mod npy;
pub mod quant;
