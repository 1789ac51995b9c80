//! The gRPC server: holds models, runs one protocol session per Infer stream.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ppdnn_model::modelfile::ModelFile;
use ppdnn_paillier::KeyPolicy;
use ppdnn_protocol::{Evaluator, KeyCache, Mode, Output, Packing, RoundMessage, ServerSession};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

use crate::convert::{chunks, key_numbers, mode_from_pb, mode_to_pb, output_from_pb, packing_from_pb, shown};
use crate::on_blocking_thread;
use crate::pb::inference_server::{Inference, InferenceServer};
use crate::pb::{self, infer_request};

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
    /// A key size the key policy does not accept.
    #[error(transparent)]
    KeySize(#[from] ppdnn_paillier::Error),
    /// Two models under one name.
    #[error("two models are named {0:?}")]
    DuplicateName(String),
    /// A model that has no plan for a key size and mode.
    #[error("{model}: {source}")]
    Plan {
        /// The model's name.
        model: String,
        /// Why it has no plan.
        source: ppdnn_protocol::Error,
    },
    /// A model whose private-mode rounds exceed the garbled-material cap.
    #[error(
        "{model}: the private mode at {bits} bits sends {bytes} bytes of garbled circuit in a round, over the server's cap of {cap} (raise --max-garbled-mib)"
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
    /// The transport failed while serving.
    #[error("{0}")]
    Transport(#[from] tonic::transport::Error),
    /// The server's task failed (a bug).
    #[error("the server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A client's malformed wire value as the status that says so.
fn invalid(e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(e.to_string())
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
    /// may wait at once.
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
    /// Private mode: the most garbled-circuit bytes a session may send in
    /// one round (the session holds one round's at a time). A model whose
    /// circuits need more is not served in the private mode.
    pub max_garbled_bytes: usize,
    /// Validation policy for client keys.
    pub key_policy: KeyPolicy,
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
            key_policy: KeyPolicy::PRODUCTION,
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

struct Entry {
    name: String,
    dataset: &'static str,
    digest: String,
    classes: Vec<String>,
    evaluators: Vec<((u32, Packing, Mode), Evaluator)>,
}

impl Entry {
    fn evaluator(&self, bits: u32, packing: Packing, mode: Mode) -> Option<&Evaluator> {
        self.evaluators
            .iter()
            .find(|((b, p, m), _)| *b == bits && *p == packing && *m == mode)
            .map(|(_, e)| e)
    }
}

/// The Inference service.
pub struct InferenceService {
    models: Arc<Vec<Entry>>,
    config: Arc<ServerConfig>,
    keys: Arc<KeyCache>,
    pool: Arc<rayon::ThreadPool>,
    permits: Arc<Semaphore>,
    pending_starts: Arc<Semaphore>,
    per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One client address's share of the sessions, released on drop.
struct ClientShare {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl ClientShare {
    fn take(counts: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, max: usize) -> Option<Self> {
        let mut map = counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientShare { counts: counts.clone(), ip })
    }
}

impl Drop for ClientShare {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// What a session holds while it runs: its permit and its client's share.
struct SessionGuard {
    _permit: OwnedSemaphorePermit,
    _share: Option<ClientShare>,
}

/// Counts the inferences in progress on a server.
#[derive(Debug, Clone)]
pub struct SessionGauge {
    permits: Arc<Semaphore>,
    max: usize,
}

impl SessionGauge {
    /// Inferences in progress now.
    pub fn active(&self) -> usize {
        self.max - self.permits.available_permits()
    }
}

/// Builds the gRPC service for `models` (at least one) under `config`.
pub fn service(
    models: Vec<ServedModel>,
    config: ServerConfig,
) -> Result<InferenceServer<InferenceService>, ServiceError> {
    service_with_gauge(models, config).map(|(s, _)| s)
}

/// Like [`service`], also returning a gauge of the sessions in progress.
pub fn service_with_gauge(
    models: Vec<ServedModel>,
    config: ServerConfig,
) -> Result<(InferenceServer<InferenceService>, SessionGauge), ServiceError> {
    let max_message = config.max_message_bytes;
    let (svc, gauge) = inference_service(models, config)?;
    let server = InferenceServer::new(svc)
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    Ok((server, gauge))
}

/// The service itself, not wrapped for tonic (see [`InferenceService::infer_stream`]).
pub fn inference_service(
    models: Vec<ServedModel>,
    config: ServerConfig,
) -> Result<(InferenceService, SessionGauge), ServiceError> {
    if models.is_empty() {
        return Err(ServiceError::NoModel);
    }
    if config.max_sessions == 0 || config.key_bits.is_empty() {
        return Err(ServiceError::EmptyLimits);
    }
    if config.modes.is_empty() {
        return Err(ServiceError::NoMode);
    }
    if config.max_sessions_per_client == Some(0) {
        return Err(ServiceError::ZeroShare);
    }
    for &bits in &config.key_bits {
        config.key_policy.check(bits)?;
    }
    let key_cache = Arc::new(KeyCache::new(64, config.key_cache_bytes));
    let packings: &[Packing] =
        if config.allow_unpacked { &[Packing::Packed, Packing::Unpacked] } else { &[Packing::Packed] };
    let mut entries = Vec::new();
    for m in models {
        if entries.iter().any(|e: &Entry| e.name == m.name) {
            return Err(ServiceError::DuplicateName(m.name));
        }
        let quant = Arc::new(m.file.quant.clone());
        let mut evaluators = Vec::new();
        for &bits in &config.key_bits {
            for &mode in &config.modes {
                for &packing in packings {
                    if mode == Mode::Private && packing != Packing::Packed {
                        continue;
                    }
                    let ev = Evaluator::for_mode(quant.clone(), bits, packing, mode)
                        .map_err(|source| ServiceError::Plan { model: m.name.clone(), source })?
                        .with_key_cache(key_cache.clone());
                    let largest = ev
                        .plan()
                        .layers
                        .iter()
                        .filter_map(|l| l.circuit.as_ref())
                        .map(|c| c.garbled_bytes)
                        .max();
                    if let Some(bytes) = largest.filter(|&b| b > config.max_garbled_bytes) {
                        let (model, cap) = (m.name.clone(), config.max_garbled_bytes);
                        return Err(ServiceError::GarbledCap { model, bits, bytes, cap });
                    }
                    evaluators.push(((bits, packing, mode), ev));
                }
            }
        }
        let digest = evaluators[0].1.plan().model_digest.clone();
        entries.push(Entry {
            name: m.name,
            dataset: m.file.dataset.name(),
            digest,
            classes: m.file.class_names(),
            evaluators,
        });
    }
    let gauge =
        SessionGauge { permits: Arc::new(Semaphore::new(config.max_sessions)), max: config.max_sessions };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.compute_threads)
        .thread_name(|i| format!("ppdnn-compute-{i}"))
        .build()?;
    let svc = InferenceService {
        models: Arc::new(entries),
        keys: key_cache,
        pool: Arc::new(pool),
        permits: gauge.permits.clone(),
        pending_starts: Arc::new(Semaphore::new(4 * config.max_sessions)),
        per_client: Arc::default(),
        config: Arc::new(config),
    };
    Ok((svc, gauge))
}

/// Serves on `listener` until `shutdown` completes, with the standard gRPC
/// health service beside Inference, over TLS when `tls` is given. Sessions in
/// flight when shutdown begins are given `grace` to finish, then cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    models: Vec<ServedModel>,
    config: ServerConfig,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> Result<(), ServiceError> {
    serve_service(listener, service(models, config)?, tls, shutdown, grace).await
}

/// Serves an already built service (see [`service_with_gauge`]).
pub async fn serve_service(
    listener: tokio::net::TcpListener,
    svc: InferenceServer<InferenceService>,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> Result<(), ServiceError> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<InferenceServer<InferenceService>>().await;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        let identity = tonic::transport::Identity::from_pem(tls.cert_pem, tls.key_pem);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(ServiceError::Tls)?;
    }
    let server =
        builder.add_service(health).add_service(svc).serve_with_incoming_shutdown(incoming, async move {
            let _ = stop_rx.await;
        });
    let mut server = Box::pin(server);
    tokio::select! {
        r = &mut server => return Ok(r?),
        _ = shutdown => {}
    }
    info!("shutting down: finishing sessions in flight (up to {} s)", grace.as_secs());
    let _ = stop_tx.send(());
    match tokio::time::timeout(grace, server).await {
        Ok(r) => Ok(r?),
        Err(_) => {
            warn!("sessions still in flight after the grace period were cancelled");
            Ok(())
        }
    }
}

/// A server on a free loopback port in this process, for demos, benchmarks
/// and tests. Dropping it stops the server (sessions in flight get the grace
/// period given to [`LocalServer::start`]).
#[derive(Debug)]
pub struct LocalServer {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ServiceError>>,
}

impl LocalServer {
    /// Binds 127.0.0.1 on a free port and serves `svc` there, over TLS when
    /// `tls` is given.
    pub async fn start(
        svc: InferenceServer<InferenceService>,
        tls: Option<ServerTls>,
        grace: Duration,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(serve_service(listener, svc, tls, shutdown, grace));
        Ok(LocalServer { addr, stop, task })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(self) -> Result<(), ServiceError> {
        let _ = self.stop.send(());
        self.task.await?
    }
}

/// The server's side of an Infer stream.
pub type RoundStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::Round, Status>> + Send>>;

#[tonic::async_trait]
impl Inference for InferenceService {
    async fn list_models(
        &self,
        _request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let models = self
            .models
            .iter()
            .map(|e| pb::ModelSummary {
                name: e.name.clone(),
                dataset: e.dataset.into(),
                digest: e.digest.clone(),
                modes: self.config.modes.iter().map(|&m| mode_to_pb(m)).collect(),
            })
            .collect();
        Ok(Response::new(pb::ListModelsResponse { models }))
    }

    async fn describe_model(
        &self,
        request: Request<pb::DescribeModelRequest>,
    ) -> Result<Response<pb::ModelDescription>, Status> {
        let req = request.into_inner();
        let entry = self.entry(&req.model)?;
        let bits = if req.key_bits == 0 { KeyPolicy::DEFAULT_BITS } else { req.key_bits };
        let packing = packing_from_pb(req.packing).map_err(invalid)?;
        let mode = mode_from_pb(req.mode).map_err(invalid)?;
        let ev = evaluator_for(entry, &self.config, bits, packing, mode)?;
        let plan = ev.plan();
        Ok(Response::new(pb::ModelDescription {
            name: entry.name.clone(),
            dataset: entry.dataset.into(),
            digest: entry.digest.clone(),
            input_shape: plan.input_shape.iter().map(|&x| x as u32).collect(),
            classes: entry.classes.clone(),
            supported_key_bits: self.config.key_bits.clone(),
            plan_json: plan.to_json(),
            limits: Some(pb::Limits {
                max_message_bytes: self.config.max_message_bytes as u64,
                idle_timeout_ms: millis(self.config.idle_timeout),
                max_sessions: self.config.max_sessions as u32,
                max_chunk_bytes: self.config.max_chunk_bytes as u64,
                session_deadline_ms: millis(self.config.session_deadline),
                start_timeout_ms: millis(self.config.start_timeout),
                unpacked_offered: self.config.allow_unpacked,
                max_garbled_bytes: self.config.max_garbled_bytes as u64,
            }),
            modes: self.config.modes.iter().map(|&m| mode_to_pb(m)).collect(),
        }))
    }

    type InferStream = RoundStream;

    async fn infer(
        &self,
        request: Request<Streaming<pb::InferRequest>>,
    ) -> Result<Response<RoundStream>, Status> {
        let ip = request.remote_addr().map(|a| a.ip());
        Ok(Response::new(self.infer_stream(request.into_inner(), ip)?))
    }
}

impl InferenceService {
    /// Runs one inference over any stream of client messages, exactly as an
    /// Infer call from `ip` would (limits, timeouts and validation included),
    /// and returns the stream of the server's answers. For in-process use
    /// and for fuzzing the server's handling of arbitrary messages.
    pub fn infer_stream<S>(&self, inbound: S, ip: Option<IpAddr>) -> Result<RoundStream, Status>
    where
        S: Stream<Item = Result<pb::InferRequest, Status>> + Unpin + Send + 'static,
    {
        // A stream that has not sent Start yet holds no session permit, only
        // one of a bounded number of places to wait (for start_timeout at most).
        let waiting = self.pending_starts.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted("too many streams are opening at once; try again later")
        })?;
        let (tx, rx) = mpsc::channel(4);
        let session = Session {
            models: self.models.clone(),
            config: self.config.clone(),
            keys: self.keys.clone(),
            pool: self.pool.clone(),
            permits: self.permits.clone(),
            per_client: self.per_client.clone(),
            ip,
        };
        tokio::spawn(session.run(inbound, waiting, tx));
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    fn entry(&self, name: &str) -> Result<&Entry, Status> {
        find_entry(&self.models, name)
    }
}

fn millis(d: Duration) -> u32 {
    d.as_millis().min(u32::MAX as u128) as u32
}

fn bad_key_bits(config: &ServerConfig, bits: u32) -> Status {
    let served: Vec<String> = config.key_bits.iter().map(u32::to_string).collect();
    Status::invalid_argument(format!(
        "key size {bits} is not accepted (accepted: {} bits)",
        served.join(", ")
    ))
}

/// The evaluator for a key size and packing, or the status that says why there is none.
fn evaluator_for<'a>(
    entry: &'a Entry,
    config: &ServerConfig,
    bits: u32,
    packing: Packing,
    mode: Mode,
) -> Result<&'a Evaluator, Status> {
    if !config.key_bits.contains(&bits) {
        return Err(bad_key_bits(config, bits));
    }
    if !config.modes.contains(&mode) {
        let offered: Vec<&str> = config.modes.iter().map(|m| m.name()).collect();
        return Err(Status::failed_precondition(format!(
            "this server does not offer the {} mode (it offers: {})",
            mode.name(),
            offered.join(", ")
        )));
    }
    if mode == Mode::Private && packing != Packing::Packed {
        return Err(Status::invalid_argument("the private mode uses the packed layout only"));
    }
    if packing == Packing::Unpacked && !config.allow_unpacked {
        return Err(Status::failed_precondition(
            "this server does not offer the unpacked layout (its operator can enable it with serve --allow-unpacked)",
        ));
    }
    entry
        .evaluator(bits, packing, mode)
        .ok_or_else(|| Status::internal("no evaluator for an accepted key size"))
}

fn find_entry<'a>(models: &'a [Entry], name: &str) -> Result<&'a Entry, Status> {
    if name.is_empty() {
        return models.first().ok_or_else(|| Status::not_found("no models"));
    }
    models.iter().find(|e| e.name == name).ok_or_else(|| {
        let names: Vec<&str> = models.iter().map(|e| e.name.as_str()).collect();
        Status::not_found(format!("unknown model {} (this server has: {})", shown(name), names.join(", ")))
    })
}

