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
pub use ppdnn_wire::{convert, pb, steps};
pub mod http;
pub mod server;
mod session;
pub mod status;
mod step_sessions;

pub use budget::QueryBudget;
pub use classifier::{Answer, Classifier, ClassifierOptions, RetryPolicy};
pub use client::{Classification, ClientError, RemoteClient};
pub use convert::WireError;
pub use server::{
    DEFAULT_MAX_MESSAGE_BYTES, InferenceService, LocalServer, RoundStream, ServedModel, ServerConfig,
    ServerTls, ServiceError, SessionGauge, inference_service, serve, serve_service, serve_service_with,
    service, service_with_gauge,
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
