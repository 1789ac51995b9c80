//! A client ready to classify: it picks the protocol mode, fetches and checks
//! the model's plan, holds the key and its randomness pool, and retries an
//! inference whose stream failed for a reason another attempt can cure (a
//! replica that went away, a server at its session limit).
//!
//! This is what `ppdnn classify` and the Python SDK build on.

use std::sync::Arc;
use std::time::Duration;

use ppdnn_paillier::{PrivateKey, RandomnessPool};
use ppdnn_protocol::{Mode, Output, Packing, Plan, PlanError, SessionPlan};
use tonic::Code;

use crate::client::{ClientError, RemoteClient};
use crate::{Classification, convert};

/// How often, and how patiently, a failed inference is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1: never retry).
    pub attempts: u32,
    /// The wait before the first retry; each later one waits twice as long.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub const NONE: RetryPolicy =
        RetryPolicy { attempts: 1, initial_backoff: Duration::ZERO, max_backoff: Duration::ZERO };

    /// The wait after the `failed`-th failed attempt (1-based): exponential,
    /// capped at `max_backoff`.
    pub fn backoff(&self, failed: u32) -> Duration {
        let factor = 1u32 << failed.saturating_sub(1).min(16);
        self.initial_backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

impl Default for RetryPolicy {
    /// Four attempts, waiting 0.25 s, 0.5 s and 1 s between them.
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
        }
    }
}

/// Whether another attempt may succeed where this one failed: the server
/// (or the replica behind a balancer) was unavailable or at its limit.
/// Everything else (a refused key, an unknown model, a bad answer) would
/// fail again the same way; so would a spent query budget, which says how
/// long to wait ([`retry_after`]) and is not retried.
pub fn is_retryable(error: &ClientError) -> bool {
    match error {
        ClientError::Status(s) => {
            matches!(s.code(), Code::Unavailable | Code::ResourceExhausted) && retry_after(s).is_none()
        }
        _ => false,
    }
}

/// How long the server says to wait before the next inference (a spent
/// query budget's `retry-after-ms` metadata), if it says so.
pub fn retry_after(status: &tonic::Status) -> Option<Duration> {
    let ms = status.metadata().get(crate::status::RETRY_AFTER_MS)?.to_str().ok()?.parse().ok()?;
    Some(Duration::from_millis(ms))
}

/// What a [`Classifier`] is asked to connect to and how.
#[derive(Debug, Clone)]
pub struct ClassifierOptions {
    /// The model's name on the server; empty for the server's first model.
    pub model: String,
    /// The protocol mode; None for private when the server offers it, else fast.
    pub mode: Option<Mode>,
    /// In the private mode: the logits, or the label only.
    pub output: Output,
    /// The slot layout (the private mode is packed only).
    pub packing: Packing,
    /// The largest gRPC message accepted, in bytes.
    pub max_message: usize,
    /// A certificate authority (PEM) to trust for the server's TLS certificate.
    pub ca_pem: Option<Vec<u8>>,
    /// Retries of failed inferences.
    pub retry: RetryPolicy,
}

impl Default for ClassifierOptions {
    fn default() -> Self {
        ClassifierOptions {
            model: String::new(),
            mode: None,
            output: Output::Logits,
            packing: Packing::Packed,
            max_message: crate::server::DEFAULT_MAX_MESSAGE_BYTES,
            ca_pem: None,
            retry: RetryPolicy::default(),
        }
    }
}

/// A classification and the failed attempts that preceded it.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The result of the attempt that succeeded.
    pub classification: Classification,
    /// Why each earlier attempt failed (empty when the first succeeded).
    pub retried: Vec<String>,
}

/// A connection, a model's checked plan, a private key and its randomness:
/// everything needed to classify inputs. Cloning is cheap (the connection,
/// plan, key and pool are shared), so clones can classify concurrently.
#[derive(Clone)]
pub struct Classifier {
    client: RemoteClient,
    model: String,
    classes: Vec<String>,
    input_shape: Vec<usize>,
    /// The checked plan, with the private mode's circuits.
    plan: SessionPlan,
    key: Arc<PrivateKey>,
    pool: Arc<RandomnessPool>,
    output: Output,
    retry: RetryPolicy,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("model", &self.model)
            .field("mode", &self.plan.plan().mode)
            .field("key_bits", &self.plan.plan().key_bits)
            .finish_non_exhaustive()
    }
}

impl Classifier {
    /// Connects to `url`, chooses the mode, fetches the plan for `key`'s size
    /// and checks it, and builds the private mode's circuits from the plan.
    pub async fn connect(
        url: &str,
        key: PrivateKey,
        options: &ClassifierOptions,
    ) -> Result<Self, ClientError> {
        let client = RemoteClient::connect_with(url, options.max_message, options.ca_pem.as_deref()).await?;
        Self::with_client(client, key, options).await
    }