/// Maps a protocol error to a status: the server's own fault is INTERNAL,
/// anything wrong with what the client sent is INVALID_ARGUMENT.
fn protocol_status(e: ppdnn_protocol::Error) -> Status {
    if e.is_internal() { Status::internal(e.to_string()) } else { Status::invalid_argument(e.to_string()) }
}

struct SessionStats {
    model: String,
    bits: u32,
    rounds: usize,
    bytes_in: usize,
    bytes_out: usize,
}

/// Everything one Infer stream needs, moved into its task.
struct Session {
    models: Arc<Vec<Entry>>,
    config: Arc<ServerConfig>,
    keys: Arc<KeyCache>,
    pool: Arc<rayon::ThreadPool>,
    permits: Arc<Semaphore>,
    per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: Option<IpAddr>,
}

impl Session {
    async fn run<S>(
        self,
        mut inbound: S,
        waiting: OwnedSemaphorePermit,
        tx: mpsc::Sender<Result<pb::Round, Status>>,
    ) where
        S: Stream<Item = Result<pb::InferRequest, Status>> + Unpin,
    {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.config.session_deadline;
        let outcome = tokio::time::timeout_at(deadline, self.serve(&mut inbound, waiting, &tx)).await;
        let outcome = outcome.unwrap_or_else(|_| {
            Err(Status::deadline_exceeded(format!(
                "the inference exceeded the server's deadline of {} s per session and was dropped",
                self.config.session_deadline.as_secs_f64()
            )))
        });
        let ms = started.elapsed().as_millis() as u64;
        match outcome {
            Ok(stats) => info!(
                model = %stats.model,
                bits = stats.bits,
                rounds = stats.rounds,
                bytes_in = stats.bytes_in,
                bytes_out = stats.bytes_out,
                ms,
                "inference"
            ),
            Err(status) => {
                warn!(code = ?status.code(), message = %shown(status.message()), ms, "inference failed");
                let _ = tx.send(Err(status)).await;
            }
        }
    }

