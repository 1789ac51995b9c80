//! The gRPC client: fetches a model's plan and runs encrypted inferences.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ppdnn_model::network::argmax;
use ppdnn_paillier::{Integer, PrivateKey, RandomnessPool};
use ppdnn_protocol::{ClientSession, ClientStep, Mode, Output, Packing, Plan, RoundMessage, SessionPlan};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::convert::{chunks, key_to_pb, mode_to_pb, output_to_pb, packing_to_pb};
use crate::on_blocking_thread;
use crate::pb::inference_client::InferenceClient;
use crate::pb::{self, infer_request};

/// A raw gRPC client of the Inference service at `url` (for tools and
/// tests that speak the protocol themselves; [`RemoteClient`] runs it).
pub async fn grpc_client(url: &str) -> Result<InferenceClient<Channel>, tonic::transport::Error> {
    Ok(InferenceClient::new(tonic::transport::Endpoint::from_shared(url.to_string())?.connect().await?))
}

/// What can go wrong on the client side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server could not be reached.
    #[error("cannot connect to {url}: {message}")]
    Connect {
        /// The address tried.
        url: String,
        /// Why it failed (the transport's words).
        message: String,
    },
    /// A server that gave no factor-proof parameters for a private inference.
    #[error("the server gave no factor-proof parameters (ModelDescription.factor_params)")]
    NoFactorParams,
    /// The server answered with an error status.
    #[error("server: {} ({:?})", .0.message(), .0.code())]
    Status(#[from] tonic::Status),
    /// The protocol failed on the client (a bad answer from the server, for instance).
    #[error(transparent)]
    Protocol(#[from] ppdnn_protocol::Error),
    /// The request stream closed before the inference began.
    #[error("stream closed")]
    StreamClosed,
    /// The server went silent.
    #[error("no answer from the server for {seconds} s in round {round}")]
    NoAnswer {
        /// The round awaited.
        round: usize,
        /// How long the client waited.
        seconds: f64,
    },
    /// The server ended the stream before the inference did.
    #[error("the server closed the stream in round {round}")]
    ServerClosed {
        /// The round awaited.
        round: usize,
    },
    /// A chunk that does not fit the answer awaited (another round's, or
    /// more bytes than the plan fixes).
    #[error(transparent)]
    Answer(#[from] ppdnn_wire::steps::AnswerError),
    /// A plan that is not the one the description names.
    #[error("the server's plan does not match its description")]
    PlanMismatch,
    /// An input of the wrong size for the model.
    #[error("the input has {got} values; model {model} takes {shape:?} = {expected}")]
    InputSize {
        /// Values given.
        got: usize,
        /// The model's name.
        model: String,
        /// Its input shape.
        shape: Vec<usize>,
        /// Values it takes.
        expected: usize,
    },
    /// Every attempt failed: the last error, after the earlier ones.
    #[error("{last} (after {attempts} attempts; earlier: {})", .earlier.join("; "))]
    Retried {
        /// Why the last attempt failed.
        last: Box<ClientError>,
        /// Attempts made.
        attempts: usize,
        /// Why each earlier attempt failed.
        earlier: Vec<String>,
    },
    /// A task of the client's own failed (a bug): not the server's fault.
    #[error("a client task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A status as the caller should see it. A stream that broke in transit (an
/// HTTP/2 reset from a load balancer whose replica went away, a dropped
/// connection) reaches tonic as INTERNAL or UNKNOWN with no gRPC status from
/// the server behind it: that is a transient failure, reported as
/// UNAVAILABLE so that it is retried. Statuses the server sent stay as they are.
pub fn in_transit(status: tonic::Status) -> ClientError {
    if status.code() == tonic::Code::Unavailable {
        return ClientError::Status(status);
    }
    if broken_in_transit(&status) {
        let message = format!("the stream broke in transit: {}", status.message());
        return ClientError::Status(tonic::Status::unavailable(message));
    }
    if let Some(http) = gateway_failure(status.message()) {
        let message = format!("the load balancer answered HTTP {http} (no replica could take the stream)");
        return ClientError::Status(tonic::Status::unavailable(message));
    }
    ClientError::Status(status)
}

/// The HTTP status of a balancer's error page that tonic tried to read as
/// gRPC (it reports "... while receiving response with status: 502 Bad
/// Gateway"): 502, 503 and 504 mean UNAVAILABLE in gRPC's HTTP mapping
/// (doc/http-grpc-status-mapping.md).
fn gateway_failure(message: &str) -> Option<u16> {
    let (_, rest) = message.split_once("response with status: ")?;
    let code: u16 = rest.get(..3)?.parse().ok()?;
    matches!(code, 502..=504).then_some(code)
}

fn broken_in_transit(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        // Any HTTP/2 error (a reset stream, GOAWAY, a broken connection) is
        // the transport's: a server's own failures arrive as gRPC statuses.
        if e.is::<h2::Error>() || e.is::<std::io::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// One classified input.
#[derive(Debug, Clone)]
pub struct Classification {
    /// The integer logits (identical to the plaintext integer model's);
    /// empty when the client asked for the label only.
    pub logits: Vec<i64>,
    /// The class: the argmax of the logits, or the label-only answer.
    pub label: usize,
    /// The protocol mode used.
    pub mode: Mode,
    /// Private mode: garbled-circuit bytes sent (included in `bytes_sent`).
    pub garbled_bytes: usize,
    /// Ciphertext bytes sent.
    pub bytes_sent: usize,
    /// Ciphertext bytes received.
    pub bytes_received: usize,
    /// Of `duration`, the time the client spent computing (encrypting,
    /// decrypting, garbling); the rest was spent waiting for the server's
    /// answers and the network.
    pub client_compute: Duration,
    /// Wall time of the inference.
    pub duration: Duration,
}

/// A connection to a ppdnn server.
#[derive(Debug, Clone)]
pub struct RemoteClient {
    inner: InferenceClient<Channel>,
    max_message: usize,
    read_timeout: Duration,
    /// The server's ring-Pedersen parameters (from DescribeModel), and the
    /// last factor proof made against them: (parameters' digest, n, proof).
    factor_params: Arc<std::sync::Mutex<Option<Arc<ppdnn_paillier::RingPedersen>>>>,
    factor_proof: Arc<std::sync::Mutex<Option<FactorProofCache>>>,
}

/// A factor proof made: (the parameters' digest, the key's n, the proof).
type FactorProofCache = ([u8; 32], Integer, Vec<u8>);

/// How long the client waits for the server's next message by default.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(120);

impl RemoteClient {
    /// Connects to `url` (e.g. http://127.0.0.1:50051); `max_message` is the
    /// largest message accepted from the server.
    pub async fn connect(url: &str, max_message: usize) -> Result<Self, ClientError> {
        Self::connect_with(url, max_message, None).await
    }

    /// Connects to `url`; with `ca_pem`, over TLS (an https:// URL) trusting
    /// that certificate authority for the server's certificate.
    pub async fn connect_with(
        url: &str,
        max_message: usize,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, ClientError> {
        let err =
            |e: &dyn std::fmt::Display| ClientError::Connect { url: url.to_string(), message: e.to_string() };
        let mut endpoint = Channel::from_shared(url.to_string())
            .map_err(|e| err(&e))?
            .connect_timeout(Duration::from_secs(10));
        if let Some(ca) = ca_pem {
            let tls = tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(ca));
            endpoint = endpoint.tls_config(tls).map_err(|e| err(&e))?;
        }
        let channel = endpoint.connect().await.map_err(|e| err(&format!("{e} ({e:?})")))?;
        let inner = InferenceClient::new(channel)
            .max_decoding_message_size(max_message)
            .max_encoding_message_size(max_message);
        Ok(RemoteClient {
            inner,
            max_message,
            read_timeout: DEFAULT_READ_TIMEOUT,
            factor_params: Arc::default(),
            factor_proof: Arc::default(),
        })
    }

    /// Sets how long to wait for each message of the server before giving up
    /// on an inference (default [`DEFAULT_READ_TIMEOUT`]).
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The models the server serves.
    pub async fn list_models(&mut self) -> Result<Vec<pb::ModelSummary>, ClientError> {
        Ok(self.inner.list_models(pb::ListModelsRequest {}).await?.into_inner().models)
    }

    /// A model's description and its validated plan for `key_bits`,
    /// `packing` and `mode`.
    pub async fn describe(
        &mut self,
        model: &str,
        key_bits: u32,
        packing: Packing,
        mode: Mode,
    ) -> Result<(pb::ModelDescription, Plan), ClientError> {
        let req = pb::DescribeModelRequest {
            model: model.into(),
            key_bits,
            packing: packing_to_pb(packing),
            mode: mode_to_pb(mode),
        };
        let desc = self.inner.describe_model(req).await?.into_inner();
        let plan = Plan::from_json(&desc.plan_json)?;
        if plan.model_digest != desc.digest
            || plan.key_bits != key_bits
            || plan.packing != packing
            || plan.mode != mode
        {
            return Err(ClientError::PlanMismatch);
        }
        if mode == Mode::Private {
            let params = ppdnn_paillier::RingPedersen::from_bytes(&desc.factor_params)
                .map_err(ppdnn_protocol::Error::from)?;
            if let Ok(mut slot) = self.factor_params.lock() {
                *slot = Some(Arc::new(params));
            }
        }
        Ok((desc, plan))
    }

    /// The key's factor proof against the server's parameters (read with
    /// the plan, or asked for now): made once per key and parameters (about
    /// 25 ms at 2048 bits), then kept.
    async fn factor_proof_for(
        &mut self,
        model: &str,
        plan: &Plan,
        key: &Arc<PrivateKey>,
    ) -> Result<(Vec<u8>, [u8; 32]), ClientError> {
        if self.factor_params().is_none() {
            self.describe(model, plan.key_bits, plan.packing, plan.mode).await?;
        }
        let params = self.factor_params().ok_or(ClientError::NoFactorParams)?;
        let digest = params.digest();
        let n = key.public_key().n().clone();
        let cached = self.factor_proof.lock().map_err(|_| ClientError::NoFactorParams)?.clone();
        if let Some((d, cached_n, proof)) = cached
            && d == digest
            && cached_n == n
        {
            return Ok((proof, digest));
        }
        let k = key.clone();
        let proof = tokio::task::spawn_blocking(move || {
            k.prove_factors(&params).map(|p| p.to_bytes(k.public_key(), &params))
        })
        .await?
        .map_err(ppdnn_protocol::Error::from)?;
        if let Ok(mut slot) = self.factor_proof.lock() {
            *slot = Some((digest, n, proof.clone()));
        }
        Ok((proof, digest))
    }

    /// The server's factor-proof parameters, if read.
    fn factor_params(&self) -> Option<Arc<ppdnn_paillier::RingPedersen>> {
        self.factor_params.lock().ok().and_then(|p| p.clone())
    }

    /// Classifies one image in the plan's mode: encrypts it, runs the
    /// rounds, returns the logits (or, in a label-only private inference,
    /// the label). `output` is what a private session asks to learn. A
    /// server whose factor-proof parameters changed since they were read (it
    /// restarted without `--factor-params`) asks for them to be read again:
    /// that is done, and the inference started once more.
    pub async fn infer(
        &mut self,
        model: &str,
        plan: &SessionPlan,
        key: Arc<PrivateKey>,
        pool: Arc<RandomnessPool>,
        output: Output,
        image: Vec<u8>,
    ) -> Result<Classification, ClientError> {
        let first = self.infer_once(model, plan, key.clone(), pool.clone(), output, image.clone()).await;
        match first {
            Err(ClientError::Status(s))
                if s.metadata().get(crate::status::REFRESH).is_some_and(|v| v == "factor-params") =>
            {
                if let Ok(mut slot) = self.factor_params.lock() {
                    *slot = None;
                }
                self.infer_once(model, plan, key, pool, output, image).await
            }
            other => other,
        }
    }

    /// One attempt of [`RemoteClient::infer`].
    async fn infer_once(
        &mut self,
        model: &str,
        plan: &SessionPlan,
        key: Arc<PrivateKey>,
        pool: Arc<RandomnessPool>,
        output: Output,
        image: Vec<u8>,
    ) -> Result<Classification, ClientError> {
        let started = Instant::now();
        let public = key.public_key().clone();
        let width = public.ciphertext_bytes();
        let max_chunk = (self.max_message / 2).max(width);
        let mode = plan.plan().mode;
        let (modulus_proof, factor_proof, factor_params_digest) = match mode {
            Mode::Fast => (Vec::new(), Vec::new(), Vec::new()),
            // Made once per key (0.1-0.2 s at 2048 bits), then kept with it.
            Mode::Private => {
                let k = key.clone();
                let modulus = tokio::task::spawn_blocking(move || {
                    k.modulus_proof().map(|p| p.to_bytes(k.public_key()))
                })
                .await?
                .map_err(ppdnn_protocol::Error::from)?;
                let (factors, digest) = self.factor_proof_for(model, plan.plan(), &key).await?;
                (modulus, factors, digest.to_vec())
            }
        };
        let (tx, rx) = mpsc::channel::<pb::InferRequest>(8);
        let start = pb::Start {
            model: model.into(),
            key: Some(key_to_pb(&public)),
            packing: packing_to_pb(plan.plan().packing),
            model_digest: plan.plan().model_digest.clone(),
            mode: mode_to_pb(mode),
            output: output_to_pb(if mode == Mode::Private { output } else { Output::Logits }),
            modulus_proof,
            factor_proof,
            factor_params_digest,
        };
        let send = |kind| pb::InferRequest { kind: Some(kind) };
        tx.send(send(infer_request::Kind::Start(start))).await.map_err(|_| ClientError::StreamClosed)?;
        let mut inbound = self.inner.infer(ReceiverStream::new(rx)).await.map_err(in_transit)?.into_inner();
        let session = ClientSession::new(plan, key, pool, output)?;
        let computing = Instant::now();
        let (mut session, first) = on_blocking_thread(session, move |s| s.start(&image)).await?;
        let mut client_compute = computing.elapsed();
        let mut outgoing = first?;
        let (mut sent, mut received) = (0usize, 0usize);
        loop {
            if let Some(message) = outgoing.take() {
                sent += message.len_bytes();
                for c in chunks(&message, width, max_chunk) {
                    if tx.send(send(infer_request::Kind::Round(c))).await.is_err() {
                        break;
                    }
                }
            }
            // The plan fixes the answer's size: nothing beyond it is accepted.
            let (round, count, material) = session.expected_answer();
            let answer = self.read_round(&mut inbound, round, count * width, material).await?;
            received += answer.len_bytes();
            let computing = Instant::now();
            let (s, step) = on_blocking_thread(session, move |s| s.receive(&answer)).await?;
            client_compute += computing.elapsed();
            session = s;
            let (logits, label) = match step? {
                ClientStep::Send(next) => {
                    outgoing = Some(next);
                    continue;
                }
                ClientStep::Done(logits) => {
                    let label = argmax(&logits);
                    (logits, label)
                }
                ClientStep::Label(label) => (Vec::new(), label),
            };
            return Ok(Classification {
                logits,
                label,
                mode,
                garbled_bytes: session.stats().garbled_bytes,
                bytes_sent: sent,
                bytes_received: received,
                client_compute,
                duration: started.elapsed(),
            });
        }
    }

    /// Reads one server round of exactly `data` ciphertext bytes and
    /// `material` other bytes (the plan fixes both; nothing beyond is accepted).
    async fn read_round(
        &self,
        inbound: &mut tonic::Streaming<pb::Round>,
        round: usize,
        data: usize,
        material: usize,
    ) -> Result<RoundMessage, ClientError> {
        let mut message =
            RoundMessage { round, data: Vec::with_capacity(data), material: Vec::with_capacity(material) };
        loop {
            let msg = tokio::time::timeout(self.read_timeout, inbound.message())
                .await
                .map_err(|_| ClientError::NoAnswer { round, seconds: self.read_timeout.as_secs_f64() })?
                .map_err(in_transit)?
                .ok_or(ClientError::ServerClosed { round })?;
            if ppdnn_wire::steps::append_chunk(&mut message, &msg, data, material)? {
                return Ok(message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_streams_and_gateway_errors_become_unavailable_and_server_statuses_stay() {
        let code = |s: tonic::Status| match in_transit(s) {
            ClientError::Status(s) => s.code(),
            other => panic!("{other}"),
        };
        let page = "protocol error: received message with invalid compression flag: 60 (valid flags are 0 and 1) \
                    while receiving response with status: 502 Bad Gateway";
        assert_eq!(code(tonic::Status::internal(page)), tonic::Code::Unavailable);
        let not_gateway = page.replace("502 Bad Gateway", "500 Internal Server Error");
        assert_eq!(code(tonic::Status::internal(not_gateway)), tonic::Code::Internal);
        // A reset stream, as tonic reports one: INTERNAL with the h2 error as its source.
        let reset = tonic::Status::from_error(Box::new(h2::Error::from(h2::Reason::INTERNAL_ERROR)));
        assert_eq!(reset.code(), tonic::Code::Internal);
        assert_eq!(code(reset), tonic::Code::Unavailable);
        // What a server sends stays as it is.
        assert_eq!(code(tonic::Status::internal("the server's own fault")), tonic::Code::Internal);
        assert_eq!(code(tonic::Status::invalid_argument("bad key")), tonic::Code::InvalidArgument);
    }
}
