//! # ppdnn-service
//!
//! ppdnn as a networked service: a tonic gRPC server that holds models and
//! evaluates encrypted inferences, and a client for it. The contract is
//! `proto/ppdnn/v1/ppdnn.proto`; docs/PROTOCOL.md describes it for third parties.

#![forbid(unsafe_code)]

pub mod budget;
pub mod classifier;
pub mod client;
mod config;
pub mod convert;
pub mod server;
mod session;
pub mod status;

/// The generated protobuf and gRPC types.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("ppdnn.v1");
}

pub use budget::QueryBudget;
pub use classifier::{Answer, Classifier, ClassifierOptions, RetryPolicy};
pub use client::{Classification, ClientError, RemoteClient};
pub use convert::WireError;
pub use server::{
    DEFAULT_MAX_MESSAGE_BYTES, InferenceService, LocalServer, RoundStream, ServedModel, ServerConfig,
    ServerTls, ServiceError, SessionGauge, inference_service, serve, serve_service, service,
    service_with_gauge,
};
pub use status::{CallError, ChunkError};

/// Runs `f` on `state` on tokio's blocking pool (the Paillier arithmetic must
/// not stall the runtime) and hands the state back with the result.
pub(crate) async fn on_blocking_thread<S, R>(
    mut state: S,
    f: impl FnOnce(&mut S) -> R + Send + 'static,
) -> Result<(S, R), tokio::task::JoinError>
where
    S: Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let r = f(&mut state);
        (state, r)
    })
    .await
}
