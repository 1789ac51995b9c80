//! The gRPC client: fetches a model's plan and runs encrypted inferences.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ppdnn_paillier::{PrivateKey, RandomnessPool};
use ppdnn_protocol::{ClientSession, ClientStep, Packing, Plan, RoundMessage};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::convert::{chunks, key_to_pb, packing_to_pb};
use crate::on_blocking_thread;
use crate::pb::inference_client::InferenceClient;
use crate::pb::{self, infer_request};

/// What can go wrong on the client side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached.
    #[error("cannot connect to {url}: {message}")]
    Connect {
        /// The address tried.
        url: String,
        /// Why it failed.
        message: String,
    },
    /// The server answered with an error status.
    #[error("server: {} ({:?})", .0.message(), .0.code())]
    Status(#[from] tonic::Status),
    /// The protocol failed on the client (a bad answer from the server, for instance).
    #[error(transparent)]
    Protocol(#[from] ppdnn_protocol::Error),
    /// Anything else: an unexpected message, a plan that does not validate.
    #[error("{0}")]
    Other(String),
}

/// One classified input.
#[derive(Debug, Clone)]
pub struct Classification {
    /// The integer logits (identical to the plaintext integer model's).
    pub logits: Vec<i64>,
    /// Ciphertext bytes sent.
    pub bytes_sent: usize,
    /// Ciphertext bytes received.
    pub bytes_received: usize,
    /// Wall time of the inference.
    pub duration: Duration,
}

/// A connection to a ppdnn server.
#[derive(Debug, Clone)]
pub struct RemoteClient {
    inner: InferenceClient<Channel>,
    max_message: usize,
    read_timeout: Duration,
}

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
        Ok(RemoteClient { inner, max_message, read_timeout: DEFAULT_READ_TIMEOUT })
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

    /// A model's description and its validated plan for `key_bits` and `packing`.
    pub async fn describe(
        &mut self,
        model: &str,
        key_bits: u32,
        packing: Packing,
    ) -> Result<(pb::ModelDescription, Plan), ClientError> {
        let req = pb::DescribeModelRequest { model: model.into(), key_bits, packing: packing_to_pb(packing) };
        let desc = self.inner.describe_model(req).await?.into_inner();
        let plan = Plan::from_json(&desc.plan_json)?;
        if plan.model_digest != desc.digest || plan.key_bits != key_bits || plan.packing != packing {
            return Err(ClientError::Other("the server's plan does not match its description".into()));
        }
        Ok((desc, plan))
    }

    /// Classifies one image: encrypts it, runs the rounds, returns the logits.
    pub async fn infer(
        &mut self,
        model: &str,
        plan: Arc<Plan>,
        key: Arc<PrivateKey>,
        pool: Arc<RandomnessPool>,
        image: Vec<u8>,
    ) -> Result<Classification, ClientError> {
        let started = Instant::now();
        let public = key.public_key().clone();
        let width = public.ciphertext_bytes();
        let max_chunk = (self.max_message / 2).max(width);
        let (tx, rx) = mpsc::channel::<pb::InferRequest>(8);
        let start = pb::Start {
            model: model.into(),
            key: Some(key_to_pb(&public)),
            packing: packing_to_pb(plan.packing),
            model_digest: plan.model_digest.clone(),
        };
        let send = |kind| pb::InferRequest { kind: Some(kind) };
        tx.send(send(infer_request::Kind::Start(start)))
            .await
            .map_err(|_| ClientError::Other("stream closed".into()))?;
        let mut inbound = self.inner.infer(ReceiverStream::new(rx)).await?.into_inner();

        let mut session = ClientSession::new(plan.clone(), key, pool)?;
        let (s, first) = on_blocking_thread(session, move |session| session.start(&image))
            .await
            .map_err(|e| ClientError::Other(e.to_string()))?;
        session = s;
        let mut outgoing = first?;
        let (mut sent, mut received) = (0usize, 0usize);
        loop {
            sent += outgoing.len_bytes();
            for c in chunks(&outgoing, width, max_chunk) {
                if tx.send(send(infer_request::Kind::Round(c))).await.is_err() {
                    break;
                }
            }
            let round = outgoing.round;
            // The plan fixes the answer's size: nothing beyond it is accepted.
            let expected = plan.layers[round].output_ciphertexts * width;
            let mut data = Vec::with_capacity(expected);
            loop {
                let msg = tokio::time::timeout(self.read_timeout, inbound.message())
                    .await
                    .map_err(|_| {
                        ClientError::Other(format!(
                            "no answer from the server for {} s in round {round}",
                            self.read_timeout.as_secs_f64()
                        ))
                    })??
                    .ok_or_else(|| {
                        ClientError::Other(format!("the server closed the stream in round {round}"))
                    })?;
                if msg.round as usize != round {
                    return Err(ClientError::Other(format!(
                        "the server answered round {} in round {round}",
                        msg.round
                    )));
                }
                if data.len() + msg.ciphertexts.len() > expected {
                    return Err(ClientError::Other(format!(
                        "the server sent more than the plan's {expected} bytes in round {round}"
                    )));
                }
                data.extend_from_slice(&msg.ciphertexts);
                if msg.last {
                    break;
                }
            }
            received += data.len();
            let answer = RoundMessage { round, data, material: Vec::new() };
            let (s, step) = on_blocking_thread(session, move |session| session.receive(&answer))
                .await
                .map_err(|e| ClientError::Other(e.to_string()))?;
            session = s;
            match step? {
                ClientStep::Send(next) => outgoing = next,
                ClientStep::Done(logits) => {
                    return Ok(Classification {
                        logits,
                        bytes_sent: sent,
                        bytes_received: received,
                        duration: started.elapsed(),
                    });
                }
                ClientStep::Label(_) => {
                    return Err(ClientError::Other("a fast session ended with a label only".into()));
                }
            }
        }
    }
}