    /// Takes a session permit (and the client's share) once Start has arrived.
    fn admit(&self) -> Result<SessionGuard, Status> {
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "the server is at its limit of {} concurrent inferences; try again later",
                self.config.max_sessions
            ))
        })?;
        let share = match (self.config.max_sessions_per_client, self.ip) {
            (Some(max), Some(ip)) => Some(ClientShare::take(&self.per_client, ip, max).ok_or_else(|| {
                Status::resource_exhausted(format!(
                    "this client address already has {max} inferences in progress, its share of the server"
                ))
            })?),
            _ => None,
        };
        Ok(SessionGuard { _permit: permit, _share: share })
    }

    async fn serve<S>(
        &self,
        inbound: &mut S,
        waiting: OwnedSemaphorePermit,
        tx: &mpsc::Sender<Result<pb::Round, Status>>,
    ) -> Result<SessionStats, Status>
    where
        S: Stream<Item = Result<pb::InferRequest, Status>> + Unpin,
    {
        let config = &self.config;
        let first = next(inbound, config.start_timeout.min(config.idle_timeout), "Start", config).await?;
        drop(waiting);
        let infer_request::Kind::Start(start) = first else {
            return Err(Status::invalid_argument("the first message of an inference must be Start"));
        };
        let _guard = self.admit()?;
        let entry = find_entry(&self.models, &start.model)?;
        let packing = packing_from_pb(start.packing).map_err(invalid)?;
        let key_pb = start.key.ok_or_else(|| Status::invalid_argument("Start carries no public key"))?;
        let (n, hn) = key_numbers(&key_pb).map_err(invalid)?;
        // The sizes served are checked before the (costly) validation of the key.
        let bits = n.significant_bits();
        if !config.key_bits.contains(&bits) {
            return Err(bad_key_bits(config, bits));
        }
        let key = match self.keys.find(&n, hn.as_ref()) {
            // A key this server validated and still caches.
            Some(key) => key,
            // Validation runs a primality test on up to 4,096 bits: not on the runtime's threads.
            None => {
                let policy = config.key_policy;
                tokio::task::spawn_blocking(move || ppdnn_paillier::PublicKey::new(n, hn, policy))
                    .await
                    .map_err(|e| Status::internal(e.to_string()))?
                    .map_err(|e| Status::invalid_argument(e.to_string()))?
            }
        };
        if !start.model_digest.is_empty() && start.model_digest != entry.digest {
            return Err(Status::failed_precondition(format!(
                "model {} has digest {}, not the {} the client expects",
                entry.name,
                entry.digest,
                shown(&start.model_digest)
            )));
        }
        let mode = mode_from_pb(start.mode).map_err(invalid)?;
        let ev = evaluator_for(entry, config, key.bits(), packing, mode)?.clone();
        let mut stats = SessionStats {
            model: entry.name.clone(),
            bits: ev.plan().key_bits,
            rounds: 0,
            bytes_in: 0,
            bytes_out: 0,
        };
        // The fast mode always ends with the logits (its Start's output is not read).
        let output = match mode {
            Mode::Fast => Output::Logits,
            Mode::Private => output_from_pb(start.output).map_err(invalid)?,
        };
        let (session, opening) = ev.start(key, output).map_err(protocol_status)?;
        self.run_rounds(inbound, tx, session, opening, &mut stats).await?;
        Ok(stats)
    }

    /// The session's rounds, in either mode: the server's opening message
    /// where the mode has one, then one answer per client round. The
    /// session's re-randomizers are computed in the background from the
    /// moment the session allows it, in the time the client spends between rounds.
    async fn run_rounds<S>(
        &self,
        inbound: &mut S,
        tx: &mpsc::Sender<Result<pb::Round, Status>>,
        mut session: ServerSession,
        opening: Option<RoundMessage>,
        stats: &mut SessionStats,
    ) -> Result<(), Status>
    where
        S: Stream<Item = Result<pb::InferRequest, Status>> + Unpin,
    {
        let config = &self.config;
        let width = session.key().ciphertext_bytes();
        let mut filling = false;
        if let Some(opening) = opening {
            filling = self.fill_ahead(&session);
            send_round(tx, &opening, width, config, stats).await?;
        }
        while !session.finished() {
            let round = session.next_round();
            let (count, material) = session.expected();
            if material > config.max_garbled_bytes {
                return Err(Status::internal("a round's garbled material exceeds the server's cap"));
            }
            let message = receive_round(inbound, config, round, (count, material), width).await?;
            stats.bytes_in += message.len_bytes();
            let (s, answer) = self.compute(session, move |session| session.handle(&message)).await?;
            session = s;
            if !filling {
                filling = self.fill_ahead(&session);
            }
            send_round(tx, &answer, width, config, stats).await?;
        }
        Ok(())
    }

    /// Starts filling the session's stock of re-randomizers in the
    /// background if the session allows it now; returns whether it did.
    fn fill_ahead(&self, session: &ServerSession) -> bool {
        if !session.may_fill_ahead() {
            return false;
        }
        let stock = Arc::downgrade(session.randomness());
        let need = session.randomness_needed();
        self.pool.spawn(move || fill_in_background(&stock, need));
        true
    }

    /// Runs one round's arithmetic on the session in the server's compute
    /// pool, off the runtime's threads.
    async fn compute<S: Send + 'static>(
        &self,
        session: S,
        handle: impl FnOnce(&mut S) -> ppdnn_protocol::Result<RoundMessage> + Send + 'static,
    ) -> Result<(S, RoundMessage), Status> {
        let pool = self.pool.clone();
        let (session, result) = on_blocking_thread(session, move |session| pool.install(|| handle(session)))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok((session, result.map_err(protocol_status)?))
    }
}

