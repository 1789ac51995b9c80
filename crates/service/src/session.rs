//! One Infer stream on the server: admission (the session limit and the
//! client's share), Start (model, key, mode), then the rounds of the
//! protocol session, chunk by chunk, under the idle and session deadlines.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ppdnn_protocol::{Evaluator, KeyCache, Mode, Output, Packing, RoundMessage, ServerSession};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::{Stream, StreamExt};
use tonic::Status;
use tracing::{info, warn};

use crate::budget::{Budgets, Exhausted, Reservation};
use crate::config::ServerConfig;
use crate::convert::{chunks, key_numbers, mode_from_pb, output_from_pb, packing_from_pb, shown};
use crate::on_blocking_thread;
use crate::pb::{self, infer_request};
use crate::server::Entry;
use crate::status::{CallError, ChunkError};

/// One client address's share of the sessions (or of the streams waiting
/// for their Start), released on drop.
pub(crate) struct ClientShare {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl ClientShare {
    pub(crate) fn take(counts: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, max: usize) -> Option<Self> {
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

/// What a stream holds until its Start arrives: one of the server's places
/// to wait, and its address's share of them (with a per-client limit).
pub(crate) struct Waiting {
    pub(crate) _permit: OwnedSemaphorePermit,
    pub(crate) _share: Option<ClientShare>,
}

/// What a session holds while it runs: its permit and its client's share.
struct SessionGuard {
    _permit: OwnedSemaphorePermit,
    _share: Option<ClientShare>,
}

pub(crate) fn bad_key_bits(config: &ServerConfig, bits: u32) -> CallError {
    CallError::KeyNotServed { bits, served: config.key_bits.clone() }
}

/// The evaluator for a key size and packing, or the status that says why there is none.
pub(crate) fn evaluator_for<'a>(
    entry: &'a Entry,
    config: &ServerConfig,
    bits: u32,
    packing: Packing,
    mode: Mode,
) -> Result<&'a Evaluator, CallError> {
    if !config.key_bits.contains(&bits) {
        return Err(bad_key_bits(config, bits));
    }
    if !config.modes.contains(&mode) {
        let offered = config.modes.iter().map(|m| m.name()).collect();
        return Err(CallError::ModeNotOffered { mode: mode.name(), offered });
    }
    if mode == Mode::Private && packing != Packing::Packed {
        return Err(CallError::PrivateUnpacked);
    }
    if packing == Packing::Unpacked && !config.allow_unpacked {
        return Err(CallError::UnpackedNotOffered);
    }
    entry.evaluator(bits, packing, mode).ok_or(CallError::NoEvaluator)
}

pub(crate) fn find_entry<'a>(models: &'a [Entry], name: &str) -> Result<&'a Entry, CallError> {
    if name.is_empty() {
        return models.first().ok_or(CallError::NoModels);
    }
    models.iter().find(|e| e.name == name).ok_or_else(|| CallError::UnknownModel {
        name: name.to_string(),
        available: models.iter().map(|e| e.name.clone()).collect(),
    })
}

struct SessionStats {
    model: String,
    bits: u32,
    rounds: usize,
    bytes_in: usize,
    bytes_out: usize,
}

/// The proofs about a key that a private Start carries.
struct KeyProofs {
    modulus: Vec<u8>,
    factors: Vec<u8>,
    /// The digest of the parameters the factor proof was made for (may be empty).
    params_digest: Vec<u8>,
}

/// Everything one Infer stream needs, moved into its task.
pub(crate) struct Session {
    pub(crate) models: Arc<Vec<Entry>>,
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) keys: Arc<KeyCache>,
    pub(crate) pool: Arc<rayon::ThreadPool>,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
    pub(crate) budgets: Option<Budgets>,
    pub(crate) proven: ProvenKeys,
    pub(crate) factor_params: Arc<ppdnn_paillier::RingPedersen>,
    pub(crate) ip: Option<IpAddr>,
}

