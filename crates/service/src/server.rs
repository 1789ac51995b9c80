//! The gRPC server: holds models, runs one protocol session per Infer stream.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ppdnn_paillier::KeyPolicy;
use ppdnn_protocol::private::Schedule;
use ppdnn_protocol::{Evaluator, KeyCache, Mode, Output, Packing};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

use tower::Layer as _;

use crate::budget::Budgets;
pub use crate::config::{DEFAULT_MAX_MESSAGE_BYTES, ServedModel, ServerConfig, ServerTls, ServiceError};
use crate::convert::{mode_from_pb, mode_to_pb, output_to_pb, packing_from_pb};
use crate::http::{HttpOptions, WebPage};
use crate::pb;
use crate::pb::inference_server::{Inference, InferenceServer};
use crate::session::{ProvenKeys, Session, evaluator_for, find_entry};
use crate::status::CallError;

/// A served model: its plans (evaluators) for each key size, packing and mode.
pub(crate) struct Entry {
    pub(crate) name: String,
    dataset: &'static str,
    pub(crate) digest: String,
    classes: Vec<String>,
    evaluators: Vec<((u32, Packing, Mode), Evaluator)>,
}

impl Entry {
    /// The evaluator of a key size, packing and mode, if the entry has one.
    pub(crate) fn evaluator(&self, bits: u32, packing: Packing, mode: Mode) -> Option<&Evaluator> {
        self.evaluators
            .iter()
            .find(|((b, p, m), _)| *b == bits && *p == packing && *m == mode)
            .map(|(_, e)| e)
    }
}

/// Bits of the ring-Pedersen modulus a server makes at start-up: as large
/// as the largest key it serves, and at least 2048.
fn factor_params_bits(key_bits: &[u32]) -> u32 {
    key_bits.iter().copied().max().unwrap_or(2048).max(2048).next_multiple_of(2)
}