/// Sends a round in chunks.
async fn send_round(
    tx: &mpsc::Sender<Result<pb::Round, Status>>,
    answer: &RoundMessage,
    width: usize,
    config: &ServerConfig,
    stats: &mut SessionStats,
) -> Result<(), Status> {
    stats.bytes_out += answer.len_bytes();
    for c in chunks(answer, width, config.max_chunk_bytes) {
        if tx.send(Ok(c)).await.is_err() {
            return Err(Status::cancelled(format!("the client went away in round {}", answer.round)));
        }
    }
    stats.rounds += 1;
    Ok(())
}

/// Collects one round's chunks: each for this round, ciphertexts (whole
/// ones) before material, none empty unless it is the last, no more than
/// the plan's (ciphertexts, material bytes).
async fn receive_round<S>(
    inbound: &mut S,
    config: &ServerConfig,
    round: usize,
    (count, material): (usize, usize),
    width: usize,
) -> Result<RoundMessage, Status>
where
    S: Stream<Item = Result<pb::InferRequest, Status>> + Unpin,
{
    let expected = count * width;
    let mut message = RoundMessage { round, data: Vec::with_capacity(expected), material: Vec::new() };
    loop {
        let what = format!("round {round}");
        // The session's overall deadline is enforced around the whole session.
        let infer_request::Kind::Round(chunk) = next(inbound, config.idle_timeout, &what, config).await?
        else {
            return Err(Status::invalid_argument(format!("a second Start arrived in round {round}")));
        };
        let bad = |m: String| Err(Status::invalid_argument(format!("round {round}: {m}")));
        if chunk.round as usize != round {
            return bad(format!(
                "a message for round {} arrived where round {round} was expected",
                chunk.round
            ));
        }
        if !chunk.ciphertexts.len().is_multiple_of(width) {
            return bad(format!(
                "a chunk of {} bytes is not a whole number of {width}-byte ciphertexts",
                chunk.ciphertexts.len()
            ));
        }
        if chunk.ciphertexts.is_empty() && chunk.material.is_empty() && !chunk.last {
            return bad("an empty chunk that is not the last; every chunk but the last carries ciphertexts or material".into());
        }
        if !chunk.ciphertexts.is_empty() && !message.material.is_empty() {
            return bad("ciphertexts after material: a round sends its ciphertexts first".into());
        }
        if message.data.len() + chunk.ciphertexts.len() > expected {
            return bad(format!("more than the plan's {count} ciphertexts ({expected} bytes)"));
        }
        if message.material.len() + chunk.material.len() > material {
            return bad(format!("more than the plan's {material} bytes of material"));
        }
        message.data.extend_from_slice(&chunk.ciphertexts);
        if message.material.capacity() == 0 && !chunk.material.is_empty() {
            message.material.reserve_exact(material);
        }
        message.material.extend_from_slice(&chunk.material);
        if chunk.last {
            return Ok(message);
        }
    }
}