impl Session {
    /// Serves the stream to its end and sends the failure, if any, as its status.
    pub(crate) async fn run<S>(
        self,
        mut inbound: S,
        waiting: Waiting,
        tx: mpsc::Sender<Result<pb::Round, Status>>,
    ) where
        S: Stream<Item = Result<pb::InferRequest, Status>> + Unpin,
    {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.config.session_deadline;
        let outcome = tokio::time::timeout_at(deadline, self.serve(&mut inbound, waiting, &tx)).await;
        let outcome = outcome.unwrap_or_else(|_| {
            Err(CallError::Deadline { seconds: self.config.session_deadline.as_secs_f64() })
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
            Err(e) => {
                let status = Status::from(e);
                warn!(code = ?status.code(), message = %shown(status.message()), ms, "inference failed");
                // Bounded: a client that stopped reading (an InferStep client
                // that never asks for its answers) must not hold the task.
                let _ = tokio::time::timeout(self.config.idle_timeout, tx.send(Err(status))).await;
            }
        }
        // The session's memory is free now; when no other session runs,
        // give the heap's free pages back, so that an idle server returns
        // to its idle size (a large model's rounds take hundreds of MiB).
        if self.permits.available_permits() == self.config.max_sessions {
            let _ = tokio::task::spawn_blocking(ppdnn_paillier::release_free_memory).await;
        }
    }

    /// Verifies that the key's n is a Paillier-Blum modulus with no small
    /// factor (both proofs are needed: docs/SECURITY.md), once per key: a
    /// verdict is remembered with the key's digest.
    async fn check_key_proofs(
        &self,
        key: &ppdnn_paillier::PublicKey,
        digest: [u8; 32],
        proofs: KeyProofs,
    ) -> Result<(), CallError> {
        if self.proven.contains(&digest) {
            return Ok(());
        }
        let KeyProofs { modulus: proof, factors: factor_proof, params_digest } = proofs;
        if proof.is_empty() {
            return Err(CallError::NoModulusProof);
        }
        if factor_proof.is_empty() {
            return Err(CallError::NoFactorProof);
        }
        if !params_digest.is_empty() && params_digest[..] != self.factor_params.digest()[..] {
            return Err(CallError::FactorParamsChanged);
        }
        let key = key.clone();
        let params = self.factor_params.clone();
        // One n-th power per challenge: not on the runtime's threads.
        tokio::task::spawn_blocking(move || {
            let proof = ppdnn_paillier::ModulusProof::from_bytes(&key, &proof)?;
            key.verify_modulus_proof(&proof)?;
            let factors = ppdnn_paillier::FactorProof::from_bytes(&key, &params, &factor_proof)?;
            key.verify_factors_proof(&params, &factors)
        })
        .await?
        .map_err(CallError::ModulusProof)?;
        self.proven.insert(digest);
        Ok(())
    }

    /// The error for an empty budget, logged (with the address, never the key).
    fn exhausted(&self, e: Exhausted) -> CallError {
        let (which, wait) = match e {
            Exhausted::Key(w) => ("key", w),
            Exhausted::Address(w) => ("address", w),
        };
        let budget = self.config.query_budget.expect("budgets exist only with a query budget");
        warn!(budget = which, ip = ?self.ip, wait_ms = wait.as_millis() as u64, "query budget exhausted");
        CallError::BudgetExhausted { which, budget, wait }
    }

    /// Takes a session permit (and the client's share) once Start has arrived.
    fn admit(&self) -> Result<SessionGuard, CallError> {
        let permit = self
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| CallError::Busy { max: self.config.max_sessions })?;
        let share = match (self.config.max_sessions_per_client, self.ip) {
            (Some(max), Some(ip)) => {
                Some(ClientShare::take(&self.per_client, ip, max).ok_or(CallError::ClientShare { max })?)
            }
            _ => None,
        };
        Ok(SessionGuard { _permit: permit, _share: share })
    }

