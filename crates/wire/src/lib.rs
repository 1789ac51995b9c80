//! # ppdnn-wire
//!
//! The contract between a ppdnn server and its clients, as Rust types: the
//! messages and the gRPC client and server stubs generated from
//! `proto/ppdnn/v1/ppdnn.proto` (no transport: the native service adds
//! tonic's, the browser client gRPC-web's), and the conversions between
//! them and the library's types ([`convert`]). docs/PROTOCOL.md describes
//! the contract for third parties.
//!
//! ```
//! use ppdnn_protocol::Mode;
//! use ppdnn_wire::convert::{mode_from_pb, mode_to_pb};
//!
//! assert_eq!(mode_from_pb(mode_to_pb(Mode::Private)).unwrap(), Mode::Private);
//! assert!(mode_from_pb(7).is_err());
//! ```

#![forbid(unsafe_code)]

pub mod convert;
pub mod steps;

/// The generated protobuf and gRPC types.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("ppdnn.v1");
}

pub use convert::WireError;