/// The next client message, or an error status if the client is silent,
/// sends an error, sends something undecodable or oversized, or closes the stream.
async fn next<S>(
    inbound: &mut S,
    idle: Duration,
    what: &str,
    config: &ServerConfig,
) -> Result<infer_request::Kind, Status>
where
    S: Stream<Item = Result<pb::InferRequest, Status>> + Unpin,
{
    match tokio::time::timeout(idle, inbound.next()).await {
        Err(_) => Err(Status::deadline_exceeded(format!(
            "no message for {} s while waiting for {what}; the session was dropped",
            idle.as_secs_f64()
        ))),
        Ok(Some(Err(status))) => Err(inbound_status(status, config)),
        Ok(None) => {
            Err(Status::cancelled(format!("the client closed the stream while the server waited for {what}")))
        }
        Ok(Some(Ok(msg))) => msg.kind.ok_or_else(|| Status::invalid_argument("an empty message")),
    }
}

/// The status for a failure to receive a client message: tonic reports an
/// oversized message as OUT_OF_RANGE and undecodable bytes as INTERNAL; the
/// contract (docs/PROTOCOL.md) says RESOURCE_EXHAUSTED and INVALID_ARGUMENT.
fn inbound_status(status: Status, config: &ServerConfig) -> Status {
    match status.code() {
        tonic::Code::OutOfRange => Status::resource_exhausted(format!(
            "a message exceeds the server's limit of {} bytes",
            config.max_message_bytes
        )),
        tonic::Code::Internal => {
            Status::invalid_argument(format!("an undecodable message: {}", shown(status.message())))
        }
        _ => status,
    }
}