    async fn serve<S>(
        &self,
        inbound: &mut S,
        waiting: Waiting,
        tx: &mpsc::Sender<Result<pb::Round, Status>>,
    ) -> Result<SessionStats, CallError>
    where
        S: Stream<Item = Result<pb::InferRequest, Status>> + Unpin,
    {
        let config = &self.config;
        let first = next(inbound, config.start_timeout.min(config.idle_timeout), "Start", config).await?;
        drop(waiting);
        let infer_request::Kind::Start(start) = first else {
            return Err(CallError::NotStart);
        };
        let _guard = self.admit()?;
        let entry = find_entry(&self.models, &start.model)?;
        let packing = packing_from_pb(start.packing)?;
        let key_pb = start.key.ok_or(CallError::NoKey)?;
        let (n, hn) = key_numbers(&key_pb)?;
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
                tokio::task::spawn_blocking(move || ppdnn_paillier::PublicKey::new(n, hn, policy)).await??
            }
        };
        // One inference of the key's and the address's budgets, taken before
        // any costly check (a spent budget is refused at once) and given back
        // if the session fails before its output is released.
        let digest = key_digest(&key);
        let mut reservation = match &self.budgets {
            Some(b) => Some(b.reserve(digest, self.ip).map_err(|e| self.exhausted(e))?),
            None => None,
        };
        if !start.model_digest.is_empty() && start.model_digest != entry.digest {
            return Err(CallError::DigestMismatch {
                model: entry.name.clone(),
                digest: entry.digest.clone(),
                expected: start.model_digest,
            });
        }
        let mode = mode_from_pb(start.mode)?;
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
            Mode::Private => output_from_pb(start.output)?,
        };
        if !config.outputs.contains(&output) {
            let offered = config.outputs.iter().map(|o| o.name()).collect();
            return Err(CallError::OutputNotOffered { output: output.name(), offered });
        }
        if mode == Mode::Private {
            let proofs = KeyProofs {
                modulus: start.modulus_proof,
                factors: start.factor_proof,
                params_digest: start.factor_params_digest,
            };
            self.check_key_proofs(&key, digest, proofs).await?;
        }
        let (session, opening) = ev.start(key, output)?;
        if mode == Mode::Fast {
            // The fast client learns every layer's accumulators as it goes:
            // its inference counts from the start, whatever happens next.
            if let Some(r) = reservation.take() {
                r.complete();
            }
        }
        self.run_rounds(inbound, tx, session, opening, &mut stats, reservation).await?;
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
        mut reservation: Option<Reservation>,
    ) -> Result<(), CallError>
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
                return Err(CallError::GarbledCap);
            }
            let message = receive_round(inbound, config, round, (count, material), width).await?;
            stats.bytes_in += message.len_bytes();
            let result = self.compute(session, move |session| session.handle(&message)).await;
            let (s, answer) = match result {
                Err(CallError::Protocol(ppdnn_protocol::Error::Aborted)) => {
                    // A private session whose checks failed counts as an
                    // inference: an honest client never gets there, and
                    // uncounted aborts would be free probes.
                    if let Some(r) = reservation.take() {
                        r.complete();
                    }
                    return Err(CallError::Protocol(ppdnn_protocol::Error::Aborted));
                }
                other => other?,
            };
            session = s;
            if session.finished() {
                // The last answer releases the output: the inference counts
                // before its first byte is sent.
                if let Some(r) = reservation.take() {
                    r.complete();
                }
            }
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
    ) -> Result<(S, RoundMessage), CallError> {
        let pool = self.pool.clone();
        let (session, result) =
            on_blocking_thread(session, move |session| pool.install(|| handle(session))).await?;
        Ok((session, result?))
    }
}

