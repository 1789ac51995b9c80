//! What a server is built from: its limits and policies, its models, its
//! TLS identity, and what can keep it from starting or serving.

use std::time::Duration;

use ppdnn_model::modelfile::ModelFile;
use ppdnn_paillier::KeyPolicy;
use ppdnn_protocol::{Mode, Output};

use crate::budget::QueryBudget;

/// What can keep a server from being built or from serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// No model was given.
    #[error("no model to serve")]
    NoModel,
    /// A limit of zero sessions, or no key size.
    #[error("max_sessions and key_bits must be non-empty")]
    EmptyLimits,
    /// No protocol mode was given.
    #[error("no protocol mode to offer")]
    NoMode,
    /// A per-client share of zero sessions.
    #[error("max_sessions_per_client must be at least 1")]
    ZeroShare,
    /// No output a private inference may ask for.
    #[error("no output to release (logits, label or both)")]
    NoOutput,
    /// The fast mode on a server that withholds the logits.
    #[error(
        "the fast mode gives the client every layer's accumulators, so it cannot be offered by a server that releases only labels"
    )]
    FastWithoutLogits,
    /// A query budget outside the sizes a server accepts.
    #[error("a query budget needs 1 to 1,000,000,000 queries and a period from 1 s to 10 years")]
    EmptyBudget,
    /// A key size the key policy does not accept.
    #[error(transparent)]
    KeySize(#[from] ppdnn_paillier::KeySizeError),
    /// The server's ring-Pedersen parameters could not be made.
    #[error("making the factor-proof parameters: {0}")]
    FactorParams(#[source] ppdnn_paillier::Error),
    /// Two models under one name.
    #[error("two models are named {0:?}")]
    DuplicateName(String),
    /// A model that has no plan for a key size and mode.
    #[error("{model}: {source}")]
    Plan {
        /// The model's name.
        model: String,
        /// Why it has no plan.
        source: Box<ppdnn_protocol::Error>,
    },
    /// A model whose private-mode rounds exceed the garbled-material cap.
    #[error(
        "{model}: the private mode at {bits} bits moves {bytes} bytes of material (garbled tables, OT messages, pads) in one round, over the server's cap of {cap} (raise --max-garbled-mib)"
    )]
    GarbledCap {
        /// The model's name.
        model: String,
        /// The key size.
        bits: u32,
        /// Bytes of its largest round.
        bytes: usize,
        /// The server's cap.
        cap: usize,
    },
    /// The compute pool's threads could not be started.
    #[error("the compute pool: {0}")]
    ComputePool(#[from] rayon::ThreadPoolBuildError),
    /// A TLS certificate or key that does not load.
    #[error("TLS configuration: {0}")]
    Tls(#[source] tonic::transport::Error),
    /// A bad HTTP setting (CORS origin, page folder).
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    /// The transport failed while serving.
    #[error("{0}")]
    Transport(#[from] tonic::transport::Error),
    /// The server's task failed (a bug).
    #[error("the server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The largest gRPC message either side accepts unless told otherwise
/// (gRPC's own default, Python's grpcio's too): the server and the client
/// must agree on it.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 << 20;

/// Limits and policies of a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Concurrent inferences; more get RESOURCE_EXHAUSTED.
    pub max_sessions: usize,
    /// Concurrent inferences from one client address (None: no per-client
    /// share). Behind a load balancer every client has the balancer's address,
    /// so leave it off there.
    pub max_sessions_per_client: Option<usize>,
    /// Longest wait for a client's next message; then the session is dropped.
    pub idle_timeout: Duration,
    /// Longest wait for Start after a stream opens. Streams waiting for their
    /// Start hold no session permit, but at most `4 * max_sessions` of them
    /// may wait at once (and, with `max_sessions_per_client`, at most that
    /// many from one address).
    pub start_timeout: Duration,
    /// Longest a whole inference may take; then it is dropped with
    /// DEADLINE_EXCEEDED, whatever the client keeps sending.
    pub session_deadline: Duration,
    /// Serve the unpacked layout too (it costs the server 8x the CPU and a
    /// 16 MiB table per client key, so it is off unless asked for).
    pub allow_unpacked: bool,
    /// Memory budget of the cache of client keys' re-randomization tables.
    pub key_cache_bytes: usize,
    /// Threads of the server's own compute pool for the homomorphic
    /// arithmetic (0: one per core). A pool of its own keeps the sessions'
    /// work together and apart from anything else in the process.
    pub compute_threads: usize,
    /// Largest gRPC message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Largest round chunk sent, in bytes (whole ciphertexts).
    pub max_chunk_bytes: usize,
    /// Key sizes accepted.
    pub key_bits: Vec<u32>,
    /// The protocol modes offered (default: private only, so that a server
    /// does not give its model away unless its operator says so).
    pub modes: Vec<Mode>,
    /// Private mode: the most bytes of material (garbled tables, OT
    /// messages, pads) one round may carry either way (a session holds one
    /// round's at a time). A model whose rounds need more is not served in
    /// the private mode.
    pub max_garbled_bytes: usize,
    /// Private mode: SoftSpokenOT's group width for every plan, 4 or 8
    /// (None: the planner's choice by session size). 8 sends half the OT
    /// extension's bytes for 8 times its PRG work on both sides.
    pub ot_group_bits: Option<u32>,
    /// The ring-Pedersen parameters clients prove their keys' factors
    /// against (None: made at start-up). Replicas behind one balancer must
    /// share them: a client reads them from one replica and may start its
    /// inference on another.
    pub factor_params: Option<std::sync::Arc<ppdnn_paillier::RingPedersen>>,
    /// Validation policy for client keys.
    pub key_policy: KeyPolicy,
    /// What a private inference may ask to learn (default: the logits or
    /// the label). A server that releases only labels offers no fast mode,
    /// which gives every layer's accumulators away.
    pub outputs: Vec<Output>,
    /// Completed inferences allowed per client key and per client address
    /// (None: no budget). Behind a load balancer every client has the
    /// balancer's address, so the per-address budget then counts them all.
    pub query_budget: Option<QueryBudget>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_sessions: 16,
            max_sessions_per_client: None,
            idle_timeout: Duration::from_secs(30),
            start_timeout: Duration::from_secs(10),
            session_deadline: Duration::from_secs(120),
            allow_unpacked: false,
            key_cache_bytes: 64 << 20,
            compute_threads: 0,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_chunk_bytes: 1 << 20,
            key_bits: KeyPolicy::STANDARD_SIZES.to_vec(),
            modes: vec![Mode::Private],
            max_garbled_bytes: 64 << 20,
            ot_group_bits: None,
            key_policy: KeyPolicy::PRODUCTION,
            outputs: vec![Output::Logits, Output::Label],
            query_budget: None,
            factor_params: None,
        }
    }
}

/// The server's TLS certificate chain and private key, PEM-encoded.
#[derive(Clone)]
pub struct ServerTls {
    /// Certificate chain (PEM).
    pub cert_pem: Vec<u8>,
    /// Private key (PEM).
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls { .. }")
    }
}

/// A model to serve under a name.
#[derive(Debug, Clone)]
pub struct ServedModel {
    /// The name clients ask for.
    pub name: String,
    /// The model.
    pub file: ModelFile,
}