/// Fills a session's stock of re-randomizers up to `need`, in batches of two
/// full lane sets (one per core of a 2-core machine; batches of 4 left half
/// of every IFMA exponentiation idle), stopping as soon as the session is gone.
fn fill_in_background(stock: &std::sync::Weak<ppdnn_paillier::RandomnessPool>, need: usize) {
    let mut made = 0;
    while made < need {
        let Some(stock) = stock.upgrade() else { return };
        let batch = (2 * ppdnn_paillier::LANES).min(need - made);
        if stock.fill(batch).is_err() {
            return;
        }
        made += batch;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_own_faults_are_internal_and_the_clients_are_invalid_argument() {
        let internal = ppdnn_protocol::Error::Internal(ppdnn_protocol::InternalError::OutputCount {
            layer: "conv1".into(),
            got: 3,
            expected: 4,
        });
        assert_eq!(protocol_status(internal).code(), tonic::Code::Internal);
        let random = ppdnn_protocol::Error::Crypto(ppdnn_paillier::Error::Random("no entropy".into()));
        assert_eq!(protocol_status(random).code(), tonic::Code::Internal);
        let bad = ppdnn_protocol::Error::Message {
            round: 2,
            problem: ppdnn_protocol::MessageError::CiphertextCount { got: 3, expected: 4 },
        };
        let status = protocol_status(bad);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "round 2: 3 ciphertexts where the plan says 4");
    }

    #[test]
    fn transport_statuses_become_the_documented_ones() {
        let config = ServerConfig::default();
        let big = inbound_status(Status::out_of_range("decoded message length too large"), &config);
        assert_eq!(big.code(), tonic::Code::ResourceExhausted);
        assert!(big.message().contains("4194304 bytes"), "{}", big.message());
        let junk = inbound_status(Status::internal("failed to decode Protobuf message"), &config);
        assert_eq!(junk.code(), tonic::Code::InvalidArgument);
        let gone = inbound_status(Status::cancelled("client went away"), &config);
        assert_eq!(gone.code(), tonic::Code::Cancelled);
    }
}
