//! The browser client's work, independent of the browser: its key, the
//! plans it has checked, the proofs a private inference needs, and one
//! classification over any InferStep transport.

use std::future::Future;
use std::sync::Arc;

use ppdnn_paillier::{KeyPair, KeyPolicy, PrivateKey, RandomnessPool, RingPedersen};
use ppdnn_protocol::{ClientSession, Mode, Output, Packing, Plan, SessionPlan};
use ppdnn_wire::convert::{key_to_pb, mode_to_pb, output_to_pb, packing_to_pb};
use ppdnn_wire::pb;
use ppdnn_wire::steps::{StepError, infer_by_steps, session_name};
use serde::Serialize;

/// Largest chunk the client sends, in bytes (below the server's default
/// 4 MiB message cap, with room for the framing).
const MAX_CHUNK: usize = 1 << 20;

/// What went wrong, in words a page can show.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// No key yet.
    #[error("no key: generate one (or load a saved one) first")]
    NoKey,
    /// A mode name that is neither fast nor private.
    #[error("unknown mode {0:?}: fast or private")]
    Mode(String),
    /// The server's description and its plan disagree.
    #[error("the server's plan does not match its description (model {0})")]
    PlanMismatch(String),
    /// An image of the wrong size for the model.
    #[error("the image has {got} values; model {model} takes {shape:?} = {expected}")]
    InputSize {
        /// Values given.
        got: usize,
        /// The model.
        model: String,
        /// Its input shape.
        shape: [usize; 3],
        /// Values it takes.
        expected: usize,
    },
    /// A key of another size than the server's plan.
    #[error("the key has {key} bits; the server's plan is for {plan}-bit keys")]
    KeySize {
        /// The key's size.
        key: u32,
        /// The plan's.
        plan: u32,
    },
    /// The server offers no factor-proof parameters.
    #[error("the server gave no factor-proof parameters for the private mode")]
    NoFactorParams,
    /// Arithmetic, key or proof failures.
    #[error(transparent)]
    Paillier(#[from] ppdnn_paillier::Error),
    /// The protocol failed on the client.
    #[error(transparent)]
    Protocol(#[from] ppdnn_protocol::Error),
    /// The session failed (a server status, a bad answer).
    #[error(transparent)]
    Step(#[from] StepError),
    /// A key file that does not parse.
    #[error("the saved key: {0}")]
    KeyFile(String),
}

/// What a classification reports to the page.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The model.
    pub model: String,
    /// "fast" or "private".
    pub mode: &'static str,
    /// The predicted class index.
    pub label: usize,
    /// Its name.
    pub class: String,
    /// Every class's name.
    pub classes: Vec<String>,
    /// The integer logits.
    pub logits: Vec<i64>,
    /// Softmax of the logits at the plan's scale.
    pub scores: Vec<f64>,
    /// Milliseconds from the first call to the answer.
    pub total_ms: f64,
    /// Milliseconds the client computed (encrypting, decrypting, garbling).
    pub client_ms: f64,
    /// The rest: the server's work and the network.
    pub server_and_network_ms: f64,
    /// Round bytes sent and received.
    pub bytes_sent: usize,
    /// Round bytes received.
    pub bytes_received: usize,
    /// Unary calls made.
    pub calls: usize,
    /// The first bytes of the first ciphertexts the server received, in hex.
    pub server_saw_hex: String,
    /// The key size.
    pub key_bits: u32,
}

/// A private-mode key's proofs, made once per key and server parameters.
struct Proofs {
    params_digest: [u8; 32],
    modulus: Vec<u8>,
    factors: Vec<u8>,
}

/// The client's state: its key and what it has made for it.
#[derive(Default)]
pub struct Core {
    key: Option<Arc<KeyPair>>,
    pool: Option<Arc<RandomnessPool>>,
    proofs: Option<Proofs>,
}

/// Parses "fast" or "private".
pub fn parse_mode(s: &str) -> Result<Mode, WebError> {
    match s {
        "fast" => Ok(Mode::Fast),
        "private" => Ok(Mode::Private),
        other => Err(WebError::Mode(other.to_string())),
    }
}

impl Core {
    /// Makes a new key of `bits` (2048 or more), telling `progress`.
    pub fn generate_key(&mut self, bits: u32, progress: &mut dyn FnMut(f64, &str)) -> Result<(), WebError> {
        let pair = ppdnn_paillier::generate_keypair_with_progress(bits, KeyPolicy::PRODUCTION, progress)?;
        self.set_key(pair);
        Ok(())
    }

    /// Loads a key saved by [`Core::key_json`].
    pub fn load_key(&mut self, json: &str) -> Result<(), WebError> {
        let private = ppdnn_paillier::keyfile::private_key_from_json(json, KeyPolicy::PRODUCTION)
            .map_err(|e| WebError::KeyFile(e.to_string()))?;
        self.set_key(KeyPair { private });
        Ok(())
    }

    fn set_key(&mut self, pair: KeyPair) {
        let pair = Arc::new(pair);
        self.pool = Some(Arc::new(RandomnessPool::new(pair.public())));
        self.key = Some(pair);
        self.proofs = None;
    }

    /// The key as JSON, to keep in the page's storage (it holds the secret
    /// primes: only on the user's request).
    pub fn key_json(&self) -> Result<String, WebError> {
        let key = self.key.as_ref().ok_or(WebError::NoKey)?;
        Ok(ppdnn_paillier::keyfile::private_key_to_json(&key.private).to_string())
    }

    /// The key's size, if there is a key.
    pub fn key_bits(&self) -> Option<u32> {
        self.key.as_ref().map(|k| k.public().bits())
    }

    /// The plan in a description, checked against it.
    pub fn plan(desc: &pb::ModelDescription, bits: u32, mode: Mode) -> Result<Arc<Plan>, WebError> {
        let plan = Plan::from_json(&desc.plan_json)?;
        if plan.model_digest != desc.digest || plan.key_bits != bits || plan.mode != mode {
            return Err(WebError::PlanMismatch(desc.name.clone()));
        }
        Ok(Arc::new(plan))
    }

    /// The request for the description that holds the plan for this key.
    pub fn describe_request(&self, model: &str, mode: Mode) -> Result<pb::DescribeModelRequest, WebError> {
        Ok(pb::DescribeModelRequest {
            model: model.to_string(),
            key_bits: self.key_bits().ok_or(WebError::NoKey)?,
            packing: packing_to_pb(Packing::Packed),
            mode: mode_to_pb(mode),
        })
    }

    /// The offline part of the next inference with `plan`, done ahead
    /// (while the user draws): the randomness of its encryptions and, for
    /// the private mode, the key's proofs. What is done is not done again
    /// during the inference; what is not is done then.
    pub fn prepare(&mut self, desc: &pb::ModelDescription, plan: &Plan) -> Result<(), WebError> {
        let pool = self.pool.clone().ok_or(WebError::NoKey)?;
        if plan.mode == Mode::Private {
            self.start(desc, plan)?;
        }
        pool.fill(plan.client_encryptions().saturating_sub(pool.available()))?;
        Ok(())
    }

    /// The Start of an inference (with the private mode's proofs, made
    /// once per key and server parameters).
    fn start(&mut self, desc: &pb::ModelDescription, plan: &Plan) -> Result<pb::Start, WebError> {
        let key = self.key.clone().ok_or(WebError::NoKey)?;
        let (modulus_proof, factor_proof, factor_params_digest) = match plan.mode {
            Mode::Fast => (Vec::new(), Vec::new(), Vec::new()),
            Mode::Private => {
                if desc.factor_params.is_empty() {
                    return Err(WebError::NoFactorParams);
                }
                let params = RingPedersen::from_bytes(&desc.factor_params)?;
                let digest = params.digest();
                if self.proofs.as_ref().is_none_or(|p| p.params_digest != digest) {
                    self.proofs = Some(make_proofs(&key.private, &params)?);
                }
                let p = self.proofs.as_ref().expect("made just above when missing");
                (p.modulus.clone(), p.factors.clone(), digest.to_vec())
            }
        };
        Ok(pb::Start {
            model: desc.name.clone(),
            key: Some(key_to_pb(key.public())),
            packing: packing_to_pb(Packing::Packed),
            model_digest: desc.digest.clone(),
            mode: mode_to_pb(plan.mode),
            output: output_to_pb(Output::Logits),
            modulus_proof,
            factor_proof,
            factor_params_digest,
        })
    }

    /// Classifies `pixels` (the model's input, channel by channel, 0..255)
    /// with the plan `desc` holds, over `call` (one InferStep call each);
    /// `now` reads a clock in milliseconds.
    pub async fn classify<F, Fut>(
        &mut self,
        desc: &pb::ModelDescription,
        plan: Arc<Plan>,
        pixels: &[u8],
        call: F,
        now: impl Fn() -> f64,
    ) -> Result<Report, WebError>
    where
        F: FnMut(pb::InferStepRequest) -> Fut,
        Fut: Future<Output = Result<pb::InferStepResponse, tonic::Status>>,
    {
        let key = self.key.clone().ok_or(WebError::NoKey)?;
        let pool = self.pool.clone().ok_or(WebError::NoKey)?;
        if key.public().bits() != plan.key_bits {
            return Err(WebError::KeySize { key: key.public().bits(), plan: plan.key_bits });
        }
        let shape = plan.input_shape;
        let expected = shape.iter().product::<usize>();
        if pixels.len() != expected {
            return Err(WebError::InputSize { got: pixels.len(), model: desc.name.clone(), shape, expected });
        }
        let t0 = now();
        let start = self.start(desc, &plan)?;
        let proof_ms = now() - t0;
        let session_plan = SessionPlan::new(plan.clone())?;
        let session = ClientSession::new(&session_plan, Arc::new(key.private.clone()), pool, Output::Logits)?;
        let name = session_name()?;
        let width = key.public().ciphertext_bytes();
        let out = infer_by_steps(&name, start, session, pixels, width, MAX_CHUNK, call, &now).await?;
        let total_ms = now() - t0;
        let client_ms = out.client_ms + proof_ms;
        let classes = desc.classes.clone();
        let scale = plan.logit_scale;
        let scaled: Vec<f64> = out.logits.iter().map(|&v| v as f64 * scale).collect();
        Ok(Report {
            model: desc.name.clone(),
            mode: plan.mode.name(),
            label: out.label,
            class: classes.get(out.label).cloned().unwrap_or_else(|| out.label.to_string()),
            classes,
            scores: ppdnn_model::quant::softmax(&scaled),
            logits: out.logits,
            total_ms,
            client_ms,
            server_and_network_ms: (total_ms - client_ms).max(0.0),
            bytes_sent: out.bytes_sent,
            bytes_received: out.bytes_received,
            calls: out.calls,
            server_saw_hex: out.first_ciphertext_bytes.iter().map(|b| format!("{b:02x}")).collect(),
            key_bits: key.public().bits(),
        })
    }
}

fn make_proofs(key: &PrivateKey, params: &RingPedersen) -> Result<Proofs, WebError> {
    Ok(Proofs {
        params_digest: params.digest(),
        modulus: key.modulus_proof()?.to_bytes(key.public_key()),
        factors: key.prove_factors(params)?.to_bytes(key.public_key(), params),
    })
}