/// Sends a round in chunks.
async fn send_round(
    tx: &mpsc::Sender<Result<pb::Round, Status>>,
    answer: &RoundMessage,
    width: usize,
    config: &ServerConfig,
    stats: &mut SessionStats,
) -> Result<(), CallError> {
    stats.bytes_out += answer.len_bytes();
    for c in chunks(answer, width, config.max_chunk_bytes) {
        if tx.send(Ok(c)).await.is_err() {
            return Err(CallError::ClientGone { round: answer.round });
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
) -> Result<RoundMessage, CallError>
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
            return Err(CallError::SecondStart { round });
        };
        let bad = |problem| Err(CallError::Chunk { round, problem });
        if chunk.round as usize != round {
            return bad(ChunkError::WrongRound { got: chunk.round, expected: round });
        }
        if !chunk.ciphertexts.len().is_multiple_of(width) {
            return bad(ChunkError::Ragged { bytes: chunk.ciphertexts.len(), width });
        }
        if chunk.ciphertexts.is_empty() && chunk.material.is_empty() && !chunk.last {
            return bad(ChunkError::EmptyNotLast);
        }
        if !chunk.ciphertexts.is_empty() && !message.material.is_empty() {
            return bad(ChunkError::CiphertextsAfterMaterial);
        }
        if message.data.len() + chunk.ciphertexts.len() > expected {
            return bad(ChunkError::TooManyCiphertexts { count, bytes: expected });
        }
        if message.material.len() + chunk.material.len() > material {
            return bad(ChunkError::TooMuchMaterial { bytes: material });
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
) -> Result<infer_request::Kind, CallError>
where
    S: Stream<Item = Result<pb::InferRequest, Status>> + Unpin,
{
    match tokio::time::timeout(idle, inbound.next()).await {
        Err(_) => Err(CallError::Idle { seconds: idle.as_secs_f64(), what: what.to_string() }),
        Ok(Some(Err(status))) => Err(inbound_status(status, config)),
        Ok(None) => Err(CallError::ClientClosed { what: what.to_string() }),
        Ok(Some(Ok(msg))) => msg.kind.ok_or(CallError::EmptyMessage),
    }
}

/// The status for a failure to receive a client message: tonic reports an
/// oversized message as OUT_OF_RANGE and undecodable bytes as INTERNAL; the
/// contract (docs/PROTOCOL.md) says RESOURCE_EXHAUSTED and INVALID_ARGUMENT.
fn inbound_status(status: Status, config: &ServerConfig) -> CallError {
    match status.code() {
        tonic::Code::OutOfRange => CallError::TooLarge { max: config.max_message_bytes },
        tonic::Code::Internal => CallError::Undecodable { detail: status.message().to_string() },
        _ => CallError::Stream(status),
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

/// The digests of the keys whose modulus proofs verified, at most
/// [`ProvenKeys::MAX`] (the oldest forgotten first: a forgotten key proves
/// itself again).
#[derive(Debug, Clone, Default)]
pub(crate) struct ProvenKeys(Arc<Mutex<std::collections::VecDeque<[u8; 32]>>>);

impl ProvenKeys {
    const MAX: usize = 4096;

    fn contains(&self, digest: &[u8; 32]) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).contains(digest)
    }

    fn insert(&self, digest: [u8; 32]) {
        let mut keys = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !keys.contains(&digest) {
            if keys.len() == Self::MAX {
                keys.pop_front();
            }
            keys.push_back(digest);
        }
    }
}

/// The budget key of a client's public key: SHA-256 of n (h^n aside: the
/// same n with another h^n is the same key to its owner).
fn key_digest(key: &ppdnn_paillier::PublicKey) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(key.n().to_digits::<u8>(ppdnn_paillier::int::Order::Msf)).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protocol_status(e: ppdnn_protocol::Error) -> Status {
        CallError::from(e).into()
    }

    fn inbound(status: Status, config: &ServerConfig) -> Status {
        inbound_status(status, config).into()
    }

    #[test]
    fn the_servers_own_faults_are_internal_and_the_clients_are_invalid_argument() {
        let internal = ppdnn_protocol::Error::Internal(ppdnn_protocol::InternalError::OutputCount {
            layer: "conv1".into(),
            got: 3,
            expected: 4,
        });
        assert_eq!(protocol_status(internal).code(), tonic::Code::Internal);
        let random = ppdnn_protocol::Error::Crypto(ppdnn_paillier::Error::Random(
            ppdnn_paillier::RandomError::NotAUnit,
        ));
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
        let big = inbound(Status::out_of_range("decoded message length too large"), &config);
        assert_eq!(big.code(), tonic::Code::ResourceExhausted);
        assert!(big.message().contains("4194304 bytes"), "{}", big.message());
        let junk = inbound(Status::internal("failed to decode Protobuf message"), &config);
        assert_eq!(junk.code(), tonic::Code::InvalidArgument);
        let gone = inbound(Status::cancelled("client went away"), &config);
        assert_eq!(gone.code(), tonic::Code::Cancelled);
    }
}
