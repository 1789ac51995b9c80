//! # ppdnn-service
//!
//! ppdnn as a networked service: a tonic gRPC server that holds models and
//! evaluates encrypted inferences, and a client for it. The contract is
//! `proto/ppdnn/v1/ppdnn.proto`; docs/PROTOCOL.md describes it for third parties.

pub mod client;
mod convert;
pub mod server;

/// The generated protobuf and gRPC types.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("ppdnn.v1");
}

pub use client::{Classification, RemoteClient};
pub use server::{
    ServedModel, ServerConfig, ServerTls, SessionGauge, serve, serve_service, service, service_with_gauge,
};