    /// As [`Classifier::connect`], on a connection the caller already has
    /// (its message limit and TLS settings are used; those of `options` are not).
    pub async fn with_client(
        mut client: RemoteClient,
        key: PrivateKey,
        options: &ClassifierOptions,
    ) -> Result<Self, ClientError> {
        let mode = match options.mode {
            Some(m) => m,
            None => {
                let models = client.list_models().await?;
                let model = &options.model;
                let summary =
                    if model.is_empty() { models.first() } else { models.iter().find(|m| m.name == *model) };
                let private = convert::mode_to_pb(Mode::Private);
                if summary.is_some_and(|s| s.modes.contains(&private)) { Mode::Private } else { Mode::Fast }
            }
        };
        if mode == Mode::Private && options.packing != Packing::Packed {
            return Err(ppdnn_protocol::Error::from(PlanError::PrivateUnpacked).into());
        }
        let bits = key.public_key().bits();
        let (desc, plan) = client.describe(&options.model, bits, options.packing, mode).await?;
        // The private mode's circuits are built (and checked against the plan) once.
        let plan = tokio::task::spawn_blocking(move || SessionPlan::new(Arc::new(plan))).await??;
        let key = Arc::new(key);
        let k = key.clone();
        tokio::task::spawn_blocking(move || k.public_key().precompute_randomness(8)).await?;
        let pool = Arc::new(RandomnessPool::new(key.public_key()));
        let input_shape = desc.input_shape.iter().map(|&d| d as usize).collect();
        Ok(Classifier {
            client,
            model: desc.name,
            classes: desc.classes,
            input_shape,
            plan,
            key,
            pool,
            output: options.output,
            retry: options.retry,
        })
    }

    /// Classifies one input (the model's pixels, 0..255, in its input
    /// layout), retrying as the policy allows.
    pub async fn classify(&self, pixels: Vec<u8>) -> Result<Answer, ClientError> {
        let expected: usize = self.input_shape.iter().product();
        if pixels.len() != expected {
            return Err(ClientError::InputSize {
                got: pixels.len(),
                model: self.model.clone(),
                shape: self.input_shape.clone(),
                expected,
            });
        }
        let mut retried = Vec::new();
        loop {
            match self.attempt(pixels.clone()).await {
                Ok(classification) => return Ok(Answer { classification, retried }),
                Err(e) if is_retryable(&e) && (retried.len() as u32 + 1) < self.retry.attempts => {
                    let wait = self.retry.backoff(retried.len() as u32 + 1);
                    tracing::warn!(error = %e, attempt = retried.len() + 1, wait_ms = wait.as_millis() as u64, "inference failed; retrying");
                    retried.push(e.to_string());
                    tokio::time::sleep(wait).await;
                }
                Err(e) if retried.is_empty() => return Err(e),
                Err(e) => {
                    let attempts = retried.len() + 1;
                    return Err(ClientError::Retried { last: Box::new(e), attempts, earlier: retried });
                }
            }
        }
    }

    /// One inference in the prepared mode, on a clone of the connection.
    async fn attempt(&self, pixels: Vec<u8>) -> Result<Classification, ClientError> {
        let mut client = self.client.clone();
        client.infer(&self.model, &self.plan, self.key.clone(), self.pool.clone(), self.output, pixels).await
    }

    /// Class probabilities from logits: softmax of the logits at the plan's scale.
    pub fn scores(&self, logits: &[i64]) -> Vec<f64> {
        if logits.is_empty() {
            return Vec::new();
        }
        let scale = self.plan.plan().logit_scale;
        let scaled: Vec<f64> = logits.iter().map(|&v| v as f64 * scale).collect();
        ppdnn_model::quant::softmax(&scaled)
    }

    /// The protocol mode in use.
    pub fn mode(&self) -> Mode {
        self.plan.plan().mode
    }

    /// In the private mode, what the client learns (logits or label).
    pub fn output(&self) -> Output {
        self.output
    }

    /// The model's name on the server.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The names of the model's classes.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The model's input shape (channels, height, width).
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// The client's public key.
    pub fn public_key(&self) -> &ppdnn_paillier::PublicKey {
        self.key.public_key()
    }

    /// The checked plan.
    pub fn plan(&self) -> &Arc<Plan> {
        self.plan.plan()
    }

    /// The randomness pool (fill it ahead to take encryption off the online path).
    pub fn pool(&self) -> &Arc<RandomnessPool> {
        &self.pool
    }

    /// The retry policy.
    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        let waits: Vec<u64> = (1..=7).map(|k| p.backoff(k).as_millis() as u64).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 4000, 4000]);
        assert_eq!(RetryPolicy::NONE.backoff(3), Duration::ZERO);
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(4));
    }

    #[test]
    fn only_unavailable_and_resource_exhausted_are_retried() {
        for (code, retry) in [
            (Code::Unavailable, true),
            (Code::ResourceExhausted, true),
            (Code::InvalidArgument, false),
            (Code::FailedPrecondition, false),
            (Code::NotFound, false),
            (Code::Internal, false),
            (Code::DeadlineExceeded, false),
        ] {
            assert_eq!(is_retryable(&ClientError::Status(tonic::Status::new(code, "x"))), retry, "{code:?}");
        }
        assert!(!is_retryable(&ClientError::PlanMismatch));
        let mut spent = tonic::Status::resource_exhausted("the client key's query budget is spent");
        spent.metadata_mut().insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&spent), Some(Duration::from_millis(1500)));
        assert!(!is_retryable(&ClientError::Status(spent)), "a spent budget is not retried at once");
    }
}
