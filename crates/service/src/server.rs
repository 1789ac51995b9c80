//! The gRPC server: holds models, runs one protocol session per Infer stream.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppdnn_model::modelfile::ModelFile;
use ppdnn_paillier::KeyPolicy;
use ppdnn_protocol::{Evaluator, Packing, RoundMessage, ServerSession};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

use crate::convert::{chunks, key_from_pb, packing_from_pb};
use crate::on_blocking_thread;
use crate::pb::inference_server::{Inference, InferenceServer};
use crate::pb::{self, infer_request};

/// Limits and policies of a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Concurrent inferences; more get RESOURCE_EXHAUSTED.
    pub max_sessions: usize,
    /// Longest wait for a client's next message; then the session is dropped.
    pub idle_timeout: Duration,
    /// Largest gRPC message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Largest round chunk sent, in bytes (whole ciphertexts).
    pub max_chunk_bytes: usize,
    /// Key sizes accepted.
    pub key_bits: Vec<u32>,
    /// Validation policy for client keys.
    pub key_policy: KeyPolicy,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_sessions: 16,
            idle_timeout: Duration::from_secs(30),
            max_message_bytes: 4 << 20,
            max_chunk_bytes: 1 << 20,
            key_bits: vec![2048, 3072],
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
    evaluators: Vec<((u32, Packing), Evaluator)>,
}

impl Entry {
    fn evaluator(&self, bits: u32, packing: Packing) -> Option<&Evaluator> {
        self.evaluators.iter().find(|((b, p), _)| *b == bits && *p == packing).map(|(_, e)| e)
    }
}

/// The Inference service.
pub struct InferenceService {
    models: Arc<Vec<Entry>>,
    config: Arc<ServerConfig>,
    permits: Arc<Semaphore>,
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
) -> Result<InferenceServer<InferenceService>, String> {
    service_with_gauge(models, config).map(|(s, _)| s)
}

/// Like [`service`], also returning a gauge of the sessions in progress.
pub fn service_with_gauge(
    models: Vec<ServedModel>,
    config: ServerConfig,
) -> Result<(InferenceServer<InferenceService>, SessionGauge), String> {
    if models.is_empty() {
        return Err("no model to serve".into());
    }
    if config.max_sessions == 0 || config.key_bits.is_empty() {
        return Err("max_sessions and key_bits must be non-empty".into());
    }
    let mut entries = Vec::new();
    for m in models {
        if entries.iter().any(|e: &Entry| e.name == m.name) {
            return Err(format!("two models are named {:?}", m.name));
        }
        let quant = Arc::new(m.file.quant.clone());
        let mut evaluators = Vec::new();
        for &bits in &config.key_bits {
            for packing in [Packing::Packed, Packing::Unpacked] {
                let ev =
                    Evaluator::new(quant.clone(), bits, packing).map_err(|e| format!("{}: {e}", m.name))?;
                evaluators.push(((bits, packing), ev));
            }
        }
        let digest = evaluators[0].1.plan().model_digest.clone();
        entries.push(Entry {
            name: m.name,
            dataset: m.file.dataset.name(),
            digest,
            classes: m.file.dataset.class_names().iter().map(|s| s.to_string()).collect(),
            evaluators,
        });
    }
    let max_message = config.max_message_bytes;
    let gauge =
        SessionGauge { permits: Arc::new(Semaphore::new(config.max_sessions)), max: config.max_sessions };
    let svc = InferenceService {
        models: Arc::new(entries),
        permits: gauge.permits.clone(),
        config: Arc::new(config),
    };
    let server = InferenceServer::new(svc)
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    Ok((server, gauge))
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
) -> Result<(), String> {
    serve_service(listener, service(models, config)?, tls, shutdown, grace).await
}

/// Serves an already built service (see [`service_with_gauge`]).
pub async fn serve_service(
    listener: tokio::net::TcpListener,
    svc: InferenceServer<InferenceService>,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> Result<(), String> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<InferenceServer<InferenceService>>().await;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        let identity = tonic::transport::Identity::from_pem(tls.cert_pem, tls.key_pem);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(|e| format!("TLS configuration: {e}"))?;
    }
    let server =
        builder.add_service(health).add_service(svc).serve_with_incoming_shutdown(incoming, async move {
            let _ = stop_rx.await;
        });
    let mut server = Box::pin(server);
    tokio::select! {
        r = &mut server => return r.map_err(|e| e.to_string()),
        _ = shutdown => {}
    }
    info!("shutting down: finishing sessions in flight (up to {} s)", grace.as_secs());
    let _ = stop_tx.send(());
    match tokio::time::timeout(grace, server).await {
        Ok(r) => r.map_err(|e| e.to_string()),
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
    task: tokio::task::JoinHandle<Result<(), String>>,
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
    pub async fn stop(self) -> Result<(), String> {
        let _ = self.stop.send(());
        self.task.await.map_err(|e| e.to_string())?
    }
}

type RoundStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::Round, Status>> + Send>>;

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
        let bits = if req.key_bits == 0 { 2048 } else { req.key_bits };
        let packing = packing_from_pb(req.packing).map_err(Status::invalid_argument)?;
        let ev = entry.evaluator(bits, packing).ok_or_else(|| bad_key_bits(&self.config, bits))?;
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
                idle_timeout_ms: self.config.idle_timeout.as_millis() as u32,
                max_sessions: self.config.max_sessions as u32,
                max_chunk_bytes: self.config.max_chunk_bytes as u64,
            }),
        }))
    }

    type InferStream = RoundStream;

    async fn infer(
        &self,
        request: Request<Streaming<pb::InferRequest>>,
    ) -> Result<Response<RoundStream>, Status> {
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "the server is at its limit of {} concurrent inferences; try again later",
                self.config.max_sessions
            ))
        })?;
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        let models = self.models.clone();
        let config = self.config.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let started = Instant::now();
            match run_session(&models, &config, &mut inbound, &tx).await {
                Ok(stats) => info!(
                    model = %stats.model,
                    bits = stats.bits,
                    rounds = stats.rounds,
                    bytes_in = stats.bytes_in,
                    bytes_out = stats.bytes_out,
                    ms = started.elapsed().as_millis() as u64,
                    "inference"
                ),
                Err(status) => {
                    warn!(code = ?status.code(), message = status.message(), ms = started.elapsed().as_millis() as u64, "inference failed");
                    let _ = tx.send(Err(status)).await;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

impl InferenceService {
    fn entry(&self, name: &str) -> Result<&Entry, Status> {
        find_entry(&self.models, name)
    }
}

fn bad_key_bits(config: &ServerConfig, bits: u32) -> Status {
    Status::invalid_argument(format!("key size {bits} is not accepted (accepted: {:?})", config.key_bits))
}

fn find_entry<'a>(models: &'a [Entry], name: &str) -> Result<&'a Entry, Status> {
    if name.is_empty() {
        return models.first().ok_or_else(|| Status::not_found("no models"));
    }
    models.iter().find(|e| e.name == name).ok_or_else(|| {
        let names: Vec<&str> = models.iter().map(|e| e.name.as_str()).collect();
        Status::not_found(format!("unknown model {name:?} (this server has: {})", names.join(", ")))
    })
}

struct SessionStats {
    model: String,
    bits: u32,
    rounds: usize,
    bytes_in: usize,
    bytes_out: usize,
}

/// The next client message, or an error status if the client is silent,
/// sends an error, or closes the stream.
async fn next(
    inbound: &mut Streaming<pb::InferRequest>,
    idle: Duration,
    what: &str,
) -> Result<infer_request::Kind, Status> {
    match tokio::time::timeout(idle, inbound.message()).await {
        Err(_) => Err(Status::deadline_exceeded(format!(
            "no message for {} s while waiting for {what}; the session was dropped",
            idle.as_secs_f64()
        ))),
        Ok(Err(status)) => Err(status),
        Ok(Ok(None)) => {
            Err(Status::cancelled(format!("the client closed the stream while the server waited for {what}")))
        }
        Ok(Ok(Some(msg))) => msg.kind.ok_or_else(|| Status::invalid_argument("an empty message")),
    }
}

async fn run_session(
    models: &[Entry],
    config: &ServerConfig,
    inbound: &mut Streaming<pb::InferRequest>,
    tx: &mpsc::Sender<Result<pb::Round, Status>>,
) -> Result<SessionStats, Status> {
    let infer_request::Kind::Start(start) = next(inbound, config.idle_timeout, "Start").await? else {
        return Err(Status::invalid_argument("the first message of an inference must be Start"));
    };
    let entry = find_entry(models, &start.model)?;
    let packing = packing_from_pb(start.packing).map_err(Status::invalid_argument)?;
    let key_pb = start.key.ok_or_else(|| Status::invalid_argument("Start carries no public key"))?;
    let key = key_from_pb(&key_pb, config.key_policy).map_err(Status::invalid_argument)?;
    if !config.key_bits.contains(&key.bits()) {
        return Err(bad_key_bits(config, key.bits()));
    }
    if !start.model_digest.is_empty() && start.model_digest != entry.digest {
        return Err(Status::failed_precondition(format!(
            "model {} has digest {}, not the {} the client expects",
            entry.name, entry.digest, start.model_digest
        )));
    }
    let ev = entry
        .evaluator(key.bits(), packing)
        .ok_or_else(|| Status::invalid_argument("no plan for this key size"))?;
    let plan = ev.plan().clone();
    let width = key.ciphertext_bytes();
    let ev = ev.clone();
    let mut session: ServerSession = tokio::task::spawn_blocking(move || ev.session(key))
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let mut stats =
        SessionStats { model: entry.name.clone(), bits: plan.key_bits, rounds: 0, bytes_in: 0, bytes_out: 0 };
    for (round, layer) in plan.layers.iter().enumerate() {
        let expected = layer.input_ciphertexts * width;
        let mut data = Vec::with_capacity(expected);
        loop {
            let what = format!("round {round}");
            let infer_request::Kind::Round(chunk) = next(inbound, config.idle_timeout, &what).await? else {
                return Err(Status::invalid_argument(format!("a second Start arrived in round {round}")));
            };
            if chunk.round as usize != round {
                return Err(Status::invalid_argument(format!(
                    "round {}: a message for round {} arrived where round {round} was expected",
                    round, chunk.round
                )));
            }
            if data.len() + chunk.ciphertexts.len() > expected {
                return Err(Status::invalid_argument(format!(
                    "round {round}: more than the plan's {} ciphertexts ({expected} bytes)",
                    layer.input_ciphertexts
                )));
            }
            data.extend_from_slice(&chunk.ciphertexts);
            if chunk.last {
                break;
            }
        }
        stats.bytes_in += data.len();
        let message = RoundMessage { round, data };
        let (s, result) = on_blocking_thread(session, move |session| session.handle(&message))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        session = s;
        let answer = result.map_err(|e| Status::invalid_argument(e.to_string()))?;
        stats.bytes_out += answer.len_bytes();
        for c in chunks(&answer, width, config.max_chunk_bytes) {
            if tx.send(Ok(c)).await.is_err() {
                return Err(Status::cancelled(format!("the client went away in round {round}")));
            }
        }
        stats.rounds += 1;
    }
    Ok(stats)
}
