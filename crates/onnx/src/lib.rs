//! # ppdnn-onnx
//!
//! Reads sequential and residual networks from ONNX, the format every
//! framework exports, into ppdnn's float models, and writes them back.
//!
//! [`import`] accepts the operators a sequential CNN or MLP is made of:
//! `Conv` (any kernel, stride and explicit padding; one group, no
//! dilation), `Gemm`, `MatMul` (with a following `Add` as its bias),
//! `BatchNormalization` (folded into the preceding convolution or dense
//! layer), `Relu`, `MaxPool` and `AveragePool` (no padding),
//! `GlobalAveragePool`, `Flatten` and
//! flattening `Reshape`, `Identity` and `Dropout` (no-ops at inference),
//! scalar or per-channel `Sub`/`Add`/`Mul`/`Div` on the input (input
//! normalization, folded into the first layer, as is the normalization
//! given in [`ImportOptions`]) and a final `Softmax` or `LogSoftmax` (dropped: the
//! integer model's logits give the same argmax). It also reads ResNet's
//! blocks as PyTorch exports them: an `Add` of a convolution's output
//! (after its batch normalization, before its `Relu`) and a shortcut, an
//! earlier layer's activation (identity) or a 1x1 `Conv` of it without
//! padding and with its own `BatchNormalization` (a projection, e.g. of
//! stride 2), becomes that layer's
//! [`Shortcut`](ppdnn_model::network::Shortcut). Anything else (other
//! branches, `Concat`, other operators) is refused with the node's name
//! and operator. [`export`] writes a float model as opset-13 ONNX that
//! onnxruntime runs, and that imports back unchanged.
//!
//! ```
//! use ppdnn_model::float::FloatModel;
//! use ppdnn_model::network::{FloatParams, Layer, Linear, Network, Shape};
//!
//! let net = Network::new(
//!     Shape::new(1, 4, 4),
//!     vec![Layer { name: "fc".into(), linear: Linear::Dense { outputs: 2 }, relu: false, pool: None, shortcut: None }],
//! )?;
//! let params = vec![FloatParams::new(vec![0.5; 32], vec![0.0, 1.0])];
//! let model = FloatModel::new(net, params)?;
//! let bytes = ppdnn_onnx::export(&model);
//! let back = ppdnn_onnx::import(&bytes, &ppdnn_onnx::ImportOptions::default())?;
//! assert_eq!(back.model, model);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod error;
mod export;
mod graph;
mod import;
mod tensor;

/// The ONNX protobuf messages (generated from the vendored `onnx.proto`).
#[allow(clippy::all, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

pub use error::{Error, Result};
pub use export::export;
pub use import::{ImportOptions, Imported, InputScale, import};
