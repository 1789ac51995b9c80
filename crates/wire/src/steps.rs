//! A client's side of an InferStep session, over any transport: the
//! protocol's [`ClientSession`] driven through unary calls, one chunk of
//! the server's answer per call (the browser client runs this over
//! gRPC-web; the tests over native gRPC).

use std::future::Future;

use ppdnn_protocol::{ClientSession, ClientStep, RoundMessage};

use crate::convert::chunks;
use crate::pb::{self, infer_request};

/// What ended an InferStep session early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// The server answered a call with an error status.
    #[error("server: {} ({:?})", .0.message(), .0.code())]
    Status(#[from] tonic::Status),
    /// The protocol failed on the client (a bad answer, for instance).
    #[error(transparent)]
    Protocol(#[from] ppdnn_protocol::Error),
    /// A call that asked for a chunk returned none.
    #[error("the server returned no chunk in round {round}")]
    NoChunk {
        /// The round awaited.
        round: usize,
    },
    /// A chunk that does not belong to the answer awaited.
    #[error(transparent)]
    Answer(#[from] AnswerError),
}

/// A server chunk that does not fit the answer the plan fixes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnswerError {
    /// A chunk for another round.
    #[error("the server sent round {got} in round {round}")]
    WrongRound {
        /// The round the chunk names.
        got: u32,
        /// The round awaited.
        round: usize,
    },
    /// More bytes than the plan fixes for a round.
    #[error("the server sent more than the plan's bytes in round {round}")]
    Oversized {
        /// The round awaited.
        round: usize,
    },
}

/// Adds a server chunk to the answer being read (`message.round` is the
/// round awaited), which may hold at most `data` ciphertext bytes and
/// `material` other bytes (the plan fixes both); whether it was the last.
pub fn append_chunk(
    message: &mut RoundMessage,
    chunk: &pb::Round,
    data: usize,
    material: usize,
) -> Result<bool, AnswerError> {
    let round = message.round;
    if chunk.round as usize != round {
        return Err(AnswerError::WrongRound { got: chunk.round, round });
    }
    if message.data.len() + chunk.ciphertexts.len() > data
        || message.material.len() + chunk.material.len() > material
    {
        return Err(AnswerError::Oversized { round });
    }
    message.data.extend_from_slice(&chunk.ciphertexts);
    message.material.extend_from_slice(&chunk.material);
    Ok(chunk.last)
}

/// What an inference by steps gives back, with its costs.
#[derive(Debug, Clone, Default)]
pub struct StepOutcome {
    /// The logits (empty when only the label was asked for).
    pub logits: Vec<i64>,
    /// The index of the largest logit.
    pub label: usize,
    /// Round bytes sent (ciphertexts and material, not the Start).
    pub bytes_sent: usize,
    /// Round bytes received.
    pub bytes_received: usize,
    /// Milliseconds the client spent computing (encrypting, decrypting,
    /// garbling), by the caller's clock.
    pub client_ms: f64,
    /// Unary calls made.
    pub calls: usize,
    /// The first bytes of the client's first round's ciphertexts: what the
    /// server receives in place of the input.
    pub first_ciphertext_bytes: Vec<u8>,
}

/// How many leading ciphertext bytes [`StepOutcome::first_ciphertext_bytes`] keeps.
const SHOWN_BYTES: usize = 64;

/// Runs one inference as InferStep calls on session `name`: `start` opens
/// it, `session` computes, `call` carries each request (a gRPC client's
/// `infer_step`, on any transport) and `now` reads a clock in milliseconds
/// (for the client's compute time). `width` is the ciphertext width and
/// `max_chunk` the largest chunk to send.
#[allow(clippy::too_many_arguments)]
pub async fn infer_by_steps<F, Fut>(
    name: &str,
    start: pb::Start,
    mut session: ClientSession,
    image: &[u8],
    width: usize,
    max_chunk: usize,
    mut call: F,
    now: impl Fn() -> f64,
) -> Result<StepOutcome, StepError>
where
    F: FnMut(pb::InferStepRequest) -> Fut,
    Fut: Future<Output = Result<pb::InferStepResponse, tonic::Status>>,
{
    let mut out = StepOutcome::default();
    let t = now();
    let mut outgoing = session.start(image)?;
    out.client_ms += now() - t;
    let mut pending = vec![pb::InferRequest { kind: Some(infer_request::Kind::Start(start)) }];
    loop {
        if let Some(message) = outgoing.take() {
            if out.first_ciphertext_bytes.is_empty() {
                out.first_ciphertext_bytes = message.data[..message.data.len().min(SHOWN_BYTES)].to_vec();
            }
            out.bytes_sent += message.len_bytes();
            pending.extend(
                chunks(&message, width, max_chunk)
                    .into_iter()
                    .map(|c| pb::InferRequest { kind: Some(infer_request::Kind::Round(c)) }),
            );
        }
        let (round, count, material) = session.expected_answer();
        let answer =
            exchange(name, &mut pending, round, count * width, material, &mut call, &mut out).await?;
        out.bytes_received += answer.len_bytes();
        let t = now();
        let step = session.receive(&answer);
        out.client_ms += now() - t;
        match step? {
            ClientStep::Send(next) => outgoing = Some(next),
            ClientStep::Done(logits) => {
                out.label = ppdnn_model::network::argmax(&logits);
                out.logits = logits;
                return Ok(out);
            }
            ClientStep::Label(label) => {
                out.label = label;
                return Ok(out);
            }
        }
    }
}

/// Delivers `pending` (one request per call, the last call asking for the
/// answer) and reads the server's round `round` of exactly `data`
/// ciphertext bytes and `material` other bytes, one chunk per call.
async fn exchange<F, Fut>(
    name: &str,
    pending: &mut Vec<pb::InferRequest>,
    round: usize,
    data: usize,
    material: usize,
    call: &mut F,
    out: &mut StepOutcome,
) -> Result<RoundMessage, StepError>
where
    F: FnMut(pb::InferStepRequest) -> Fut,
    Fut: Future<Output = Result<pb::InferStepResponse, tonic::Status>>,
{
    let requests: Vec<pb::InferRequest> = std::mem::take(pending);
    let count = requests.len();
    let mut first = None;
    for (i, r) in requests.into_iter().enumerate() {
        let receive = i + 1 == count;
        let reply =
            call(pb::InferStepRequest { session: name.to_string(), request: Some(r), receive }).await?;
        out.calls += 1;
        if receive {
            first = reply.round;
        }
    }
    if count == 0 {
        let reply =
            call(pb::InferStepRequest { session: name.to_string(), request: None, receive: true }).await?;
        out.calls += 1;
        first = reply.round;
    }
    let mut message =
        RoundMessage { round, data: Vec::with_capacity(data), material: Vec::with_capacity(material) };
    let mut chunk = first.ok_or(StepError::NoChunk { round })?;
    loop {
        if append_chunk(&mut message, &chunk, data, material)? {
            return Ok(message);
        }
        let reply =
            call(pb::InferStepRequest { session: name.to_string(), request: None, receive: true }).await?;
        out.calls += 1;
        chunk = reply.round.ok_or(StepError::NoChunk { round })?;
    }
}

/// A fresh session name: 32 hex digits from the system's (or the
/// browser's) cryptographic random source.
pub fn session_name() -> Result<String, ppdnn_paillier::Error> {
    let bits = ppdnn_paillier::random_bits(128)?;
    Ok(format!("{:032x}", bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(round: u32, ciphertexts: usize, material: usize, last: bool) -> pb::Round {
        pb::Round { round, ciphertexts: vec![1; ciphertexts], last, material: vec![2; material] }
    }

    #[test]
    fn chunks_are_appended_up_to_the_planned_sizes_and_no_further() {
        let mut m = RoundMessage { round: 3, data: Vec::new(), material: Vec::new() };
        assert_eq!(append_chunk(&mut m, &chunk(3, 8, 0, false), 16, 4), Ok(false));
        assert_eq!(append_chunk(&mut m, &chunk(3, 8, 4, true), 16, 4), Ok(true));
        assert_eq!((m.data.len(), m.material.len()), (16, 4));
        assert_eq!(
            append_chunk(&mut m, &chunk(3, 1, 0, true), 16, 4),
            Err(AnswerError::Oversized { round: 3 }),
            "a byte beyond the plan"
        );
        assert_eq!(
            append_chunk(&mut m, &chunk(4, 0, 0, true), 16, 4),
            Err(AnswerError::WrongRound { got: 4, round: 3 })
        );
    }

    #[test]
    fn session_names_are_32_hex_digits() {
        let a = session_name().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(a, session_name().unwrap());
    }
}