/// The Inference service.
pub struct InferenceService {
    models: Arc<Vec<Entry>>,
    pub(crate) config: Arc<ServerConfig>,
    keys: Arc<KeyCache>,
    pool: Arc<rayon::ThreadPool>,
    permits: Arc<Semaphore>,
    pending_starts: Arc<Semaphore>,
    per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
    /// Streams waiting for their Start, per client address.
    opening_per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
    budgets: Option<Budgets>,
    proven: ProvenKeys,
    /// The ring-Pedersen parameters clients prove their keys' factors against.
    factor_params: Arc<ppdnn_paillier::RingPedersen>,
    /// The open InferStep sessions.
    pub(crate) steps: crate::step_sessions::StepSessions,
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
    if config.outputs.is_empty() {
        return Err(ServiceError::NoOutput);
    }
    if config.modes.contains(&Mode::Fast) && !config.outputs.contains(&Output::Logits) {
        return Err(ServiceError::FastWithoutLogits);
    }
    if config.query_budget.is_some_and(|b| {
        !(1..=1_000_000_000).contains(&b.queries)
            || !(Duration::from_secs(1)..=Duration::from_secs(10 * 366 * 86_400)).contains(&b.period)
    }) {
        return Err(ServiceError::EmptyBudget);
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
                    let plan_error = |e| ServiceError::Plan { model: m.name.clone(), source: Box::new(e) };
                    let mut ev =
                        Evaluator::for_mode(quant.clone(), bits, packing, mode).map_err(plan_error)?;
                    if let (Mode::Private, Some(k)) = (mode, config.ot_group_bits) {
                        ev = ev.with_ot_group_bits(k).map_err(plan_error)?;
                    }
                    let ev = ev.with_key_cache(key_cache.clone());
                    // Every round's material either way (label mode's rounds
                    // include the logits mode's).
                    let largest = ev.circuits().map(|c| {
                        let s = Schedule::new(ev.plan(), c, Output::Label);
                        let client = (0..s.client_rounds()).map(|k| s.client_message(k).1);
                        let server = (0..=s.client_rounds()).map(|k| s.server_message(k).1);
                        client.chain(server).max().unwrap_or(0)
                    });
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
        opening_per_client: Arc::default(),
        budgets: config.query_budget.map(Budgets::new),
        proven: ProvenKeys::default(),
        factor_params: match &config.factor_params {
            Some(p) => p.clone(),
            None => Arc::new(
                ppdnn_paillier::RingPedersen::generate(factor_params_bits(&config.key_bits))
                    .map_err(ServiceError::FactorParams)?,
            ),
        },
        config: Arc::new(config),
        steps: Default::default(),
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
    serve_service_with(listener, svc, tls, HttpOptions::default(), shutdown, grace).await
}

/// [`serve_service`] with HTTP settings: gRPC-web is always answered on the
/// same port (for browsers), CORS for `http.cors_origins`, and the page at
/// `/` when `http.web` names one.
pub async fn serve_service_with(
    listener: tokio::net::TcpListener,
    svc: InferenceServer<InferenceService>,
    tls: Option<ServerTls>,
    http: HttpOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> Result<(), ServiceError> {
    http.check()?;
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<InferenceServer<InferenceService>>().await;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut builder = tonic::transport::Server::builder().accept_http1(true);
    if let Some(tls) = tls {
        let identity = tonic::transport::Identity::from_pem(tls.cert_pem, tls.key_pem);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(ServiceError::Tls)?;
    }
    // gRPC-web on the gRPC services only: the page's plain HTTP requests
    // must not meet it (it refuses any other HTTP/1.1 request).
    let web = tonic_web::GrpcWebLayer::new();
    let mut router = tonic::service::Routes::new(web.layer(health))
        .add_service(web.layer(svc))
        .prepare()
        .into_axum_router()
        .route_layer(axum::middleware::from_fn(crate::http::grpc_content_only));
    if let Some(web) = http.web.clone() {
        let page = match web {
            WebPage::Dir(dir) => {
                axum::Router::new().fallback_service(tower_http::services::ServeDir::new(dir))
            }
            WebPage::Embedded(files) => {
                axum::Router::new().fallback(move |uri: http::Uri| crate::http::embedded(files, uri))
            }
        };
        router = router.fallback_service(page.layer(axum::middleware::from_fn(crate::http::isolate_page)));
    }
    let server = builder
        .layer(tower::util::option_layer(http.cors()?))
        .add_routes(tonic::service::Routes::from(router))
        .serve_with_incoming_shutdown(incoming, async move {
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
        let packing = packing_from_pb(req.packing).map_err(CallError::from)?;
        let mode = mode_from_pb(req.mode).map_err(CallError::from)?;
        let ev = evaluator_for(entry, &self.config, bits, packing, mode)?;
        let plan = ev.plan();
        Ok(Response::new(pb::ModelDescription {
            name: entry.name.clone(),
            dataset: entry.dataset.into(),
            digest: entry.digest.clone(),
            input_shape: plan.input_shape.iter().map(|&x| x as u32).collect(),
            classes: entry.classes.clone(),
            supported_key_bits: self.config.key_bits.clone(),
            factor_params: self.factor_params.to_bytes(),
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
                query_budget: self.config.query_budget.map_or(0, |b| b.queries),
                budget_period_ms: self.config.query_budget.map_or(0, |b| b.period.as_millis() as u64),
            }),
            modes: self.config.modes.iter().map(|&m| mode_to_pb(m)).collect(),
            outputs: self.config.outputs.iter().map(|&o| output_to_pb(o)).collect(),
        }))
    }

    type InferStream = RoundStream;

    async fn infer(
        &self,
        request: Request<Streaming<pb::InferRequest>>,
    ) -> Result<Response<RoundStream>, Status> {
        let ip = request.remote_addr().map(|a| client_address(a.ip()));
        Ok(Response::new(self.infer_stream(request.into_inner(), ip)?))
    }

    async fn infer_step(
        &self,
        request: Request<pb::InferStepRequest>,
    ) -> Result<Response<pb::InferStepResponse>, Status> {
        let ip = request.remote_addr().map(|a| client_address(a.ip()));
        Ok(Response::new(self.run_step(request.into_inner(), ip).await?))
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
        let permit =
            self.pending_starts.clone().try_acquire_owned().map_err(|_| CallError::TooManyOpening)?;
        // With a per-client share, an address may keep as many streams
        // waiting as it may run sessions: else a few silent streams from one
        // address would fill the places and turn every other address away.
        let share = match (self.config.max_sessions_per_client, ip) {
            (Some(max), Some(ip)) => Some(
                crate::session::ClientShare::take(&self.opening_per_client, ip, max)
                    .ok_or(CallError::OpeningShare { max })?,
            ),
            _ => None,
        };
        let waiting = crate::session::Waiting { _permit: permit, _share: share };
        let (tx, rx) = mpsc::channel(4);
        let session = Session {
            models: self.models.clone(),
            config: self.config.clone(),
            keys: self.keys.clone(),
            pool: self.pool.clone(),
            permits: self.permits.clone(),
            per_client: self.per_client.clone(),
            budgets: self.budgets.clone(),
            proven: self.proven.clone(),
            factor_params: self.factor_params.clone(),
            ip,
        };
        tokio::spawn(session.run(inbound, waiting, tx));
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    fn entry(&self, name: &str) -> Result<&Entry, CallError> {
        find_entry(&self.models, name)
    }
}

/// The address a client is counted under (its share of the sessions, its
/// query budget): IPv4 as it is; IPv6 by its /64 prefix, since one customer
/// commonly holds a whole /64 and could use a fresh address per session.
pub(crate) fn client_address(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

fn millis(d: Duration) -> u32 {
    d.as_millis().min(u32::MAX as u128) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_counted_by_ipv4_address_and_ipv6_slash_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client_address(ip("192.0.2.7")), ip("192.0.2.7"));
        // An IPv4 client seen through an IPv6 socket is the same IPv4 client.
        assert_eq!(client_address(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        // Every address of one /64 is one client; the next /64 is another.
        assert_eq!(client_address(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(client_address(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")), ip("2001:db8:1:2::"));
        assert_ne!(client_address(ip("2001:db8:1:3::1")), client_address(ip("2001:db8:1:2::1")));
    }
}
